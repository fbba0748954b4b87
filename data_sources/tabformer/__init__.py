"""IBM TabFormer credit-card transactions: read, validate, type, and write back.

The published CSV (``card_transaction.v1.csv``, 24 million rows; the column
mapping and typed dtypes are documented in ``schema``) becomes a typed table,
and a typed table becomes the published bytes again:

>>> table = read_tabformer("User0_credit_card_transactions.csv")          # doctest: +SKIP
>>> table, bad = read_tabformer(path, on_error="skip")                     # doctest: +SKIP
>>> for chunk in iter_tabformer(path): ...                                 # doctest: +SKIP
>>> table = read_tabformer(path, scheduler="tcp://10.0.0.5:8786")          # doctest: +SKIP
>>> write_tabformer_csv(table, "out.csv")                                  # doctest: +SKIP

Modules: ``schema`` (columns, dtypes, ``error_flags``, ``sort_transactions``),
``convert`` (field rules), ``reader`` (chunked CPU reader), ``cudf_reader``
(GPU reader for clean files), ``dask_reader`` (chunks as Dask tasks: ``read_tabformer(path,
scheduler="local:4")`` or the lazy ``tabformer_dataframe``), ``writer``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, overload

import pandas as pd

from data_sources.errors import DataError
from data_sources.gpu import cudf_usable
from data_sources.tabformer.cudf_reader import read_tabformer_cudf
from data_sources.tabformer.reader import (
    DEFAULT_CHUNKSIZE, OnError, TabformerChunk, check_on_error, iter_tabformer, open_checked,
    read_all_cpu,
)
from data_sources.tabformer.schema import (
    COLUMN_SOURCES, KNOWN_ERROR_FLAGS, PUBLISHED_COLUMNS, TYPED_COLUMNS, TYPED_DTYPES, USE_CHIP,
    empty_bad_rows, empty_table, error_flag_columns, error_flags, sort_transactions,
)
from data_sources.tabformer.writer import write_tabformer_csv


def tabformer_dataframe(path, **kwargs):
    """The lazy ``dask.dataframe`` of a TabFormer file's typed rows (``dask_reader.tabformer_dataframe``)."""
    from data_sources.tabformer.dask_reader import tabformer_dataframe as frame  # deferred: the distributed extra

    return frame(path, **kwargs)

__all__ = [
    "COLUMN_SOURCES", "DEFAULT_CHUNKSIZE", "KNOWN_ERROR_FLAGS", "PUBLISHED_COLUMNS", "TYPED_COLUMNS",
    "TYPED_DTYPES", "USE_CHIP", "TabformerChunk", "empty_table", "error_flag_columns", "error_flags",
    "iter_tabformer", "read_tabformer", "sort_transactions", "tabformer_dataframe", "write_tabformer_csv",
]

log = logging.getLogger(__name__)
Engine = Literal["auto", "cpu", "cudf"]


@overload
def read_tabformer(path: str | Path, *, on_error: Literal["raise"] = "raise",
                   chunksize: int = ..., progress: bool | None = ..., engine: Engine = ...,
                   scheduler: str | None = ...) -> pd.DataFrame: ...


@overload
def read_tabformer(path: str | Path, *, on_error: Literal["skip"],
                   chunksize: int = ..., progress: bool | None = ...,
                   engine: Engine = ..., scheduler: str | None = ...) -> tuple[pd.DataFrame, pd.DataFrame]: ...


def read_tabformer(path, *, on_error: OnError = "raise", chunksize: int = DEFAULT_CHUNKSIZE,
                   progress: bool | None = None, engine: Engine = "auto", scheduler: str | None = None):
    """Read a whole TabFormer CSV file into one typed table (n_rows x 12, see ``schema``).

    on_error : "raise" (default) -> returns the table; the first bad line raises
        DataError naming file, line, column, value and what to do.
        "skip" -> returns ``(table, bad_rows)``: bad lines are left out of the
        table and every bad field is in ``bad_rows`` (line, column, value,
        reason); the number of skipped lines is also logged as a warning.
    chunksize : lines per chunk on the CPU path (bounds the working memory; the
        result itself is ~60 bytes per row). Use ``iter_tabformer`` to stream.
    progress : tqdm progress bar on stderr (CPU path): None only on a terminal, True always, False never.
    engine : "auto" uses cuDF when ``cudf_usable()`` and the file is clean,
        else the CPU; "cpu" never tries cuDF; "cudf" requires a usable cuDF
        (a file needing a report is still read on the CPU).
    scheduler : read the chunks as Dask tasks (``"local:N"``, ``"tcp://HOST:PORT"``; the
        ``distributed`` extra; ``dask_reader``): the same table, each chunk typed on a worker
        (with cuDF where ``engine`` allows and the worker has a GPU). ``progress`` is ignored.
    """
    check_on_error(on_error)
    if engine not in ("auto", "cpu", "cudf"):
        raise ValueError(f"engine must be 'auto', 'cpu' or 'cudf', not {engine!r}")
    path = Path(path)
    if scheduler is not None:
        from data_sources.tabformer.dask_reader import read_dask  # deferred: the distributed extra

        result = read_dask(path, scheduler, on_error=on_error, chunksize=chunksize, engine=engine)
        if on_error == "skip" and len(result[1]):
            log.warning("%s: skipped %d bad lines (%d bad fields); kept %d rows",
                        path, result[1]["line"].nunique(), len(result[1]), len(result[0]))
        return result
    if engine == "cudf" and not cudf_usable():
        raise DataError("engine='cudf' but cuDF is not usable on this machine (not installed, or "
                        "no working GPU); use engine='auto' or 'cpu'")
    if engine != "cpu" and cudf_usable():
        with open_checked(path):  # the same missing/empty/header errors as the CPU path
            pass
        table = read_tabformer_cudf(path)
        if table is not None:
            return table if on_error == "raise" else (table, empty_bad_rows())
    table, bad = read_all_cpu(path, on_error, chunksize, progress)
    if on_error == "raise":
        return table
    if len(bad):
        log.warning("%s: skipped %d bad lines (%d bad fields); kept %d rows",
                    path, bad["line"].nunique(), len(bad), len(table))
    return table, bad
