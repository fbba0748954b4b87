"""Scoring one backtest origin: every model's forecast against what happened after it.

``realised_after`` cuts the realised rows out of the full panel (step ``k`` is the
``k``-th panel day after the origin); ``score_origin`` scores each forecast on
them (``metrics``: CRPS, interval coverage, PIT per series; Brier and RPS per
regime; the energy score per series group) and keeps its fan quantiles for the
dashboard. Both are pure: frames in, frames out; the runner writes them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.market.backtest import metrics
from forecaster.market.features import transforms_for
from forecaster.market.forecast import DEFAULT_QUANTILES, Forecast
from forecaster.market.regimes import DEFAULT_REGIMES

#: the quantiles kept per (model, series, horizon day) in ``OUT/origins/D.fan.parquet``
FAN_QUANTILES = DEFAULT_QUANTILES  # the fan of every origin: the forecast's own quantiles


def realised_after(full_panel: pd.DataFrame, origin, horizon: int) -> pd.DataFrame:
    """The ``horizon`` panel rows after ``origin`` (NaN rows past the end of the data), indexed by step 1..horizon.

    A ``date`` column gives each step's panel day (NaT past the end).
    """
    pos = full_panel.index.searchsorted(pd.Timestamp(origin), side="right")
    rows = full_panel.iloc[pos : pos + horizon]
    out = pd.DataFrame(np.nan, index=pd.RangeIndex(1, horizon + 1, name="step"), columns=full_panel.columns)
    out.iloc[: len(rows)] = rows.to_numpy()
    out.insert(0, "date", pd.NaT)
    out.iloc[: len(rows), 0] = rows.index
    out["date"] = pd.to_datetime(out["date"])
    return out


def series_groups(forecasts: dict[str, Forecast]) -> list[tuple[str, ...]]:
    """The distinct groups of two or more series that some forecast covers (scored jointly by the energy score)."""
    seen = []
    for fc in forecasts.values():
        g = tuple(s for s in fc.series if s in fc.meta["covers"])
        if len(g) >= 2 and g not in seen:
            seen.append(g)
    return seen


def score_origin(forecasts: dict[str, Forecast], realised: pd.DataFrame, history: pd.DataFrame,
                 horizons: list[int], seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and fan quantiles of every forecast at one origin.

    Parameters
    ----------
    forecasts : by model name, all from the same origin and horizon.
    realised : ``realised_after`` of the full panel (steps 1..horizon).
    history : the point-in-time panel at the origin (scales of the energy score).
    horizons : score days (1-based).

    Returns
    -------
    scores : long table, one row per (model, kind, name, horizon) with kind ``series``
        (obs, crps, cov50/80/90, pit, median, mean, members), ``regime`` (brier, rps,
        p_obs = probability given to the realised regime) or ``energy`` (es over the
        series group ``name``).
    fan : per (model, series, step) the ``FAN_QUANTILES``; model ``realised`` holds the outcome in ``q50``.
    """
    rng = np.random.default_rng(seed)
    hz = [h for h in horizons if h <= len(realised)]
    target = realised["date"].to_numpy()[np.asarray(hz) - 1]
    rows = []
    fan = []
    for name, fc in forecasts.items():
        covers = [s for s in fc.series if s in fc.meta["covers"]]
        for s in covers:
            obs = realised[s].to_numpy(dtype=np.float64)
            res = metrics.score_series(fc.column(s), obs, hz, rng)
            for i, h in enumerate(hz):
                rows.append({"model": name, "kind": "series", "name": s, "horizon": h, "target_date": target[i],
                             **{k: float(v[i]) for k, v in res.items()}})
            q = np.nanquantile(np.where(np.isfinite(fc.column(s)), fc.column(s), np.nan), FAN_QUANTILES, axis=0) \
                if np.isfinite(fc.column(s)).any() else np.full((len(FAN_QUANTILES), fc.horizon), np.nan)
            fan.append(pd.DataFrame({"model": name, "series": s, "step": np.arange(1, fc.horizon + 1),
                                     **{f"q{int(round(p * 100)):02d}": q[k] for k, p in enumerate(FAN_QUANTILES)}}))
        for regime in DEFAULT_REGIMES:
            if regime.series not in covers:
                continue
            probs = metrics.regime_probs(fc.column(regime.series)[:, np.asarray(hz) - 1].T, regime)
            code = regime.classify(realised[regime.series].to_numpy(dtype=np.float64)[np.asarray(hz) - 1])
            brier, rps = metrics.regime_scores(code, probs)
            for i, h in enumerate(hz):
                p_obs = float(probs[i, code[i]]) if code[i] >= 0 else np.nan
                rows.append({"model": name, "kind": "regime", "name": regime.name, "horizon": h, "target_date": target[i],
                             "obs": float(code[i]), "brier": brier[i], "rps": rps[i], "p_obs": p_obs})
    # energy score over each model's series group, for every model that covers the group
    for group in series_groups(forecasts):
        transforms = transforms_for(group)
        last = history[list(group)].ffill().iloc[-1].to_numpy(dtype=np.float64)
        scales = metrics.change_scales(history[list(group)], hz)  # (len(hz), d)
        obs = metrics.change_space(realised[list(group)].to_numpy(dtype=np.float64)[np.asarray(hz) - 1], last, transforms)
        for name, fc in forecasts.items():
            if not set(group) <= set(fc.meta["covers"]):
                continue
            sel = [fc.series.index(s) for s in group]
            ens = metrics.change_space(fc.paths[:, np.asarray(hz) - 1][:, :, sel], last, transforms)  # (P, N, d)
            es = metrics.energy(obs / scales, np.transpose(ens, (1, 0, 2)) / scales[:, None, :])
            for i, h in enumerate(hz):
                rows.append({"model": name, "kind": "energy", "name": "+".join(group), "horizon": h,
                             "target_date": target[i], "es": es[i]})
    real = realised.drop(columns="date")
    fan.append(pd.DataFrame({"model": "realised", "series": np.repeat(real.columns.to_numpy(), len(real)),
                             "step": np.tile(real.index.to_numpy(), real.shape[1]),
                             "q50": real.to_numpy().T.reshape(-1)}))
    scores = pd.DataFrame(rows)
    return scores, pd.concat(fan, ignore_index=True)
