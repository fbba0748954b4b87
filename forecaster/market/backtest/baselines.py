"""Baselines, sampled into the same path format as the GPT (a ``Forecast``).

Each baseline is fitted at every origin on the point-in-time panel as of that
origin (``panel`` ends on the origin; nothing after it is passed in) and returns
``(paths, horizon, series)`` levels over the same series as the panel. A series a
baseline does not model is NaN in its paths and is listed outside
``meta["covers"]``; metrics skip it.

- ``RandomWalk``: every series follows a random walk whose daily shocks are
  whole historical days (all series together, so cross-correlation is kept) drawn
  in circular blocks of ``block`` days from the last ``lookback`` days. Shocks are
  the modeling transforms' steps (log returns in %, differences: inflation and
  unemployment walk in daily changes); VIX, a level in index points that cannot
  go below zero, walks in log changes (%).
- ``GarchFHS``: GARCH(1,1) with Student-t innovations, forecast by filtered
  historical simulation (``arch``'s bootstrap forecast: standardized residuals
  resampled through the fitted variance recursion). SPX: constant mean on daily
  log returns (%). VIX: AR(1) mean on ``100 * log(VIX)``, demeaned before the fit
  (VIX mean-reverts); a fit that does not converge or is not stationary gives no VIX
  forecast at that origin rather than explosive paths.
- ``MacroVAR``: a VAR on month-end snapshots of the macro block, in levels for the
  mean-reverting series (inflation YoY, unemployment: the catalog's ``stationary``)
  and in the modeling transforms for the rest, lag order by AIC (``statsmodels``; an AR for a one-series block),
  simulated with Gaussian shocks;
  monthly values are put on business days at each series' typical release day.
- ``Climatology``: the historical distribution of each mean-reverting level (the
  catalog's ``stationary`` series: VIX, inflation YoY, unemployment): every
  path is a randomly chosen historical stretch of ``horizon`` days; its regime
  probabilities are the historical regime frequencies.

Two stronger baselines (in the default set ``BASELINE_NAMES`` with the four above):

- ``HarLogVix`` (``har``): Corsi's HAR on log VIX (every daily, ``positive`` and
  ``stationary`` series of the catalog): tomorrow's log level regressed by least
  squares on today's, the mean of the last 5 and the mean of the last 22 days, over
  the last ``lookback`` days; paths are simulated recursively with the fitted
  residuals drawn i.i.d., then exponentiated. A fit with persistence (the sum of
  the three slopes) of 1 or more gives no forecast at that origin.
- ``AtkesonOhanian`` (``atkeson_ohanian``): the random walk of Atkeson & Ohanian
  (2001) for the YoY inflation series: the forecast at every horizon is the last
  observed YoY. Its uncertainty is the random walk's own historical errors: each
  path adds to the last value a real historical stretch ``y[t+1..t+H] - y[t]`` of
  the daily point-in-time panel (one start ``t`` per path, shared by all YoY
  series, from the last ``lookback`` days), so a path is joint across horizons and
  series and moves only on release days. Starts are taken at the origin's phase
  of the release cycle (the same number of panel days, within one, since each
  series last changed), so the historical steps fall where the next releases fall.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_sources import catalog
from data_sources.calendar import business_days_after
from forecaster.market.backtest.windows import BacktestError
from forecaster.market.features import integrate
from forecaster.market.forecast import Forecast
from forecaster.market.inputs import yoy_index
from forecaster.market.transforms import TRANSFORMS, Transform, transform_of, transforms_for

BASELINE_NAMES = ("random_walk", "garch", "var", "climatology", "har", "atkeson_ohanian")  # the default set


def _forecast(panel: pd.DataFrame, levels: np.ndarray, name: str, covers: list[str], seed: int, **meta) -> Forecast:
    origin = panel.index[-1]
    horizon = levels.shape[1]
    info = {"model": name, "covers": covers, "seed": int(seed), "as_of": str(origin.date()), **meta}
    return Forecast(origin, business_days_after(origin, horizon), list(panel.columns), levels, panel.iloc[-500:].copy(), info)


def _empty(panel: pd.DataFrame, n_paths: int, horizon: int) -> np.ndarray:
    return np.full((n_paths, horizon, panel.shape[1]), np.nan)


def block_indices(n_obs: int, n_paths: int, horizon: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """(n_paths, horizon) row indices into ``n_obs`` rows: circular blocks of ``block`` consecutive rows."""
    n_blocks = -(-horizon // block)
    starts = rng.integers(0, n_obs, size=(n_paths, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n_obs
    return idx.reshape(n_paths, -1)[:, :horizon]


def random_walk_transforms(columns) -> list[Transform]:
    """How each series walks: its modeling transform, with ``level`` series walking in differences,
    or in log returns when the catalog declares the level positive (VIX, a user's positive level)."""
    out = []
    for name, t in zip(columns, transforms_for(columns)):
        if not t.models_changes:
            t = TRANSFORMS["log_return" if catalog.get(name).positive else "diff"]
        out.append(t)
    return out


def change_frame(panel: pd.DataFrame) -> pd.DataFrame:
    """Daily shocks of each series under ``random_walk_transforms`` (log returns in %, or differences)."""
    walk = random_walk_transforms(panel.columns)
    shocks = {name: w.forward(panel[name].to_numpy(dtype=np.float64)) for name, w in zip(panel.columns, walk)}
    return pd.DataFrame(shocks, index=panel.index)


@dataclass
class RandomWalk:
    """Random walk with block-bootstrapped joint historical shocks (see module doc)."""

    block: int = 21
    lookback: int = 2520
    name: str = "random_walk"

    def forecast(self, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int) -> Forecast:
        shocks = change_frame(panel.iloc[-(self.lookback + 1):]).iloc[1:]
        covers = [c for c in panel.columns if shocks[c].notna().sum() >= self.block]
        # A day where a covered series has no shock (a holiday of its market) counts as no change.
        data = shocks[covers].fillna(0.0).to_numpy()
        rng = np.random.default_rng(seed)
        idx = block_indices(len(data), n_paths, horizon, min(self.block, len(data)), rng)
        steps = _empty(panel, n_paths, horizon)
        cols = [panel.columns.get_loc(c) for c in covers]
        steps[:, :, cols] = data[idx]
        last = panel.ffill().iloc[-1].to_numpy(dtype=np.float64)
        levels = integrate(last, steps, random_walk_transforms(panel.columns))
        levels[:, :, [j for j in range(panel.shape[1]) if j not in cols]] = np.nan
        return _forecast(panel, levels, self.name, covers, seed, block=self.block, lookback=self.lookback)


def _fit_garch(y: np.ndarray, mean: str):
    from arch import arch_model  # deferred: heavy, and only the GARCH baseline needs it

    model = arch_model(y, mean=mean, lags=1 if mean == "AR" else 0, vol="GARCH", p=1, q=1, dist="t", rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; a failed fit shows in the scores
        return model.fit(disp="off", show_warning=False)


@dataclass
class GarchFHS:
    """GARCH(1,1)-t with filtered historical simulation for SPX and VIX (see module doc)."""

    lookback: int = 2520
    name: str = "garch"

    def forecast(self, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int) -> Forecast:
        levels = _empty(panel, n_paths, horizon)
        covers, params = [], {}
        rs = np.random.RandomState(seed % (2**32))
        recent = panel.iloc[-(self.lookback + 1):]
        if "SPX" in panel.columns:
            spx = TRANSFORMS["log_return"]  # the model is on daily log returns, whatever the catalog says
            r = spx.forward(recent["SPX"].to_numpy(dtype=np.float64))
            r = r[~np.isnan(r)]
            res = _fit_garch(r, "Constant")
            sims = res.forecast(horizon=horizon, method="bootstrap", simulations=n_paths, random_state=rs,
                                reindex=False).simulations.values[-1]  # (paths, horizon) daily log returns, %
            last = float(panel["SPX"].dropna().iloc[-1])
            levels[:, :, panel.columns.get_loc("SPX")] = spx.integrate(last, sims)
            covers.append("SPX")
            params["SPX"] = {k: float(v) for k, v in res.params.items()}
        if "VIX" in panel.columns:
            # demeaned: on the raw level of 100 log VIX (about 300) the optimiser fails on the
            # March-May 2020 panels and returns an explosive AR coefficient (22, 5467)
            y = 100.0 * np.log(recent["VIX"].dropna().to_numpy())
            centre = float(y.mean())
            res = _fit_garch(y - centre, "AR")
            ar = float(res.params["y[1]"])
            if res.convergence_flag == 0 and abs(ar) < 1:
                sims = res.forecast(horizon=horizon, method="bootstrap", simulations=n_paths, random_state=rs,
                                    reindex=False).simulations.values[-1] + centre  # (paths, horizon) of 100 log VIX
                levels[:, :, panel.columns.get_loc("VIX")] = np.exp(sims / 100.0)
                covers.append("VIX")
            # else: no VIX forecast from this origin (left out of the scores, listed outside covers)
            params["VIX"] = {**{k: float(v) for k, v in res.params.items()}, "centre": centre,
                             "converged": res.convergence_flag == 0}
        return _forecast(panel, levels, self.name, covers, seed, lookback=self.lookback, params=params)


def macro_block(columns) -> list[str]:
    """The panel's macro-group series (monthly, weekly and quarterly releases)."""
    return [c for c in columns if catalog.get(c).group == "macro"]


def release_day(values: pd.Series, years: int = 5) -> int:
    """Typical day of the month on which a step-function daily series changes (median of recent changes; 15 if none)."""
    v = values.dropna()
    v = v[v.index >= v.index[-1] - pd.DateOffset(years=years)] if len(v) else v
    changed = v.index[1:][np.diff(v.to_numpy()) != 0]
    return int(np.median(changed.day)) if len(changed) else 15


@dataclass
class MacroVAR:
    """VAR on month-end snapshots of the transformed macro block (see module doc)."""

    maxlags: int = 12
    name: str = "var"

    def forecast(self, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int) -> Forecast:
        from statsmodels.tsa.api import VAR  # deferred: heavy to import, and only this baseline needs it

        levels = _empty(panel, n_paths, horizon)
        block = [c for c in macro_block(panel.columns) if catalog.get(c).frequency == "M"]
        monthly = panel[block].groupby(panel.index.to_period("M")).last().dropna()
        if len(block) == 0 or len(monthly) < 3 * self.maxlags + 12:
            return _forecast(panel, levels, self.name, [], seed)
        origin = panel.index[-1]
        dates = business_days_after(origin, horizon)
        months_ahead = (dates.year - origin.year) * 12 + (dates.month - origin.month)  # (horizon,) >= 0
        n_months = int(months_ahead.max()) + 1
        transforms = [TRANSFORMS["level"] if catalog.get(c).stationary else transform_of(c) for c in block]
        x = monthly.to_numpy(dtype=np.float64)
        y = np.stack([t.forward(x[:, j]) for j, t in enumerate(transforms)], axis=1)  # monthly modeling transform
        y = y[1:] if any(t.models_changes for t in transforms) else y
        rng = np.random.default_rng(seed)
        if len(block) == 1:
            sims, p = _simulate_ar(y[:, 0], self.maxlags, n_months, n_paths, rng)
        else:
            model = VAR(y)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                order = model.select_order(self.maxlags).aic
                res = model.fit(max(1, int(order)))
            p = res.k_ar
            sims = res.simulate_var(steps=p + n_months, initial_values=y[-p:], nsimulations=n_paths,
                                    rng=rng)[:, p:, :]  # (paths, months, series)
        # back to monthly levels; month 0 is the origin's own snapshot (the value known now)
        lv = np.empty((n_paths, n_months + 1, len(block)))
        lv[:, 0, :] = x[-1]
        lv[:, 1:, :] = integrate(x[-1], sims, transforms)
        for j, name in enumerate(block):
            # the snapshot of month k is visible from that month's release day on
            k = months_ahead - (dates.day < release_day(panel[name])).astype(int)
            k = np.clip(k, 0, n_months)
            levels[:, :, panel.columns.get_loc(name)] = lv[:, k, j]
        return _forecast(panel, levels, self.name, block, seed, lags=int(p))


def _simulate_ar(y: np.ndarray, maxlags: int, steps: int, n_paths: int, rng: np.random.Generator):
    """A one-series block: AR(p) with a constant, p by AIC (``statsmodels``), Gaussian shocks.

    Returns ((n_paths, steps, 1) simulated values, p).
    """
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order  # deferred: heavy, as in MacroVAR

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lags = ar_select_order(y, maxlags, ic="aic", trend="c").ar_lags
        p = max(lags) if lags else 1
        res = AutoReg(y, lags=p, trend="c").fit()
    const, phi = float(res.params[0]), np.asarray(res.params[1:], dtype=np.float64)  # phi[i]: lag i+1
    hist = np.tile(y[-p:][::-1], (n_paths, 1))  # (paths, p), most recent first
    out = np.empty((n_paths, steps, 1))
    shocks = rng.normal(scale=np.sqrt(res.sigma2), size=(n_paths, steps))
    for t in range(steps):
        nxt = const + hist @ phi + shocks[:, t]
        out[:, t, 0] = nxt
        hist = np.concatenate([nxt[:, None], hist[:, :-1]], axis=1)
    return out, p


@dataclass
class Climatology:
    """Historical stretches of the mean-reverting levels: the regime base rates (see module doc)."""

    lookback: int | None = None  # None: all history up to the origin
    name: str = "climatology"

    def forecast(self, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int) -> Forecast:
        levels = _empty(panel, n_paths, horizon)
        rng = np.random.default_rng(seed)
        hist = panel if self.lookback is None else panel.iloc[-self.lookback:]
        covers = []
        for name in panel.columns:
            x = hist[name].dropna().to_numpy()
            if not catalog.get(name).stationary or len(x) < horizon + 1:
                continue
            starts = rng.integers(0, len(x) - horizon + 1, size=n_paths)
            levels[:, :, panel.columns.get_loc(name)] = x[starts[:, None] + np.arange(horizon)[None, :]]
            covers.append(name)
        return _forecast(panel, levels, self.name, covers, seed)


HAR_LAGS = (1, 5, 22)  # days averaged by the daily, weekly and monthly regressors


def har_columns(columns) -> list[str]:
    """The series the HAR baseline models: daily, ``positive`` and ``stationary`` in the catalog (VIX)."""
    return [c for c in columns if (s := catalog.get(c)).frequency == "D" and s.positive and s.stationary]


def har_design(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HAR regressors and targets of a daily series ``x`` (n,), n > 22.

    Returns ``X`` (n - 22, 4): rows ``[1, x_t, mean(x_{t-4..t}), mean(x_{t-21..t})]`` for
    t = 21 .. n - 2, and the targets ``x_{t+1}`` (n - 22,).
    """
    m = HAR_LAGS[-1]
    assert len(x) > m, f"HAR needs more than {m} observations, got {len(x)}"
    csum = np.concatenate([[0.0], np.cumsum(x)])
    t = np.arange(m - 1, len(x) - 1)
    cols = [(csum[t + 1] - csum[t + 1 - k]) / k for k in HAR_LAGS]
    return np.column_stack([np.ones(len(t)), *cols]), x[t + 1]


def fit_har(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares HAR fit of ``x`` (n,): (coefficients ``[const, daily, weekly, monthly]``, residuals (n - 22,))."""
    X, y = har_design(x)
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    return coef, y - X @ coef


def simulate_har(coef: np.ndarray, resid: np.ndarray, recent: np.ndarray, n_paths: int, horizon: int,
                 rng: np.random.Generator) -> np.ndarray:
    """(n_paths, horizon) HAR paths from the last 22 values ``recent``, shocks drawn i.i.d. from ``resid``."""
    m = HAR_LAGS[-1]
    buf = np.empty((n_paths, m + horizon))  # (paths, 22 known + horizon simulated)
    buf[:, :m] = recent[-m:]
    shocks = resid[rng.integers(0, len(resid), size=(n_paths, horizon))]
    for k in range(horizon):
        j = m + k
        buf[:, j] = coef[0] + shocks[:, k] + sum(b * buf[:, j - lag:j].mean(axis=1) for b, lag in zip(coef[1:], HAR_LAGS))
    return buf[:, m:]


@dataclass
class HarLogVix:
    """HAR on log VIX with bootstrapped residuals (see module doc)."""

    lookback: int | None = 2520  # None: all history up to the origin
    min_obs: int = 250
    name: str = "har"

    def forecast(self, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int) -> Forecast:
        levels = _empty(panel, n_paths, horizon)
        rng = np.random.default_rng(seed)
        hist = panel if self.lookback is None else panel.iloc[-self.lookback:]
        covers, params = [], {}
        for name in har_columns(panel.columns):
            v = hist[name].dropna().to_numpy(dtype=np.float64)
            if len(v) < max(self.min_obs, 2 * HAR_LAGS[-1]) or np.any(v <= 0):
                continue
            x = np.log(v)
            coef, resid = fit_har(x)
            persistence = float(coef[1:].sum())
            params[name] = {"const": float(coef[0]), "daily": float(coef[1]), "weekly": float(coef[2]),
                            "monthly": float(coef[3]), "persistence": persistence,
                            "resid_sd": float(resid.std()), "n_obs": len(resid)}
            if not persistence < 1:
                continue  # a unit root or explosive: no forecast from this origin (listed outside covers)
            params[name]["mean_level"] = float(np.exp(coef[0] / (1 - persistence)))
            levels[:, :, panel.columns.get_loc(name)] = np.exp(simulate_har(coef, resid, x, n_paths, horizon, rng))
            covers.append(name)
        return _forecast(panel, levels, self.name, covers, seed, lookback=self.lookback, params=params)


def yoy_columns(columns) -> list[str]:
    """The YoY inflation series among ``columns`` (derived from an index, name ending ``_YOY``)."""
    return [c for c in columns if yoy_index(c) is not None]


def days_since_change(x: np.ndarray) -> np.ndarray:
    """(n,) rows since ``x`` (n,) last changed: 0 on a change; n or more before its first change."""
    n = len(x)
    pos = np.arange(n)
    changed = np.r_[False, x[1:] != x[:-1]]
    return pos - np.maximum.accumulate(np.where(changed, pos, -n))


def block_starts(x: np.ndarray, horizon: int, min_starts: int) -> np.ndarray:
    """Rows ``t`` of ``x`` (n, k) whose next ``horizon`` rows are history (``t + horizon <= n - 1``), at the
    last row's phase of the release cycle (``days_since_change`` within one, every column).

    All such rows if fewer than ``min_starts`` are at that phase; none if fewer than ``min_starts`` in all.
    """
    eligible = np.arange(max(len(x) - horizon, 0))
    if len(eligible) < min_starts:
        return eligible[:0]
    age = np.stack([days_since_change(x[:, j]) for j in range(x.shape[1])], axis=1)  # (n, k)
    same = np.all(np.abs(age[eligible] - age[-1]) <= 1, axis=1)
    return eligible[same] if same.sum() >= min_starts else eligible


def block_changes(x: np.ndarray, starts: np.ndarray, horizon: int) -> np.ndarray:
    """(len(starts), horizon, k) historical changes ``x[t + h] - x[t]``, h = 1 .. horizon, of ``x`` (n, k)."""
    ahead = starts[:, None] + np.arange(1, horizon + 1)[None, :]
    return x[ahead] - x[starts][:, None, :]


@dataclass
class AtkesonOhanian:
    """Atkeson-Ohanian random walk for YoY inflation with its historical errors as the spread (see module doc)."""

    lookback: int = 5040  # about 20 years of business days
    min_starts: int = 60
    name: str = "atkeson_ohanian"

    def forecast(self, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int) -> Forecast:
        levels = _empty(panel, n_paths, horizon)
        cols = yoy_columns(panel.columns)
        # a monthly series' value holds until its next release; rows before every series starts are dropped
        x = panel[cols].iloc[-(self.lookback + 1):].ffill().dropna().to_numpy(dtype=np.float64)  # (n, k)
        starts = block_starts(x, horizon, self.min_starts) if cols else np.arange(0)
        if len(starts) == 0:
            return _forecast(panel, levels, self.name, [], seed, lookback=self.lookback, starts=0)
        rng = np.random.default_rng(seed)
        drawn = starts[rng.integers(0, len(starts), size=n_paths)]
        levels[:, :, [panel.columns.get_loc(c) for c in cols]] = x[-1] + block_changes(x, drawn, horizon)
        return _forecast(panel, levels, self.name, cols, seed, lookback=self.lookback, starts=len(starts),
                         phase_matched=len(starts) < len(x) - horizon)


def make_baselines(names=BASELINE_NAMES) -> list:
    """Baseline objects by name (default: all of ``BASELINE_NAMES``), default settings."""
    table = {"random_walk": RandomWalk, "garch": GarchFHS, "var": MacroVAR, "climatology": Climatology,
             "har": HarLogVix, "atkeson_ohanian": AtkesonOhanian}
    assert set(table) == set(BASELINE_NAMES), "every baseline is named in BASELINE_NAMES"
    unknown = [n for n in names if n not in table]
    if unknown:
        raise BacktestError(f"unknown baseline(s) {', '.join(unknown)} (known: {', '.join(table)})")
    return [table[n]() for n in names]
