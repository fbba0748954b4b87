"""Synthetic histories on Dask: one block of ``Synthesizer.plan`` per task, the table assembled by the client.

``Synthesizer.generate(..., scheduler="local:2")`` (``forecaster synth generate
--scheduler``) hands each block (``generate.Block``: ``batch_paths`` histories, or
context cards) to a Dask worker. A block's histories are seeded by ``(seed, block
index)`` only, so a worker samples the very rows the serial loop would, and the client
puts the blocks back in order: the table is the serial one, whatever the number of
workers (same seed, ``batch_paths`` and device).

Every worker loads the run folder itself, once (the path must mean the same folder on
every machine: shared storage, docs/SCALING.md), on the device spec given to the
client's ``Synthesizer`` (resolved on the worker: ``auto`` finds that worker's GPU), and
checks that its weights are the client's (``Synthesizer.weights_digest``): a worker that
sees another run at that path, or a run retrained meanwhile, stops the command. Workers
return tables and write nothing; the client writes the output once, atomically.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from foundation.cluster import dask_client, worker_count
from forecaster.core.device import torch_threads
from forecaster.synthesis.documents import SynthesisInputError
from forecaster.synthesis.generate import Block, GenerationPlan, GenerationStats, Synthesizer
from forecaster.synthesis.privacy import NearCopyIndex

Part = tuple[pd.DataFrame, GenerationStats]


@dataclass
class BlockWorker:
    """What every task needs, sent once to each worker (``scatter(broadcast=True)``).

    ``synthesizer()`` loads the run on the worker the first time a task asks, and keeps it.
    """

    run_dir: str
    which: str
    device: str | None         # the --device spec, resolved on the worker
    weights: str               # the client's ``weights_digest``
    dedupe: NearCopyIndex | None = None
    marginals: str | None = None  # the digest of the client's marginal calibration, when the plan adds one
    _synth: Synthesizer | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_synth"] = None  # the model is loaded on the worker, never sent
        return state

    def synthesizer(self) -> Synthesizer:
        if self._synth is None:
            synth = Synthesizer(self.run_dir, self.which, device=self.device)
            if synth.weights_digest() != self.weights:
                raise SynthesisInputError(f"a Dask worker loaded other weights from {self.run_dir} than the client: "
                                          "the run folder must be the same on every machine (shared storage), and "
                                          "not retrained during generation")
            got = synth.marginals.digest() if synth.marginals is not None else None
            if self.marginals is not None and got != self.marginals:
                raise SynthesisInputError(f"a Dask worker read another marginal calibration from {self.run_dir} than "
                                          "the client's (or none): save it (`synth calibrate`) on storage every worker "
                                          "sees, and do not recalibrate during generation")
            self._synth = synth
        return self._synth


def _block_task(worker: BlockWorker, plan: GenerationPlan, block: Block, threads: int) -> Part:
    """One block on a Dask worker, with ``threads`` torch threads: its table and stats."""
    with torch_threads(threads):
        return worker.synthesizer().run_block(plan, block, worker.dedupe)


def _spec(device) -> str | None:
    """A device spec a worker can resolve itself: None, a ``--device`` string, or a resolved one's name."""
    return None if device is None or isinstance(device, str) else str(device)


def run_blocks(synth: Synthesizer, plan: GenerationPlan, blocks: list[Block], dedupe: NearCopyIndex | None,
               scheduler: str, threads: int | None = None, on_block: Callable[[Part], None] | None = None,
               log: Callable[[str], None] | None = None) -> list[Part]:
    """Sample ``blocks`` as Dask tasks on ``scheduler`` (``local:N`` or ``tcp://HOST:PORT``); the parts in block order.

    ``on_block(part)`` is called as each block arrives (in any order). A task's error stops
    the call (the other tasks are cancelled) and is raised here as it was on the worker.
    """
    if threads is not None and threads < 1:
        raise SynthesisInputError(f"--threads must be at least 1, got {threads}")
    calibrated = plan.marginals and synth.marginals is not None
    state = BlockWorker(str(synth.run_dir), synth.which, _spec(synth.device_spec), synth.weights_digest(), dedupe,
                        synth.marginals.digest() if calibrated else None)
    token = uuid.uuid4().hex[:8]
    with dask_client(scheduler) as client:
        from distributed import as_completed  # deferred: the distributed extra; dask_client checked it is there

        n_workers = worker_count(client)
        if log is not None:
            hint = (f"; fewer blocks than workers: a smaller --batch-paths (now {blocks[0].n}) splits the work further"
                    if len(blocks) < n_workers else "")
            log(f"{len(blocks)} blocks of up to {blocks[0].n} {'cards' if plan.continuation else 'histories'} on "
                f"{n_workers} Dask workers ({scheduler}){hint}")
        shared = client.scatter(state, broadcast=True, hash=False)  # once per worker, not per task
        futures = {client.submit(_block_task, shared, plan, block, threads or 1, pure=False,
                                 key=f"synth-block-{block.index}-{token}"): block.index for block in blocks}
        parts: dict[int, Part] = {}
        try:
            for future in as_completed(futures):
                parts[futures[future]] = future.result()  # a task's exception is raised here
                if on_block is not None:
                    on_block(parts[futures[future]])
        finally:
            client.cancel(list(futures))
    return [parts[block.index] for block in blocks]
