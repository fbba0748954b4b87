"""Baselines on the real panel: path shape and dates, coverage of series, reproducibility, release-day steps."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_sources.calendar import business_days_after
from forecaster.market.backtest.baselines import (BASELINE_NAMES, Climatology, GarchFHS, MacroVAR, RandomWalk, block_indices,
                                           make_baselines, release_day)
from forecaster.market.backtest.windows import BacktestError

SERIES = ["SPX", "VIX", "UST10Y", "CPI_YOY", "CORE_CPI_YOY", "UNRATE"]
ORIGIN = "2019-06-28"
H = 63


@pytest.fixture(scope="module")
def panel(shared_builder):
    return shared_builder.build(ORIGIN)[SERIES]


@pytest.fixture(scope="module")
def forecasts(panel):
    return {b.name: b.forecast(panel, 40, H, seed=7) for b in make_baselines()}


EXPECTED_COVERS = {
    "random_walk": SERIES,
    "garch": ["SPX", "VIX"],
    "var": ["CPI_YOY", "CORE_CPI_YOY", "UNRATE"],
    "climatology": ["VIX", "CPI_YOY", "CORE_CPI_YOY", "UNRATE"],
    "har": ["VIX"],
    "atkeson_ohanian": ["CPI_YOY", "CORE_CPI_YOY"],
}


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_paths_have_the_right_shape_dates_and_series(forecasts, panel, name):
    fc = forecasts[name]
    assert fc.paths.shape == (40, H, len(SERIES))
    assert fc.series == SERIES
    assert fc.as_of == pd.Timestamp(ORIGIN)
    assert list(fc.dates) == list(business_days_after(ORIGIN, H))
    assert fc.dates[3] == pd.Timestamp("2019-07-05")  # Independence Day is skipped
    assert fc.meta["covers"] == EXPECTED_COVERS[name]
    for j, s in enumerate(SERIES):
        if s in fc.meta["covers"]:
            assert np.isfinite(fc.paths[:, :, j]).all(), f"{name}/{s} has gaps"
        else:
            assert np.isnan(fc.paths[:, :, j]).all(), f"{name}/{s} should be left out"
    assert fc.history.index[-1] == pd.Timestamp(ORIGIN)


def test_conditional_baselines_start_from_the_last_level(forecasts, panel):
    last = panel.iloc[-1]
    for name in ("random_walk", "garch"):
        spx = forecasts[name].column("SPX")[:, 0]
        assert np.all(np.abs(spx / last["SPX"] - 1) < 0.1), name
        vix = forecasts[name].column("VIX")[:, 0]
        assert np.all(vix > 0) and np.median(np.abs(vix - last["VIX"])) < 3, name
    # a random walk's spread grows with the horizon
    spx = forecasts["random_walk"].column("SPX")
    assert np.std(np.log(spx[:, -1])) > 2 * np.std(np.log(spx[:, 0]))


def test_var_steps_only_on_release_days(forecasts, panel):
    fc = forecasts["var"]
    core = fc.column("CORE_CPI_YOY")
    day = release_day(panel["CORE_CPI_YOY"])
    assert 10 <= day <= 20  # CPI comes out mid-month
    before = fc.dates < pd.Timestamp(f"2019-07-{day:02d}")
    assert np.all(core[:, before] == panel["CORE_CPI_YOY"].iloc[-1])  # nothing new before July's release
    changes = np.diff(core, axis=1) != 0
    assert changes.any(axis=0).sum() <= 4  # at most one step a month over ~3 months


def test_climatology_probabilities_are_historical_frequencies(panel):
    fc = Climatology().forecast(panel, 4000, 5, seed=1)
    vix_hist = panel["VIX"].dropna()
    assert np.mean(fc.column("VIX")[:, 0] > 30) == pytest.approx(np.mean(vix_hist > 30), abs=0.02)


def test_same_seed_same_paths(panel):
    for b in (RandomWalk(), GarchFHS(), MacroVAR(), Climatology()):
        a = b.forecast(panel, 10, 21, seed=3).paths
        np.testing.assert_array_equal(a, b.forecast(panel, 10, 21, seed=3).paths, err_msg=b.name)
        assert not np.array_equal(np.nan_to_num(a), np.nan_to_num(b.forecast(panel, 10, 21, seed=4).paths)), b.name


def test_block_indices_are_circular_blocks():
    idx = block_indices(100, 5, 50, 10, np.random.default_rng(0))
    assert idx.shape == (5, 50) and idx.min() >= 0 and idx.max() < 100
    steps = np.diff(idx, axis=1) % 100
    assert np.all(steps[:, [i for i in range(49) if (i + 1) % 10]] == 1)  # consecutive inside each block


def test_unknown_baseline_is_a_user_error():
    with pytest.raises(BacktestError, match="unknown baseline"):
        make_baselines(["random_walk", "prophet"])


@pytest.mark.parametrize("origin", ["2020-03-31", "2020-05-29"])
def test_garch_vix_stays_finite_through_the_covid_spike(shared_builder, origin):
    # undemeaned, the optimiser failed on these panels and the VIX paths overflowed to inf
    panel = shared_builder.build(origin)[["SPX", "VIX"]]
    fc = GarchFHS().forecast(panel, 100, 250, seed=3)
    assert "VIX" in fc.meta["covers"] and fc.meta["params"]["VIX"]["converged"]
    assert abs(fc.meta["params"]["VIX"]["y[1]"]) < 1
    vix = fc.column("VIX")
    # finite, and all but the most extreme 1 % within 5..100 (filtered historical simulation
    # replays March 2020's standardized shocks, so a few paths go far)
    lo, hi = np.percentile(vix, [1, 99])
    assert np.isfinite(vix).all() and 5 < lo and hi < 100
    # it mean-reverts from the spike: the median a year out is below the origin's level
    assert np.median(vix[:, -1]) < panel["VIX"].iloc[-1]
