"""Options and helpers that several commands share: torch threads, sampling settings, progress bars.

One flag name per idea: every command that runs the model takes ``--threads``; every
command that samples takes ``--temperature``, ``--top-k`` and ``--top-p``; every long
step shows a progress bar on stderr, ``--no-progress`` turns it off, and it is never
drawn when stderr is not a terminal (a log file or a pipe gets no ``\\r`` lines).
"""
from __future__ import annotations

import typer

from foundation.errors import UserError

THREADS_HELP = "Torch CPU threads"

TemperatureOpt = typer.Option(1.0, "--temperature", help="Sampling temperature (1 = the model's distribution, 0 = the most likely token).")
TopKOpt = typer.Option(None, "--top-k", help="Sample only among the k most likely tokens (default off).")
TopPOpt = typer.Option(None, "--top-p", help="Nucleus sampling: only the smallest set of tokens with this much probability (default off).")
ProgressOpt = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr (never when stderr is not a terminal).")


def threads_option(default: int | None, detail: str = "default: torch's own choice") -> typer.Option:
    """The ``--threads`` option with this command's default, explained in ``detail``."""
    return typer.Option(default, "--threads", help=f"{THREADS_HELP} ({detail}).")


def set_threads(n: int | None) -> None:
    """Use ``n`` torch CPU threads (``None``: leave torch's setting as it is)."""
    if n is None:
        return
    if n < 1:
        raise UserError(f"--threads must be at least 1, got {n}")
    import torch

    torch.set_num_threads(n)


def bar_disable(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a ``--progress/--no-progress`` value: ``None`` draws the bar only on a terminal."""
    return None if progress else True


def progress_bar(progress: bool, **kwargs):
    """A tqdm bar on stderr, drawn only when ``progress`` is on and stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(disable=bar_disable(progress), **kwargs)
