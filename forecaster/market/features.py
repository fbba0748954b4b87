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
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from data_sources import catalog
from forecaster.market.inputs import ReleaseClock
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
                releases: bool = True) -> pd.DataFrame:
    """Apply each series' modeling transform (``transforms``, one per column; default the
    catalog's) to a panel (same index and columns, float64).

    ``releases``: a release series (``release_series``) keeps its values on its release days
    only and is missing (the "no release" token) on the others; ``False`` gives the frame of
    runs trained before that rule (zero changes between releases).
    """
    transforms = transforms_for(panel.columns) if transforms is None else list(transforms)
    if len(transforms) != panel.shape[1]:
        raise ValueError(f"{len(transforms)} transforms for {panel.shape[1]} columns")
    out = {name: t.forward(panel[name].to_numpy(dtype=np.float64)) for name, t in zip(panel.columns, transforms)}
    if releases:
        for name, on in release_days(release_series(panel.columns, transforms), panel.index).items():
            out[name][~on] = np.nan
    return pd.DataFrame(out, index=panel.index)


def integrate(last_levels: np.ndarray, steps: np.ndarray, transforms: Sequence[Transform]) -> np.ndarray:
    """Turn sampled transformed values into level paths.

    Parameters
    ----------
    last_levels : (series,) levels on the origin day.
    steps : (paths, horizon, series) sampled modeling-transform values.
    transforms : one ``Transform`` per series (``transforms_for(columns)``).

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
        levels[:, :, j] = t.integrate(last_levels[j], steps[:, :, j])
    return levels
