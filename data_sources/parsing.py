"""Turn the CSV layouts seen in the wild into one clean, sorted, date-indexed series.

Accepted layouts: FRED downloads (``observation_date,DGS10`` or ``DATE,DGS10``,
``.`` or empty for missing), Stooq/Yahoo OHLCV (``Date,Open,High,Low,Close,Volume``:
the close is taken), CBOE's history (``DATE,OPEN,HIGH,LOW,CLOSE`` with US-style
dates), plain ``date,value``, and the European forms of all of them.

A file is read exactly as meant, or refused with one line naming the file, the
line (counted in the file, header and ``#`` lines included) and the option that
settles it (``ReadOptions``: the mapping file's keys, or the CLI's flags):

- the delimiter (comma, semicolon, tab) is sniffed from the first lines;
- decimal commas (``2002,52`` in a semicolon file, or quoted in a comma file) are
  detected from cells that can only be read one way; a file that mixes decimal
  commas and points, or whose only commas could be thousands separators or
  decimals alike (``1,234``), is refused (``decimal:``);
- day-first dates are inferred from a day above 12 in the first field; a file whose
  dates read both ways (no field above 12 anywhere) is refused (``dayfirst:`` or
  ``date_format:``); ISO dates are never ambiguous;
- ``inf``, years before 1800 or after next year, and time zones mixed within a
  column are refused, as are text in a numeric column, a duplicated date and a
  date in the future;
- ``screen_series`` refuses weekend rows of a daily market series (or rolls or drops
  them when asked: ``weekend_rows:``) and values whose change is beyond
  ``OUTLIER_BOUND`` robust standard deviations of the series' changes
  (``accept_outliers:``).

A path that is not a readable file (a folder, a pipe, no permission) is an error
naming it, never a traceback.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_sources.errors import DataError

MISSING_MARKERS = {"", ".", "NA", "N/A", "#N/A", "#N/A N/A", "NaN", "nan", "null", "NULL", "None", "-"}
_DATE_NAMES = ("date", "observation_date", "timestamp", "time", "day", "dates", "period")
_VALUE_NAMES = ("close", "adj close", "adj_close", "value", "price", "px_last", "last")
# A UTC offset after a time of day: 'T00:00:00Z', ' 09:30+01:00', 'T00:00-0500'.
_TZ_SUFFIX = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
# Day and month as numbers, then the year: 02/01/2020, 2.1.20, 02-01-2020 (a time may follow).
_NUMERIC_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})(?:$|[\sT])")
FIRST_YEAR = 1800
OUTLIER_BOUND = 50.0  # robust standard deviations of a series' changes
_OUTLIER_WINDOW = 501  # observations in the local scale's centred window
_MIN_CHANGES = 20  # fewer changes than this: no outlier screen (no scale to measure against)
# The NYSE traded on Saturdays until May 1952: those rows are real sessions, not weekend rows.
SATURDAY_SESSIONS_UNTIL = pd.Timestamp("1952-06-01")
WEEKEND_POLICIES = ("error", "roll", "drop")
_DELIMITERS = {",": ",", ";": ";", "\t": "\t", "comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t"}
_OPTION_HINT = {
    "dayfirst": "pass --dayfirst or --monthfirst, or set 'dayfirst: true' (or false) or 'date_format: \"%d/%m/%Y\"' in the mapping file",
    "decimal": "pass --decimal ',' (or '.'), or set 'decimal: \",\"' in the mapping file",
    "accept_outliers": "fix the value, or pass --accept-outliers or set 'accept_outliers: true' in the mapping file",
    "weekend_rows": "pass --weekend-rows roll (to the next weekday) or drop, or set 'weekend_rows: roll' in the mapping file",
}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file where it cannot tell by itself; ``None`` everywhere: detect (the default).

    Attributes
    ----------
    dayfirst : ``True`` for 02/01/2020 = 2 January, ``False`` for 1 February; ``None``: infer.
    date_format : a ``strftime`` format for the date column (e.g. ``"%d/%m/%Y"``); overrides ``dayfirst``.
    decimal : ``","`` or ``"."``; ``None``: detect.
    delimiter : ``","``, ``";"`` or ``"\\t"`` (or ``comma``, ``semicolon``, ``tab``); ``None``: sniff.
    accept_outliers : keep values beyond ``OUTLIER_BOUND`` robust standard deviations of the changes.
    weekend_rows : rows of a daily market series dated on a Saturday or Sunday: ``error``
        (default), ``roll`` (to the next weekday; a row of that weekday's own wins, being newer)
        or ``drop``.

    Set in a mapping file (at the top for every file, or in a series entry for one) or on
    the command line (``--dayfirst``, ``--date-format``, ``--decimal``, ``--delimiter``,
    ``--accept-outliers``, ``--weekend-rows``); an entry's own setting wins.
    """

    dayfirst: bool | None = None
    date_format: str | None = None
    decimal: str | None = None
    delimiter: str | None = None
    accept_outliers: bool | None = None
    weekend_rows: str | None = None

    def __post_init__(self) -> None:
        if self.dayfirst is not None and not isinstance(self.dayfirst, bool):
            raise DataError(f"dayfirst must be true or false, got {self.dayfirst!r}")
        if self.accept_outliers is not None and not isinstance(self.accept_outliers, bool):
            raise DataError(f"accept_outliers must be true or false, got {self.accept_outliers!r}")
        if self.date_format is not None and (not isinstance(self.date_format, str) or "%" not in self.date_format):
            raise DataError(f"date_format must be a strftime format such as '%d/%m/%Y', got {self.date_format!r}")
        if self.decimal not in (None, ",", "."):
            raise DataError(f"decimal must be ',' or '.', got {self.decimal!r}")
        if self.delimiter is not None:
            if self.delimiter not in _DELIMITERS:
                raise DataError(f"delimiter must be ',', ';' or a tab (comma, semicolon, tab), got {self.delimiter!r}")
            object.__setattr__(self, "delimiter", _DELIMITERS[self.delimiter])
        if self.weekend_rows not in (None, *WEEKEND_POLICIES):
            raise DataError(f"weekend_rows must be one of {', '.join(WEEKEND_POLICIES)}, got {self.weekend_rows!r}")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The option names, as mapping-file keys."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def updated(self, settings: dict | None, where: str = "") -> ReadOptions:
        """These options with ``settings``' non-``None`` values on top (a mapping entry, CLI flags).

        An unknown key or a bad value is a ``DataError`` prefixed with ``where``.
        """
        if not settings:
            return self
        unknown = set(settings) - set(self.keys())
        if unknown:
            raise DataError(f"{where}unknown read option(s) {', '.join(sorted(unknown))} (allowed: {', '.join(self.keys())})")
        given = {k: v for k, v in settings.items() if v is not None}
        try:
            return dataclasses.replace(self, **given)
        except DataError as exc:
            raise DataError(f"{where}{exc}") from None


DEFAULT_READ = ReadOptions()


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


def _head_lines(source: str | os.PathLike | bytes, count: int = 64) -> list[str]:
    """The first ``count`` lines of a file or body (decoded leniently), without line ends."""
    if isinstance(source, bytes):
        return source[:65536].decode("utf-8", "replace").splitlines()[:count]
    with open(source, encoding="utf-8", errors="replace", newline="") as fh:
        return [fh.readline().rstrip("\r\n") for _ in range(count)]


def _leading_comments(lines: list[str]) -> int:
    """How many leading lines start with '#' (metadata lines such as our panel marker)."""
    count = 0
    for line in lines:
        if not line.startswith("#"):
            break
        count += 1
    return count


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter (tab, ';' or ',') that splits the header and the first data lines into the same number (>1) of fields.

    ``lines``: the header first, no comment lines. Quotes are honoured (``"2002,52"`` is one field).
    Falls back to ',' when none does (a one-column file, refused later with a message about its columns).
    """
    lines = [line for line in lines if line.strip()][:32]
    for delim in ("\t", ";", ","):
        counts = {len(row) for row in csv.reader(lines, delimiter=delim)}
        if len(counts) == 1 and counts.pop() > 1:
            return delim
    return ","


def read_csv_text(
    source: str | os.PathLike | bytes, origin: str, options: ReadOptions = DEFAULT_READ
) -> pd.DataFrame:
    """Read CSV (a path or the bytes of an HTTP body) with every cell as a string.

    The frame's index is each row's line number in the file (named ``line``; the header
    and leading ``#`` lines are counted, blank lines are skipped but counted), so every
    later error can name the line a person would open the file at.
    """
    try:
        if isinstance(source, bytes):
            buf: object = io.BytesIO(source)
        else:
            buf = check_data_file(source, origin)
        head = _head_lines(source)
        skip = _leading_comments(head)
        delimiter = options.delimiter or sniff_delimiter(head[skip:])
        frame = pd.read_csv(
            buf, sep=delimiter, dtype=str, keep_default_na=False, skipinitialspace=True, skiprows=skip,
            skip_blank_lines=False,
        )
    except OSError as exc:  # permission denied, an I/O error, the file replaced by a folder meanwhile
        raise unreadable(source, origin, exc) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{origin}: empty file (no header and no rows)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{origin}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise DataError(f"{origin}: not a text CSV file (could not decode it as UTF-8)") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(skip + 2, skip + 2 + len(frame), name="line")
    frame = frame.fillna("")
    if len(frame):
        blank = (frame.iloc[:, 0] == "").to_numpy(copy=True)
        if blank.any():  # blank lines (kept so the line numbers count them): drop them now
            blank[blank] = (frame[blank] == "").all(axis=1).to_numpy()
            frame = frame[~blank]
    if frame.empty:
        raise DataError(f"{origin}: no data rows (only a header: {', '.join(frame.columns)})")
    return frame


def _where(raw: pd.Series, i: int) -> str:
    """'line N' (or 'row N') of the ``i``-th cell of ``raw``: the file line when ``raw`` is indexed by it."""
    kind = raw.index.name if raw.index.name in ("line", "row") else None
    if kind is None:
        return f"line {i + 2}"
    return f"{kind} {raw.index[i]}"


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
    sample = frame[first].head(20).astype(str).str.strip()
    if len(sample) and (sample.str.match(_NUMERIC_DMY) | pd.to_datetime(sample, errors="coerce", format="mixed").notna()).all():
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


# -- dates -----------------------------------------------------------------------------------
def _check_zones(text: pd.Series, raw: pd.Series, origin: str) -> None:
    """One time zone (or none) for the whole column; else an error naming the first line that differs."""
    if not text.str.contains(":", regex=False).any():
        return
    zones = [_zone(cell) for cell in text]
    first = zones[0]
    for i, zone in enumerate(zones):
        if zone != first:
            shown = lambda z: z or "no time zone"  # noqa: E731
            raise DataError(
                f"{origin}: {_where(raw, i)}: {text.iloc[i]!r} has time zone {shown(zone)}, "
                f"{_where(raw, 0)} has {shown(first)}; use one time zone (or plain dates) for the whole column"
            )


def _numeric_dmy(text: pd.Series, raw: pd.Series, origin: str, options: ReadOptions) -> pd.Series:
    """Dates written as numbers day/month/year or month/day/year: the order inferred or given, else refused."""
    parts = text.str.extract(_NUMERIC_DMY).astype(np.int64)
    first, second, year = parts[0].to_numpy(), parts[1].to_numpy(), parts[2].to_numpy()
    year = np.where(year < 100, np.where(year <= 68, 2000 + year, 1900 + year), year)  # POSIX %y
    day_first = first > 12
    month_first = second > 12
    shown = lambda k: f"{_where(raw, k)}: {raw.iloc[k]!r}"  # noqa: E731
    pos = raw.index.get_indexer(text.index)  # ``text`` is a subset of ``raw``: positions in ``raw``, for the messages

    def at(mask: np.ndarray) -> int:
        return int(pos[int(np.argmax(mask))])

    if day_first.any() and month_first.any():
        raise DataError(
            f"{origin}: dates are written both day first ({shown(at(day_first))}) and month first "
            f"({shown(at(month_first))}); use one order, or set 'date_format:' in the mapping file"
        )
    if day_first.any():
        if options.dayfirst is False:
            raise DataError(f"{origin}: {shown(at(day_first))} is day first, but month first was asked for (dayfirst: false)")
        dayfirst = True
    elif month_first.any():
        if options.dayfirst is True:
            raise DataError(f"{origin}: {shown(at(month_first))} is month first, but day first was asked for (dayfirst: true)")
        dayfirst = False
    elif options.dayfirst is not None:
        dayfirst = options.dayfirst
    elif (first != second).any():
        k = at(first != second)
        raise DataError(
            f"{origin}: {shown(k)} could be day first or month first and no date in the file has a day above 12; "
            + _OPTION_HINT["dayfirst"]
        )
    else:
        dayfirst = False  # every date has day == month: both orders read the same
    day, month = (first, second) if dayfirst else (second, first)
    stamp = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce")
    return pd.Series(stamp.to_numpy(), index=text.index)


def parse_dates(
    raw: pd.Series, origin: str, options: ReadOptions = DEFAULT_READ, today: pd.Timestamp | None = None
) -> pd.DatetimeIndex:
    """Parse a column of date strings to midnight ``datetime64[ns]`` (see module doc for what is refused).

    ISO dates (and compact ``YYYYMMDD``) first; numeric day/month/year dates in the order the
    data shows (or ``options.dayfirst``); anything else pandas reads unambiguously (``2 Jan 2020``).
    ``raw`` is indexed by file line (``read_csv_text``) so errors name the line.
    """
    text = raw.astype(str).str.strip()
    _check_zones(text, raw, origin)
    try:
        if options.date_format is not None:
            dates = pd.Series(pd.to_datetime(text, errors="coerce", format=options.date_format), index=raw.index)
            bad = dates.isna().to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                raise DataError(f"{origin}: {_where(raw, i)}: {raw.iloc[i]!r} does not match date_format {options.date_format!r}")
        else:
            dates = pd.Series(pd.to_datetime(text, errors="coerce", format="ISO8601"), index=raw.index)
            rest = dates.isna().to_numpy()
            if rest.any():
                numeric = rest & text.str.match(_NUMERIC_DMY).to_numpy()
                if numeric.any():
                    dates = dates.fillna(_numeric_dmy(text[numeric], raw, origin, options))
                other = rest & ~numeric
                if other.any():  # month names and the like: one reading only
                    dates = dates.fillna(pd.Series(pd.to_datetime(text[other], errors="coerce", format="mixed"), index=text.index[other]))
    except (ValueError, TypeError, OverflowError) as exc:  # out-of-bounds dates, mostly
        raise DataError(f"{origin}: the date column cannot be read ({' '.join(str(exc).split())[:160]})") from None
    bad = dates.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{origin}: {_where(raw, i)}: {raw.iloc[i]!r} is not a date")
    index = pd.DatetimeIndex(dates)
    if index.tz is not None:
        index = index.tz_localize(None)
    days = to_days(index)
    today = (today or pd.Timestamp.today()).normalize()
    years = days.year.to_numpy()
    late = years > today.year + 1  # (a date just past today is clean_series' error, with its line)
    if late.any():
        i = int(np.argmax(late))
        raise DataError(
            f"{origin}: {_where(raw, i)}: {days[i].date()} is in the future (today is {today.date()}); "
            "check the file's dates (a typo, or a date format read wrong: set 'date_format:' in the mapping file)"
        )
    wrong = years < FIRST_YEAR
    if wrong.any():
        i = int(np.argmax(wrong))
        raise DataError(
            f"{origin}: {_where(raw, i)}: {raw.iloc[i]!r} is in year {years[i]}; years before {FIRST_YEAR} "
            f"are refused (a typo, or a date format read wrong: set 'date_format:' in the mapping file)"
        )
    return days


# -- numbers ---------------------------------------------------------------------------------
_THOUSANDS_COMMA = r"[+-]?\d{1,3}(?:,\d{3})+"
_THOUSANDS_DOT = r"[+-]?\d{1,3}(?:\.\d{3})+"
_COMMA_DECIMAL = re.compile(rf"^(?:[+-]?\d*,\d+|{_THOUSANDS_DOT},\d+)$")  # 2002,52  ,5  1.234,56
_POINT_DECIMAL = re.compile(rf"^(?:[+-]?\d*\.\d+(?:[eE][+-]?\d+)?|{_THOUSANDS_COMMA}\.\d+)$")  # 2002.52  1,234.56
_AMBIGUOUS_COMMA = re.compile(rf"^{_THOUSANDS_COMMA}$")  # 1,234: thousands, or 1.234
_AMBIGUOUS_DOT = re.compile(rf"^{_THOUSANDS_DOT}$")  # 1.234: 1.234, or thousands in a decimal-comma file


def detect_decimal(cells: dict[str, pd.Series], origin: str, options: ReadOptions = DEFAULT_READ) -> str:
    """The decimal separator of a file's numeric cells (``{column: cells}``, indexed by line): ',' or '.'.

    Only cells that can be read one way count: ``2002,52`` (comma) or ``2002.52``
    (point). Both kinds in one file, or only ``1,234``-like cells, is a ``DataError``
    naming a line of each and the ``decimal`` option.
    """
    if options.decimal is not None:
        return options.decimal
    comma_at = point_at = ambiguous_at = None
    for column, raw in cells.items():
        text = raw.astype(str).str.strip()
        has_comma = text.str.contains(",", regex=False)
        if not has_comma.any():
            continue
        if comma_at is None:
            hit = has_comma & text.str.match(_COMMA_DECIMAL) & ~text.str.match(_AMBIGUOUS_COMMA)
            if hit.any():
                comma_at = (column, raw, int(np.argmax(hit.to_numpy())))
        if ambiguous_at is None:
            hit = has_comma & text.str.match(_AMBIGUOUS_COMMA)
            if hit.any():
                ambiguous_at = (column, raw, int(np.argmax(hit.to_numpy())))
    if comma_at is None and ambiguous_at is None:
        return "."  # no commas in any number
    for column, raw in cells.items():  # decimal points somewhere else in the file?
        text = raw.astype(str).str.strip()
        hit = text.str.contains(".", regex=False) & text.str.match(_POINT_DECIMAL) & ~text.str.match(_AMBIGUOUS_DOT)
        if hit.any():
            point_at = (column, raw, int(np.argmax(hit.to_numpy())))
            break
    cite = lambda at: f"{_where(at[1], at[2])}, column {at[0]!r}: {at[1].iloc[at[2]]!r}"  # noqa: E731
    if comma_at is not None and point_at is not None:
        raise DataError(
            f"{origin}: numbers use both a decimal comma ({cite(comma_at)}) and a decimal point ({cite(point_at)}); "
            + _OPTION_HINT["decimal"]
        )
    if comma_at is not None:
        return ","
    if point_at is not None:
        return "."  # the commas are thousands separators
    raise DataError(
        f"{origin}: {cite(ambiguous_at)} could be a decimal comma or a thousands separator and no other number "
        "tells which; " + _OPTION_HINT["decimal"]
    )


def parse_numbers(
    raw: pd.Series, origin: str, column: str, sentinel: float | None = None, decimal: str | None = None
) -> np.ndarray:
    """Parse numeric strings; missing markers and the sentinel become NaN; text and ``inf`` are errors naming the line.

    ``decimal``: ',' or '.' (``detect_decimal`` for a whole file); ``None`` detects it from this column.
    """
    text = raw.astype(str).str.strip()
    if decimal is None:
        decimal = detect_decimal({column: raw}, origin)
    if decimal == ",":
        thousands = text.str.match(_AMBIGUOUS_DOT) | text.str.match(_COMMA_DECIMAL)
        cleaned = text.where(~thousands, text.str.replace(".", "", regex=False)).str.replace(",", ".", regex=False)
    elif text.str.contains(",", regex=False).any():
        grouped = text.str.match(_AMBIGUOUS_COMMA) | text.str.match(_POINT_DECIMAL)
        cleaned = text.where(~grouped, text.str.replace(",", "", regex=False))
    else:
        cleaned = text
    missing = text.isin(MISSING_MARKERS).to_numpy()
    values = pd.to_numeric(cleaned.where(~missing), errors="coerce").to_numpy(dtype=np.float64, copy=True)
    bad = np.isnan(values) & ~missing
    if bad.any():
        i = int(np.argmax(bad))
        hint = " with a decimal comma" if decimal == "," else ""
        raise DataError(
            f"{origin}: {_where(raw, i)}, column {column!r}: {raw.iloc[i]!r} is not a number{hint} "
            "(use '.' or an empty cell for a missing value)"
        )
    infinite = np.isinf(values)
    if infinite.any():
        i = int(np.argmax(infinite))
        raise DataError(
            f"{origin}: {_where(raw, i)}, column {column!r}: {raw.iloc[i]!r} is not a finite number "
            "(use '.' or an empty cell for a missing value)"
        )
    if sentinel is not None:
        values[np.isclose(values, sentinel, rtol=1e-9, atol=0.0)] = np.nan
    return values


# -- series ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesChecks:
    """What ``screen_series`` checks for one series (``of(spec)`` from its catalog entry).

    weekends : refuse Saturday/Sunday rows (a daily market series; ``weekend_rows`` says otherwise).
    log_changes : measure changes in logs (prices, stocks, positive levels) rather than differences.
    positive : a declared-positive level (VIX, unemployment): zero or below is an error.
    """

    weekends: bool = False
    log_changes: bool = False
    positive: bool = False

    @classmethod
    def of(cls, spec) -> SeriesChecks:
        """The checks for a ``catalog.SeriesSpec`` (or anything with its frequency, group, transform, positive)."""
        positive = bool(getattr(spec, "positive", False))
        return cls(
            weekends=spec.frequency == "D" and spec.group == "market",
            log_changes=spec.transform == "log_return" or positive,
            positive=positive,
        )


def _clean(
    dates: pd.DatetimeIndex, values: np.ndarray, name: str, origin: str, today: pd.Timestamp | None, lines
) -> tuple[pd.Series, np.ndarray | None, str]:
    """``clean_series`` plus each kept row's file line (int64, aligned with the series) and the word for it."""
    series = pd.Series(values, index=pd.DatetimeIndex(dates, name="date"), name=name, dtype=np.float64)
    line_no = np.asarray(lines, dtype=np.int64) if lines is not None else None
    label = lines.name if lines is not None and getattr(lines, "name", None) in ("line", "row") else "line"

    def at(k) -> str:
        return f" ({label} {line_no[k]})" if line_no is not None else ""

    dup = series.index.duplicated(keep=False)
    if dup.any():
        where = np.flatnonzero(dup)
        first = series.index[where[0]]
        same = where[series.index[where] == first]
        shown = f" ({label}s {', '.join(str(line_no[k]) for k in same[:3])})" if line_no is not None else ""
        raise DataError(f"{origin}: date {first.date()} appears more than once{shown}; keep one row per date")
    order = np.argsort(series.index.to_numpy(), kind="stable")
    if len(order) and not (order[1:] > order[:-1]).all():
        series = series.iloc[order]
        line_no = line_no[order] if line_no is not None else None
    today = (today or pd.Timestamp.today()).normalize()
    if len(series) and series.index[-1] > today:
        k = int(np.argmax(series.index > today))
        raise DataError(
            f"{origin}: date {series.index[k].date()}{at(k)} is in the future (today is {today.date()}); check the file's dates"
        )
    keep = ~np.isnan(series.to_numpy())
    if not keep.all():
        series = series[keep]
        line_no = line_no[keep] if line_no is not None else None
    return series, line_no, label


def clean_series(
    dates: pd.DatetimeIndex,
    values: np.ndarray,
    name: str,
    origin: str,
    today: pd.Timestamp | None = None,
    *,
    lines: pd.Index | None = None,
    options: ReadOptions = DEFAULT_READ,
    checks: SeriesChecks | None = None,
) -> pd.Series:
    """Sort by date, refuse duplicated and future dates, keep NaN (missing) rows out; then ``screen_series`` if ``checks``.

    Returns a float64 series named ``name`` indexed by ``date`` (ascending). ``lines``: each
    row's file line (``read_csv_text``'s index), named in the errors.
    """
    series, line_no, label = _clean(dates, values, name, origin, today, lines)
    if checks is None:
        return series
    return screen_series(series, origin, options, checks, lines=line_no, line_label=label)


def screen_series(
    series: pd.Series,
    origin: str,
    options: ReadOptions = DEFAULT_READ,
    checks: SeriesChecks = SeriesChecks(),
    *,
    lines: np.ndarray | None = None,
    line_label: str = "line",
) -> pd.Series:
    """Refuse (or, as ``options`` say, roll or drop) what would corrupt a series without an error.

    ``series``: ascending dates, no NaN. ``lines``: each value's file line, for the messages.
    Refuses a non-positive value of a positive series, weekend rows (``checks.weekends``;
    ``options.weekend_rows``) and outliers (``options.accept_outliers``). Returns the series,
    with weekend rows rolled or dropped when asked.
    """

    def where(k: int) -> str:
        return f"{line_label} {lines[k]} " if lines is not None else ""

    values = series.to_numpy()
    if checks.positive and len(values) and (values <= 0).any():
        k = int(np.argmax(values <= 0))
        raise DataError(
            f"{origin}: {where(k)}({series.index[k].date()}): {values[k]:g} is not positive, but "
            f"{series.name} is declared positive; fix the value, or leave the cell empty for a missing one"
        )
    if checks.weekends:
        series, lines = _weekend_rows(series, lines, origin, options.weekend_rows or "error", where)
    if not options.accept_outliers:
        _check_outliers(series, origin, checks.log_changes, where)
    return series


def _weekend_rows(series: pd.Series, lines, origin: str, policy: str, where) -> tuple[pd.Series, np.ndarray | None]:
    index = series.index
    weekday = index.day_of_week.to_numpy()
    weekend = (weekday >= 5) & ~((weekday == 5) & (index < SATURDAY_SESSIONS_UNTIL))
    if not weekend.any():
        return series, lines
    if policy == "error":
        k = int(np.argmax(weekend))
        raise DataError(
            f"{origin}: {where(k)}is dated {index[k].date()}, a {index[k].day_name()} "
            f"({int(weekend.sum())} row(s) of this daily market series are on weekends); " + _OPTION_HINT["weekend_rows"]
        )
    if policy == "drop":
        return series[~weekend], (lines[~weekend] if lines is not None else None)
    # roll: a weekend row moves to the following Monday; a Monday's own row, being newer, wins over it
    shifted = index.to_numpy().copy()
    shifted[weekend] = (index[weekend] + pd.to_timedelta(7 - weekday[weekend], unit="D")).to_numpy()
    newer_first = np.where(weekend, 0, 1)
    order = np.lexsort((np.arange(len(shifted)), newer_first, shifted))  # by day, then rolled before own, then file order
    rolled = pd.Series(series.to_numpy()[order], index=pd.DatetimeIndex(shifted[order], name="date"), name=series.name)
    keep = ~rolled.index.duplicated(keep="last")
    return rolled[keep], (np.asarray(lines)[order][keep] if lines is not None else None)


def _check_outliers(series: pd.Series, origin: str, log_changes: bool, where) -> None:
    """A value whose change from the previous one is beyond ``OUTLIER_BOUND`` robust standard deviations is an error.

    The scale is 1.4826 x the median absolute non-zero change (a robust standard deviation),
    over the whole series or, where larger, over a centred window of ``_OUTLIER_WINDOW``
    observations (so a volatile era is measured against itself). Zero changes do not count
    (a forward-filled or step series would have no scale). In logs, pairs with a value
    at or below zero are skipped.
    """
    values = series.to_numpy()
    if len(values) <= _MIN_CHANGES:
        return
    if log_changes:
        with np.errstate(divide="ignore", invalid="ignore"):
            levels = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
    else:
        levels = values
    with np.errstate(invalid="ignore", over="ignore"):
        change = np.abs(np.diff(levels))
    moving = np.where(change > 0, change, np.nan)
    if np.count_nonzero(np.isfinite(moving)) < _MIN_CHANGES:
        return
    overall = 1.4826 * np.nanmedian(moving[np.isfinite(moving)])
    with np.errstate(invalid="ignore", over="ignore"):
        z = change / overall
    candidates = np.flatnonzero(z > OUTLIER_BOUND)
    if not len(candidates):
        return
    # The local scale only where the overall one flags a change (rare): a centred window's median.
    half = _OUTLIER_WINDOW // 2
    for k in candidates:
        window = moving[max(0, k - half) : k + half + 1]
        local = 1.4826 * np.nanmedian(window[np.isfinite(window)]) if np.isfinite(window).any() else overall
        z[k] = change[k] / max(overall, local)
    far = z > OUTLIER_BOUND
    if not far.any():
        return
    k = int(np.argmax(far))
    i = k + 1  # the value whose change it is
    raise DataError(
        f"{origin}: {where(i)}({series.index[i].date()}): {values[i]:.6g} is an outlier, its change from "
        f"{values[k]:.6g} ({series.index[k].date()}) is {z[k]:.3g} robust standard deviations of the series' "
        f"changes (bound {OUTLIER_BOUND:g}); " + _OPTION_HINT["accept_outliers"]
    )


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
    options: ReadOptions = DEFAULT_READ,
    checks: SeriesChecks | None = None,
) -> pd.Series:
    """One series from a CSV file or HTTP body, cleaned and, with ``checks``, screened (see module doc)."""
    frame = read_csv_text(source, origin, options)
    dcol = find_date_column(frame, origin, date_col)
    vcol = find_value_column(frame, dcol, origin, value_col, series_id)
    dates = parse_dates(frame[dcol], origin, options, today)
    values = parse_numbers(frame[vcol], origin, vcol, sentinel, detect_decimal({vcol: frame[vcol]}, origin, options))
    return clean_series(dates, values, name, origin, today, lines=frame.index, options=options, checks=checks)
