"""Weight files: atomic safetensors writes, embedded checksums, verified loads.

Every weight file (``best.safetensors``, each checkpoint's ``model.safetensors``)
carries the sha256 of its tensors in its own safetensors header
(``forecaster_sha256``), written in the same atomic rename as the tensors, so no
kill can separate the two. On load the hash is recomputed and the weights must
be finite. These hashes detect corruption (a bit flip, a truncated copy), not an
attacker who can write the folder: such a person can rewrite the hash too. What
protects against that is that nothing here is unpickled with code: safetensors
for weights, and ``weights_only=True`` for the optimizer state (safe_load.py).

The run folder around them (layout, lock, checkpoint records, loading a trained
model and its tokenizer) is ``forecaster.core.run.RunDir``'s.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from foundation.atomic import atomic_path
from foundation.errors import UserError
from forecaster.core.model import GPT


class CheckpointError(UserError):
    """A run directory or checkpoint that cannot be used (corrupt, or from another tokenizer/config)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


HASH_KEY = "forecaster_sha256"  # safetensors metadata: sha256 of the tensors (see tensors_sha256)


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order (CPU tensors)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_weights(model: GPT, path: Path) -> None:
    """Atomically write the model weights as safetensors (fp32 copies; a tied matrix is stored once).

    The tensors are copied first: under ZeRO the parameters are views into flat
    buffers, which safetensors refuses to save as they are. The file's header
    records the sha256 of the tensors (``HASH_KEY``), checked by :func:`load_weights`.
    """
    tensors = {name: p.detach().to("cpu", dtype=torch.float32, copy=True).contiguous()
               for name, p in model.named_parameters()}  # named_parameters skips tied duplicates
    with atomic_path(path) as tmp:
        # one metadata key only: safetensors writes a map's keys in random order, and the
        # same weights must give the same file (resume tests compare file hashes)
        save_file(tensors, str(tmp), metadata={HASH_KEY: tensors_sha256(tensors)})


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weight file, after checking its recorded hash and that every value is finite.

    A missing, unreadable, corrupt (hash mismatch) or non-finite file is a one-line
    ``CheckpointError`` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no weights at {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            recorded = (fh.metadata() or {}).get(HASH_KEY)
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises several types for bad headers / truncation
        raise CheckpointError(f"cannot read weights {path} ({type(exc).__name__}: {_first_line(exc)}); "
                              "the file is corrupt") from None
    if recorded is None:
        raise CheckpointError(f"weights {path} have no recorded checksum (not written by this version of "
                              "forecaster); retrain to get verifiable weights")
    if tensors_sha256(tensors) != recorded:
        raise CheckpointError(f"weights {path} are corrupt (checksum mismatch); restore the file from a backup "
                              "or retrain")
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(f"weights {path} hold NaN or infinite values (in {', '.join(sorted(bad)[:3])}"
                              f"{', ...' if len(bad) > 3 else ''}); the training diverged: retrain, e.g. with "
                              "a lower --lr")
    return tensors


def load_weights(model: GPT, path: Path) -> None:
    """Load verified safetensors weights into ``model``; a bad or mismatching file is a ``CheckpointError``."""
    tensors = read_weights(path)
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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]
