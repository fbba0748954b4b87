"""``--device`` for synthesis (train, generate) and the dashboard's jobs, on the CPU.

Where a GPU is refused, the refusal is one line and exit code 2 before any data or
model is read (the run and data paths below do not even exist). The sampling tests run
the real synthesizer on a tiny run trained here; tests/test_synth_gpu.py runs it on a GPU.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dashboard.jobs import JobRunner, generate_rows, job_device, synthesizer_for
from forecaster.cli import main
from forecaster.core.device import Device, DeviceError, cuda_count, probe_cuda
from forecaster.synthesis.documents import read_table
from forecaster.synthesis.generate import Synthesizer
from forecaster.synthesis.train import on_device, train_synthesizer

GPU = cuda_count() > 0 and probe_cuda(0) is None


@pytest.fixture(scope="module")
def run_dir(tabformer_csv, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("synthdev") / "run"
    train_synthesizer(read_table(tabformer_csv).iloc[:2000], run, "day-tiny", max_steps=3, eval_every=3,
                      progress=False, device="cpu" if not GPU else None)
    return run


@pytest.mark.parametrize("spec, message", [("cuda:99", "GPU"), ("gpu", "is not a device"), ("cuda:x", "is not a device")])
def test_synth_commands_refuse_an_unusable_device_in_one_line_before_reading(spec, message, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    commands = (["synth", "train", "--data", str(missing / "train.csv"), "--out", str(tmp_path / "run")],
                ["synth", "generate", "--run", str(missing), "--rows", "10", "--out", str(tmp_path / "out.csv")])
    for command in commands:
        assert main([*command, "--device", spec, "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --device ") and spec in err and message in err and len(err.splitlines()) == 1, err
    assert not list(tmp_path.iterdir())  # no run folder, no output


def test_generate_on_the_cpu_records_the_device(run_dir, tmp_path, capsys):
    out = tmp_path / "rows.csv"
    assert main(["synth", "generate", "--run", str(run_dir), "--rows", "40", "--rows-per-history", "20",
                 "--weights", "last", "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
    assert "rows/s on cpu;" in capsys.readouterr().err
    assert len(read_table(out)) == 40


def test_device_spec_resolution_and_same_seed_same_rows(run_dir):
    with pytest.raises(DeviceError, match="is not a device"):
        Synthesizer(run_dir, which="last", device="tpu")
    lazy = Synthesizer(run_dir, which="last", device="cuda:99")  # resolved on first sampling, not before
    with pytest.raises(DeviceError, match="cuda:99"):
        lazy.generate(10, seed=1)
    a, sa = Synthesizer(run_dir, which="last", device="cpu").generate(60, rows_per_history=30, seed=3)
    b, _ = Synthesizer(run_dir, which="last", device=torch.device("cpu")).generate(60, rows_per_history=30, seed=3)
    c, _ = Synthesizer(run_dir, which="last", device="cpu").generate(60, rows_per_history=30, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)  # the test can fail: another seed, other rows
    assert sa.device == "cpu" and sa.blocks == 1
    auto = Synthesizer(run_dir, which="last", device="auto")
    assert auto.device.type == ("cuda" if GPU else "cpu")
    assert next(auto.model.parameters()).device.type == auto.device.type


def test_bf16_autocast_generation_runs_on_the_cpu(run_dir):
    """The path a bf16 GPU takes (autocast around sampling, float64 draws), with the CPU's autocast."""
    dev = Device(torch.device("cpu"), True, "test: CPU autocast")
    a, stats = Synthesizer(run_dir, which="last", device=dev).generate(40, rows_per_history=20, seed=2,
                                                                       conditions={"is_fraud": False})
    b, _ = Synthesizer(run_dir, which="last", device=dev).generate(40, rows_per_history=20, seed=2,
                                                                   conditions={"is_fraud": False})
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 40 and stats.out_of_order_rows == 0 and not a["is_fraud"].any()
    assert np.isfinite(a["amount"].to_numpy(dtype=float)).all()


@pytest.mark.skipif(GPU, reason="on a GPU machine the CPU cannot be chosen for training (the engine takes the GPU)")
def test_training_device_on_a_machine_without_gpu():
    assert on_device("cpu") is not None and on_device("auto") is not None and on_device(None) is not None
    with pytest.raises(DeviceError, match="no usable GPU"):
        on_device("cuda")


# -- the dashboard's jobs ----------------------------------------------------------------------------
def test_dashboard_jobs_sample_on_their_runners_device(run_dir):
    assert job_device() is None  # outside a job: the CPU
    runner = JobRunner(device="cpu")
    seen = {}

    def work(progress):
        seen["device"] = job_device()
        synth = synthesizer_for(run_dir)
        seen["model"] = next(synth.model.parameters()).device.type
        table = generate_rows(run_dir, 25, seed=1, progress=progress)
        seen["rows"] = len(table)
        return str(synth.device)

    st = runner.wait(runner.submit("synth", 25, work), timeout=60)
    assert st["state"] == "done" and st["result"] == "cpu", st
    assert seen == {"device": "cpu", "model": "cpu", "rows": 25}
    assert job_device() is None  # the job's device stayed in its thread


def test_a_dashboard_job_on_an_unusable_device_fails_in_one_line(run_dir):
    runner = JobRunner(device="cuda:99")
    st = runner.wait(runner.submit("synth", 10, lambda progress: str(len(generate_rows(run_dir, 10, 0)))), timeout=60)
    assert st["state"] == "error" and st["message"].startswith("DeviceError: --device cuda:99")
    assert len(st["message"].splitlines()) == 1


@pytest.mark.parametrize("spec", ["cuda:99", "tpu"])
def test_dashboard_refuses_an_unusable_device_before_serving(spec, tmp_path, capsys):
    assert main(["dashboard", "--runs", str(tmp_path), "--port", "1", "--device", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --device ") and spec in err[-1] and len([e for e in err if e.startswith("error")]) == 1, err


@pytest.fixture(scope="module")
def market_runs(tmp_path_factory) -> Path:
    """A runs folder with a tiny market run (a few steps on the embedded data) and one base forecast."""
    root = tmp_path_factory.mktemp("jobruns")
    run = root / "tiny"
    assert main(["train", "--data", "embedded", "--as-of", "2017-12-29", "--out", str(run), "--preset", "tiny",
                 "--max-steps", "3", "--no-progress"]) == 0
    assert main(["forecast", "--run", str(run), "--as-of", "2018-12-31", "--paths", "4", "--horizon", "5",
                 "--out", str(run / "forecasts" / "base"), "--device", "cpu", "--no-progress"]) == 0
    return root


def test_a_scenario_job_samples_on_the_runners_device(market_runs):
    import json

    from dashboard.jobs import run_scenario

    constraints = [{"series": "VIX", "level": 40.0, "days": "1-3"}]
    ok = JobRunner(device="cpu")
    st = ok.wait(ok.submit("scenario", 5, lambda progress: run_scenario(market_runs, "tiny", "base", constraints,
                                                                        "vix40", 4, 0, progress)), timeout=120)
    assert st["state"] == "done" and st["result"] == "vix40", st
    meta = json.loads((market_runs / "tiny" / "scenarios" / "vix40" / "forecast.json").read_text())["meta"]
    assert meta["device"] == "cpu" and meta["precision"] == "fp32"
    bad = JobRunner(device="cuda:99")
    st = bad.wait(bad.submit("scenario", 5, lambda progress: run_scenario(market_runs, "tiny", "base", constraints,
                                                                          "gpu", 4, 0, progress)), timeout=120)
    assert st["state"] == "error" and st["message"].startswith("DeviceError: --device cuda:99"), st
    assert not (market_runs / "tiny" / "scenarios" / "gpu").exists()


def test_a_dashboard_scenario_samples_as_its_base_forecast_unless_told_otherwise(market_runs):
    import json

    from dashboard.jobs import run_scenario
    from forecaster.core.sampler import SamplingConfig

    run = market_runs / "tiny"
    assert main(["forecast", "--run", str(run), "--as-of", "2018-12-31", "--paths", "4", "--horizon", "5",
                 "--temperature", "0.7", "--top-k", "5", "--out", str(run / "forecasts" / "cool"), "--device", "cpu",
                 "--no-progress"]) == 0
    constraints = [{"series": "VIX", "level": 40.0, "days": "1-3"}]

    def sampled(name, sampling=None):
        run_scenario(market_runs, "tiny", "cool", constraints, name, 4, 0, lambda d: None, sampling)
        return json.loads((run / "scenarios" / name / "forecast.json").read_text())["meta"]["sampling"]

    assert sampled("as-base") == {"temperature": 0.7, "top_k": 5, "top_p": None}
    assert sampled("told", SamplingConfig(1.2)) == {"temperature": 1.2, "top_k": None, "top_p": None}
