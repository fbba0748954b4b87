"""Issue 12: `--out` never destroys what the command did not write; files follow the umask; killed runs leave
nothing behind; the remaining tracebacks are one line and a non-zero exit code.

A tiny run (2 series, 10 steps) is trained once for the module; forecasts are a handful of paths and days.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from foundation.atomic import MARKER, OutputError, atomic_path, check_out_dir, clean_stale, output_kind, publish_dir
from forecaster.cli import main

SERIES = "SPX,VIX"
AS_OF = "2018-12-31"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_mapping):
    out = tmp_path_factory.mktemp("run") / "tiny"
    code = main(["train", "--data", str(shared_mapping), "--series", SERIES, "--panel-start", "2012-01-01", "--as-of",
                 "2017-12-29", "--out", str(out), "--preset", "tiny", "--max-steps", "10", "--no-progress"])
    assert code == 0
    return out


def _forecast(run_dir: Path, out: Path, *extra: str) -> int:
    return main(["forecast", "--run", str(run_dir), "--as-of", AS_OF, "--paths", "4", "--horizon", "5",
                 "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def fc_dir(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fc") / "base"
    assert _forecast(run_dir, out) == 0
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def no_model(monkeypatch):
    """Loading a run or a synthesizer fails the test: the --out check must come before any expensive work."""
    from forecaster.market.pipeline import ForecastPipeline

    def boom(*a, **k):
        raise AssertionError("the expensive work started before --out was checked")

    monkeypatch.setattr(ForecastPipeline, "from_run", classmethod(boom))
    import forecaster.market.backtest.runner as runner
    import forecaster.synthesis.documents as documents

    monkeypatch.setattr(runner.Backtest, "__init__", boom)
    monkeypatch.setattr(documents, "read_table", boom)
    return boom


# -- item 1: --out never destroys what the command did not write ----------------------------------

def test_forecast_out_pointing_at_the_run_is_refused_and_the_run_kept(run_dir, capsys, no_model):
    before = _snapshot(run_dir)
    assert _forecast(run_dir, run_dir) != 0
    line = _one_error_line(capsys)
    assert "not a forecast" in line and "choose another" in line
    assert _snapshot(run_dir) == before


def test_forecast_out_pointing_at_a_user_folder_file_or_fifo_is_refused(run_dir, tmp_path, capsys, no_model):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.txt").write_text("years of work")
    assert _forecast(run_dir, home) != 0
    assert "not a forecast" in _one_error_line(capsys)
    assert (home / "thesis.txt").read_text() == "years of work"

    report = tmp_path / "report.txt"
    report.write_text("keep me")
    assert _forecast(run_dir, report) != 0
    assert "file" in _one_error_line(capsys)
    assert report.read_text() == "keep me"

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # stands in for /dev/null: a special file must never be replaced
    assert _forecast(run_dir, fifo) != 0
    assert "device or special file" in _one_error_line(capsys)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "pipe", "report.txt"]  # no staging left


def test_forecast_replaces_its_previous_output_and_an_empty_folder(run_dir, tmp_path, capsys):
    out = tmp_path / "fc"
    out.mkdir()
    assert _forecast(run_dir, out) == 0
    assert output_kind(out) == "forecast"
    (out / "stale.csv").write_text("from the first forecast")
    assert _forecast(run_dir, out, "--seed", "3") == 0
    assert not (out / "stale.csv").exists() and (out / "forecast.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc"]


def test_forecast_folder_from_before_the_marker_is_replaced(run_dir, fc_dir, tmp_path):
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(fc_dir, legacy)
    (legacy / MARKER).unlink()
    assert _forecast(run_dir, legacy) == 0
    assert output_kind(legacy) == "forecast"


def test_backtest_out_pointing_at_the_run_is_refused_before_any_work(run_dir, capsys, no_model):
    before = _snapshot(run_dir)
    assert main(["backtest", "--run", str(run_dir), "--out", str(run_dir), "--first-origin", "2018-01-02",
                 "--last-origin", "2018-01-31", "--paths", "4", "--horizon", "5", "--baselines", "random_walk", "--no-progress"]) != 0
    assert "not a backtest" in _one_error_line(capsys)
    assert _snapshot(run_dir) == before


def test_backtest_folder_from_before_the_marker_is_accepted(tmp_path):
    from forecaster.market.backtest.runner import BACKTEST_KIND, claim_backtest_dir

    legacy = tmp_path / "bt"
    (legacy / "origins").mkdir(parents=True)
    (legacy / "backtest.json").write_text(json.dumps({"format": "forecaster-backtest", "version": 1, "config": {}}))
    assert claim_backtest_dir(legacy) == legacy and output_kind(legacy) == BACKTEST_KIND
    other = tmp_path / "other"
    other.mkdir()
    (other / "backtest.json").write_text("{}")  # not a backtest's settings file
    with pytest.raises(OutputError, match="not a backtest"):
        claim_backtest_dir(other)


def test_synth_evaluate_and_generate_refuse_a_foreign_out(tmp_path, capsys, no_model):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.md").write_text("mine")
    assert main(["synth", "evaluate", "--real", "r.csv", "--synthetic", "s.csv", "--out", str(home)]) != 0
    assert "not a synth-evaluation" in _one_error_line(capsys)
    folder = tmp_path / "rows.csv"
    folder.mkdir()
    assert main(["synth", "generate", "--run", str(tmp_path / "nope"), "--rows", "3", "--out", str(folder)]) != 0
    assert "existing folder" in _one_error_line(capsys)
    assert (home / "notes.md").read_text() == "mine" and folder.is_dir()


def test_synth_evaluate_publishes_the_folder_and_replaces_only_an_evaluation(shared_data, tmp_path, run_dir):
    from forecaster.synthesis.documents import read_table, split_by_card, write_table

    table = read_table(shared_data / "tabformer" / "User0_credit_card_transactions.csv").iloc[:400]
    train, holdout = split_by_card(table, 0.8)
    write_table(train, tmp_path / "train.parquet")
    write_table(holdout, tmp_path / "holdout.parquet")
    out = tmp_path / "eval"
    argv = ["synth", "evaluate", "--real", str(tmp_path / "holdout.parquet"), "--synthetic",
            str(tmp_path / "train.parquet"), "--dcr-rows", "50", "--run", str(run_dir), "--out", str(out)]
    assert main(argv) == 0
    assert output_kind(out) == "synth-evaluation"
    assert json.loads((out / "report.json").read_text())["inputs"]["run"] == str(run_dir.resolve())
    (out / "old.txt").write_text("from the first evaluation")
    assert main(argv) == 0  # a previous evaluation is replaced whole
    assert not (out / "old.txt").exists() and (out / "summary.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_data_export_and_export_refuse_a_folder_as_out(fc_dir, tmp_path, capsys, monkeypatch):
    import forecaster.cli.data_cmd as data_cmd

    folder = tmp_path / "panel.csv"
    folder.mkdir()
    monkeypatch.setattr(data_cmd, "build", lambda *a, **k: (_ for _ in ()).throw(AssertionError("panel built")))
    assert main(["data", "export", "--out", str(folder)]) != 0
    assert "existing folder" in _one_error_line(capsys)
    assert main(["export", "--forecast", str(fc_dir), "--out", str(folder)]) != 0
    assert "existing folder" in _one_error_line(capsys)
    for argv in (["data", "export"], ["export", "--forecast", str(fc_dir)]):  # a folder without a file suffix
        assert main([*argv, "--out", str(tmp_path)]) != 0
        assert "existing folder; give a file name" in _one_error_line(capsys)
    assert folder.is_dir() and not any(folder.iterdir())


def test_export_replaces_an_existing_file(fc_dir, tmp_path):
    out = tmp_path / "paths.csv"
    out.write_text("old")
    assert main(["export", "--forecast", str(fc_dir), "--format", "wide", "--out", str(out)]) == 0
    assert out.read_text().startswith("path_id,date,")


# -- item 11: files follow the umask --------------------------------------------------------------

def test_forecast_folder_and_exports_follow_the_umask(fc_dir, tmp_path):
    from foundation.atomic import DIR_MODE, FILE_MODE

    assert stat.S_IMODE(fc_dir.stat().st_mode) == DIR_MODE
    for p in fc_dir.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == FILE_MODE, p
    out = tmp_path / "q.parquet"
    assert main(["export", "--forecast", str(fc_dir), "--format", "quantiles", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == FILE_MODE


# -- item 12: what a killed run left is cleaned up by the next one ---------------------------------

def test_staging_left_by_a_killed_forecast_is_removed_by_the_next(run_dir, tmp_path):
    out = tmp_path / "fc"
    pid = _dead_pid()
    stale = tmp_path / f".fc.staging-{pid}-abc123"
    stale.mkdir()
    (stale / "paths.npy").write_bytes(b"half")
    assert _forecast(run_dir, out) == 0
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["fc"]


def test_backup_of_a_forecast_killed_between_the_two_renames_comes_back(tmp_path):
    out = tmp_path / "fc"
    backup = tmp_path / f".fc.old-{_dead_pid()}-abc123"
    backup.mkdir()
    (backup / "forecast.json").write_text("{}")  # a previous output without a marker is restored too
    assert clean_stale(out) == [backup]
    assert (out / "forecast.json").exists()


def test_temporary_file_left_by_a_killed_write_is_removed_by_the_next(tmp_path):
    target = tmp_path / "panel.parquet"
    stale = tmp_path / f".panel.parquet.tmp-{_dead_pid()}-abc123.tmp"
    stale.write_bytes(b"half")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.parquet"]


def test_sigterm_during_a_forecast_removes_the_staging_folder(run_dir, tmp_path):
    out = tmp_path / "fc"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    entry = "import sys; from forecaster.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", entry, "forecast", "--run", str(run_dir), "--as-of",
                             AS_OF, "--paths", "2000", "--horizon", "2000", "--out", str(out), "--no-progress"],
                            env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # loaded and sampling (2000 x 2000 takes minutes); the folder is staged only when saving
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "terminated" in err
    assert list(tmp_path.iterdir()) == []


def test_publish_dir_refuses_a_symlink_and_keeps_a_foreign_folder(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "a").write_text("a")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(OutputError, match="symbolic link"):
        check_out_dir(link, "forecast")
    with pytest.raises(OutputError, match="not a forecast output"):
        with publish_dir(real, "forecast"):
            raise AssertionError("never reached")
    assert (real / "a").read_text() == "a"


def test_unwritable_parent_is_one_line(tmp_path):
    parent = tmp_path / "file"
    parent.write_text("x")
    with pytest.raises(OutputError):
        with publish_dir(parent / "out", "forecast"):
            pass
    with pytest.raises(OutputError):
        with atomic_path(parent / "out.csv"):
            pass


# -- item 9: the remaining tracebacks -------------------------------------------------------------

def test_horizon_has_a_documented_upper_bound(run_dir, tmp_path, capsys, no_model):
    assert _forecast(run_dir, tmp_path / "fc", "--horizon", "2521") != 0
    assert "2520" in _one_error_line(capsys)
    t0 = time.perf_counter()
    assert main(["backtest", "--run", str(run_dir), "--out", str(tmp_path / "bt"), "--first-origin", "2018-01-02",
                 "--last-origin", "2018-01-31", "--paths", "4", "--horizon", "100000", "--no-progress"]) != 0
    assert "2520" in _one_error_line(capsys) and time.perf_counter() - t0 < 5
    assert not (tmp_path / "bt").exists() and not (tmp_path / "fc").exists()
    for command in ("forecast", "backtest"):
        assert main([command, "--help"]) == 0
        assert "2520" in capsys.readouterr().out


def test_backtest_where_every_model_failed_is_one_line(tmp_path):
    from forecaster.market.backtest.runner import load_scores
    from forecaster.market.backtest.windows import BacktestError
    from data_sources.store import write_parquet
    import pandas as pd

    origins = tmp_path / "origins"
    origins.mkdir()
    scores = pd.DataFrame({"origin": pd.Series([], dtype="datetime64[ns]")})
    write_parquet(scores, origins / "2018-01-31.parquet",
                  {"origin": "2018-01-31", "errors": {"gpt": "OutOfBoundsDatetime: 2408-04-14"}, "seconds": {}})
    with pytest.raises(BacktestError, match="no model produced a forecast.*OutOfBoundsDatetime"):
        load_scores(tmp_path)


def test_export_of_a_forecast_with_a_missing_file_is_one_line(fc_dir, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(fc_dir, broken)
    (broken / "history.parquet").unlink()
    assert main(["export", "--forecast", str(broken), "--out", str(tmp_path / "x.csv")]) != 0
    assert "history.parquet" in _one_error_line(capsys)
    assert not (tmp_path / "x.csv").exists()


def test_forecast_prints_the_pipeline_warnings(run_dir, tmp_path, capsys, monkeypatch):
    from forecaster.market.pipeline import ForecastPipeline

    predict = ForecastPipeline.predict

    def with_warning(self, *a, **k):
        fc = predict(self, *a, **k)
        fc.meta["warnings"] = ["3 values of VIX clamped to the tokenizer's range"]
        return fc

    monkeypatch.setattr(ForecastPipeline, "predict", with_warning)
    assert _forecast(run_dir, tmp_path / "fc") == 0
    assert "warning: 3 values of VIX clamped to the tokenizer's range" in capsys.readouterr().err
