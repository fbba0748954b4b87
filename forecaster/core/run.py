"""One training run folder: its layout, its lock, its metadata, its checkpoints, its model and tokenizer.

Layout of a run directory::

    RUN_DIR/
      model_config.json     GPTConfig, or DayGPTConfig when run.json says "model": "day"
      train_config.json     TrainConfig
      tokenizer.json        the fitted tokenizer
      inputs.json           day-level model only: the per-row input features' names and
                            normalisation (a domain's dict, stored as given)
      run.json              model kind ("flat" when absent), tokenizer fingerprint, data source,
                            as-of date, train/val ranges (``RunDir.info``)
      metrics.jsonl         metrics history (see training/metrics.py)
      best.safetensors      weights with the lowest validation loss (what forecasts use)
      train.lock            held (flock) by the one process training into the folder; records its PID
      checkpoint/
        latest.json         {"step", "dir", "finished", "reason"}: the commit point
        step-000120/
          model.safetensors weights after 120 optimizer steps
          optimizer.pt      torch engine: optimizer + scheduler state (loaded weights_only=True)
          deepspeed/        DeepSpeed engine: its own per-rank optimizer/ZeRO state (loaded
                            weights_only=True too, see training/safe_load.py)
          state.json        trainer state + sha256 of every file in the folder

A checkpoint is written into a fresh ``step-*`` folder, its files are hashed into
``state.json``, and only then is ``latest.json`` replaced atomically, so a kill at
any moment leaves the previous checkpoint intact. On load every hash is checked
first: a corrupt or truncated file is refused with a message, never unpickled.
The weight files themselves (their embedded checksum, the finiteness check) are
``training/checkpoint.py``'s.

One process trains into a run folder at a time: :meth:`RunDir.lock` holds an
``flock`` on ``train.lock`` (released by the kernel when the holder dies, so a
killed run leaves no stale lock) and records the holder's PID and host for the
message a second process gets. The next run of the same command then removes
what a kill left behind (:meth:`RunDir.clean_leftovers`).

This class knows file names, not domains: what ``run.json`` says about a market
panel is ``forecaster.market.run.PanelRun``'s.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
from pathlib import Path
from typing import ContextManager, Iterator

from foundation.atomic import OutputError, path_kind, write_text
from foundation.errors import UserError
from forecaster.core.daymodel import DayGPT, DayGPTConfig
from forecaster.core.model import GPT, GPTConfig
from forecaster.core.tokenizer import TableTokenizer
from forecaster.core.training.checkpoint import CheckpointError, load_weights, sha256_file
from forecaster.core.training.config import TrainConfig

# Training options a resumed run may change (budgets and logging, not what the numbers depend on).
RESUMABLE_OPTIONS = {"max_minutes", "max_steps", "patience", "eval_every", "log_every", "checkpoint_every"}

# run.json's "model" -> the config class in model_config.json (a run without the key is flat)
MODEL_CONFIGS = {"flat": GPTConfig, "day": DayGPTConfig}


def check_run_target(path: str | Path, option: str = "--out") -> Path:
    """Refuse a run folder path that exists and is not a folder (a file, a device, a pipe)."""
    path = Path(path)
    try:
        kind = path_kind(path, option)
    except OutputError as exc:
        raise CheckpointError(str(exc)) from None
    if kind not in (None, "folder"):
        what = "file" if kind == "file" else "device or special file"
        raise CheckpointError(f"{option} {path} is an existing {what}, not a folder; give a run folder")
    return path


def is_main_process() -> bool:
    """True unless this is a worker of a launcher (torchrun and deepspeed set ``RANK``) other than rank 0."""
    return int(os.environ.get("RANK", "0")) == 0


# Run folders this process has locked -> nesting depth (a caller locks, then the engine
# locks again; flock would refuse a second open file description in the same process).
_held_locks: dict[Path, int] = {}


class RunDir:
    """Paths, lock, metadata, checkpoints, model and tokenizer of one training run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    model_config = property(lambda self: self.path / "model_config.json")
    train_config = property(lambda self: self.path / "train_config.json")
    tokenizer = property(lambda self: self.path / "tokenizer.json")
    inputs = property(lambda self: self.path / "inputs.json")
    run_info = property(lambda self: self.path / "run.json")
    calibration = property(lambda self: self.path / "calibration.json")  # forecaster.market.calibration
    catalog_file = property(lambda self: self.path / "catalog.yaml")  # the run's user series (data_sources.user_catalog)
    metrics = property(lambda self: self.path / "metrics.jsonl")
    best_weights = property(lambda self: self.path / "best.safetensors")
    ckpt_root = property(lambda self: self.path / "checkpoint")
    latest_file = property(lambda self: self.path / "checkpoint" / "latest.json")
    lock_file = property(lambda self: self.path / "train.lock")

    # -- one process at a time ----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for training (creating it); another holder is a ``CheckpointError`` naming its PID.

        Re-entrant within a process. Under DeepSpeed/torchrun only rank 0 takes it.
        """
        check_run_target(self.path)
        key = self.path.resolve()
        if key in _held_locks:
            _held_locks[key] += 1
            try:
                yield
            finally:
                _held_locks[key] -= 1
            return
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o666)  # not inherited by child processes
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
                who = f"PID {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "") if holder else "PID unknown"
                raise CheckpointError(f"{self.path} is in use by another training process ({who}); wait for it "
                                      "to finish, stop it, or choose another --out") from None
            except OSError as exc:
                raise CheckpointError(f"cannot lock {self.lock_file} ({exc.strerror}); "
                                      "use a run folder on a local disk") from None
            # we hold it: whatever PID the file names is gone (the kernel drops a dead holder's flock)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
            _held_locks[key] = 1
            try:
                yield
            finally:
                del _held_locks[key]
        finally:
            os.close(fd)  # releases the flock

    def lock_if_main(self) -> ContextManager[None]:
        """:meth:`lock` in the main process, nothing in the others (torchrun and deepspeed set ``RANK``)."""
        return self.lock() if is_main_process() else contextlib.nullcontext()

    def clean_leftovers(self) -> list[Path]:
        """Remove what a killed run left: uncommitted ``step-*`` folders and temporary ``.*.tmp`` files.

        Call it holding :meth:`lock`. A corrupt ``latest.json`` leaves the step folders
        alone (loading then says what is wrong). Returns the removed paths.
        """
        removed: list[Path] = []
        try:
            rec = self.latest()
        except CheckpointError:
            rec = False
        if rec is not False and self.ckpt_root.is_dir():
            keep = rec.get("dir") if isinstance(rec, dict) else None
            for d in self.ckpt_root.glob("step-*"):
                if d.name != keep and d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d, ignore_errors=True)
                    removed.append(d)
        for folder in (self.path, self.ckpt_root):  # atomic_path's temporary files: .NAME.RANDOM.tmp
            if folder.is_dir():
                for p in folder.glob(".*.tmp"):
                    if p.is_file() and not p.is_symlink():
                        p.unlink(missing_ok=True)
                        removed.append(p)
        return removed

    # -- metadata -------------------------------------------------------------------------

    def write_metadata(self, model_cfg: GPTConfig | DayGPTConfig, train_cfg: TrainConfig, info: dict) -> None:
        """Write the configs and run info (rank 0, at the start of a fresh run)."""
        write_text(self.model_config, model_cfg.to_json())
        write_text(self.train_config, train_cfg.to_json())
        write_text(self.run_info, json.dumps(info, indent=2, sort_keys=True, default=str))

    def read_info(self) -> dict:
        """``run.json`` as a dict; missing or corrupt is a ``CheckpointError``."""
        return _read_json(self.run_info)

    @property
    def info(self) -> dict:
        """``run.json`` as a dict (read on every access: training writes it)."""
        return self.read_info()

    def _read_config(self, path: Path, cls):
        try:
            return cls.from_json(path.read_text())
        except FileNotFoundError:
            raise CheckpointError(f"{self.path} is not a run directory: no {path.name}") from None
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
        except UserError as exc:  # a value out of bounds, an unknown key
            raise CheckpointError(f"{path}: {exc}") from None

    def model_kind(self) -> str:
        """``"flat"`` or ``"day"``: run.json's ``model`` (``"flat"`` for runs that predate the key)."""
        kind = self.read_info().get("model", "flat")
        if kind not in MODEL_CONFIGS:
            raise CheckpointError(f"{self.run_info} names an unknown model kind {kind!r}; "
                                  f"expected one of {', '.join(MODEL_CONFIGS)}")
        return kind

    def read_model_config(self) -> GPTConfig | DayGPTConfig:
        """``model_config.json`` as the config class of the run's model kind."""
        kind = self.model_kind() if self.run_info.exists() else "flat"
        return self._read_config(self.model_config, MODEL_CONFIGS[kind])

    # -- the input features of the day-level model ----------------------------------------

    def write_inputs(self, inputs: dict) -> None:
        """Write ``inputs.json`` (atomically; the folder is created): what a domain says about the row features."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.inputs, json.dumps(inputs, indent=2, sort_keys=True))

    def read_inputs(self) -> dict | None:
        """``inputs.json`` as a dict, None when the run has none (a flat model, or no features)."""
        if not self.inputs.exists():
            return None
        return _read_json(self.inputs)

    def read_train_config(self) -> TrainConfig:
        """The saved ``TrainConfig`` (e.g. to train another run like this one)."""
        return self._read_config(self.train_config, TrainConfig)

    def check_compatible(self, model_cfg: GPTConfig, train_cfg: TrainConfig, fingerprint: str) -> None:
        """Refuse to resume a run that was started with another tokenizer, model or training setup."""
        saved_fp = self.read_info().get("tokenizer_fingerprint")
        if saved_fp != fingerprint:
            raise CheckpointError(
                f"the checkpoint in {self.path} was trained with another tokenizer "
                f"(fingerprint {saved_fp}, now {fingerprint}); use a new --out directory")
        saved_model = self.read_model_config()
        if type(saved_model) is not type(model_cfg):
            raise CheckpointError(f"the run in {self.path} trained a {self.model_kind()} model, not this "
                                  f"{type(model_cfg).__name__}; use a new --out directory")
        if saved_model != model_cfg:
            diff = {k: (v, getattr(model_cfg, k)) for k, v in saved_model.to_dict().items() if getattr(model_cfg, k) != v}
            raise CheckpointError(f"the run in {self.path} has another model config {diff}; use a new --out directory")
        saved_train = self.read_train_config()
        diff = {k: (v, getattr(train_cfg, k)) for k, v in saved_train.to_dict().items()
                if k not in RESUMABLE_OPTIONS and getattr(train_cfg, k) != v}
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

    # -- the trained model and its tokenizer ----------------------------------------------

    def save_tokenizer(self, tok: TableTokenizer) -> None:
        """Write ``tokenizer.json`` (atomically; the folder is created)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tok.save(self.tokenizer)

    def load_tokenizer(self) -> TableTokenizer:
        """The run's tokenizer, refused (``CheckpointError``) if it is not the one the model was trained with."""
        if not self.tokenizer.exists():
            raise CheckpointError(f"{self.path} is not a trained run: it has no tokenizer.json")
        try:
            tok = TableTokenizer.load(self.tokenizer)
        except UserError as exc:
            raise CheckpointError(f"cannot read {self.tokenizer}: {exc}") from None
        self.check_tokenizer(tok.fingerprint())
        return tok

    def load_model(self, which: str = "best", fingerprint: str | None = None) -> GPT | DayGPT:
        """The trained model (a ``GPT``, or a ``DayGPT`` for a day-level run), in eval mode on the CPU.

        ``which`` is "best" (lowest validation loss) or "last" (the latest checkpoint).
        If ``fingerprint`` is given, a run trained with another tokenizer is refused.
        """
        cfg = self.read_model_config()
        if fingerprint is not None:
            self.check_tokenizer(fingerprint)
        model = DayGPT(cfg) if isinstance(cfg, DayGPTConfig) else GPT(cfg)
        if which == "best" and self.best_weights.exists():
            load_weights(model, self.best_weights)
        else:
            loaded = self.load_state()
            if loaded is None:
                raise CheckpointError(f"{self.path} has no weights yet; train first")
            load_weights(model, loaded[0] / "model.safetensors")
        return model.eval()

    def best_weights_sha256(self) -> str | None:
        """sha256 of ``best.safetensors`` (a forecast's provenance), None when there is none yet."""
        return sha256_file(self.best_weights) if self.best_weights.exists() else None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"missing {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc}); delete it or start a new run") from None


def load_model(run_dir: str | Path, which: str = "best", fingerprint: str | None = None) -> GPT | DayGPT:
    """``RunDir(run_dir).load_model(which, fingerprint)``."""
    return RunDir(run_dir).load_model(which, fingerprint)


def load_tokenizer(run_dir: str | Path) -> TableTokenizer:
    """``RunDir(run_dir).load_tokenizer()``."""
    return RunDir(run_dir).load_tokenizer()
