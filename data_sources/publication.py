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

KINDS = ("same_day", "days_after", "monthly_day", "nth_weekday", "quarter_end_plus")
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

    def __post_init__(self) -> None:
        assert self.kind in KINDS, f"unknown release rule kind {self.kind!r}"

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
        else:
            text = f"{self.days} days after the quarter ends"
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
        else:  # quarter_end_plus
            quarter_end = (periods.to_period("Q") + 1).to_timestamp() - pd.Timedelta(days=1)
            out = quarter_end + pd.Timedelta(days=self.days)
        if self.overrides:
            keys = periods.strftime("%Y-%m")
            values = np.array(out.to_numpy(), copy=True)
            for i, key in enumerate(keys):
                if key in self.overrides:
                    values[i] = np.datetime64(self.overrides[key], "ns")
            out = pd.DatetimeIndex(values)
        return pd.DatetimeIndex(out, name="release")
