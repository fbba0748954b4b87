"""The training loop, shared by a plain torch backend and a DeepSpeed backend.

One loop (:func:`train`) drives either backend through the same three calls
(``train_step``, ``eval_loss``, ``save_state``/``load_state``), so both see the
same batches, learning rates and dropout seeds, and on one process in fp32 give
the same losses for the same seed.

* ``TorchBackend``: one process, ``torch.optim.AdamW``; the quickest CPU path.
* ``DeepSpeedBackend``: ``deepspeed.initialize`` with a JSON config (ZeRO stage
  0-3, bf16 where the GPU supports it, gradient clipping) and DeepSpeed's torch
  AdamW (``"torch_adam": true``), warm-up + cosine through a client scheduler.
  Run it as one process, under ``torchrun --standalone --nproc_per_node N`` or
  the ``deepspeed`` launcher; gloo on CPU, NCCL on GPUs. The process group, the
  collectives and the DeepSpeed config live in ``distributed``.

Determinism: the global batch of step ``s`` is drawn from ``(seed, s)`` and each
rank takes its slice; dropout is re-seeded from ``(seed, s, rank)`` every step;
the learning rate is a function of ``s``. Resuming restores weights and
optimizer state, so an interrupted run ends where an uninterrupted one does.

Both model kinds go through the same loop: a batch is a tuple of tensors and a
small loss adapter turns it into the model's call, ``model(x, y)`` for the flat
:class:`~forecaster.core.model.GPT` (``WindowDataset``), ``model(rows, features,
vocab=...)`` for the :class:`~forecaster.core.daymodel.DayGPT`
(``RowWindowDataset``), whose softmax covers each slot's valid ids only.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from foundation.atomic import atomic_path, write_text
from forecaster.core.daymodel import DayGPT, DayGPTConfig, SlotVocab
from forecaster.core.model import GPT, GPTConfig
from forecaster.core.run import RunDir, check_run_target
from forecaster.core.training.checkpoint import CheckpointError, load_weights, save_weights
from forecaster.core.training.config import ConfigError, TrainConfig
from forecaster.core.training.distributed import (
    DistInfo, all_reduce_sum, barrier, deepspeed_config, param_digests, setup_distributed,
)
from forecaster.core.training.metrics import MetricsLog
from forecaster.core.training.safe_load import install_safe_checkpoint_engine, load_torch_state
from forecaster.core.training.windows import RowWindowDataset, WindowDataset


__all__ = ["TorchBackend", "DeepSpeedBackend", "TrainResult", "train", "build_model"]

ModelConfig = Union[GPTConfig, DayGPTConfig]
Batch = tuple  # of tensors: (x, y) flat, (rows, features) day-level


# -- the two model kinds -------------------------------------------------------------------

def build_model(model_cfg: ModelConfig) -> GPT | DayGPT:
    """The model class of a config: ``GPT`` for a ``GPTConfig``, ``DayGPT`` for a ``DayGPTConfig``."""
    return DayGPT(model_cfg) if isinstance(model_cfg, DayGPTConfig) else GPT(model_cfg)


def flat_loss(model, batch: Batch) -> torch.Tensor:
    """The flat GPT's loss of ``(x, y)`` token windows."""
    x, y = batch
    return model(x, y)[1]


class DayLoss:
    """The DayGPT's loss of ``(rows (B, T, R), features (B, T, F))``, over each slot's valid ids."""

    def __init__(self, vocab: SlotVocab | None) -> None:
        self.vocab = vocab

    def __call__(self, model, batch: Batch) -> torch.Tensor:
        rows, features = batch
        return model(rows, features if features.shape[-1] else None, vocab=self.vocab)[1]


def _check_shapes(model_cfg: ModelConfig, train_ds: WindowDataset, valid_mask) -> None:
    """Refuse windows that do not fit the model (a caller's mistake, before any work)."""
    if train_ds.row_len != model_cfg.row_len:
        raise ConfigError(f"the windows have {train_ds.row_len} tokens per row but the model {model_cfg.row_len}; "
                          "build the model config from the same tokenizer as the windows")
    if isinstance(model_cfg, DayGPTConfig):
        if not isinstance(train_ds, RowWindowDataset):
            raise ConfigError("the day-level model trains on windows of whole rows: "
                              "make the datasets with make_datasets(..., rows=True)")
        if train_ds.context_rows > model_cfg.context_rows:
            raise ConfigError(f"windows of {train_ds.context_rows} context rows do not fit the model's "
                              f"context_rows {model_cfg.context_rows}; use fewer context rows")
        if train_ds.n_features != model_cfg.n_features:
            raise ConfigError(f"the windows carry {train_ds.n_features} features per row but the model reads "
                              f"{model_cfg.n_features}; build the model config with the windows' feature count")
        if valid_mask is not None and tuple(np.shape(valid_mask)) != (model_cfg.row_len, model_cfg.vocab_size):
            raise ConfigError(f"valid_mask {tuple(np.shape(valid_mask))} is not (row_len, vocab_size) = "
                              f"{(model_cfg.row_len, model_cfg.vocab_size)}; pass the tokenizer's valid_mask()")
        return
    if isinstance(train_ds, RowWindowDataset):
        raise ConfigError("the flat model trains on flat token windows: make the datasets without rows=True")
    if train_ds.context_rows * model_cfg.row_len > model_cfg.block_size:
        raise ConfigError(f"windows of {train_ds.context_rows} rows x {model_cfg.row_len} tokens do not fit the model's "
                          f"block_size {model_cfg.block_size}; use fewer context rows or a larger block_size")


# -- backends ------------------------------------------------------------------------------

def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 when asked, or on "auto" when the GPU supports it; CPU runs stay fp32 on "auto"."""
    if precision == "bf16":
        return True
    return precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices (linear weights, embeddings); none on norms and biases."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    return lambda step: cfg.lr_at(step) / cfg.lr


class TorchBackend:
    """Plain single-process PyTorch: AdamW, clip, LambdaLR; bf16 autocast on GPUs when enabled."""

    def __init__(self, model: GPT | DayGPT, cfg: TrainConfig, dist: DistInfo,
                 loss_of: Callable[..., torch.Tensor] = flat_loss) -> None:
        self.model = model.to(dist.device)
        self.cfg = cfg
        self.loss_of = loss_of
        self.device = dist.device
        self.bf16 = use_bf16(cfg.precision, dist.device)
        self.optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                           betas=(cfg.beta1, cfg.beta2), eps=1e-8)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_lambda(cfg))

    @property
    def module(self) -> GPT:
        return self.model

    def full_weights_context(self):
        return contextlib.nullcontext()

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def train_step(self, micro_batches: list[Batch]) -> float:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for batch in micro_batches:
            with self._autocast():
                loss = self.loss_of(self.model, batch)
            (loss / len(micro_batches)).backward()
            total += loss.item()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return total / len(micro_batches)

    @torch.no_grad()
    def eval_loss(self, batch: Batch) -> float:
        self.model.eval()
        with self._autocast():
            loss = self.loss_of(self.model, batch)
        return loss.item()

    def save_state(self, step_dir: Path, dist: DistInfo) -> None:
        with atomic_path(step_dir / "optimizer.pt") as tmp:
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}, tmp)

    def load_state(self, step_dir: Path) -> None:
        path = step_dir / "optimizer.pt"
        if not path.exists():
            raise CheckpointError(f"{step_dir} has no optimizer.pt: it was written by another engine; "
                                  "resume with the engine the run started with")
        state = load_torch_state(path, map_location=self.device)
        if not isinstance(state, dict) or not {"optimizer", "scheduler"} <= set(state):
            raise CheckpointError(f"{path} is not an optimizer state of this program; "
                                  "delete the run's checkpoint folder to start over")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


class DeepSpeedBackend:
    """``deepspeed.initialize`` engine; the learning-rate schedule is a client LambdaLR."""

    def __init__(self, model: GPT | DayGPT, cfg: TrainConfig, dist: DistInfo,
                 loss_of: Callable[..., torch.Tensor] = flat_loss) -> None:
        import deepspeed  # deferred: importing it takes seconds and probes CUDA; only this backend needs it

        self.cfg = cfg
        self.loss_of = loss_of
        self.device = dist.device
        self.bf16 = use_bf16(cfg.precision, dist.device)
        self.config = deepspeed_config(cfg, cfg.micro_batch(dist.world), self.bf16)
        lr_lambda = _lr_lambda(cfg)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, model_parameters=param_groups(model, cfg.weight_decay), config=self.config,
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda))
        install_safe_checkpoint_engine(self.engine)  # resume never unpickles code

    @property
    def module(self) -> GPT:
        return self.engine.module

    def train_step(self, micro_batches: list[Batch]) -> float:
        self.engine.train()
        total = 0.0
        for batch in micro_batches:
            loss = self.loss_of(self.engine, batch)
            self.engine.backward(loss)  # scales by 1/grad_accum itself
            self.engine.step()          # steps the optimizer and scheduler at the accumulation boundary
            total += loss.item()
        return total / len(micro_batches)

    @torch.no_grad()
    def eval_loss(self, batch: Batch) -> float:
        self.engine.eval()
        loss = self.loss_of(self.engine, batch)
        return loss.item()

    def full_weights_context(self):
        """Context in which ``module``'s parameters are whole (ZeRO-3 partitions them); collective."""
        if self.cfg.zero_stage == 3:
            import deepspeed  # deferred, as in __init__ (already loaded by then)

            return deepspeed.zero.GatheredParameters(list(self.engine.module.parameters()), modifier_rank=None)
        return contextlib.nullcontext()

    def save_state(self, step_dir: Path, dist: DistInfo) -> None:
        self.engine.save_checkpoint(str(step_dir / "deepspeed"), tag="state", save_latest=False)

    def load_state(self, step_dir: Path) -> None:
        path = step_dir / "deepspeed"
        if not path.exists():
            raise CheckpointError(f"{step_dir} has no deepspeed/ state: it was written by another engine; "
                                  "resume with the engine the run started with")
        load_path, _ = self.engine.load_checkpoint(str(path), tag="state", load_optimizer_states=True,
                                                   load_lr_scheduler_states=True)
        if load_path is None:
            raise CheckpointError(f"DeepSpeed could not load the checkpoint in {path}")


# -- the loop ------------------------------------------------------------------------------

@dataclass
class TrainResult:
    step: int                    # optimizer steps done
    train_loss: float            # mean train loss of the last logged interval
    best_val_loss: float
    val_loss: float              # last validation loss
    reason: str                  # "max_steps", "early_stop", "time", "interrupted", "already_finished"
    model: GPT | DayGPT | None = None  # the trained module (last weights), on its device


def _seed_for(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 7919 + rank) % (2**63 - 1)


class _StopFlag:
    """Turns SIGINT into a flag the loop checks between steps (so a checkpoint is consistent)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(model_cfg: ModelConfig, cfg: TrainConfig, train_ds: WindowDataset, val_ds: WindowDataset,
          run_dir: str | Path, info: dict | None = None, fingerprint: str = "",
          progress: bool = True, on_step: Callable[[int, float], None] | None = None,
          valid_mask=None) -> TrainResult:
    """Train (or resume) a GPT or a DayGPT on row windows and write everything to ``run_dir``.

    Parameters
    ----------
    model_cfg : the model shape. A ``GPTConfig`` trains the flat GPT on ``WindowDataset``
        windows (``block_size`` must hold ``context_rows * row_len`` tokens); a
        ``DayGPTConfig`` trains the DayGPT on ``RowWindowDataset`` windows (their
        ``context_rows`` at most the model's, the same number of features).
    cfg : the training configuration; ``cfg.engine`` picks the backend.
    train_ds, val_ds : windows before and after the time split.
    run_dir : run directory; an existing checkpoint in it is resumed (after checking
        that tokenizer fingerprint and configs match).
    info : data description for ``run.json`` (source, as-of, date ranges...).
    fingerprint : the tokenizer fingerprint; a checkpoint with another one is refused.
    on_step : called as ``on_step(step_done, train_loss)`` after every optimizer step.
    valid_mask : (row_len, vocab_size) bool, the tokenizer's valid ids per slot; the
        DayGPT's softmax covers only them (None: the whole vocabulary). Unused by the flat GPT.

    A Ctrl-C (SIGINT) finishes the current step, writes a checkpoint and raises
    ``KeyboardInterrupt``; rerunning the same command resumes.

    Rank 0 holds the run folder's lock (``RunDir.lock``) for the whole run: a second
    process training into the same folder is refused with the holder's PID. It
    first removes what a killed earlier run left (uncommitted step folders,
    temporary files).
    """
    _check_shapes(model_cfg, train_ds, valid_mask)
    check_run_target(run_dir)
    dist = setup_distributed(cfg.engine)
    run = RunDir(run_dir)
    with run.lock() if dist.is_main else contextlib.nullcontext():
        if dist.is_main:
            run.clean_leftovers()
        return _train_locked(model_cfg, cfg, train_ds, val_ds, run, dist, info, fingerprint, progress, on_step,
                             valid_mask)


def _train_locked(model_cfg: ModelConfig, cfg: TrainConfig, train_ds: WindowDataset, val_ds: WindowDataset,
                  run: RunDir, dist: DistInfo, info: dict | None, fingerprint: str, progress: bool,
                  on_step: Callable[[int, float], None] | None, valid_mask=None) -> TrainResult:
    """The body of :func:`train`, with the run folder held by rank 0."""
    micro = cfg.micro_batch(dist.world)
    metrics = MetricsLog(run.metrics, enabled=dist.is_main)

    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and for both engines
    model = build_model(model_cfg)
    kind = "day" if isinstance(model, DayGPT) else "flat"
    if kind == "day":
        vocab = SlotVocab(torch.as_tensor(valid_mask)).to(dist.device) if valid_mask is not None else None
        loss_of: Callable[..., torch.Tensor] = DayLoss(vocab)
    else:
        loss_of = flat_loss

    latest = run.latest()
    if latest is not None:
        run.check_compatible(model_cfg, cfg, fingerprint)
        saved_world = run.read_info().get("world_size", 1)
        if cfg.engine == "deepspeed" and cfg.zero_stage > 0 and saved_world != dist.world:
            raise CheckpointError(f"the checkpoint in {run.path} holds ZeRO-{cfg.zero_stage} optimizer shards of "
                                  f"{saved_world} process(es); resume it with {saved_world}, not {dist.world}")
        if latest.get("finished") and latest["step"] >= cfg.max_steps or latest.get("reason") == "early_stop":
            state = run.load_state()[1]
            return TrainResult(latest["step"], state.get("train_loss", math.nan), state["best_val"],
                               state.get("val_loss", math.nan), "already_finished")
    elif dist.is_main:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_metadata(model_cfg, cfg, {**(info or {}), "model": kind, "tokenizer_fingerprint": fingerprint,
                                            "engine": cfg.engine, "world_size": dist.world,
                                            "train_range": train_ds.time_range(), "val_range": val_ds.time_range(),
                                            "train_rows": train_ds.n_rows, "val_rows": val_ds.n_rows})
    barrier(dist)

    # trainer state saved with every checkpoint; loss_acc/n_acc: the train-loss interval not yet logged
    state: dict = {"best_val": math.inf, "bad_evals": 0, "val_loss": math.nan, "train_loss": math.nan,
                   "loss_acc": 0.0, "n_acc": 0}
    start = 0
    loaded = run.load_state() if latest is not None else None
    if loaded is not None:
        step_dir, state = loaded
        load_weights(model, step_dir / "model.safetensors")
        start = state["step"]
    backend_cls = DeepSpeedBackend if cfg.engine == "deepspeed" else TorchBackend
    backend = backend_cls(model, cfg, dist, loss_of)
    if loaded is not None:
        backend.load_state(loaded[0])
        metrics.truncate_after(start)
    if dist.is_main and cfg.engine == "deepspeed":
        write_text(run.path / "deepspeed_config.json", json.dumps(backend.config, indent=2))

    tokens_per_step = cfg.batch_size * train_ds.targets_per_window
    # no validation windows (val_fraction 0, a refit): no evaluation; the weights at the stop are the best
    has_val = len(val_ds) > 0
    eval_idx = val_ds.eval_indices(cfg.eval_windows) if has_val else np.zeros(0, dtype=np.int64)
    n_eval = max(dist.world, len(eval_idx) // dist.world * dist.world)  # equal shares: ZeRO-3 needs lockstep
    eval_idx = eval_idx[:n_eval] if len(eval_idx) >= n_eval else eval_idx.repeat(n_eval)[:n_eval]
    my_eval = eval_idx[dist.rank::dist.world]

    def evaluate() -> float:
        tot = torch.zeros(2, dtype=torch.float64)
        for i in range(0, len(my_eval), micro):
            batch = tuple(t.to(dist.device) for t in val_ds.batch(my_eval[i:i + micro]))
            tot[0] += backend.eval_loss(batch) * len(batch[0])
            tot[1] += len(batch[0])
        tot = all_reduce_sum(tot, dist)
        return (tot[0] / tot[1]).item()

    def checkpoint(step: int, finished: bool = False, reason: str = "") -> None:
        step_dir = run.step_dir(step)
        if dist.is_main:
            run.prepare_step_dir(step)
        barrier(dist)
        backend.save_state(step_dir, dist)
        with backend.full_weights_context():
            if dist.is_main:
                save_weights(backend.module, step_dir / "model.safetensors")
        barrier(dist)
        if dist.is_main:
            run.commit(step, state, finished=finished, reason=reason)
        barrier(dist)

    def save_best() -> None:
        with backend.full_weights_context():
            if dist.is_main:
                save_weights(backend.module, run.best_weights)

    bar = None
    if progress and dist.is_main:
        bar = tqdm(total=cfg.max_steps, initial=start, unit="step", dynamic_ncols=True, disable=None)  # no bar off a terminal
    t0 = time.perf_counter()
    t_log = t0
    step, reason = start, "max_steps"
    with _StopFlag() as stop:
        while step < cfg.max_steps:
            torch.manual_seed(_seed_for(cfg.seed, step, dist.rank))  # dropout
            idx = train_ds.train_indices(step, cfg.batch_size, cfg.seed)  # the global batch
            mine = idx[dist.rank * micro * cfg.grad_accum:(dist.rank + 1) * micro * cfg.grad_accum]
            micro_batches = [tuple(t.to(dist.device) for t in train_ds.batch(mine[i * micro:(i + 1) * micro]))
                             for i in range(cfg.grad_accum)]
            loss = backend.train_step(micro_batches)
            over_time = cfg.max_minutes is not None and time.perf_counter() - t0 > 60 * cfg.max_minutes
            # one collective per step: the mean loss and whether any rank must stop
            red = all_reduce_sum(torch.tensor([loss, float(over_time), float(stop.requested)],
                                               dtype=torch.float64), dist)
            loss = red[0].item() / dist.world
            step += 1
            state["loss_acc"] += loss
            state["n_acc"] += 1
            if on_step is not None:
                on_step(step, loss)
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                now = time.perf_counter()
                tps = state["n_acc"] * tokens_per_step / max(now - t_log, 1e-9)
                state["train_loss"] = state["loss_acc"] / state["n_acc"]
                metrics.append({"step": step, "split": "train", "loss": state["train_loss"],
                                "lr": cfg.lr_at(step - 1), "tokens_per_s": tps, "elapsed_s": now - t0})
                if bar is not None:
                    bar.set_postfix(loss=f"{state['train_loss']:.4f}", tok_s=f"{tps:,.0f}",
                                    val=f"{state['val_loss']:.4f}")
                t_log, state["loss_acc"], state["n_acc"] = now, 0.0, 0
            if bar is not None:
                bar.update(1)
            early = False
            # evaluate on schedule, at the end, and when the time budget ends the run (so it has a best model)
            if has_val and (step % cfg.eval_every == 0 or step == cfg.max_steps or (red[1] > 0 and red[2] == 0)):
                val = evaluate()
                state["val_loss"] = val
                metrics.append({"step": step, "split": "val", "loss": val})
                if val < state["best_val"]:
                    state["best_val"], state["bad_evals"] = val, 0
                    save_best()
                else:
                    state["bad_evals"] += 1
                    early = cfg.patience > 0 and state["bad_evals"] >= cfg.patience
            if red[2] > 0:
                reason = "interrupted"
            elif red[1] > 0:
                reason = "time"
            elif early:
                reason = "early_stop"
            stopping = reason != "max_steps" or step == cfg.max_steps
            if stopping and not has_val and reason != "interrupted":
                save_best()
            if stopping and dist.world > 1:
                state["param_sha256_by_rank"] = param_digests(backend, dist)
                assert len(set(state["param_sha256_by_rank"])) == 1, (
                    f"ranks disagree on the weights after step {step}: {state['param_sha256_by_rank']}")
            if stopping or step % cfg.checkpoint_every == 0:
                checkpoint(step, finished=stopping and reason != "interrupted", reason=reason if stopping else "")
            if stopping:
                break
    if bar is not None:
        bar.close()
    if reason == "interrupted":
        raise KeyboardInterrupt(f"interrupted after step {step}; checkpoint saved in {run.ckpt_root}")
    return TrainResult(step, state["train_loss"], state["best_val"], state["val_loss"], reason, backend.module)
