"""A Dask scheduler for work that splits into independent tasks (``--scheduler local:N | tcp://HOST:PORT``).

Backtest origins and TabFormer ETL chunks are independent of each other, so they
run as Dask tasks: ``local:N`` starts a ``LocalCluster`` of ``N`` worker processes
with one thread each on this machine (and stops it afterwards); ``tcp://HOST:PORT``
connects to a running scheduler (``dask scheduler`` plus ``dask worker`` on each
machine, or a cluster manager's), which is left running. Dask is the optional
``distributed`` extra (``pip install 'forecaster[distributed]'``); it is imported
only when a scheduler is asked for.

Dask moves tasks and results between processes with pickle: only connect to a
scheduler whose workers you trust, as with any Dask cluster (its TLS and
authentication are the cluster's configuration, not this module's). Nothing is
pickled to disk here.
"""
from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Iterator

from foundation.errors import UserError

SCHEDULER_HELP = ("Run the independent tasks on Dask: local:N (N worker processes on this machine, one thread "
                  "each) or tcp://HOST:PORT (a running `dask scheduler`). Needs the distributed extra.")
CONNECT_TIMEOUT_S = 10
WORKER_WAIT_S = 30  # a connected scheduler with no workers would queue the tasks forever
_LOCAL = re.compile(r"^local:(\d+)$")
_REMOTE = re.compile(r"^tcp://([^\s:/]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$")


class SchedulerError(UserError):
    """A ``--scheduler`` that is malformed, unreachable, or needs Dask where it is not installed."""


@dataclass(frozen=True)
class SchedulerSpec:
    """A parsed ``--scheduler``: ``n_workers`` for ``local:N``, ``address`` for ``tcp://HOST:PORT``."""

    text: str
    n_workers: int | None = None
    address: str | None = None

    @property
    def local(self) -> bool:
        return self.n_workers is not None


def parse_scheduler(spec: str) -> SchedulerSpec:
    """``"local:2"`` or ``"tcp://10.0.0.5:8786"`` -> ``SchedulerSpec``; a ``SchedulerError`` for anything else."""
    text = str(spec).strip()
    m = _LOCAL.match(text)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise SchedulerError(f"--scheduler {spec}: a local cluster needs at least 1 worker (e.g. local:2)")
        return SchedulerSpec(text, n_workers=n)
    m = _REMOTE.match(text)
    if m:
        if not 0 < int(m.group(2)) < 65536:
            raise SchedulerError(f"--scheduler {spec}: port {m.group(2)} is not in 1..65535")
        return SchedulerSpec(text, address=text)
    raise SchedulerError(f"--scheduler {spec!r} is not a scheduler; use local:N (e.g. local:2) or tcp://HOST:PORT "
                         "(the address `dask scheduler` prints)")


def require_distributed():
    """The ``distributed`` module, or a ``SchedulerError`` saying how to install it."""
    try:
        import distributed  # noqa: PLC0415 - optional extra
    except ImportError:
        raise SchedulerError("--scheduler needs Dask: pip install 'forecaster[distributed]' "
                             "(or pip install 'dask[distributed]')") from None
    return distributed


@contextlib.contextmanager
def dask_client(spec: str | SchedulerSpec) -> Iterator["distributed.Client"]:  # noqa: F821
    """A ``distributed.Client`` for ``spec`` while the block runs (a local cluster is stopped after it).

    A scheduler that cannot be reached within ``CONNECT_TIMEOUT_S`` is a ``SchedulerError``.
    """
    spec = spec if isinstance(spec, SchedulerSpec) else parse_scheduler(spec)
    distributed = require_distributed()
    with contextlib.ExitStack() as stack:
        if spec.local:
            # processes, not threads: torch and the panel code hold the GIL; one thread per worker
            # so N workers use N cores; no dashboard (it needs bokeh and a port)
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=spec.n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR))
            client = stack.enter_context(distributed.Client(cluster))
        else:
            try:
                client = stack.enter_context(distributed.Client(spec.address, timeout=CONNECT_TIMEOUT_S))
            except (OSError, TimeoutError) as exc:
                raise SchedulerError(f"--scheduler {spec.text}: cannot reach a Dask scheduler there "
                                     f"({type(exc).__name__}: {_first_line(exc)}); start one with "
                                     "`dask scheduler` and workers with `dask worker ADDRESS`, or check the "
                                     "address") from None
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                raise SchedulerError(f"--scheduler {spec.text}: the scheduler has no workers after "
                                     f"{WORKER_WAIT_S} s; start some with `dask worker {spec.text} --nthreads 1`"
                                     ) from None
        yield client


def worker_count(client) -> int:
    """Workers connected to ``client``'s scheduler now."""
    return len(client.scheduler_info().get("workers", {}))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
