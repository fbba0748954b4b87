"""Forecasts from a day-level model (``DayGPT``) through ``ForecastPipeline``: shapes and dates, forced
scenarios, seeds, and the inputs the model reads along a path equal to what it read in training.

The model is tiny and random (no training): these tests hold the plumbing, not the quality.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data_sources.calendar import business_days_after
from data_sources.panel import PanelBuilder
from forecaster.core.daymodel import DayGPT, DayGPTConfig
from forecaster.core.sampler import SamplingConfig, make_generator
from forecaster.core.tokenizer import TableTokenizer
from forecaster.market.day_inputs import INPUTS_FILE, read_inputs
from forecaster.market.features import integrate, model_frame
from forecaster.market.forecast import ForecastError
from forecaster.market.inputs import InputNormalization, feature_names, features_for_history, yoy_index_levels
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.scenario import Scenario, constraint_from_dict, forced_model_values
from forecaster.market.tokenizer import market_specs
from forecaster.market.transforms import LogMeanReverting, transforms_for

SERIES = ["SPX", "VIX", "UST10Y", "WTI", "CORE_CPI_YOY"]
AS_OF = "2019-12-31"
H = 30


@pytest.fixture(scope="module")
def builder(shared_mapping):
    return PanelBuilder(str(shared_mapping), series=SERIES, start="2000-01-01")


@pytest.fixture(scope="module")
def panel(builder):
    return builder.build(AS_OF)


@pytest.fixture(scope="module")
def index_levels(builder):
    return yoy_index_levels(builder)


@pytest.fixture(scope="module")
def inputs(panel, index_levels):
    names = feature_names(SERIES)
    hist = features_for_history(panel, index_levels)
    return names, InputNormalization.fit(hist, panel.index, names, "2018-12-31")


@pytest.fixture(scope="module")
def tokenizer(panel):
    frame = model_frame(panel).iloc[1:]
    return TableTokenizer.fit(frame, market_specs(frame))


def tiny_day_model(tok: TableTokenizer, n_features: int) -> DayGPT:
    torch.manual_seed(0)
    return DayGPT(DayGPTConfig(vocab_size=tok.vocab_size, row_len=tok.tokens_per_row, n_features=n_features,
                               context_rows=16, n_layer=1, n_head=2, n_embd=32, local_n_layer=1, local_n_head=2,
                               local_n_embd=16))


@pytest.fixture(scope="module")
def pipe(tokenizer, inputs):
    return ForecastPipeline(tiny_day_model(tokenizer, len(inputs[0])), tokenizer, None,
                            info={"series": SERIES}, inputs=inputs)


@pytest.fixture(scope="module")
def base(pipe, builder):
    return pipe.predict(builder, AS_OF, n_paths=16, horizon=H, seed=1)


def test_day_forecast_has_the_shapes_dates_and_no_missing_known_series(base, panel):
    assert base.paths.shape == (16, H, len(SERIES)) and base.series == SERIES
    assert base.as_of == pd.Timestamp(AS_OF)
    assert list(base.dates) == list(business_days_after(AS_OF, H))
    assert panel.iloc[-1].notna().all()  # every series is known at the origin ...
    assert np.isfinite(base.paths).all()  # ... so none is ever sampled as missing
    assert base.meta["prompt_days"] == 16 and base.meta["nan_cells"] == 0


def test_paths_never_move_beyond_the_fitted_range_of_daily_changes(base, panel, tokenizer):
    """A random model draws all over each slot; only bins of the fitted range may come out.

    Before ``fitted_mask``, the headroom bins were drawable: in signed-log space they reach
    S&P 500 days of -36 % and VIX x12 in a day, and trained day-level runs exploded there.
    """
    frame = model_frame(panel).iloc[1:]
    for p in range(base.n_paths):  # each path's own daily model values, from the origin's levels
        levels = pd.DataFrame(base.paths[p], index=base.dates, columns=base.series)
        steps = model_frame(pd.concat([panel.iloc[-1:], levels])).iloc[1:]
        for name in ("SPX", "VIX", "WTI"):
            lo, hi = frame[name].min(), frame[name].max()
            slack = 2 * tokenizer.codec(name).error_bound  # a bin's centre may lie past the data's extreme
            assert steps[name].between(lo - slack, hi + slack).all(), (name, p, steps[name].min(), steps[name].max())


def test_same_seed_same_paths_other_seed_other_paths(pipe, builder, base):
    days = []
    again = pipe.predict(builder, AS_OF, n_paths=16, horizon=H, seed=1, progress=days.append)
    other = pipe.predict(builder, AS_OF, n_paths=16, horizon=H, seed=2)
    np.testing.assert_array_equal(again.paths, base.paths)
    assert not np.array_equal(other.paths, base.paths)
    assert days == list(range(1, H + 1))
    cold = pipe.predict(builder, AS_OF, n_paths=16, horizon=H, seed=1, temperature=0)  # argmax: one path
    assert np.ptp(cold.paths, axis=0).max() == 0


def test_a_series_unknown_at_the_origin_may_stay_missing(pipe, panel):
    """A panel (not a source): WTI has no value for its last 40 days; the YoY drop-out inputs are unknown."""
    gappy = panel.copy()
    gappy.iloc[-40:, SERIES.index("WTI")] = np.nan
    fc = pipe.predict(gappy, n_paths=8, horizon=H, seed=0)
    assert np.isnan(fc.column("WTI")).all()  # no level to integrate from
    assert np.isfinite(np.delete(fc.paths, SERIES.index("WTI"), axis=2)).all()
    assert any("YoY drop-out inputs are unknown" in w for w in fc.meta["warnings"])


def test_forced_scenario_values_come_back_exactly(pipe, builder, panel):
    scen = Scenario("vix-rates", [
        constraint_from_dict({"series": "VIX", "level": 40, "days": "1-10"}, "test"),
        constraint_from_dict({"series": "UST10Y", "change_bp": 100, "days": "1-30"}, "test"),
    ])
    fc = pipe.predict(builder, AS_OF, n_paths=8, horizon=H, seed=3, scenario=scen)
    last = {c: float(panel[c].iloc[-1]) for c in SERIES}
    values = forced_model_values(scen, last, H, pipe._roundtrip)  # model units, as the tokenizer writes them
    vix = last["VIX"] * np.exp(np.cumsum(values["VIX"].to_numpy()[:10]) / 100)  # VIX is modeled as log changes
    np.testing.assert_allclose(fc.column("VIX")[:, :10], np.broadcast_to(vix, (8, 10)), rtol=1e-12)
    # day 1's jump is one token, within its bin ((1 + |r|) * expm1(width / 2) percent); then back to 40
    r = 100 * np.log(40.0 / last["VIX"])
    np.testing.assert_allclose(vix[0], 40.0, rtol=(1 + abs(r)) * np.expm1(pipe.tokenizer.codec("VIX").width / 2) / 100)
    np.testing.assert_allclose(vix[1:], 40.0, rtol=0.01)
    ust = last["UST10Y"] + np.cumsum(values["UST10Y"].to_numpy())
    np.testing.assert_array_equal(fc.column("UST10Y"), np.broadcast_to(ust, (8, H)))
    assert np.std(fc.column("VIX")[:, 10:]) > 0 and np.std(fc.column("SPX")[:, -1]) > 0


@pytest.fixture(scope="module")
def pipe_mr(panel, inputs):
    """A run that models VIX as ``log_mr`` (path-dependent levels), fitted on the normalisation's training days."""
    vix = LogMeanReverting.fit(panel.loc[:"2018-12-31", "VIX"].to_numpy(), "VIX")
    transforms = transforms_for(SERIES, {"VIX": vix.name})
    frame = model_frame(panel, transforms).iloc[1:]
    tok = TableTokenizer.fit(frame, market_specs(frame, {"VIX": vix.name}))
    return ForecastPipeline(tiny_day_model(tok, len(inputs[0])), tok, None,
                            info={"series": SERIES, "transforms": {"VIX": vix.name}}, inputs=inputs)


def test_the_inputs_along_a_path_are_the_history_features_of_the_extended_panel(pipe, builder, panel, index_levels,
                                                                                 inputs, base):
    _check_inputs_along_a_path(pipe, builder, panel, index_levels, inputs, base)


def test_the_inputs_along_a_path_of_a_path_dependent_transform(pipe_mr, builder, panel, index_levels, inputs):
    base = pipe_mr.predict(builder, AS_OF, n_paths=16, horizon=H, seed=1)
    assert pipe_mr.transforms[SERIES.index("VIX")].path_dependent
    _check_inputs_along_a_path(pipe_mr, builder, panel, index_levels, inputs, base)


def _check_inputs_along_a_path(pipe, builder, panel, index_levels, inputs, base):
    """Sample as ``predict`` does, recording what the callback gives the model after every day."""
    names, norm = inputs
    last = {c: float(panel[c].iloc[-1]) for c in SERIES}
    n_prompt = pipe.prompt_rows(len(panel))
    prompt = torch.from_numpy(pipe.tokenizer.encode(model_frame(panel).iloc[-n_prompt:]))
    sampler, feats, callback = pipe.day_sampling(panel, index_levels, last, 16, base.dates, n_prompt)
    # the prompt's vectors are the training vectors of those days
    hist = features_for_history(panel, index_levels)
    np.testing.assert_allclose(feats, norm.apply(hist[-n_prompt:]), rtol=1e-6, atol=1e-6)
    raw, levels, given = [], [], []

    def recording(rows):
        out = callback(rows)
        raw.append(callback.state.last.copy())
        levels.append(callback.levels.copy())
        given.append(out.numpy().copy())
        return out

    sampler.next_features = recording
    forced, _, _ = pipe._forced_ids(None, last, base.dates)  # "no release" days, as predict forces them
    ids = sampler.sample(prompt, 16, H, make_generator(1), SamplingConfig(), forced,
                         features=torch.from_numpy(feats))
    steps = pipe.tokenizer.decode(ids.reshape(-1, ids.shape[-1]).numpy())[SERIES].to_numpy().reshape(16, H, -1)
    paths = integrate(np.array([last[c] for c in SERIES]), steps, pipe.transforms)
    np.testing.assert_array_equal(paths, base.paths)  # what predict returned, from the same draws
    assert len(raw) == H - 1  # one call per sampled day but the last
    # the levels the callback fed the inputs are integrate's, to the bit
    np.testing.assert_array_equal(np.stack(levels, axis=1), paths[:, :-1])
    # path 0's vectors equal the vectorised history of the panel extended with its levels
    ext = pd.concat([panel, pd.DataFrame(paths[0], index=base.dates, columns=SERIES)])
    want = features_for_history(ext, index_levels)[len(panel):len(panel) + H - 1]
    np.testing.assert_allclose(np.stack(raw, axis=1)[0], want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.stack(given, axis=1)[0], norm.apply(want), rtol=1e-5, atol=1e-5)
    assert np.abs(np.stack(raw, axis=1)[1] - want).max() > 1e-6  # another path has its own inputs


def test_mismatched_inputs_json_is_refused(tmp_path, tokenizer, inputs):
    names, norm = inputs
    model = tiny_day_model(tokenizer, len(names))
    other = feature_names(["SPX", "VIX", "UST10Y", "WTI", "CPI_YOY"])  # same count, other series
    assert len(other) == len(names) and other != names
    bad = InputNormalization(tuple(other), norm.mean, norm.std, norm.fitted_through)
    (tmp_path / INPUTS_FILE).write_text(json.dumps({"names": other, "normalization": bad.to_dict()}))
    with pytest.raises(ForecastError, match="not those of this run's series"):
        ForecastPipeline(model, tokenizer, None, inputs=read_inputs(tmp_path))
    with pytest.raises(ForecastError, match="no inputs.json"):
        ForecastPipeline(model, tokenizer, None, inputs=read_inputs(tmp_path / "missing"))
    (tmp_path / INPUTS_FILE).write_text(json.dumps({"names": names, "normalization": norm.to_dict()}))
    assert ForecastPipeline(model, tokenizer, None, inputs=read_inputs(tmp_path)).inputs[0] == names


def test_a_trained_day_run_forecasts_from_the_command_line(tmp_path):
    """train --preset day-tiny, then forecast from the run folder (from_run reads the model kind and inputs.json)."""
    from forecaster.cli import main
    from forecaster.market.forecast import Forecast

    run, out = tmp_path / "day", tmp_path / "fc"
    assert main(["train", "--data", "embedded", "--as-of", "2017-12-29", "--out", str(run), "--preset", "day-tiny",
                 "--max-steps", "20", "--eval-every", "10", "--no-progress"]) == 0
    assert main(["forecast", "--run", str(run), "--as-of", "2018-12-31", "--paths", "8", "--horizon", "25",
                 "--shock", "VIX:level=40:days=1-5", "--out", str(out), "--no-progress"]) == 0
    fc = Forecast.load(out)
    assert fc.paths.shape == (8, 25, 4) and np.isfinite(fc.paths).all()
    np.testing.assert_allclose(fc.column("VIX")[:, :5], 40.0, rtol=0.05)  # day 1's jump: one token (its bin)
    np.testing.assert_allclose(fc.column("VIX")[:, 2:5], 40.0, rtol=0.01)
    assert fc.meta["no_release_days"]["CORE_CPI_YOY"] >= 23  # one or two releases in 25 business days
