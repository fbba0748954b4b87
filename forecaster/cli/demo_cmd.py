"""`forecaster demo`: from a fresh clone to a dashboard with real forecasts, offline, in one command.

On the embedded data (SPX, VIX, WTI, core CPI YoY, 1999-2019) it

1. trains a small model within a wall-clock budget (``train_panel_run``, what `forecaster train --preset
   small --max-minutes ...` runs), with data up to ``--train-as-of`` so the backtest's origins are out of sample;
2. forecasts ``--paths`` joint paths of ``--horizon`` business days from the end of the data;
3. runs a short backtest (a few monthly origins in 2018) when `forecaster backtest` is installed;
4. serves the dashboard on the result and prints its URL.

Each step is the project's own command (training: the library call it makes), printed so it can be rerun by hand. A
step whose output exists already is skipped (``--fresh`` redoes everything), so
a second ``forecaster demo`` starts the dashboard in seconds.
"""
from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import typer

from foundation.errors import UserError
from forecaster.cli.options import ProgressOpt, TemperatureOpt, TopKOpt, TopPOpt, set_threads, threads_option


def _step(n: int, total: int, text: str) -> None:
    typer.secho(f"\n[{n}/{total}] {text}", bold=True, err=True)


def _run(argv: list[str]) -> None:
    """Run a `forecaster` sub-command in this process; a failure stops the demo with its message."""
    from forecaster.cli import main

    typer.echo("  $ forecaster " + " ".join(argv), err=True)
    code = main(argv)
    if code != 0:
        raise UserError(f"`forecaster {' '.join(argv)}` failed (exit code {code}); see the message above")


def default_threads() -> int:
    """Every core when the machine is idle, one when its load average already fills the cores."""
    import os

    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return cores
    return 1 if load >= cores - 0.5 else cores


def _train(run: Path, preset: str, minutes: float, as_of: str, progress: bool) -> None:
    """Train the demo run with ``train_panel_run``, printing the `forecaster train` command that does the same."""
    import pandas as pd

    from forecaster.cli.train_cmd import TrainingInterrupted, result_line
    from forecaster.core.training.config import TrainConfig
    from forecaster.market.train import train_panel_run

    argv = ["train", "--data", "embedded", "--as-of", as_of, "--preset", preset, "--max-minutes", f"{minutes:g}",
            "--out", str(run), *([] if progress else ["--no-progress"])]
    typer.echo("  $ forecaster " + " ".join(argv), err=True)
    cfg = TrainConfig.from_preset(preset, max_minutes=minutes)
    try:
        res = train_panel_run("embedded", run, cfg, as_of=pd.Timestamp(as_of), progress=progress,
                              log=lambda text: typer.echo(text, err=True))
    except KeyboardInterrupt as exc:  # the loop saved a checkpoint first
        raise TrainingInterrupted(f"{exc or 'interrupted'}; rerun the demo to resume") from None
    typer.echo(result_line(res, run))


def _usable_weights(path: Path) -> bool:
    """Whether a cached run's weights pass the load checks; a run saved before weights carried a checksum does not."""
    from forecaster.core.training.checkpoint import CheckpointError, read_weights

    try:
        read_weights(path)
    except CheckpointError as exc:
        typer.echo(f"  {exc}", err=True)
        return False
    return True


def _sampling_argv(temperature: float, top_k: int | None, top_p: float | None) -> list[str]:
    """The sampling options of `forecaster forecast` that differ from its defaults."""
    argv = [] if temperature == 1.0 else ["--temperature", str(temperature)]
    if top_k is not None:
        argv += ["--top-k", str(top_k)]
    if top_p is not None:
        argv += ["--top-p", str(top_p)]
    return argv


def demo_steps(runs: Path, name: str, minutes: float, paths: int, horizon: int, as_of: str, train_as_of: str,
               backtest: bool, fresh: bool, preset: str = "small", bt_paths: int = 50, bt_horizon: int = 63,
               bt_start: str = "2018-01-01", bt_end: str = "2018-04-30", progress: bool = True,
               temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> Path:
    """Train, forecast and backtest into ``runs/name`` (the dashboard's layout); return the run folder.

    ``minutes`` is the training budget (``--max-minutes``); ``bt_start``/``bt_end`` the backtest's first
    and last origin; ``temperature``, ``top_k`` and ``top_p`` the forecast's sampling settings.
    """
    from forecaster.core.run import RunDir

    run = runs / name
    if fresh and run.exists():
        shutil.rmtree(run)
    bar = [] if progress else ["--no-progress"]
    total = 3 if backtest else 2
    t0 = time.perf_counter()

    _step(1, total + 1, f"Training a {preset} model on the embedded data (at most {minutes:g} min)")
    weights = RunDir(run).best_weights
    if weights.exists() and not fresh and not _usable_weights(weights):
        aside = run.with_name(f"{run.name}.unverified-{time.strftime('%Y%m%d-%H%M%S')}")
        run.rename(aside)  # kept, not deleted: the user may still want what is in it
        typer.echo(f"  moved it to {aside} and training a new one", err=True)
    if weights.exists() and not fresh:
        typer.echo(f"  {run} is trained already (use --fresh to retrain)", err=True)
    else:
        _train(run, preset, minutes, train_as_of, progress)

    _step(2, total + 1, f"Forecasting {paths} joint paths x {horizon} business days after {as_of}")
    fc_dir = run / "forecasts" / "base"
    if (fc_dir / "forecast.json").exists() and not fresh:
        typer.echo(f"  {fc_dir} exists already", err=True)
    else:
        _run(["forecast", "--run", str(run), "--as-of", as_of, "--paths", str(paths), "--horizon", str(horizon),
              "--out", str(fc_dir), *_sampling_argv(temperature, top_k, top_p), *bar])

    if backtest:
        _step(3, total + 1, f"Backtesting: monthly origins {bt_start} .. {bt_end}, {bt_paths} paths x {bt_horizon} days")
        bt_dir = run / "backtests" / "demo"
        if importlib.util.find_spec("forecaster.cli.backtest_cmd") is None:
            typer.echo("  `forecaster backtest` is not installed; the Backtest page will say so", err=True)
        else:
            try:
                _run(["backtest", "--run", str(run), "--out", str(bt_dir), "--first-origin", bt_start, "--last-origin", bt_end,
                      "--every", "1M", "--paths", str(bt_paths), "--horizon", str(bt_horizon),
                      "--baselines", "random_walk,climatology", *bar])
            except UserError as exc:  # the forecast is there; the dashboard still has something to show
                typer.secho(f"  backtest skipped: {exc}", fg="yellow", err=True)
    typer.echo(f"\nReady in {time.perf_counter() - t0:.0f} s: {run}", err=True)
    return run


def synth_steps(runs: Path, transactions: Path, minutes: float, rows: int, fresh: bool, progress: bool = True) -> Path:
    """Credit-card synthesis: split, train, generate, evaluate; returns the Synthesis page's folder ``runs/synth/cards``.

    The evaluation folder is published whole by `synth evaluate`, so the inputs and
    the model live beside it in ``runs/synth-work/cards`` (``--run`` records the model
    in report.json for the page's Generate button).
    """
    out = runs / "synth" / "cards"
    work = runs / "synth-work" / "cards"
    if (out / "report.json").exists() and not fresh:
        typer.echo(f"  {out} exists already", err=True)
        return out
    if not transactions.exists():
        raise UserError(f"--synth {transactions} not found (the TabFormer CSV, e.g. "
                        "../shared/data/tabformer/User0_credit_card_transactions.csv)")
    if fresh:  # the demo's own folders (an evaluation from before the output marker included)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    inputs, model = work / "inputs", work / "model"
    inputs.mkdir(parents=True, exist_ok=True)
    bar = [] if progress else ["--no-progress"]
    _run(["synth", "split", "--data", str(transactions), "--train", str(inputs / "train.parquet"),
          "--holdout", str(inputs / "holdout.parquet")])
    _run(["synth", "train", "--data", str(inputs / "train.parquet"), "--out", str(model), "--preset", "small",
          "--max-minutes", f"{minutes:g}", *bar])
    _run(["synth", "generate", "--run", str(model), "--rows", str(rows), "--out", str(inputs / "synthetic.parquet")])
    _run(["synth", "evaluate", "--real", str(inputs / "holdout.parquet"), "--train", str(inputs / "train.parquet"),
          "--synthetic", str(inputs / "synthetic.parquet"), "--run", str(model), "--out", str(out)])
    return out


def demo(
    runs: Path = typer.Option(Path("runs"), "--runs", help="Runs folder to write (the demo run goes to RUNS/<name>)."),
    name: str = typer.Option("demo", "--name", help="Run name inside --runs."),
    minutes: float = typer.Option(1.5, "--max-minutes", help="Wall-clock budget of each training, in minutes; stops with a "
                                  "checkpoint (rerun to continue)."),
    paths: int = typer.Option(200, "--paths", help="Paths of the forecast."),
    horizon: int = typer.Option(250, "--horizon", help="Business days ahead."),
    as_of: str = typer.Option("2018-12-31", "--as-of", help="Forecast origin (the embedded data ends 2019-01-03)."),
    train_as_of: str = typer.Option("2017-12-29", "--train-as-of", help="Last day of training data (before the backtest origins)."),
    backtest: bool = typer.Option(True, "--backtest/--no-backtest", help="Run a short backtest (4 monthly origins in 2018)."),
    fresh: bool = typer.Option(False, "--fresh", help="Redo every step even when its output exists."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Start the dashboard at the end."),
    host: str = typer.Option("127.0.0.1", "--host", help="Dashboard interface (loopback by default)."),
    port: int = typer.Option(8050, "--port", help="Dashboard port."),
    temperature: float = TemperatureOpt,
    top_k: int = TopKOpt,
    top_p: float = TopPOpt,
    progress: bool = ProgressOpt,
    threads: int = threads_option(None, "default: every core on an idle machine, 1 when the load average says the "
                                  "cores are busy: threads fighting for a core are slower"),
    transactions: Path = typer.Option(None, "--synth", help="Also run the credit-card synthesis on this TabFormer CSV "
                                      "(split, train, generate into RUNS/synth-work/cards, evaluate into "
                                      "RUNS/synth/cards; a few more minutes)."),
) -> None:
    """Train a small model on the embedded data, forecast, backtest, and open the dashboard on it (offline)."""
    t0 = time.perf_counter()
    threads = default_threads() if threads is None else threads
    set_threads(threads)
    typer.echo(f"torch threads: {threads}", err=True)
    demo_steps(runs, name, minutes, paths, horizon, as_of, train_as_of, backtest, fresh, progress=progress,
               temperature=temperature, top_k=top_k, top_p=top_p)
    if transactions is not None:
        typer.secho("\n[+] Credit-card synthesis (--synth)", bold=True, err=True)
        synth_steps(runs, transactions, minutes, 1000, fresh, progress)
    if not serve:
        return
    from forecaster.cli.dashboard_cmd import serve as serve_app

    def announce(url: str) -> None:
        typer.secho(f"\n[{4 if backtest else 3}/{4 if backtest else 3}] Dashboard ready after "
                    f"{time.perf_counter() - t0:.0f} s: open {url}  (Ctrl-C to stop)", bold=True, fg="green", err=True)
        typer.echo(f"Dashboard: {url}")

    serve_app(runs, host, port, announce=announce)


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
