"""Named backtest windows and the schedule of forecast origins.

An origin is a business day of the panel: the model and every baseline see the
panel as it was known at the close of that day, and forecast the days after it.
``--every`` takes a count and a unit: ``B`` business days, ``W`` weeks, ``M``
months, ``Q`` quarters (``1M``, ``2W``, ``21B``). For ``W``/``M``/``Q`` the origin
is the last panel day of each period, so a monthly schedule forecasts from every
month end (after that month's releases).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from foundation.errors import UserError


class BacktestError(UserError):
    """A backtest request that cannot be run as given."""


@dataclass(frozen=True)
class Window:
    """A named evaluation window: origins from ``start`` to ``end`` every ``every``."""

    name: str
    start: str
    end: str
    every: str
    description: str


WINDOWS: dict[str, Window] = {
    w.name: w
    for w in [
        Window("2018-2021", "2018-01-01", "2021-12-31", "1M",
               "The reference window of the product's seeds: the calm 2018-19, the 2018 Q4 sell-off, the 2020 "
               "volatility shock and the 2021 inflation surge (monthly origins, 48 forecasts)."),
        Window("2008-2009", "2008-01-01", "2009-12-31", "1M", "The global financial crisis (monthly origins)."),
        Window("2022-2023", "2022-01-01", "2023-12-31", "1M", "The 2022 rate and inflation shock (monthly origins)."),
    ]
}


def get_window(name: str) -> Window:
    """The named window, or a ``BacktestError`` listing the known names."""
    try:
        return WINDOWS[name]
    except KeyError:
        raise BacktestError(f"unknown --window {name!r} (known: {', '.join(WINDOWS)})") from None


_EVERY = re.compile(r"^\s*(\d+)\s*([BWMQ])\s*$", re.IGNORECASE)


def parse_every(every: str) -> tuple[int, str]:
    """``"1M"`` -> ``(1, "M")``; a ``BacktestError`` for anything else."""
    m = _EVERY.match(every or "")
    if not m or int(m.group(1)) < 1:
        raise BacktestError(f"--every {every!r} is not a schedule; use a count and B, W, M or Q (e.g. 1M, 2W, 21B)")
    return int(m.group(1)), m.group(2).upper()


def origin_schedule(calendar: pd.DatetimeIndex, start, end, every: str) -> pd.DatetimeIndex:
    """Forecast origins: business days of ``calendar`` in ``[start, end]`` on the ``every`` schedule.

    Parameters
    ----------
    calendar : the panel's business days (ascending).
    start, end : the window (dates, inclusive).
    every : ``"<n><B|W|M|Q>"`` (see module doc).

    Returns
    -------
    DatetimeIndex of origins, ascending, each a day of ``calendar``.
    """
    n, unit = parse_every(every)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if end < start:
        raise BacktestError(f"the last origin {end.date()} is before the first {start.date()}")
    days = calendar[(calendar >= start) & (calendar <= end)]
    if not len(days):
        raise BacktestError(f"no business days of the data between {start.date()} and {end.date()}")
    if unit == "B":
        picked = days[::n]
    else:
        freq = {"W": "W", "M": "M", "Q": "Q"}[unit]
        period = days.to_period(freq)
        last_of_period = pd.Series(days, index=days).groupby(period).max()
        # A period cut by the last origin is incomplete: its last day in the window is still a valid origin.
        picked = pd.DatetimeIndex(last_of_period.to_numpy())[::n]
    return pd.DatetimeIndex(picked, name="origin")
