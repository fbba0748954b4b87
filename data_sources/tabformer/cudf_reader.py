"""Read a clean TabFormer CSV file with cuDF on the GPU (the optional ``gpu`` extra).

Only the clean case runs on the GPU: the whole file is parsed as strings, every
field is checked against the same formats as the CPU path, the numeric fields
are converted on the device, and the host builds the typed table with the CPU
path's ``assemble`` and ``timestamps``. Anything that needs a report (a bad
field, a malformed line, a parser error, too little device memory, any other
exception) returns None and the caller reads the file again on the CPU, which
raises or skips with exact line numbers. So this path can make a read faster,
never different.

``read_clean`` uses only operations that pandas and cuDF share, so the tests
run it with pandas (``xd=pandas``) against the CPU reader; on a GPU machine it
gets ``xd=cudf``.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_sources.tabformer.convert import AMOUNT_RE, INT_RANGES, TIME_RE, ZIP_RE, assemble, timestamps
from data_sources.tabformer.schema import PUBLISHED_COLUMNS, USE_CHIP

log = logging.getLogger(__name__)


class _Unclean(Exception):
    """The file needs the CPU path's report (raised inside, never escapes)."""


def count_data_lines(path: Path, block: int = 64 << 20) -> int:
    """Lines after the header (a last line without a final newline counts)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines - 1 + (0 if last == b"\n" else 1)


def _all(mask) -> bool:
    return bool(mask.all())


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise _Unclean(what)


def _ints(s, column: str):
    """Device int64 values of an integer column; _Unclean unless every field is canonical."""
    lo, hi = INT_RANGES[column]
    _require(_all(s.str.match(r"^-?[0-9]{1,19}$")), f"{column}: not an integer")
    values = s.astype("int64")
    # the text round trip catches int64 overflow (which may wrap on the device) and leading zeros
    _require(_all(values.astype("str") == s), f"{column}: not canonical or overflows int64")
    _require(_all((values >= lo) & (values <= hi)), f"{column}: out of range")
    return values


def _host(s) -> np.ndarray:
    return s.to_numpy()


def _host_strings(s) -> pa.Array:
    arr = s.to_arrow() if hasattr(s, "to_arrow") else pa.Array.from_pandas(s)
    return pc.cast(arr, pa.string())


def read_clean(xd: ModuleType, path: Path | io.BytesIO, expected_rows: int, header: bool = True) -> pd.DataFrame:
    """Parse and type a TabFormer file with ``xd`` (cudf or pandas); _Unclean if it needs a report.

    ``path`` may also be a buffer of whole lines without the header line (``header=False``):
    one chunk of a file, as the Dask reader's tasks hold.
    """
    source = str(path) if isinstance(path, Path) else path
    raw = xd.read_csv(source, header=0 if header else None, names=list(PUBLISHED_COLUMNS),
                      dtype={c: "str" for c in PUBLISHED_COLUMNS},
                      keep_default_na=False, na_filter=False, skip_blank_lines=False)
    _require(len(raw) == expected_rows, f"{len(raw)} rows parsed, {expected_rows} lines")
    _require(not bool(raw.isna().any().any()), "missing fields")

    ints = {c: _ints(raw[c], c) for c in ("User", "Card", "Year", "Month", "Day", "Merchant Name", "MCC")}
    _require(_all(raw["Time"].str.match(TIME_RE)), "Time")
    hour = raw["Time"].str.slice(0, 2).astype("int64")
    minute = raw["Time"].str.slice(3, 5).astype("int64")
    ts, no_such_day = timestamps(*(_host(v) for v in (ints["Year"], ints["Month"], ints["Day"],
                                                       hour, minute)))
    _require(not no_such_day.any(), "Day")

    amount = raw["Amount"]
    _require(_all(amount.str.match(AMOUNT_RE)), "Amount")
    # integer cents, then one IEEE division: exactly the double nearest the decimal text
    cents = amount.str.replace("$", "", regex=False).str.replace(".", "", regex=False).astype("int64")

    chip = raw["Use Chip"]
    _require(_all(chip.isin(list(USE_CHIP))), "Use Chip")
    codes = sum((chip == value).astype("int8") * i for i, value in enumerate(USE_CHIP))

    _require(_all(raw["Merchant City"] != ""), "Merchant City")
    zip_text = raw["Zip"]
    _require(_all(zip_text.str.match(ZIP_RE)), "Zip")
    zip_missing = zip_text == ""
    zip_values = zip_text.where(~zip_missing, "0").str.replace(".0", "", regex=False).astype("int64")
    _require(_all(zip_values <= 2**31 - 1), "Zip")
    _require(_all(raw["Is Fraud?"].isin(["No", "Yes"])), "Is Fraud?")

    def nullable(column: str) -> pa.Array:
        values = _host_strings(raw[column])
        return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)

    parts = {
        "user": _host(ints["User"]), "card": _host(ints["Card"]), "timestamp": ts,
        "amount": _host(cents).astype(np.float64) / 100.0, "use_chip": _host(codes).astype(np.int8),
        "merchant_name": _host(ints["Merchant Name"]),
        "merchant_city": _host_strings(raw["Merchant City"]),
        "merchant_state": nullable("Merchant State"),
        "zip": (_host(zip_values), _host(zip_missing).astype(bool)), "mcc": _host(ints["MCC"]),
        "errors": nullable("Errors?"), "is_fraud": _host(raw["Is Fraud?"] == "Yes").astype(bool),
    }
    return assemble(parts)


def read_lines_cudf(data: bytes, n_lines: int, xd: ModuleType | None = None) -> pd.DataFrame | None:
    """The typed table of ``n_lines`` whole data lines (no header) parsed on the GPU, or None when the
    CPU path must read them (a bad field, any failure): the chunk version of ``read_tabformer_cudf``."""
    try:
        if xd is None:
            import cudf as xd  # noqa: PLC0415 - optional extra
        return read_clean(xd, io.BytesIO(data), n_lines, header=False)
    except _Unclean as exc:
        log.info("a chunk needs the CPU reader's report (%s)", exc)
    except Exception as exc:  # parser errors, device memory, driver: the CPU path decides
        log.warning("cuDF read of a chunk failed (%s: %s); reading it on the CPU", type(exc).__name__, exc)
    return None


def read_tabformer_cudf(path: Path, xd: ModuleType | None = None) -> pd.DataFrame | None:
    """The typed table read on the GPU, or None when the CPU path must read this file.

    The header, empty-file and missing-file checks are the caller's (``open_checked``).
    """
    try:
        if xd is None:
            import cudf as xd  # noqa: PLC0415 - optional extra
        return read_clean(xd, path, count_data_lines(path))
    except _Unclean as exc:
        log.info("%s: needs the CPU reader's report (%s); reading on the CPU", path, exc)
    except Exception as exc:  # parser errors, device memory, driver: the CPU path decides
        log.warning("%s: cuDF read failed (%s: %s); reading on the CPU", path, type(exc).__name__, exc)
    return None
