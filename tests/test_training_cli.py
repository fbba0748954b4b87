"""`forecaster train` end to end on the real panel: errors, Ctrl-C and resume, as a user runs it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forecaster.cli import main
from forecaster.core.run import RunDir, load_tokenizer
from forecaster.core.training.metrics import read_metrics

REPO = Path(__file__).resolve().parents[1]


def test_bad_options_are_one_line_errors(tmp_path, shared_mapping, capsys):
    base = ["train", "--data", str(shared_mapping), "--out", str(tmp_path / "run")]
    assert main(base + ["--preset", "huge"]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert main(base + ["--preset", "tiny", "--zero-stage", "5"]) == 2
    assert "zero_stage" in capsys.readouterr().err
    assert main(base + ["--preset", "tiny", "--val-start", "2031-01-01"]) == 2
    assert "no validation window" in capsys.readouterr().err


def _cmd(mapping: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "forecaster", "train", "--data", str(mapping), "--out", str(out), "--preset", "tiny",
            "--max-steps", "40", "--eval-every", "20", "--log-every", "1", "--no-progress"]


@pytest.mark.slow
def test_ctrl_c_then_rerun_ends_like_an_uninterrupted_run(tmp_path, shared_mapping):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_cmd(shared_mapping, cut), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not read_metrics(cut) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "rerun the same command to resume" in err
    latest = RunDir(cut).latest()
    assert latest["finished"] is False and 1 <= latest["step"] < 40

    resumed = subprocess.run(_cmd(shared_mapping, cut), cwd=REPO, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = subprocess.run(_cmd(shared_mapping, tmp_path / "full"), cwd=REPO, env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-2000:]

    def final(run: Path) -> dict:
        return json.loads((run / "checkpoint" / RunDir(run).latest()["dir"] / "state.json").read_text())

    a, b = final(cut), final(tmp_path / "full")
    assert a["step"] == b["step"] == 40
    assert a["files"]["model.safetensors"] == b["files"]["model.safetensors"], "resumed weights differ"
    assert a["val_loss"] == b["val_loss"]


def test_a_series_unseen_before_the_validation_start_is_left_out(tmp_path, shared_mapping, capsys):
    # XLRE starts in October 2015: as of January 2016 all of it lies in the validation period
    base = ["train", "--data", str(shared_mapping), "--panel-start", "2013-01-01", "--as-of", "2016-01-29",
            "--preset", "tiny", "--max-steps", "2", "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "left out XLRE (first value 2015-10" in err
    series = json.loads((tmp_path / "run" / "run.json").read_text())["series"]
    assert "XLRE" not in series and "SPX" in series and "XLK" in series
    assert load_tokenizer(tmp_path / "run").columns == series
    # asked for by name, it is an error instead
    assert main(base + ["--out", str(tmp_path / "named"), "--series", "SPX,XLRE"]) == 2
    assert "--series: XLRE (first value 2015-10" in capsys.readouterr().err
