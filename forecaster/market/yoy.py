"""YoY inflation from its index: a release is the index's month-on-month change, the YoY rate follows exactly.

A YoY rate's release replaces last month's 12-month change by this month's; modeling
its daily difference asks the model to guess what leaves the window (the base effect)
as well as what enters it. The ``yoy_index`` modeling transform instead gives the
model, on a release day of month P, the index's month-on-month log change

    m[P] = 100 * log(I[P] / I[P-1])     (percent)

and derives the rate from it exactly, with the change that drops out of the window,
``d[P] = m[P-12]``, known from the released history:

    1 + y[P] / 100 = (1 + y[P-1] / 100) * exp((m[P] - d[P]) / 100)

so base effects are right by construction. For the first 12 releases after a forecast
origin every ``d`` is a released month; after that it is the path's own ``m`` of 12
releases before. On days without a release the series is "no release" (the release
frame of ``forecaster.market.features``) and the rate stays.

Releases are counted, not dated: the k-th release after the origin is month P0 + k, P0
the newest month released by the origin (a skipped month, such as October 2025's CPI,
would shift the count; the reference history has none before 2025).

It needs the index's monthly observations (``inputs.yoy_index_levels(builder)``), which a
data source has and a bare panel of YoY rates does not.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from data_sources import catalog
from forecaster.market.inputs import _days, _index_table, _latest_period, yoy_index  # noqa: F401 (yoy_index re-exported)
from forecaster.market.transforms import IndexMissing, Transform, YoyIndex

NAME = YoyIndex.name


def needs_index(name: str, index_levels: Mapping[str, pd.Series] | None) -> pd.Series:
    """The monthly index observations of YoY series ``name``, or an ``IndexMissing`` that says what to pass."""
    obs = (index_levels or {}).get(name)
    if obs is None or obs.empty:
        raise IndexMissing(
            f"{name} is modeled from its index's monthly changes ({yoy_index(name)}), which the data does not "
            "include: pass a data source or PanelBuilder (not a bare panel), or train with "
            f"--transform {name}=diff")
    return obs


@dataclass(frozen=True)
class IndexMonths:
    """One index's monthly log changes as released: ``mom[k]`` for month position ``k`` (NaN: unknown).

    ``release[k]`` is the day month ``k`` is published (the YoY series' release rule).
    """

    base: int  # month ordinal of position 0
    mom: np.ndarray  # (months,) float64, percent
    release: np.ndarray  # (months,) datetime64[D]

    @classmethod
    def of(cls, name: str, obs: pd.Series) -> "IndexMonths":
        base, values, release = _index_table(obs.astype(np.float64), catalog.get(name).release)
        mom = np.full_like(values, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            mom[1:] = 100.0 * np.log(values[1:] / values[:-1])
        # a change is known once both months are: the later release
        known = np.maximum(release[1:], release[:-1])
        release = np.concatenate([release[:1], known])
        return cls(base, mom, release)

    def latest(self, dates) -> np.ndarray:
        """For each date, the position of the newest month whose change is released by then (-1: none)."""
        return _latest_period(self.release, _days(dates))

    def at(self, k: np.ndarray) -> np.ndarray:
        """``mom`` at positions ``k`` (NaN outside the table)."""
        k = np.asarray(k)
        ok = (k >= 0) & (k < len(self.mom))
        return np.where(ok, self.mom[np.clip(k, 0, len(self.mom) - 1)], np.nan)


def release_values(name: str, dates, on: np.ndarray, obs: pd.Series) -> np.ndarray:
    """The model frame of a ``yoy_index`` series: on each release day (``on``), the month-on-month
    change of the newest month released that day; NaN on other days. ``(len(dates),)`` float64."""
    months = IndexMonths.of(name, obs)
    out = np.full(len(on), np.nan)
    out[on] = months.at(months.latest(pd.DatetimeIndex(dates)[on]))
    return out


def dropouts(name: str, obs: pd.Series, origin, n: int = 12) -> np.ndarray:
    """``d`` of the first ``n`` releases after ``origin``: the released change of month P0 + k - 12, k = 1..n."""
    months = IndexMonths.of(name, obs)
    p0 = int(months.latest([pd.Timestamp(origin)])[0])
    k = np.arange(1, n + 1)
    d = months.at(p0 + k - 12) if p0 >= 0 else np.full(n, np.nan)
    return np.where(p0 + k - 12 <= p0, d, np.nan)


def step_rate(rate, mom, drop):
    """The YoY rate after a release of change ``mom`` with ``drop`` leaving the window (percent)."""
    return 100.0 * ((1.0 + rate / 100.0) * np.exp((mom - drop) / 100.0) - 1.0)


def mom_for_rate(rate, target, drop):
    """The month-on-month change that moves the YoY rate from ``rate`` to ``target`` (inverse of ``step_rate``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * np.log((1.0 + target / 100.0) / (1.0 + rate / 100.0)) + drop


class YoyPaths:
    """The YoY rate along sampled paths, one day at a time; ``integrate`` is the same steps over a whole path.

    ``rate0``: the origin's rate; ``drops``: ``dropouts(...)`` of the first 12 releases (NaN
    where unknown: the rate becomes unknown). A day's value is a release when finite: the
    release frame forces "no release" (NaN) on all other days.
    """

    def __init__(self, rate0: float, drops: np.ndarray, n_paths: int) -> None:
        self.rate = np.full(n_paths, float(rate0))
        self.drops = np.asarray(drops, dtype=np.float64)
        self.moms: list[np.ndarray] = []  # each release's change, per path

    def step(self, values: np.ndarray) -> np.ndarray:
        """``values`` (paths,) of one day -> the rates after it (paths,)."""
        released = np.isfinite(values)
        if released.any():
            k = len(self.moms)  # this release's index, 0-based
            drop = self.drops[k] if k < 12 else self.moms[k - 12]
            self.moms.append(np.where(released, values, np.nan))
            self.rate = np.where(released, step_rate(self.rate, values, drop), self.rate)
        return self.rate.copy()

    def reorder(self, idx: np.ndarray) -> None:
        """Keep paths ``idx`` (resampled paths, repeats allowed)."""
        self.rate = self.rate[idx]
        self.moms = [m[idx] for m in self.moms]

    def integrate(self, steps: np.ndarray) -> np.ndarray:
        """``steps`` (paths, horizon) -> rates (paths, horizon)."""
        return np.stack([self.step(steps[:, t]) for t in range(steps.shape[1])], axis=1)


@dataclass(frozen=True)
class AtRelease(Transform):
    """``yoy_index`` at one release: a stateless transform with that release's drop-out ``drop``
    (a scenario steps a YoY rate to its targets release by release with it)."""

    name: ClassVar[str] = NAME
    drop: float = 0.0

    def step(self, prev_level, value):
        return step_rate(prev_level, value, self.drop)

    def value_for_level(self, prev_level, level):
        return mom_for_rate(prev_level, level, self.drop)


def yoy_columns(columns: Sequence[str], transforms: Sequence[Transform]) -> list[str]:
    """The columns modeled as ``yoy_index``."""
    return [c for c, t in zip(columns, transforms) if t.name == NAME]
