"""One owner of a run folder (RunDir, PanelRun), one training function (train_panel_run), one forecast folder writer.

Real data from ../shared/data; the tiny preset and a few steps; the scenario job's
sampler is replaced by one that returns a hand-made forecast, so saving is real.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data_sources.panel import PanelBuilder
from foundation.atomic import MARKER, OutputError
from forecaster.cli import main
from forecaster.core.run import RunDir
from forecaster.core.training.checkpoint import CheckpointError
from forecaster.core.training.config import TrainConfig
from forecaster.market.export import FORMATS, save_forecast_dir
from forecaster.market.run import PanelRun, PanelSpec
from forecaster.market.train import TrainInputError, train_panel_run
from tests.test_dashboard_figures import make_forecast

REPO = Path(__file__).resolve().parents[1]


def _run_json(folder: Path, info: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(info))
    return folder


# -- PanelRun: the run's panel, one place with the defaults -------------------------------------------

def test_panel_builder_defaults_equal_what_the_callers_built(tmp_path, shared_mapping):
    info = {"data": str(shared_mapping), "series": ["SPX", "VIX"], "start": "2012-01-01", "as_of": "2017-12-29",
            "last_date": "2017-12-29"}
    run = PanelRun(_run_json(tmp_path / "run", info))
    built = run.panel_builder()
    # what forecast_cmd, the dashboard and the backtest runner each built by hand before
    by_hand = PanelBuilder(info["data"], series=info["series"], start=info.get("start", "1990-01-01"))
    assert (built.source.name, built.series, built.start) == (by_hand.source.name, by_hand.series, by_hand.start)
    pd.testing.assert_frame_equal(built.build("2018-06-29"), by_hand.build("2018-06-29"))
    assert (run.data, run.series, run.start, run.as_of) == (str(shared_mapping), ["SPX", "VIX"], "2012-01-01", "2017-12-29")
    assert run.trained_until == pd.Timestamp("2017-12-29")

    other = run.panel_builder("embedded")  # another source, the run's series and start
    assert other.source.name == PanelBuilder("embedded").source.name and other.series == ["SPX", "VIX"]
    override = run.panel_builder(series=["SPX"], start="2015-01-01")  # the backtest's own settings
    assert override.series == ["SPX"] and override.start == pd.Timestamp("2015-01-01")


def test_a_run_json_that_says_nothing_gets_the_old_defaults(tmp_path):
    run = PanelRun(_run_json(tmp_path / "bare", {}))
    assert PanelSpec.of_run(run.info) == PanelSpec.of_run(None) == PanelSpec("embedded", None, "1990-01-01")
    assert (run.data, run.series, run.start, run.as_of, run.trained_until) == ("embedded", None, "1990-01-01", None, None)
    built = run.panel_builder()
    assert built.series == PanelBuilder("embedded").series and built.start == pd.Timestamp("1990-01-01")


def test_loading_a_folder_that_is_not_a_run_is_a_checkpoint_error(tmp_path):
    from forecaster.market.pipeline import ForecastPipeline

    with pytest.raises(CheckpointError, match="not a trained run"):
        ForecastPipeline.from_run(_run_json(tmp_path / "half", {"series": ["SPX"]}))
    with pytest.raises(CheckpointError, match="missing"):
        RunDir(tmp_path / "nothing").info


def test_the_generic_core_does_not_import_the_market_domain():
    code = ("import sys, forecaster.core.run, forecaster.core.training.engine\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('forecaster.market', 'forecaster.synthesis')))\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


# -- train_panel_run: the one training function ---------------------------------------------------------

def test_train_panel_run_refuses_an_unseen_series_by_name_before_writing(tmp_path, shared_mapping):
    cfg = TrainConfig.from_preset("tiny", max_steps=2)
    with pytest.raises(TrainInputError) as exc:
        train_panel_run(str(shared_mapping), tmp_path / "named", cfg, as_of="2016-01-29", start="2013-01-01",
                        series=["SPX", "XLRE"], progress=False)
    assert exc.value.param == "series" and str(exc.value).startswith("series: XLRE (first value 2015-10")
    assert "--" not in str(exc.value), "a library error names the parameter, not a CLI flag"
    assert exc.value.message_for("--series").startswith("--series: XLRE (first value 2015-10")
    assert not RunDir(tmp_path / "named").tokenizer.exists()


def test_train_panel_run_writes_the_run_json_the_cli_wrote(tmp_path, shared_mapping):
    notes: list[str] = []
    cfg = TrainConfig.from_preset("tiny", max_steps=2)
    res = train_panel_run(str(shared_mapping), tmp_path / "lib", cfg, as_of="2016-01-29", start="2013-01-01",
                          progress=False, log=notes.append)
    assert res.step == 2
    assert any(n.startswith("left out XLRE (first value 2015-10") for n in notes), notes
    assert main(["train", "--data", str(shared_mapping), "--panel-start", "2013-01-01", "--as-of", "2016-01-29",
                 "--preset", "tiny", "--max-steps", "2", "--no-progress", "--out", str(tmp_path / "cli")]) == 0
    lib, cli = RunDir(tmp_path / "lib"), RunDir(tmp_path / "cli")
    keys = ("data", "source", "as_of", "start", "series", "first_date", "last_date", "val_start",
            "tokenizer_fingerprint", "train_range", "val_range")
    assert {k: lib.info[k] for k in keys} == {k: cli.info[k] for k in keys}
    assert lib.info["data"] == str(shared_mapping.resolve()) and "XLRE" not in lib.info["series"]
    assert lib.load_tokenizer().fingerprint() == cli.load_tokenizer().fingerprint()
    assert lib.load_model().config == cli.load_model().config


def test_train_transactions_is_gone_synth_train_remains(tmp_path, capsys):
    assert main(["train", "--transactions", "cards.csv", "--out", str(tmp_path / "cc")]) == 2
    assert "--transactions" in capsys.readouterr().err
    assert not (tmp_path / "cc").exists()
    assert main(["synth", "train", "--help"]) == 0


def test_a_synthesis_run_loads_through_run_dir(tmp_path, shared_data):
    from forecaster.synthesis.documents import read_table
    from forecaster.synthesis.generate import Synthesizer
    from forecaster.synthesis.train import train_synthesizer

    table = read_table(shared_data / "tabformer" / "User0_credit_card_transactions.csv")
    out = tmp_path / "cc"
    train_synthesizer(table, out, "tiny", max_steps=2, eval_every=1, progress=False)
    run = RunDir(out)
    tok = run.load_tokenizer()
    assert run.load_model(fingerprint=tok.fingerprint()).config.row_len == tok.tokens_per_row
    assert Synthesizer(out).tok.fingerprint() == tok.fingerprint()
    run.run_info.write_text(json.dumps({**run.info, "tokenizer_fingerprint": "0" * 64}))
    with pytest.raises(CheckpointError, match="another tokenizer"):
        run.load_tokenizer()


# -- save_forecast_dir: the one forecast folder ---------------------------------------------------------

def _expected_files(fc, tmp_path: Path) -> set[str]:
    """What `forecaster forecast` wrote by hand before: the forecast, every export, summary, regimes, the marker."""
    fc.save(tmp_path / "plain")
    names = {p.name for p in (tmp_path / "plain").iterdir()}
    for fmt in FORMATS:
        stem = "quantiles" if fmt == "quantiles" else f"paths_{fmt}"
        names |= {f"{stem}.parquet", f"{stem}.csv", f"{stem}.csv.meta.json"}
    return names | {"summary.csv", "regimes.csv", MARKER}


def test_save_forecast_dir_writes_the_cli_folder_and_replaces_only_a_forecast(tmp_path):
    fc = make_forecast(n_paths=8, horizon=30, seed=2)
    out = save_forecast_dir(fc, tmp_path / "fc")
    assert {p.name for p in out.iterdir()} == _expected_files(fc, tmp_path)
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == len(fc.summary_table())
    save_forecast_dir(make_forecast(n_paths=8, horizon=30, seed=3), out)  # a previous forecast: replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging or backup folders left behind"

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="my option"):
        save_forecast_dir(fc, foreign, option="my option")
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]


def test_the_dashboard_scenario_job_writes_the_full_folder(tmp_path, monkeypatch):
    from dashboard import data, jobs

    runs = tmp_path / "runs"
    run = _run_json(runs / "alpha", {"data": "embedded", "series": ["SPX", "VIX", "WTI", "CORE_CPI_YOY"]})
    make_forecast(seed=1).save(run / "forecasts" / "base")
    built = []

    class FakePipe:
        def predict(self, builder, as_of, **kw):
            built.append(builder)
            fc = make_forecast(seed=5)
            fc.meta["scenario"] = {"name": kw["scenario"].name, "constraints": []}
            return fc

    monkeypatch.setattr(jobs, "pipeline_for", lambda run_dir: FakePipe())
    monkeypatch.setattr(data, "builder_for_run", lambda run_dir: ("builder of", Path(run_dir).name))
    name = jobs.run_scenario(runs, "alpha", "base", [{"series": "VIX", "level": 40.0, "days": "1-5"}], "stress", 4, 0,
                             lambda done: None)
    out = run / "scenarios" / name
    assert {p.name for p in out.iterdir()} == _expected_files(make_forecast(seed=5), tmp_path)
    assert built == [("builder of", "alpha")]  # the run's own panel (PanelRun.panel_builder)
    assert data.load_forecast(runs, "alpha", name, kind="scenarios").meta["base_forecast"] == "base"


def test_the_dashboard_builds_the_run_panel_through_panel_run(tmp_path):
    from dashboard import data

    run = _run_json(tmp_path / "alpha", {"data": "embedded", "series": ["SPX", "VIX"], "start": "2000-01-01"})
    builder = data.builder_for_run(run)
    assert builder is data.builder_for_run(run)  # cached
    assert builder.series == ["SPX", "VIX"] and builder.start == pd.Timestamp("2000-01-01")
    panel = data.panel_for_run(RunDir(run).info, "2010-12-31")
    pd.testing.assert_frame_equal(panel, PanelRun(run).panel_builder().build("2010-12-31"))
