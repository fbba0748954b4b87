"""`forecaster backtest`: rolling-origin backtest of a run against the baselines; tables and an HTML report.

    forecaster backtest --run runs/small --window 2018-2021 --paths 100 --horizon 250 --out backtests/2018-2021

Rerunning the same command on the same ``--out`` resumes: finished origins are not recomputed.
An ``--out`` holding anything but a backtest is refused before any work.

``--scheduler local:N`` runs the origins as Dask tasks on N local worker processes (one torch
thread each, or ``--threads``), ``--scheduler tcp://HOST:PORT`` on a running Dask cluster whose
workers see the same paths (docs/SCALING.md); the results are the serial run's. ``--device``
is where the GPT samples.
"""
from __future__ import annotations

from pathlib import Path

import typer

from foundation.cluster import SCHEDULER_HELP
from foundation.errors import UserError
from forecaster.cli.options import (
    DEVICE_HELP, PoolOpt, ProgressOpt, RunTemperatureOpt, TopKOpt, TopPOpt, parse_pool, progress_bar, set_threads, threads_option,
)
from forecaster.market.backtest.baselines import BASELINE_NAMES
from forecaster.market.forecast import MAX_HORIZON, check_horizon


def backtest(
    run: Path = typer.Option(None, "--run", help="Run directory made by `forecaster train` (omit for baselines only)."),
    out: Path = typer.Option(..., "--out", help="Output folder (per-origin Parquet, summary tables, report.html); rerun to "
                             "resume. It must be new, empty or a backtest: any other existing folder or file is refused."),
    window: str = typer.Option(None, "--window", help="A named window instead of --first-origin/--last-origin/--every (e.g. 2018-2021)."),
    start: str = typer.Option(None, "--first-origin", help="First origin date (YYYY-MM-DD)."),
    end: str = typer.Option(None, "--last-origin", help="Last origin date (YYYY-MM-DD)."),
    every: str = typer.Option(None, "--every", help="Origin schedule: a count and B/W/M/Q, e.g. 1M (default 1M)."),
    paths: int = typer.Option(100, "--paths", help="Paths per forecast, for the GPT and every baseline."),
    horizon: int = typer.Option(250, "--horizon", help=f"Business days ahead (1 to {MAX_HORIZON}, i.e. 10 years)."),
    data: str = typer.Option(None, "--data", help="Data source (default: the run's)."),
    catalog: Path = typer.Option(None, "--catalog", help="Catalog file of the user series (default: the one beside "
                                 "the data file)."),
    series: str = typer.Option(None, "--series", help="Comma-separated series (default: the run's)."),
    baselines: str = typer.Option(",".join(BASELINE_NAMES), "--baselines", help="Comma-separated baselines."),
    retrain_every: int = typer.Option(0, "--retrain-every", help="Retrain the GPT every K months on an expanding window (0: use --run as trained; it must end before the first origin)."),
    retrain_steps: int = typer.Option(None, "--retrain-steps", help="Optimizer steps per retraining (default: the run's)."),
    pool: str = PoolOpt,
    seed: int = typer.Option(0, "--seed", help="Base seed (each origin's seed depends on it and the date)."),
    temperature: float = RunTemperatureOpt,
    top_k: int = TopKOpt,
    top_p: float = TopPOpt,
    threads: int = threads_option(None, "with --scheduler: per task, default 1; else torch's own choice"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP + " With a tcp:// scheduler each worker resolves it."),
    scheduler: str = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    progress: bool = ProgressOpt,
) -> None:
    """Forecast from every origin with the GPT and the baselines, score against what happened, write tables and report.html."""
    from forecaster.cli.data_cmd import parse_date
    from forecaster.market.api import backtest as run_backtest
    from forecaster.market.backtest.runner import check_backtest_dir
    from forecaster.market.backtest.windows import get_window

    from foundation.cluster import parse_scheduler
    from forecaster.core.device import parse_device, resolve_device

    check_horizon(horizon)
    parse_device(device)
    sched = parse_scheduler(scheduler) if scheduler else None
    if run is not None and (sched is None or sched.local):
        resolve_device(device)  # this machine runs the GPT: an unusable GPU is refused before any work
    check_backtest_dir(out)  # before the panel is built; claimed when the loop starts
    if window:
        w = get_window(window)
        start, end = start or w.start, end or w.end
    if not start or not end:
        raise UserError("give --first-origin and --last-origin (or a --window such as 2018-2021)")
    first, last = parse_date(start, "--first-origin"), parse_date(end, "--last-origin")
    if last < first:
        raise UserError(f"--last-origin {last.date()} is before --first-origin {first.date()}")
    pool_runs = parse_pool(pool, run)
    if run is None and not data:
        raise UserError("give --run (the GPT to test) or at least --data for a baselines-only backtest")
    if sched is None:
        set_threads(threads)
    elif threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    from forecaster.cli.data_cmd import catalog_for_run, catalog_scope

    user_catalog = catalog_for_run(catalog, data, run)  # user series (a Dask worker process does not see it)
    with catalog_scope(user_catalog), progress_bar(progress, total=0, desc="origins", unit="origin") as bar:
        def begin(bt):
            done = len(bt.done())
            cfg = bt.cfg
            typer.echo(f"{len(bt.origins)} origins {bt.origins[0].date()} .. {bt.origins[-1].date()} every {cfg.every}"
                       f"{f' ({done} done, resuming)' if done else ''}; {cfg.n_paths} paths x {cfg.horizon} days; "
                       f"series {', '.join(cfg.series)}"
                       f"{f'; Dask scheduler {scheduler}' if scheduler else ''}", err=True)
            bar.reset(total=len(bt.origins))

        def step(origin, info):
            bar.set_postfix_str(str(origin.date()) + (" (done before)" if info.get("skipped") else ""))
            bar.update(1)

        result = run_backtest(
            run, out, window=window, start=first, end=last, every=every, n_paths=paths, horizon=horizon, data=data,
            series=[s.strip() for s in series.split(",") if s.strip()] if series else None,
            baselines=[b.strip() for b in baselines.split(",") if b.strip()], retrain_every=retrain_every,
            retrain_steps=retrain_steps, seed=seed, temperature=temperature, top_k=top_k, top_p=top_p,
            pool=pool_runs, on_origin=step, on_start=begin, device=device, scheduler=scheduler, threads=threads)
    if result.errors:
        typer.echo(f"warning: a model failed at {len(result.errors)} origin(s) (see report.html); first: "
                   f"{next(iter(result.errors.items()))}", err=True)
    typer.echo((Path(out) / "summary.md").read_text())
    typer.echo(f"{len(result.origins)} origins in {result.seconds:.0f} s -> {out} (report: {result.report})")


def register(root: typer.Typer) -> None:
    root.command("backtest")(backtest)
