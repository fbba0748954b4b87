"""`forecaster calibrate`: choose a run's sampling temperature on a validation backtest, without look-ahead.

    forecaster calibrate --run runs/day-small                 # the run's own validation split
    forecaster calibrate --run runs/day-small --validation-start 2015-03-16 --validation-end 2017-12-29

The choice is written to the run folder (``calibration.json``); ``forecast`` and
``backtest`` then sample at it unless given ``--temperature``, and a backtest of the run
must start after the validation window (``forecaster.market.calibration``).
"""
from __future__ import annotations

from pathlib import Path

import typer

from forecaster.cli.options import ProgressOpt, set_threads, threads_option


def calibrate(
    run: Path = typer.Option(..., "--run", help="Run directory made by `forecaster train`."),
    validation_start: str = typer.Option(None, "--validation-start", help="First origin of the validation window "
                                         "(default: the run's validation split; after its training data)."),
    validation_end: str = typer.Option(None, "--validation-end", help="Last day of the validation window: no data "
                                       "published after it is read (default: the run's validation split's end)."),
    temperatures: str = typer.Option("0.8,0.9,1,1.1,1.25", "--temperatures", help="Comma-separated candidates (1 is "
                                     "always scored: it is the reference)."),
    paths: int = typer.Option(50, "--paths", help="Paths per origin and candidate."),
    every: str = typer.Option("2M", "--every", help="Origin spacing in the window: a count and B/W/M/Q."),
    horizons: str = typer.Option("21,63,250", "--horizons", help="Business days scored (those ending in the window)."),
    data: str = typer.Option(None, "--data", help="Data source (default: the run's)."),
    seed: int = typer.Option(0, "--seed", help="Base seed (every candidate samples with the same seeds)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the scores and the choice; write nothing."),
    threads: int = threads_option(None),
    progress: bool = ProgressOpt,
) -> None:
    """Score candidate temperatures on a validation backtest of the run and record the best in the run folder."""
    from foundation.errors import UserError
    from forecaster.cli.data_cmd import parse_date
    from forecaster.market.calibration import calibrate as run_calibration

    def numbers(text: str, option: str, kind=float) -> list:
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"{option} {text!r}: give comma-separated numbers, e.g. 0.9,1,1.1") from None
        if not values:
            raise UserError(f"{option} is empty")
        return values

    temps = numbers(temperatures, "--temperatures")
    hz = numbers(horizons, "--horizons", int)
    if any(h < 1 for h in hz):
        raise UserError(f"--horizons {horizons!r}: business days must be at least 1")
    start = parse_date(validation_start, "--validation-start") if validation_start else None
    end = parse_date(validation_end, "--validation-end") if validation_end else None
    set_threads(threads)
    say = (lambda line: typer.echo(line, err=True)) if progress else None
    cal = run_calibration(run, data, start, end, temperatures=temps, n_paths=paths, every=every, horizons=hz,
                          seed=seed, save=not dry_run, progress=say)
    typer.echo(f"validation {cal.validation_start} .. {cal.validation_end}: {len(cal.origins)} origins x "
               f"{cal.n_paths} paths, horizons {', '.join(map(str, cal.horizons))} ({cal.seconds:.0f} s)")
    typer.echo("temperature  mean CRPS / CRPS at 1")
    for t, score in sorted(cal.scores.items(), key=lambda kv: float(kv[0])):
        typer.echo(f"{float(t):>11g}  {score:.4f}{'  <- chosen' if float(t) == cal.temperature else ''}")
    where = "not written (--dry-run)" if dry_run else f"written to {run / 'calibration.json'}"
    typer.echo(f"temperature {cal.temperature:g}: {where}")


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
