"""The point-in-time daily panel.

Rows are business days: the trading days of the exchange-traded series (S&P 500,
VIX, sector ETFs, the commodity index), extended past their last date by the
other daily series so the panel runs to the latest date in the data. Columns are
catalog series in their own units.

Alignment rules, the same for every source:

- A value for period P is visible from the first business day on or after its
  release date (``publication``), never before. Until a newer period has been
  released the latest released value stays (forward fill from the release day).
- Days before a series' first release are NaN: never zero, never back-filled.
- A value older than ``STALE_AFTER`` (by frequency) is no longer carried
  forward: a discontinued series becomes NaN instead of a flat line.
- Derived series are computed from their inputs' observations before alignment
  (YoY inflation from the index 12 months earlier, released with the index; the
  commodity index spliced with the ETF's returns), so they are point-in-time too.

``PanelBuilder.build(as_of=D)`` answers "what did the panel look like on D": it
uses only observations released by D and stops at D. Without vintages this equals
the full panel cut at D (tests check both that and that changing data after D
leaves it unchanged). A series with a vintage file (``data_sources.vintages``)
is read, as of D, from the vintage in use on D: revisions published later are
not seen; each period enters on the day its first estimate was published.

A source may give its own release date per observation (``Source.release_dates``:
a Bloomberg export that is already release-stamped); the catalog's rule is used
otherwise. Series are looked up in the source's catalog (built in plus user series).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data_sources import catalog
from data_sources.calendar import business_days_between, is_business_day
from data_sources import catalog as catalog_mod  # ``catalog`` is also a parameter name below
from data_sources.errors import DataError
from data_sources.parsing import to_days
from data_sources.sources import Source, open_source

DEFAULT_START = pd.Timestamp("1990-01-01")
# Exchange-traded series whose dates define the trading calendar.
CALENDAR_SERIES = ("SPX", "VIX", "XLK", "XLF", "XLI", "XLP", "XLRE", "XLU", "GSG", "SPGSCI")
STALE_AFTER = {
    "D": pd.Timedelta(days=5),
    "W": pd.Timedelta(days=21),
    "M": pd.Timedelta(days=95),
    "Q": pd.Timedelta(days=200),
}


def yoy_percent(index_levels: pd.Series) -> pd.Series:
    """Year-over-year change in percent of a monthly series; needs the exact month a year earlier."""
    monthly = index_levels.copy()
    monthly.index = monthly.index.to_period("M")
    year_ago = monthly.reindex(monthly.index - 12).to_numpy()
    out = 100.0 * (monthly.to_numpy() / year_ago - 1.0)
    return pd.Series(out, index=index_levels.index, name=index_levels.name).dropna()


def splice_levels(primary: pd.Series, extension: pd.Series | None) -> pd.Series:
    """``primary`` levels, continued after its last date with ``extension``'s returns (chain-linked)."""
    if extension is None or primary.empty:
        return primary
    last = primary.index[-1]
    base = extension[extension.index <= last]
    tail = extension[extension.index > last]
    if base.empty or tail.empty:
        return primary
    return pd.concat([primary, primary.iloc[-1] * tail / base.iloc[-1]])


def align(observations: pd.Series, spec: catalog.SeriesSpec, calendar: pd.DatetimeIndex,
          release: pd.DatetimeIndex | None = None) -> np.ndarray:
    """Values of one series on ``calendar`` days under its publication rule (see module doc).

    ``observations``: float64, indexed by period date, ascending, no NaN.
    ``release``: the release date of each observation (default: the spec's rule).
    Returns float64 of shape (len(calendar),).
    """
    out = np.full(len(calendar), np.nan)
    if observations.empty:
        return out
    if release is None:
        release = spec.release.release_dates(observations.index)
    release = to_days(release).to_numpy()
    order = np.argsort(release, kind="stable")
    release_sorted = release[order]
    # When a release is out of period order (a delayed release), keep the newest period seen so far.
    newest = np.maximum.accumulate(order)
    k = np.searchsorted(release_sorted, calendar.to_numpy(), side="right") - 1
    seen = k >= 0
    pick = newest[k[seen]]
    values = observations.to_numpy()[pick]
    # Staleness: age of the value in use, measured from its period date.
    age = calendar.to_numpy()[seen] - observations.index.to_numpy()[pick]
    values = np.where(age > STALE_AFTER[spec.frequency].to_timedelta64() + _lag_allowance(spec), np.nan, values)
    out[seen] = values
    return out


def _lag_allowance(spec: catalog.SeriesSpec) -> np.timedelta64:
    # Lower-frequency values are released weeks after their period date; do not count that as staleness.
    return np.timedelta64({"D": 0, "W": 2, "M": 31, "Q": 62}[spec.frequency], "D")


class PanelBuilder:
    """Reads a source's raw observations once; builds the aligned panel as of any date.

    Parameters
    ----------
    source : a ``Source`` or a ``--data`` spec string.
    series : panel columns; default: the reference series the source can provide, then
        the other series it provides (user series, Bloomberg-only series; in the source's
        order), except the inputs of derived series (CPI for CPI_YOY).
    start : first panel date (default 1990-01-01).
    catalog : a user catalog file or ``Catalog`` for a ``--data`` string (see ``open_source``).

    ``self.catalog`` is the catalog the series are looked up in (the source's).
    """

    def __init__(self, source: Source | str, series: list[str] | None = None, start=DEFAULT_START,
                 catalog: "str | catalog.Catalog | None" = None) -> None:
        self.source = open_source(source, catalog=catalog) if isinstance(source, str) else source
        self.catalog: catalog_mod.Catalog = getattr(self.source, "catalog", catalog_mod.BUILTIN)
        self.start = pd.Timestamp(start) if start is not None else None
        self.vintages: dict = dict(getattr(self.source, "vintages", None) or {})
        cat = self.catalog
        available = set(self.source.available())
        # A panel file exported by `forecaster data export` is aligned already: use it as it is.
        self.aligned_panel: pd.DataFrame | None = getattr(self.source, "panel", None)

        def buildable(name: str) -> bool:
            spec = cat.get(name)
            return name in available or (spec.is_derived and spec.derived_from[0] in available)

        if series is None:
            series = [s for s in catalog_mod.REFERENCE_SERIES if buildable(s)]
            inputs = {i for spec in cat.values() for i in spec.derived_from}  # read for a derived series only
            series += [s for s in self.source.available() if s not in series and s not in inputs]
        for name in series:
            if not buildable(name):
                raise DataError(
                    f"series {name!r} cannot be built from {self.source.name} "
                    f"(it provides: {', '.join(sorted(available)) or 'nothing'})"
                )
        if not series:
            raise DataError(f"{self.source.name} provides none of the catalog series")
        self.series = list(series)
        if self.aligned_panel is not None:
            self.raw = {}
            return
        needed = set()
        for name in self.series:
            spec = cat.get(name)
            if name in available:
                needed.add(name)
            else:
                needed.update(s for s in spec.derived_from if s in available)
        self.raw: dict[str, pd.Series] = {name: self.source.read(name)[name] for name in sorted(needed)}
        # per-observation release dates a source gives itself (None: the catalog's rule)
        hook = getattr(self.source, "release_dates", None)
        self._stamped: dict[str, pd.Series] = {}
        for name in self.raw:
            stamped = hook(name) if hook is not None else None
            if stamped is not None:
                self._stamped[name] = stamped
        for name, vint in self.vintages.items():
            if name in self.raw:
                self.raw[name] = vint.as_of(None).rename(name)

    # -- observations as known on a date --------------------------------------------------
    def _release(self, name: str, obs: pd.Series) -> pd.DatetimeIndex:
        """The release date of each of ``obs`` (observations of raw series ``name``)."""
        if name in self.vintages:
            rel = self.vintages[name].first_release(self.catalog.get(name).release)
            return pd.DatetimeIndex(rel.reindex(obs.index).to_numpy())
        if name in self._stamped:
            return pd.DatetimeIndex(self._stamped[name].reindex(obs.index).to_numpy())
        return self.catalog.get(name).release.release_dates(obs.index)

    def _known(self, name: str, as_of: pd.Timestamp | None) -> pd.Series:
        if name in self.vintages:  # the estimates of the vintage in use on as_of
            obs = self.vintages[name].as_of(as_of).rename(name)
        else:
            obs = self.raw[name]
        if as_of is not None:
            obs = obs[np.asarray(self._release(name, obs) <= as_of)]
        return obs

    def observations(self, name: str, as_of: pd.Timestamp | None = None) -> pd.Series:
        """Observations of ``name`` (derived ones computed) released by ``as_of``, at native frequency."""
        spec = self.catalog.get(name)
        if name in self.raw:
            return self._known(name, as_of)
        if name in ("CPI_YOY", "CORE_CPI_YOY"):
            return yoy_percent(self._known(spec.derived_from[0], as_of)).rename(name)
        if name == "GSCI":
            ext = self._known("GSG", as_of) if "GSG" in self.raw else None
            return splice_levels(self._known("SPGSCI", as_of), ext).rename(name)
        raise AssertionError(f"no derivation for {name}")

    def release_dates(self, name: str, obs: pd.Series) -> pd.DatetimeIndex:
        """The release date of each observation of ``name`` (a derived series: its first input's)."""
        spec = self.catalog.get(name)
        raw = name if name in self.raw else spec.derived_from[0]
        if raw != name and name != "GSCI":
            base = self.raw[raw]
            rel = pd.Series(self._release(raw, base).to_numpy(), index=base.index)
            if raw in self.vintages:  # every period the vintages hold
                full = self.vintages[raw].first_release(self.catalog.get(raw).release)
                rel = full.combine_first(rel)
            return pd.DatetimeIndex(rel.reindex(obs.index).to_numpy())
        if raw != name:  # the spliced commodity index: same-day market data
            return spec.release.release_dates(obs.index)
        return self._release(name, obs)

    def revisable(self) -> list[str]:
        """Series of the panel whose values may include later revisions (revised series without vintages)."""
        out = []
        for name in self.series:
            spec = self.catalog.get(name)
            inputs = spec.derived_from if spec.is_derived else (name,)
            if spec.revised and not all(i in self.vintages for i in inputs):
                out.append(name)
        return out

    def calendar(self, as_of: pd.Timestamp | None = None) -> pd.DatetimeIndex:
        """Business days of the panel: trading days of exchange-traded series, extended by other daily series."""
        primary = [self._known(s, as_of).index for s in CALENDAR_SERIES if s in self.raw]
        daily = [self.observations(s, as_of).index for s in self.series if self.catalog.get(s).frequency == "D"]
        days = pd.DatetimeIndex([])
        for idx in primary:
            days = days.union(idx)
        extension = pd.DatetimeIndex([])
        for idx in daily:
            extension = extension.union(idx)
        if len(days):
            extension = extension[extension > days[-1]]
        days = days.union(extension)
        if not len(days):  # macro-only source: weekdays over the observed span
            spans = [i for i in (self.observations(s, as_of).index for s in self.series) if len(i)]
            if not spans:  # nothing released yet as of that date: build() reports no rows
                return pd.DatetimeIndex([], name="date")
            lo = min(i[0] for i in spans)
            hi = as_of if as_of is not None else max(i[-1] for i in spans) + pd.offsets.MonthEnd(2)
            days = business_days_between(lo, min(hi, pd.Timestamp.today().normalize()))
        days = days[days.day_of_week < 5]
        # NYSE sessions only: an index that prints on an exchange holiday (Cboe's VIX on 2022-07-04) adds no row,
        # so the history's calendar is the one forecasts step on (data_sources.calendar)
        if len(days):
            try:
                days = days[is_business_day(days)]
            except DataError:  # days before the first session list (1885): kept as the data has them
                pass
        if self.start is not None:
            days = days[days >= self.start]
        if as_of is not None:
            days = days[days <= as_of]
        return pd.DatetimeIndex(days, name="date")

    def build(self, as_of=None) -> pd.DataFrame:
        """The panel as it looked at the close of ``as_of`` (default: everything).

        Returns a float64 frame indexed by business day ``date``, one column per series.
        """
        as_of = pd.Timestamp(as_of).floor("D") if as_of is not None else None
        if self.aligned_panel is not None:
            panel = self.aligned_panel[self.series]
            if self.start is not None:
                panel = panel[panel.index >= self.start]
            if as_of is not None:
                panel = panel[panel.index <= as_of]
        else:
            calendar = self.calendar(as_of)
            columns = {}
            for name in self.series:
                obs = self.observations(name, as_of)
                columns[name] = align(obs, self.catalog.get(name), calendar, self.release_dates(name, obs))
            panel = pd.DataFrame(columns, index=calendar)
        if panel.empty:
            when = f" as of {as_of.date()}" if as_of is not None else ""
            raise DataError(f"the panel from {self.source.name} has no rows{when}; check the as-of date and the panel start")
        panel.attrs = {"source": self.source.name, "as_of": str(as_of.date()) if as_of is not None else None}
        return panel


def load_panel(data: str | Source, as_of=None, series: list[str] | None = None, start=DEFAULT_START,
               catalog=None) -> pd.DataFrame:
    """Build the point-in-time panel from a ``--data`` spec (or a source) as of a date."""
    return PanelBuilder(data, series=series, start=start, catalog=catalog).build(as_of)


def summary(panel: pd.DataFrame, cat: "catalog_mod.Catalog | None" = None) -> pd.DataFrame:
    """Per series: description, unit, frequency, first/last date with a value, count, missing, release rule.

    ``missing`` counts NaN days between the first and the last value (gaps, not the
    days before a series exists).
    """
    cat = cat if cat is not None else catalog_mod.active()
    rows = []
    for name in panel.columns:
        spec = cat.get(name)
        col = panel[name]
        valid = col.notna().to_numpy()
        if valid.any():
            first, last = col.index[valid.argmax()], col.index[len(valid) - 1 - valid[::-1].argmax()]
            span = col.loc[first:last]
            missing = int(span.isna().sum())
        else:
            first = last = pd.NaT
            missing = 0
        rows.append(
            {
                "series": name,
                "description": spec.description,
                "unit": spec.unit,
                "freq": spec.frequency,
                "first": first,
                "last": last,
                "count": int(valid.sum()),
                "missing": missing,
                "last_value": col.dropna().iloc[-1] if valid.any() else np.nan,
                "published": spec.release.describe(),
            }
        )
    return pd.DataFrame(rows)
