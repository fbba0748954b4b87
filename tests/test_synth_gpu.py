"""Synthesis on a real GPU: training and generation on cuda, same seed same rows, the dashboard's jobs there.

Marked ``gpu`` and skipped where no GPU passes ``probe_cuda`` (CI, the CPU development
machine). Run on a GPU machine with ``python -m pytest -m gpu tests/test_synth_gpu.py``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from forecaster.cli import main
from forecaster.core.device import cuda_count, probe_cuda
from forecaster.synthesis.documents import read_table
from forecaster.synthesis.generate import Synthesizer

USABLE = cuda_count() > 0 and probe_cuda(0) is None
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not USABLE, reason="no usable CUDA GPU here")]


@pytest.fixture(scope="module")
def run_dir(tabformer_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthgpu") / "run"
    table = tmp_path_factory.mktemp("synthgpu-data") / "train.parquet"
    read_table(tabformer_csv).iloc[:3000].to_parquet(table, index=False)
    assert main(["synth", "train", "--data", str(table), "--out", str(out), "--preset", "day-tiny", "--max-steps", "5",
                 "--eval-every", "5", "--device", "cuda:0", "--no-progress"]) == 0
    return out


def test_generation_on_the_gpu_same_seed_same_rows(run_dir):
    synth = Synthesizer(run_dir, which="last", device="cuda")
    a, stats = synth.generate(200, rows_per_history=50, seed=3, batch_paths=2, conditions={"is_fraud": False})
    b, _ = Synthesizer(run_dir, which="last", device="cuda:0").generate(200, rows_per_history=50, seed=3, batch_paths=2,
                                                                       conditions={"is_fraud": False})
    assert next(synth.model.parameters()).device.type == "cuda" and stats.device.startswith("cuda")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 200 and stats.out_of_order_rows == 0 and stats.blocks == 2 and not a["is_fraud"].any()
    for _, h in a.groupby("user", sort=False):
        assert (h["timestamp"].diff().dropna() >= pd.Timedelta(0)).all() and h["card"].nunique() == 1


def test_cli_generate_on_the_gpu(run_dir, tmp_path, capsys):
    out = tmp_path / "rows.parquet"
    assert main(["synth", "generate", "--run", str(run_dir), "--rows", "100", "--rows-per-history", "50",
                 "--weights", "last", "--device", "auto", "--out", str(out), "--no-progress"]) == 0
    assert "rows/s on cuda:0" in capsys.readouterr().err
    assert len(pd.read_parquet(out)) == 100


def test_dashboard_job_samples_on_the_gpu(run_dir):
    from dashboard.jobs import JobRunner, generate_rows, synthesizer_for

    runner = JobRunner(device="cuda")

    def work(progress):
        assert len(generate_rows(run_dir, 20, seed=0, progress=progress)) == 20
        return str(next(synthesizer_for(run_dir).model.parameters()).device)

    st = runner.wait(runner.submit("gpu", 20, work), timeout=120)
    assert st["state"] == "done" and st["result"].startswith("cuda"), st
