"""Business days come from the exchange's real calendar (exchange_calendars, XNYS by default).

The old hand rules missed one-off closures (2018-12-05, George H. W. Bush; 2025-01-09,
Jimmy Carter), so a forecast from 2024-12-31 put a path day on a closed day.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_sources import calendar
from data_sources.calendar import business_days_after, business_days_between, is_business_day
from data_sources.errors import DataError

CLOSURES = ["2001-09-11", "2001-09-14", "2004-06-11", "2007-01-02", "2012-10-29", "2012-10-30", "2018-12-05", "2025-01-09"]


def test_one_off_closures_are_not_business_days():
    assert not is_business_day(CLOSURES).any()
    assert is_business_day(["2018-12-04", "2018-12-06", "2025-01-08", "2025-01-10"]).all()
    assert list(business_days_after("2018-12-04", 2).strftime("%Y-%m-%d")) == ["2018-12-06", "2018-12-07"]


def test_a_forecast_from_2024_12_31_never_lands_on_a_closed_day(shared_builder):
    from forecaster.market.backtest.baselines import RandomWalk

    panel = shared_builder.build("2024-12-31")
    fc = RandomWalk().forecast(panel, n_paths=4, horizon=30, seed=0)
    days = pd.DatetimeIndex(fc.dates)
    assert days[0] == pd.Timestamp("2025-01-02")  # New Year's Day skipped
    assert pd.Timestamp("2025-01-09") not in days  # the national day of mourning
    assert pd.Timestamp("2025-01-20") not in days and pd.Timestamp("2025-02-17") not in days  # MLK, Presidents' Day
    assert is_business_day(days).all() and (days.day_of_week < 5).all()


def test_xnys_sessions_equal_the_real_sp500_trading_days(shared_builder):
    """1990-2024: every S&P 500 close in the shared data is on an XNYS session, and every session has one."""
    spx = shared_builder.raw["SPX"].index
    spx = spx[(spx >= "1990-01-01") & (spx <= "2024-12-31")]
    sessions = business_days_between("1990-01-01", "2024-12-31")
    assert spx.equals(sessions), (spx.difference(sessions)[:5], sessions.difference(spx)[:5])


def test_far_future_dates_follow_the_holiday_rules():
    """Past the library's default range (one year ahead), the regular rules carry on: 2060 and 2200."""
    days = business_days_after("2060-12-22", 5)
    assert pd.Timestamp("2060-12-24") not in days  # a Friday: Christmas (Saturday the 25th) observed
    assert (days.day_of_week < 5).all()
    far = business_days_after("2200-12-23", 3)  # beyond the first build: the calendar is rebuilt further ahead
    assert pd.Timestamp("2200-12-25") not in far and len(far) == 3
    assert list(business_days_after("2200-07-02", 2).strftime("%m-%d")) == ["07-03", "07-07"]  # 4 July 2200 is a Friday


def test_dates_before_the_calendar_are_refused():
    with pytest.raises(DataError, match="starts at 1885-01-01"):
        business_days_between("1850-01-01", "1890-01-01")
    with pytest.raises(DataError, match="starts at"):
        business_days_after("1700-06-01", 5)


def test_other_calendars_can_be_chosen():
    london = business_days_after("2024-12-23", 3, calendar="XLON")
    assert list(london.strftime("%Y-%m-%d")) == ["2024-12-24", "2024-12-27", "2024-12-30"]  # Boxing Day closed
    nyse = business_days_after("2024-12-23", 3)
    assert list(nyse.strftime("%Y-%m-%d")) == ["2024-12-24", "2024-12-26", "2024-12-27"]
    always = business_days_after("2024-12-23", 7, calendar="24/7")
    assert len(always) == 7 and always[-1] == pd.Timestamp("2024-12-30")
    with pytest.raises(DataError, match="unknown exchange calendar 'NOPE'"):
        business_days_after("2024-12-23", 3, calendar="NOPE")


def test_business_days_are_midnight_dates_named_date_and_cached():
    days = business_days_after(pd.Timestamp("2024-12-31 16:30"), 250)
    assert days.name == "date" and len(days) == 250 and days.is_monotonic_increasing
    assert (days == days.normalize()).all() and days[0] == pd.Timestamp("2025-01-02")
    assert np.array_equal(days, business_days_between(days[0], days[-1]))
    before = calendar._sessions.cache_info().misses
    business_days_after("2030-06-01", 10)
    assert calendar._sessions.cache_info().misses == before  # the calendar object is built once
