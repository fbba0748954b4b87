"""Regimes: volatility from VIX, inflation from core CPI YoY, per horizon day and in history.

Defaults (documented, configurable with a YAML/JSON file of the same shape)::

    volatility (VIX, index points):   calm < 15 <= normal < 20 <= elevated < 30 <= stress
    inflation (CORE_CPI_YOY, %):      below 2% < 2 <= 2-3% < 3 <= 3-4% < 4 <= above 4%

A value on an edge belongs to the upper regime. For inflation, the direction over
the horizon is reported too: rising (core CPI YoY at the end of the horizon above
its as-of level by more than ``trend_band``), falling, or stable.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from foundation.errors import UserError


@dataclass(frozen=True)
class RegimeSet:
    """Ordered regimes of one series, cut at ``edges`` (ascending); ``len(labels) == len(edges) + 1``."""

    name: str
    series: str
    edges: tuple[float, ...]
    labels: tuple[str, ...]
    unit: str = ""
    trend_band: float | None = None  # report rising/falling beyond +-band (series units); None = off

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.edges) + 1:
            raise UserError(f"regime set {self.name!r}: {len(self.edges)} edges need {len(self.edges) + 1} labels")
        if list(self.edges) != sorted(self.edges):
            raise UserError(f"regime set {self.name!r}: edges {self.edges} must be ascending")

    def classify(self, values: np.ndarray) -> np.ndarray:
        """Regime index of each value (-1 where missing), same shape."""
        values = np.asarray(values, dtype=np.float64)
        idx = np.searchsorted(np.asarray(self.edges), values, side="right")
        return np.where(np.isnan(values), -1, idx)


VOLATILITY = RegimeSet("volatility", "VIX", (15.0, 20.0, 30.0), ("calm", "normal", "elevated", "stress"), "index points")
INFLATION = RegimeSet(
    "inflation", "CORE_CPI_YOY", (2.0, 3.0, 4.0), ("below 2%", "2-3%", "3-4%", "above 4%"), "%", trend_band=0.25
)
DEFAULT_REGIMES = (VOLATILITY, INFLATION)


def load_regimes(path: str | Path) -> tuple[RegimeSet, ...]:
    """Regime sets from a YAML/JSON file: ``[{name, series, edges, labels, unit?, trend_band?}, ...]``."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text()) if p.suffix.lower() == ".json" else yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise UserError(f"regime file not found: {p}") from None
    if not isinstance(doc, list):
        raise UserError(f"{p}: expected a list of regime sets")
    out = []
    for i, entry in enumerate(doc):
        try:
            out.append(RegimeSet(entry["name"], entry["series"], tuple(map(float, entry["edges"])), tuple(entry["labels"]),
                                 entry.get("unit", ""), entry.get("trend_band")))
        except (KeyError, TypeError) as exc:
            raise UserError(f"{p}, regime set {i + 1}: missing or bad field ({exc})") from None
    return tuple(out)


def regime_probabilities(forecast, regime: RegimeSet) -> pd.DataFrame:
    """(horizon, regimes) probability of each regime across paths, per horizon day.

    Paths that sampled "missing" on a day are left out of that day's probabilities.
    """
    x = forecast.column(regime.series)  # (paths, horizon)
    codes = regime.classify(x)
    valid = (codes >= 0).sum(axis=0).clip(min=1)
    probs = np.stack([(codes == k).sum(axis=0) / valid for k in range(len(regime.labels))], axis=1)
    return pd.DataFrame(probs, index=forecast.dates, columns=list(regime.labels))


def trend_probabilities(forecast, regime: RegimeSet, day: int | None = None) -> dict[str, float]:
    """P(rising), P(falling), P(stable) of the series from the as-of level to horizon ``day``."""
    band = regime.trend_band or 0.0
    x = forecast.column(regime.series)
    day = forecast.horizon if day is None else day
    start = float(forecast.history[regime.series].iloc[-1])
    end = x[:, day - 1]
    end = end[np.isfinite(end)]
    if not np.isfinite(start) or end.size == 0:
        return {"rising": np.nan, "falling": np.nan, "stable": np.nan}
    rising = float(np.mean(end > start + band))
    falling = float(np.mean(end < start - band))
    return {"rising": rising, "falling": falling, "stable": 1.0 - rising - falling}


def historical_regimes(panel: pd.DataFrame, regime: RegimeSet) -> pd.Series:
    """The regime label on every panel day (NaN before the series exists)."""
    codes = regime.classify(panel[regime.series].to_numpy())
    labels = np.array(list(regime.labels) + [None], dtype=object)
    return pd.Series(labels[codes], index=panel.index, name=regime.name)


def regime_table(forecast, regimes=DEFAULT_REGIMES, days=(21, 63, 125, 250)) -> pd.DataFrame:
    """Probability of each regime at a few horizons, one row per (regime set, label)."""
    rows = []
    for regime in regimes:
        if regime.series not in forecast.series:
            continue
        probs = regime_probabilities(forecast, regime)
        for label in regime.labels:
            row = {"regime": regime.name, "label": label}
            row.update({f"day {d}": float(probs[label].iloc[d - 1]) for d in days if d <= forecast.horizon})
            rows.append(row)
    return pd.DataFrame(rows)
