"""The whole cycle from Python: train a run, forecast from it, backtest it.

    import forecaster
    pipe = forecaster.train("embedded", "runs/demo", as_of="2017-12-29", preset="small", max_minutes=2)
    fc = pipe.predict(as_of="2018-12-31", n_paths=200, horizon=250)
    result = forecaster.backtest("runs/demo", "runs/demo/backtests/2018", start="2018-01-01", end="2018-06-30")

Parameters are named as in the library (``n_paths``, ``max_minutes``); the command
line maps its flags onto them. Every function here is what a ``forecaster``
command runs, without the printing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from data_sources.panel import DEFAULT_START, PanelBuilder
from forecaster.core.training.config import TrainConfig
from forecaster.market.backtest.report import build_report
from forecaster.market.backtest.runner import Backtest, BacktestConfig
from forecaster.market.backtest.summary import write_summary
from forecaster.market.backtest.windows import BacktestError, get_window
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.train import train_panel_run


def train(data: str | PanelBuilder = "embedded", out: str | Path = "runs/model", *, as_of=None,
          preset: str = "small", series: list[str] | None = None, start=DEFAULT_START,
          max_minutes: float | None = None, max_steps: int | None = None, engine: str = "torch",
          seed: int | None = None, progress: bool = False, log: Callable[[str], None] | None = None,
          **settings) -> ForecastPipeline:
    """Train (or resume) a run on ``data`` as of ``as_of`` into ``out``; returns its ``ForecastPipeline``.

    ``settings`` are any other ``TrainConfig`` fields (``patience``, ``context_rows``,
    ``lr``...) over the preset's defaults. Rerunning on the same ``out`` resumes.
    """
    cfg = TrainConfig.from_preset(preset, max_minutes=max_minutes, max_steps=max_steps, engine=engine, seed=seed,
                                  **settings)
    train_panel_run(data, out, cfg, as_of=as_of, series=series, start=start, progress=progress, log=log)
    return ForecastPipeline.from_run(out)


def refit(run: str | Path, out: str | Path, *, as_of=None, steps: int | None = None,
          max_minutes: float | None = None, progress: bool = False,
          log: Callable[[str], None] | None = None) -> ForecastPipeline:
    """Train ``out`` as the final refit of the validated ``run`` (``forecaster.market.refit``); returns its pipeline.

    The run's recipe on every day to ``as_of`` (default: the run's), for ``steps`` (default:
    the step of its lowest validation loss); it inherits the run's calibrated temperature.
    """
    from forecaster.market.refit import refit_run

    refit_run(run, out, as_of=as_of, steps=steps, max_minutes=max_minutes, progress=progress, log=log)
    return ForecastPipeline.from_run(out)


@dataclass
class BacktestResult:
    """What a backtest wrote: ``scores`` (one row per origin, model, series and horizon), the summary
    ``tables`` (``summary``, ``skill``, ``regimes``, ``energy``), the folder and its ``report.html``."""

    path: Path
    scores: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    report: Path
    origins: list[pd.Timestamp]
    seconds: float

    @property
    def skill(self) -> pd.DataFrame:
        """CRPS skill of the GPT over each baseline, with its block-bootstrap interval."""
        return self.tables["skill"]

    @property
    def errors(self) -> dict:
        """Models that failed at an origin: {(origin, model): message}."""
        return self.scores.attrs.get("errors", {})


def backtest(run: str | Path | None, out: str | Path, *, window: str | None = None, start=None, end=None,
             every: str | None = None, n_paths: int = 100, horizon: int = 250, data: str | None = None,
             series: list[str] | None = None, baselines: list[str] | None = None, retrain_every: int = 0,
             retrain_steps: int | None = None, seed: int = 0, temperature: float | None = None,
             top_k: int | None = None, top_p: float | None = None, pool: list[str | Path] | None = None,
             on_origin: Callable[[pd.Timestamp, dict], None] | None = None,
             on_start: Callable[[Backtest], None] | None = None, device: str | None = None,
             scheduler: str | None = None, threads: int | None = None) -> BacktestResult:
    """Backtest the run (``None``: baselines only, on ``data``) from every origin of ``window`` or ``start``..``end``.

    Writes per-origin scores, summary tables and ``report.html`` into ``out``; rerunning on the
    same ``out`` resumes. ``on_start`` sees the prepared ``Backtest`` (its origins, what is done);
    ``on_origin(origin, info)`` is called after each origin. ``device`` (``"auto"``, ``"cuda:0"``),
    ``scheduler`` (``"local:N"``, ``"tcp://HOST:PORT"``) and ``threads`` say where it runs
    (``Backtest.set_execution``; docs/SCALING.md): they never change a result on the same device.
    ``pool`` names more runs of the same recipe (other seeds) whose paths join ``run``'s: the
    ``n_paths`` are split over them (``BacktestConfig.pool``).
    """
    if window:
        w = get_window(window)
        start, end, every = start or w.start, end or w.end, every or w.every
    if not start or not end:
        raise BacktestError("give start and end (or a window such as '2018-2021')")
    if pd.Timestamp(end) < pd.Timestamp(start):
        raise BacktestError(f"end {pd.Timestamp(end).date()} is before start {pd.Timestamp(start).date()}")
    kw = {} if baselines is None else {"baselines": list(baselines)}
    cfg = BacktestConfig(start=str(pd.Timestamp(start).date()), end=str(pd.Timestamp(end).date()),
                         run=str(run) if run is not None else None, data=data,
                         series=list(series) if series else None, every=every or "1M", window=window,
                         n_paths=n_paths, horizon=horizon, seed=seed, retrain_every=retrain_every,
                         retrain_steps=retrain_steps, temperature=temperature, top_k=top_k, top_p=top_p,
                         pool=[str(r) for r in (pool or [])], **kw)
    t0 = time.perf_counter()
    bt = Backtest(cfg, out, device=device, scheduler=scheduler, threads=threads)
    if on_start is not None:
        on_start(bt)
    scores = bt.run(on_origin=on_origin)
    tables = write_summary(out, scores)
    seconds = time.perf_counter() - t0
    report = build_report(out, wall_seconds=seconds, skills=tables["skill"])
    return BacktestResult(Path(out), scores, tables, Path(report), list(bt.origins), seconds)
