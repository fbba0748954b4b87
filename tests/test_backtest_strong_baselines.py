"""The stronger baselines (HAR on log VIX, Atkeson-Ohanian for YoY inflation): on the real panel
(shape, dates, series, no look-ahead, seeds, release-day steps) and known answers on simulated data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_sources.calendar import business_days_after
from forecaster.cli import main
from forecaster.market.backtest.baselines import (BASELINE_NAMES, AtkesonOhanian, HarLogVix,
                                                  block_changes, block_starts, days_since_change, fit_har,
                                                  har_columns, make_baselines, release_day, yoy_columns)
from forecaster.market.backtest.runner import Backtest, BacktestConfig, load_fan, load_scores

SERIES = ["SPX", "VIX", "UST10Y", "CPI_YOY", "CORE_CPI_YOY", "UNRATE"]
ORIGIN = "2019-06-28"
H = 63
COVERS = {"har": ["VIX"], "atkeson_ohanian": ["CPI_YOY", "CORE_CPI_YOY"]}
STRONG = tuple(COVERS)


@pytest.fixture(scope="module")
def panel(shared_builder):
    return shared_builder.build(ORIGIN)[SERIES]


@pytest.fixture(scope="module")
def forecasts(panel):
    return {b.name: b.forecast(panel, 40, H, seed=7) for b in make_baselines(STRONG)}


def _sim_panel(values: dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    return pd.DataFrame(values, index=pd.bdate_range("1980-01-01", periods=n, name="date"))


# -- on the real panel ----------------------------------------------------------------------------
def test_the_strong_baselines_are_in_the_default_set_and_named():
    assert set(STRONG) == set(COVERS) and set(STRONG) <= set(BASELINE_NAMES)
    assert [b.name for b in make_baselines(["har", "atkeson_ohanian"])] == ["har", "atkeson_ohanian"]
    assert har_columns(SERIES) == ["VIX"]
    assert yoy_columns(SERIES) == ["CPI_YOY", "CORE_CPI_YOY"]


@pytest.mark.parametrize("name", STRONG)
def test_paths_have_the_right_shape_dates_and_series(forecasts, name):
    fc = forecasts[name]
    assert fc.paths.shape == (40, H, len(SERIES))
    assert fc.series == SERIES
    assert fc.as_of == pd.Timestamp(ORIGIN)
    assert list(fc.dates) == list(business_days_after(ORIGIN, H))
    assert fc.meta["covers"] == COVERS[name] and fc.meta["model"] == name
    for j, s in enumerate(SERIES):
        if s in fc.meta["covers"]:
            assert np.isfinite(fc.paths[:, :, j]).all(), f"{name}/{s} has gaps"
        else:
            assert np.isnan(fc.paths[:, :, j]).all(), f"{name}/{s} should be left out"
    assert fc.history.index[-1] == pd.Timestamp(ORIGIN)


def test_har_starts_at_the_last_vix_and_mean_reverts_from_the_covid_spike(forecasts, panel, shared_builder):
    vix = forecasts["har"].column("VIX")
    assert np.all(vix > 0) and np.median(np.abs(vix[:, 0] - panel["VIX"].iloc[-1])) < 1.5
    assert np.std(np.log(vix[:, -1])) > 2 * np.std(np.log(vix[:, 0]))  # the spread grows with the horizon
    params = forecasts["har"].meta["params"]["VIX"]
    assert 0.9 < params["persistence"] < 1 and 12 < params["mean_level"] < 25 and params["n_obs"] == 2520 - 22
    spike = shared_builder.build("2020-03-31")[["VIX"]]  # VIX 53.5
    fc = HarLogVix().forecast(spike, 400, 250, seed=3)
    med = np.median(fc.column("VIX"), axis=0)
    assert med[0] > 45 and med[20] < med[0] and med[62] < med[20] and med[-1] < 25
    assert abs(np.log(med[-1] / fc.meta["params"]["VIX"]["mean_level"])) < 0.15


def test_ao_paths_hold_the_last_value_until_the_next_release_and_step_once_a_month(forecasts, panel):
    fc = forecasts["atkeson_ohanian"]
    for s in COVERS["atkeson_ohanian"]:
        x = fc.column(s)
        # CPI comes out mid-month: nothing new in the first days after a month-end origin
        assert np.all(x[:, fc.dates < pd.Timestamp("2019-07-10")] == panel[s].iloc[-1]), s
        assert np.all((np.diff(x, axis=1) != 0).sum(axis=1) <= 3), s  # at most one step a month per path
        assert (x[:, -1] != panel[s].iloc[-1]).mean() > 0.9, s
        assert 10 <= release_day(panel[s]) <= 20
    # one historical start per path for both series: their changes are strongly correlated
    d = fc.column("CPI_YOY")[:, -1] - fc.column("CORE_CPI_YOY")[:, -1]
    assert np.std(d) < np.std(fc.column("CPI_YOY")[:, -1])
    assert fc.meta["phase_matched"] and fc.meta["starts"] >= 60


def test_no_look_ahead_the_paths_use_only_rows_up_to_the_origin(shared_panel):
    full = shared_panel[SERIES]
    altered = full.copy()
    after = altered.index > pd.Timestamp(ORIGIN)
    altered.loc[after] = altered.loc[after].to_numpy() * np.random.default_rng(0).uniform(0.5, 1.5, (after.sum(), len(SERIES)))
    for b in (HarLogVix(), AtkesonOhanian()):
        a = b.forecast(full.loc[:ORIGIN], 30, H, seed=5).paths
        np.testing.assert_array_equal(a, b.forecast(altered.loc[:ORIGIN], 30, H, seed=5).paths, err_msg=b.name)
        # the test can fail: the paths do depend on the history up to the origin
        before = full.loc[:ORIGIN].copy()
        before.iloc[-300:] = before.iloc[-300:] * 1.3
        assert not np.allclose(np.nan_to_num(a), np.nan_to_num(b.forecast(before, 30, H, seed=5).paths)), b.name


def test_no_look_ahead_through_the_backtest_loop_and_the_cli(shared_builder, tmp_path):
    full = shared_builder.build()[SERIES]
    full = full[full.index >= "2005-01-01"]
    altered = full.copy()
    after = altered.index > pd.Timestamp("2018-02-28")
    altered.loc[after] = altered.loc[after].to_numpy() * np.random.default_rng(0).uniform(0.5, 1.5, (after.sum(), len(SERIES)))
    full.to_parquet(tmp_path / "real.parquet")
    altered.to_parquet(tmp_path / "altered.parquet")
    fans = []
    for name in ("real", "altered"):
        cfg = BacktestConfig(start="2018-01-01", end="2018-02-28", data=str(tmp_path / f"{name}.parquet"), n_paths=16,
                             horizon=21, baselines=list(STRONG), panel_start="2005-01-01")
        bt = Backtest(cfg, tmp_path / name)
        scores = bt.run()
        assert set(scores["model"]) == set(STRONG) and not scores.attrs["errors"]
        fans.append(pd.concat([load_fan(bt.out, o) for o in bt.origins], ignore_index=True))
    models = [f[f["model"] != "realised"].reset_index(drop=True) for f in fans]
    pd.testing.assert_frame_equal(*models)
    assert set(models[0]["series"]) == {"VIX", "CPI_YOY", "CORE_CPI_YOY"}
    out = tmp_path / "cli"
    assert main(["backtest", "--data", str(tmp_path / "real.parquet"), "--first-origin", "2018-01-01",
                 "--last-origin", "2018-01-31", "--paths", "8", "--horizon", "21", "--out", str(out),
                 "--no-progress", "--baselines", "har,atkeson_ohanian,random_walk"]) == 0
    assert set(load_scores(out)["model"]) == {"har", "atkeson_ohanian", "random_walk"}


def test_same_seed_same_paths(panel):
    for b in (HarLogVix(), AtkesonOhanian()):
        a = b.forecast(panel, 10, 21, seed=3).paths
        np.testing.assert_array_equal(a, b.forecast(panel, 10, 21, seed=3).paths, err_msg=b.name)
        assert not np.array_equal(np.nan_to_num(a), np.nan_to_num(b.forecast(panel, 10, 21, seed=4).paths)), b.name


def test_short_history_covers_nothing(panel):
    short = panel.iloc[-100:]  # under a year for the HAR; under 60 starts of 63-day blocks for AO
    for b in (HarLogVix(), AtkesonOhanian()):
        fc = b.forecast(short, 5, H, seed=1)
        assert fc.meta["covers"] == [] and fc.paths.shape == (5, H, len(SERIES)) and np.isnan(fc.paths).all(), b.name
    assert AtkesonOhanian().forecast(panel[["SPX", "VIX"]], 5, H, seed=1).meta["covers"] == []


# -- known answers on simulated data --------------------------------------------------------------
TRUE_HAR = {"daily": 0.45, "weekly": 0.30, "monthly": 0.20}  # persistence 0.95
HAR_MEAN = np.log(18.0)


def _simulate_har(n: int, seed: int, shock_at: int | None = None) -> np.ndarray:
    """Log VIX from a HAR with known coefficients, mean log 18, N(0, 0.07) shocks (a +1.2 shock at ``shock_at``)."""
    b = np.array(list(TRUE_HAR.values()))
    const = HAR_MEAN * (1 - b.sum())
    e = np.random.default_rng(seed).normal(0, 0.07, n + 22)
    if shock_at is not None:
        e[22 + shock_at] += 1.2
    x = np.full(n + 22, HAR_MEAN)
    for t in range(22, n + 22):
        x[t] = const + b[0] * x[t - 1] + b[1] * x[t - 5:t].mean() + b[2] * x[t - 22:t].mean() + e[t]
    return x[22:]


def test_har_design_matches_rolling_means():
    x = np.log(np.random.default_rng(0).uniform(10, 40, 300))
    s = pd.Series(x)
    coef, resid = fit_har(x)
    ref = pd.DataFrame({"c": 1.0, "d": s, "w": s.rolling(5).mean(), "m": s.rolling(22).mean(), "y": s.shift(-1)}).dropna()
    import statsmodels.api as sm

    ols = sm.OLS(ref["y"], ref[["c", "d", "w", "m"]]).fit()
    np.testing.assert_allclose(coef, ols.params.to_numpy(), atol=1e-10)
    np.testing.assert_allclose(resid, ols.resid.to_numpy(), atol=1e-10)


def test_har_recovers_known_coefficients_and_reverts_to_the_process_mean():
    x = _simulate_har(6000, seed=1, shock_at=6000 - 3)  # the origin sits just after a spike
    vix = _sim_panel({"VIX": np.exp(x)})
    fc = HarLogVix(lookback=None).forecast(vix, 2000, 250, seed=2)
    p = fc.meta["params"]["VIX"]
    for k, v in TRUE_HAR.items():
        assert p[k] == pytest.approx(v, abs=0.06), k
    assert p["persistence"] == pytest.approx(0.95, abs=0.025)
    assert p["resid_sd"] == pytest.approx(0.07, rel=0.05)
    assert np.log(p["mean_level"]) == pytest.approx(HAR_MEAN, abs=0.05)
    log_med = np.log(np.median(fc.column("VIX"), axis=0))
    assert x[-1] - HAR_MEAN > 0.5  # the spike: VIX above 30
    # the true process without shocks from the same last 22 days: where the median should go
    b = np.array(list(TRUE_HAR.values()))
    skeleton = list(x[-22:])
    for _ in range(250):
        skeleton.append(HAR_MEAN * (1 - b.sum()) + b[0] * skeleton[-1] + b[1] * np.mean(skeleton[-5:])
                        + b[2] * np.mean(skeleton[-22:]))
    np.testing.assert_allclose(log_med, skeleton[22:], atol=0.05)
    gap = np.abs(log_med - HAR_MEAN)
    assert np.all(np.diff(gap[::10]) < 0.01)  # the median closes in on the mean...
    assert gap[62] < 0.5 * gap[0] and gap[-1] < 0.05  # ...and a year on sits at it


def test_har_with_an_explosive_fit_gives_no_forecast():
    e = np.random.default_rng(3).normal(0, 0.01, 2000)
    x = np.empty(2000)
    x[0] = np.log(12.0)
    for t in range(1, 2000):
        x[t] = 1.001 * x[t - 1] + e[t]  # log level growing without bound: no mean to revert to
    fc = HarLogVix(lookback=None).forecast(_sim_panel({"VIX": np.exp(x)}), 5, 10, seed=0)
    assert fc.meta["params"]["VIX"]["persistence"] > 1
    assert fc.meta["covers"] == [] and np.isnan(fc.paths).all()


def test_days_since_change_and_block_starts():
    x = np.array([1, 1, 2, 2, 2, 3, 3], dtype=float)
    np.testing.assert_array_equal(days_since_change(x)[2:], [0, 1, 2, 0, 1])
    assert np.all(days_since_change(x)[:2] >= len(x))  # before the first change: no phase
    steps = np.repeat(np.arange(50.0), 21)[:, None]  # a value that changes every 21 rows
    starts = block_starts(steps, 21, 10)
    assert np.all(np.isin(days_since_change(steps[:, 0])[starts], [19, 20, 0]))  # the last row is 20 rows into its month
    assert starts.max() + 21 <= len(steps) - 1
    assert len(block_starts(steps, 21, 1000)) == len(steps) - 21  # too few at the phase: every start
    assert len(block_starts(steps, 21, 2000)) == 0  # too few in all: none
    np.testing.assert_array_equal(block_changes(steps, np.array([0]), 21)[0, :, 0], [0.0] * 20 + [1.0])


def test_ao_median_is_the_last_value_plus_the_median_historical_change(panel):
    ao = AtkesonOhanian()
    fc = ao.forecast(panel, 4000, H, seed=11)
    cols = COVERS["atkeson_ohanian"]
    x = panel[cols].iloc[-(ao.lookback + 1):].ffill().dropna().to_numpy()
    changes = block_changes(x, block_starts(x, H, ao.min_starts), H)  # (starts, H, 2): the population drawn from
    for j, s in enumerate(cols):
        med = np.median(fc.column(s), axis=0)
        lo, hi = np.quantile(changes[:, :, j], [0.45, 0.55], axis=0)
        last = panel[s].iloc[-1]
        assert np.all((med >= last + lo - 1e-12) & (med <= last + hi + 1e-12)), s
        assert np.median(fc.column(s)[:, -1]) == pytest.approx(last + np.median(changes[:, -1, j]), abs=0.05), s


@pytest.mark.parametrize("kind", ["daily", "monthly_steps"])
def test_ao_80_percent_intervals_cover_80_percent_of_a_random_walk(kind):
    n_hist, n_origins, spacing = 5040, 150, 23  # spacing 23 against a 21-day cycle: origins at every phase
    n = n_hist + n_origins * spacing + 63
    rng = np.random.default_rng(4)
    if kind == "daily":
        y = np.cumsum(rng.normal(0, 0.05, n))
    else:
        y = np.repeat(np.cumsum(rng.normal(0, 0.2, n // 21 + 1)), 21)[:n]
    sim = _sim_panel({"CPI_YOY": 2.0 + y})
    ao = AtkesonOhanian()
    hit = {21: [], 63: []}
    for k in range(n_origins):
        o = n_hist + k * spacing
        fc = ao.forecast(sim.iloc[:o + 1], 400, 63, seed=k)
        assert fc.meta["covers"] == ["CPI_YOY"]
        for h in hit:
            lo, hi = np.quantile(fc.column("CPI_YOY")[:, h - 1], [0.1, 0.9])
            hit[h].append(lo <= sim["CPI_YOY"].iloc[o + h] <= hi)
    for h, v in hit.items():
        assert np.mean(v) == pytest.approx(0.8, abs=0.08), (kind, h, np.mean(v))
