"""The US equity-market business-day calendar for dates after the data ends.

Forecast paths are dated on the NYSE trading calendar: weekdays except New Year's
Day, Martin Luther King Jr. Day, Washington's Birthday, Good Friday, Memorial Day,
Juneteenth (from 2022), Independence Day, Labor Day, Thanksgiving and Christmas,
with the exchange's weekend-observance rules (a Saturday holiday is not moved to
Friday for New Year's Day). One-off closures (national days of mourning, 9/11)
cannot be known in advance and are not in it.
"""
from __future__ import annotations

import pandas as pd
from pandas.tseries.holiday import (
    AbstractHolidayCalendar,
    GoodFriday,
    Holiday,
    USLaborDay,
    USMartinLutherKingJr,
    USMemorialDay,
    USPresidentsDay,
    USThanksgivingDay,
    nearest_workday,
    sunday_to_monday,
)
from pandas.tseries.offsets import CustomBusinessDay


class NYSEHolidayCalendar(AbstractHolidayCalendar):
    rules = [
        Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),
        USMartinLutherKingJr,
        USPresidentsDay,
        GoodFriday,
        USMemorialDay,
        Holiday("Juneteenth", month=6, day=19, start_date="2022-01-01", observance=nearest_workday),
        Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
        USLaborDay,
        USThanksgivingDay,
        Holiday("Christmas", month=12, day=25, observance=nearest_workday),
    ]


_BDAY = CustomBusinessDay(calendar=NYSEHolidayCalendar())


def business_days_after(as_of, n: int) -> pd.DatetimeIndex:
    """The ``n`` NYSE trading days strictly after ``as_of``."""
    assert n >= 1, "n must be >= 1"
    start = pd.Timestamp(as_of).floor("D") + pd.Timedelta(days=1)
    return pd.date_range(start, periods=n, freq=_BDAY, name="date")
