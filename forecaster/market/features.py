"""The model frame: a panel's levels as the values the GPT models, and sampled values back to levels.

Each series' modeling transform (log return, difference or level) comes from the
catalog and is applied by its ``Transform`` (``forecaster.market.transforms``, where
the rules are documented); this module applies them to whole panels and path arrays.
``integrate`` inverts the transforms along sampled paths, starting from the last
levels known at the forecast origin.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecaster.market.transforms import Transform, transforms_for

__all__ = ["integrate", "model_frame", "transforms_for"]


def model_frame(panel: pd.DataFrame, transforms: Sequence[Transform] | None = None) -> pd.DataFrame:
    """Apply each series' modeling transform (``transforms``, one per column; default the
    catalog's) to a panel (same index and columns, float64)."""
    transforms = transforms_for(panel.columns) if transforms is None else list(transforms)
    if len(transforms) != panel.shape[1]:
        raise ValueError(f"{len(transforms)} transforms for {panel.shape[1]} columns")
    out = {name: t.forward(panel[name].to_numpy(dtype=np.float64)) for name, t in zip(panel.columns, transforms)}
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
