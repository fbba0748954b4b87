"""`forecaster train`: fit the tokenizer on the panel's model frame and train the GPT.

One process::

    forecaster train --data embedded --out runs/demo --preset small

Several processes (DeepSpeed, data parallel; see docs/SCALING.md)::

    torchrun --standalone --nproc_per_node 2 -m forecaster train --engine deepspeed ...
    deepspeed --no_local_rank --module forecaster train --engine deepspeed ...

Rerunning the same command on the same ``--out`` resumes from the last checkpoint
(and removes what a killed run left there). While one command trains into ``--out``
another one is refused, naming the first one's PID. The steps themselves are
``forecaster.market.train.train_panel_run``'s; credit-card documents are trained
by `forecaster synth train`.
"""
from __future__ import annotations

from pathlib import Path

import typer

from foundation.errors import UserError
from forecaster.cli.data_cmd import AsOfOpt, CatalogOpt, DataOpt, PanelStartOpt, SeriesOpt
from forecaster.cli.options import ProgressOpt, set_threads, threads_option


class TrainingInterrupted(UserError):
    """Ctrl-C during training: the checkpoint is saved; exit code 130 like an interrupted shell command."""

    exit_code = 130


# train_panel_run's parameters -> this command's options, for its error messages
OPTIONS = {"series": "--series", "as_of": "--as-of", "val_start": "--val-start", "start": "--panel-start", "out": "--out",
           "transforms": "--transform", "bins": "--bins"}


def train(
    data: str = DataOpt,
    as_of: str = AsOfOpt,
    start: str = PanelStartOpt,
    series: str = SeriesOpt,
    out: Path = typer.Option(..., "--out", help="Run directory (created; an existing checkpoint there is resumed)."),
    preset: str = typer.Option("small", "--preset", help="Model size: tiny (tests), small (CPU demo), base (one GPU), large (many GPUs); day-level model: day-tiny (tests), day-small (CPU, ~25 min)."),
    engine: str = typer.Option("torch", "--engine", help="torch (one process, quickest on a CPU) or deepspeed (one or many processes)."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Wall-clock budget; stops with a checkpoint (rerun to continue)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Optimizer steps (default: the preset's)."),
    context_rows: int = typer.Option(None, "--context-rows", help="Rows (days) per training window (default: the preset's)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Windows per optimizer step over all processes."),
    grad_accum: int = typer.Option(None, "--grad-accum", help="Micro-batches per step on each process."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (warm-up, then cosine decay)."),
    eval_every: int = typer.Option(None, "--eval-every", help="Validation loss every N steps."),
    log_every: int = typer.Option(None, "--log-every", help="Train-loss lines in metrics.jsonl every N steps (default 10)."),
    patience: int = typer.Option(None, "--patience", help="Early stop after N evaluations without improvement (0 = off)."),
    val_fraction: float = typer.Option(None, "--val-fraction", help="Most recent fraction of days used for validation (default 0.1)."),
    val_start: str = typer.Option(None, "--val-start", help="First validation date instead of --val-fraction (YYYY-MM-DD)."),
    zero_stage: int = typer.Option(None, "--zero-stage", help="DeepSpeed ZeRO stage 0-3 (default 2)."),
    precision: str = typer.Option(None, "--precision", help="auto (bf16 on GPUs that support it), fp32 or bf16."),
    seed: int = typer.Option(None, "--seed", help="Seed of the weights, batches and dropout."),
    transform: list[str] = typer.Option(None, "--transform", help="Model a series with another transform than the "
                                        "default, e.g. VIX=level or CPI_YOY=diff (repeatable; recorded in run.json)."),
    model_option: list[str] = typer.Option(None, "--model-option", help="Change one key of the preset's model shape, "
                                           "e.g. state_dropout=0.5 or local_n_embd=96 (repeatable; in train_config.json)."),
    bins: int = typer.Option(None, "--bins", help="Most tokenizer bins per series, 2-512 (default 64); fewer bins "
                             "give each more data, more give finer values."),
    threads: int = threads_option(None),
    progress: bool = ProgressOpt,
    catalog: Path = CatalogOpt,
) -> None:
    """Train the GPT on windows of consecutive days of the model frame (validation = the most recent period)."""
    from forecaster.cli.data_cmd import build, catalog_scope, parse_date
    from forecaster.core.run import RunDir, check_run_target, is_main_process
    from forecaster.core.training.config import TrainConfig, parse_model_option
    from forecaster.market.run import data_source_spec
    from forecaster.market.train import TrainInputError, train_panel_run

    cfg = TrainConfig.from_preset(
        preset, engine=engine, max_minutes=max_minutes, max_steps=max_steps, context_rows=context_rows,
        batch_size=batch_size, grad_accum=grad_accum, lr=lr, eval_every=eval_every, log_every=log_every, patience=patience,
        val_fraction=val_fraction, zero_stage=zero_stage, precision=precision, seed=seed,
        model_options=dict(parse_model_option(o) for o in model_option or []) or None)
    run_dir = check_run_target(out)
    split = parse_date(val_start, "--val-start")
    chosen = {}
    for item in transform or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UserError(f"--transform {item!r}: write SERIES=TRANSFORM, e.g. VIX=level")
        chosen[name.strip()] = value.strip()
    set_threads(threads)
    with RunDir(run_dir).lock_if_main():  # a held folder is refused before any data is read
        builder, _ = build(data, as_of, start, series, catalog=catalog)
        try:
            with catalog_scope(builder):  # the user series of --catalog (or catalog.yaml beside the data)
                res = train_panel_run(builder, run_dir, cfg, as_of=parse_date(as_of, "--as-of"),
                                      series=builder.series if series else None, start=builder.start, val_start=split,
                                      data=data_source_spec(data), progress=progress,
                                      log=lambda text: typer.echo(text, err=True), transforms=chosen or None, bins=bins)
        except TrainInputError as exc:
            if exc.param in OPTIONS:
                raise TrainInputError(exc.message_for(OPTIONS[exc.param])) from None
            raise
        except KeyboardInterrupt as exc:  # the loop saved a checkpoint first
            raise TrainingInterrupted(f"{exc or 'interrupted'}; rerun the same command to resume") from None
    if is_main_process():
        typer.echo(result_line(res, run_dir))


def refit(
    run: Path = typer.Option(..., "--run", help="The validated run whose recipe is trained again (made by `forecaster train`)."),
    out: Path = typer.Option(..., "--out", help="The refit's run directory (created; an existing checkpoint there is resumed)."),
    as_of: str = typer.Option(None, "--as-of", help="The data's as-of date (default: the run's)."),
    data: str = typer.Option(None, "--data", help="Data source (default: the run's)."),
    steps: int = typer.Option(None, "--steps", help="Optimizer steps (default: the step of the run's lowest validation loss)."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Wall-clock budget; stops with a checkpoint (rerun to continue)."),
    threads: int = threads_option(None),
    progress: bool = ProgressOpt,
) -> None:
    """Train a validated run's recipe again on every day to its as-of date, for its best step count (no validation).

    The weights of a run never see its validation window (the last 10 % of days); the
    refit does, for the steps at which the run's validation loss was lowest, on the run's
    learning-rate schedule. It inherits the run's calibrated temperature.
    """
    from forecaster.cli.data_cmd import parse_date
    from forecaster.core.run import RunDir, check_run_target, is_main_process
    from forecaster.market.refit import refit_run
    from forecaster.market.run import PanelRun
    from forecaster.market.train import TrainInputError

    run_dir = check_run_target(out)
    if Path(run).resolve() == run_dir.resolve():
        raise UserError(f"--out {out} is the run itself; give the refit its own folder")
    set_threads(threads)
    with RunDir(run_dir).lock_if_main():
        try:
            builder = PanelRun(run).panel_builder(data) if data else None
            res = refit_run(run, run_dir, builder=builder, as_of=parse_date(as_of, "--as-of"), steps=steps,
                            max_minutes=max_minutes, progress=progress, log=lambda text: typer.echo(text, err=True))
        except TrainInputError as exc:
            option = {"steps": "--steps", "run": "--run", "out": "--out", "as_of": "--as-of"}.get(exc.param)
            if option is None:
                raise
            raise TrainInputError(exc.message_for(option)) from None
        except KeyboardInterrupt as exc:
            raise TrainingInterrupted(f"{exc or 'interrupted'}; rerun the same command to resume") from None
    if is_main_process():
        typer.echo(result_line(res, run_dir))


def result_line(res, run_dir: Path) -> str:
    """The line `forecaster train` ends with: why it stopped, steps, losses, where the run is."""
    losses = (f"validation loss {res.val_loss:.4f} (best {res.best_val_loss:.4f})" if res.best_val_loss < float("inf")
              else "no validation (a refit)")
    return (f"{res.reason}: {res.step} steps, train loss {res.train_loss:.4f}, {losses}; run in {run_dir}"
            + ("; rerun the same command to continue" if res.reason == "time" else ""))


def register(root: typer.Typer) -> None:
    root.command("train")(train)
    root.command("refit")(refit)
