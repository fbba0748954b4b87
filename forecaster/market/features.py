"""The model frame: a panel's levels as the values the GPT models, and sampled values back to levels.

Each series' modeling transform (log return, difference or level) comes from the
catalog and is applied by its ``Transform`` (``forecaster.market.transforms``, where
the rules are documented); this module applies them to whole panels and path arrays.
``integrate`` inverts the transforms along sampled paths, starting from the last
levels known at the forecast origin.

Releases, not daily noise: a weekly, monthly or quarterly series modeled as a change
(CPI YoY, unemployment, M2, GDP, the Fed balance sheet) has a value only on its release
days, the days its publication rule brings a new value into the panel (``ReleaseClock``,
known in advance from the calendar). There it is the change the release made (which may
be zero: an unchanged unemployment rate); on every other day it is missing, which the
tokenizer writes as the column's missing token: the "no release" token. A sampler forces
that token on the days without a release and forbids it on release days, so a path
changes a monthly series on its 12 release days a year, no more, no fewer. Runs trained
before this rule (``run.json`` without ``release_frame``) saw zeros on those days instead;
``model_frame(..., releases=False)`` is their frame.

A YoY inflation rate modeled as ``yoy_index`` (the default where the data has its index)
is, on its release days, the index's month-on-month change, and its rate is derived from
those exactly (``forecaster.market.yoy``); both directions need the index's monthly
observations (``index_levels``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from data_sources import catalog
from forecaster.market.inputs import ReleaseClock
from forecaster.market import yoy
from forecaster.market.transforms import Transform, transforms_for

__all__ = ["RELEASE_FREQUENCIES", "integrate", "model_frame", "release_days", "release_series", "transforms_for"]

RELEASE_FREQUENCIES = ("W", "M", "Q")  # series whose values arrive on release days only

def release_series(columns: Sequence[str], transforms: Sequence[Transform]) -> list[str]:
    """The columns that take the "no release" token on days without a release: the weekly,
    monthly and quarterly series modeled as changes (a ``level`` series' value is its level)."""
    return [c for c, t in zip(columns, transforms)
            if catalog.get(str(c)).frequency in RELEASE_FREQUENCIES and t.models_changes]


def release_days(names: Sequence[str], dates) -> dict[str, np.ndarray]:
    """``{name: (len(dates),) bool}``: whether a new value of each series enters the panel on each business day."""
    dates = pd.DatetimeIndex(dates)
    if not len(names) or not len(dates):
        return {name: np.zeros(len(dates), dtype=bool) for name in names}
    clock = ReleaseClock(list(names), dates[0], dates[-1])
    return {name: clock.is_release(name, dates) for name in names}


def model_frame(panel: pd.DataFrame, transforms: Sequence[Transform] | None = None,
                releases: bool = True, index_levels: Mapping[str, pd.Series] | None = None) -> pd.DataFrame:
    """Apply each series' modeling transform (``transforms``, one per column; default the
    catalog's) to a panel (same index and columns, float64).

    ``releases``: a release series (``release_series``) keeps its values on its release days
    only and is missing (the "no release" token) on the others; ``False`` gives the frame of
    runs trained before that rule (zero changes between releases).
    ``index_levels``: ``{yoy series: its index's monthly observations}`` for ``yoy_index``
    columns (an ``IndexMissing`` error without them).
    """
    transforms = transforms_for(panel.columns) if transforms is None else list(transforms)
    if len(transforms) != panel.shape[1]:
        raise ValueError(f"{len(transforms)} transforms for {panel.shape[1]} columns")
    on = release_days(release_series(panel.columns, transforms), panel.index) if releases else {}
    out = {}
    for name, t in zip(panel.columns, transforms):
        if t.name == yoy.NAME:
            if not releases:
                raise ValueError(f"{name}: a yoy_index series needs the release frame")
            out[name] = yoy.release_values(name, panel.index, on[name], yoy.needs_index(name, index_levels))
        else:
            out[name] = t.forward(panel[name].to_numpy(dtype=np.float64))
    if releases:
        for name, days in on.items():
            out[name][~days] = np.nan
    return pd.DataFrame(out, index=panel.index)


def integrate(last_levels: np.ndarray, steps: np.ndarray, transforms: Sequence[Transform],
              drops: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
    """Turn sampled transformed values into level paths.

    Parameters
    ----------
    last_levels : (series,) levels on the origin day.
    steps : (paths, horizon, series) sampled modeling-transform values.
    transforms : one ``Transform`` per series (``transforms_for(columns)``).
    drops : per series, for a ``yoy_index`` one, the drop-outs of its first 12 releases
        (``yoy.dropouts``); None for the others.

    Returns
    -------
    (paths, horizon, series) levels. A missing step (NaN) of a return or difference
    keeps the level unchanged; a missing ``level`` value stays missing.
    """
    if not (steps.ndim == 3 and steps.shape[2] == len(transforms) == len(last_levels)):
        raise ValueError(f"steps {steps.shape} must be (paths, horizon, series) with one transform and one "
                         f"last level per series; got {len(transforms)} transforms, {len(last_levels)} levels")
    levels = np.empty_like(steps, dtype=np.float64)
    for j, t in enumerate(transforms):
        if t.name == yoy.NAME:
            d = None if drops is None else drops[j]
            if d is None:
                raise yoy.IndexMissing(f"series {j}: a yoy_index series needs its drop-outs (yoy.dropouts)")
            levels[:, :, j] = yoy.YoyPaths(last_levels[j], d, steps.shape[0]).integrate(steps[:, :, j])
        else:
            levels[:, :, j] = t.integrate(last_levels[j], steps[:, :, j])
    return levels
