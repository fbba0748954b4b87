"""The model's inputs beyond the tokens (``forecaster.market.inputs``) on the real panel: the
incremental state equals the vectorised history, release counters hit 0 on the real release
days, the YoY drop-out is the index's month-on-month change 12 months before the next release,
and neither the features nor their normalisation look past their day."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_sources import catalog
from data_sources.calendar import business_days_after
from forecaster.market import inputs
from forecaster.market.inputs import IncrementalFeatures, InputNormalization, feature_names, features_for_history

LOW_FREQUENCY = ("CPI_YOY", "CORE_CPI_YOY", "UNRATE", "M2", "GDP", "FED_BS")


@pytest.fixture(scope="module")
def index_levels(shared_builder):
    return inputs.yoy_index_levels(shared_builder)


@pytest.fixture(scope="module")
def history(shared_panel, index_levels):
    return features_for_history(shared_panel, index_levels)


@pytest.fixture(scope="module")
def names(shared_panel):
    return feature_names(shared_panel.columns)


def column(history, names, name):
    return history[:, names.index(name)]


def test_feature_names_are_unique_stable_and_documented(shared_panel, names, history):
    assert len(names) == len(set(names)) == history.shape[1] == 230
    assert names == feature_names(list(shared_panel.columns))
    assert names == IncrementalFeatures.from_history(shared_panel.iloc[-300:]).names
    assert names[:7] == [f"calendar.{n}" for n in inputs.CALENDAR_FEATURES]
    assert names[7:9] == ["release.CPI_YOY.since", "release.CPI_YOY.until"]
    assert names[19:21] == ["level.VIX.value", "level.VIX.known"]  # no levels of trending indices
    assert names[37:40] == ["roll21.SPX.mean", "roll21.SPX.vol", "roll21.SPX.known"]
    assert not any(n.startswith(("level.SPX.", "level.M2.", "level.XLK.")) for n in names)
    assert names[-4:] == ["yoy_dropout.CPI_YOY.value", "yoy_dropout.CPI_YOY.known",
                          "yoy_dropout.CORE_CPI_YOY.value", "yoy_dropout.CORE_CPI_YOY.known"]
    assert [n.split(".")[1] for n in names if n.startswith("release.")][::2] == list(LOW_FREQUENCY)
    flags = inputs.flag_index(names)
    assert names[flags[names.index("roll250.VIX.vol")]] == "roll250.VIX.known"
    assert flags[names.index("calendar.weekday_sin")] == -1 and flags[names.index("level.VIX.known")] == -1


def test_history_features_are_finite_and_scaled(shared_panel, history, names):
    assert history.shape == (len(shared_panel), len(names)) and np.isfinite(history).all()
    counters = [i for i, n in enumerate(names) if n.startswith(("release.", "calendar.bday"))]
    assert history[:, counters].min() >= 0 and history[:, counters].max() < 2.2  # ~[0, 1]; shutdown delays reach 2
    flags = [i for i, n in enumerate(names) if n.endswith(".known")]
    assert set(np.unique(history[:, flags])) == {0.0, 1.0}
    # a missing level is 0 with its flag 0: the Baa spread file ends in 2024
    baa = shared_panel["BAA_SPREAD"].notna().to_numpy()
    assert not baa.all() and (column(history, names, "level.BAA_SPREAD.known") == baa).all()
    assert (column(history, names, "level.BAA_SPREAD.value")[~baa] == 0).all()
    # log level of a positive series, the level of a yield
    day = shared_panel.index.get_loc(pd.Timestamp("2019-06-03"))
    assert column(history, names, "level.VIX.value")[day] == pytest.approx(np.log(shared_panel["VIX"].iloc[day]))
    assert column(history, names, "level.UST3M.value")[day] == pytest.approx(shared_panel["UST3M"].iloc[day])


@pytest.mark.parametrize("origin", ["2008-09-12", "2015-09-30", "2020-02-21"])
def test_incremental_features_equal_the_vectorised_history(shared_panel, index_levels, history, names, origin):
    """Feed the real days after the origin into ``step``: path 0 gets them as they were, path 1 perturbed.

    2008: the crisis; 2015: XLRE appears mid-path; 2020: COVID and WTI's negative print. 300 days
    take the YoY drop-out past 12 months, onto index months implied by the fed YoY rates.
    """
    state = IncrementalFeatures.from_history(shared_panel, index_levels, n_paths=2, origin=origin)
    start = shared_panel.index.get_indexer([pd.Timestamp(origin)])[0]
    assert start >= 0
    np.testing.assert_allclose(state.last[0], history[start], rtol=1e-9, atol=1e-9)
    rng = np.random.default_rng(0)
    worst = 0.0
    for k in range(start + 1, start + 301):
        real = shared_panel.iloc[k].to_numpy(dtype=np.float64)
        levels = np.stack([real, real * (1 + 0.01 * rng.standard_normal(real.shape))])
        out = state.step(levels, shared_panel.index[k])
        assert out.shape == (2, len(names)) and np.isfinite(out).all()
        worst = max(worst, float(np.abs(out[0] - history[k]).max()))
    assert worst < 1e-9, f"incremental vs vectorised: max abs difference {worst:.3g}"
    assert np.abs(out[1] - history[start + 300]).max() > 1e-3  # the perturbed path has its own state


def test_release_counters_count_down_to_zero_on_the_real_release_days(shared_panel, history, names):
    nyse = pd.DatetimeIndex(business_days_after(shared_panel.index[0] - pd.Timedelta(days=1), len(shared_panel) + 50))
    for name in LOW_FREQUENCY:
        values = shared_panel[name].to_numpy()
        until = column(history, names, f"release.{name}.until")
        since = column(history, names, f"release.{name}.since")
        step = 1.0 / inputs._CYCLE[catalog.get(name).frequency]
        moved = np.flatnonzero(np.isfinite(values[1:]) & np.isfinite(values[:-1]) & (values[1:] != values[:-1])) + 1
        assert len(moved) > 100, name
        missed = []
        for k in moved:
            day, before = shared_panel.index[k], shared_panel.index[k - 1]
            if day not in nyse:  # a panel row on an exchange holiday (VIX prints; MLK Day before 1998)
                assert until[k] == 0, (name, day)  # the release counts as today: its NYSE day is the next one
                continue
            if ((nyse > before) & (nyse < day)).any():  # the exchange shut on a day the rule counts (Sandy, 2012-10-30)
                missed.append(day)
                continue
            assert until[k] == 0 and since[k] == 0, (name, day)
            if before in nyse:
                assert until[k - 1] == pytest.approx(step), (name, before)  # known the day before
        assert len(missed) <= 2, (name, missed)
    # between releases the counters move by one business day a day
    cpi = column(history, names, "release.CPI_YOY.until")
    ones = np.diff(cpi)[(cpi[:-1] > 0)]
    assert np.mean(np.isclose(ones, -1 / 21)) > 0.97


def test_yoy_dropout_is_the_index_change_twelve_months_before_the_next_release(shared_builder, shared_panel,
                                                                              history, names):
    cpi = shared_builder.observations("CPI")
    monthly = pd.Series(cpi.to_numpy(), index=cpi.index.to_period("M"))
    value = column(history, names, "yoy_dropout.CPI_YOY.value")
    known = column(history, names, "yoy_dropout.CPI_YOY.known")
    until = column(history, names, "release.CPI_YOY.until")
    yoy = shared_panel["CPI_YOY"].to_numpy()
    rng = np.random.default_rng(1)
    for k in rng.choice(len(shared_panel), 80, replace=False):
        day = shared_panel.index[k]
        latest = shared_builder.observations("CPI", as_of=day).index[-1].to_period("M")  # P, as known that day
        expected = 100 * (monthly[latest - 11] / monthly[latest - 12] - 1)
        assert known[k] == 1 and value[k] == pytest.approx(expected, rel=1e-12), day
    # the day before a release: next YoY = this YoY * (1 + new month-on-month) / (1 + drop-out)
    checked = 0
    for k in np.flatnonzero(np.isclose(until, 1 / 21))[-200:]:
        if k + 1 >= len(yoy) or not np.isfinite(yoy[k + 1]) or yoy[k + 1] == yoy[k]:
            continue
        latest = shared_builder.observations("CPI", as_of=shared_panel.index[k]).index[-1].to_period("M")
        if shared_builder.observations("CPI", as_of=shared_panel.index[k + 1]).index[-1].to_period("M") != latest + 1:
            continue  # a month missing from the data (the 2025 shutdown): the next release skips one
        new = 100 * (monthly[latest + 1] / monthly[latest] - 1)
        implied = 100 * ((1 + yoy[k] / 100) * (1 + new / 100) / (1 + value[k] / 100) - 1)
        assert implied == pytest.approx(yoy[k + 1], abs=1e-9)
        checked += 1
    assert checked > 150


def test_features_do_not_look_past_their_day(shared_builder, shared_panel, index_levels, history):
    cut = pd.Timestamp("2012-03-30")
    early = features_for_history(shared_builder.build(cut), index_levels)
    np.testing.assert_allclose(early, history[: len(early)], rtol=1e-10, atol=1e-10)


def test_normalisation_fitted_as_of_d_ignores_data_after_d(shared_panel, index_levels, history, names):
    through = pd.Timestamp("2014-12-31")
    norm = InputNormalization.fit(history, shared_panel.index, names, through)
    # change everything published after D: levels, and index months released after D
    altered = shared_panel.copy()
    after = altered.index > through
    altered.loc[after] = altered.loc[after] * 1.7 + 0.3
    altered_index = {}
    for name, obs in index_levels.items():
        released = catalog.get(name).release.release_dates(obs.index) > through
        altered_index[name] = obs.where(~np.asarray(released), obs * 1.05)
    other = features_for_history(altered, altered_index)
    assert np.abs(other[after] - history[after]).max() > 0.1
    again = InputNormalization.fit(other, altered.index, names, through)
    assert json.dumps(again.to_dict()) == json.dumps(norm.to_dict())
    # JSON round trip, and an unknown key is an error
    back = InputNormalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.apply(history), norm.apply(history))
    with pytest.raises(ValueError, match="keys must be"):
        InputNormalization.from_dict({**norm.to_dict(), "extra": 1})
    # standardised on the training days' known values; flags untouched; unknown values stay 0
    z = norm.apply(history)
    train = ~after
    vix = names.index("level.VIX.value")
    assert z[train, vix].mean() == pytest.approx(0, abs=1e-9) and z[train, vix].std() == pytest.approx(1, abs=1e-9)
    flags = [i for i, n in enumerate(names) if n.endswith(".known")]
    np.testing.assert_array_equal(z[:, flags], history[:, flags])
    xlre = names.index("roll21.XLRE.mean")  # XLRE starts in October 2015: unknown before
    known = history[:, inputs.flag_index(names)[xlre]]
    assert (known == 0).any() and (z[known == 0, xlre] == 0).all() and np.isfinite(z).all()


def test_step_checks_its_input(shared_panel):
    state = IncrementalFeatures.from_history(shared_panel, n_paths=3, origin="2019-12-31")
    row = np.tile(shared_panel.loc["2020-01-02"].to_numpy(), (3, 1))
    with pytest.raises(ValueError, match=r"\(paths, series\)"):
        state.step(row[:, :5], "2020-01-02")
    with pytest.raises(ValueError, match="must increase"):
        state.step(row, "2019-12-31")
    out = state.step(row, "2020-01-02")
    assert out.shape == (3, len(state.names)) and (out[:, state.names.index("yoy_dropout.CPI_YOY.known")] == 0).all()


def test_reordering_paths_carries_their_whole_state(shared_panel, index_levels, history):
    """A scenario's resampling copies paths: after ``reorder([1, 1])`` both paths continue as path 1 did,
    and the real-data path that was dropped leaves nothing behind."""
    origin = "2019-12-31"
    state = IncrementalFeatures.from_history(shared_panel, index_levels, n_paths=2, origin=origin)
    start = shared_panel.index.get_indexer([pd.Timestamp(origin)])[0]
    rng = np.random.default_rng(1)
    fake = []
    for k in range(start + 1, start + 40):
        real = shared_panel.iloc[k].to_numpy(dtype=np.float64)
        fake.append(real * (1 + 0.01 * rng.standard_normal(real.shape)))
        state.step(np.stack([real, fake[-1]]), shared_panel.index[k])
    state.reorder(np.array([1, 1]))
    np.testing.assert_array_equal(state.last[0], state.last[1])
    k = start + 40
    real = shared_panel.iloc[k].to_numpy(dtype=np.float64)
    out = state.step(np.stack([real, real]), shared_panel.index[k])
    np.testing.assert_array_equal(out[0], out[1])  # the same history now: the same vector
    assert np.abs(out[0] - history[k]).max() > 1e-3  # and it is not the real path's
