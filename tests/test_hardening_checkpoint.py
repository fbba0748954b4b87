"""Hardening of run folders and checkpoints: nothing unsafe loaded, nothing lost, one-line errors.

* no code runs from a checkpoint: a ``__reduce__`` pickle planted in DeepSpeed's or
  torch's optimizer files (with the sha256 list rewritten to match) is refused and
  never executed;
* weight files carry a checksum recorded at save: a bit flip or non-finite weights
  are refused with one line naming the file;
* one training process per run folder (a lock naming the holder's PID; a killed
  holder's lock is taken over);
* absurd model configs and an ``--out`` that is a file are one-line errors;
* ``run.json`` records file data sources as absolute paths;
* step folders and temporary files left by a kill are cleaned up by the next run.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from foundation.errors import UserError
from forecaster.cli import main
from forecaster.core.model import GPT, GPTConfig
from forecaster.core.run import RunDir, load_model
from forecaster.core.training.checkpoint import CheckpointError, save_weights, sha256_file
from forecaster.core.training.config import TrainConfig, model_config_for
from forecaster.core.training.distributed import free_port
from forecaster.core.training.engine import train
from forecaster.core.training.windows import make_datasets
from tests.test_training import ROW, VOCAB, synthetic_table

REPO = Path(__file__).resolve().parents[1]


def _setup(**overrides):
    cfg = TrainConfig.from_preset("tiny", **{"max_steps": 4, "eval_every": 2, "checkpoint_every": 2,
                                             "log_every": 1, **overrides})
    train_ds, val_ds, _ = make_datasets([synthetic_table()], cfg.context_rows, cfg.val_fraction)
    return model_config_for("tiny", VOCAB, ROW, cfg.context_rows), cfg, train_ds, val_ds


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg, f"not one line: {msg!r}"
    return msg


class _Evil:
    """Unpickling this creates ``marker``: stands for any code an attacker could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(path: Path, marker: Path) -> None:
    torch.save({"module": _Evil(marker), "optimizer_state_dict": _Evil(marker)}, path)


def _rehash(run: RunDir) -> None:
    """Rewrite the committed checkpoint's sha256 list to match its files (what an attacker can do)."""
    d = run.step_dir(run.latest()["step"])
    state = json.loads((d / "state.json").read_text())
    state["files"] = {rel: sha256_file(d / rel) for rel in state["files"]}
    (d / "state.json").write_text(json.dumps(state))


# -- 2. no code runs from a checkpoint ---------------------------------------------------------

def test_no_torch_load_in_the_project_without_weights_only():
    bad = []
    for py in sorted(REPO.glob("**/*.py")):
        if any(part in (".git", "tests", ".venv", "build") for part in py.relative_to(REPO).parts):
            continue
        text = py.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            call = text[m.start():text.find(")", m.end()) + 1]
            if "weights_only=True" not in call:
                bad.append(f"{py.relative_to(REPO)}: {call}")
    assert not bad, bad


def test_torch_engine_resume_refuses_a_pickle_in_optimizer_pt(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup()
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    run, marker = RunDir(tmp_path / "run"), tmp_path / "pwned"
    _plant(run.step_dir(4) / "optimizer.pt", marker)
    _rehash(run)
    more = TrainConfig.from_dict({**cfg.to_dict(), "max_steps": 6})
    with pytest.raises(CheckpointError, match="optimizer.pt") as exc:
        train(mcfg, more, train_ds, val_ds, run.path, progress=False)
    _one_line(exc.value)
    assert not marker.exists()


@pytest.fixture
def one_process_group(monkeypatch):
    for k, v in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(k, v)


@pytest.mark.slow
@pytest.mark.parametrize("zero_stage,victim", [(2, "mp_rank_00_model_states.pt"),
                                               (2, "zero_pp_rank_0_mp_rank_00_optim_states.pt"),
                                               (0, "mp_rank_00_model_states.pt")])
def test_deepspeed_resume_refuses_a_planted_pickle(tmp_path, one_process_group, zero_stage, victim):
    mcfg, cfg, train_ds, val_ds = _setup(engine="deepspeed", zero_stage=zero_stage)
    first = train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    assert first.step == 4
    run, marker = RunDir(tmp_path / "run"), tmp_path / "pwned"
    files = {p.name: p for p in (run.step_dir(4) / "deepspeed").rglob("*.pt")}
    assert victim in files, sorted(files)
    _plant(files[victim], marker)
    _rehash(run)
    more = TrainConfig.from_dict({**cfg.to_dict(), "max_steps": 6})
    with pytest.raises(CheckpointError, match=re.escape(victim)) as exc:
        train(mcfg, more, train_ds, val_ds, run.path, progress=False)
    _one_line(exc.value)
    assert not marker.exists(), "the planted pickle ran"


@pytest.mark.slow
def test_deepspeed_resume_still_loads_its_own_checkpoint_safely(tmp_path, one_process_group):
    mcfg, cfg, train_ds, val_ds = _setup(engine="deepspeed", zero_stage=2)
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    more = TrainConfig.from_dict({**cfg.to_dict(), "max_steps": 6})
    assert train(mcfg, more, train_ds, val_ds, tmp_path / "run", progress=False).step == 6


# -- 3. weight files are checksummed and finite -------------------------------------------------

def test_a_bit_flip_in_best_weights_is_refused_naming_the_file(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup()
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    best = RunDir(tmp_path / "run").best_weights
    data = bytearray(best.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the tensor data: safetensors itself cannot notice
    best.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="best.safetensors") as exc:
        load_model(tmp_path / "run")
    assert "checksum" in _one_line(exc.value)


def test_non_finite_weights_are_refused_before_sampling(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup()
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    model = GPT(mcfg)
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")
    save_weights(model, RunDir(tmp_path / "run").best_weights)  # a valid checksum of bad weights
    with pytest.raises(CheckpointError, match="best.safetensors") as exc:
        load_model(tmp_path / "run")
    assert "NaN" in _one_line(exc.value)


def test_weights_without_a_recorded_checksum_are_refused(tmp_path):
    from safetensors.torch import save_file

    mcfg, cfg, train_ds, val_ds = _setup()
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    model = GPT(mcfg)
    best = RunDir(tmp_path / "run").best_weights
    save_file({k: v.detach().clone().contiguous() for k, v in model.named_parameters()}, str(best))
    with pytest.raises(CheckpointError, match="no recorded checksum") as exc:
        load_model(tmp_path / "run")
    _one_line(exc.value)


# -- 4. one training process per run folder ---------------------------------------------------------

_HOLDER = ("import sys, time\n"
           "from forecaster.core.run import RunDir\n"
           "with RunDir(sys.argv[1]).lock():\n"
           "    print('held', flush=True)\n"
           "    time.sleep(120)\n")


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run_dir)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read()
    return proc


def test_a_second_training_on_the_same_folder_is_refused_naming_the_pid(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup()
    holder = _hold_lock(tmp_path / "run")
    try:
        with pytest.raises(CheckpointError, match=f"PID {holder.pid}") as exc:
            train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
        _one_line(exc.value)
        assert RunDir(tmp_path / "run").latest() is None
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed (SIGKILL): its lock is stale and the next run takes it over
    assert train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False).step == 4


def test_a_stale_lock_file_with_a_dead_pid_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.lock_file.write_text(f"{dead.pid} somehost\n")
    mcfg, cfg, train_ds, val_ds = _setup()
    assert train(mcfg, cfg, train_ds, val_ds, run.path, progress=False).step == 4


def test_forecaster_train_refuses_a_held_folder_in_one_line(tmp_path, shared_mapping, capsys):
    holder = _hold_lock(tmp_path / "run")
    try:
        code = main(["train", "--data", str(shared_mapping), "--out", str(tmp_path / "run"), "--preset", "tiny",
                     "--max-steps", "2", "--no-progress"])
        err = capsys.readouterr().err.strip()
    finally:
        holder.kill()
        holder.wait()
    assert code == 2
    assert f"PID {holder.pid}" in err and "\n" not in err, err


def test_synth_train_refuses_a_held_folder_in_one_line(tmp_path, shared_data, capsys):
    holder = _hold_lock(tmp_path / "run")
    src = shared_data / "tabformer" / "User0_credit_card_transactions.csv"
    try:
        code = main(["synth", "train", "--data", str(src), "--out", str(tmp_path / "run"), "--preset", "tiny",
                     "--max-steps", "2", "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
    finally:
        holder.kill()
        holder.wait()
    assert code == 2
    assert f"PID {holder.pid}" in err[-1], err
    assert not (tmp_path / "run" / "tokenizer.json").exists(), "wrote into a folder another process holds"


# -- 9. one-line errors instead of tracebacks -------------------------------------------------------

@pytest.mark.parametrize("field,value,needle", [
    ("block_size", 10**12, "block_size"), ("n_layer", 0, "n_layer"), ("n_embd", 10**7, "n_embd"),
    ("vocab_size", -3, "vocab_size"), ("n_head", 7, "n_head"), ("dropout", 1.5, "dropout"),
    ("n_layer", "2", "n_layer"), ("row_len", 5, "row_len"), ("n_kv_head", 3, "n_kv_head")])
def test_an_absurd_model_config_json_is_a_one_line_error(tmp_path, field, value, needle):
    mcfg, cfg, train_ds, val_ds = _setup(max_steps=2)
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    path = RunDir(tmp_path / "run").model_config
    doc = json.loads(path.read_text())
    doc[field] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=needle) as exc:
        load_model(tmp_path / "run")
    assert str(path) in _one_line(exc.value)


def test_gpt_config_checks_survive_python_dash_o():
    out = subprocess.run([sys.executable, "-O", "-c",
                          "from forecaster.core.model import GPTConfig\nGPTConfig(n_embd=10, n_head=3)"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode != 0 and "n_head" in out.stderr


def test_a_sane_config_still_builds():
    assert isinstance(GPTConfig(vocab_size=37, row_len=5, block_size=30, n_embd=32), GPTConfig)
    with pytest.raises(UserError):
        GPTConfig(block_size=0)


@pytest.mark.parametrize("command", ["train", "synth"])
def test_train_out_on_an_existing_file_is_a_one_line_error(tmp_path, shared_mapping, shared_data, capsys, command):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    if command == "train":
        argv = ["train", "--data", str(shared_mapping), "--out", str(target), "--preset", "tiny", "--max-steps", "1"]
    else:
        argv = ["synth", "train", "--data", str(shared_data / "tabformer" / "User0_credit_card_transactions.csv"),
                "--out", str(target), "--preset", "tiny", "--max-steps", "1"]
    assert main(argv + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert str(target) in err[-1] and "not a folder" in err[-1], err
    assert target.read_text() == "keep me"


def test_engine_train_into_an_existing_file_is_a_checkpoint_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    mcfg, cfg, train_ds, val_ds = _setup()
    with pytest.raises(CheckpointError, match="not a folder"):
        train(mcfg, cfg, train_ds, val_ds, target, progress=False)


# -- 10. run.json records file data sources by absolute path ---------------------------------------

def test_run_json_records_the_data_file_as_an_absolute_path(tmp_path, shared_mapping, monkeypatch):
    monkeypatch.chdir(shared_mapping.parent)
    out = tmp_path / "run"
    assert main(["train", "--data", shared_mapping.name, "--out", str(out), "--preset", "tiny",
                 "--max-steps", "1", "--eval-every", "1", "--no-progress"]) == 0
    data = RunDir(out).read_info()["data"]
    assert Path(data).is_absolute() and Path(data) == shared_mapping.resolve()


def test_synth_run_json_records_the_data_file_as_an_absolute_path(tmp_path, shared_data, monkeypatch):
    src = shared_data / "tabformer" / "User0_credit_card_transactions.csv"
    monkeypatch.chdir(src.parent)
    out = tmp_path / "run"
    assert main(["synth", "train", "--data", src.name, "--out", str(out), "--preset", "tiny",
                 "--max-steps", "1", "--eval-every", "1", "--no-progress"]) == 0
    assert RunDir(out).read_info()["data"] == str(src.resolve())


def test_named_data_sources_stay_names():
    from forecaster.market.run import data_source_spec

    for name in ("embedded", "online", "store"):
        assert data_source_spec(name) == name
    assert data_source_spec("x/panel.csv") == str(Path("x/panel.csv").resolve())


# -- 12. leftovers of a killed run are cleaned up by the next run ------------------------------------

def test_leftovers_of_a_kill_are_removed_by_the_next_run(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup()
    with pytest.raises(KeyboardInterrupt):
        train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False,
              on_step=lambda s, l: s == 1 and signal.raise_signal(signal.SIGINT))
    run = RunDir(tmp_path / "run")
    assert run.latest()["step"] == 2
    # what a SIGKILL in the middle of later writes leaves behind
    half = run.step_dir(3)
    (half / "deepspeed").mkdir(parents=True)
    (half / "model.safetensors").write_bytes(b"partial")
    stray = [run.path / ".best.safetensors.abc123.tmp", run.ckpt_root / ".latest.json.x1y2.tmp",
             run.path / ".metrics.jsonl.q9.tmp"]
    for p in stray:
        p.write_bytes(b"half")
    keep = run.path / "notes.tmp"  # not one of ours: left alone
    keep.write_text("mine")
    res = train(mcfg, cfg, train_ds, val_ds, run.path, progress=False)
    assert res.step == 4
    assert not half.exists() and not any(p.exists() for p in stray)
    assert keep.exists()
    assert sorted(p.name for p in run.ckpt_root.iterdir()) == ["latest.json", run.step_dir(4).name]


def test_leftovers_are_removed_even_when_the_run_is_already_finished(tmp_path):
    mcfg, cfg, train_ds, val_ds = _setup()
    train(mcfg, cfg, train_ds, val_ds, tmp_path / "run", progress=False)
    run = RunDir(tmp_path / "run")
    run.step_dir(9).mkdir()
    (run.path / ".best.safetensors.zz.tmp").write_bytes(b"half")
    assert train(mcfg, cfg, train_ds, val_ds, run.path, progress=False).reason == "already_finished"
    assert not run.step_dir(9).exists() and not (run.path / ".best.safetensors.zz.tmp").exists()


def test_a_real_sigkill_mid_training_is_cleaned_up(tmp_path):
    """A child process trains and SIGKILLs itself just after a temporary file appears."""
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from tests.test_hardening_checkpoint import _setup\n"
        "from forecaster.core.training.engine import train\n"
        "mcfg, cfg, tr, va = _setup(max_steps=6)\n"
        "def on_step(step, loss):\n"
        "    if step == 3:\n"
        "        run = Path(sys.argv[1])\n"
        "        (run / 'checkpoint' / 'step-0000004').mkdir()\n"
        "        (run / '.best.safetensors.k1.tmp').write_bytes(b'half')\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "train(mcfg, cfg, tr, va, sys.argv[1], progress=False, on_step=on_step)\n")
    run = RunDir(tmp_path / "run")
    proc = subprocess.run([sys.executable, "-c", script, str(run.path), str(REPO)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert run.latest()["step"] == 2 and run.step_dir(4).exists()
    mcfg, cfg, train_ds, val_ds = _setup(max_steps=6)
    assert train(mcfg, cfg, train_ds, val_ds, run.path, progress=False).step == 6
    assert not (run.path / ".best.safetensors.k1.tmp").exists()
    assert [p.name for p in run.ckpt_root.glob("step-*")] == [run.step_dir(6).name]
