"""Long work off the request thread: a stress scenario is sampled in a worker thread.

The page starts a job, gets its id back at once, and polls ``status(id)`` with a
``dcc.Interval`` to draw the progress bar, so the page never freezes. One job
runs at a time (the sampler already uses every core); a second request waits in
the queue and says so. The queue is bounded (``max_pending`` queued or running
jobs; one more is refused with ``JobQueueFull``), and finished jobs beyond
``keep_finished`` are forgotten, oldest first, so a long-lived server does not grow.

A scenario job writes the same folder as `forecaster forecast`
(``forecaster.market.export.save_forecast_dir``).

Jobs sample on their runner's device (``JobRunner(device=...)``, set by
``forecaster dashboard --device``): inside a job ``job_device()`` is that device, and
``pipeline_for`` and ``synthesizer_for`` put their models there. Outside a job (and by
default) it is the CPU.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pandas as pd

from dashboard import data
from foundation.atomic import check_out_dir
from foundation.errors import UserError
from foundation.names import inside, safe_name
from forecaster.core.device import Device, as_device
from forecaster.core.run import RunDir
from forecaster.core.sampler import SamplingConfig
from forecaster.market.export import FORECAST_KIND, save_forecast_dir
from forecaster.market.forecast import is_legacy_forecast
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.scenario import Scenario, constraint_from_dict
from forecaster.synthesis.generate import Synthesizer
from forecaster.synthesis.marginals import MARGINALS_FILE

log = logging.getLogger("dashboard")
MAX_PENDING = 4  # queued or running jobs; each samples with every core, so more would only wait
KEEP_FINISHED = 50  # finished jobs whose status stays readable
SCENARIO_OPTION = "scenario name"  # what a refused scenario folder's message names
_JOB_DEVICE: contextvars.ContextVar[Device | str | None] = contextvars.ContextVar("job_device", default=None)


def job_device() -> Device | str | None:
    """The device of the runner whose job runs in this thread (None outside a job: the CPU)."""
    return _JOB_DEVICE.get()


class JobQueueFull(UserError):
    """Too many jobs are queued or running; the page shows the message."""


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
    """Runs callables one at a time in a daemon thread; their progress is readable from any thread.

    At most ``max_pending`` jobs are queued or running; ``submit`` refuses one more
    (``JobQueueFull``). Of the finished jobs, the newest ``keep_finished`` stay readable.
    ``device``: where the jobs sample (a resolved ``Device`` or a ``--device`` spec; None: the
    CPU); a job reads it with ``job_device()``, and an unusable one fails the job in one line.
    """

    def __init__(self, max_pending: int = MAX_PENDING, keep_finished: int = KEEP_FINISHED,
                 device: Device | str | None = None) -> None:
        if max_pending < 1 or keep_finished < 0:
            raise ValueError(f"max_pending must be >= 1 and keep_finished >= 0, got {max_pending}, {keep_finished}")
        self.max_pending = max_pending
        self.keep_finished = keep_finished
        self.device = device
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._run_lock = threading.Lock()

    def __len__(self) -> int:
        """Jobs whose status is still readable (queued, running, and the kept finished ones)."""
        with self._lock:
            return len(self._jobs)

    def _forget_finished(self) -> None:
        """Drop the oldest finished jobs beyond ``keep_finished`` (the caller holds ``_lock``)."""
        finished = sorted((j for j in self._jobs.values() if j.finished is not None), key=lambda j: j.finished)
        for job in finished[:max(len(finished) - self.keep_finished, 0)]:
            del self._jobs[job.id]

    def submit(self, label: str, total: int, work: Callable[[Callable[[int], None]], str]) -> str:
        """Start ``work(progress)`` in a thread; ``progress(done)`` updates the job; its return value is the result.

        Raises ``JobQueueFull`` when ``max_pending`` jobs are already queued or running.
        """
        job = Job(uuid.uuid4().hex[:12], label, total)
        with self._lock:
            self._forget_finished()
            pending = sum(j.finished is None for j in self._jobs.values())
            if pending >= self.max_pending:
                raise JobQueueFull(f"{pending} jobs are already queued or running (at most {self.max_pending}); "
                                   "wait for one to finish, then try again")
            self._jobs[job.id] = job

        def progress(done: int) -> None:
            job.done = int(done)

        def target() -> None:
            with self._run_lock:
                job.state = "running"
                job.started = time.time()
                _JOB_DEVICE.set(self.device)  # this thread's own context: other threads never see it
                try:
                    job.result = work(progress)
                    job.done = job.total
                    job.state = "done"
                except Exception as exc:  # reported to the page
                    job.state = "error"
                    job.message = f"{type(exc).__name__}: {exc}"
                    log.warning("job %s failed", job.label, exc_info=True)
                finally:
                    with self._lock:
                        job.finished = time.time()
                        self._forget_finished()

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


def _stamp(run_path: Path) -> tuple[int, int]:
    """(best weights, marginal calibration) modification times: a cached model is reloaded when either changes."""
    p, m = RunDir(run_path).best_weights, Path(run_path) / MARGINALS_FILE
    return (p.stat().st_mtime_ns if p.exists() else -1, m.stat().st_mtime_ns if m.exists() else -1)


@lru_cache(maxsize=2)
def _pipeline(run_path: str, stamp: tuple[int, int], device: Device) -> ForecastPipeline:
    return ForecastPipeline.from_run(run_path, device=device)


def pipeline_for(run_path: Path, device: Device | str | None = None) -> ForecastPipeline:
    """A cached ``ForecastPipeline`` on ``device`` (None: ``job_device()``); reloaded when the best weights change."""
    dev = as_device(job_device() if device is None else device)
    return _pipeline(str(run_path), _stamp(run_path), dev)


@lru_cache(maxsize=2)
def _synthesizer(model_dir: str, stamp: tuple[int, int], device: Device) -> Synthesizer:
    return Synthesizer(model_dir, device=device)


def synthesizer_for(model_dir: Path, device: Device | str | None = None) -> Synthesizer:
    """A cached ``Synthesizer`` of a synthesis run on ``device`` (None: ``job_device()``); reloaded as pipelines are."""
    dev = as_device(job_device() if device is None else device)
    return _synthesizer(str(model_dir), _stamp(model_dir), dev)


def generate_rows(model_dir: Path, n_rows: int, seed: int, progress: Callable[[int], None] | None = None,
                  device: Device | str | None = None) -> pd.DataFrame:
    """``n_rows`` new synthetic rows from the synthesis run in ``model_dir``, on ``device`` (None: ``job_device()``)."""
    table, _stats = synthesizer_for(model_dir, device).generate(n_rows, seed=seed, progress=progress)
    return table


def run_scenario(runs_dir: Path, run: str, base_name: str, constraints: list[dict], name: str, n_paths: int,
                 seed: int, progress: Callable[[int], None], sampling: SamplingConfig | None = None) -> str:
    """Sample a stress scenario from the base forecast's origin and horizon; save it under ``run/scenarios/name``.

    It samples on ``job_device()`` (the runner's device; the CPU outside a job).

    ``constraints`` are dicts as in a scenario file (``{"series": "VIX", "level": 40, "days": "1-20"}``).
    ``sampling`` None (the dashboard started without ``--temperature``/``--top-k``/``--top-p``):
    the base forecast's own sampling settings, so the scenario and the base it is compared with
    are drawn alike (a base made at the run's calibrated temperature gives a scenario at it).
    The drift tilts (``drift.json``) are applied when the base had them, and not otherwise.

    The folder is a full forecast folder (``save_forecast_dir``: forecast, exports, summary.csv,
    regimes.csv), published whole: an existing ``name`` is replaced only when it is a previous
    forecast, never a folder holding something else (refused before any sampling). Returns the
    scenario's name.
    """
    name = safe_name(name, "scenario name")
    run_dir = data.run_path(runs_dir, run)
    base = data.load_forecast(runs_dir, run, base_name)
    scen = Scenario(name, [constraint_from_dict(c, f"constraint {i + 1}") for i, c in enumerate(constraints)])
    out = run_dir / "scenarios" / name
    inside(runs_dir, out, "scenario folder")  # scenarios/ may be a symbolic link leading elsewhere
    check_out_dir(out, FORECAST_KIND, option=SCENARIO_OPTION, legacy=is_legacy_forecast)
    if sampling is None:
        sampling = SamplingConfig(**(base.meta.get("sampling") or {}))
    pipe = pipeline_for(run_dir)
    fc = pipe.predict(data.builder_for_run(run_dir), base.as_of, n_paths=n_paths, horizon=base.horizon, seed=seed,
                      scenario=scen, sampling=sampling, progress=progress, drift=bool(base.meta.get("drift")))
    fc.meta["base_forecast"] = base_name
    save_forecast_dir(fc, out, option=SCENARIO_OPTION)
    return name
