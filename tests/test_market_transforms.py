"""The modeling transforms (``forecaster.market.transforms``): round trips on the real panel,
the non-positive-print rule, changes from an origin, and the registry against the catalog."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_sources import catalog
from data_sources.catalog import CatalogError
from forecaster.market import features
from forecaster.market.transforms import TRANSFORMS, Diff, Level, LogReturn, Transform, get, transform_of, transforms_for

ALL = [t for t in TRANSFORMS.values() if t.name in catalog.TRANSFORMS]  # the stateless ones (yoy_index: test_yoy_index)


def test_registry_holds_every_catalog_transform_under_its_name():
    # yoy_index and the shifted logs: a run's choice (--transform), not the catalog's
    assert set(TRANSFORMS) == set(catalog.TRANSFORMS) | {"yoy_index", "shifted_log", "shifted_log1"}
    for name, t in TRANSFORMS.items():
        assert isinstance(t, Transform) and t.name == name == str(t)
    assert (TRANSFORMS["level"], TRANSFORMS["diff"], TRANSFORMS["log_return"]) == (Level(), Diff(), LogReturn())


def test_transform_of_reads_the_catalog():
    for name, spec in catalog.CATALOG.items():
        assert transform_of(name).name == spec.transform
    assert transforms_for(["SPX", "VIX", "UST10Y"]) == [LogReturn(), LogReturn(), Diff()]
    assert transforms_for(["SPX", "VIX"], {"VIX": "level"}) == [LogReturn(), Level()]
    assert features.transforms_for is transforms_for  # the old import path still works


def test_unknown_names_are_errors_that_say_what_is_known():
    with pytest.raises(CatalogError, match="unknown series 'NOPE'"):
        transform_of("NOPE")
    with pytest.raises(ValueError, match="unknown modeling transform 'log_change'.*log_return"):
        get("log_change")


@pytest.mark.parametrize("series", ["SPX", "VIX", "UST3M", "UST10Y", "WTI", "BAA_SPREAD", "CPI_YOY", "M2", "GDP", "FED_BS"])
def test_forward_then_integrate_gives_back_the_levels(shared_panel, series):
    t = transform_of(series)
    x = shared_panel.loc["2010":"2019", series].dropna().to_numpy()
    y = t.forward(x)
    assert y.shape == x.shape and np.isfinite(y[1:]).all()
    if t.models_changes:
        assert np.isnan(y[0])
        assert np.any(y[1:] != 0)
    back = t.integrate(x[0], y[None, 1:])  # (1 path, time - 1)
    np.testing.assert_allclose(back[0], x[1:], rtol=1e-9, atol=1e-9)


def test_model_frame_and_integrate_round_trip_the_whole_panel(shared_panel):
    panel = shared_panel.loc["2016":"2017"].dropna()
    frame = features.model_frame(panel)
    assert list(frame.columns) == list(panel.columns) and frame.index.equals(panel.index)
    steps = frame.to_numpy()[None, 1:]  # (1, time - 1, series)
    levels = features.integrate(panel.iloc[0].to_numpy(), steps, transforms_for(panel.columns))
    np.testing.assert_allclose(levels[0], panel.to_numpy()[1:], rtol=1e-9, atol=1e-9)


def test_integrate_checks_its_shapes():
    with pytest.raises(ValueError, match="one transform and one last level per series"):
        features.integrate(np.ones(2), np.zeros((3, 4, 2)), [Diff()])


def test_log_return_takes_a_series_or_a_table_only():
    with pytest.raises(ValueError, match=r"\(time,\) or \(time, series\)"):
        LogReturn().forward(np.ones((2, 2, 2)))


def test_log_return_skips_the_wti_negative_print(shared_panel):
    wti = shared_panel["WTI"].loc["2020-04-15":"2020-04-23"]
    assert wti.loc["2020-04-20"] < 0
    r = pd.Series(LogReturn().forward(wti.to_numpy()), index=wti.index)
    assert np.isnan(r.loc["2020-04-20"])  # no log of -36.98
    # out of it: against the last positive level (Friday 17 April), not missing
    assert r.loc["2020-04-21"] == pytest.approx(100 * np.log(wti.loc["2020-04-21"] / wti.loc["2020-04-17"]))
    assert r.loc["2020-04-22"] == pytest.approx(100 * np.log(wti.loc["2020-04-22"] / wti.loc["2020-04-21"]))
    assert np.isfinite(r.drop(pd.Timestamp("2020-04-20")).iloc[1:]).all()


def test_log_return_carries_over_non_positive_prints_only():
    x = np.array([10.0, -5.0, 0.0, 8.0, np.nan, 9.0, 12.0])
    got = LogReturn().forward(x)
    want = [np.nan, np.nan, np.nan, 100 * np.log(8 / 10), np.nan, np.nan, 100 * np.log(12 / 9)]
    np.testing.assert_allclose(got, want, equal_nan=True)


@pytest.mark.parametrize("t", ALL, ids=str)
def test_forward_of_a_table_is_forward_of_each_column(shared_panel, t):
    x = shared_panel.loc["2020-03":"2020-05", ["WTI", "SPX", "UST3M"]].to_numpy()
    got = t.forward(x)
    assert got.shape == x.shape
    for j in range(x.shape[1]):
        np.testing.assert_array_equal(got[:, j], t.forward(x[:, j]))


@pytest.mark.parametrize("t", ALL, ids=str)
def test_step_inverts_value_for_level_and_repeats_to_integrate(t):
    prev, levels = 50.0, np.array([52.0, 49.5, 61.25, 61.25, 3.0])
    values, reached = [], prev
    for level in levels:
        v = t.value_for_level(reached, level)
        reached = t.step(reached, v)
        assert reached == pytest.approx(level, rel=1e-12)
        values.append(v)
    np.testing.assert_allclose(t.integrate(prev, np.array(values)[None, :])[0], levels, rtol=1e-12)


def test_value_for_level_per_transform():
    assert Level().value_for_level(50.0, 52.0) == 52.0
    assert Diff().value_for_level(50.0, 52.0) == pytest.approx(2.0)
    assert LogReturn().value_for_level(50.0, 52.0) == pytest.approx(100 * np.log(1.04))


def test_a_missing_step_keeps_the_level_of_a_change_transform():
    steps = np.array([[1.0, np.nan, 2.0]])
    np.testing.assert_allclose(Diff().integrate(10.0, steps), [[11.0, 11.0, 13.0]])
    np.testing.assert_allclose(LogReturn().integrate(10.0, steps), [[10 * np.exp(0.01)] * 2 + [10 * np.exp(0.03)]])
    np.testing.assert_array_equal(Level().integrate(10.0, steps), steps)  # a missing level stays missing


@pytest.mark.parametrize("t", ALL, ids=str)
def test_integrate_along_the_horizon_of_a_paths_by_series_array(t):
    rng = np.random.default_rng(5)
    last = np.array([100.0, 4.0, 20.0])
    steps = rng.normal(size=(6, 10, 3))
    got = t.integrate(last, steps, axis=-2)
    for j in range(3):
        np.testing.assert_array_equal(got[:, :, j], t.integrate(last[j], steps[:, :, j]))


@pytest.mark.parametrize("series", ["SPX", "UST10Y", "VIX", "M2"])
def test_change_from_origin_over_real_history(shared_panel, series):
    t = transform_of(series)
    x = shared_panel.loc["2005":"2012", series].dropna().to_numpy()
    h = 21
    change = t.change_from_origin(x[h:], x[:-h])
    assert change.shape == (len(x) - h,)
    if t.models_changes:  # the sum of the model values in between
        y = t.forward(x)
        summed = np.array([y[i + 1 : i + h + 1].sum() for i in range(len(x) - h)])
        np.testing.assert_allclose(change, summed, rtol=1e-8, atol=1e-9)
    else:
        np.testing.assert_array_equal(change, x[h:] - x[:-h])


def test_change_from_origin_units():
    assert LogReturn().change_from_origin(110.0, 100.0) == pytest.approx(100 * np.log(1.1))
    assert Diff().change_from_origin(4.25, 4.0) == pytest.approx(0.25)
    assert Level().change_from_origin(30.0, 20.0) == pytest.approx(10.0)
    assert np.isnan(LogReturn().change_from_origin(-5.0, 100.0))


@pytest.mark.parametrize("t", ALL, ids=str)
def test_neutral_level_is_inside_the_domain(t):
    assert np.isfinite(t.value_for_level(t.neutral_level, t.neutral_level * 1.1 + 1.0))


def test_what_each_transform_says_about_itself():
    assert (Level().models_changes, Diff().models_changes, LogReturn().models_changes) == (False, True, True)
    assert (Level().positive_levels, Diff().positive_levels, LogReturn().positive_levels) == (False, False, True)
