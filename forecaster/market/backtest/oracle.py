"""A known-truth market: a two-state hidden Markov regime process and its exact forecaster.

The process (business days ``t``; regime ``s_t`` in {0: calm, 1: stress}, a Markov
chain that stays in regime ``k`` with probability ``p_stay[k]``) drives three
catalog series:

- ``SPX``: daily log return ``r_t = spx_mu[s] + spx_sigma[s] * e1``;
- ``VIX``: log level ``x_t = x_{t-1} + vix_kappa * (vix_mean[s] - x_{t-1}) + vix_sigma[s] * e2``
  (mean-reverting towards a regime-dependent level);
- ``UST10Y``: yield in % ``y_t = y_{t-1} + ust_sigma[s] * e3`` (a random walk).

``(e1, e2)`` are standard normal with correlation ``rho`` (volatility rises when the
index falls); ``e3`` is independent. Given the regime the day's observation is
Gaussian, so the Hamilton filter (``filter_probs``) gives the exact probability of
each regime at the close of any day, and Monte Carlo of the true dynamics from the
filtered regime (``OracleModel.forecast``) samples the true predictive distribution:
no forecaster that sees the same panel can do better in expectation under a proper
score. ``benchmarks/bench_oracle.py`` writes a simulated history as a wide panel,
trains and backtests the GPT on it and scores this oracle the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_sources.calendar import business_days_after
from forecaster.market.backtest.runner import Backtest, BacktestConfig
from forecaster.market.forecast import Forecast

SERIES = ("SPX", "VIX", "UST10Y")


@dataclass(frozen=True)
class RegimeProcess:
    """Parameters of the simulated market (per regime: (calm, stress)); units: daily log returns, log VIX, % yield."""

    p_stay: tuple[float, float] = (0.996, 0.98)  # expected stays: 250 and 50 business days
    spx_mu: tuple[float, float] = (0.0005, -0.0015)
    spx_sigma: tuple[float, float] = (0.008, 0.022)
    vix_mean: tuple[float, float] = (float(np.log(14.0)), float(np.log(32.0)))
    vix_kappa: float = 0.04
    vix_sigma: tuple[float, float] = (0.05, 0.08)
    rho: float = -0.7
    ust_sigma: tuple[float, float] = (0.045, 0.075)
    start: tuple[float, float, float] = (350.0, 16.0, 7.9)  # SPX, VIX, UST10Y on the first day

    def __post_init__(self) -> None:
        assert all(0.0 < p <= 1.0 for p in self.p_stay), f"p_stay must be in (0, 1]: {self.p_stay}"
        assert 0.0 < self.vix_kappa < 1.0, f"vix_kappa must be in (0, 1): {self.vix_kappa}"
        assert -1.0 < self.rho < 1.0, f"rho must be in (-1, 1): {self.rho}"

    @property
    def transition(self) -> np.ndarray:
        """(2, 2) ``P[i, j]`` = probability of regime ``j`` tomorrow given ``i`` today."""
        a, b = self.p_stay
        return np.array([[a, 1.0 - a], [1.0 - b, b]])

    @property
    def stationary(self) -> np.ndarray:
        """(2,) long-run share of days in each regime."""
        a, b = self.p_stay
        if a == 1.0 and b == 1.0:
            return np.array([0.5, 0.5])
        return np.array([1.0 - b, 1.0 - a]) / (2.0 - a - b)

    # -- simulation ------------------------------------------------------------------------
    def step(self, state: np.ndarray, regime: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One day forward for many paths: ``state`` (n, 3) as (log SPX, log VIX, UST10Y), ``regime`` (n,) -> (n, 3)."""
        n = len(regime)
        z = rng.standard_normal((n, 3))
        e2 = self.rho * z[:, 0] + np.sqrt(1.0 - self.rho**2) * z[:, 1]
        mu, sig = np.asarray(self.spx_mu)[regime], np.asarray(self.spx_sigma)[regime]
        m, om = np.asarray(self.vix_mean)[regime], np.asarray(self.vix_sigma)[regime]
        out = np.empty_like(state)
        out[:, 0] = state[:, 0] + mu + sig * z[:, 0]
        out[:, 1] = state[:, 1] + self.vix_kappa * (m - state[:, 1]) + om * e2
        out[:, 2] = state[:, 2] + np.asarray(self.ust_sigma)[regime] * z[:, 2]
        return out

    def next_regime(self, regime: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n,) regimes one day later."""
        stay = rng.uniform(size=len(regime)) < np.asarray(self.p_stay)[regime]
        return np.where(stay, regime, 1 - regime)

    def simulate(self, dates: pd.DatetimeIndex, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        """One history on ``dates``: (panel of SPX, VIX, UST10Y levels indexed by ``date``, regimes (days,)).

        The first day's regime is drawn from the stationary distribution; its levels are ``start``.
        """
        rng = np.random.default_rng(seed)
        n = len(dates)
        regimes = np.empty(n, dtype=np.int64)
        states = np.empty((n, 3))
        regimes[0] = int(rng.uniform() < self.stationary[1])
        states[0] = (np.log(self.start[0]), np.log(self.start[1]), self.start[2])
        for t in range(1, n):
            regimes[t] = self.next_regime(regimes[t - 1 : t], rng)[0]
            states[t] = self.step(states[t - 1 : t], regimes[t : t + 1], rng)[0]
        panel = pd.DataFrame({"SPX": np.exp(states[:, 0]), "VIX": np.exp(states[:, 1]), "UST10Y": states[:, 2]},
                             index=pd.DatetimeIndex(dates, name="date"))
        return panel, regimes

    # -- filtering -------------------------------------------------------------------------
    def log_likelihood(self, levels: np.ndarray) -> np.ndarray:
        """(days, 2) log density of each day's observation given the regime (row 0 and rows with a NaN: 0).

        levels : (days, 3) SPX, VIX, UST10Y levels.
        """
        lv = np.column_stack([np.log(levels[:, 0]), np.log(levels[:, 1]), levels[:, 2]])
        prev, cur = lv[:-1], lv[1:]
        out = np.zeros((len(levels), 2))
        k = 1.0 - self.rho**2
        for s in (0, 1):
            e1 = (cur[:, 0] - prev[:, 0] - self.spx_mu[s]) / self.spx_sigma[s]
            e2 = (cur[:, 1] - prev[:, 1] - self.vix_kappa * (self.vix_mean[s] - prev[:, 1])) / self.vix_sigma[s]
            e3 = (cur[:, 2] - prev[:, 2]) / self.ust_sigma[s]
            ll = (-np.log(2 * np.pi * self.spx_sigma[s] * self.vix_sigma[s] * np.sqrt(k))
                  - (e1**2 - 2 * self.rho * e1 * e2 + e2**2) / (2 * k)
                  - 0.5 * np.log(2 * np.pi) - np.log(self.ust_sigma[s]) - 0.5 * e3**2)
            out[1:, s] = np.where(np.isfinite(ll), ll, 0.0)  # a day with a missing value carries no evidence
        return out

    def filter_probs(self, levels: np.ndarray) -> np.ndarray:
        """(days, 2) Hamilton filter: probability of each regime given the observations up to and including each day.

        The first day starts from the stationary distribution.
        """
        ll = self.log_likelihood(np.asarray(levels, dtype=np.float64))
        lik = np.exp(ll - ll.max(axis=1, keepdims=True))  # per-day rescaling cancels in the normalisation
        P = self.transition
        out = np.empty_like(lik)
        prior = self.stationary
        for t in range(len(lik)):
            post = prior * lik[t]
            post /= post.sum()
            out[t] = post
            prior = post @ P
        return out

    def sample_paths(self, last: np.ndarray, probs: np.ndarray, n_paths: int, horizon: int,
                     rng: np.random.Generator) -> np.ndarray:
        """(n_paths, horizon, 3) levels of SPX, VIX, UST10Y after a day with levels ``last`` (3,) and regime ``probs`` (2,)."""
        regime = (rng.uniform(size=n_paths) < probs[1]).astype(np.int64)
        state = np.tile([np.log(last[0]), np.log(last[1]), last[2]], (n_paths, 1))
        out = np.empty((n_paths, horizon, 3))
        for k in range(horizon):
            regime = self.next_regime(regime, rng)
            state = self.step(state, regime, rng)
            out[:, k] = state
        out[:, :, 0] = np.exp(out[:, :, 0])
        out[:, :, 1] = np.exp(out[:, :, 1])
        return out


def trading_days(start: str, end: str) -> pd.DatetimeIndex:
    """The NYSE trading days from ``start`` to ``end`` inclusive (the calendar forecasts are dated on)."""
    first = pd.Timestamp(start) - pd.Timedelta(days=1)
    n = int(np.busday_count(first.date(), (pd.Timestamp(end) + pd.Timedelta(days=1)).date())) + 1
    days = business_days_after(first, n)
    return days[days <= pd.Timestamp(end)]


@dataclass
class OracleModel:
    """The exact forecaster of a ``RegimeProcess``, behind the baselines' ``forecast(panel, n_paths, horizon, seed)``.

    It reads the point-in-time panel like every model (its last row is the origin),
    filters the regime on the whole panel and samples the true dynamics from there.
    """

    process: RegimeProcess
    name: str = "oracle"

    def forecast(self, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int) -> Forecast:
        missing = [s for s in SERIES if s not in panel.columns]
        assert not missing, f"the oracle needs {', '.join(SERIES)} in the panel (missing {', '.join(missing)})"
        levels = panel[list(SERIES)].to_numpy(dtype=np.float64)
        probs = self.process.filter_probs(levels)[-1]
        last = panel[list(SERIES)].ffill().iloc[-1].to_numpy(dtype=np.float64)
        sims = self.process.sample_paths(last, probs, n_paths, horizon, np.random.default_rng(seed))
        paths = np.full((n_paths, horizon, panel.shape[1]), np.nan)
        for j, s in enumerate(SERIES):
            paths[:, :, panel.columns.get_loc(s)] = sims[:, :, j]
        origin = panel.index[-1]
        meta = {"model": self.name, "covers": list(SERIES), "seed": int(seed), "as_of": str(origin.date()),
                "p_stress": float(probs[1])}
        return Forecast(origin, business_days_after(origin, horizon), list(panel.columns), paths,
                        panel.iloc[-500:].copy(), meta)


class OracleBacktest(Backtest):
    """The product's backtest loop (point-in-time panels, origins, seeds, realised values, scorer) with the oracle
    as its only model; ``cfg.run`` must be ``None``."""

    def __init__(self, cfg: BacktestConfig, out, process: RegimeProcess) -> None:
        assert cfg.run is None, "the oracle backtest scores the oracle alone (cfg.run must be None)"
        super().__init__(cfg, out)
        self.process = process

    def models_for(self, origin):
        return [OracleModel(self.process)]
