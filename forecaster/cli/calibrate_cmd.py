"""`forecaster calibrate`: choose a run's sampling temperature on a validation backtest, without look-ahead.

    forecaster calibrate --run runs/day-small                 # the run's own validation split
    forecaster calibrate --run runs/day-small --validation-start 2015-03-16 --validation-end 2017-12-29
    forecaster calibrate --run runs/day-small --drift             # then VIX's drift tilts (drift.json)
    forecaster calibrate --run runs/day-small --drift --keep-temperature   # only the drift, at the recorded temperature
    forecaster calibrate --run runs/day-small --tie-se 0      # the lowest score, without the one-standard-error rule

The choice is written to the run folder (``calibration.json``); ``forecast`` and
``backtest`` then sample at it unless given ``--temperature``, and a backtest of the run
must start after the validation window (``forecaster.market.calibration``). With
``--drift`` the drift tilts of the run's mean-reverting series follow, fitted at that
temperature on the days to the run's as-of date (``forecaster.market.drift``).
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
    tie_se: float = typer.Option(1.0, "--tie-se", help="A candidate nearer 1 within this many standard errors of the "
                                 "best score wins (a bootstrap over the origins); 0: the lowest score wins."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the scores and the choice; write nothing."),
    drift: bool = typer.Option(False, "--drift", help="Also fit the drift tilts of the run's mean-reverting series "
                               "(VIX), after the temperature (drift.json)."),
    drift_series: str = typer.Option(None, "--drift-series", help="Comma-separated series for --drift (default: the "
                                     "daily stationary series modeled by their changes); SERIES=spread (statistics "
                                     "joined by +) gives one series its own statistics instead of --drift-match's."),
    drift_rounds: int = typer.Option(4, "--drift-rounds", help="Rounds of the drift fit."),
    drift_match: str = typer.Option("mean,spread,spikes", "--drift-match", help="With --drift: the statistics of each "
                                    "level bucket's daily change matched to history: mean (the mean change), spread (the mean "
                                    "absolute change), spikes (the share of days above history's 97th percentile)."),
    drift_pairs: str = typer.Option(None, "--drift-pairs", help="With --drift: co-movement tilts DRIVER:SERIES "
                                    "(comma-separated, e.g. UST2Y:UST10Y): SERIES' draw follows DRIVER's change of the "
                                    "same day as much as history's did, by DRIVER's level."),
    keep_temperature: bool = typer.Option(False, "--keep-temperature", help="With --drift: keep the run's recorded "
                                          "temperature (calibration.json) and fit only the drift."),
    threads: int = threads_option(None),
    progress: bool = ProgressOpt,
) -> None:
    """Score candidate temperatures on a validation backtest of the run and record the best in the run folder."""
    from foundation.errors import UserError
    from forecaster.cli.data_cmd import parse_date

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
    if keep_temperature and not drift:
        raise UserError("--keep-temperature only goes with --drift (it skips the temperature's choice)")
    if drift_rounds < 1:
        raise UserError(f"--drift-rounds must be at least 1, got {drift_rounds}")
    from forecaster.market.drift import parse_match, parse_pairs, parse_series

    pairs, match = parse_pairs(drift_pairs), parse_match(drift_match)   # a bad spec is refused before any sampling
    names = parse_series(drift_series, match)
    set_threads(threads)
    say = (lambda line: typer.echo(line, err=True)) if progress else None
    if not keep_temperature:
        _temperature(run, data, start, end, temps, paths, every, hz, seed, tie_se, dry_run, say, drift)
    if drift:
        from forecaster.market.calibration import load_calibration
        from forecaster.market.drift import fit_drift

        cal = load_calibration(run)
        temp = None if cal is None or dry_run else cal.temperature
        fit = fit_drift(run, data, names, rounds=drift_rounds, temperature=temp, save=not dry_run,
                        pairs=pairs, match=match,
                        progress=say or (lambda line: typer.echo(line, err=True)))
        for name, d in fit.series.items():
            typer.echo(f"{name} drift, by the day before's level (edges {', '.join(f'{e:.4g}' for e in d.edges)}):")
            typer.echo("  history " + " ".join(f"{t:+.3f}" for t in d.target))
            typer.echo("  paths   " + " ".join("    -" if m is None else f"{m:+.3f}" for m in d.sampled[-1])
                       + "  (last round, before its update)")
            if not d.fit_mean:
                typer.echo("  held    " + " ".join("    -" if m is None else f"{m:+.3f}" for m in d.hold_mean)
                           + "  (the untilted paths' mean: the spread alone is matched)")
            typer.echo("  lambda  " + " ".join(f"{v:+.3f}" for v in d.lam))
            if d.kappa:
                typer.echo("  mean |change|, history " + " ".join(f"{t:.3f}" for t in d.target_abs))
                typer.echo("  mean |change|, paths   " + " ".join("    -" if m is None else f"{m:.3f}"
                                                                for m in d.sampled_abs[-1]))
                typer.echo("  kappa   " + " ".join(f"{v:+.3f}" for v in d.kappa))
            if d.eta:
                typer.echo(f"  spike days (change above {d.spike:.3g}) %, history "
                           + " ".join(f"{100 * t:.2f}" for t in d.target_spike))
                typer.echo("  spike days %, paths   " + " ".join("    -" if m is None else f"{100 * m:.2f}"
                                                                for m in d.sampled_spike[-1]))
                typer.echo("  eta     " + " ".join(f"{v:+.3f}" for v in d.eta))
        for pr in fit.pairs:
            typer.echo(f"{pr.name} co-movement, by {pr.driver}'s previous level (edges "
                       f"{', '.join(f'{e:.4g}' for e in pr.edges)}): mean product of the two changes")
            typer.echo("  history " + " ".join(f"{t:+.4f}" for t in pr.target))
            typer.echo("  paths   " + " ".join("    -" if m is None else f"{m:+.4f}" for m in pr.sampled[-1])
                       + "  (last round, before its update)")
            typer.echo("  gamma   " + " ".join(f"{v:+.3f}" for v in pr.gamma))
        where = "not written (--dry-run)" if dry_run else f"written to {run / 'drift.json'}"
        typer.echo(f"drift tilts at temperature {fit.temperature:g}, {len(fit.origins)} origins x {fit.n_paths} paths "
                   f"x {fit.rounds} rounds ({fit.seconds:.0f} s): {where}")


def _temperature(run, data, start, end, temps, paths, every, hz, seed, tie_se, dry_run, say, drift: bool) -> None:
    from forecaster.market.calibration import calibrate as run_calibration

    cal = run_calibration(run, data, start, end, temperatures=temps, n_paths=paths, every=every, horizons=hz,
                          seed=seed, tie_se=tie_se, save=not dry_run, progress=say)
    typer.echo(f"validation {cal.validation_start} .. {cal.validation_end}: {len(cal.origins)} origins x "
               f"{cal.n_paths} paths, horizons {', '.join(map(str, cal.horizons))} ({cal.seconds:.0f} s)")
    best = min(cal.scores, key=cal.scores.get)
    typer.echo(f"temperature  mean CRPS / CRPS at 1  (standard error of the difference from the best, {best})")
    for t, score in sorted(cal.scores.items(), key=lambda kv: float(kv[0])):
        se = f"  +- {cal.score_se[t]:.4f}" if t != best else "  (best)  "
        typer.echo(f"{float(t):>11g}  {score:.4f}{se}{'  <- chosen' if float(t) == cal.temperature else ''}")
    if cal.temperature != float(best):
        typer.echo(f"temperature {cal.temperature:g} is within {cal.tie_se:g} standard error(s) of {best} and nearer 1 "
                   "(--tie-se 0: the lowest score)")
    where = "not written (--dry-run)" if dry_run else f"written to {run / 'calibration.json'}"
    typer.echo(f"temperature {cal.temperature:g}: {where}")
    if not dry_run and not drift:
        from forecaster.market.drift import drift_path, load_drift

        fitted = load_drift(run)
        if fitted is not None and fitted.temperature != cal.temperature:
            typer.echo(f"note: the run's drift tilts ({drift_path(run)}) were fitted at temperature "
                       f"{fitted.temperature:g}; fit them at this one: forecaster calibrate --run {run} --drift "
                       f"--keep-temperature {fitted.options()}", err=True)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
