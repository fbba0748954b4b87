"""Issue 12 hardening of the forecast path: nothing sampled as missing that had a value, every
NaN and clamped prompt value reported, scenario files and sampling settings refused in one line.

The pipeline tests use an untrained model made to prefer the "missing" token: its final
layer norm outputs one constant vector that points at the missing ids' output rows, so
wherever "missing" is allowed it is drawn about 98 % of the time.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster.cli import main
from forecaster.market.features import model_frame
from forecaster.market.forecast import Forecast, ForecastError
from forecaster.core.model import GPT, GPTConfig
from forecaster.market.pipeline import ForecastPipeline
from forecaster.core.sampler import SamplingConfig, SamplingError, make_generator
from forecaster.market.scenario import Scenario, ScenarioError, constraint_from_dict, load_scenario, parse_shock
from forecaster.core.tokenizer import TableTokenizer
from forecaster.market.tokenizer import market_specs

SERIES = ["SPX", "VIX", "UST10Y", "WTI", "CORE_CPI_YOY"]
AS_OF = "2019-12-31"
ROWS = 6  # context window in days


@pytest.fixture(scope="module")
def builder(shared_mapping):
    from data_sources.panel import PanelBuilder

    return PanelBuilder(str(shared_mapping), series=SERIES, start="2000-01-01")


@pytest.fixture(scope="module")
def panel(builder):
    return builder.build(AS_OF)


@pytest.fixture(scope="module")
def pipe(panel):
    frame = model_frame(panel)
    tok = TableTokenizer.fit(frame, market_specs(frame))
    R = tok.tokens_per_row
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, row_len=R, block_size=R * ROWS, n_layer=1, n_head=2,
                          n_embd=32, bias=True))
    missing = [tok.missing_id(c) for c in SERIES]
    assert all(m is not None for m in missing)
    with torch.no_grad():
        u = torch.zeros(32)
        u[0] = 1.0
        model.lm_head.weight[missing] = u  # the missing ids' output rows (tied with their embeddings)
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(10.0 * u)  # every hidden state = 10 u: logit 10 for "missing"
    return ForecastPipeline(model, tok, info={"data": "the-run-s-own-source.yaml"})


# -- item 7: no "missing" drawn for a series with a value at the origin; NaN counted --------------
def test_model_prefers_missing_when_allowed(pipe):
    # the premise of the next tests: with the tokenizer's full mask the sampler draws "missing"
    from forecaster.core.sampler import Sampler

    tok = pipe.tokenizer
    prompt = torch.full((ROWS - 1, tok.tokens_per_row), 0, dtype=torch.long)
    prompt[:] = torch.from_numpy(tok.slot_lo)
    ids = Sampler(pipe.model, torch.from_numpy(tok.valid_mask())).sample(prompt.reshape(-1), 8, 5, make_generator(0))
    first = tok.column_slots("VIX").start
    assert (ids[:, :, first] == tok.missing_id("VIX")).float().mean() > 0.8


def test_no_nan_for_series_with_a_value_at_the_origin(pipe, builder, panel):
    assert panel.iloc[-1].notna().all()
    fc = pipe.predict(builder, AS_OF, n_paths=16, horizon=8, seed=1)
    assert np.isfinite(fc.paths).all()
    assert fc.meta["nan_cells"] == 0 and fc.meta["nan_cells_by_series"] == {}
    assert not any("NaN" in w or "missing" in w for w in fc.meta["warnings"])


def test_nan_left_in_paths_is_counted_and_warned(pipe, panel):
    # VIX unknown on the origin day: "missing" stays allowed for it, and this model draws it
    holed = panel.copy()
    holed.iloc[-1, holed.columns.get_loc("VIX")] = np.nan
    fc = pipe.predict(holed, AS_OF, n_paths=16, horizon=8, seed=1)
    vix = fc.column("VIX")
    assert np.isnan(vix).sum() > 0
    assert fc.meta["nan_cells_by_series"] == {"VIX": int(np.isnan(vix).sum())}
    assert fc.meta["nan_cells"] == int(np.isnan(fc.paths).sum())
    assert np.isfinite(fc.column("SPX")).all()  # the others still have values
    assert any("VIX" in w and "missing" in w for w in fc.meta["warnings"])


# -- item 10: the data source used and the clamped prompt values are in the metadata ---------
def test_meta_records_the_data_source_actually_used(pipe, builder, panel):
    fc = pipe.predict(builder, AS_OF, n_paths=2, horizon=2, seed=0)
    assert fc.meta["data"] != "the-run-s-own-source.yaml"
    assert fc.meta["data"].endswith("shared_data.yaml") and fc.meta["source"] == builder.source.name
    fc = pipe.predict(panel, AS_OF, n_paths=2, horizon=2, seed=0)
    assert fc.meta["data"] != "the-run-s-own-source.yaml" and fc.meta["source"] == "dataframe"


def test_clamped_prompt_values_are_counted_and_warned(pipe, panel):
    wild = panel.copy()
    wild.iloc[-2, wild.columns.get_loc("SPX")] *= 5.0  # +161 % and then -161 %: far beyond the fitted range
    fc = pipe.predict(wild, AS_OF, n_paths=2, horizon=2, seed=0)
    assert fc.meta["clamped"] == {"SPX": 2}
    assert any("SPX" in w and "clamped" in w for w in fc.meta["warnings"])
    fc = pipe.predict(panel, AS_OF, n_paths=2, horizon=2, seed=0)
    assert fc.meta["clamped"] == {} and not any("clamped" in w for w in fc.meta["warnings"])


# -- item 9: sampling settings and seeds -----------------------------------------------------
@pytest.mark.parametrize("kwargs, msg", [
    ({"top_k": 0}, "top_k must be >= 1, got 0"),
    ({"top_k": -3}, "top_k must be >= 1"),
    ({"top_k": 2.5}, "top_k must be an integer"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"top_p": float("nan")}, r"top_p must be in \(0, 1\]"),
    ({"temperature": float("nan")}, "temperature must be a finite number >= 0"),
    ({"temperature": float("inf")}, "temperature must be a finite number >= 0"),
    ({"temperature": -1.0}, "temperature must be a finite number >= 0"),
])
def test_bad_sampling_settings_are_user_errors(kwargs, msg):
    with pytest.raises(SamplingError, match=msg):
        SamplingConfig(**kwargs)


@pytest.mark.parametrize("seed", [-1, 2**64, 10**30, 1.5, True, "3"])
def test_bad_seeds_are_user_errors(seed):
    with pytest.raises(SamplingError, match="seed"):
        make_generator(seed)


def test_good_seeds_make_generators():
    assert torch.rand(1, generator=make_generator(2**64 - 1)).item() == torch.rand(1, generator=make_generator(2**64 - 1)).item()
    assert isinstance(make_generator(np.int64(5)), torch.Generator)


def test_predict_refuses_a_bad_seed(pipe, panel):
    with pytest.raises(SamplingError, match="seed"):
        pipe.predict(panel, AS_OF, n_paths=2, horizon=2, seed=-5)


@pytest.mark.parametrize("flag", [["--top-k", "0"], ["--top-p", "0"], ["--top-p", "1.5"], ["--top-p", "nan"],
                                  ["--temperature", "nan"], ["--temperature", "inf"], ["--seed", str(2**64)],
                                  ["--seed", "-1"]])
def test_cli_bad_sampling_flags_are_one_line(tmp_path, capsys, flag, pipe, shared_mapping):
    run = _saved_run(tmp_path, pipe)
    code = main(["forecast", "--run", str(run), "--as-of", AS_OF, "--paths", "2", "--horizon", "2", "--no-progress",
                 "--data", str(shared_mapping), "--out", str(tmp_path / "fc")] + flag)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "fc").exists()


def _saved_run(tmp_path, pipe):
    """A run folder holding the test model and tokenizer (so the CLI can load them)."""
    from foundation.atomic import write_text
    from forecaster.core.run import RunDir
    from forecaster.core.training.checkpoint import save_weights

    run = RunDir(tmp_path / "run")
    run.path.mkdir(parents=True, exist_ok=True)
    pipe.tokenizer.save(run.tokenizer)
    write_text(run.model_config, pipe.model.config.to_json())
    write_text(run.run_info, json.dumps({"tokenizer_fingerprint": pipe.tokenizer.fingerprint(), "start": "2000-01-01"}))
    save_weights(pipe.model, run.best_weights)
    return run.path


# -- item 9: a forecast file with inconsistent shapes is a ForecastError, not an assert -------
def test_forecast_shape_checks_are_errors(panel):
    dates = pd.bdate_range("2020-01-02", periods=3)
    with pytest.raises(ForecastError, match="paths"):
        Forecast(pd.Timestamp(AS_OF), dates, ["SPX"], np.zeros((2, 3)), panel[["SPX"]])
    with pytest.raises(ForecastError, match="paths"):
        Forecast(pd.Timestamp(AS_OF), dates, ["SPX", "VIX"], np.zeros((2, 3, 1)), panel[["SPX"]])


def test_loading_a_tampered_forecast_is_a_forecast_error(pipe, panel, tmp_path):
    fc = pipe.predict(panel, AS_OF, n_paths=2, horizon=3, seed=0)
    fc.save(tmp_path / "fc")
    np.save(tmp_path / "fc" / "paths.npy", np.float64(1.0))  # a 0-d array
    with pytest.raises(ForecastError, match="shape"):
        Forecast.load(tmp_path / "fc")
    fc.save(tmp_path / "fc2")
    (tmp_path / "fc2" / "history.parquet").write_bytes(b"not parquet")
    with pytest.raises(ForecastError, match="history.parquet"):
        Forecast.load(tmp_path / "fc2")
    fc.save(tmp_path / "fc3")
    (tmp_path / "fc3" / "forecast.json").write_text("[1, 2]")
    with pytest.raises(ForecastError):
        Forecast.load(tmp_path / "fc3")
    doc = json.loads((tmp_path / "fc2" / "forecast.json").read_text())
    del doc["dates"]
    (tmp_path / "fc3" / "forecast.json").write_text(json.dumps(doc))
    with pytest.raises(ForecastError, match="dates"):
        Forecast.load(tmp_path / "fc3")


# -- item 8: scenario files ------------------------------------------------------------------
def _c(**entry):
    return constraint_from_dict(entry, "test")


def test_overlapping_constraints_on_one_series_are_an_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("constraints:\n  - {series: VIX, level: 40, days: 1-20}\n  - {series: VIX, level: 20, days: 10-30}\n")
    with pytest.raises(ScenarioError, match=r"VIX.*days 10-20"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="VIX"):
        Scenario("x", [_c(series="VIX", level=40, days="1-20"), _c(series="VIX", change=5, days="20-21")])
    # the same series on disjoint days, and other series on the same days, are fine
    Scenario("x", [_c(series="VIX", level=40, days="1-20"), _c(series="VIX", level=20, days="21-30"),
                   _c(series="WTI", change_pct=10, days="1-20")])


def test_repeated_key_in_a_shock_is_an_error():
    with pytest.raises(ScenarioError, match="days.*more than once"):
        parse_shock("VIX:level=40:days=1-5:days=6-9")
    with pytest.raises(ScenarioError, match="level.*more than once"):
        parse_shock("VIX:level=40:level=30:days=1-5")


@pytest.mark.parametrize("days", ["true", "false", "1.5", "null", "{a: 1}", "[1, true]", "[1, 2, 3]", "[1.5, 3]"])
def test_days_of_a_wrong_type_are_an_error(tmp_path, days):
    path = tmp_path / "s.yaml"
    path.write_text(f"constraints:\n  - {{series: VIX, level: 40, days: {days}}}\n")
    with pytest.raises(ScenarioError, match="days"):
        load_scenario(path)


def test_by_day_and_values_of_a_wrong_type_are_errors(tmp_path):
    for entry in ["{series: VIX, level: 40, by_day: true}", "{series: VIX, level: true, days: 1-2}",
                  "{series: VIX, level: .nan, days: 1-2}", "{series: VIX, level: .inf, days: 1-2}",
                  "{series: [VIX], level: 40, days: 1-2}", "{series: SPX, path: [1, true], days: 1-2}"]:
        path = tmp_path / "s.yaml"
        path.write_text(f"constraints:\n  - {entry}\n")
        with pytest.raises(ScenarioError):
            load_scenario(path)


def test_days_that_are_fine():
    assert _c(series="VIX", level=40, days=5).days == (1, 5)
    assert _c(series="VIX", level=40, days=[2, 4]).days == (2, 4)
    assert _c(series="VIX", level=40, days="2-4").days == (2, 4)


@pytest.mark.parametrize("name", ["123", "[a, b]", "'../../etc'", "'a/b'", "''", "'x' "])
def test_unsafe_or_non_string_names_are_refused(tmp_path, name):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: {name}\nconstraints:\n  - {{series: VIX, level: 40, days: 1-2}}\n")
    if name == "'x' ":
        assert load_scenario(path).name == "x"
        return
    with pytest.raises(ScenarioError, match="name"):
        load_scenario(path)


def test_safe_names_and_the_file_stem(tmp_path):
    path = tmp_path / "oil shock.yaml"
    path.write_text("constraints:\n  - {series: VIX, level: 40, days: 1-2}\n")
    assert load_scenario(path).name == "oil-shock"
    path.write_text("name: oil shock 2\nconstraints:\n  - {series: VIX, level: 40, days: 1-2}\n")
    assert load_scenario(path).name == "oil-shock-2"
    with pytest.raises(ScenarioError, match="name"):
        Scenario("../x", [])


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a0: &a0 "lol"']
    for i in range(1, 8):  # 9**7 = 4.8 million strings once expanded (the 25 MB of the issue)
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    lines.append("name: *a7")
    lines.append("constraints:\n  - {series: VIX, level: 40, days: 1-2}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="alias"):
        load_scenario(path)
    assert time.perf_counter() - t0 < 2.0


def test_oversized_scenario_file_is_refused(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"constraints": [{"series": "SPX", "path": [4000.0] * 200_000, "days": "1-200000"}]}))
    with pytest.raises(ScenarioError, match="too large"):
        load_scenario(path)


def test_directory_missing_and_unreadable_scenarios_are_errors(tmp_path):
    with pytest.raises(ScenarioError, match="not a file"):
        load_scenario(tmp_path)
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\nconstraints: []\n")
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(bad)
    locked = tmp_path / "locked.yaml"
    locked.write_text("constraints:\n  - {series: VIX, level: 40, days: 1-2}\n")
    locked.chmod(0)
    try:
        if not _readable(locked):
            with pytest.raises(ScenarioError, match="cannot read"):
                load_scenario(locked)
    finally:
        locked.chmod(0o600)


def _readable(path) -> bool:
    try:
        path.read_bytes()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("kind", ["dir", "missing"])
def test_cli_bad_scenario_path_is_one_line(tmp_path, capsys, kind):
    target = tmp_path if kind == "dir" else tmp_path / "nope.yaml"
    code = main(["forecast", "--run", str(tmp_path / "run"), "--as-of", AS_OF, "--out", str(tmp_path / "fc"),
                 "--scenario", str(target), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
