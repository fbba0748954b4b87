"""Run directories, atomic checkpoints, resume and refusal.

Layout of a run directory::

    RUN_DIR/
      model_config.json     GPTConfig
      train_config.json     TrainConfig
      tokenizer.json        the fitted tokenizer (written by the CLI)
      run.json              tokenizer fingerprint, data source, as-of date, train/val ranges
      metrics.jsonl         metrics history (see metrics.py)
      best.safetensors      weights with the lowest validation loss (what forecasts use)
      checkpoint/
        latest.json         {"step", "dir", "finished", "reason"}: the commit point
        step-000120/
          model.safetensors weights after 120 optimizer steps
          optimizer.pt      torch engine: optimizer + scheduler state (loaded weights_only=True)
          deepspeed/        DeepSpeed engine: its own per-rank optimizer/ZeRO state
          state.json        trainer state + sha256 of every file in the folder

A checkpoint is written into a fresh ``step-*`` folder, its files are hashed into
``state.json``, and only then is ``latest.json`` replaced atomically, so a kill at
any moment leaves the previous checkpoint intact. On load every hash is checked
first: a corrupt or truncated file is refused with a message, never unpickled.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch

from data_sources.atomic import atomic_path, write_text
from data_sources.errors import UserError
from forecaster.model import GPT, GPTConfig


class CheckpointError(UserError):
    """A run directory or checkpoint that cannot be used (corrupt, or from another tokenizer/config)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(model: GPT, path: Path) -> None:
    """Atomically write the model weights as safetensors (fp32 copies; a tied matrix is stored once).

    The tensors are copied first: under ZeRO the parameters are views into flat
    buffers, which safetensors refuses to save as they are.
    """
    from safetensors.torch import save_file

    tensors = {name: p.detach().to("cpu", dtype=torch.float32, copy=True).contiguous()
               for name, p in model.named_parameters()}  # named_parameters skips tied duplicates
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})


def load_weights(model: GPT, path: Path) -> None:
    """Load safetensors weights into ``model``; a corrupt or mismatching file is a ``CheckpointError``."""
    from safetensors.torch import load_file

    if not Path(path).exists():
        raise CheckpointError(f"no weights at {path}")
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for bad headers / truncation
        raise CheckpointError(f"cannot read weights {path} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                              "the file is corrupt") from None
    params = dict(model.named_parameters())
    if set(tensors) != set(params):
        raise CheckpointError(f"weights {path} do not fit this model: missing {sorted(set(params) - set(tensors))}, "
                              f"unexpected {sorted(set(tensors) - set(params))}")
    with torch.no_grad():
        for name, p in params.items():
            if tensors[name].shape != p.shape:
                raise CheckpointError(f"weights {path}: {name} has shape {tuple(tensors[name].shape)}, "
                                      f"the model expects {tuple(p.shape)}")
            p.copy_(tensors[name])


class RunDir:
    """Paths and metadata of one training run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    model_config = property(lambda self: self.path / "model_config.json")
    train_config = property(lambda self: self.path / "train_config.json")
    tokenizer = property(lambda self: self.path / "tokenizer.json")
    run_info = property(lambda self: self.path / "run.json")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    best_weights = property(lambda self: self.path / "best.safetensors")
    ckpt_root = property(lambda self: self.path / "checkpoint")
    latest_file = property(lambda self: self.path / "checkpoint" / "latest.json")

    # -- metadata -------------------------------------------------------------------------

    def write_metadata(self, model_cfg: GPTConfig, train_cfg, info: dict) -> None:
        """Write the configs and run info (rank 0, at the start of a fresh run)."""
        write_text(self.model_config, model_cfg.to_json())
        write_text(self.train_config, train_cfg.to_json())
        write_text(self.run_info, json.dumps(info, indent=2, sort_keys=True, default=str))

    def read_info(self) -> dict:
        return _read_json(self.run_info)

    def read_model_config(self) -> GPTConfig:
        try:
            return GPTConfig.from_json(self.model_config.read_text())
        except FileNotFoundError:
            raise CheckpointError(f"{self.path} is not a run directory: no model_config.json") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{self.model_config} is not valid JSON ({exc})") from None

    def check_compatible(self, model_cfg: GPTConfig, train_cfg, fingerprint: str) -> None:
        """Refuse to resume a run that was started with another tokenizer, model or training setup."""
        saved_fp = self.read_info().get("tokenizer_fingerprint")
        if saved_fp != fingerprint:
            raise CheckpointError(
                f"the checkpoint in {self.path} was trained with another tokenizer "
                f"(fingerprint {saved_fp}, now {fingerprint}); use a new --out directory")
        saved_model = self.read_model_config()
        if saved_model != model_cfg:
            diff = {k: (v, getattr(model_cfg, k)) for k, v in saved_model.to_dict().items() if getattr(model_cfg, k) != v}
            raise CheckpointError(f"the run in {self.path} has another model config {diff}; use a new --out directory")
        from forecaster.training.config import TrainConfig

        saved_train = TrainConfig.from_json(self.train_config.read_text())
        free = {"max_minutes", "max_steps", "patience", "eval_every", "log_every", "checkpoint_every"}
        diff = {k: (v, getattr(train_cfg, k)) for k, v in saved_train.to_dict().items()
                if k not in free and getattr(train_cfg, k) != v}
        if diff:
            raise CheckpointError(f"cannot resume {self.path} with changed training options {diff} (saved, now); "
                                  "use the saved options or a new --out directory")

    def check_tokenizer(self, fingerprint: str) -> None:
        """Refuse a run whose tokenizer differs from the one the caller will decode with."""
        saved = self.read_info().get("tokenizer_fingerprint")
        if saved != fingerprint:
            raise CheckpointError(f"the model in {self.path} was trained with another tokenizer "
                                  f"(fingerprint {saved}, given {fingerprint})")

    # -- checkpoints ----------------------------------------------------------------------

    def latest(self) -> dict | None:
        """The committed checkpoint record, or None when there is none yet."""
        if not self.latest_file.exists():
            return None
        return _read_json(self.latest_file)

    def step_dir(self, step: int) -> Path:
        return self.ckpt_root / f"step-{step:07d}"

    def prepare_step_dir(self, step: int) -> Path:
        """An empty folder for the checkpoint of ``step`` (a half-written earlier one is removed)."""
        d = self.step_dir(step)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def commit(self, step: int, state: dict, finished: bool = False, reason: str = "") -> None:
        """Hash the files of the step folder into state.json, then atomically point latest.json at it."""
        d = self.step_dir(step)
        files = {str(p.relative_to(d)): sha256_file(p) for p in sorted(d.rglob("*"))
                 if p.is_file() and p.name != "state.json"}
        write_text(d / "state.json", json.dumps({**state, "step": step, "files": files}, indent=2, sort_keys=True))
        write_text(self.latest_file, json.dumps(
            {"step": step, "dir": d.name, "finished": finished, "reason": reason}, indent=2))
        for old in self.ckpt_root.glob("step-*"):  # older checkpoints are superseded
            if old != d:
                shutil.rmtree(old, ignore_errors=True)

    def load_state(self) -> tuple[Path, dict] | None:
        """``(step_dir, state)`` of the committed checkpoint after verifying every file's hash."""
        rec = self.latest()
        if rec is None:
            return None
        d = self.ckpt_root / rec["dir"]
        state = _read_json(d / "state.json")
        for rel, digest in state["files"].items():
            p = d / rel
            if not p.exists():
                raise CheckpointError(f"checkpoint file {p} is missing; delete {self.ckpt_root} to start over")
            if sha256_file(p) != digest:
                raise CheckpointError(f"checkpoint file {p} is corrupt (checksum mismatch); "
                                      f"delete {self.ckpt_root} to start over")
        return d, state


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"missing {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc}); delete it or start a new run") from None


def load_model(run_dir: str | Path, which: str = "best", fingerprint: str | None = None) -> GPT:
    """The trained model of a run directory, in eval mode on the CPU.

    ``which`` is "best" (lowest validation loss) or "last" (the latest checkpoint).
    If ``fingerprint`` is given, a run trained with another tokenizer is refused.
    """
    run = RunDir(run_dir)
    cfg = run.read_model_config()
    if fingerprint is not None:
        run.check_tokenizer(fingerprint)
    model = GPT(cfg)
    if which == "best" and run.best_weights.exists():
        load_weights(model, run.best_weights)
    else:
        loaded = run.load_state()
        if loaded is None:
            raise CheckpointError(f"{run.path} has no weights yet; train first")
        load_weights(model, loaded[0] / "model.safetensors")
    return model.eval()


def load_tokenizer(run_dir: str | Path):
    """The run's tokenizer, refused if it is not the one the model was trained with."""
    from forecaster.tokenizer import TableTokenizer

    run = RunDir(run_dir)
    if not run.tokenizer.exists():
        raise CheckpointError(f"{run.path} has no tokenizer.json")
    try:
        tok = TableTokenizer.load(run.tokenizer)
    except UserError as exc:
        raise CheckpointError(f"cannot read {run.tokenizer}: {exc}") from None
    run.check_tokenizer(tok.fingerprint())
    return tok
