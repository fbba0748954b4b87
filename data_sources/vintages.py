"""Real-time vintages of revised macro series (ALFRED's download layout).

GDP, payrolls, unemployment, M2 and CPI are revised after their first release. A
plain file of a series holds its latest estimates, so "as of D" would see numbers
nobody had on D. A vintage file holds every estimate: one row per period, one
column per vintage (the date that estimate was published), as ALFRED writes it::

    observation_date,GDPC1_20200130,GDPC1_20200227,GDPC1_20200326
    2019-07-01,19121.1,19121.1,19121.1
    2019-10-01,19219.8,19221.9,19222.0     <- revised twice
    2020-01-01,,,                          <- not yet published

Column names end in the vintage date (``_YYYYMMDD``, or a plain ``YYYY-MM-DD``).
``Vintages.as_of(D)`` is the latest vintage published on or before D. A period's
release date is the first vintage that has it; periods already in the first
vintage were published before the vintage record starts, and get the catalog's
rule. Before the first vintage the first vintage stands in (said by ``note``).

Vintage files are declared beside the data file in ``<stem>.vintages.yaml`` or
``vintages.yaml`` (``SERIES: path/to/file.csv``, relative to that file), and the
source opened with ``--data`` then reads those series from them.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from data_sources.errors import DataError
from data_sources.parsing import check_data_file, find_date_column, parse_dates, parse_numbers, read_csv_text
from data_sources.publication import ReleaseRule

_VINTAGE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})$")


class Vintages:
    """All vintages of one series.

    Parameters
    ----------
    table : float64 frame, index = period dates (ascending), columns = vintage dates
        (ascending ``DatetimeIndex``), NaN where a vintage has no value for a period.
    origin : the file, for messages.
    """

    def __init__(self, table: pd.DataFrame, origin: str) -> None:
        assert table.index.is_monotonic_increasing and table.columns.is_monotonic_increasing, origin
        self.table = table
        self.origin = origin
        self.dates = pd.DatetimeIndex(table.columns)

    @classmethod
    def read(cls, path: str | Path, sentinel: float | None = None) -> "Vintages":
        """A vintage file (ALFRED layout, see module doc)."""
        origin = str(path)
        check_data_file(path, what="vintage file")
        frame = read_csv_text(Path(path), origin)
        dcol = find_date_column(frame, origin)
        periods = parse_dates(frame[dcol], origin)
        columns = {}
        for col in frame.columns:
            if col == dcol:
                continue
            m = _VINTAGE.search(str(col).strip())
            if not m:
                raise DataError(f"{origin}: column {col!r} does not end in a vintage date (NAME_YYYYMMDD, as ALFRED writes)")
            try:
                when = pd.Timestamp(f"{m.group(1)}-{m.group(2)}-{m.group(3)}")
            except ValueError:
                raise DataError(f"{origin}: column {col!r}: {m.group(0)} is not a date") from None
            if when in columns:
                raise DataError(f"{origin}: vintage {when.date()} appears twice (column {col!r})")
            columns[when] = parse_numbers(frame[col], origin, str(col), sentinel)
        if not columns:
            raise DataError(f"{origin}: no vintage columns besides the date")
        table = pd.DataFrame(columns, index=periods).sort_index(axis=0).sort_index(axis=1)
        if table.index.duplicated().any():
            raise DataError(f"{origin}: period {table.index[table.index.duplicated()][0].date()} appears twice")
        return cls(table, origin)

    def vintage_at(self, as_of: pd.Timestamp | None) -> pd.Timestamp:
        """The vintage in use at the close of ``as_of``: the latest on or before it (the first one before any)."""
        if as_of is None:
            return self.dates[-1]
        k = self.dates.searchsorted(pd.Timestamp(as_of), side="right") - 1
        return self.dates[max(k, 0)]

    def as_of(self, as_of: pd.Timestamp | None) -> pd.Series:
        """The series as published in the vintage in use on ``as_of`` (float64, by period, no NaN)."""
        col = self.table[self.vintage_at(as_of)]
        return col.dropna().astype(np.float64)

    def first_release(self, rule: ReleaseRule) -> pd.Series:
        """Release date of every period: its first vintage, or ``rule``'s date for periods in the first vintage."""
        has = self.table.notna().to_numpy()
        seen = has.any(axis=1)
        first = np.where(seen, has.argmax(axis=1), 0)
        release = self.dates[first].to_numpy().copy()
        before = has[:, 0]
        if before.any():
            release[before] = rule.release_dates(self.table.index[before]).to_numpy()
        out = pd.Series(release, index=self.table.index)
        return out[seen]

    def note(self, name: str) -> str:
        return (f"{name}: {len(self.dates)} vintages {self.dates[0].date()} .. {self.dates[-1].date()} from {self.origin}; "
                f"as of a date before {self.dates[0].date()} the first vintage stands in")


def vintage_files_beside(data: str | Path) -> dict[str, Path]:
    """``{series: vintage file}`` declared in ``<stem>.vintages.yaml`` or ``vintages.yaml`` beside ``data``."""
    path = Path(data)
    if not path.suffix:
        return {}
    for candidate in (path.with_name(f"{path.stem}.vintages.yaml"), path.with_name("vintages.yaml")):
        if candidate.is_file():
            return read_vintage_list(candidate)
    return {}


def read_vintage_list(path: Path) -> dict[str, Path]:
    """The ``SERIES: file`` entries of a vintages YAML file (paths relative to it)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read the vintage list ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not doc or not all(isinstance(v, str) for v in doc.values()):
        raise DataError(f"{path}: expected 'SERIES: vintage file' lines (ALFRED layout, see docs/DATA.md)")
    return {str(k): (path.parent / v).resolve() for k, v in doc.items()}
