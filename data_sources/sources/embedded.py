"""The embedded offline default: real data that installs with a dependency.

The ``arch`` package (a required dependency, NCSA licence) ships these files, so
this source works with no network and no data folder:

=============  ===============================  ========================  ==========
series         arch dataset (column)            dates                     frequency
=============  ===============================  ========================  ==========
SPX            ``arch.data.sp500`` (Adj Close)   1999-01-04 .. 2018-12-31  daily
VIX            ``arch.data.vix`` (vix)           2014-01-03 .. 2019-01-03  daily
WTI            ``arch.data.wti`` (DCOILWTICO)    1986-01-02 .. 2019-01-03  daily
CORE_CPI       ``arch.data.core_cpi`` (CPILFESL) 1957-01 .. 2018-11        monthly
=============  ===============================  ========================  ==========

CORE_CPI_YOY is derived from CORE_CPI in the panel. The business-day calendar of an
embedded panel is therefore 1999-01-04 .. 2019-01-03 (the union of the daily series'
trading days within SPX's and VIX's span), with VIX missing before 2014.
"""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd

from data_sources.parsing import to_days
from data_sources.sources.base import Source

_DATASETS = {
    "SPX": ("sp500", "Adj Close"),
    "VIX": ("vix", "vix"),
    "WTI": ("wti", "DCOILWTICO"),
    "CORE_CPI": ("core_cpi", "CPILFESL"),
}


class EmbeddedSource(Source):
    """Series shipped inside the ``arch`` package (see module doc for exact coverage)."""

    name = "embedded"

    def available(self) -> list[str]:
        return list(_DATASETS)

    def describe(self, series: str) -> str:
        module, column = _DATASETS[series]
        return f"arch.data.{module} ({column})"

    def _read(self, series: str) -> pd.Series:
        module, column = _DATASETS[series]
        frame = importlib.import_module(f"arch.data.{module}").load()
        values = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
        values.index = to_days(frame.index).rename("date")
        return values.sort_index().dropna().rename(series)
