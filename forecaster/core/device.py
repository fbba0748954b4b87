"""Where a model runs: ``--device auto|cpu|cuda[:N]``, checked by a real operation.

``torch.cuda.is_available()`` only says that the CUDA runtime found a driver and a
device; the first kernel can still fail (a driver too old for the wheel, a GPU in
exclusive mode held by another process, no free memory, a MIG slice that is not
ours). So a GPU counts as usable only after a tiny operation on it gave the right
answer back on the host (:func:`probe_cuda`). ``auto`` takes the first usable GPU
and falls back to the CPU; ``cuda`` / ``cuda:N`` that cannot be used is a one-line
``DeviceError`` (the CLI exits with code 2), never a silent CPU run.

A :class:`Device` also says whether sampling runs under bf16 autocast: on GPUs
that support bf16 (Ampere and newer) by default, never on the CPU (the training
engine's rule, ``engine.use_bf16``, with the same ``precision`` values). The
same seed on the same device gives the same paths; a CPU and a GPU, or fp32 and
bf16, draw different ones (other kernels, other rounding).

Nothing runs at import time; the probe runs when a device is resolved.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from foundation.errors import UserError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
PRECISIONS = ("auto", "fp32", "bf16")
_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


class DeviceError(UserError):
    """A ``--device`` that is not a device name, or names a GPU that cannot be used here."""


@dataclass(frozen=True)
class Device:
    """A resolved device: the torch device and whether sampling uses bf16 autocast.

    ``why`` says how it was chosen (shown by ``--device auto`` and in forecast metadata).
    """

    torch: torch.device
    bf16: bool = False
    why: str = ""

    @property
    def type(self) -> str:
        return self.torch.type

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on this device when ``bf16``, else a no-op context."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.torch.type, dtype=torch.bfloat16)

    def describe(self) -> str:
        """``cuda:0 (NVIDIA H100, bf16)`` / ``cpu``: for logs and metadata."""
        if self.type != "cuda":
            return str(self.torch)
        name = torch.cuda.get_device_name(self.torch)
        return f"{self.torch} ({name}{', bf16' if self.bf16 else ', fp32'})"

    def __str__(self) -> str:
        return str(self.torch)


CPU = Device(torch.device("cpu"), False, "cpu")


def parse_device(spec: str | None) -> tuple[str, int | None]:
    """``"cuda:1"`` -> ``("cuda", 1)``, ``"auto"`` -> ``("auto", None)``; a ``DeviceError`` for anything else.

    ``None`` is ``"cpu"`` (what every model used before the flag existed).
    """
    text = "cpu" if spec is None else str(spec).strip().lower()
    m = _SPEC.match(text)
    if not m or (m.group(2) is not None and m.group(1) != "cuda"):
        raise DeviceError(f"--device {spec!r} is not a device; use {DEVICE_CHOICES} (e.g. cuda:0)")
    return m.group(1), None if m.group(2) is None else int(m.group(2))


def probe_cuda(index: int) -> str | None:
    """Run a tiny kernel on GPU ``index`` and copy the answer back; ``None`` if it worked, else why not.

    Never raises. This is the test of "usable", not ``torch.cuda.is_available()``.
    """
    try:
        dev = torch.device("cuda", index)
        x = torch.arange(1, 9, dtype=torch.float32, device=dev)  # host -> device
        total = float((x * 2).sum().item())                         # a kernel, device -> host
        torch.cuda.synchronize(dev)
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"; the reason is reported
        return f"{type(exc).__name__}: {_first_line(exc)}"
    if total != 72.0:
        return f"a test sum on cuda:{index} gave {total}, not 72"
    return None


def cuda_count() -> int:
    """GPUs torch can see (0 on a CPU-only build or without a driver); never raises."""
    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken driver counts as no GPU
        return 0


def bf16_for(precision: str, device: torch.device) -> bool:
    """Sampling precision: bf16 where the training engine's rule (``engine.use_bf16``) says so, on a GPU only."""
    if precision not in PRECISIONS:
        raise DeviceError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        return False  # CPU sampling stays fp32: bf16 matmuls on a CPU are slower, not faster
    from forecaster.core.training.engine import use_bf16  # deferred: the engine's imports take seconds

    return use_bf16(precision, device)


def resolve_device(spec: str | None = "auto", precision: str = "auto", *,
                   probe: Callable[[int], str | None] = probe_cuda, count: Callable[[], int] = cuda_count) -> Device:
    """The device ``spec`` names (see module doc), checked by a real operation.

    ``auto``: the first GPU whose probe passes, else the CPU. ``cuda``: the first usable
    GPU, or a ``DeviceError`` saying why none is. ``cuda:N``: that GPU or a ``DeviceError``.
    ``probe`` and ``count`` are the checks used (``probe_cuda`` and ``cuda_count``).
    """
    kind, index = parse_device(spec)
    if kind == "cpu":
        return CPU
    n = count()
    if n == 0:
        if kind == "auto":
            return Device(torch.device("cpu"), False, "auto: no GPU visible")
        build = "a CPU-only build of torch" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
        raise DeviceError(f"--device {spec}: no usable GPU here (torch {torch.__version__} is {build}, "
                          f"{_visible()}); use --device cpu or auto")
    if index is not None and index >= n:
        raise DeviceError(f"--device {spec}: there is no GPU {index} (this machine shows {n}: "
                          f"{', '.join(f'cuda:{i}' for i in range(n))}); pick one of those or --device auto")
    failures = []
    for i in ([index] if index is not None else range(n)):
        why = probe(i)
        if why is None:
            dev = torch.device("cuda", i)
            return Device(dev, bf16_for(precision, dev), f"{kind}: cuda:{i} passed a test operation")
        failures.append(f"cuda:{i}: {why}")
    if kind == "auto":
        return Device(torch.device("cpu"), False, "auto: no GPU passed a test operation (" + "; ".join(failures) + ")")
    raise DeviceError(f"--device {spec}: a test operation failed on the GPU ({'; '.join(failures)}); "
                      "use --device cpu or auto, or free the GPU")


def as_device(device: Device | str | torch.device | None) -> Device:
    """A ``Device`` from a resolved one, a spec (``"auto"``, ``"cuda:0"``) or a torch device; None is the CPU."""
    if isinstance(device, Device):
        return device
    if isinstance(device, torch.device):
        device = str(device) if device.type != "cuda" or device.index is not None else "cuda"
    return resolve_device(device)


def model_device(model: torch.nn.Module) -> Device:
    """The ``Device`` a model's parameters are on (fp32: the precision of a model moved by hand is not known)."""
    dev = next(model.parameters()).device
    return CPU if dev.type == "cpu" else Device(dev, False, "the model's own device")


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` torch CPU threads inside the block (``None``: leave them), then restore the setting."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _visible() -> str:
    import os

    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    return "no GPU visible" if cvd is None else f"CUDA_VISIBLE_DEVICES={cvd!r}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
