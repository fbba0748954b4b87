"""Exchange business days, past and future, from ``exchange_calendars`` (XNYS by default).

Forecast paths, the model's calendar inputs and the baselines are dated on an
exchange's sessions: for the NYSE (``"XNYS"``) that is weekdays except the regular
holidays (New Year's Day, Martin Luther King Jr. Day, Washington's Birthday, Good
Friday, Memorial Day, Juneteenth from 2022, Independence Day, Labor Day,
Thanksgiving, Christmas, with the exchange's observance rules) and the one-off
closures the library records (9/11, Hurricane Sandy, the national days of mourning
of 2018-12-05 and 2025-01-09, ...). Any name ``exchange_calendars`` knows can be
chosen instead (``calendar="XLON"``, ``"CMES"``, ``"24/7"`` ...) for a user series.

Range rule. ``exchange_calendars`` builds a calendar for a span it is asked for
(by default only 20 years back and 1 year ahead of today). Here each calendar
is built from ``FIRST_SESSION_FLOOR`` (or the calendar's own first valid date,
if later) to the end of a year at least ``AHEAD_YEARS`` past today, and rebuilt
further ahead when a date beyond that is asked for. Past the library's release
its dates are the regular holiday rules carried forward: a one-off closure
announced later cannot be known. A date before a calendar's first valid date is
a ``DataError`` (no session list exists for it), never a guess.

Each calendar is built once per process (about 0.1 s) and then answered from a
sorted array by binary search.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

from data_sources.errors import DataError

DEFAULT_CALENDAR = "XNYS"
FIRST_SESSION_FLOOR = pd.Timestamp("1885-01-01")
AHEAD_YEARS = 30
_CHUNK_YEARS = 50  # how much further a rebuilt calendar reaches past the date that needed it


@functools.lru_cache(maxsize=16)
def _sessions(calendar: str, end_year: int) -> np.ndarray:
    """All sessions of ``calendar`` through ``end_year``-12-31, as sorted ``datetime64[D]``."""
    import exchange_calendars as xcals

    with warnings.catch_warnings():  # the library's own use of pandas APIs that pandas 4 changes
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            cls = type(xcals.get_calendar(calendar))
        except xcals.errors.InvalidCalendarName:
            raise DataError(
                f"unknown exchange calendar {calendar!r} (for example XNYS, XLON, XTKS, CMES, 24/7; "
                "exchange_calendars.get_calendar_names() lists them all)"
            ) from None
        start = max(FIRST_SESSION_FLOOR, cls.bound_min() or FIRST_SESSION_FLOOR)
        end = pd.Timestamp(f"{end_year}-12-31")
        if cls.bound_max() is not None:
            end = min(end, cls.bound_max())
        cal = xcals.get_calendar(calendar, start=start, end=end)
    return np.asarray(cal.sessions.to_numpy(), dtype="datetime64[D]")


def _covering(calendar: str, last: pd.Timestamp) -> np.ndarray:
    """Sessions of ``calendar`` reaching at least to ``last`` (rebuilt further ahead when needed)."""
    end_year = pd.Timestamp.today().year + AHEAD_YEARS
    if last.year > end_year:
        end_year = last.year + _CHUNK_YEARS
    days = _sessions(calendar, end_year)
    if days[-1] < np.datetime64(last.date(), "D"):  # the calendar class itself ends earlier
        raise DataError(f"exchange calendar {calendar!r} has no sessions after {pd.Timestamp(days[-1]).date()}")
    return days


def _check_start(days: np.ndarray, calendar: str, first: pd.Timestamp) -> None:
    if np.datetime64(first.date(), "D") < days[0]:
        raise DataError(
            f"exchange calendar {calendar!r} starts at {pd.Timestamp(days[0]).date()}; "
            f"{first.date()} is before it (no session list exists for earlier dates)"
        )


def business_days_after(as_of, n: int, calendar: str = DEFAULT_CALENDAR) -> pd.DatetimeIndex:
    """The ``n`` sessions of ``calendar`` strictly after the day of ``as_of``.

    Returns a ``DatetimeIndex`` named ``date`` of length ``n`` (midnight, no time zone).
    """
    assert n >= 1, "n must be >= 1"
    day = pd.Timestamp(as_of).floor("D")
    # n sessions are at most ~n * 7/5 + holidays calendar days away; ask for enough years.
    days = _covering(calendar, day + pd.Timedelta(days=2 * n + 30))
    _check_start(days, calendar, day + pd.Timedelta(days=1))
    i = int(np.searchsorted(days, np.datetime64(day.date(), "D"), side="right"))
    out = days[i : i + n]
    assert len(out) == n, f"{calendar}: only {len(out)} sessions after {day.date()}"
    return pd.DatetimeIndex(out.astype("datetime64[ns]"), name="date")


def business_days_between(start, end, calendar: str = DEFAULT_CALENDAR) -> pd.DatetimeIndex:
    """The sessions of ``calendar`` from ``start`` to ``end``, both inclusive (a ``DatetimeIndex`` named ``date``)."""
    lo, hi = pd.Timestamp(start).floor("D"), pd.Timestamp(end).floor("D")
    days = _covering(calendar, hi)
    _check_start(days, calendar, lo)
    a = int(np.searchsorted(days, np.datetime64(lo.date(), "D"), side="left"))
    b = int(np.searchsorted(days, np.datetime64(hi.date(), "D"), side="right"))
    return pd.DatetimeIndex(days[a:b].astype("datetime64[ns]"), name="date")


def is_business_day(dates, calendar: str = DEFAULT_CALENDAR) -> np.ndarray:
    """Whether each of ``dates`` (anything ``pd.DatetimeIndex`` takes) is a session of ``calendar``; bool, same length.

    Dates before the calendar's first valid date are a ``DataError``.
    """
    index = pd.DatetimeIndex(dates)
    if not len(index):
        return np.zeros(0, dtype=bool)
    days = np.asarray(index.to_numpy(), dtype="datetime64[D]")
    lo, hi = days.min(), days.max()
    sessions = _covering(calendar, pd.Timestamp(hi))
    _check_start(sessions, calendar, pd.Timestamp(lo))
    pos = np.searchsorted(sessions, days)
    pos = np.minimum(pos, len(sessions) - 1)
    return sessions[pos] == days
