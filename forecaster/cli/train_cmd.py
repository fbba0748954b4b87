"""`forecaster train`: fit the tokenizer on the panel's model frame and train the GPT.

One process::

    forecaster train --data embedded --out runs/demo --preset small

Several processes (DeepSpeed, data parallel; see docs/SCALING.md)::

    torchrun --standalone --nproc_per_node 2 -m forecaster train --engine deepspeed ...
    deepspeed --no_local_rank --module forecaster train --engine deepspeed ...

Rerunning the same command on the same ``--out`` resumes from the last checkpoint
(and removes what a killed run left there). While one command trains into ``--out``
another one is refused, naming the first one's PID.
"""
from __future__ import annotations

from pathlib import Path

import typer

from foundation.errors import UserError
from forecaster.cli.data_cmd import AsOfOpt, DataOpt, SeriesOpt, StartOpt


class TrainingInterrupted(UserError):
    """Ctrl-C during training: the checkpoint is saved; exit code 130 like an interrupted shell command."""

    exit_code = 130


def train(
    data: str = DataOpt,
    as_of: str = AsOfOpt,
    start: str = StartOpt,
    series: str = SeriesOpt,
    out: Path = typer.Option(..., "--out", help="Run directory (created; an existing checkpoint there is resumed)."),
    preset: str = typer.Option("small", "--preset", help="Model size: tiny (tests), small (CPU demo), base (one GPU), large (many GPUs)."),
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
    transactions: Path = typer.Option(None, "--transactions", help="Train on a TabFormer credit-card CSV instead of the panel: one document per user/card."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Train the GPT on windows of consecutive days of the model frame (validation = the most recent period)."""
    import contextlib
    import os

    from forecaster.core.training.checkpoint import RunDir, check_run_target
    from forecaster.core.training.config import TrainConfig

    cfg = TrainConfig.from_preset(
        preset, engine=engine, max_minutes=max_minutes, max_steps=max_steps, context_rows=context_rows,
        batch_size=batch_size, grad_accum=grad_accum, lr=lr, eval_every=eval_every, log_every=log_every, patience=patience,
        val_fraction=val_fraction, zero_stage=zero_stage, precision=precision, seed=seed)
    run_dir = check_run_target(out)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    # one process trains into a folder at a time; under torchrun/deepspeed rank 0 holds it
    with RunDir(run_dir).lock() if rank0 else contextlib.nullcontext():
        _train(cfg, run_dir, rank0, data, as_of, start, series, val_start, transactions, preset, progress)


def data_source_spec(data: str) -> str:
    """``--data`` as recorded in run.json: a named source as it is, a file as an absolute path.

    So a run forecasts from any working directory.
    """
    if data in ("embedded", "online", "store"):
        return data
    return str(Path(data).expanduser().resolve())


def _train(cfg, run_dir: Path, rank0: bool, data: str, as_of, start, series, val_start, transactions,
           preset: str, progress: bool) -> None:
    """Build the data and tokenizer, then train into ``run_dir`` (held by rank 0)."""
    from forecaster.cli.data_cmd import build, parse_date
    from forecaster.market.features import model_frame
    from forecaster.core.tokenizer import TableTokenizer
    from forecaster.market.tokenizer import market_specs
    from forecaster.core.training.checkpoint import RunDir
    from forecaster.core.training.config import model_config_for
    from forecaster.core.training.engine import train as run_training
    from forecaster.core.training.windows import make_datasets, panel_segment, val_start_of

    split = parse_date(val_start, "--val-start")
    # The tokenizer sees everything known at --as-of (the validation period included);
    # the model's weights never see the validation windows.
    if transactions is not None:
        tok, segments, info = _transaction_data(transactions, parse_date(as_of, "--as-of"))
        what = "transactions"
    else:
        builder, panel = build(data, as_of, start, series)
        frame = model_frame(panel)
        # the split make_datasets would choose, known before tokenizing (it depends on the days only)
        split = split if split is not None else val_start_of(frame.index.values, cfg.val_fraction)
        frame = _learnable(frame, split, explicit=series is not None)
        tok = TableTokenizer.fit(frame, market_specs(frame))
        segments = [panel_segment(tok.encode(frame), frame.index)]  # (days, tokens_per_row)
        info = {"data": data_source_spec(data), "source": builder.source.name, "as_of": as_of, "start": start,
                "series": list(frame.columns), "first_date": str(frame.index[0].date()),
                "last_date": str(frame.index[-1].date())}
        what = f"days x {len(frame.columns)} series"
    train_ds, val_ds, split = make_datasets(segments, cfg.context_rows, cfg.val_fraction, split)
    info["val_start"] = str(split.date())
    mcfg = model_config_for(preset, tok.vocab_size, tok.tokens_per_row, cfg.context_rows)
    if rank0:
        run_dir.mkdir(parents=True, exist_ok=True)
        if RunDir(run_dir).latest() is None:  # a fresh run (a resumed one checks the fingerprint instead)
            tok.save(run_dir / "tokenizer.json")
        typer.echo(f"{sum(len(g.tokens) for g in segments):,} {what} -> {tok.tokens_per_row} tokens/row, "
                   f"vocabulary {tok.vocab_size:,}; windows of {cfg.context_rows} rows ({mcfg.block_size} tokens); "
                   f"train {train_ds.time_range()[0]}..{train_ds.time_range()[1]} ({len(train_ds):,} windows), "
                   f"validation from {split.date()} ({len(val_ds):,} windows); engine {cfg.engine}", err=True)
    try:
        res = run_training(mcfg, cfg, train_ds, val_ds, run_dir, info=info, fingerprint=tok.fingerprint(),
                           progress=progress)
    except KeyboardInterrupt as exc:  # the loop saved a checkpoint first
        raise TrainingInterrupted(f"{exc or 'interrupted'}; rerun the same command to resume") from None
    if rank0:
        typer.echo(f"{res.reason}: {res.step} steps, train loss {res.train_loss:.4f}, "
                   f"validation loss {res.val_loss:.4f} (best {res.best_val_loss:.4f}); run in {run_dir}"
                   + ("; rerun the same command to continue" if res.reason == "time" else ""))


def _learnable(frame, split, explicit: bool):
    """The model frame without series that have no value before the validation start ``split``.

    Such a series (XLRE, which starts in October 2015, trained as of 2017) is the
    "missing" token on every training day and real values on validation days: the model
    cannot learn it, and its validation loss grows as the model learns the rest, so early
    stopping would stop the whole run almost at once. Left out with a note, or an error
    when ``--series`` asked for it by name.
    """
    seen = frame.loc[frame.index < split].notna().any()
    unseen = [str(c) for c in frame.columns if not seen[c]]
    if not unseen:
        return frame
    firsts = ", ".join(f"{c} (first value {_first_date(frame[c])})" for c in unseen)
    if explicit:
        raise UserError(f"--series: {firsts} has no value before the validation start {split.date()}; "
                        "drop it or use a later --as-of")
    if len(unseen) == frame.shape[1]:
        raise UserError(f"no series has a value before the validation start {split.date()}")
    typer.echo(f"left out {firsts}: no value before the validation start {split.date()}, "
               "so the model could not learn it", err=True)
    return frame.drop(columns=unseen)


def _first_date(x) -> str:
    valid = x.first_valid_index()
    return "none" if valid is None else str(valid.date())


def _transaction_data(path: Path, as_of):
    """Tokenizer, per-user/card segments and run info of a TabFormer transactions CSV known at ``as_of``."""
    from data_sources.tabformer import read_tabformer
    from forecaster.core.tokenizer import TableTokenizer
    from forecaster.synthesis.tokenizer import tabformer_specs
    from forecaster.core.training.windows import document_segments

    import pandas as pd

    table = read_tabformer(path)
    if as_of is not None:  # the whole --as-of day is known
        table = table[table["timestamp"] < as_of.normalize() + pd.Timedelta(days=1)]
    if table.empty:
        raise UserError(f"{path} has no transactions up to --as-of")
    tok = TableTokenizer.fit(table, tabformer_specs(table))
    keys = table["user"].astype("int64").to_numpy() * 100_000 + table["card"].astype("int64").to_numpy()
    segments = document_segments(tok.encode(table), table["timestamp"].to_numpy(), keys)
    info = {"data": str(Path(path).resolve()), "source": "tabformer", "as_of": None if as_of is None else str(as_of.date()),
            "documents": len(segments), "first_date": str(table["timestamp"].min().date()),
            "last_date": str(table["timestamp"].max().date())}
    return tok, segments, info


def register(root: typer.Typer) -> None:
    root.command("train")(train)
