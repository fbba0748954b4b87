"""DeepSpeed on the CPU (gloo): same losses as plain torch, resume, and a real 2-process ZeRO-2 run.

Marked slow: the first DeepSpeed use on a machine compiles a small comm extension
(~30-100 s, cached in TORCH_EXTENSIONS_DIR); afterwards the whole file takes well
under a minute. CI runs it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from forecaster.core.run import RunDir
from forecaster.core.training.config import TrainConfig, model_config_for
from forecaster.core.training.distributed import free_port
from forecaster.core.training.engine import train
from forecaster.core.training.metrics import read_metrics
from forecaster.core.training.windows import make_datasets
from tests.test_training import ROW, VOCAB, synthetic_table

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def one_process_group(monkeypatch):
    """Environment of a one-process DeepSpeed group on a fresh port (restored afterwards)."""
    for k, v in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(k, v)


def _setup(**overrides):
    cfg = TrainConfig.from_preset("tiny", **{"max_steps": 20, "eval_every": 10, "checkpoint_every": 5,
                                             "log_every": 1, **overrides})
    train_ds, val_ds, _ = make_datasets([synthetic_table()], cfg.context_rows, cfg.val_fraction)
    return model_config_for("tiny", VOCAB, ROW, cfg.context_rows), cfg, train_ds, val_ds


def _losses(run_dir: Path, split: str = "train") -> list[float]:
    return [r["loss"] for r in read_metrics(run_dir) if r["split"] == split]


@pytest.mark.parametrize("zero_stage", [0, 2, 3])
def test_deepspeed_gives_the_torch_losses_on_one_process(tmp_path, one_process_group, zero_stage):
    mcfg, cfg, train_ds, val_ds = _setup(zero_stage=zero_stage)
    ref = train(mcfg, cfg, train_ds, val_ds, tmp_path / "torch", progress=False)
    cfg_ds = TrainConfig.from_dict({**cfg.to_dict(), "engine": "deepspeed"})
    ds = train(mcfg, cfg_ds, train_ds, val_ds, tmp_path / "ds", progress=False)
    np.testing.assert_allclose(_losses(tmp_path / "ds"), _losses(tmp_path / "torch"), rtol=1e-5)
    np.testing.assert_allclose(ds.val_loss, ref.val_loss, rtol=1e-5)
    assert _losses(tmp_path / "ds")[-1] < _losses(tmp_path / "ds")[0]


def test_deepspeed_resume_after_ctrl_c_matches_an_uninterrupted_run(tmp_path, one_process_group):
    mcfg, cfg, train_ds, val_ds = _setup(engine="deepspeed", zero_stage=2)
    full = train(mcfg, cfg, train_ds, val_ds, tmp_path / "full", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(mcfg, cfg, train_ds, val_ds, tmp_path / "cut", progress=False,
              on_step=lambda s, l: s == 7 and signal.raise_signal(signal.SIGINT))
    assert RunDir(tmp_path / "cut").latest()["step"] == 8
    resumed = train(mcfg, cfg, train_ds, val_ds, tmp_path / "cut", progress=False)
    assert resumed.step == full.step == 20
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=k)
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "full")


def test_two_process_zero2_training_on_the_real_panel(tmp_path, shared_mapping):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "forecaster", "train", "--data", str(shared_mapping), "--out", str(out),
           "--preset", "tiny", "--engine", "deepspeed", "--zero-stage", "2",
           "--max-steps", "16", "--eval-every", "8", "--log-every", "2", "--no-progress"]
    # --standalone picks a free rendezvous port itself; MASTER_PORT is set fresh for good measure
    env = {**os.environ, "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = RunDir(out)
    info = run.read_info()
    assert info["world_size"] == 2 and info["engine"] == "deepspeed"
    assert json.loads((out / "deepspeed_config.json").read_text())["zero_optimization"]["stage"] == 2
    step_dir, state = run.load_state()
    assert state["step"] == 16
    digests = state["param_sha256_by_rank"]
    assert len(digests) == 2 and digests[0] == digests[1], "the two ranks ended with different weights"
    assert sorted(p.name for p in (step_dir / "deepspeed" / "state").glob("zero_pp_rank_*")) == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    train_losses, val_losses = _losses(out), _losses(out, "val")
    assert len(train_losses) == 8 and len(val_losses) == 2
    assert train_losses[-1] < train_losses[0] - 0.3, train_losses
    assert val_losses[-1] < val_losses[0], val_losses
    assert (out / "tokenizer.json").exists() and (out / "best.safetensors").exists()
