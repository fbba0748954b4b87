"""Options and helpers that several commands share: torch threads, sampling settings, progress bars.

One flag name per idea: every command that runs the model takes ``--threads``; every
command that samples takes ``--temperature``, ``--top-k`` and ``--top-p``; every long
step shows a progress bar on stderr, ``--no-progress`` turns it off, and it is never
drawn when stderr is not a terminal (a log file or a pipe gets no ``\\r`` lines).
"""
from __future__ import annotations

import typer

from foundation.errors import UserError

THREADS_HELP = "Torch CPU threads"

TemperatureOpt = typer.Option(1.0, "--temperature", help="Sampling temperature (1 = the model's distribution, 0 = the most likely token).")
RunTemperatureOpt = typer.Option(None, "--temperature", help="Sampling temperature (default: the run's calibrated one, `forecaster calibrate`, else 1; 1 = the model's distribution, 0 = the most likely token).")
TopKOpt = typer.Option(None, "--top-k", help="Sample only among the k most likely tokens (default off).")
TopPOpt = typer.Option(None, "--top-p", help="Nucleus sampling: only the smallest set of tokens with this much probability (default off).")
DEVICE_HELP = ("Where the model samples: cpu, cuda, cuda:N, or auto (the first GPU that passes a test operation, "
               "else the CPU). Same seed, same device: same paths.")
PoolOpt = typer.Option(None, "--pool", help="Comma-separated runs of --run's recipe (other seeds) whose paths join "
                       "--run's: the --paths are split evenly over them, all at --run's sampling settings (a seed "
                       "ensemble, forecaster.market.pool).")
ProgressOpt = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr (never when stderr is not a terminal).")


def threads_option(default: int | None, detail: str = "default: torch's own choice") -> typer.Option:
    """The ``--threads`` option with this command's default, explained in ``detail``."""
    return typer.Option(default, "--threads", help=f"{THREADS_HELP} ({detail}).")


def set_threads(n: int | None) -> None:
    """Use ``n`` torch CPU threads (``None``: leave torch's setting as it is)."""
    if n is None:
        return
    if n < 1:
        raise UserError(f"--threads must be at least 1, got {n}")
    import torch

    torch.set_num_threads(n)


def parse_pool(text: str | None, run) -> list[str]:
    """The run folders of a ``--pool`` value (empty: none); a one-line error for an entry that is no run folder."""
    from pathlib import Path

    entries = [t.strip() for t in (text or "").split(",") if t.strip()]
    if entries and run is None:
        raise UserError("--pool needs --run (the pooled runs' paths join it)")
    for entry in entries:
        if not (Path(entry) / "run.json").is_file():
            raise UserError(f"--pool: {entry} is not a run folder (no run.json)")
    return entries


def bar_disable(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a ``--progress/--no-progress`` value: ``None`` draws the bar only on a terminal."""
    return None if progress else True


def progress_bar(progress: bool, **kwargs):
    """A tqdm bar on stderr, drawn only when ``progress`` is on and stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(disable=bar_disable(progress), **kwargs)


# How data files are read where they cannot tell by themselves (data_sources.parsing.ReadOptions).
# A mapping file's own settings (at its top, or per series) win over these.
DayfirstOpt = typer.Option(None, "--dayfirst/--monthfirst", help="Numeric dates in the data files are day first "
                           "(02/01/2020 = 2 January) or month first (default: inferred from a day above 12; a file that reads both ways is refused).")
DateFormatOpt = typer.Option(None, "--date-format", help="strftime format of the files' dates, e.g. '%d/%m/%Y' (overrides --dayfirst).")
DecimalOpt = typer.Option(None, "--decimal", help="Decimal separator of the files' numbers, ',' or '.' (default: detected; a file that could be either is refused).")
DelimiterOpt = typer.Option(None, "--delimiter", help="Field delimiter of the files: ',', ';' or 'tab' (default: sniffed).")
AcceptOutliersOpt = typer.Option(False, "--accept-outliers", help="Keep values whose change is beyond 50 robust standard deviations "
                                 "of the series' changes (default: refused, naming the file, line and date).")
WeekendRowsOpt = typer.Option(None, "--weekend-rows", help="Rows of a daily market series dated on a Saturday or Sunday: "
                              "error (default), roll (to the next weekday, whose own row wins) or drop.")


def read_options(dayfirst: bool | None, date_format: str | None, decimal: str | None, delimiter: str | None,
                 accept_outliers: bool, weekend_rows: str | None):
    """The ``ReadOptions`` the reading flags ask for, or ``None`` when none is given (a bad value: a one-line error)."""
    from data_sources.parsing import ReadOptions

    given = {"dayfirst": dayfirst, "date_format": date_format, "decimal": decimal, "delimiter": delimiter,
             "accept_outliers": accept_outliers or None, "weekend_rows": weekend_rows}
    if all(v is None for v in given.values()):
        return None
    return ReadOptions().updated(given, "command line: ")
