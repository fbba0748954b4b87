"""Loading torch-pickled training state without running code from it.

A ``.pt`` file is a pickle, and unpickling can call any function the file names
(``__reduce__``). The sha256 list in a checkpoint's ``state.json`` sits in the same
folder, so whoever can plant a file can also fix its hash: the hashes detect
corruption, not an attacker. So every pickle here is read with
``torch.load(weights_only=True)``, whose unpickler builds only tensors, plain
containers and an explicit allowlist of classes.

* :func:`load_torch_state` reads the torch engine's ``optimizer.pt``.
* :func:`install_safe_checkpoint_engine` replaces the checkpoint engine of a
  DeepSpeed engine (``engine.checkpoint_engine``, through which its
  ``load_checkpoint`` reads ``mp_rank_*_model_states.pt`` and every
  ``*_optim_states.pt``; DeepSpeed's own engine calls ``weights_only=False``) with
  one that loads ``weights_only=True``. The allowlist is the exact set of
  DeepSpeed classes its ZeRO checkpoints pickle (found by saving stage 0-3
  checkpoints and listing ``torch.serialization.get_unsafe_globals_in_checkpoint``);
  none of them runs code when rebuilt (an enum, a dataclass, a plain loss-scaler
  object). A file that names anything else is refused with one line.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from forecaster.core.training.checkpoint import CheckpointError


def _refusal(path, exc: BaseException) -> CheckpointError:
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    what = f"a Python object of type {found.group(1)}" if found else "data that is not plain tensors"
    return CheckpointError(f"checkpoint file {path} holds {what}; refusing to load it (it was not written by this "
                           "program, or is corrupt): delete the run's checkpoint folder to start over")


def load_torch_state(path: str | Path, map_location=None):
    """``torch.load(path, weights_only=True)``; anything but tensor data is a one-line ``CheckpointError``."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError) as exc:
        raise _refusal(path, exc) from None


def deepspeed_safe_globals() -> list:
    """The DeepSpeed classes its checkpoints pickle (besides tensors and containers)."""
    # deferred, as every deepspeed import: it takes seconds and probes CUDA; only its engine needs it
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [ZeroStageEnum, LossScaler, DynamicLossScaler, fragment_address]


def install_safe_checkpoint_engine(engine) -> None:
    """Make a ``deepspeed.initialize`` engine load its checkpoints with ``weights_only=True``.

    Saving is unchanged (DeepSpeed's ``TorchCheckpointEngine.save``). Refuses to
    proceed (assertion: our config never asks for them) if DeepSpeed chose another
    checkpoint engine or universal checkpoints, whose loaders this does not cover.
    """
    from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine  # deferred: see above

    assert type(engine.checkpoint_engine) is TorchCheckpointEngine, (
        f"unexpected DeepSpeed checkpoint engine {type(engine.checkpoint_engine).__name__}")
    assert not engine.load_universal_checkpoint(), "universal checkpoints load with weights_only=False"
    allowed = deepspeed_safe_globals()

    class SafeTorchCheckpointEngine(TorchCheckpointEngine):
        """DeepSpeed's torch checkpoint engine, loading with ``weights_only=True``."""

        def load(self, path: str, map_location=None):
            with torch.serialization.safe_globals(allowed):
                return load_torch_state(path, map_location=map_location)

    engine.checkpoint_engine = SafeTorchCheckpointEngine(engine._config)
