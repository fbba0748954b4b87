"""Default column specs for the market model frame (``forecaster.features.model_frame``).

Every series gets two tokens (one pair of base-``B`` digits, ``B <= MAX_BASE``,
chosen per column as the smallest base that reaches its resolution) and a
missing token (the panel's "not yet available"). By the catalog's modeling
transform:

- ``log_return`` (percent; heavy-tailed, and zero-inflated for monthly/quarterly
  series on the daily calendar): ``signed_log`` with scale 1 (%), bins
  ``RETURN_WIDTH`` wide in that space. Near zero the error is about
  ``RETURN_WIDTH / 2`` percent (0.1 bp); at a move of r percent it is about
  ``(1 + |r|) * RETURN_WIDTH / 2``, i.e. 0.1 % of the move, so a crash day keeps
  its size to a few basis points. Zero is an anchor and decodes exactly.
- levels the catalog marks ``positive`` (VIX, UNRATE): ``log`` with bins
  ``LOG_WIDTH`` wide (at most 0.0125 % relative error, 0.005 VIX points at 40), so no
  sampled path can ever show a zero or negative VIX.
- columns whose values all lie on a 0.01 grid (yield and spread differences in
  percentage points): ``step=0.01``, so they round-trip exactly, zero included.
- other levels (YoY inflation): linear bins ``LEVEL_WIDTH`` wide (error <= 0.0025 pp).

Headroom is 25 % of the fitted span at each end (in the transformed space),
more than the codec default, because markets set new extremes; beyond it values
are clamped and counted. The report shows the resulting bounds.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.tokenizer.spec import ColumnSpec

MAX_BASE = 128
RETURN_WIDTH = 0.002
LEVEL_WIDTH = 0.005
LOG_WIDTH = 0.00025
GRID = 0.01
HEADROOM = 0.25


def _base_digits(n_bins: int) -> tuple[int, int]:
    """Fewest digits, then the smallest base <= MAX_BASE, with base**digits >= n_bins."""
    digits = 1
    while True:
        base = max(2, math.ceil(n_bins ** (1.0 / digits) - 1e-9))
        while base**digits < n_bins:
            base += 1
        if base <= MAX_BASE:
            return base, digits
        digits += 1


def on_grid(x: np.ndarray, step: float = GRID) -> bool:
    """True when every finite value is within 1e-6 steps of a multiple of ``step``."""
    x = x[np.isfinite(x)]
    return bool(x.size) and bool(np.all(np.abs(x / step - np.round(x / step)) < 1e-6))


def _transform_of(name: str) -> str | None:
    from data_sources import catalog

    return catalog.CATALOG[name].transform if name in catalog.CATALOG else None


def _positive(name: str) -> bool:
    from data_sources import catalog

    return name in catalog.CATALOG and catalog.CATALOG[name].positive


def market_specs(frame: pd.DataFrame) -> dict[str, ColumnSpec]:
    """Specs for every column of a market model frame (see the module docstring).

    Parameters
    ----------
    frame : (days, series) float64 model frame; columns named as in the catalog (a
        column not in the catalog is treated as a level).
    """
    specs: dict[str, ColumnSpec] = {}
    for name in frame.columns:
        x = frame[name].to_numpy(dtype=np.float64)
        finite = x[np.isfinite(x)]
        span = float(finite.max() - finite.min()) if finite.size else 0.0
        if _transform_of(str(name)) == "log_return" and not on_grid(x):
            t_span = float(np.log1p(max(finite.max(), 0)) + np.log1p(max(-finite.min(), 0))) if finite.size else 0.0
            base, digits = _base_digits(math.ceil(t_span * (1 + 2 * HEADROOM) / RETURN_WIDTH) + 1)
            specs[name] = ColumnSpec(kind="float", transform="signed_log", scale=1.0, base=base, digits=digits, headroom=HEADROOM, nullable=True)
        elif _positive(str(name)) and finite.size and finite.min() > 0:
            t_span = float(np.log(finite.max()) - np.log(finite.min()))
            base, digits = _base_digits(math.ceil(t_span * (1 + 2 * HEADROOM) / LOG_WIDTH) + 1)
            specs[name] = ColumnSpec(kind="float", transform="log", base=base, digits=digits, headroom=HEADROOM, nullable=True)
        elif on_grid(x):
            base, digits = _base_digits(math.ceil(span * (1 + 2 * HEADROOM) / GRID) + 2)
            specs[name] = ColumnSpec(kind="float", step=GRID, base=base, digits=digits, headroom=HEADROOM, nullable=True)
        else:
            base, digits = _base_digits(math.ceil(span * (1 + 2 * HEADROOM) / LEVEL_WIDTH) + 1)
            specs[name] = ColumnSpec(kind="float", base=base, digits=digits, headroom=HEADROOM, nullable=True)
    return specs
