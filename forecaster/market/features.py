"""Modeling transforms: panel levels <-> the stationary features the GPT models.

Each series' transform comes from the catalog (``data_sources.catalog``):

- ``log_return``: ``100 * log(x_t / x_{t-1})`` (percent). A non-positive level
  (WTI's -36.98 on 2020-04-20) has no log: the return into and out of it is
  missing, and the next return is taken against the last positive level.
- ``diff``: ``x_t - x_{t-1}`` in the series' unit (percentage points for yields).
- ``level``: ``x_t``.

For lower-frequency series on the daily panel, ``log_return``/``diff`` are zero
on days without a release and jump on release days, which is exactly what the
point-in-time panel shows. ``integrate`` inverts the transforms along sampled
paths, starting from the last levels known at the forecast origin.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data_sources import catalog


def transforms_for(columns) -> list[str]:
    """The catalog's modeling transform for each column name."""
    return [catalog.get(c).transform for c in columns]


def model_frame(panel: pd.DataFrame) -> pd.DataFrame:
    """Apply each series' modeling transform to a panel (same index and columns, float64)."""
    out = {}
    for name, transform in zip(panel.columns, transforms_for(panel.columns)):
        x = panel[name].to_numpy(dtype=np.float64)
        if transform == "level":
            out[name] = x.copy()
            continue
        y = np.full_like(x, np.nan)
        if transform == "diff":
            y[1:] = x[1:] - x[:-1]
        else:
            positive = np.where(x > 0, x, np.nan)
            # previous positive level, carried over gaps from a non-positive print only
            prev = pd.Series(positive).shift(1)
            gap = pd.Series(x).shift(1).le(0)
            prev = prev.where(~gap, pd.Series(positive).ffill().shift(1))
            with np.errstate(divide="ignore", invalid="ignore"):
                y = 100.0 * np.log(positive / prev.to_numpy())
        out[name] = y
    return pd.DataFrame(out, index=panel.index)


def integrate(last_levels: np.ndarray, steps: np.ndarray, transforms: list[str]) -> np.ndarray:
    """Turn sampled transformed values into level paths.

    Parameters
    ----------
    last_levels : (series,) levels on the origin day.
    steps : (paths, horizon, series) sampled modeling-transform values.
    transforms : one catalog transform per series.

    Returns
    -------
    (paths, horizon, series) levels. A missing step (NaN) keeps the level unchanged.
    """
    assert steps.ndim == 3 and steps.shape[2] == len(transforms) == len(last_levels), "shape mismatch"
    levels = np.empty_like(steps, dtype=np.float64)
    for j, transform in enumerate(transforms):
        s = steps[:, :, j]
        if transform == "level":
            levels[:, :, j] = s
        elif transform == "diff":
            levels[:, :, j] = last_levels[j] + np.nancumsum(s, axis=1)
        else:
            levels[:, :, j] = last_levels[j] * np.exp(np.nancumsum(s, axis=1) / 100.0)
    return levels
