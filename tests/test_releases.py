"""Releases, not daily noise: a weekly, monthly or quarterly series changes only on its release days.

The publication calendar (the catalog's rules, on the NYSE calendar) says in advance on
which future days a new value enters the panel; on every other day the sampler is
forced to the series' "no release" token (a zero change). An untrained model, which
would otherwise draw changes on any day, shows it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster.core.model import GPT, GPTConfig
from forecaster.core.tokenizer import TableTokenizer
from forecaster.market.features import model_frame
from forecaster.market.inputs import ReleaseClock
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.scenario import Scenario, constraint_from_dict
from forecaster.market.tokenizer import market_specs

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


def test_a_scenario_constraint_wins_over_the_calendar(pipe, builder):
    scen = Scenario("cpi", [constraint_from_dict({"series": "CPI_YOY", "level": 4.0, "days": "1-30"}, "test")])
    fc = pipe.predict(builder, AS_OF, n_paths=4, horizon=40, seed=0, scenario=scen)
    np.testing.assert_allclose(fc.column("CPI_YOY")[:, :30], 4.0, atol=0.02)
    assert fc.meta["no_release_days"]["CPI_YOY"] >= 30  # counted by the calendar; the scenario overrides them
