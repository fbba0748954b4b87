"""The rolling-origin backtest: origins, point-in-time panels, forecasts, realised values, scores.

For each origin on the schedule:

1. the panel is rebuilt as of the origin (``PanelBuilder.build(origin)``: only
   values released by then, nothing after it);
2. the GPT (the run trained up to the first origin, or the latest retrained run
   at or before the origin) and every baseline sample ``n_paths`` paths of
   ``horizon`` business days from that panel alone;
3. the realised values are the rows of the full panel after the origin, step
   ``k`` of a path against the ``k``-th panel day after the origin;
4. the scores (``metrics``) and the fan quantiles are written atomically to
   ``OUT/origins/<date>.parquet`` and ``<date>.fan.parquet``.

Origins are independent (each has its own seed, ``origin_seed``, which depends on
the date only), so with a Dask scheduler (``scheduler="local:N"`` or
``"tcp://HOST:PORT"``, ``foundation.cluster``) each pending origin is one task:
the worker builds the panel as of the origin, samples, scores and writes that
origin's files, exactly what the serial loop does, so the files are the same
(retrained runs are trained first, one after another, by the caller). Without a
scheduler nothing changes. ``device`` (``"auto"``, ``"cpu"``, ``"cuda:0"``, see
``forecaster.core.device``) is where the GPT samples; a worker resolves it itself.

An origin whose score file exists is not recomputed, so an interrupted backtest
resumes where it stopped; ``OUT/backtest.json`` holds the settings and a rerun
with different settings on the same folder is refused. ``OUT`` is claimed with
``foundation.atomic.claim_dir`` (kind ``backtest``): a folder holding anything
else (a run, a forecast, a user's files) is refused before any work. A backtest
folder written before folders carried the marker (a ``backtest.json`` of format
``forecaster-backtest``) is accepted as a backtest and resumed.

Output layout::

    OUT/.forecaster-output.json  the output marker (kind ``backtest``)
    OUT/backtest.json          settings (BacktestConfig) and the origin list
    OUT/origins/D.parquet      scores of every model at origin D (long table, see ``scoring.score_origin``)
    OUT/origins/D.fan.parquet  per model and series, quantiles of every horizon day, and the realised path
    OUT/models/D/              runs retrained as of D (retraining policy only)
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from foundation.atomic import check_out_dir, claim_dir, write_text
from data_sources.panel import PanelBuilder
from data_sources.store import read_meta, write_parquet
from foundation.dataclass_io import dataclass_from_dict
from forecaster.market.backtest import metrics
from forecaster.market.backtest.baselines import BASELINE_NAMES, make_baselines
from forecaster.market.backtest.scoring import realised_after, score_origin
from forecaster.market.backtest.windows import BacktestError, origin_schedule
from forecaster.market.forecast import Forecast, check_horizon
from forecaster.market.inputs import yoy_index_levels
from forecaster.market.run import PanelRun

GPT_MODEL = "gpt"  # the model name of the GPT in scores and fans (the class is forecaster.core.model.GPT)
BACKTEST_KIND = "backtest"


def is_legacy_backtest(folder: Path) -> bool:
    """A backtest folder from before the output marker: its ``backtest.json`` has the backtest format."""
    try:
        return json.loads((Path(folder) / "backtest.json").read_text()).get("format") == "forecaster-backtest"
    except (OSError, ValueError, AttributeError):
        return False


def check_backtest_dir(out: str | Path) -> Path:
    """Refuse an ``--out`` that is not new, empty or a backtest (``OutputError``); writes nothing."""
    return check_out_dir(out, BACKTEST_KIND, legacy=is_legacy_backtest)


def claim_backtest_dir(out: str | Path) -> Path:
    """Create or reuse ``out`` as a backtest folder (its marker written), refusing anything else."""
    return claim_dir(out, BACKTEST_KIND, legacy=is_legacy_backtest)


@dataclass
class BacktestConfig:
    """Everything that decides a backtest's numbers (saved as ``backtest.json``; unknown keys are an error).

    run : GPT run directory (``None``: baselines only).
    data : data spec (default: the run's); series : panel columns (default: the run's).
    start, end, every : origin schedule (see ``windows``); window : the preset name, if one was used.
    n_paths, horizon : paths per forecast and business days ahead; seed : base seed (per origin: seed + date).
    horizons : days at which scores are taken (those <= horizon).
    baselines : baseline names; retrain_every : months between retrainings (0: the run as it is).
    retrain_steps : optimizer steps per retraining (default: the run's).
    panel_start : first panel date.
    pool : more runs whose paths join ``run``'s (a seed ensemble): the ``n_paths`` of every GPT
        forecast are split as evenly as possible over ``run`` and the pool (``run`` takes the
        remainder), all sampled at ``run``'s settings; each must model the same series and end
        before the first origin. Not with ``retrain_every``.
    temperature, top_k, top_p : the GPT's sampling settings (``SamplingConfig``); a temperature of
        None is the run's calibrated one (``forecaster calibrate``), else 1, resolved (and saved) when
        the backtest is set up.
    """

    start: str
    end: str
    run: str | None = None
    data: str | None = None
    series: list[str] | None = None
    every: str = "1M"
    window: str | None = None
    n_paths: int = 100
    horizon: int = 250
    seed: int = 0
    horizons: list[int] = field(default_factory=lambda: list(metrics.HORIZONS))
    baselines: list[str] = field(default_factory=lambda: list(BASELINE_NAMES))
    retrain_every: int = 0
    retrain_steps: int | None = None
    panel_start: str = "1990-01-01"
    pool: list[str] = field(default_factory=list)
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.n_paths < 2:
            raise BacktestError(f"n_paths must be at least 2 (an ensemble), got {self.n_paths}")
        check_horizon(self.horizon)
        if self.retrain_every < 0:
            raise BacktestError(f"retrain_every must be >= 0 months, got {self.retrain_every}")
        self.pool = [str(r) for r in self.pool]
        if self.pool and self.run is None:
            raise BacktestError("a pool of runs needs a --run to join (the pool's paths are split over it and the pool)")
        if self.pool and self.retrain_every:
            raise BacktestError("--pool cannot be combined with --retrain-every (each pooled run would need its own "
                                "retraining); pool runs trained as of the first origin instead")
        if self.pool and len(set(self.pool) | {str(self.run)}) != len(self.pool) + 1:
            raise BacktestError(f"--pool names a run twice or names --run itself: {', '.join(self.pool)}")
        if self.pool and self.n_paths < len(self.pool) + 1:
            raise BacktestError(f"n_paths {self.n_paths} is fewer than the {len(self.pool) + 1} pooled runs: "
                                "every run needs at least one path")
        self.sampling()  # validates the sampling settings
        self.horizons = sorted({int(h) for h in self.horizons if 1 <= int(h) <= self.horizon} | {self.horizon})
        make_baselines(self.baselines)  # validates the names

    def sampling(self):
        """The GPT's ``SamplingConfig`` (a ``SamplingError`` for settings that cannot be used)."""
        from forecaster.core.sampler import SamplingConfig  # deferred: it imports torch; baselines-only backtests never load it

        return SamplingConfig(1.0 if self.temperature is None else self.temperature, self.top_k, self.top_p)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BacktestConfig":
        return dataclass_from_dict(cls, d, BacktestError, "backtest setting")


def origin_seed(seed: int, origin: pd.Timestamp) -> int:
    """The sampling seed of one origin: depends on the date only, so resuming or reslicing the schedule keeps it."""
    return int(seed) * 1_000_003 + pd.Timestamp(origin).toordinal()


class GPTModel:
    """The GPT behind the same ``forecast(panel, n_paths, horizon, seed)`` call as the baselines.

    ``pipe`` is a ``ForecastPipeline`` or a seed pool of them (``forecaster.market.pool``).

    Every row the sampler draws decodes (the tokenizer's per-slot id ranges admit
    only decodable rows), so no repair is needed here.
    """

    name = GPT_MODEL

    def __init__(self, pipe, sampling=None, index_levels: dict | None = None) -> None:
        self.pipe = pipe
        self.sampling = sampling
        self.index_levels = index_levels  # the YoY series' monthly index observations (all vintages; predict
        # reads only those released by the origin)

    def forecast(self, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int) -> Forecast:
        fc = self.pipe.predict(panel, panel.index[-1], n_paths=n_paths, horizon=horizon, seed=seed,
                               sampling=self.sampling, index_levels=self.index_levels)
        fc.meta["covers"] = list(fc.series)
        fc.meta["model"] = GPT_MODEL
        return fc


def forecast_origin(models: list, panel: pd.DataFrame, n_paths: int, horizon: int, seed: int
                    ) -> tuple[dict[str, Forecast], dict[str, str], dict[str, float]]:
    """Every model's forecast from the point-in-time ``panel`` (its last row is the origin).

    Returns (forecasts by model name, errors by model name, seconds by model name).
    A model that fails at this origin is reported in ``errors`` and left out; the
    others go on (a skeptical reader sees the count in the summary).
    """
    forecasts, errors, seconds = {}, {}, {}
    for model in models:
        t0 = time.perf_counter()
        try:
            fc = model.forecast(panel, n_paths, horizon, seed)
        except Exception as exc:  # noqa: BLE001 - recorded per origin and counted in the summary
            errors[model.name] = f"{type(exc).__name__}: {exc}"
            continue
        finally:
            seconds[model.name] = time.perf_counter() - t0
        assert fc.paths.shape == (n_paths, horizon, len(fc.series)), f"{model.name}: paths {fc.paths.shape}"
        assert fc.as_of == panel.index[-1], f"{model.name}: forecast from {fc.as_of}, origin {panel.index[-1]}"
        forecasts[model.name] = fc
    return forecasts, errors, seconds


def _months_between(a: pd.Timestamp, b: pd.Timestamp) -> int:
    return (b.year - a.year) * 12 + (b.month - a.month)


class Backtest:
    """One backtest folder: settings, origins, the loop, resume.

    Parameters
    ----------
    cfg : the settings; out : the output folder (created).
    builder : a ``PanelBuilder`` (default: from ``cfg.data`` or the run's data source).
    device, scheduler, threads : where it runs (``set_execution``): the GPT's ``--device``, a Dask
        ``--scheduler`` (``local:N``, ``tcp://HOST:PORT``) and torch threads per Dask task.
    """

    def __init__(self, cfg: BacktestConfig, out: str | Path, builder: PanelBuilder | None = None, *,
                 device: str | None = None, scheduler: str | None = None, threads: int | None = None) -> None:
        self.set_execution(device, scheduler, threads)
        self.cfg = cfg
        self.out = Path(out)
        self.run_info: dict = {}
        self.calibration = None  # the run's (forecaster.market.calibration), when it has one
        run = PanelRun(cfg.run) if cfg.run is not None else None
        if run is not None:
            self.run_info = run.info
            from forecaster.market.calibration import load_calibration  # deferred: it imports this module

            calibration = load_calibration(run.path)
            calibrated = cfg.temperature is None and calibration is not None
            if cfg.temperature is None:  # the run's calibrated temperature, recorded in backtest.json
                cfg.temperature = calibration.temperature if calibration is not None else 1.0
            self.calibration = calibration if calibrated else None
            if cfg.series is None:
                cfg.series = list(self.run_info["series"])
            for other in cfg.pool:  # a pooled run models the same series, in the same order
                other_series = list(PanelRun(other).info["series"])
                if other_series != list(self.run_info["series"]):
                    raise BacktestError(f"the pooled run {other} models {', '.join(other_series)}, not the series of "
                                        f"{cfg.run} ({', '.join(self.run_info['series'])}): pool runs of one recipe")
        if builder is None:
            if run is not None:  # the run's data source unless cfg.data names another
                builder = run.panel_builder(cfg.data, series=cfg.series, start=cfg.panel_start)
            elif cfg.data is not None:
                builder = PanelBuilder(cfg.data, series=cfg.series, start=cfg.panel_start)
            else:
                raise BacktestError("no data: give --data (or a --run, whose data source is used)")
        self.builder = builder
        if cfg.series is None:
            cfg.series = list(builder.series)
        self.full = builder.build()[cfg.series]
        self.origins = origin_schedule(self.full.index, cfg.start, cfg.end, cfg.every)
        if self.calibration is not None and len(self.origins):  # sampled at the calibrated temperature
            from forecaster.market.calibration import check_test_origins

            check_test_origins(run.path, self.origins[0])  # the calibration must not have seen a test origin
        if run is not None and len(self.origins):  # nor the drift tilts' fit (forecaster.market.drift)
            from forecaster.market.drift import check_drift_origins

            check_drift_origins(run.path, self.origins[0])
        self._pipes: dict[str, object] = {}

    # -- where it runs ---------------------------------------------------------------------
    def set_execution(self, device: str | None = None, scheduler: str | None = None,
                      threads: int | None = None) -> None:
        """Where the work runs; none of it changes a result on the same device.

        device : the GPT's ``--device`` (None: the CPU). scheduler : ``local:N`` or
        ``tcp://HOST:PORT`` (None: this process, origin after origin). threads : torch CPU
        threads per Dask task (default 1: one core per worker); ignored without a scheduler.
        Malformed values are refused here (``DeviceError``, ``SchedulerError``), before any work.
        """
        from foundation.cluster import parse_scheduler

        if device is not None:
            from forecaster.core.device import parse_device  # deferred: it imports torch

            parse_device(device)
        if scheduler is not None:
            parse_scheduler(scheduler)
        if threads is not None and threads < 1:
            raise BacktestError(f"--threads must be at least 1, got {threads}")
        self.device, self.scheduler, self.threads = device, scheduler, threads

    def __getstate__(self) -> dict:
        """What a Dask worker gets: everything but the loaded models (each worker loads its own)."""
        state = dict(self.__dict__)
        state["_pipes"] = {}
        return state

    # -- files -----------------------------------------------------------------------------
    def origin_path(self, origin: pd.Timestamp, fan: bool = False) -> Path:
        return self.out / "origins" / f"{origin.date()}{'.fan' if fan else ''}.parquet"

    def prepare(self) -> None:
        """Claim the folder and write the settings; refuse a folder holding anything but a backtest of these settings."""
        claim_backtest_dir(self.out)
        doc_path = self.out / "backtest.json"
        doc = {"format": "forecaster-backtest", "version": 1, "config": self.cfg.to_dict(),
               "origins": [str(o.date()) for o in self.origins]}
        if doc_path.exists():
            old = json.loads(doc_path.read_text())
            # settings added since that folder was written take their defaults
            saved = BacktestConfig.from_dict(old.get("config") or {"start": "", "end": ""}).to_dict()
            if saved != doc["config"]:
                changed = sorted(k for k in doc["config"] if saved.get(k) != doc["config"][k])
                raise BacktestError(f"{self.out} holds a backtest with other settings ({', '.join(changed)} differ); "
                                    "use another --out or delete it")
        write_text(doc_path, json.dumps(doc, indent=2))

    def done(self) -> list[pd.Timestamp]:
        return [o for o in self.origins if self.origin_path(o).exists()]

    # -- models ----------------------------------------------------------------------------
    def _check_run_as_of(self, run_dir: Path, origin: pd.Timestamp) -> None:
        last = PanelRun(run_dir).trained_until
        if last is not None and last > origin:
            raise BacktestError(f"the run {run_dir} was trained on data up to {last.date()}, after the origin "
                                f"{origin.date()} (look-ahead); train it with --as-of {origin.date()} or earlier, "
                                "or use --retrain-every")

    def _pipe(self, run_dir: Path):
        """The loaded pipeline of ``run_dir``; the cache keeps the runs of one forecast (the run and its pool)."""
        from forecaster.market.pipeline import ForecastPipeline  # deferred: it imports torch; baselines-only backtests never load it

        key = str(run_dir)
        if key not in self._pipes:
            if key not in {str(Path(r)) for r in (self.cfg.run, *self.cfg.pool)}:  # a retrained run replaces the last one
                self._pipes.clear()
            self._pipes[key] = ForecastPipeline.from_run(run_dir, device=self.device)
        return self._pipes[key]

    def retrain_dates(self) -> list[pd.Timestamp]:
        """Origins at which a new run is trained (expanding window), every ``retrain_every`` months."""
        if not self.cfg.retrain_every:
            return []
        dates = [self.origins[0]]
        for o in self.origins[1:]:
            if _months_between(dates[-1], o) >= self.cfg.retrain_every:
                dates.append(o)
        return dates

    def gpt_run_for(self, origin: pd.Timestamp, progress: bool = False) -> Path | None:
        """The run that forecasts from ``origin`` (trained first if the retraining policy needs it)."""
        if self.cfg.run is None:
            return None
        if not self.cfg.retrain_every:
            for run_dir in (self.cfg.run, *self.cfg.pool):
                self._check_run_as_of(Path(run_dir), origin)
            return Path(self.cfg.run)
        as_of = max(d for d in self.retrain_dates() if d <= origin)
        run_dir = self.out / "models" / str(as_of.date())
        from forecaster.market.backtest.retrain import train_as_of  # deferred: retraining loads torch; only this policy needs it

        train_as_of(self.builder, as_of, Path(self.cfg.run), run_dir, self.cfg.retrain_steps, progress=progress)
        return run_dir

    def models_for(self, origin: pd.Timestamp) -> list:
        models = []
        run_dir = self.gpt_run_for(origin)
        if run_dir is not None:
            pipe = self._pipe(run_dir)
            if self.cfg.pool:  # a seed ensemble: the paths split over the run and its pool
                from forecaster.market.pool import PooledPipeline

                pipe = PooledPipeline([pipe, *(self._pipe(Path(r)) for r in self.cfg.pool)])
            models.append(GPTModel(pipe, self.cfg.sampling(), yoy_index_levels(self.builder)))
        return models + make_baselines(self.cfg.baselines)

    # -- the loop --------------------------------------------------------------------------
    def run_origin(self, origin: pd.Timestamp) -> pd.DataFrame:
        """Forecast, score and write one origin; returns its scores. The builder's catalog (user series)
        is the active one meanwhile, in this process or a Dask worker's."""
        from data_sources import catalog

        with catalog.using(getattr(self.builder, "catalog", None)):
            return self._run_origin(origin)

    def _run_origin(self, origin: pd.Timestamp) -> pd.DataFrame:
        cfg = self.cfg
        panel = self.builder.build(origin)[cfg.series]
        assert panel.index[-1] == origin, f"the panel as of {origin.date()} ends on {panel.index[-1].date()}"
        seed = origin_seed(cfg.seed, origin)
        forecasts, errors, seconds = forecast_origin(self.models_for(origin), panel, cfg.n_paths, cfg.horizon, seed)
        realised = realised_after(self.full, origin, cfg.horizon)
        scores, fan = score_origin(forecasts, realised, panel, cfg.horizons, seed)
        scores.insert(0, "origin", origin)
        fan.insert(0, "origin", origin)
        meta = {"origin": str(origin.date()), "errors": errors, "seconds": seconds, "device": _gpt_device(forecasts),
                "realised_days": int(realised["date"].notna().sum()),
                "models": {k: {m: v for m, v in fc.meta.items()
                               if m in ("covers", "lags", "model_sha256", "run_dir", "pool")}
                           for k, fc in forecasts.items()}}
        write_parquet(fan, self.origin_path(origin, fan=True), meta)
        write_parquet(scores, self.origin_path(origin), meta)  # last: the commit point of this origin
        return scores

    def run(self, on_origin: Callable[[pd.Timestamp, dict], None] | None = None) -> pd.DataFrame:
        """Run every origin not done yet (in order, or as Dask tasks with a scheduler); returns all scores
        (finished origins read back). ``on_origin(origin, info)`` is called as each origin finishes."""
        self.prepare()
        if self.scheduler is not None:
            self._run_on_dask(on_origin)
            return load_scores(self.out)
        for origin in self.origins:
            if self.origin_path(origin).exists():
                if on_origin:
                    on_origin(origin, {"skipped": True})
                continue
            t0 = time.perf_counter()
            self.run_origin(origin)
            if on_origin:
                on_origin(origin, {"skipped": False, "seconds": time.perf_counter() - t0})
        return load_scores(self.out)


    def _run_on_dask(self, on_origin: Callable[[pd.Timestamp, dict], None] | None) -> None:
        """Every pending origin as one task on ``self.scheduler``; ``on_origin`` as each completes."""
        from foundation.cluster import dask_client

        pending = []
        for origin in self.origins:
            if self.origin_path(origin).exists():
                if on_origin:
                    on_origin(origin, {"skipped": True})
            else:
                pending.append(origin)
        if not pending:
            return
        for origin in pending:  # retraining (if any) here, in order: tasks only sample and score
            self.gpt_run_for(origin)
        with dask_client(self.scheduler) as client:
            from distributed import as_completed

            shared = client.scatter(self, broadcast=True, hash=False)  # sent once per worker, not per task
            futures = {client.submit(_origin_task, shared, origin, self.threads or 1, pure=False,
                                     key=f"origin-{origin.date()}-{id(self):x}"): origin for origin in pending}
            try:
                for future in as_completed(futures):
                    seconds = future.result()  # a task's exception is raised here (the rest are cancelled)
                    if on_origin:
                        on_origin(futures[future], {"skipped": False, "seconds": seconds})
            finally:
                client.cancel(list(futures))


def _origin_task(bt: Backtest, origin: pd.Timestamp, threads: int) -> float:
    """One origin on a Dask worker (the serial loop's ``run_origin``, with ``threads`` torch threads); its seconds."""
    from forecaster.core.device import torch_threads  # deferred: it imports torch

    t0 = time.perf_counter()
    with torch_threads(threads):
        bt.run_origin(origin)
    return time.perf_counter() - t0


def _gpt_device(forecasts: dict[str, Forecast]) -> str | None:
    """The device the GPT sampled on at this origin (None: no GPT forecast)."""
    fc = forecasts.get(GPT_MODEL)
    return None if fc is None else fc.meta.get("device")


def load_scores(out: str | Path) -> pd.DataFrame:
    """All per-origin scores of a backtest folder, with each origin's errors in an ``errors`` attribute."""
    files = sorted(p for p in (Path(out) / "origins").glob("*.parquet") if not p.name.endswith(".fan.parquet"))
    if not files:
        raise BacktestError(f"{out} holds no backtest results (no origins/*.parquet); run `forecaster backtest` first")
    frames, errors, seconds = [], {}, {}
    for p in files:
        frames.append(pd.read_parquet(p))
        meta = read_meta(p)
        if meta.get("errors"):
            errors[meta["origin"]] = meta["errors"]
        seconds[meta["origin"]] = meta.get("seconds", {})
    scores = pd.concat(frames, ignore_index=True)
    if "kind" not in scores.columns:  # every model failed at every origin: nothing was scored
        first = next(iter(errors.items()), None)
        raise BacktestError(f"{out}: no model produced a forecast at any origin"
                            + (f" (first error, at {first[0]}: {first[1]})" if first else ""))
    scores.attrs = {"errors": errors, "seconds": seconds}
    return scores


def load_fan(out: str | Path, origin) -> pd.DataFrame:
    """The fan quantiles and realised path of one origin."""
    return pd.read_parquet(Path(out) / "origins" / f"{pd.Timestamp(origin).date()}.fan.parquet")
