"""YoY inflation from its index (``yoy_index``): releases are month-on-month changes, the rate follows exactly.

Checked on the real CPI and core CPI: the frame's release values are the index's changes,
and integrating the realised changes from an origin gives back the panel's real YoY path
to rounding, base effects included, which is what "derived exactly" means.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data_sources.calendar import business_days_after
from data_sources.panel import PanelBuilder
from forecaster.cli import main
from forecaster.core.model import GPT, GPTConfig
from forecaster.core.tokenizer import TableTokenizer
from forecaster.market import yoy
from forecaster.market.features import integrate, model_frame, release_days
from forecaster.market.forecast import ForecastError
from forecaster.market.inputs import yoy_index_levels
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.scenario import Scenario, constraint_from_dict
from forecaster.market.tokenizer import market_specs
from forecaster.market.transforms import transforms_for

SERIES = ["SPX", "CPI_YOY", "CORE_CPI_YOY", "UNRATE"]
CHOSEN = {"CPI_YOY": "yoy_index", "CORE_CPI_YOY": "yoy_index"}
AS_OF = "2019-06-28"


@pytest.fixture(scope="module")
def builder(shared_mapping):
    return PanelBuilder(str(shared_mapping), series=SERIES, start="2000-01-01")


@pytest.fixture(scope="module")
def index_levels(builder):
    return yoy_index_levels(builder)


def test_release_values_are_the_index_monthly_log_changes(builder, index_levels):
    panel = builder.build("2018-12-31")
    frame = model_frame(panel, transforms_for(SERIES, CHOSEN), index_levels=index_levels)
    cpi = builder.observations("CPI")
    mom = 100 * np.log(cpi / cpi.shift(1))
    days = panel.index[panel.index >= "2018-01-01"]
    x = frame.loc[days, "CPI_YOY"].dropna()
    assert len(x) == 12  # one per monthly release
    # the release of mid-February 2018 is January's change, and so on
    months = pd.period_range("2017-12", "2018-11", freq="M").to_timestamp()
    np.testing.assert_allclose(x.to_numpy(), mom.loc[months].to_numpy(), atol=1e-12)
    assert frame.loc[days, "SPX"].notna().all()


@pytest.mark.parametrize("origin", ["2007-06-29", "2019-06-28", "2021-06-30"])
def test_integrating_the_realised_changes_gives_back_the_real_yoy_path(builder, index_levels, origin):
    """Base effects by construction: 250 days of real releases, integrated from the origin's rate."""
    full = builder.build("2024-12-31")
    transforms = transforms_for(SERIES, CHOSEN)
    frame = model_frame(full, transforms, index_levels=index_levels)
    hist = full.loc[:origin]
    dates = business_days_after(hist.index[-1], 250)
    future = frame.reindex(dates)
    steps = future.to_numpy()[None]  # (1, 250, S)
    drops = [yoy.dropouts(c, index_levels[c], hist.index[-1]) if c in CHOSEN else None for c in SERIES]
    levels = integrate(hist.iloc[-1].to_numpy(), steps, transforms, drops)
    for j, c in enumerate(SERIES):
        if c in CHOSEN:
            real = full[c].reindex(dates).to_numpy()
            np.testing.assert_allclose(levels[0, :, j], real, atol=1e-9, err_msg=c)


def test_the_yoy_paths_stepper_equals_integrate_to_the_bit(index_levels):
    rng = np.random.default_rng(0)
    steps = np.where(rng.random((8, 60)) < 0.05, rng.normal(0.2, 0.3, (8, 60)), np.nan)
    steps[:, 59] = 0.1  # one release for every path
    drops = yoy.dropouts("CPI_YOY", index_levels["CPI_YOY"], pd.Timestamp(AS_OF))
    whole = yoy.YoyPaths(2.0, drops, 8).integrate(steps)
    one = yoy.YoyPaths(2.0, drops, 8)
    daily = np.stack([one.step(steps[:, t]) for t in range(60)], axis=1)
    np.testing.assert_array_equal(whole, daily)


@pytest.fixture(scope="module")
def pipe(builder, index_levels):
    transforms = transforms_for(SERIES, CHOSEN)
    frame = model_frame(builder.build(AS_OF), transforms, index_levels=index_levels)
    tok = TableTokenizer.fit(frame, market_specs(frame, CHOSEN))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, row_len=tok.tokens_per_row, block_size=tok.tokens_per_row * 4,
                          n_layer=1, n_head=2, n_embd=32))
    return ForecastPipeline(model, tok, info={"transforms": CHOSEN})


def test_a_forecast_changes_the_rate_on_release_days_only(pipe, builder):
    fc = pipe.predict(builder, AS_OF, n_paths=16, horizon=250, seed=0)
    last = builder.build(AS_OF).iloc[-1]
    on = release_days(["CPI_YOY"], fc.dates)["CPI_YOY"]
    cpi = fc.column("CPI_YOY")
    prev = np.concatenate([np.full((16, 1), last["CPI_YOY"]), cpi[:, :-1]], axis=1)
    changed = cpi != prev
    assert not changed[:, ~on].any() and changed[:, on].mean() > 0.9
    assert np.isfinite(cpi).all() and 11 <= on.sum() <= 13


def test_a_bare_panel_needs_the_index_observations(pipe, builder, index_levels):
    panel = builder.build(AS_OF)
    with pytest.raises(ForecastError, match="CPI_YOY is modeled from its index's monthly changes .*pass a data source"):
        pipe.predict(panel, AS_OF, n_paths=2, horizon=10, seed=0)
    fc = pipe.predict(panel, AS_OF, n_paths=2, horizon=10, seed=0, index_levels=index_levels)
    again = pipe.predict(builder, AS_OF, n_paths=2, horizon=10, seed=0)
    np.testing.assert_array_equal(fc.paths, again.paths)


def test_a_scenario_prints_the_yoy_rate_it_asks_for(pipe, builder):
    scen = Scenario("cpi", [constraint_from_dict({"series": "CPI_YOY", "level": 2.6, "days": "1-60"}, "test")])
    fc = pipe.predict(builder, AS_OF, n_paths=4, horizon=80, seed=0, scenario=scen)
    on = release_days(["CPI_YOY"], fc.dates)["CPI_YOY"]
    first = int(np.flatnonzero(on)[0])
    # each release's month-on-month change is chosen against the month leaving the window: 2.6 % to
    # within the tokenizer's bin of the change (its error in the rate is about the same size)
    width = pipe.tokenizer.codec("CPI_YOY").width
    np.testing.assert_allclose(fc.column("CPI_YOY")[:, first:60], 2.6, atol=width)
    # a jump no month in the history comes near (1.6 % to 4 % in one release: a 2.2 % monthly change)
    jump = Scenario("cpi", [constraint_from_dict({"series": "CPI_YOY", "level": 4.0, "days": "1-30"}, "test")])
    with pytest.raises(Exception, match="forced CPI_YOY value 2.2.* is outside the tokenizer's range"):
        pipe.predict(builder, AS_OF, n_paths=2, horizon=30, seed=0, scenario=jump)
    too_long = Scenario("cpi", [constraint_from_dict({"series": "CPI_YOY", "change": 1.0, "days": "1-300"}, "t")])
    with pytest.raises(Exception, match="constrain at most the first 12 releases"):
        pipe.predict(builder, AS_OF, n_paths=2, horizon=300, seed=0, scenario=too_long)


def test_training_records_yoy_index_where_the_index_is_known(tmp_path, capsys):
    common = ["train", "--data", "embedded", "--as-of", "2017-12-29", "--preset", "tiny", "--max-steps", "2",
              "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    rec = json.loads((tmp_path / "a" / "run.json").read_text())["transforms"]
    assert rec["CORE_CPI_YOY"] == "yoy_index"
    assert main([*common, "--out", str(tmp_path / "b"), "--transform", "CORE_CPI_YOY=diff"]) == 0
    assert json.loads((tmp_path / "b" / "run.json").read_text())["transforms"]["CORE_CPI_YOY"] == "diff"
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "c"), "--transform", "SPX=yoy_index"]) == 2
    err = capsys.readouterr().err.strip()
    assert "SPX: yoy_index models a YoY inflation rate by its index" in err and len(err.splitlines()) == 1
    # the run forecasts from its own source, which has the index
    assert main(["forecast", "--run", str(tmp_path / "a"), "--as-of", "2018-12-31", "--paths", "4", "--horizon",
                 "30", "--out", str(tmp_path / "fc"), "--no-progress"]) == 0
