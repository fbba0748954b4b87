"""Write a typed table back out in the published TabFormer CSV format.

Each chunk of rows is formatted column by column with Arrow kernels (distinct
values formatted once) and joined into one buffer of lines, so writing the full
24-million-row table stays fast and its memory bounded by the chunk size. The
bytes follow the published file: header line, ``\\n`` line ends, fields quoted
only when they hold a comma or a quote (``"Bad PIN,Insufficient
Balance"``), amounts as ``$`` + ``%.2f`` (``$-77.00``), times ``HH:MM``, zips with
``.0``, empty fields for missing state, zip and errors.

Reading the published file and writing it back gives the same bytes (tested on
the real sample). The writer always writes that canonical form, so an input
that the reader accepts in another spelling comes back canonical: CRLF line
ends -> ``\\n``, integers with leading zeros (``09``) -> ``9``, a zip without
``.0`` -> with it. Timestamps are written to the minute (the format has no
seconds; any seconds are dropped). Text with a line break is refused: the
format (and the reader) has one transaction per line.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from foundation.atomic import atomic_path
from data_sources.errors import DataError
from data_sources.tabformer.schema import FRAUD_LABELS, HEADER_LINE, TIMES_OF_DAY, TYPED_COLUMNS

WRITE_CHUNK = 500_000  # rows formatted at a time


def _to_str(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.string())


def _quoted(values: pa.Array) -> pa.Array:
    """CSV minimal quoting: wrap in quotes (doubling inner quotes) only when needed."""
    needs = pc.match_substring_regex(values, '[",]')
    if not pc.any(needs).as_py():
        return values
    wrapped = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.if_else(needs, wrapped, values)


def _required(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column]
    if values.isna().any():
        first = values.index[values.isna().to_numpy()][0]
        raise DataError(f"column {column!r} has missing values (first at index {first!r}); "
                        f"the TabFormer format needs a value in every row of this column")
    return values


def _text(values: pd.Series, column: str) -> pa.Array:
    """A string-like or categorical column -> CSV fields: quoted where needed, missing -> empty.

    Quoting works on the distinct values (dictionary), then gathers: these
    columns have few distinct values, so this costs one hash pass per column.
    """
    arr = pa.Array.from_pandas(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    distinct = _to_str(arr.dictionary)
    breaks = pc.match_substring_regex(distinct, "[\r\n]")
    if pc.any(breaks).as_py():
        example = pc.filter(distinct, breaks)[0].as_py()
        raise DataError(f"column {column!r} has a value with a line break ({example[:80]!r}); the "
                        f"TabFormer format has one transaction per line: remove line breaks first")
    fields = _quoted(distinct)
    return pc.fill_null(pc.take(fields, arr.indices), "")


def _via_uniques(keys: np.ndarray, render) -> pa.Array:
    """Format each distinct key once (``render(uniques) -> list[str]``), then gather by code.

    Columns such as merchant ids, amounts and dates repeat a lot, so this is
    several times faster than formatting every row.
    """
    codes, uniques = pd.factorize(keys)
    return pc.take(pa.array(render(uniques), type=pa.string()), pa.array(codes))


def _amounts(values: np.ndarray) -> pa.Array:
    """USD floats -> ``$134.09`` / ``$-77.00`` (Python's ``%.2f``, so rounded to cents)."""
    if not np.isfinite(values).all():
        raise DataError("column 'amount' has NaN or infinite values; the TabFormer format needs a "
                        "finite amount in every row")
    bits = values.view(np.int64)  # factorize the bit patterns: keeps -0.0 apart from 0.0
    return _via_uniques(bits, lambda u: [f"${v:.2f}" for v in u.view(np.float64).tolist()])


def _date_and_time(ts: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """datetime64[ns] -> ("2002,9,1" as the Year,Month,Day fields, "06:21")."""
    minutes = ts.astype("datetime64[m]").astype(np.int64)
    days, minute_of_day = np.divmod(minutes, 24 * 60)

    def render(unique_days: np.ndarray) -> list[str]:
        dates = pd.DatetimeIndex(unique_days.astype("datetime64[D]"))
        return [f"{y},{m},{d}" for y, m, d in zip(dates.year, dates.month, dates.day)]

    return _via_uniques(days, render), pc.take(TIMES_OF_DAY, pa.array(minute_of_day))


def _zips(values: pd.Series) -> pa.Array:
    """Int zips -> ``91750.0``; missing -> empty."""
    keys = values.astype("Int64").fillna(-1).to_numpy(dtype=np.int64)
    return _via_uniques(keys, lambda u: ["" if z < 0 else f"{z}.0" for z in u.tolist()])


def format_rows(frame: pd.DataFrame) -> bytes:
    """The CSV lines (no header) of a typed table, each ending in ``\\n``."""
    missing = [c for c in TYPED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"cannot write TabFormer CSV: missing columns {missing}; "
                        f"expected the typed columns {list(TYPED_COLUMNS)}")
    if len(frame) == 0:
        return b""
    ts_values = _required(frame, "timestamp")
    if getattr(ts_values.dtype, "tz", None) is not None:
        raise DataError("column 'timestamp' is timezone-aware; TabFormer times are naive local "
                        "times: convert with .dt.tz_localize(None)")
    date, time = _date_and_time(ts_values.to_numpy(dtype="datetime64[ns]"))
    merchants = _required(frame, "merchant_name").to_numpy(dtype=np.int64)
    fields = [
        _to_str(pa.array(_required(frame, "user").to_numpy(dtype=np.int64))),
        _to_str(pa.array(_required(frame, "card").to_numpy(dtype=np.int64))),
        date,  # Year,Month,Day
        time,
        _amounts(_required(frame, "amount").to_numpy(dtype=np.float64)),
        _text(_required(frame, "use_chip"), "use_chip"),
        _via_uniques(merchants, lambda u: [str(v) for v in u.tolist()]),
        _text(_required(frame, "merchant_city"), "merchant_city"),
        _text(frame["merchant_state"], "merchant_state"),
        _zips(frame["zip"]),
        _to_str(pa.array(_required(frame, "mcc").to_numpy(dtype=np.int64))),
        _text(frame["errors"], "errors"),
        # the last field carries the line end, which saves a second join over all rows
        pc.if_else(pa.array(_required(frame, "is_fraud").to_numpy(dtype=bool)),
                   FRAUD_LABELS[1] + "\n", FRAUD_LABELS[0] + "\n"),
    ]
    lines = pc.binary_join_element_wise(*fields, ",")
    return _buffer_bytes(pc.cast(lines, pa.large_string()))


def _buffer_bytes(lines: pa.Array | pa.ChunkedArray) -> bytes:
    """Concatenate the values of a large_string array without a per-row Python loop."""
    if isinstance(lines, pa.ChunkedArray):
        return b"".join(_buffer_bytes(chunk) for chunk in lines.chunks)
    if len(lines) == 0:
        return b""
    offsets_buf, data_buf = lines.buffers()[1], lines.buffers()[2]
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    return data_buf.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes()


def write_tabformer_csv(frame: pd.DataFrame | Iterable[pd.DataFrame], path: str | os.PathLike) -> Path:
    """Write a typed table (or an iterable of typed chunks) as a TabFormer CSV file.

    The write is atomic (``atomic_path``): ``path`` is replaced only once the
    whole file is written. Columns beyond the typed ones are ignored; rows are
    written in the order given (see ``sort_transactions``). Missing values in
    required columns raise DataError. Returns the path written.
    """
    target = Path(path)
    chunks = [frame] if isinstance(frame, pd.DataFrame) else frame
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        fh.write(HEADER_LINE.encode() + b"\n")
        for chunk in chunks:
            for start in range(0, len(chunk), WRITE_CHUNK):
                fh.write(format_rows(chunk.iloc[start: start + WRITE_CHUNK]))
    return target
