"""Releases, not daily noise: a weekly, monthly or quarterly series changes only on its release days.

The publication calendar (the catalog's rules, on the NYSE calendar) says in advance on
which future days a new value enters the panel. The model frame holds a release series'
change on its release days and the "no release" token (the missing token) on the others;
the sampler is forced to that token between releases and cannot draw it on a release day.
An untrained model, which would otherwise draw changes (and "missing") on any day, shows it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from forecaster.core.model import GPT, GPTConfig
from forecaster.core.tokenizer import TableTokenizer
from forecaster.market.features import model_frame
from forecaster.market.inputs import ReleaseClock
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.scenario import Scenario, constraint_from_dict
from forecaster.market.tokenizer import market_specs
from forecaster.market.transforms import transform_of

SERIES = ["SPX", "CPI_YOY", "UNRATE", "GDP", "FED_BS"]
LOW = ["CPI_YOY", "UNRATE", "GDP", "FED_BS"]
AS_OF = "2019-06-28"
H = 250


@pytest.fixture(scope="module")
def builder(shared_mapping):
    from data_sources.panel import PanelBuilder

    return PanelBuilder(str(shared_mapping), series=SERIES, start="2005-01-01")


@pytest.fixture(scope="module")
def pipe(builder):
    frame = model_frame(builder.build(AS_OF))
    tok = TableTokenizer.fit(frame, market_specs(frame))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, row_len=tok.tokens_per_row, block_size=tok.tokens_per_row * 4,
                          n_layer=1, n_head=2, n_embd=32))
    return ForecastPipeline(model, tok)


@pytest.fixture(scope="module")
def fc(pipe, builder):
    return pipe.predict(builder, AS_OF, n_paths=16, horizon=H, seed=0)


def _change_days(levels: np.ndarray, last: float) -> np.ndarray:
    """(paths, horizon) bool: the level differs from the day before."""
    prev = np.concatenate([np.full((levels.shape[0], 1), last), levels[:, :-1]], axis=1)
    return levels != prev


def test_low_frequency_series_change_only_on_their_release_days(fc, builder):
    last = builder.build(AS_OF).iloc[-1]
    clock = ReleaseClock(LOW, fc.dates[0], fc.dates[-1])
    for name in LOW:
        release = clock.is_release(name, fc.dates)
        changed = _change_days(fc.column(name), float(last[name]))
        assert not changed[:, ~release].any(), f"{name} changes on a day without a release"
        assert changed[:, release].mean() > 0.5, f"{name}: an untrained model should change on most release days"
        expected = {"CPI_YOY": (11, 13), "UNRATE": (11, 13), "GDP": (3, 5), "FED_BS": (49, 53)}[name]
        assert expected[0] <= release.sum() <= expected[1], (name, int(release.sum()))
        assert fc.meta["no_release_days"][name] == H - int(release.sum())
    assert "SPX" not in fc.meta["no_release_days"]
    assert _change_days(fc.column("SPX"), float(last["SPX"])).mean() > 0.9  # daily series are free every day


def test_release_days_are_the_days_the_panel_changes(builder):
    """The calendar agrees with history: in 2018 the panel's CPI_YOY changed only on the clock's release days."""
    panel = builder.build("2018-12-31").loc["2018-01-02":"2018-12-31"]
    clock = ReleaseClock(["CPI_YOY", "UNRATE"], panel.index[0], panel.index[-1])
    for name in ("CPI_YOY", "UNRATE"):
        changed = panel[name].diff().fillna(0).to_numpy() != 0
        release = clock.is_release(name, panel.index)
        assert not (changed & ~release).any() and release.sum() == 12


def test_the_frame_holds_changes_on_release_days_and_no_release_between(builder):
    panel = builder.build("2018-12-31")
    frame = model_frame(panel)
    days = panel.index[(panel.index >= "2018-01-01")]
    clock = ReleaseClock(LOW, days[0], days[-1])
    for name in LOW:
        release = clock.is_release(name, days)
        x = frame.loc[days, name].to_numpy()
        assert np.isnan(x[~release]).all(), f"{name}: a value on a day without a release"
        assert np.isfinite(x[release]).all(), f"{name}: a release day without its change"
        change = transform_of(name).forward(panel[name].to_numpy())[panel.index.isin(days)]
        np.testing.assert_allclose(x[release], change[release], atol=1e-12)
    assert frame.loc[days, "SPX"].notna().all()
    legacy = model_frame(panel, releases=False)  # runs from before the rule: zeros between releases
    assert (legacy.loc[days, "CPI_YOY"].fillna(0) == frame.loc[days, "CPI_YOY"].fillna(0)).all()
    assert legacy.loc[days, "CPI_YOY"].notna().all()


def test_release_days_never_sample_no_release(fc, pipe, builder):
    """On a release day the series is never "missing": the model must draw the release's change."""
    assert not np.isnan(fc.paths).any()
    clock = ReleaseClock(LOW, fc.dates[0], fc.dates[-1])
    last = builder.build(AS_OF).iloc[-1]
    for name in ("CPI_YOY", "GDP", "FED_BS"):  # continuous changes: a drawn zero is all but impossible
        changed = _change_days(fc.column(name), float(last[name]))
        release = clock.is_release(name, fc.dates)
        assert changed[:, release].mean() > 0.9, name


def test_a_scenario_moves_a_monthly_series_on_its_release_days(pipe, builder):
    """A CPI YoY level of 4 % over days 1-30 prints at the first release within them, and stays:
    the origin's level until then, no change between releases."""
    scen = Scenario("cpi", [constraint_from_dict({"series": "CPI_YOY", "level": 4.0, "days": "1-30"}, "test")])
    fc = pipe.predict(builder, AS_OF, n_paths=4, horizon=40, seed=0, scenario=scen)
    release = ReleaseClock(["CPI_YOY"], fc.dates[0], fc.dates[-1]).is_release("CPI_YOY", fc.dates)
    first = int(np.flatnonzero(release[:30])[0])
    last = float(builder.build(AS_OF)["CPI_YOY"].iloc[-1])
    cpi = fc.column("CPI_YOY")
    np.testing.assert_allclose(cpi[:, :first], last)
    np.testing.assert_allclose(cpi[:, first:30], 4.0, atol=pipe.tokenizer.codec("CPI_YOY").width / 2 + 1e-9)
    assert fc.meta["no_release_days"]["CPI_YOY"] == 40 - int(release.sum())
    assert fc.meta["forced_days"]["CPI_YOY"] == int(release[:30].sum())
