"""Metrics history: one JSON object per line in ``RUN_DIR/metrics.jsonl``.

Each line has ``step`` (optimizer steps done), ``split`` ("train" or "val"),
``loss`` (mean next-token cross-entropy, nats), and for train lines also ``lr``,
``tokens_per_s`` and ``elapsed_s``. The dashboard and users plot learning curves
from it with :func:`read_metrics`.
"""
from __future__ import annotations

import json
from pathlib import Path

from foundation.atomic import write_text


class MetricsLog:
    """Append-only JSON-lines writer (only rank 0 writes)."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def append(self, record: dict) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()

    def truncate_after(self, step: int) -> None:
        """Drop lines with ``step`` greater than ``step`` (they are redone after a resume)."""
        if not self.enabled or not self.path.exists():
            return
        keep = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep))


def read_metrics(path: str | Path) -> list[dict]:
    """All records of a metrics file (or of ``RUN_DIR/metrics.jsonl`` given a run directory).

    A torn last line (the process was killed mid-write) is skipped.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def best_validation_step(path: str | Path) -> int | None:
    """The step of the lowest validation loss in a metrics file (or ``RUN_DIR``); None when it has none.

    Ties go to the earlier step. The refits of both domains train for this many steps.
    """
    vals = [r for r in read_metrics(path) if r.get("split") == "val"]
    if not vals:
        return None
    return int(min(vals, key=lambda r: (r["loss"], r["step"]))["step"])
