"""Default column specs for the market model frame (``forecaster.market.features.model_frame``).

Every series gets **one token** per day: a single base-``B`` digit, ``B`` at most
``MAX_LEVELS``, plus a missing token (the panel's "not yet available"). So a
day of the 21 reference series is 22 tokens (with the row delimiter), and
sampling cost, which grows with the tokens per day (linearly in the MLPs,
quadratically in attention), is half what two digits per series cost. Each
column's bins are as fine as its target resolution below allows, and coarser
when ``MAX_LEVELS`` bins cannot span the column's range at that resolution; the
precision report (``forecaster tokenizer report``) shows the resulting bounds.
By the catalog's modeling transform:

- ``log_return`` and ``log_mr`` (percent; heavy-tailed, and zero-inflated for monthly/quarterly
  series on the daily calendar): ``signed_log`` with scale 1 (%), bins at least
  ``RETURN_WIDTH`` wide in that space. For the S&P 500 (a 1990-2026 range of
  -12.8 % .. +11.6 %) that is 0.015, so a quiet day's return is within 0.8 bp and
  a 5 % move within 5 bp (the error grows like ``1 + |r|``). Zero is an anchor and
  decodes exactly.
- levels the catalog marks ``positive`` (VIX modeled as a level): ``log`` (for VIX about
  0.3 % relative error, 0.07 points at 20), so no sampled path can ever show a zero
  or negative VIX. The codec is the series' declared property: a zero in the data is
  an error (``CodecError``), never a silent switch to linear bins; a positive series
  modeled by its changes (unemployment as ``diff``) is never tokenized in logs.
- columns whose values all lie on a 0.01 grid (yield, spread and unemployment
  differences in percentage points): ``step=0.01`` (or ``0.1`` where the data lie on
  that grid and 0.01 steps would need more than one token: unemployment, whose
  changes span -0.9 .. +10.4 pp), so they round-trip exactly, zero included.
- everything else (changes of YoY inflation): linear bins at least
  ``LEVEL_WIDTH`` wide.

Decoding returns the centre of the bin, so the quantisation error is unbiased
and averages out when daily changes are integrated into levels.

Headroom is 25 % of the fitted span at each end (in the transformed space),
more than the codec default, because markets set new extremes; beyond it values
are clamped and counted.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from data_sources import catalog
from foundation.errors import UserError

from forecaster.core.tokenizer.spec import ColumnSpec
from forecaster.market.transforms import is_fitted_on_training

MAX_LEVELS = 512  # the most bins a market column may have (``--bins``)
# The default: 64 bins per series. Fewer, wider bins give each bin more data, and that is
# what lets a CPU-trained model learn how series move together (measured, flat `small` on the
# full panel as of 2017-12-29: SPX x XLK 0.83 at 64 bins against 0.34 at 512; docs/PERFORMANCE.md).
DEFAULT_LEVELS = 64
RETURN_WIDTH = 0.002
LEVEL_WIDTH = 0.005
LOG_WIDTH = 0.00025
GRID = 0.01
HEADROOM = 0.25


def _one_digit(t_span: float, width: float, extra: int = 1, max_levels: int = MAX_LEVELS) -> tuple[int, int]:
    """``(base, digits=1)`` for a column spanning ``t_span`` (transformed units): bins of
    ``width``, or as many as ``max_levels`` allows (``extra`` = bins beyond the span)."""
    n_bins = math.ceil(t_span * (1 + 2 * HEADROOM) / width) + extra
    return max(2, min(n_bins, max_levels)), 1


def _n_steps(span: float, step: float) -> int:
    return math.ceil(span * (1 + 2 * HEADROOM) / step) + 2


def on_grid(x: np.ndarray, step: float = GRID) -> bool:
    """True when every finite value is within 1e-6 steps of a multiple of ``step``."""
    x = x[np.isfinite(x)]
    return bool(x.size) and bool(np.all(np.abs(x / step - np.round(x / step)) < 1e-6))


def _grid_step(x: np.ndarray, span: float, max_levels: int) -> float | None:
    """The exact grid a column is tokenized on, or None for linear bins.

    An exact grid needs a bin per step. The coarser 0.1 grid when the data lie on it and the
    0.01 grid would not fit (unemployment changes: few distinct values, exact up to
    ``MAX_LEVELS`` bins); the 0.01 grid when it fits ``max_levels`` bins (at ``MAX_LEVELS``,
    with two digits beyond); else None.
    """
    if not on_grid(x):
        return None
    fine = _n_steps(span, GRID)
    coarse_fits = _n_steps(span, 10 * GRID) <= MAX_LEVELS or max_levels >= MAX_LEVELS
    if on_grid(x, 10 * GRID) and coarse_fits and fine > min(max_levels, MAX_LEVELS):
        return 10 * GRID
    if fine <= max_levels or max_levels >= MAX_LEVELS:
        return GRID
    return None


def _transform_of(name: str) -> str | None:
    return catalog.CATALOG[name].transform if name in catalog.CATALOG else None


def _positive(name: str) -> bool:
    return name in catalog.CATALOG and catalog.CATALOG[name].positive


class CodecError(UserError):
    """A column's data contradict its declared codec (a level declared positive holds a value <= 0)."""


def _log_codec(name: str, transform: str | None) -> bool:
    """Whether column ``name`` is tokenized in logs: a declared property of the series (a level the
    catalog marks ``positive``), never inferred from the data's minimum."""
    return transform == "level" and _positive(name)


def market_specs(frame: pd.DataFrame, transforms: dict[str, str] | None = None,
                 max_levels: int = DEFAULT_LEVELS) -> dict[str, ColumnSpec]:
    """Specs for every column of a market model frame (see the module docstring).

    Parameters
    ----------
    frame : (days, series) float64 model frame; columns named as in the catalog (a
        column not in the catalog is treated as a level).
    transforms : {column: transform name} the frame was made with, where it is not the
        catalog's (a run's own choice).
    max_levels : the most bins of a column (default ``DEFAULT_LEVELS``, at most ``MAX_LEVELS``;
        fewer give each bin more data, more give finer values). A column on the 0.1 grid
        (unemployment changes) keeps it exactly; one on the 0.01 grid (yield changes) keeps it
        when it fits, else gets linear bins (at 64: about 2 bp wide for the 10-year yield).
    """
    specs: dict[str, ColumnSpec] = {}
    for name in frame.columns:
        x = frame[name].to_numpy(dtype=np.float64)
        finite = x[np.isfinite(x)]
        span = float(finite.max() - finite.min()) if finite.size else 0.0
        transform = (transforms or {}).get(str(name), _transform_of(str(name)))
        if (transform == "log_return" or is_fitted_on_training(transform or "")) and not on_grid(x):
            t_span = float(np.log1p(max(finite.max(), 0)) + np.log1p(max(-finite.min(), 0))) if finite.size else 0.0
            base, digits = _one_digit(t_span, RETURN_WIDTH, max_levels=max_levels)
            specs[name] = ColumnSpec(kind="float", transform="signed_log", scale=1.0, base=base, digits=digits, headroom=HEADROOM, nullable=True)
        elif _log_codec(str(name), transform) and finite.size:
            if finite.min() <= 0:
                where = frame.index[np.flatnonzero(np.isfinite(x) & (x <= 0))[0]]
                raise CodecError(f"{name} is declared positive (log codec) but is {finite.min():g} at {where}; "
                                 "fix the data, or declare it 'positive: false' in its catalog entry")
            t_span = float(np.log(finite.max()) - np.log(finite.min()))
            base, digits = _one_digit(t_span, LOG_WIDTH, max_levels=max_levels)
            specs[name] = ColumnSpec(kind="float", transform="log", base=base, digits=digits, headroom=HEADROOM, nullable=True)
        elif (step := _grid_step(x, span, max_levels)) is not None:
            n_steps = _n_steps(span, step)
            base, digits = (n_steps, 1) if n_steps <= MAX_LEVELS else (math.ceil(math.sqrt(n_steps)), 2)
            specs[name] = ColumnSpec(kind="float", step=step, base=base, digits=digits, headroom=HEADROOM, nullable=True)
        else:
            base, digits = _one_digit(span, LEVEL_WIDTH, max_levels=max_levels)
            specs[name] = ColumnSpec(kind="float", base=base, digits=digits, headroom=HEADROOM, nullable=True)
    return specs
