"""Training the day-level model (DayGPT): presets, row windows with features, the loop, resume, the run folder."""
from __future__ import annotations

import json
import signal

import numpy as np
import pandas as pd
import pytest
import torch

from data_sources.panel import PanelBuilder
from forecaster.cli import main
from forecaster.core.daymodel import DayGPT, DayGPTConfig, SlotVocab
from forecaster.core.model import GPT, GPTConfig
from forecaster.core.run import RunDir, load_model
from forecaster.core.training.checkpoint import CheckpointError
from forecaster.core.training.config import ConfigError, TrainConfig, model_config_for, model_kind
from forecaster.core.training.engine import train
from forecaster.core.training.metrics import read_metrics
from forecaster.core.training.windows import RowWindowDataset, Segment, make_datasets
from forecaster.market.inputs import InputNormalization, feature_names
from forecaster.market.train import train_panel_run
from tests.test_training import ROW, VOCAB, synthetic_table

N_FEAT = 3


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def featured_table(rows: int = 400, seed: int = 0) -> Segment:
    """The synthetic table of test_training with per-row features: row index, c0 of the row, a constant."""
    seg = synthetic_table(rows, seed)
    feats = np.stack([np.arange(rows) / rows, seg.tokens[:, 0] / 5.0, np.ones(rows)], 1).astype(np.float32)
    return Segment(seg.tokens, seg.times, feats)


def valid_mask() -> np.ndarray:
    """Per-slot valid ids of the synthetic table (disjoint ranges, as a TableTokenizer gives)."""
    lo, hi = np.array([0, 0, 5, 12, 18, 23]), np.array([5, 5, 12, 17, 19, 24])
    ids = np.arange(VOCAB)
    return (ids >= lo[:, None]) & (ids < hi[:, None])


def _setup(**overrides):
    cfg = TrainConfig.from_preset("day-tiny", **{"context_rows": 8, "max_steps": 30, "eval_every": 10,
                                                 "checkpoint_every": 10, "log_every": 5, **overrides})
    train_ds, val_ds, _ = make_datasets([featured_table()], cfg.context_rows, cfg.val_fraction, rows=True)
    mcfg = model_config_for("day-tiny", VOCAB, ROW, cfg.context_rows, n_features=N_FEAT)
    return mcfg, cfg, train_ds, val_ds


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# -- presets -----------------------------------------------------------------------------------

def test_day_presets_give_a_day_model_config_and_flat_presets_are_unchanged():
    assert model_kind("day-tiny") == model_kind("day-small") == "day"
    assert all(model_kind(p) == "flat" for p in ("tiny", "small", "base", "large"))
    small = model_config_for("day-small", 900, 22, 256, n_features=120)
    assert isinstance(small, DayGPTConfig)
    assert (small.n_layer, small.n_embd, small.n_kv_head, small.local_n_layer, small.local_n_embd,
            small.context_rows, small.n_features, small.dropout) == (4, 128, 1, 2, 64, 256, 120, 0.2)
    assert TrainConfig.from_preset("day-small").context_rows == 256
    assert TrainConfig.from_preset("day-tiny").context_rows == 32
    # the flat presets build what they always did
    assert model_config_for("tiny", VOCAB, ROW, 4) == GPTConfig(vocab_size=VOCAB, row_len=ROW, block_size=24,
                                                                n_layer=2, n_head=2, n_embd=48, dropout=0.0)
    assert TrainConfig.from_preset("small") == TrainConfig(preset="small", context_rows=8, batch_size=16,
                                                           max_steps=300, lr=2e-3, warmup_steps=20,
                                                           eval_every=50, patience=3)
    with pytest.raises(ConfigError, match="flat model"):
        model_config_for("tiny", VOCAB, ROW, 4, n_features=3)


# -- windows -------------------------------------------------------------------------------------

def test_row_windows_align_rows_and_features_and_never_cross_the_split():
    seg = featured_table(100)
    train_ds, val_ds, val_start = make_datasets([seg], context_rows=4, val_fraction=0.2, rows=True)
    assert isinstance(train_ds, RowWindowDataset) and train_ds.n_features == N_FEAT
    assert val_start == pd.Timestamp(seg.times[80])
    assert len(train_ds) == 80 - 5 + 1 and len(val_ds) == 20 - 5 + 1  # windows of context_rows + 1 rows
    for ds, first in ((train_ds, 0), (val_ds, 80)):
        for i in range(len(ds)):
            np.testing.assert_array_equal(ds.window(i), seg.tokens[first + i:first + i + 5])
            np.testing.assert_array_equal(ds.window_features(i), seg.features[first + i:first + i + 5])
    assert train_ds.time_range()[1] < val_ds.time_range()[0]
    rows, feats = train_ds.batch(np.array([0, 7]))
    assert rows.shape == (2, 5, ROW) and rows.dtype == torch.int64
    assert feats.shape == (2, 5, N_FEAT) and feats.dtype == torch.float32
    # feature row t is the vector of the day of row t (column 0 is the row's index / 100)
    np.testing.assert_allclose(feats[1, :, 0].numpy(), np.arange(7, 12) / 100, rtol=1e-6)
    # without features: an empty feature axis
    _, bare = make_datasets([synthetic_table(100)], 4, 0.2, rows=True)[0].batch(np.array([0]))
    assert bare.shape == (1, 5, 0)


def test_the_loop_refuses_windows_of_the_other_model_kind(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup()
    flat_tr, flat_va, _ = make_datasets([synthetic_table()], cfg.context_rows, cfg.val_fraction)
    with pytest.raises(ConfigError, match="whole rows"):
        train(mcfg, cfg, flat_tr, flat_va, tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="features"):
        train(model_config_for("day-tiny", VOCAB, ROW, cfg.context_rows), cfg, train_ds, val_ds, tmp_path / "b",
              progress=False)
    with pytest.raises(ConfigError, match="flat token windows"):
        train(model_config_for("tiny", VOCAB, ROW, 8), TrainConfig.from_preset("tiny", context_rows=8),
              train_ds, val_ds, tmp_path / "c", progress=False)


# -- the loop ------------------------------------------------------------------------------------

def test_day_model_training_decreases_the_loss_and_writes_a_day_run(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(max_steps=60, eval_every=20)
    res = train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", info={"data": "synthetic"}, fingerprint="fp1",
                progress=False, valid_mask=valid_mask())
    assert res.reason == "max_steps" and res.step == 60 and isinstance(res.model, DayGPT)
    tr = [r for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    # the floor is (2 ln 5) / 6 = 0.54 nats per slot (c0, c1 are random); a uniform guess is ~1.4
    assert tr[-1]["loss"] < tr[0]["loss"] - 0.25, [r["loss"] for r in tr]
    assert all(r["tokens_per_s"] > 0 for r in tr)
    run = RunDir(tmp_path / "run")
    assert run.read_info()["model"] == "day" and run.model_kind() == "day"
    assert run.read_model_config() == mcfg
    best = load_model(tmp_path / "run", fingerprint="fp1")
    assert isinstance(best, DayGPT) and not best.training
    rows, feats = val_ds.batch(val_ds.eval_indices(cfg.eval_windows))
    loss = best(rows, feats, vocab=SlotVocab(torch.as_tensor(valid_mask())))[1].item()
    assert loss == pytest.approx(res.best_val_loss, rel=1e-5)


def test_day_model_resume_after_ctrl_c_ends_like_an_uninterrupted_run(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(max_steps=24, checkpoint_every=4, dropout=None)
    mcfg = DayGPTConfig.from_dict({**mcfg.to_dict(), "dropout": 0.1})  # dropout seeds must resume too
    full = train(mcfg, cfg, train_ds, val_ds, tmp_path / "full", progress=False, valid_mask=valid_mask())

    def ctrl_c_at_9(step, loss):
        if step == 9:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(mcfg, cfg, train_ds, val_ds, tmp_path / "cut", progress=False, on_step=ctrl_c_at_9,
              valid_mask=valid_mask())
    assert RunDir(tmp_path / "cut").latest()["step"] == 10
    resumed = train(mcfg, cfg, train_ds, val_ds, tmp_path / "cut", progress=False, valid_mask=valid_mask())
    assert resumed.step == 24
    wf, wr = _weights(full.model), _weights(resumed.model)
    for k in wf:
        torch.testing.assert_close(wr[k], wf[k], rtol=0, atol=0, msg=k)
    assert resumed.val_loss == full.val_loss
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")} for r in rs]
    assert strip(read_metrics(tmp_path / "cut")) == strip(read_metrics(tmp_path / "full"))


def test_early_stopping_and_refusing_another_model_kind(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup(lr=1e-12, max_steps=100, eval_every=5, patience=2)
    res = train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", fingerprint="fp", progress=False)
    assert res.reason == "early_stop" and res.step == 15
    flat_tr, flat_va, _ = make_datasets([synthetic_table()], 8, cfg.val_fraction)
    flat_cfg = TrainConfig.from_dict({**cfg.to_dict(), "preset": "tiny"})
    with pytest.raises(CheckpointError, match="day model"):
        train(model_config_for("tiny", VOCAB, ROW, 8), flat_cfg, flat_tr, flat_va, tmp_path / "run",
              fingerprint="fp", progress=False)


def test_a_run_without_a_model_kind_loads_as_the_flat_gpt(tmp_path):
    cfg = TrainConfig.from_preset("tiny", max_steps=2, eval_every=2)
    tr, va, _ = make_datasets([synthetic_table()], cfg.context_rows, cfg.val_fraction)
    train(model_config_for("tiny", VOCAB, ROW, 4), cfg, tr, va, tmp_path / "run", progress=False)
    run = RunDir(tmp_path / "run")
    assert run.read_info()["model"] == "flat"
    info = run.read_info()
    del info["model"]  # a run folder written before the key existed
    run.run_info.write_text(json.dumps(info))
    assert isinstance(load_model(tmp_path / "run"), GPT) and run.read_inputs() is None


# -- the market run --------------------------------------------------------------------------------

def _panel_run(tmp_path, name: str, builder, **kw):
    cfg = TrainConfig.from_preset("day-tiny", max_steps=4, eval_every=4, eval_windows=4, context_rows=16)
    return train_panel_run(builder, tmp_path / name, cfg, progress=False, val_start="2017-01-04", **kw)


def test_market_day_run_saves_inputs_fitted_on_training_days_only(tmp_path):
    builder = PanelBuilder("embedded")
    res = _panel_run(tmp_path, "run", builder)
    assert res.step == 4 and isinstance(res.model, DayGPT)
    run = RunDir(tmp_path / "run")
    assert run.model_kind() == "day"
    inputs = run.read_inputs()
    series = run.read_info()["series"]
    assert inputs["names"] == feature_names(series)
    norm = InputNormalization.from_dict(inputs["normalization"])
    assert norm.fitted_through == "2017-01-03"  # the last training day
    model = run.load_model()
    assert isinstance(model, DayGPT) and model.config.n_features == len(inputs["names"])

    # data from the validation start on does not change the normalisation
    class Altered(PanelBuilder):
        def build(self, as_of=None):
            panel = super().build(as_of).copy()
            late = panel.index >= pd.Timestamp("2017-01-04")
            panel.loc[late] = panel.loc[late] * 3.0
            return panel

    _panel_run(tmp_path, "altered", Altered("embedded"))
    assert RunDir(tmp_path / "altered").read_inputs() == inputs
    # ... and data before it does
    class Early(PanelBuilder):
        def build(self, as_of=None):
            panel = super().build(as_of).copy()
            early = panel.index < pd.Timestamp("2010-01-01")
            panel.loc[early] = panel.loc[early] * 3.0
            return panel

    _panel_run(tmp_path, "early", Early("embedded"))
    assert RunDir(tmp_path / "early").read_inputs()["normalization"] != inputs["normalization"]


def test_cli_trains_a_day_preset(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--data", "embedded", "--out", str(out), "--preset", "day-tiny",
                 "--max-steps", "3", "--eval-every", "3", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "max_steps: 3 steps" in capsys.readouterr().out
    assert RunDir(out).model_kind() == "day" and (out / "inputs.json").exists()


def test_model_options_change_the_preset_shape_and_are_recorded(tmp_path, capsys):
    opts = {"state_dropout": 0.5, "local_n_embd": 48}
    mcfg = model_config_for("day-tiny", VOCAB, ROW, 8, n_features=N_FEAT, options=opts)
    assert (mcfg.state_dropout, mcfg.local_n_embd, mcfg.n_embd) == (0.5, 48, 32)  # the rest is the preset's
    with pytest.raises(ConfigError, match="not a key of the flat model"):
        model_config_for("tiny", VOCAB, ROW, 4, options={"state_dropout": 0.5})
    with pytest.raises(ConfigError, match="not a model shape key"):
        TrainConfig.from_preset("day-tiny", model_options={"lr": 0.1})
    out = tmp_path / "run"
    code = main(["train", "--data", "embedded", "--out", str(out), "--preset", "day-tiny", "--max-steps", "2",
                 "--eval-every", "2", "--no-progress", "--model-option", "state_dropout=0.5",
                 "--model-option", "local_n_embd=48"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(RunDir(out).train_config.read_text())["model_options"] == opts
    model = load_model(out)
    assert (model.config.state_dropout, model.config.local_n_embd) == (0.5, 48)
    assert main(["train", "--data", "embedded", "--out", str(tmp_path / "bad"), "--preset", "day-tiny",
                 "--model-option", "state_dropout"]) == 2
    assert "write KEY=VALUE" in capsys.readouterr().err


# -- DeepSpeed (slow: see tests/test_deepspeed.py) ---------------------------------------------------

@pytest.mark.slow
def test_deepspeed_trains_the_day_model_like_torch_and_resumes(tmp_path, monkeypatch):
    from forecaster.core.training.distributed import free_port

    for k, v in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(k, v)
    mcfg, cfg, train_ds, val_ds = _setup(max_steps=12, eval_every=6, checkpoint_every=3, log_every=1)
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "torch", progress=False, valid_mask=valid_mask())
    ds_cfg = TrainConfig.from_dict({**cfg.to_dict(), "engine": "deepspeed", "zero_stage": 2})
    full = train(mcfg, ds_cfg, train_ds, val_ds, tmp_path / "ds", progress=False, valid_mask=valid_mask())
    losses = lambda d: [r["loss"] for r in read_metrics(d) if r["split"] == "train"]
    np.testing.assert_allclose(losses(tmp_path / "ds"), losses(tmp_path / "torch"), rtol=1e-5)
    with pytest.raises(KeyboardInterrupt):
        train(mcfg, ds_cfg, train_ds, val_ds, tmp_path / "cut", progress=False, valid_mask=valid_mask(),
              on_step=lambda s, l: s == 4 and signal.raise_signal(signal.SIGINT))
    resumed = train(mcfg, ds_cfg, train_ds, val_ds, tmp_path / "cut", progress=False, valid_mask=valid_mask())
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=k)
    assert losses(tmp_path / "cut") == losses(tmp_path / "ds")


@pytest.mark.slow
def test_two_process_zero2_day_training_on_the_real_panel(tmp_path, shared_mapping):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from forecaster.core.training.distributed import free_port

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "forecaster", "train", "--data", str(shared_mapping), "--out", str(out),
           "--preset", "day-tiny", "--engine", "deepspeed", "--zero-stage", "2",
           "--max-steps", "8", "--eval-every", "4", "--log-every", "2", "--no-progress"]
    env = {**os.environ, "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = RunDir(out)
    assert run.model_kind() == "day" and run.read_info()["world_size"] == 2
    state = run.load_state()[1]
    assert state["step"] == 8 and len(set(state["param_sha256_by_rank"])) == 1
    assert isinstance(run.load_model(), DayGPT) and run.read_inputs()["names"]
