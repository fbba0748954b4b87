"""Training on synthetic token tables: windows and split, schedule, overfitting, resume, refusal, metrics."""
from __future__ import annotations

import json
import signal

import numpy as np
import pandas as pd
import pytest
import torch

from foundation.errors import UserError
from forecaster.core.run import RunDir, load_model
from forecaster.core.training.checkpoint import CheckpointError
from forecaster.core.training.config import ConfigError, TrainConfig, model_config_for
from forecaster.core.training.engine import train
from forecaster.core.training.metrics import read_metrics
from forecaster.core.training.windows import Segment, WindowDataset, document_segments, make_datasets

ROW, VOCAB = 6, 24


def synthetic_table(rows: int = 400, seed: int = 0) -> Segment:
    """Rows with learnable structure: c2 = (c0 + c1) % 7, c3 = yesterday's c0, constant c4, delimiter."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 5, rows), rng.integers(0, 5, rows)
    tok = np.stack([a, b, (a + b) % 7 + 5, np.roll(a, 1) + 12, np.full(rows, 18), np.full(rows, 23)], 1)
    return Segment(tok.astype(np.int64), pd.bdate_range("2020-01-01", periods=rows).values)


def _setup(tmp_path, **overrides):
    cfg = TrainConfig.from_preset("tiny", **{"max_steps": 30, "eval_every": 10, "checkpoint_every": 10,
                                             "log_every": 5, **overrides})
    train_ds, val_ds, _ = make_datasets([synthetic_table()], cfg.context_rows, cfg.val_fraction)
    mcfg = model_config_for("tiny", VOCAB, ROW, cfg.context_rows)
    return mcfg, cfg, train_ds, val_ds


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- windows and split -----------------------------------------------------------------------

def test_windows_are_row_aligned_and_never_cross_the_time_split():
    seg = synthetic_table(100)
    train_ds, val_ds, val_start = make_datasets([seg], context_rows=4, val_fraction=0.2)
    assert val_start == pd.Timestamp(seg.times[80])
    assert train_ds.n_rows == 80 and val_ds.n_rows == 20
    assert len(train_ds) == 77 and len(val_ds) == 17
    flat = seg.tokens.reshape(-1)
    for ds, first_row in ((train_ds, 0), (val_ds, 80)):
        for i in range(len(ds)):
            w = ds.window(i)
            assert w.shape == (4 * ROW,)
            start = (first_row + i) * ROW  # windows start on a row boundary
            np.testing.assert_array_equal(w, flat[start:start + 4 * ROW])
    assert train_ds.time_range()[1] < val_ds.time_range()[0]
    x, y = train_ds.batch(np.array([0, 5]))
    assert x.shape == y.shape == (2, 4 * ROW - 1)
    torch.testing.assert_close(x[:, 1:], y[:, :-1])


def test_document_segments_keep_documents_apart():
    seg = synthetic_table(30)
    keys = np.repeat([7, 3, 9], 10)
    docs = document_segments(seg.tokens, seg.times, keys)
    assert [len(d.tokens) for d in docs] == [10, 10, 10]
    ds = WindowDataset(docs, context_rows=4)
    assert len(ds) == 3 * 7  # 7 windows per 10-row document, none across documents


def test_too_little_data_is_a_user_error():
    with pytest.raises(UserError, match="no validation window"):
        make_datasets([synthetic_table(20)], context_rows=4, val_fraction=0.1)


def test_batches_depend_only_on_seed_and_step():
    train_ds, _, _ = make_datasets([synthetic_table()], 4, 0.1)
    a = train_ds.train_indices(step=7, batch_size=8, seed=1)
    np.testing.assert_array_equal(a, train_ds.train_indices(step=7, batch_size=8, seed=1))
    assert not np.array_equal(a, train_ds.train_indices(step=8, batch_size=8, seed=1))
    assert not np.array_equal(a, train_ds.train_indices(step=7, batch_size=8, seed=2))


# -- configs -----------------------------------------------------------------------------------

def test_lr_schedule_warms_up_then_decays_to_min():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    lrs = [cfg.lr_at(s) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(b <= a + 1e-12 for a, b in zip(lrs[10:], lrs[11:]))
    assert cfg.lr_at(110) == pytest.approx(0.1)


def test_train_config_round_trip_unknown_key_and_bad_values():
    cfg = TrainConfig.from_preset("small", engine="deepspeed")
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="unknown training config key"):
        TrainConfig.from_dict({**cfg.to_dict(), "learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="preset"):
        TrainConfig.from_preset("huge")
    with pytest.raises(ConfigError, match="zero_stage"):
        TrainConfig(zero_stage=4)
    with pytest.raises(ConfigError, match="divisible"):
        TrainConfig(batch_size=6, grad_accum=4).micro_batch(1)


# -- learning -----------------------------------------------------------------------------------

def test_tiny_model_overfits_a_fixed_sequence(tmp_path):
    rng = np.random.default_rng(3)
    rows = rng.integers(3, VOCAB, (4, ROW))  # one fixed window of random tokens
    seg = Segment(rows, pd.bdate_range("2021-01-01", periods=4).values)
    ds = WindowDataset([seg], context_rows=4)
    cfg = TrainConfig.from_preset("tiny", max_steps=60, batch_size=4, lr=1e-2, warmup_steps=5,
                                  weight_decay=0.0, eval_every=20, checkpoint_every=1000)
    res = train(model_config_for("tiny", VOCAB, ROW, 4), cfg, ds, ds, tmp_path / "run", progress=False)
    assert res.val_loss < 0.05, f"loss {res.val_loss} after {res.step} steps"


def test_training_learns_the_row_structure_and_writes_a_run_directory(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(tmp_path, max_steps=60, eval_every=20)
    res = train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", info={"data": "synthetic"}, fingerprint="fp1",
                progress=False)
    assert res.reason == "max_steps" and res.step == 60
    hist = read_metrics(tmp_path / "run")
    tr = [r for r in hist if r["split"] == "train"]
    va = [r for r in hist if r["split"] == "val"]
    assert [r["step"] for r in tr] == list(range(5, 61, 5)) and [r["step"] for r in va] == [20, 40, 60]
    assert tr[-1]["loss"] < 0.6 * tr[0]["loss"]
    assert all(r["tokens_per_s"] > 0 for r in tr)
    run = RunDir(tmp_path / "run")
    info = run.read_info()
    assert info["tokenizer_fingerprint"] == "fp1" and info["data"] == "synthetic"
    assert info["train_range"][1] < info["val_range"][0]
    assert run.latest()["finished"] is True
    assert TrainConfig.from_json(run.train_config.read_text()) == cfg
    best = load_model(tmp_path / "run", fingerprint="fp1")
    x, y = val_ds.batch(np.arange(4))
    assert best(x, y)[1].item() == pytest.approx(res.best_val_loss, rel=0.05)


def test_early_stopping_on_validation_loss(tmp_path):
    # lr 0: the validation loss never improves after the first evaluation
    mcfg, cfg, train_ds, val_ds = _setup(tmp_path, lr=1e-12, max_steps=100, eval_every=5, patience=2)
    res = train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    assert res.reason == "early_stop" and res.step == 15
    again = train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    assert again.reason == "already_finished" and again.step == 15


# -- resume and refusal -------------------------------------------------------------------------

def test_resume_after_ctrl_c_ends_like_an_uninterrupted_run(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(tmp_path, max_steps=30, checkpoint_every=4)
    full = train(mcfg, cfg, train_ds, val_ds, tmp_path / "full", progress=False)

    def ctrl_c_at_13(step, loss):
        if step == 13:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C sends; the loop finishes the step and saves

    with pytest.raises(KeyboardInterrupt):
        train(mcfg, cfg, train_ds, val_ds, tmp_path / "cut", progress=False, on_step=ctrl_c_at_13)
    # the flag is seen at the end of the next step (all ranks must agree on where to stop)
    assert RunDir(tmp_path / "cut").latest()["step"] == 14
    resumed = train(mcfg, cfg, train_ds, val_ds, tmp_path / "cut", progress=False)
    assert resumed.step == 30
    wf, wr = _weights(full.model), _weights(resumed.model)
    for k in wf:
        torch.testing.assert_close(wr[k], wf[k], rtol=0, atol=0)
    assert resumed.val_loss == full.val_loss
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")} for r in rs]
    assert strip(read_metrics(tmp_path / "cut")) == strip(read_metrics(tmp_path / "full"))


def test_resume_after_a_kill_uses_the_last_committed_checkpoint(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(tmp_path, max_steps=20, checkpoint_every=5)
    full = train(mcfg, cfg, train_ds, val_ds, tmp_path / "full", progress=False)

    class Killed(Exception):
        pass

    def die_at_12(step, loss):
        if step == 12:
            raise Killed  # no checkpoint is written: like SIGKILL after step 12

    with pytest.raises(Killed):
        train(mcfg, cfg, train_ds, val_ds, tmp_path / "cut", progress=False, on_step=die_at_12)
    run = RunDir(tmp_path / "cut")
    assert run.latest()["step"] == 10
    # a half-written next checkpoint must not matter
    (run.step_dir(15)).mkdir()
    (run.step_dir(15) / "model.safetensors").write_bytes(b"partial")
    resumed = train(mcfg, cfg, train_ds, val_ds, tmp_path / "cut", progress=False)
    for k, v in _weights(full.model).items():
        torch.testing.assert_close(_weights(resumed.model)[k], v, rtol=0, atol=0)


def test_corrupt_checkpoint_is_refused_with_a_clear_message(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(tmp_path, max_steps=10, checkpoint_every=5)
    with pytest.raises(KeyboardInterrupt):
        train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False,
              on_step=lambda s, l: s == 5 and signal.raise_signal(signal.SIGINT))
    run = RunDir(tmp_path / "run")
    weights = run.step_dir(run.latest()["step"]) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    # garbage in place of weights is refused by the loader too
    run.best_weights.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path / "run")


def test_checkpoint_from_another_tokenizer_or_config_is_refused(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(tmp_path, max_steps=5, checkpoint_every=5)
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", fingerprint="tokA", progress=False)
    with pytest.raises(CheckpointError, match="another tokenizer"):
        train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", fingerprint="tokB", progress=False)
    with pytest.raises(CheckpointError, match="another tokenizer"):
        load_model(tmp_path / "run", fingerprint="tokB")
    with pytest.raises(CheckpointError, match="changed training options"):
        train(mcfg, TrainConfig.from_json(json.dumps({**cfg.to_dict(), "lr": 0.5})), train_ds, val_ds,
              tmp_path / "run", fingerprint="tokA", progress=False)
    with pytest.raises(CheckpointError, match="model config"):
        train(model_config_for("small", VOCAB, ROW, cfg.context_rows), cfg, train_ds, val_ds,
              tmp_path / "run", fingerprint="tokA", progress=False)


def test_time_budget_stops_with_an_evaluation_and_a_resumable_checkpoint(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(tmp_path, max_steps=1000, eval_every=500, max_minutes=1e-9)
    res = train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    assert res.reason == "time" and res.step == 1
    assert np.isfinite(res.val_loss) and RunDir(tmp_path / "run").best_weights.exists()
    latest = RunDir(tmp_path / "run").latest()
    assert latest["step"] == 1 and latest["reason"] == "time"
    more = TrainConfig.from_dict({**cfg.to_dict(), "max_minutes": None, "max_steps": 3})
    assert train(mcfg, more, train_ds, val_ds, tmp_path / "run", progress=False).step == 3
