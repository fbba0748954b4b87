"""Processes for training: joining the process group, ranks, collectives and the DeepSpeed config.

The torch engine runs one process; the DeepSpeed engine runs one process, or
several under ``torchrun --standalone --nproc_per_node N`` or the ``deepspeed``
launcher (gloo on CPU, NCCL on GPUs). The training loop (``engine``) sees a
:class:`DistInfo` and the collectives below, and nothing of how the group was made.
"""
from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field

import torch
import torch.distributed as tdist

from forecaster.core.training.config import ConfigError, TrainConfig


@dataclass
class DistInfo:
    """This process's place in the group: ``rank`` of ``world``, its GPU index and device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def free_port() -> int:
    """A TCP port that is free right now (for MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_distributed(engine: str) -> DistInfo:
    """Join (or create) the process group for ``engine``; the torch engine runs one process only."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if engine == "torch":
        if world > 1:
            raise ConfigError("--engine torch runs one process; use --engine deepspeed under torchrun/deepspeed")
        return DistInfo(device=torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    import deepspeed  # deferred: importing it takes seconds and probes CUDA; only the deepspeed engine needs it

    if "RANK" not in os.environ:  # a plain `python` process: a group of one
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    cuda = torch.cuda.is_available()
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    return DistInfo(rank=int(os.environ["RANK"]), world=int(os.environ["WORLD_SIZE"]), local_rank=local_rank,
                    device=torch.device("cuda", local_rank) if cuda else torch.device("cpu"))


def all_reduce_sum(t: torch.Tensor, dist: DistInfo) -> torch.Tensor:
    """Sum of ``t`` over ranks, returned on the CPU (NCCL reduces on the GPU, so it travels there)."""
    if dist.world > 1:
        t = t.to(dist.device)
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t.cpu()


def barrier(dist: DistInfo) -> None:
    """Wait for every rank (a no-op on one process)."""
    if dist.world > 1:
        tdist.barrier()


def param_digests(backend, dist: DistInfo) -> list[str]:
    """sha256 of this rank's full weights, gathered from every rank (data parallel must keep them equal).

    ``backend`` is a training backend (``engine.TorchBackend`` or ``engine.DeepSpeedBackend``):
    its ``full_weights_context()`` makes ZeRO-3 parameters whole; collective.
    """
    h = hashlib.sha256()
    with backend.full_weights_context():
        for name, p in backend.module.named_parameters():
            h.update(name.encode())
            h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digests: list = [None] * dist.world
    tdist.all_gather_object(digests, h.hexdigest())
    return digests


def deepspeed_config(cfg: TrainConfig, micro_batch: int, bf16: bool) -> dict:
    """The DeepSpeed JSON config of a run (also written to the run directory)."""
    return {
        "train_batch_size": cfg.batch_size,
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": cfg.grad_accum,
        "gradient_clipping": cfg.grad_clip,
        "optimizer": {"type": "AdamW", "params": {
            "lr": cfg.lr, "betas": [cfg.beta1, cfg.beta2], "eps": 1e-8,
            "weight_decay": cfg.weight_decay, "torch_adam": True}},
        "zero_optimization": {"stage": cfg.zero_stage},
        "bf16": {"enabled": bf16},
        "steps_per_print": 1_000_000_000,
        "wall_clock_breakdown": False,
    }
