"""Validate one chunk of raw TabFormer fields (all strings) and build the typed table.

``convert_chunk`` takes the 15 published columns as Arrow string arrays plus the
file line number of every row, checks every field with vectorised Arrow kernels,
and returns the typed rows that passed and one report entry per bad field. The
rules (what each published column may hold) live here, once; the cuDF reader
reuses ``assemble`` and ``timestamps`` so both paths build the same table.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_sources.tabformer.schema import (
    BAD_ROW_COLUMNS, FRAUD_LABELS, PUBLISHED_COLUMNS, STRING_DTYPE, TIMES_OF_DAY, TYPED_COLUMNS,
    USE_CHIP, USE_CHIP_DTYPE, empty_bad_rows,
)

# Published field formats. Anchored, so they must match the whole field.
AMOUNT_RE = r"^\$-?[0-9]+\.[0-9]{2}$"  # $134.09, $-77.00
TIME_RE = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"  # 06:21
ZIP_RE = r"^([0-9]{1,9}(\.0)?)?$"  # 91750.0, 91750 or empty
INT_RE = re.compile(r"-?[0-9]+")
# Inclusive ranges of the integer fields. Years stay inside datetime64[ns].
INT_RANGES: dict[str, tuple[int, int]] = {
    "User": (0, 2**31 - 1), "Card": (0, 2**15 - 1), "Year": (1678, 2261), "Month": (1, 12),
    "Day": (1, 31), "Merchant Name": (-(2**63), 2**63 - 1), "MCC": (0, 9999),
}


class _Flags:
    """Collects bad fields of one chunk: which rows, which column, why."""

    def __init__(self, n_rows: int) -> None:
        self.bad = np.zeros(n_rows, dtype=bool)
        self.entries: list[tuple[np.ndarray, str, str]] = []  # (row indices, column, reason)

    def flag(self, mask: np.ndarray, column: str, reason: str) -> None:
        mask = mask & ~self.bad_in(column)  # one entry per (row, column)
        if mask.any():
            self.bad |= mask
            self.entries.append((np.flatnonzero(mask), column, reason))

    def bad_in(self, column: str) -> np.ndarray:
        out = np.zeros(len(self.bad), dtype=bool)
        for rows, col, _ in self.entries:
            if col == column:
                out[rows] = True
        return out


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False) if isinstance(arr, pa.Array) else arr.to_numpy()


def _matches(arr: pa.Array | pa.ChunkedArray, pattern: str) -> np.ndarray:
    return _np(pc.match_substring_regex(arr, pattern)).astype(bool)


def _distinct(arr: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(distinct values, index of each row's value in them)."""
    encoded = pc.dictionary_encode(arr.combine_chunks())
    return encoded.dictionary, _np(encoded.indices)


def _ints(arr: pa.ChunkedArray, column: str, flags: _Flags) -> np.ndarray:
    """Integer field -> int64 values (0 where bad); flags non-integers and out-of-range values."""
    lo, hi = INT_RANGES[column]
    try:  # fast path: Arrow's cast is strict (no spaces, signs only '-', no decimals)
        values = _np(pc.cast(arr, pa.int64()))
        flags.flag((values < lo) | (values > hi), column, f"out of range {lo}..{hi}")
        return values
    except (pa.ArrowInvalid, OverflowError):
        pass
    # slow path, only for chunks holding a bad value: field by field in Python
    values = np.zeros(len(arr), dtype=np.int64)
    not_int = np.zeros(len(arr), dtype=bool)
    out_of_range = np.zeros(len(arr), dtype=bool)
    for i, text in enumerate(arr.to_pylist()):
        if text is None or not INT_RE.fullmatch(text):
            not_int[i] = True
            continue
        v = int(text)
        if lo <= v <= hi:
            values[i] = v
        else:
            out_of_range[i] = True
    flags.flag(not_int, column, "not an integer")
    flags.flag(out_of_range, column, f"out of range {lo}..{hi}")
    return values


def timestamps(year: np.ndarray, month: np.ndarray, day: np.ndarray,
               hour: np.ndarray, minute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(datetime64[ns] timestamps, mask of days that do not exist in their month).

    Inputs are int arrays of one length, already range-checked (month 1..12,
    day 1..31, hour 0..23, minute 0..59); where the mask is True the timestamp
    is meaningless.
    """
    months = ((year - 1970) * 12 + (month - 1)).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    no_such_day = days.astype("datetime64[M]") != months  # e.g. Feb 30 rolls into March
    minutes = (hour * 60 + minute).astype("timedelta64[m]")
    return (days + minutes).astype("datetime64[ns]"), no_such_day


def assemble(parts: dict[str, object], keep: np.ndarray | None = None) -> pd.DataFrame:
    """Build the typed table from converted columns, keeping the rows where ``keep``.

    ``parts`` maps each typed column to: a NumPy array (user, card, timestamp,
    amount, merchant_name, mcc, is_fraud), int8 category codes (use_chip), an
    Arrow string array with nulls for missing (merchant_city, merchant_state,
    errors), or ``(int values, missing mask)`` (zip).
    """
    def pick(values):
        if keep is None:
            return values
        return pc.filter(values, pa.array(keep)) if isinstance(values, (pa.Array, pa.ChunkedArray)) \
            else values[keep]

    cols: dict[str, object] = {}
    cols["user"] = pick(parts["user"]).astype(np.int32)
    cols["card"] = pick(parts["card"]).astype(np.int16)
    cols["timestamp"] = pick(parts["timestamp"]).astype("datetime64[ns]")
    cols["amount"] = pick(parts["amount"]).astype(np.float64)
    cols["use_chip"] = pd.Categorical.from_codes(pick(parts["use_chip"]), dtype=USE_CHIP_DTYPE)
    cols["merchant_name"] = pick(parts["merchant_name"]).astype(np.int64)
    for name in ("merchant_city", "merchant_state", "errors"):
        cols[name] = pd.array(pick(parts[name]), dtype=STRING_DTYPE)
    zip_values, zip_missing = parts["zip"]
    cols["zip"] = pd.arrays.IntegerArray(pick(zip_values).astype(np.int32), pick(zip_missing))
    cols["mcc"] = pick(parts["mcc"]).astype(np.int16)
    cols["is_fraud"] = pick(parts["is_fraud"]).astype(bool)
    frame = pd.DataFrame(cols, columns=list(TYPED_COLUMNS))
    return frame


def convert_chunk(raw: pa.Table, lines: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw string columns; return (typed rows that passed, bad-field report).

    raw : the 15 published columns (``PUBLISHED_COLUMNS``), Arrow strings, no nulls.
    lines : (n,) int64 1-based file line number of each row, for the report.
    The report has one row per bad field: line, column (published name), value
    (the field text), reason; a line that is entirely empty gives one row with
    reason "empty line". Rows with any bad field are left out of the table.
    """
    n = raw.num_rows
    flags = _Flags(n)
    col = {c: raw.column(c) for c in PUBLISHED_COLUMNS}
    parts: dict[str, object] = {}

    ints = {c: _ints(col[c], c, flags) for c in ("User", "Card", "Year", "Month", "Day",
                                                  "Merchant Name", "MCC")}
    parts.update(user=ints["User"], card=ints["Card"], merchant_name=ints["Merchant Name"],
                 mcc=ints["MCC"])

    minute_of_day = pc.index_in(col["Time"], value_set=TIMES_OF_DAY)  # "06:21" -> 381
    flags.flag(_np(pc.is_null(minute_of_day)), "Time", "not a time like 06:21 (HH:MM, 00:00..23:59)")
    hour, minute = np.divmod(_np(pc.fill_null(minute_of_day, 0)).astype(np.int64), 60)
    date_ok = ~(flags.bad_in("Year") | flags.bad_in("Month") | flags.bad_in("Day"))
    year = np.where(date_ok, ints["Year"], 1970)
    month = np.where(date_ok, ints["Month"], 1)
    day = np.where(date_ok, ints["Day"], 1)
    parts["timestamp"], no_such_day = timestamps(year, month, day, hour, minute)
    flags.flag(no_such_day, "Day", "no such day in that month")

    # amounts and zips repeat: check and parse each distinct text once
    amounts, amount_idx = _distinct(col["Amount"])
    amount_ok = _matches(amounts, AMOUNT_RE)
    amounts = pc.if_else(pa.array(amount_ok), amounts, "$0.00")
    parts["amount"] = _np(pc.cast(pc.utf8_slice_codeunits(amounts, 1, 1 << 30), pa.float64()))[amount_idx]
    flags.flag(~amount_ok[amount_idx], "Amount", "not an amount like $134.09 or $-77.00")

    chip = pc.index_in(col["Use Chip"], value_set=pa.array(USE_CHIP))
    flags.flag(_np(pc.is_null(chip)), "Use Chip", f"unknown value, expected one of {', '.join(USE_CHIP)}")
    parts["use_chip"] = _np(pc.fill_null(chip, 0)).astype(np.int8)

    flags.flag(_np(pc.equal(col["Merchant City"], "")), "Merchant City", "empty")
    parts["merchant_city"] = col["Merchant City"]
    for name, published in (("merchant_state", "Merchant State"), ("errors", "Errors?")):
        values = col[published]
        parts[name] = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)

    zips, zip_idx = _distinct(col["Zip"])
    zip_ok = _matches(zips, ZIP_RE)
    zip_text = pc.replace_substring(pc.if_else(pa.array(zip_ok), zips, ""), ".0", "")
    zip_missing = _np(pc.equal(zip_text, "")).astype(bool)
    zip_values = _np(pc.cast(pc.if_else(pa.array(zip_missing), "0", zip_text), pa.int64()))
    zip_missing, zip_values, zip_ok = zip_missing[zip_idx], zip_values[zip_idx], zip_ok[zip_idx]
    flags.flag(~zip_ok, "Zip", "not a zip code like 91750.0 (or empty)")
    flags.flag(zip_values > 2**31 - 1, "Zip", "out of range for int32")
    parts["zip"] = (zip_values, zip_missing)

    fraud = pc.index_in(col["Is Fraud?"], value_set=pa.array(FRAUD_LABELS))
    flags.flag(_np(pc.is_null(fraud)), "Is Fraud?", "unknown fraud label, expected Yes or No")
    parts["is_fraud"] = _np(pc.fill_null(fraud, 0)).astype(bool)

    if not flags.bad.any():
        return assemble(parts), empty_bad_rows()
    return assemble(parts, keep=~flags.bad), _report(raw, lines, flags)


def _report(raw: pa.Table, lines: np.ndarray, flags: _Flags) -> pd.DataFrame:
    """One report row per bad field, ordered by line then column; empty lines collapsed."""
    bad_rows = np.flatnonzero(flags.bad)
    taken = pa.Table.from_arrays([pc.take(raw.column(c), bad_rows) for c in PUBLISHED_COLUMNS],
                                 names=list(PUBLISHED_COLUMNS))
    blank = np.ones(len(bad_rows), dtype=bool)
    for c in PUBLISHED_COLUMNS:
        blank &= _np(pc.equal(taken.column(c), "")).astype(bool)
    blank_rows = bad_rows[blank]
    order = {c: i for i, c in enumerate(PUBLISHED_COLUMNS)}
    records = [(int(lines[r]), -1, "", "", "empty line") for r in blank_rows.tolist()]
    for rows, column, reason in flags.entries:
        rows = rows[~np.isin(rows, blank_rows)]
        values = pc.take(raw.column(column), rows).to_pylist()
        records += [(int(lines[r]), order[column], column, v, reason) for r, v in zip(rows, values)]
    records.sort(key=lambda rec: (rec[0], rec[1]))
    frame = pd.DataFrame([(ln, c, v, why) for ln, _, c, v, why in records], columns=list(BAD_ROW_COLUMNS))
    return frame.astype({"line": "int64", "column": str, "value": str, "reason": str})
