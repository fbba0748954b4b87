"""Turn the CSV layouts seen in the wild into one clean, sorted, date-indexed series.

Accepted layouts: FRED downloads (``observation_date,DGS10`` or ``DATE,DGS10``,
``.`` or empty for missing), Stooq/Yahoo OHLCV (``Date,Open,High,Low,Close,Volume``:
the close is taken), CBOE's history (``DATE,OPEN,HIGH,LOW,CLOSE`` with US-style
dates), and plain ``date,value``. Rows in any date order are sorted. Everything
that would silently corrupt a panel is an error naming the file and the row:
no date column, text in a numeric column, a duplicated date, a date in the future,
dates with different time zones. A path that is not a readable file (a folder, a
pipe, no permission) is an error naming it, never a traceback.
"""
from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd

from data_sources.errors import DataError

MISSING_MARKERS = {"", ".", "NA", "N/A", "#N/A", "#N/A N/A", "NaN", "nan", "null", "NULL", "None", "-"}
_DATE_NAMES = ("date", "observation_date", "timestamp", "time", "day", "dates", "period")
_VALUE_NAMES = ("close", "adj close", "adj_close", "value", "price", "px_last", "last")
# A UTC offset after a time of day: 'T00:00:00Z', ' 09:30+01:00', 'T00:00-0500'.
_TZ_SUFFIX = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


def _zone(cell: str) -> str:
    """The UTC offset a date string names, as '+HH:MM' ('' for none)."""
    match = _TZ_SUFFIX.search(cell)
    if not match:
        return ""
    zone = match.group(1).upper()
    if zone in ("Z", "UTC"):
        return "+00:00"
    digits = zone[1:].replace(":", "")
    return f"{zone[0]}{digits[:2]}:{digits[2:4] or '00'}"


def check_data_file(path: str | os.PathLike, origin: str | None = None, what: str = "file") -> Path:
    """``path`` if it is a non-empty regular file; else a ``DataError`` naming it (a folder, a pipe, missing...).

    ``origin`` prefixes the message (e.g. the series and mapping it came from); ``what``
    names the kind of file in the message ("file", "panel file", "mapping file").
    """
    path = Path(path)
    where = f"{origin}: " if origin else ""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{where}{what} not found: {path}") from None
    except NotADirectoryError:
        raise DataError(f"{where}{what} not found: {path} (a folder in the path is a file)") from None
    except OSError as exc:
        raise DataError(f"{where}cannot open {what} {path} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{where}{what} {path} is a folder, not a file; name the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{where}{what} {path} is not a regular file (a device or pipe); copy the data to a file")
    if st.st_size == 0:
        raise DataError(f"{where}{what} is empty: {path}")
    return path


def unreadable(path: str | os.PathLike, origin: str | None, exc: OSError) -> DataError:
    """The one-line error for an ``OSError`` raised while reading ``path`` (permission denied, I/O error)."""
    where = f"{origin}: " if origin else ""
    return DataError(f"{where}cannot read {path} ({exc.strerror or type(exc).__name__})")


def _leading_comment_lines(source: str | os.PathLike | bytes) -> int:
    """How many leading lines start with '#' (metadata lines such as our panel marker)."""
    if isinstance(source, bytes):
        lines = source[:4096].decode("utf-8", "replace").splitlines()
    else:
        with open(source, encoding="utf-8", errors="replace") as fh:
            lines = [fh.readline() for _ in range(8)]
    count = 0
    for line in lines:
        if not line.startswith("#"):
            break
        count += 1
    return count


def read_csv_text(source: str | os.PathLike | bytes, origin: str) -> pd.DataFrame:
    """Read CSV (a path or the bytes of an HTTP body) with every cell as a string."""
    try:
        if isinstance(source, bytes):
            buf: object = io.BytesIO(source)
        else:
            buf = check_data_file(source, origin)
        skip = _leading_comment_lines(source)
        frame = pd.read_csv(buf, dtype=str, keep_default_na=False, skipinitialspace=True, skiprows=skip)
    except OSError as exc:  # permission denied, an I/O error, the file replaced by a folder meanwhile
        raise unreadable(source, origin, exc) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{origin}: empty file (no header and no rows)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{origin}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise DataError(f"{origin}: not a text CSV file (could not decode it as UTF-8)") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{origin}: no data rows (only a header: {', '.join(frame.columns)})")
    return frame


def find_date_column(frame: pd.DataFrame, origin: str, hint: str | None = None) -> str:
    """The date column: ``hint`` if given, else a conventionally named one, else the first column if it parses."""
    if hint is not None:
        if hint not in frame.columns:
            raise DataError(f"{origin}: date column {hint!r} not found (columns: {', '.join(frame.columns)})")
        return hint
    lowered = {c.lower(): c for c in frame.columns}
    for name in _DATE_NAMES:
        if name in lowered:
            return lowered[name]
    first = frame.columns[0]
    sample = frame[first].head(20)
    if len(sample) and pd.to_datetime(sample, errors="coerce", format="mixed").notna().all():
        return first
    raise DataError(
        f"{origin}: no recognisable date column (columns: {', '.join(frame.columns)}); "
        "name it 'date' or set 'date:' in the mapping file"
    )


def find_value_column(frame: pd.DataFrame, date_col: str, origin: str, hint: str | None, series_id: str | None) -> str:
    """The value column: ``hint``, else Close/value/price, else the series id, else the only other column."""
    if hint is not None:
        if hint not in frame.columns:
            raise DataError(f"{origin}: value column {hint!r} not found (columns: {', '.join(frame.columns)})")
        return hint
    others = [c for c in frame.columns if c != date_col]
    lowered = {c.lower(): c for c in others}
    for name in _VALUE_NAMES:
        if name in lowered:
            return lowered[name]
    if series_id is not None and series_id.lower() in lowered:
        return lowered[series_id.lower()]
    if len(others) == 1:
        return others[0]
    raise DataError(
        f"{origin}: cannot tell which column holds the values (columns: {', '.join(frame.columns)}); "
        "set 'value:' in the mapping file"
    )


def to_days(index) -> pd.DatetimeIndex:
    """Midnight of each date, as ``datetime64[ns]`` (numpy floor; pandas' normalize infers a frequency, slowly)."""
    days = np.asarray(index, dtype="datetime64[D]").astype("datetime64[ns]")
    return pd.DatetimeIndex(days, name=getattr(index, "name", None))


def parse_dates(raw: pd.Series, origin: str) -> pd.DatetimeIndex:
    """Parse a column of date strings (ISO, US ``MM/DD/YYYY``, ``YYYYMMDD``); a bad cell is an error naming its line."""
    text = raw.astype(str).str.strip()
    try:
        dates = pd.to_datetime(text, errors="coerce", format="ISO8601")
        if dates.isna().any():  # US-style (CBOE) or compact dates
            retry = pd.to_datetime(text[dates.isna()], errors="coerce", format="mixed")
            dates = dates.fillna(retry)
    except (ValueError, TypeError, OverflowError) as exc:  # mixed time zones, mostly
        raise _date_error(text, origin, exc) from None
    bad = dates.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{origin}: line {i + 2}: {raw.iloc[i]!r} is not a date")
    return to_days(pd.DatetimeIndex(dates).tz_localize(None))


def _date_error(text: pd.Series, origin: str, exc: Exception) -> DataError:
    """Name the first line whose time zone differs from the first date's (or say what pandas said)."""
    zones = [_zone(cell) for cell in text]
    first = zones[0] if zones else ""
    for i, zone in enumerate(zones):
        if zone != first:
            shown = lambda z: z or "no time zone"  # noqa: E731
            return DataError(
                f"{origin}: line {i + 2}: {text.iloc[i]!r} has time zone {shown(zone)}, line 2 has {shown(first)}; "
                "use one time zone (or plain dates) for the whole column"
            )
    return DataError(f"{origin}: the date column cannot be read ({' '.join(str(exc).split())[:160]})")


def parse_numbers(raw: pd.Series, origin: str, column: str, sentinel: float | None = None) -> np.ndarray:
    """Parse numeric strings; missing markers and the sentinel become NaN, text is an error naming its line."""
    text = raw.astype(str).str.strip().str.replace(",", "", regex=False)
    missing = text.isin(MISSING_MARKERS).to_numpy()
    values = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    bad = np.isnan(values) & ~missing
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{origin}: line {i + 2}, column {column!r}: {raw.iloc[i]!r} is not a number "
            "(use '.' or an empty cell for a missing value)"
        )
    if sentinel is not None:
        values[np.isclose(values, sentinel, rtol=1e-9, atol=0.0)] = np.nan
    return values


def clean_series(
    dates: pd.DatetimeIndex,
    values: np.ndarray,
    name: str,
    origin: str,
    today: pd.Timestamp | None = None,
) -> pd.Series:
    """Sort by date, refuse duplicated and future dates, keep NaN (missing) rows out.

    Returns a float64 series named ``name`` indexed by ``date`` (ascending).
    """
    series = pd.Series(values, index=pd.DatetimeIndex(dates, name="date"), name=name, dtype=np.float64)
    dup = series.index.duplicated(keep=False)
    if dup.any():
        first = series.index[dup][0]
        raise DataError(f"{origin}: date {first.date()} appears more than once; keep one row per date")
    series = series.sort_index(kind="stable")
    today = (today or pd.Timestamp.today()).normalize()
    if len(series) and series.index[-1] > today:
        future = series.index[series.index > today][0]
        raise DataError(f"{origin}: date {future.date()} is in the future (today is {today.date()}); check the file's dates")
    return series.dropna()


def read_series_csv(
    source: str | os.PathLike | bytes,
    name: str,
    origin: str,
    *,
    date_col: str | None = None,
    value_col: str | None = None,
    series_id: str | None = None,
    sentinel: float | None = None,
    today: pd.Timestamp | None = None,
) -> pd.Series:
    """One series from a CSV file or HTTP body, cleaned (see module doc)."""
    frame = read_csv_text(source, origin)
    dcol = find_date_column(frame, origin, date_col)
    vcol = find_value_column(frame, dcol, origin, value_col, series_id)
    dates = parse_dates(frame[dcol], origin)
    values = parse_numbers(frame[vcol], origin, vcol, sentinel)
    return clean_series(dates, values, name, origin, today)
