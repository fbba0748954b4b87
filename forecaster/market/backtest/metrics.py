"""Scores of one path ensemble against what happened.

The proper scores come from ``scoringrules`` (CRPS with the fair estimator, the
energy score, the Brier and ranked probability scores); this module only handles
shapes, missing values and the transformations around them:

- CRPS per series and horizon day, in the series' own units (index points, %).
- Energy score per horizon over a group of series, on standardized changes from
  the origin: ``100 log(x_h / x_0)`` for price-like series, ``x_h - x_0`` for the
  others, each divided by the standard deviation of its historical ``h``-day
  changes as of the origin (the same scale for every model, so it stays proper).
- Coverage of the central 50/80/90 % intervals (ensemble quantiles, inclusive).
- Randomized PIT: the share of members below the outcome, ties split uniformly
  (monthly series often sit exactly on the current value).
- Regimes: per horizon day the share of paths in each regime against the realised
  regime: multi-category Brier score (sum over regimes) and ranked probability score.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scoringrules as sr

from forecaster.market.regimes import RegimeSet
from forecaster.market.transforms import Transform, transforms_for

HORIZONS = (1, 5, 21, 63, 125, 250)
LEVELS = (0.5, 0.8, 0.9)
MIN_MEMBERS = 2


def crps(obs: np.ndarray, ens: np.ndarray) -> np.ndarray:
    """CRPS of ensembles against outcomes (fair estimator).

    obs : (N,); ens : (N, members). NaN members are left out row by row; a row with a
    NaN outcome or fewer than 2 members scores NaN. Returns (N,).
    """
    obs = np.asarray(obs, dtype=np.float64)
    ens = np.asarray(ens, dtype=np.float64)
    out = np.full(obs.shape, np.nan)
    valid = np.isfinite(ens)
    full = valid.all(axis=1) & np.isfinite(obs)
    if full.any():
        out[full] = sr.crps_ensemble(obs[full], ens[full], estimator="fair", backend="numpy")
    for i in np.flatnonzero(~full):
        members = ens[i, valid[i]]
        if np.isfinite(obs[i]) and members.size >= MIN_MEMBERS:
            out[i] = float(sr.crps_ensemble(obs[i : i + 1], members[None, :], estimator="fair", backend="numpy")[0])
    return out


def energy(obs: np.ndarray, ens: np.ndarray) -> np.ndarray:
    """Energy score of multivariate ensembles.

    obs : (N, d); ens : (N, members, d). Members with any NaN are left out; a row with
    a NaN outcome or fewer than 2 members scores NaN. Returns (N,).
    """
    obs = np.asarray(obs, dtype=np.float64)
    ens = np.asarray(ens, dtype=np.float64)
    out = np.full(obs.shape[0], np.nan)
    for i in range(obs.shape[0]):
        members = ens[i][np.isfinite(ens[i]).all(axis=1)]
        if np.isfinite(obs[i]).all() and len(members) >= MIN_MEMBERS:
            out[i] = float(sr.es_ensemble(obs[i][None, :], members[None, :, :], backend="numpy")[0])
    return out


def coverage(obs: np.ndarray, ens: np.ndarray, level: float) -> np.ndarray:
    """1.0 where the outcome is inside the ensemble's central ``level`` interval, 0.0 outside, NaN if unscorable.

    obs : (N,); ens : (N, members). Returns (N,).
    """
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    out = np.full(len(obs), np.nan)
    for i, y in enumerate(obs):
        members = ens[i][np.isfinite(ens[i])]
        if np.isfinite(y) and members.size >= MIN_MEMBERS:
            lo, hi = np.quantile(members, [lo_q, hi_q])
            out[i] = float(lo <= y <= hi)
    return out


def pit(obs: np.ndarray, ens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomized probability integral transform: (below + U * ties) / members. (N,) in [0, 1], NaN if unscorable."""
    out = np.full(len(obs), np.nan)
    for i, y in enumerate(obs):
        members = ens[i][np.isfinite(ens[i])]
        if np.isfinite(y) and members.size >= MIN_MEMBERS:
            below = np.sum(members < y)
            ties = np.sum(members == y)
            out[i] = (below + rng.uniform() * ties) / members.size
    return out


def regime_probs(values: np.ndarray, regime: RegimeSet) -> np.ndarray:
    """(N, regimes) share of members in each regime; values (N, members); NaN rows where no member is valid."""
    codes = regime.classify(values)
    k = len(regime.labels)
    counts = np.stack([(codes == j).sum(axis=1) for j in range(k)], axis=1).astype(np.float64)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / total, np.nan)


def regime_scores(obs_code: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multi-category Brier score and RPS of regime probabilities.

    obs_code : (N,) realised regime index (-1 = unknown); probs : (N, K). Returns two (N,) arrays.
    """
    ok = (obs_code >= 0) & np.isfinite(probs).all(axis=1)
    brier = np.full(len(obs_code), np.nan)
    rps = np.full(len(obs_code), np.nan)
    if ok.any():
        onehot = np.eye(probs.shape[1])[obs_code[ok]]
        brier[ok] = sr.brier_score(onehot, probs[ok], backend="numpy").sum(axis=1)
        rps[ok] = sr.rps_score(onehot, probs[ok], onehot=True, backend="numpy")
    return brier, rps


def change_space(levels: np.ndarray, last: np.ndarray, transforms: Sequence[Transform]) -> np.ndarray:
    """Changes from the origin along the last axis (series): each series' ``Transform.change_from_origin``.

    levels : (..., series); last : (series,) origin levels; transforms : one per series.
    ``100 log(x/x0)`` for ``log_return`` series, ``x - x0`` otherwise. Same shape as ``levels``.
    """
    out = np.empty_like(levels, dtype=np.float64)
    for j, t in enumerate(transforms):
        out[..., j] = t.change_from_origin(levels[..., j], last[j])
    return out


def change_scales(history: pd.DataFrame, horizons, years: int = 10) -> np.ndarray:
    """(len(horizons), series) standard deviation of historical h-day changes (``change_space``) over the last ``years``."""
    recent = history[history.index >= history.index[-1] - pd.DateOffset(years=years)]
    x = recent.to_numpy(dtype=np.float64)
    transforms = transforms_for(history.columns)
    out = np.full((len(horizons), x.shape[1]), np.nan)
    for i, h in enumerate(horizons):
        if len(x) <= h:
            continue
        d = np.stack([t.change_from_origin(x[h:, j], x[:-h, j]) for j, t in enumerate(transforms)], axis=1)
        out[i] = np.nanstd(np.where(np.isfinite(d), d, np.nan), axis=0)
    out[~(out > 0)] = np.nan
    return out


def score_series(fc_paths: np.ndarray, realised: np.ndarray, horizons, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """CRPS, coverage, PIT, median and mean of one series at the given horizons.

    fc_paths : (members, horizon) levels; realised : (horizon,) levels aligned by step.
    Returns arrays of shape (len(horizons),) keyed by ``crps cov50 cov80 cov90 pit median mean members``.
    """
    idx = np.asarray(horizons) - 1
    ens = fc_paths[:, idx].T  # (N, members)
    obs = realised[idx]
    out = {"obs": obs, "crps": crps(obs, ens)}
    for level in LEVELS:
        out[f"cov{int(round(level * 100))}"] = coverage(obs, ens, level)
    out["pit"] = pit(obs, ens, rng)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN horizon day is NaN, not a warning
        out["median"] = np.nanmedian(ens, axis=1)
        out["mean"] = np.nanmean(ens, axis=1)
    out["members"] = np.isfinite(ens).sum(axis=1).astype(np.float64)
    return out
