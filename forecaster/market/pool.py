"""A pool of runs of one recipe (a seed ensemble) behind one ``predict``.

    pool = PooledPipeline([ForecastPipeline.from_run(r) for r in ("runs/day-small", "runs/day-small-s1")])
    fc = pool.predict(builder, "2019-12-31", n_paths=100)   # 50 paths from each run, stacked

The ``n_paths`` of a forecast are split as evenly as possible over the members (the first
take the remainder, ``pool_shares``); member ``k`` samples its share with ``seed + k *
POOL_SEED_STRIDE`` (member 0 with the seed itself), and the paths are stacked in member
order. Every member samples at the first member's settings: its calibrated temperature
when none is given (a seed ensemble is one model, calibrated once). The members must model
the same series in the same order. A pool of one is its member: the same paths.

Why a pool: runs of one recipe that differ only in their seed differ in what they learned
(docs/PERFORMANCE.md measures how much); their paths together are a mixture over that
training noise, which one run's paths are not.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from forecaster.market.forecast import Forecast, ForecastError
from forecaster.market.pipeline import calibration_record, resolve_sampling

POOL_SEED_STRIDE = 7_919  # member k of a pool samples with seed + k * stride (k = 0: the seed itself)


def pool_shares(n_paths: int, n_members: int) -> list[int]:
    """Paths per member: as even as possible, the first members take the remainder (sums to ``n_paths``)."""
    base, extra = divmod(int(n_paths), int(n_members))
    return [base + (k < extra) for k in range(n_members)]


class PooledPipeline:
    """Several ``ForecastPipeline`` of one recipe behind the pipeline's ``predict`` (see module doc).

    ``series``, ``calibration``, ``run_dir``, ``info`` and ``panel_builder`` are the first member's.
    """

    def __init__(self, members: Sequence) -> None:
        self.members = list(members)
        if not self.members:
            raise ForecastError("a pool needs at least one run")
        first = self.members[0]
        for m in self.members[1:]:
            if list(m.series) != list(first.series):
                raise ForecastError(f"the pooled run {m.run_dir} models {', '.join(m.series)}, not the series of "
                                    f"{first.run_dir} ({', '.join(first.series)}): pool runs of one recipe")
        self.series = list(first.series)
        self.calibration = first.calibration
        self.run_dir = first.run_dir
        self.info = first.info

    def panel_builder(self, data=None):
        return self.members[0].panel_builder(data)

    def predict(self, data=None, as_of=None, n_paths: int = 100, horizon: int = 250, seed: int = 0,
                scenario=None, sampling=None, history_days: int = 500, progress=None, *, index_levels=None,
                temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                drift: bool = True) -> Forecast:
        """The members' forecasts of their shares of ``n_paths``, stacked (``ForecastPipeline.predict``'s arguments)."""
        if len(self.members) == 1:
            return self.members[0].predict(data, as_of, n_paths, horizon, seed, scenario, sampling, history_days,
                                           progress, index_levels=index_levels, temperature=temperature,
                                           top_k=top_k, top_p=top_p, drift=drift)
        if isinstance(n_paths, bool) or not isinstance(n_paths, (int, np.integer)) or n_paths < len(self.members):
            raise ForecastError(f"n_paths must be at least the pool's {len(self.members)} runs, got {n_paths!r}")
        # the first member's calibrated temperature (else 1) for every member
        sampling, calibrated = resolve_sampling(self.calibration, sampling, temperature, top_k, top_p)
        if data is None or isinstance(data, str):
            data = self.panel_builder(data)
        shares = pool_shares(n_paths, len(self.members))

        def member_progress(k):  # the days of all members, scaled to one horizon
            return None if progress is None else (
                lambda days: progress((k * horizon + days) // len(self.members)))

        forecasts = []
        for k, (member, n) in enumerate(zip(self.members, shares)):
            forecasts.append(member.predict(data, as_of, n, horizon, seed + k * POOL_SEED_STRIDE, scenario,
                                            sampling, history_days, member_progress(k), index_levels=index_levels,
                                            drift=drift))
        fc = forecasts[0]
        meta = dict(fc.meta)
        meta["n_paths"] = int(n_paths)
        meta["pool"] = [{"run_dir": f.meta.get("run_dir"), "model_sha256": f.meta.get("model_sha256"),
                         "paths": n, "seed": f.meta.get("seed"),
                         **({"scenario_resampling": f.meta["scenario_resampling"]}
                            if "scenario_resampling" in f.meta else {})} for f, n in zip(forecasts, shares)]
        if calibrated:
            meta["calibration"] = calibration_record(self.calibration)
        meta["warnings"] = list(dict.fromkeys(w for f in forecasts for w in f.meta.get("warnings", [])))
        by_series: dict[str, int] = {}
        for f in forecasts:
            for c, v in (f.meta.get("nan_cells_by_series") or {}).items():
                by_series[c] = by_series.get(c, 0) + int(v)
        meta["nan_cells"], meta["nan_cells_by_series"] = int(sum(by_series.values())), by_series
        return dataclasses.replace(fc, paths=np.concatenate([f.paths for f in forecasts], axis=0), meta=meta)
