"""Publication-lag rules: on which day does the value for period P become public?

A value enters the point-in-time panel on the first business day on or after its
release date, never before. Rules are deliberately conservative: where the real
release day moves around (CPI between the 10th and the 15th), the rule takes the
late end, because a few days of staleness costs little while one day of
look-ahead invalidates a backtest. Known exceptional releases (the 2025 federal
shutdown delays) are listed as overrides keyed by period ``YYYY-MM``.

Period dates follow the sources' conventions: a monthly observation is dated the
first day of its month, a quarterly one the first day of its quarter, a weekly
one its reference day (the Wednesday for H.4.1), a daily one its trading day.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_sources.parsing import to_days

KINDS = ("same_day", "days_after", "monthly_day", "nth_weekday", "quarter_end_plus",
         "business_days_after_end", "next_weekday", "dates")
# Far beyond any panel: the release date of a period that no listed date publishes (never visible).
NEVER = pd.Timestamp("2200-01-01")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class ReleaseRule:
    """When the observation for a period is published.

    kind:
      - ``same_day``: market data, known at the close of its own day.
      - ``days_after``: ``days`` calendar days after the period date (weekly H.4.1: 1).
      - ``monthly_day``: on day ``day`` of the month ``months_after`` months after the period.
      - ``nth_weekday``: the ``n``-th ``weekday`` (0 = Monday) on or after day ``min_day``
        of the month ``months_after`` months after the period.
      - ``quarter_end_plus``: ``days`` calendar days after the quarter ends.
      - ``business_days_after_end``: the ``days``-th business day (of ``calendar``) after the period ends
        (a monthly value: its month's last day; quarterly: the quarter's; weekly, daily:
        the period date itself); ``days=0``: the period end itself.
      - ``next_weekday``: the first ``weekday`` (0 = Monday) strictly after the period ends,
        ``months_after`` is not used (a weekly release, e.g. Thursday for a Wednesday level).
      - ``dates``: an explicit list of release dates (``dates``, ISO strings): each period is
        published on the first listed date after it ends; a period after the last listed
        date is never published (it stays out of the panel).
    overrides: ``{"YYYY-MM": "YYYY-MM-DD"}`` real release dates that break the rule.
    """

    kind: str
    days: int = 0
    day: int = 1
    n: int = 1
    weekday: int = 4
    min_day: int = 1
    months_after: int = 1
    overrides: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    dates: tuple[str, ...] = ()
    frequency: str = "M"  # the period length ``business_days_after_end`` and ``dates`` measure the end by
    calendar: str = "XNYS"  # the exchange calendar ``business_days_after_end`` counts business days on

    def __post_init__(self) -> None:
        assert self.kind in KINDS, f"unknown release rule kind {self.kind!r}"
        assert self.kind != "dates" or self.dates, "a 'dates' rule needs at least one date"

    def describe(self) -> str:
        """One line for people (the dashboard's and `data show`'s publication-lag column)."""
        if self.kind == "same_day":
            text = "same day (market close)"
        elif self.kind == "days_after":
            text = f"{self.days} day(s) after the reference date"
        elif self.kind == "monthly_day":
            text = f"day {self.day} of month M+{self.months_after}"
        elif self.kind == "nth_weekday":
            nth = {1: "first", 2: "second", 3: "third", 4: "fourth"}.get(self.n, f"{self.n}th")
            after = f" on or after day {self.min_day}" if self.min_day > 1 else ""
            text = f"{nth} {_WEEKDAYS[self.weekday]}{after} of month M+{self.months_after}"
        elif self.kind == "quarter_end_plus":
            text = f"{self.days} days after the quarter ends"
        elif self.kind == "business_days_after_end":
            text = f"{self.days} business day(s) after the period ends"
        elif self.kind == "next_weekday":
            text = f"the next {_WEEKDAYS[self.weekday]} after the period"
        else:
            text = f"on listed dates ({len(self.dates)}, {self.dates[0]} .. {self.dates[-1]})"
        if self.overrides:
            text += f" ({len(self.overrides)} known exception(s))"
        return text

    def release_dates(self, periods: pd.DatetimeIndex) -> pd.DatetimeIndex:
        """Release date of each period date (vectorised). ``periods``: observation dates."""
        periods = to_days(periods)
        if self.kind == "same_day":
            out = periods
        elif self.kind == "days_after":
            out = periods + pd.Timedelta(days=self.days)
        elif self.kind == "monthly_day":
            month = periods.to_period("M") + self.months_after
            out = month.to_timestamp() + pd.to_timedelta(self.day - 1, unit="D")
        elif self.kind == "nth_weekday":
            start = (periods.to_period("M") + self.months_after).to_timestamp()
            start = start + pd.to_timedelta(self.min_day - 1, unit="D")
            shift = (self.weekday - start.day_of_week.to_numpy()) % 7 + 7 * (self.n - 1)
            out = start + pd.to_timedelta(shift, unit="D")
        elif self.kind == "quarter_end_plus":
            quarter_end = (periods.to_period("Q") + 1).to_timestamp() - pd.Timedelta(days=1)
            out = quarter_end + pd.Timedelta(days=self.days)
        elif self.kind == "business_days_after_end":
            out = _business_days_after(period_end(periods, self.frequency), self.days, self.calendar)
        elif self.kind == "next_weekday":
            end = period_end(periods, self.frequency)
            shift = (self.weekday - end.day_of_week.to_numpy() - 1) % 7 + 1
            out = end + pd.to_timedelta(shift, unit="D")
        else:  # dates
            listed = pd.DatetimeIndex(sorted(pd.Timestamp(d) for d in self.dates))
            k = listed.searchsorted(period_end(periods, self.frequency), side="right")
            out = pd.DatetimeIndex([listed[i] if i < len(listed) else NEVER for i in k])
        if self.overrides:
            keys = periods.strftime("%Y-%m")
            values = np.array(out.to_numpy(), copy=True)
            for i, key in enumerate(keys):
                if key in self.overrides:
                    values[i] = np.datetime64(self.overrides[key], "ns")
            out = pd.DatetimeIndex(values)
        return pd.DatetimeIndex(out, name="release")


def period_end(periods: pd.DatetimeIndex, frequency: str) -> pd.DatetimeIndex:
    """The last day of each period (``M``: its month's last day, ``Q``: its quarter's; ``W``, ``D``: the date)."""
    periods = to_days(periods)
    if frequency in ("M", "Q"):
        return (periods.to_period(frequency) + 1).to_timestamp() - pd.Timedelta(days=1)
    return periods


def _business_days_after(days: pd.DatetimeIndex, n: int, calendar: str = "XNYS") -> pd.DatetimeIndex:
    """The ``n``-th business day of ``calendar`` after each of ``days`` (``n=0``: the day itself)."""
    from data_sources.calendar import business_days_after

    if n == 0 or not len(days):
        return days
    unique = days.unique()
    table = {d: business_days_after(d, n, calendar)[-1] for d in unique}
    return pd.DatetimeIndex([table[d] for d in days])
