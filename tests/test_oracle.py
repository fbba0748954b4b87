"""The known-truth benchmark: its scorer against scoringrules, the regime filter, and the oracle against closed forms."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr

from forecaster.market.backtest import metrics
from forecaster.market.backtest.oracle import SERIES, OracleBacktest, OracleModel, RegimeProcess, trading_days
from forecaster.market.backtest.runner import BacktestConfig, load_scores, origin_seed
from forecaster.market.backtest.scoring import realised_after, score_origin


def test_the_scorer_is_scoringrules_fair_crps_on_a_known_case():
    # two members 0 and 1: E|X - y| - E|X - X'| / 2 with the fair (unbiased) pair term 1 / (m (m - 1))
    ens = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    obs = np.array([0.5, 2.0, -1.0])
    np.testing.assert_allclose(metrics.crps(obs, ens), [0.0, 1.0, 1.0], atol=1e-12)
    rng = np.random.default_rng(0)
    ens = rng.standard_normal((50, 100)) * 2.0 + 1.0
    obs = rng.standard_normal(50)
    ours = metrics.crps(obs, ens)
    np.testing.assert_allclose(ours, sr.crps_ensemble(obs, ens, estimator="fair"), rtol=1e-12)
    assert not np.allclose(ours, sr.crps_ensemble(obs, ens, estimator="pwm") + 1.0)  # the fair estimator, not another
    # a NaN member is left out of that row only: the row scores as scoringrules does on the other members
    ens[3, 7] = np.nan
    assert metrics.crps(obs, ens)[3] == pytest.approx(float(sr.crps_ensemble(obs[3], np.delete(ens[3], 7), estimator="fair")))


def test_the_filter_recovers_known_regimes():
    process = RegimeProcess()
    panel, regimes = process.simulate(trading_days("2000-01-03", "2011-12-30"), seed=3)
    assert 0.05 < regimes.mean() < 0.4 and np.abs(np.diff(regimes)).sum() >= 10  # both regimes, many switches
    probs = process.filter_probs(panel.to_numpy())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert ((probs[:, 1] > 0.5) == regimes).mean() > 0.95
    assert probs[regimes == 1, 1].mean() > 0.8 and probs[regimes == 0, 1].mean() < 0.1
    # the filter beats the base rate by far (Brier score of the stress probability)
    assert np.mean((probs[:, 1] - regimes) ** 2) < 0.2 * np.mean((process.stationary[1] - regimes) ** 2)
    # it is a filter: a day's probabilities do not change when later days are altered
    later = panel.to_numpy().copy()
    later[2000:] *= 1.5
    np.testing.assert_array_equal(process.filter_probs(later)[:2000], probs[:2000])


def test_with_one_regime_the_oracle_is_the_closed_form():
    # both regimes alike: SPX and VIX are log-normal, the yield normal, at every horizon
    p = RegimeProcess(spx_mu=(0.0003, 0.0003), spx_sigma=(0.01, 0.01), vix_mean=(np.log(18.0),) * 2, vix_sigma=(0.06, 0.06),
                      ust_sigma=(0.05, 0.05))
    last = np.array([2000.0, 25.0, 3.0])
    h = 20
    # 20 ensembles of 1,000 members: the fair CRPS is unbiased, so their mean converges to the true expected score
    paths = p.sample_paths(last, np.array([0.5, 0.5]), 20_000, h, np.random.default_rng(1))[:, h - 1]  # (paths, 3)
    a = 1.0 - p.vix_kappa
    vix_mu = p.vix_mean[0] + a**h * (np.log(last[1]) - p.vix_mean[0])
    vix_sd = p.vix_sigma[0] * np.sqrt((1 - a ** (2 * h)) / (1 - a**2))
    truth = {
        "SPX": (np.array([1900.0, 2000.0, 2150.0]),
                lambda y: sr.crps_lognormal(y, np.log(last[0]) + h * p.spx_mu[0], np.sqrt(h) * p.spx_sigma[0])),
        "VIX": (np.array([15.0, 22.0, 35.0]), lambda y: sr.crps_lognormal(y, vix_mu, vix_sd)),
        "UST10Y": (np.array([2.5, 3.0, 3.4]), lambda y: sr.crps_normal(y, last[2], np.sqrt(h) * p.ust_sigma[0])),
    }
    for j, s in enumerate(SERIES):
        obs, closed = truth[s]
        ours = np.mean([metrics.crps(obs, np.tile(chunk, (len(obs), 1))) for chunk in paths[:, j].reshape(20, 1000)], axis=0)
        np.testing.assert_allclose(ours, closed(obs), rtol=0.02, err_msg=s)


def test_the_oracle_is_scored_by_the_products_backtest_on_a_panel_file(tmp_path):
    process = RegimeProcess()
    panel, _ = process.simulate(trading_days("2005-01-03", "2012-12-31"), seed=5)
    path = tmp_path / "panel.csv"
    panel.to_csv(path, float_format="%.8f", index_label="date")
    cfg = BacktestConfig(start="2008-09-01", end="2008-10-31", data=str(path), series=list(SERIES), n_paths=50,
                         horizon=21, baselines=[], panel_start="2005-01-03")
    scores = OracleBacktest(cfg, tmp_path / "bt", process).run()
    scores = load_scores(tmp_path / "bt")
    assert set(scores["model"]) == {"oracle"} and scores["origin"].nunique() == 2
    # the same numbers as the oracle forecast made by hand from the simulated history up to the origin
    origin = pd.Timestamp(scores["origin"].min())
    fc = OracleModel(process).forecast(panel.loc[:origin], 50, 21, origin_seed(0, origin))
    mine, _ = score_origin({"oracle": fc}, realised_after(panel, origin, 21), panel.loc[:origin], cfg.horizons,
                           origin_seed(0, origin))
    got = scores[(scores["origin"] == origin) & (scores["kind"] == "series")].set_index(["name", "horizon"])["crps"]
    want = mine[mine["kind"] == "series"].set_index(["name", "horizon"])["crps"]
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), rtol=1e-5)
    spx = fc.column("SPX")[:, 20]
    obs = panel["SPX"].iloc[panel.index.get_loc(origin) + 21]
    assert got.loc[("SPX", 21)] == pytest.approx(float(sr.crps_ensemble(obs, spx, estimator="fair")), rel=1e-5)
