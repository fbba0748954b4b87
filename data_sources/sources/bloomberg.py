"""A Bloomberg export (a daily wide panel of tickers) as a point-in-time source.

What a Bloomberg BDH export looks like and what this source does about it:

- Columns are tickers (``SPX Index``, ``USGG10YR Index``, ``CPUPXYOY Index``, ``GDP CHWG Index``,
  with or without the yellow key). ``TICKERS`` maps them to catalog series; a description
  file (below) adds or overrides entries, and a ticker that is neither mapped nor a catalog
  name is refused with the YAML to add.
- Missing cells are ``-1E+09`` (Bloomberg's fill for "no value"), blank, ``#N/A N/A`` or
  ``.``: the sentinel is configurable (``sentinel:``; ``None`` turns it off).
- **Monthly and quarterly values sit on the period's own date**: January's CPI on
  2020-01-31, long before it was published in mid-February; when the export fills
  forward, every February day shows January's value. A model trained on that sees the
  future. This source reads each such column back to one value per period (the last
  value first stamped inside the period) and the panel puts it on the period's release
  date by the catalog's rule, so CPI appears on the 15th of the next month (rolled to a
  business day), never before; ``notes`` says which columns were moved.
- An export that is already release-stamped (each value on the day it was published:
  ``stamped: release``) keeps its dates as the release dates.

``--data export.csv`` recognises an export by its tickers. Options come from a
description file (``--data export.yaml``), recorded with a run like any data file::

    bloomberg: export.csv          # relative to this file
    sentinel: -1.0e9               # the "no value" fill (null: none)
    stamped: period                # period (Bloomberg's default) or release
    tickers: {MYTICK: MYSERIES}    # extra ticker -> series entries (MYSERIES in a catalog file)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from data_sources import catalog
from data_sources.errors import CatalogError, DataError
from data_sources.parsing import (DEFAULT_READ, ReadOptions, SeriesChecks, check_data_file, clean_series,
                                  detect_decimal, find_date_column, parse_dates, parse_numbers, read_csv_text)
from data_sources.sources.base import Source

#: Bloomberg ticker (without the yellow key) -> catalog series.
TICKERS: dict[str, str] = {
    "SPX": "SPX",
    "VIX": "VIX",
    "CPUPXYOY": "CORE_CPI_YOY",  # CPI urban consumers less food & energy, YoY
    "CPI XYOY": "CPI_YOY",
    "USGG3M": "UST3M",
    "USGG2YR": "UST2Y",
    "USGG5YR": "UST5Y",
    "USGG10YR": "UST10Y",
    "USCRWTIC": "WTI",
    "BCOM": "BCOM",
    "IBOXUMAE": "CDX_IG",  # Markit CDX NA IG 5y spread
    "GDP CHWG": "GDP",  # real GDP, chained dollars, SAAR
    "USURTOT": "UNRATE",
    "M2": "M2",
    "BSPGCPUS": "FED_BS_GDP",  # Fed balance sheet as % of GDP
    "S5INFT": "S5INFT",
    "S5FINL": "S5FINL",
    "S5INDU": "S5INDU",
    "S5CONS": "S5CONS",
    "S5RLST": "S5RLST",
    "S5UTIL": "S5UTIL",
}
YELLOW_KEYS = ("INDEX", "COMDTY", "CURNCY", "GOVT", "CORP", "EQUITY", "MTGE", "MUNI", "PFD")
DEFAULT_SENTINEL = -1e9
STAMPS = ("period", "release")
_DESCRIPTION_KEYS = {"bloomberg", "sentinel", "stamped", "tickers"}


def ticker_key(column: str) -> str:
    """``"CPUPXYOY Index"`` -> ``"CPUPXYOY"``: upper case, the yellow key and extra spaces removed."""
    words = str(column).upper().split()
    if len(words) > 1 and words[-1] in YELLOW_KEYS:
        words = words[:-1]
    return " ".join(words)


def is_bloomberg_export(path: str | Path) -> bool:
    """True when a wide file's columns are Bloomberg tickers (a mapped ticker that is not itself a
    catalog name, or a yellow key), so ``--data FILE`` reads it with this source. Only a regular
    file is looked into (a FIFO or device is left to the panel reader, which refuses it)."""
    if not Path(path).is_file():
        return False
    columns = _header(Path(path))
    for col in columns:
        words = str(col).upper().split()
        key = ticker_key(col)
        if (len(words) > 1 and words[-1] in YELLOW_KEYS) or (key in TICKERS and TICKERS[key] != key):
            return True
    return False


def is_bloomberg_description(path: str | Path) -> bool:
    """True for a YAML file with a top-level ``bloomberg:`` key (see module doc)."""
    if not Path(path).is_file():
        return False
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the mapping-file reader reports it
    return isinstance(doc, dict) and "bloomberg" in doc


def _header(path: Path) -> list[str]:
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        except Exception:  # not readable: the panel-file reader reports it
            return []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip() and not line.startswith("#"):
                    sep = max((",", ";", "\t"), key=line.count)
                    return [c.strip().strip('"') for c in line.rstrip("\r\n").split(sep)]
    except OSError:
        return []
    return []


class BloombergSource(Source):
    """A Bloomberg export file (see module doc).

    Parameters
    ----------
    path : CSV or Parquet file, a date column and one column per ticker.
    sentinel : the "no value" fill (default ``-1E+09``; ``None``: none).
    stamped : ``period`` (values on their period's date, Bloomberg's default) or ``release``.
    tickers : extra ``{ticker: series}`` entries over ``TICKERS``.
    options : how the file is read (``parsing.ReadOptions``: decimal comma, day-first dates, ...).
    Daily columns get the catalog's read-time checks (weekend rows, outliers, positivity), as in
    any panel file.
    """

    def __init__(self, path: str | Path, sentinel: float | None = DEFAULT_SENTINEL, stamped: str = "period",
                 tickers: dict[str, str] | None = None, today: pd.Timestamp | None = None,
                 origin: str | None = None, options: ReadOptions = DEFAULT_READ) -> None:
        self.path = Path(path)
        self.name = f"bloomberg:{self.path.name}"
        if stamped not in STAMPS:
            raise DataError(f"{origin or self.path}: stamped {stamped!r}: use period or release")
        self.stamped = stamped
        self.sentinel = sentinel
        self.catalog = catalog.active()
        where = str(self.path)
        check_data_file(self.path, what="Bloomberg export")
        self.options = options
        dates, columns, lines = self._read_columns(where, today)
        mapping = {**TICKERS, **{ticker_key(k): v for k, v in (tickers or {}).items()}}
        self.columns: dict[str, str] = {}  # series -> the file's column
        unknown = []
        for col in columns:
            key = ticker_key(col)
            name = mapping.get(key, key if key in self.catalog else None)
            if name is None:
                unknown.append(col)
                continue
            if name not in self.catalog:
                raise CatalogError(f"{where}: ticker {col!r} maps to {name!r}, which no catalog declares; "
                                   "add it to a catalog file (--catalog FILE or catalog.yaml beside the export)")
            if name in self.columns:
                raise DataError(f"{where}: columns {self.columns[name]!r} and {col!r} are both {name}; keep one")
            self.columns[name] = col
        if unknown:
            from data_sources.user_catalog import snippet

            names = [ticker_key(c).replace(" ", "_") for c in unknown]
            raise CatalogError(
                f"{where}: ticker(s) {', '.join(map(repr, unknown))} are not in the Bloomberg ticker map or the catalog; "
                f"map them in a description file (tickers: {{{unknown[0]!r}: {names[0]}}}, see docs/DATA.md) and "
                f"declare the series in a catalog file; the catalog YAML to add: {snippet(names)}"
            )
        self.series: dict[str, pd.Series] = {}
        self._release: dict[str, pd.Series] = {}
        moved, kept = [], []
        last_day = dates.max() if len(dates) else None
        for name, col in self.columns.items():
            spec = self.catalog.get(name)
            origin_col = f"{where}, column {col!r}"
            checks = SeriesChecks.of(spec) if spec.frequency == "D" else None  # a filled-forward macro column has no daily changes to screen
            values = clean_series(dates, columns[col], name, origin_col, today, lines=lines, options=options, checks=checks)
            if spec.frequency == "D":
                self.series[name] = values
                continue
            obs, release = _periods(values, spec.frequency, stamped, last_day)
            self.series[name] = obs
            if stamped == "release":
                self._release[name] = release
                kept.append(name)
            else:
                moved.append(f"{name} ({col}: {spec.release.describe()})")
        notes = []
        if moved:
            notes.append("moved period-stamped values to their release dates: " + "; ".join(moved))
        if kept:
            notes.append("release-stamped (stamped: release): " + ", ".join(kept) + " kept on the file's dates")
        self.notes = tuple(notes)

    @classmethod
    def from_description(cls, path: str | Path, **settings) -> "BloombergSource":
        """The export described by a YAML file (see module doc)."""
        path = Path(path)
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        unknown = set(doc) - _DESCRIPTION_KEYS
        if unknown:
            raise DataError(f"{path}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(_DESCRIPTION_KEYS))})")
        file = doc["bloomberg"]
        if not isinstance(file, str) or not file:
            raise DataError(f"{path}: bloomberg: must name the export file (relative to {path.name})")
        sentinel = doc.get("sentinel", DEFAULT_SENTINEL)
        if sentinel is not None and (isinstance(sentinel, bool) or not isinstance(sentinel, (int, float))):
            raise DataError(f"{path}: sentinel must be a number (or null for none), got {sentinel!r}")
        tickers = doc.get("tickers") or {}
        if not isinstance(tickers, dict) or not all(isinstance(v, str) for v in tickers.values()):
            raise DataError(f"{path}: tickers must map a Bloomberg ticker to a series name")
        export = Path(file) if Path(file).is_absolute() else path.parent / file
        src = cls(export, sentinel=sentinel, stamped=doc.get("stamped", "period"), tickers=tickers,
                  origin=str(path), **settings)
        src.name = f"bloomberg:{path.name}"
        return src

    def _read_columns(self, where: str, today) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray], pd.Index]:
        """Dates, the float64 values of every column (sentinel and ``#N/A`` cells NaN), and each row's line."""
        if self.path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(self.path)
            lines = pd.RangeIndex(1, len(frame) + 1, name="row")
            if isinstance(frame.index, pd.DatetimeIndex):
                dates = pd.DatetimeIndex(frame.index)
            else:
                dcol = find_date_column(frame.astype(str), where)
                raw = frame[dcol].astype(str)
                raw.index = lines
                dates = parse_dates(raw, where, self.options, today)
                frame = frame.drop(columns=[dcol])
            columns = {}
            for c in frame.columns:
                values = frame[c].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
                if self.sentinel is not None:
                    values[np.isclose(values, self.sentinel, rtol=1e-9, atol=0.0)] = np.nan
                columns[str(c)] = values
            return dates, columns, lines
        frame = read_csv_text(self.path, where, self.options)
        dcol = find_date_column(frame, where)
        dates = parse_dates(frame[dcol], where, self.options, today)
        cells = {c: frame[c].replace({"#N/A N/A": "", "#N/A": ""}) for c in frame.columns if c != dcol}
        decimal = detect_decimal(cells, where, self.options)
        columns = {c: parse_numbers(v, where, c, self.sentinel, decimal) for c, v in cells.items()}
        return dates, columns, frame.index

    def available(self) -> list[str]:
        return list(self.series)

    def describe(self, series: str) -> str:
        return f"{self.path} (column {self.columns[series]!r})"

    def _read(self, series: str) -> pd.Series:
        return self.series[series]

    def release_dates(self, series: str) -> pd.Series | None:
        return self._release.get(series)


def _periods(values: pd.Series, frequency: str, stamped: str,
             last_day: pd.Timestamp | None) -> tuple[pd.Series, pd.Series | None]:
    """One observation per period from a daily column of a low-frequency series.

    A value is *stamped* on the first row it appears (a change from the previous value, or after
    a gap), so a column filled forward gives each value once. ``period``: a stamp belongs to the
    period that contains it (W: the stamp date itself is the period date), the last stamp in a
    period wins, and periods still running on the file's last day are left out. ``release``: a
    stamp publishes the latest period that ended before it, its date is the release date, and the
    first stamp of a period wins (a later one is a revision, not known at the first release).
    Returns the observations by period date (first day of month/quarter) and, for ``release``,
    their release dates (by period date).
    """
    if values.empty:
        return values, None
    x = values.to_numpy()
    days = values.index
    gap = np.r_[True, np.diff(days.to_numpy()) > np.timedelta64(7, "D")]
    new = np.r_[True, x[1:] != x[:-1]] | gap
    stamps = values[new]
    if frequency == "W":
        if stamped == "release":
            period = stamps.index - pd.Timedelta(days=1)  # the H.4.1 convention: published the day after
            return pd.Series(stamps.to_numpy(), index=pd.DatetimeIndex(period, name="date")), pd.Series(stamps.index, index=period)
        return stamps, None
    code = frequency  # "M" or "Q"
    if stamped == "period":
        period = stamps.index.to_period(code)
        frame = pd.DataFrame({"v": stamps.to_numpy(), "p": period})
        last = frame.groupby("p", sort=True)["v"].last()
        if last_day is not None:
            ended = (last.index + 1).to_timestamp() - pd.Timedelta(days=1) <= last_day
            last = last[ended]
        idx = pd.DatetimeIndex(last.index.to_timestamp(), name="date")
        return pd.Series(last.to_numpy(), index=idx, name=values.name), None
    period = stamps.index.to_period(code) - 1  # the latest period that ended before the stamp
    frame = pd.DataFrame({"v": stamps.to_numpy(), "p": period, "d": stamps.index})
    last = frame.groupby("p", sort=True).first()  # the first release; a later revision would be look-ahead
    idx = pd.DatetimeIndex(last.index.to_timestamp(), name="date")
    return (pd.Series(last["v"].to_numpy(), index=idx, name=values.name),
            pd.Series(pd.DatetimeIndex(last["d"]).to_numpy(), index=idx))
