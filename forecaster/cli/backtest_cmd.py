"""`forecaster backtest`: rolling-origin backtest of a run against the baselines; tables and an HTML report.

    forecaster backtest --run runs/small --window 2018-2021 --paths 100 --horizon 250 --out backtests/2018-2021

Rerunning the same command on the same ``--out`` resumes: finished origins are not recomputed.
An ``--out`` holding anything but a backtest is refused before any work.
"""
from __future__ import annotations

from pathlib import Path

import typer

from foundation.errors import UserError
from forecaster.cli.options import ProgressOpt, progress_bar, set_threads, threads_option
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
    series: str = typer.Option(None, "--series", help="Comma-separated series (default: the run's)."),
    baselines: str = typer.Option("random_walk,garch,var,climatology", "--baselines", help="Comma-separated baselines."),
    retrain_every: int = typer.Option(0, "--retrain-every", help="Retrain the GPT every K months on an expanding window (0: use --run as trained; it must end before the first origin)."),
    retrain_steps: int = typer.Option(None, "--retrain-steps", help="Optimizer steps per retraining (default: the run's)."),
    seed: int = typer.Option(0, "--seed", help="Base seed (each origin's seed depends on it and the date)."),
    threads: int = threads_option(None),
    progress: bool = ProgressOpt,
) -> None:
    """Forecast from every origin with the GPT and the baselines, score against what happened, write tables and report.html."""
    import time

    from forecaster.market.backtest.report import build_report
    from forecaster.market.backtest.runner import Backtest, BacktestConfig, check_backtest_dir
    from forecaster.market.backtest.summary import write_summary
    from forecaster.market.backtest.windows import get_window
    from forecaster.cli.data_cmd import parse_date

    check_horizon(horizon)
    check_backtest_dir(out)  # before the panel is built; claimed when the loop starts
    if window:
        w = get_window(window)
        start, end, every = start or w.start, end or w.end, every or w.every
    if not start or not end:
        raise UserError("give --first-origin and --last-origin (or a --window such as 2018-2021)")
    first, last = parse_date(start, "--first-origin"), parse_date(end, "--last-origin")
    if last < first:
        raise UserError(f"--last-origin {last.date()} is before --first-origin {first.date()}")
    if run is None and not data:
        raise UserError("give --run (the GPT to test) or at least --data for a baselines-only backtest")
    cfg = BacktestConfig(
        start=str(first.date()), end=str(last.date()),
        run=str(run) if run else None, data=data,
        series=[s.strip() for s in series.split(",") if s.strip()] if series else None, every=every or "1M",
        window=window, n_paths=paths, horizon=horizon, seed=seed,
        baselines=[b.strip() for b in baselines.split(",") if b.strip()],
        retrain_every=retrain_every, retrain_steps=retrain_steps)
    set_threads(threads)
    t0 = time.perf_counter()
    bt = Backtest(cfg, out)
    done = len(bt.done())
    typer.echo(f"{len(bt.origins)} origins {bt.origins[0].date()} .. {bt.origins[-1].date()} every {cfg.every}"
               f"{f' ({done} done, resuming)' if done else ''}; {cfg.n_paths} paths x {cfg.horizon} days; "
               f"series {', '.join(cfg.series)}", err=True)
    with progress_bar(progress, total=len(bt.origins), desc="origins", unit="origin") as bar:
        def step(origin, info):
            bar.set_postfix_str(str(origin.date()) + (" (done before)" if info.get("skipped") else ""))
            bar.update(1)

        scores = bt.run(on_origin=step)
    tables = write_summary(out, scores)
    wall = time.perf_counter() - t0
    report = build_report(out, wall_seconds=wall, skills=tables["skill"])
    errors = scores.attrs.get("errors", {})
    if errors:
        typer.echo(f"warning: a model failed at {len(errors)} origin(s) (see report.html); first: "
                   f"{next(iter(errors.items()))}", err=True)
    typer.echo((Path(out) / "summary.md").read_text())
    typer.echo(f"{len(bt.origins)} origins in {wall:.0f} s -> {out} (report: {report})")


def register(root: typer.Typer) -> None:
    root.command("backtest")(backtest)
