"""Backtest metrics on cases with known answers, cross-checked against scoringrules' closed forms; skill intervals; schedules."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr
from arch.bootstrap import CircularBlockBootstrap
from scipy import stats

from forecaster.market.backtest import metrics
from forecaster.market.backtest.summary import CI_LEVEL, REPS, block_length, origin_spacing, skill_ci, skill_table
from forecaster.market.backtest.windows import BacktestError, get_window, origin_schedule, parse_every
from forecaster.market.regimes import VOLATILITY


def test_crps_of_a_perfect_ensemble_is_zero_and_a_wrong_one_is_not():
    obs = np.array([1.0, -2.0, 3.5])
    assert np.all(metrics.crps(obs, np.repeat(obs[:, None], 20, axis=1)) == 0.0)
    assert np.all(metrics.crps(obs, np.repeat(obs[:, None] + 1.0, 20, axis=1)) == pytest.approx(1.0))


def test_crps_matches_the_normal_closed_form_and_the_definition():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=500)
    ens = rng.normal(size=(500, 200))
    got = metrics.crps(obs, ens)
    # the fair estimator is unbiased for the CRPS of N(0,1): the averages agree closely
    assert got.mean() == pytest.approx(sr.crps_normal(obs, 0.0, 1.0).mean(), rel=0.02)
    # by hand for one row: E|X-y| - sum|Xi-Xj| / (2 m (m-1))
    x, y = ens[0], obs[0]
    m = len(x)
    by_hand = np.abs(x - y).mean() - np.abs(x[:, None] - x[None, :]).sum() / (2 * m * (m - 1))
    assert got[0] == pytest.approx(by_hand, rel=1e-9)


def test_crps_leaves_out_missing_members_and_missing_outcomes():
    ens = np.array([[0.0, 1.0, np.nan, 2.0], [0.0, 1.0, 2.0, 3.0], [np.nan] * 3 + [1.0]])
    obs = np.array([0.5, np.nan, 1.0])
    got = metrics.crps(obs, ens)
    assert got[0] == pytest.approx(metrics.crps(np.array([0.5]), np.array([[0.0, 1.0, 2.0]]))[0])
    assert np.isnan(got[1]) and np.isnan(got[2])  # no outcome; a single member is not an ensemble


def test_coverage_is_nominal_for_the_true_distribution_and_low_for_a_narrow_one():
    rng = np.random.default_rng(1)
    obs = rng.standard_t(5, size=3000)
    ens = rng.standard_t(5, size=(3000, 200))
    for level in metrics.LEVELS:
        assert metrics.coverage(obs, ens, level).mean() == pytest.approx(level, abs=0.03)
    assert metrics.coverage(obs, 0.5 * ens, 0.8).mean() < 0.65


def test_pit_is_uniform_when_calibrated_and_ties_are_split():
    rng = np.random.default_rng(2)
    obs = rng.normal(size=2000)
    p = metrics.pit(obs, rng.normal(size=(2000, 100)), rng)
    assert stats.kstest(p, "uniform").pvalue > 0.001
    # an overconfident ensemble piles PIT values at the edges
    q = metrics.pit(obs, 0.3 * rng.normal(size=(2000, 100)), rng)
    assert stats.kstest(q, "uniform").pvalue < 1e-6
    # every member equal to the outcome (a monthly series between releases): uniform, not 0 or 1
    t = metrics.pit(np.zeros(2000), np.zeros((2000, 10)), rng)
    assert 0.45 < t.mean() < 0.55 and t.min() >= 0 and t.max() <= 1


def test_energy_score_zero_when_perfect_and_equal_to_crps_in_one_dimension():
    obs = np.array([[1.0, 2.0], [0.0, -1.0]])
    assert np.all(metrics.energy(obs, np.repeat(obs[:, None, :], 10, axis=1)) == 0.0)
    rng = np.random.default_rng(3)
    y = rng.normal(size=(5, 1))
    x = rng.normal(size=(5, 50, 1))
    np.testing.assert_allclose(metrics.energy(y, x), sr.crps_ensemble(y[:, 0], x[:, :, 0], estimator="nrg"), rtol=1e-9)
    x[0, 3, 1 - 1] = np.nan  # a member with a gap is left out
    assert np.isfinite(metrics.energy(y, x)[0])


def test_regime_scores_known_values():
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 0.0, 0.0], [0.25] * 4])
    code = np.array([1, 1, -1])
    brier, rps = metrics.regime_scores(code, probs)
    assert brier[0] == pytest.approx(0.01 + 0.64 + 0.09 + 0.16)
    assert rps[0] == pytest.approx(0.01 + 0.49 + 0.16)  # cumulative: (.1-0)^2 + (.3-1)^2 + (.6-1)^2
    assert brier[1] == 0.0 and rps[1] == 0.0
    assert np.isnan(brier[2]) and np.isnan(rps[2])
    vix = np.array([[10.0, 16.0, 25.0, 40.0], [np.nan] * 4])
    np.testing.assert_allclose(metrics.regime_probs(vix, VOLATILITY)[0], [0.25] * 4)
    assert np.isnan(metrics.regime_probs(vix, VOLATILITY)[1]).all()


def test_skill_and_its_block_bootstrap_interval():
    rng = np.random.default_rng(4)
    base = rng.gamma(2.0, size=60)
    s, lo, hi = skill_ci(0.5 * base, base, block=6)
    assert s == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    noisy = base * rng.uniform(0.6, 1.2, size=60)
    s, lo, hi = skill_ci(noisy, base, block=6)
    assert lo < s < hi and hi - lo > 0.02
    assert block_length(250, 21, 48) == 12 and block_length(1, 21, 48) == 1 and block_length(250, 21, 5) == 5
    assert origin_spacing(pd.to_datetime(["2018-01-31", "2018-02-28", "2018-03-29"])) == pytest.approx(20.5)


def test_skill_table_picks_the_best_baseline():
    origins = pd.date_range("2018-01-31", periods=10, freq="BME")
    rows = []
    for o in origins:
        for model, score in (("gpt", 1.0), ("random_walk", 2.0), ("garch", 1.25)):
            rows.append({"origin": o, "model": model, "kind": "series", "name": "VIX", "horizon": 21, "crps": score})
    t = skill_table(pd.DataFrame(rows))
    best = t[t["best"]]
    assert list(best["baseline"]) == ["garch"] and best["skill"].iloc[0] == pytest.approx(0.2)
    assert t.set_index("baseline").loc["random_walk", "skill"] == pytest.approx(0.5)


def test_origin_schedule_and_named_window(shared_panel):
    cal = shared_panel.index
    monthly = origin_schedule(cal, "2018-01-01", "2018-06-30", "1M")
    assert [str(d.date()) for d in monthly] == ["2018-01-31", "2018-02-28", "2018-03-29", "2018-04-30",
                                                "2018-05-31", "2018-06-29"]  # Good Friday 2018-03-30 is no trading day
    assert list(origin_schedule(cal, "2018-01-01", "2018-06-30", "2M")) == list(monthly[::2])
    daily = origin_schedule(cal, "2018-01-02", "2018-02-28", "21B")
    assert daily[0] == pd.Timestamp("2018-01-02") and len(daily) == 2
    w = get_window("2018-2021")
    assert len(origin_schedule(cal, w.start, w.end, w.every)) == 48
    for bad in ("monthly", "0M", "1Y", ""):
        with pytest.raises(BacktestError):
            parse_every(bad)
    with pytest.raises(BacktestError):
        get_window("1999")
    with pytest.raises(BacktestError):
        origin_schedule(cal, "2019-01-01", "2018-01-01", "1M")


def test_skill_interval_is_archs_percentile_interval():
    rng = np.random.default_rng(5)
    base = rng.gamma(2.0, size=40)
    model = base * rng.uniform(0.5, 1.3, size=40)
    s, lo, hi = skill_ci(model, base, block=5, seed=11)
    bs = CircularBlockBootstrap(5, model, base, seed=np.random.default_rng(11))
    ci = bs.conf_int(lambda x, y: np.array([1 - x.mean() / y.mean()]), reps=REPS, method="percentile", size=CI_LEVEL)
    assert (lo, hi) == pytest.approx((ci[0, 0], ci[1, 0]), rel=1e-12)
