"""Local file sources: a folder of CSV files described by a mapping file, and a wide panel file.

Mapping file (YAML)::

    folder: ../../shared/data        # relative to the mapping file, or absolute
    series:
      SPX:    {file: spx/spx_d.csv, value: Close, frequency: D}
      UST10Y: {file: rates/DGS10.csv, frequency: D}          # date/value columns found by name
      CPI:    {file: macro/CPIAUCSL.csv, date: date, value: value, frequency: M}
      GDP:    {file: eu/gdp.csv, dayfirst: true, decimal: ","}       # reading options for one file

Reading options (``parsing.ReadOptions``: ``dayfirst``, ``date_format``, ``decimal``,
``delimiter``, ``accept_outliers``, ``weekend_rows``) can be set at the top of the mapping
file for every file, or in one series' entry; the entry wins, and either wins over the
same option given on the command line.

Wide panel file (CSV or Parquet): a date column and one column per catalog series,
each cell an observation at the series' native frequency (blank, ``.``, or a
sentinel such as Bloomberg's ``-1E+09`` for "not available"). A panel exported by
``forecaster data export`` is already point-in-time aligned; it says so in its
metadata (a ``# forecaster-panel: aligned`` first line in CSV, a ``forecaster``
key in Parquet) and is then used as it is.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml

from data_sources import catalog
from data_sources.errors import CatalogError, DataError
from data_sources.parsing import (
    DEFAULT_READ,
    ReadOptions,
    SeriesChecks,
    check_data_file,
    clean_series,
    detect_decimal,
    find_date_column,
    parse_dates,
    parse_numbers,
    read_csv_text,
    read_series_csv,
    to_days,
    unreadable,
)
from data_sources.sources.base import Source

ALIGNED_MARKER = "# forecaster-panel: aligned"
PARQUET_META_KEY = b"forecaster"
_ENTRY_KEYS = {"file", "date", "value", "frequency", "sentinel", *ReadOptions.keys()}


def series_checks(name: str) -> SeriesChecks:
    """The read-time checks for a series, from its catalog entry (none for a name the catalog lacks)."""
    try:
        return SeriesChecks.of(catalog.get(name))
    except CatalogError:
        return SeriesChecks()


class CsvFolderSource(Source):
    """Series from CSV files in a folder, one file per series, as described by a YAML mapping."""

    def __init__(self, mapping: str | Path, today: pd.Timestamp | None = None, options: ReadOptions = DEFAULT_READ) -> None:
        self.mapping_path = Path(mapping)
        self.name = f"csv:{self.mapping_path.name}"
        self.today = today
        check_data_file(self.mapping_path, what="mapping file")
        try:
            doc = yaml.safe_load(self.mapping_path.read_text())
        except OSError as exc:
            raise unreadable(self.mapping_path, "mapping file", exc) from None
        except UnicodeDecodeError:
            raise DataError(f"mapping file {self.mapping_path}: not a text file (could not decode it as UTF-8)") from None
        except yaml.YAMLError as exc:
            raise DataError(f"{self.mapping_path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("series"), dict) or not doc["series"]:
            raise DataError(f"{self.mapping_path}: expected a 'series:' mapping of series name -> file entry")
        folder = Path(doc.get("folder", "."))
        self.folder = folder if folder.is_absolute() else (self.mapping_path.parent / folder).resolve()
        self.entries: dict[str, dict] = {}
        self.options: dict[str, ReadOptions] = {}
        defaults = options.updated({k: doc[k] for k in ReadOptions.keys() if k in doc}, f"{self.mapping_path}: ")
        for series, entry in doc["series"].items():
            where = f"{self.mapping_path}: series {series!r}"
            if series not in catalog.CATALOG:
                raise CatalogError(f"{where}: not in the catalog (known: {', '.join(sorted(catalog.CATALOG))})")
            if isinstance(entry, str):
                entry = {"file": entry}
            if not isinstance(entry, dict) or "file" not in entry:
                raise DataError(f"{where}: expected 'file:' (and optionally date, value, frequency, sentinel)")
            unknown = set(entry) - _ENTRY_KEYS
            if unknown:
                raise DataError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_ENTRY_KEYS))})")
            expected = catalog.get(series).frequency
            if entry.get("frequency", expected) != expected:
                raise DataError(f"{where}: frequency {entry['frequency']!r} does not match the catalog's {expected!r}")
            self.entries[series] = entry
            self.options[series] = defaults.updated({k: entry[k] for k in ReadOptions.keys() if k in entry}, f"{where}: ")

    def available(self) -> list[str]:
        return list(self.entries)

    def describe(self, series: str) -> str:
        return str(self.folder / self.entries[series]["file"])

    def _read(self, series: str) -> pd.Series:
        entry = self.entries[series]
        path = self.folder / entry["file"]
        return read_series_csv(
            path,
            series,
            f"{series} ({path})",
            date_col=entry.get("date"),
            value_col=entry.get("value"),
            series_id=catalog.get(series).fred,
            sentinel=entry.get("sentinel"),
            today=self.today,
            options=self.options[series],
            checks=series_checks(series),
        )


class WidePanelSource(Source):
    """A single wide file: a date column and one column per catalog series."""

    def __init__(
        self,
        path: str | Path,
        sentinel: float | None = -1e9,
        today: pd.Timestamp | None = None,
        options: ReadOptions = DEFAULT_READ,
    ) -> None:
        self.path = Path(path)
        self.name = f"panel:{self.path.name}"
        self.sentinel = sentinel
        origin = str(self.path)
        check_data_file(self.path, what="panel file")
        self.aligned = False
        if self.path.suffix.lower() == ".csv":
            try:
                with open(self.path, encoding="utf-8", errors="replace") as fh:
                    self.aligned = fh.readline().strip() == ALIGNED_MARKER
            except OSError as exc:
                raise unreadable(self.path, "panel file", exc) from None
            frame = read_csv_text(self.path, origin, options)
            dcol = find_date_column(frame, origin)
            dates = parse_dates(frame[dcol], origin, options, today)
            cells = {c: frame[c] for c in frame.columns if c != dcol}
            decimal = detect_decimal(cells, origin, options)
            columns = {c: parse_numbers(raw, origin, c, sentinel, decimal) for c, raw in cells.items()}
            lines = frame.index
        else:
            frame, dates = self._read_parquet(origin, options, today)
            lines = pd.RangeIndex(1, len(frame) + 1, name="row")
            columns = {c: frame[c].to_numpy(dtype=np.float64, na_value=np.nan, copy=True) for c in frame.columns}
            if sentinel is not None:
                for values in columns.values():
                    values[np.isclose(values, sentinel, rtol=1e-9, atol=0.0)] = np.nan
        unknown = [c for c in columns if c not in catalog.CATALOG]
        if unknown:
            from data_sources.user_catalog import snippet

            raise CatalogError(
                f"{origin}: column(s) {', '.join(unknown)} are not catalog series; declare them in "
                f"{self.path.with_name('catalog.yaml')} (found beside the file) or a --catalog FILE, "
                f"or rename or drop them; the YAML to add: {snippet(unknown)}"
            )
        if not columns:
            raise DataError(f"{origin}: no series columns besides the date")
        self.series = {
            c: clean_series(dates, v, c, f"{origin}, column {c}", today, lines=lines, options=options, checks=series_checks(c))
            for c, v in columns.items()
        }
        if self.aligned:
            panel = pd.DataFrame({c: pd.Series(v, index=dates) for c, v in columns.items()})
            panel.index = pd.DatetimeIndex(dates, name="date")
            self.panel = panel.sort_index(kind="stable")

    def _read_parquet(self, origin: str, options: ReadOptions, today) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
        try:
            table = pq.read_table(self.path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DataError(f"{origin}: not a readable Parquet file ({type(exc).__name__}: {str(exc)[:120]})") from None
        meta = (table.schema.metadata or {}).get(PARQUET_META_KEY)
        self.aligned = bool(meta and json.loads(meta).get("aligned"))
        frame = table.to_pandas()
        if isinstance(frame.index, pd.DatetimeIndex):
            return frame, to_days(frame.index)
        lowered = {str(c).lower(): c for c in frame.columns}
        dcol = next((lowered[n] for n in ("date", "observation_date", "timestamp") if n in lowered), None)
        if dcol is None:
            raise DataError(f"{origin}: no date column or date index (columns: {', '.join(map(str, frame.columns))})")
        raw = frame[dcol].astype(str)
        raw.index = pd.RangeIndex(1, len(raw) + 1, name="row")
        dates = parse_dates(raw, origin, options, today)
        return frame.drop(columns=[dcol]), dates

    def available(self) -> list[str]:
        return list(self.series)

    def describe(self, series: str) -> str:
        return f"{self.path} (column {series})"

    def _read(self, series: str) -> pd.Series:
        return self.series[series]
