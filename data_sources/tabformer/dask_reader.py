"""Read a TabFormer CSV file as Dask tasks: one task per chunk of whole lines, on any Dask cluster.

The client makes one pass over the file counting line ends (``line_spans``: byte
offset, length, first line number and line count of every chunk of ``chunksize``
lines), which is I/O only; parsing and validation, the expensive part, run in the
tasks. Each task reads its byte span and types it with the CPU reader's
``read_chunk`` (the same rules, the same line numbers in a report), or, where cuDF
works on the worker (``engine`` "auto" or "cudf", the ``gpu`` extra), with the cuDF
reader's ``read_clean`` on the worker's GPU, falling back to the CPU for a chunk
that needs a report. So the typed table is the serial reader's, row for row, and
written back it gives the same bytes.

* :func:`tabformer_dataframe` is the lazy ``dask.dataframe`` of the typed rows (one
  partition per chunk) for work that does not fit in one process; with
  ``backend="cudf"`` (``dask_cudf`` installed, a usable GPU) its partitions are cuDF
  frames on the workers' GPUs.
* :func:`read_dask` computes it on a scheduler (``--scheduler local:N`` or
  ``tcp://HOST:PORT``, ``foundation.cluster``) into one pandas table, as
  ``read_tabformer(path, scheduler=...)`` does; a bad line raises the serial
  reader's error for the first bad line of the file (``on_error="raise"``), or is
  left out and reported (``"skip"``).

The workers read the file at the same path: on a cluster it must be on shared storage.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import pandas as pd

from data_sources.errors import DataError
from data_sources.gpu import cudf_usable
from data_sources.tabformer.cudf_reader import read_lines_cudf
from data_sources.tabformer.reader import (
    DEFAULT_CHUNKSIZE, READ_BLOCK, OnError, TabformerChunk, bad_row_error, check_on_error, open_checked, read_chunk,
)
from data_sources.tabformer.schema import empty_bad_rows, empty_table


class LineSpan(NamedTuple):
    """Whole lines of a file: ``length`` bytes at ``offset``, file lines ``first_line`` .. ``+ n_lines - 1``."""

    offset: int
    length: int
    first_line: int
    n_lines: int


def line_spans(path: str | Path, chunksize: int = DEFAULT_CHUNKSIZE) -> list[LineSpan]:
    """The spans of ``chunksize`` whole data lines each after the header (the last may be shorter and may
    lack a final newline), the same chunks as ``iter_tabformer``'s. Header and file checks as the CPU reader's."""
    if chunksize < 1:
        raise ValueError(f"chunksize must be a positive number of lines, not {chunksize!r}")
    path = Path(path)
    with open_checked(path) as (fh, size):
        return list(_spans(fh, fh.tell(), size, chunksize))


def _spans(fh, start: int, size: int, chunksize: int) -> Iterator[LineSpan]:
    offset, line, counted, pos, last = start, 2, 0, start, b"\n"  # the header is line 1
    while block := fh.read(READ_BLOCK):
        newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
        i = 0
        while counted + (len(newlines) - i) >= chunksize:  # this block completes a chunk
            i += chunksize - counted
            end = pos + int(newlines[i - 1]) + 1
            yield LineSpan(offset, end - offset, line, chunksize)
            offset, line, counted = end, line + chunksize, 0
        counted += len(newlines) - i
        pos, last = pos + len(block), block[-1:]
    if offset < size:  # the last, shorter chunk (its last line may lack the final newline)
        yield LineSpan(offset, size - offset, line, counted + (0 if last == b"\n" else 1))


def read_span(path: str | Path, span: LineSpan, engine: str = "cpu") -> TabformerChunk:
    """One span typed on this process: cuDF first where ``engine`` allows and it works, else the CPU reader."""
    path = Path(path)
    with open(path, "rb") as fh:
        fh.seek(span.offset)
        data = fh.read(span.length)
    if len(data) != span.length:
        raise DataError(f"{path}: the file changed while it was read (bytes {span.offset}..{span.offset + span.length} "
                        "are gone); read it again")
    if engine != "cpu" and cudf_usable():
        table = read_lines_cudf(data, span.n_lines)
        if table is not None:
            return TabformerChunk(table, empty_bad_rows(), span.first_line, span.n_lines)
    elif engine == "cudf":
        raise DataError("engine='cudf' but cuDF is not usable on this Dask worker (not installed, or no working "
                        "GPU); use engine='auto' or 'cpu'")
    return read_chunk(data, span.first_line, span.n_lines, path)


def _table(chunk: TabformerChunk) -> pd.DataFrame:
    return chunk.table


def _bad_rows(chunk: TabformerChunk) -> pd.DataFrame:
    return chunk.bad_rows


def _checked(chunk: TabformerChunk, path: str) -> pd.DataFrame:
    """The chunk's table, or the serial reader's error for its first bad line."""
    if len(chunk.bad_rows):
        raise bad_row_error(Path(path), chunk.bad_rows.iloc[0])
    return chunk.table


def _check_engine(engine: str) -> None:
    if engine not in ("auto", "cpu", "cudf"):
        raise ValueError(f"engine must be 'auto', 'cpu' or 'cudf', not {engine!r}")


def _chunks(path: Path, chunksize: int, engine: str) -> list:
    """One delayed ``read_span`` per span (what both collections below are built on)."""
    from dask import delayed  # noqa: PLC0415 - the distributed extra

    read = delayed(read_span, pure=True)
    return [read(str(path), span, engine, dask_key_name=f"tabformer-{path.name}-{span.first_line}")
            for span in line_spans(path, chunksize)]


def tabformer_dataframe(path: str | Path, *, chunksize: int = DEFAULT_CHUNKSIZE, on_error: OnError = "raise",
                        engine: str = "auto", backend: str = "pandas"):
    """The typed rows of a TabFormer file as a lazy ``dask.dataframe`` (one partition per chunk of lines).

    on_error : "raise": computing a partition with a bad line raises the reader's ``DataError``
        for it; "skip": bad lines are left out (``read_dask`` also returns the report).
    backend : "pandas", or "cudf" for partitions on the workers' GPUs (needs ``dask_cudf``).
    The partitions' indexes restart at 0; ``read_dask`` gives one RangeIndex.
    """
    check_on_error(on_error)
    _check_engine(engine)
    if backend not in ("pandas", "cudf"):
        raise ValueError(f"backend must be 'pandas' or 'cudf', not {backend!r}")
    import dask.dataframe as dd  # noqa: PLC0415 - the distributed extra
    from dask import delayed  # noqa: PLC0415

    path = Path(path)
    chunks = _chunks(path, chunksize, engine)
    pick = delayed(_checked, pure=True) if on_error == "raise" else delayed(_table, pure=True)
    parts = [pick(c, str(path)) if on_error == "raise" else pick(c) for c in chunks]
    frame = dd.from_delayed(parts, meta=empty_table(), verify_meta=False)
    if backend == "cudf":
        try:
            import dask_cudf  # noqa: F401, PLC0415 - the gpu extra registers the cudf backend
        except ImportError:
            raise DataError("backend='cudf' needs dask_cudf (the gpu extra: pip install 'forecaster[gpu]')") from None
        frame = frame.to_backend("cudf")
    return frame


def read_dask(path: str | Path, scheduler: str, *, on_error: OnError = "raise", chunksize: int = DEFAULT_CHUNKSIZE,
              engine: str = "auto"):
    """The whole typed table read by Dask tasks on ``scheduler``: ``read_tabformer``'s result, row for row.

    Returns the table (``on_error="raise"``) or ``(table, bad_rows)`` (``"skip"``), as ``read_tabformer``.
    """
    check_on_error(on_error)
    _check_engine(engine)
    import dask  # noqa: PLC0415 - the distributed extra
    import dask.dataframe as dd  # noqa: PLC0415

    from foundation.cluster import dask_client

    path = Path(path)
    chunks = _chunks(path, chunksize, engine)
    tables = dd.from_delayed([dask.delayed(_table, pure=True)(c) for c in chunks], meta=empty_table(),
                             verify_meta=False)
    reports = dd.from_delayed([dask.delayed(_bad_rows, pure=True)(c) for c in chunks], meta=empty_bad_rows(),
                              verify_meta=False)
    with dask_client(scheduler):
        table, report = dask.compute(tables, reports)  # the chunks are read once, for both
    report = report.reset_index(drop=True).astype(empty_bad_rows().dtypes.to_dict())
    if on_error == "raise":
        if len(report):
            raise bad_row_error(path, report.iloc[0])  # the first bad line of the file, as the serial reader
        return table.reset_index(drop=True)
    return table.reset_index(drop=True), report
