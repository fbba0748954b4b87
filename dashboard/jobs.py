"""Long work off the request thread: a stress scenario is sampled in a worker thread.

The page starts a job, gets its id back at once, and polls ``status(id)`` with a
``dcc.Interval`` to draw the progress bar, so the page never freezes. One job
runs at a time (the sampler already uses every core); a second request waits in
the queue and says so.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

log = logging.getLogger("dashboard")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def safe_name(name: str) -> str:
    """A folder name typed by the user: letters, digits, ``_ . -``; anything else is refused."""
    name = (name or "").strip().replace(" ", "-")
    if not _NAME.match(name):
        raise ValueError("scenario name: use 1-64 letters, digits, '-', '_' or '.' (starting with a letter or digit)")
    return name


@dataclass
class Job:
    id: str
    label: str
    total: int
    done: int = 0
    state: str = "queued"  # queued | running | done | error
    message: str = ""
    result: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def as_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "total": self.total, "done": self.done, "state": self.state,
                "message": self.message, "result": self.result,
                "elapsed": (self.finished or time.time()) - self.started}


class JobRunner:
    """Runs callables one at a time in a daemon thread; their progress is readable from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._run_lock = threading.Lock()

    def submit(self, label: str, total: int, work: Callable[[Callable[[int], None]], str]) -> str:
        """Start ``work(progress)`` in a thread; ``progress(done)`` updates the job; its return value is the result."""
        job = Job(uuid.uuid4().hex[:12], label, total)
        with self._lock:
            self._jobs[job.id] = job

        def progress(done: int) -> None:
            job.done = int(done)

        def target() -> None:
            with self._run_lock:
                job.state = "running"
                job.started = time.time()
                try:
                    job.result = work(progress)
                    job.done = job.total
                    job.state = "done"
                except Exception as exc:  # reported to the page
                    job.state = "error"
                    job.message = f"{type(exc).__name__}: {exc}"
                    log.warning("job %s failed", job.label, exc_info=True)
                finally:
                    job.finished = time.time()

        threading.Thread(target=target, name=f"job-{job.id}", daemon=True).start()
        return job.id

    def status(self, job_id: str) -> dict | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job.as_dict() if job else None

    def wait(self, job_id: str, timeout: float = 60.0) -> dict | None:
        """Block until the job ends (for tests and scripts)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.status(job_id)
            if st is None or st["state"] in ("done", "error"):
                return st
            time.sleep(0.05)
        return self.status(job_id)


@lru_cache(maxsize=2)
def _pipeline(run_path: str, stamp: int):
    from forecaster.pipeline import ForecastPipeline

    return ForecastPipeline.from_run(run_path)


def pipeline_for(run_path: Path):
    """A cached ``ForecastPipeline`` (reloaded when best.safetensors changes)."""
    p = Path(run_path) / "best.safetensors"
    stamp = p.stat().st_mtime_ns if p.exists() else -1
    return _pipeline(str(run_path), stamp)


def run_scenario(runs_dir: Path, run: str, base_name: str, constraints: list[dict], name: str, n_paths: int,
                 seed: int, progress: Callable[[int], None]) -> str:
    """Sample a stress scenario from the base forecast's origin and horizon; save it under ``run/scenarios/name``.

    ``constraints`` are dicts as in a scenario file (``{"series": "VIX", "level": 40, "days": "1-20"}``).
    Returns the scenario's name.
    """
    from dashboard import data
    from forecaster.scenario import Scenario, constraint_from_dict

    name = safe_name(name)
    run_dir = data.run_path(runs_dir, run)
    base = data.load_forecast(runs_dir, run, base_name)
    scen = Scenario(name, [constraint_from_dict(c, f"constraint {i + 1}") for i, c in enumerate(constraints)])
    pipe = pipeline_for(run_dir)
    builder = data.builder_for_run(pipe.info or {})
    fc = pipe.predict(builder, base.as_of, n_paths=n_paths, horizon=base.horizon, seed=seed, scenario=scen,
                      progress=progress)
    fc.meta["base_forecast"] = base_name
    out = run_dir / "scenarios" / name
    fc.save(out)
    return name
