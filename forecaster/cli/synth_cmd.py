"""`forecaster synth`: train a synthesizer on credit-card transactions, generate, evaluate.

    forecaster synth split    --data FILE --train TRAIN.csv --holdout HOLDOUT.csv [--fraction 0.8]
    forecaster synth train    --data TRAIN.csv --out RUN_DIR [--preset day-small|day-tiny] [--max-minutes M]
    forecaster synth calibrate --run RUN_DIR --data TRAIN.csv [--rounds 8] [--rows N]
    forecaster synth generate --run RUN_DIR --rows N|--histories H --out FILE.csv|FILE.parquet [--condition is_fraud=Yes ...]
                              [--dedupe-against TRAIN.csv] [--device auto|cpu|cuda[:N]] [--scheduler local:N|tcp://HOST:PORT]
    forecaster synth evaluate --real HOLDOUT.csv --synthetic FILE --train TRAIN.csv --out DIR [--run RUN_DIR]
    forecaster synth export-model --run RUN_DIR --out MODEL_DIR

Input files are TabFormer CSVs (the published format) or typed Parquet tables;
``--skip-bad-rows`` leaves malformed CSV lines out instead of stopping. See
docs/SYNTHESIS.md. ``--device`` is where the model trains or samples; ``generate
--scheduler`` samples the blocks of ``--batch-paths`` histories as Dask tasks, with the
serial command's output (docs/SCALING.md).
"""
from __future__ import annotations

from pathlib import Path

import typer

from foundation.cluster import SCHEDULER_HELP
from foundation.errors import UserError
from forecaster.cli.options import DEVICE_HELP, ProgressOpt, TemperatureOpt, TopKOpt, TopPOpt, progress_bar, set_threads, threads_option

synth = typer.Typer(help="Synthetic credit-card transactions: train, generate, evaluate.", no_args_is_help=True)

SkipOpt = typer.Option(False, "--skip-bad-rows", help="Leave malformed CSV lines out (counted) instead of stopping at the first.")
ThreadsOpt = threads_option(1, "1 is fastest on a shared, loaded CPU")


class SynthInterrupted(UserError):
    """Ctrl-C during training: the checkpoint is saved; exit code 130."""

    exit_code = 130


@synth.command("split")
def split_cmd(
    data: Path = typer.Option(..., "--data", help="TabFormer CSV or typed Parquet file."),
    train: Path = typer.Option(..., "--train", help="Output: the first part of every card's history (.csv or .parquet)."),
    holdout: Path = typer.Option(..., "--holdout", help="Output: the rest of every card's history (.csv or .parquet)."),
    fraction: float = typer.Option(0.8, "--fraction", help="Share of every card's rows (by time) in the training part."),
    skip_bad_rows: bool = SkipOpt,
) -> None:
    """Split transactions per card by time: the first FRACTION trains, the rest is the held-out reference."""
    from forecaster.synthesis.documents import read_table, split_by_card, write_table

    tr, ho = split_by_card(read_table(data, skip_bad_rows), fraction)
    write_table(tr, train)
    write_table(ho, holdout)
    typer.echo(f"{len(tr):,} training rows -> {train}; {len(ho):,} held-out rows -> {holdout}", err=True)


@synth.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Training transactions: TabFormer CSV or typed Parquet."),
    out: Path = typer.Option(..., "--out", help="Run directory (created; an existing checkpoint there is resumed)."),
    preset: str = typer.Option("day-small", "--preset", help="Day-level model size: day-small (CPU), day-tiny (tests); "
                               "tiny/small name the same."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Wall-clock budget; stops with a checkpoint (rerun to continue)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Optimizer steps (default: the preset's)."),
    context_rows: int = typer.Option(None, "--context-rows", help="Transactions of a card the model reads per window (default: the preset's)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Windows per optimizer step."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate."),
    val_fraction: float = typer.Option(None, "--val-fraction", help="Fraction of every card's rows used for validation "
                                       "(default 0.1): the block just before the card's latest --val-tail rows."),
    val_tail: float = typer.Option(None, "--val-tail", help="Share of every card's latest rows that trains after its "
                                   "validation block (default 0.15, so a card's newest behaviour is learnt; 0: the "
                                   "latest rows validate, the cut of older runs). A resumed run keeps its own."),
    eval_every: int = typer.Option(None, "--eval-every", help="Validation loss every N steps."),
    seed: int = typer.Option(None, "--seed", help="Seed of the weights and batches."),
    model_option: list[str] = typer.Option(None, "--model-option", help="Change one key of the preset's model shape, "
                                           "e.g. state_dropout=0 (repeatable; in train_config.json)."),
    refit_of: Path = typer.Option(None, "--refit-of", help="A validated `synth train` run: train --out like it on every "
                                  "row of --data (no validation) for the steps of its lowest validation loss, on its "
                                  "schedule; its recipe replaces the other training options (--max-minutes applies)."),
    threads: int = ThreadsOpt,
    device: str = typer.Option("auto", "--device", help="Where the model trains: cpu, cuda, cuda:N, or auto (the first "
                               "GPU that passes a test operation, else the CPU). bf16 on GPUs that support it."),
    skip_bad_rows: bool = SkipOpt,
    progress: bool = ProgressOpt,
) -> None:
    """Train the day-level GPT on windows of consecutive transactions of each card (a transaction per row)."""
    from forecaster.core.device import resolve_device
    from forecaster.synthesis.documents import read_table
    from forecaster.synthesis.train import on_device, refit_synthesizer, train_synthesizer
    from forecaster.core.run import RunDir, check_run_target
    from forecaster.core.training.config import parse_model_option

    options = dict(parse_model_option(o) for o in model_option or []) or None
    if refit_of is not None:
        given = [name for name, v in (("--max-steps", max_steps), ("--context-rows", context_rows),
                                      ("--batch-size", batch_size), ("--lr", lr), ("--val-fraction", val_fraction),
                                      ("--val-tail", val_tail), ("--eval-every", eval_every), ("--seed", seed), ("--model-option", options))
                 if v is not None]
        if given:
            raise UserError(f"--refit-of takes the recipe of {refit_of}; leave out {', '.join(given)}")
    dev = resolve_device(device)  # an unusable GPU is refused before the data is read
    on_device(dev)  # and a CPU run the engine cannot honour
    set_threads(threads)
    check_run_target(out)
    with RunDir(out).lock():  # refused at once, before reading the data, when another process trains there
        table = read_table(data, skip_bad_rows)
        try:
            info = {"data": str(Path(data).resolve())}
            if refit_of is not None:
                res = refit_synthesizer(table, refit_of, out, max_minutes=max_minutes, progress=progress, info=info,
                                        log=lambda m: typer.echo(m, err=True), device=dev)
            else:
                res = train_synthesizer(table, out, preset, max_minutes=max_minutes, max_steps=max_steps,
                                        context_rows=context_rows, batch_size=batch_size, lr=lr,
                                        val_fraction=val_fraction, eval_every=eval_every, seed=seed,
                                        progress=progress, info=info, log=lambda m: typer.echo(m, err=True),
                                        device=dev, model_options=options, val_tail=val_tail)
        except KeyboardInterrupt as exc:
            raise SynthInterrupted(f"{exc or 'interrupted'}; rerun the same command to resume") from None
    typer.echo(f"{res.reason}: {res.steps} steps, train loss {res.train_loss:.4f}, validation loss "
               f"{res.val_loss:.4f} (best {res.best_val_loss:.4f}); run in {res.run_dir}", err=True)


@synth.command("generate")
def generate_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory of `forecaster synth train`."),
    rows: int = typer.Option(None, "--rows", help="Rows to generate (with --context: new rows per context card)."),
    histories: int = typer.Option(None, "--histories", help="Instead of --rows: this many synthetic card histories of --rows-per-history rows."),
    out: Path = typer.Option(..., "--out", help="Output file: .csv (TabFormer format) or .parquet (typed table); an existing "
                             "file is replaced atomically, a folder or device is refused."),
    condition: list[str] = typer.Option(None, "--condition", help="Fix a column in every row, e.g. is_fraud=Yes, merchant_state=CA (repeatable)."),
    context: Path = typer.Option(None, "--context", help="Continue the cards of this file (their latest rows are the prompt)."),
    rows_per_history: int = typer.Option(200, "--rows-per-history", help="Rows per synthetic card history."),
    temperature: float = TemperatureOpt,
    top_k: int = TopKOpt,
    top_p: float = TopPOpt,
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler: the same seed gives the same rows."),
    batch_paths: int = typer.Option(256, "--batch-paths", help="Histories (with --context: cards) per block: a block is "
                                    "sampled in one batch (one model step for all) and is one Dask task; its histories "
                                    "are seeded by --seed and the block's number, so the output depends on --seed and "
                                    "--batch-paths only, not on --scheduler."),
    dedupe_against: Path = typer.Option(None, "--dedupe-against", help="The training transactions: drop every generated row "
                                        "equal to one of them in every column but the time (near-copies)."),
    dedupe_tolerance: float = typer.Option(0.0, "--dedupe-tolerance", help="With --dedupe-against: also drop rows whose "
                                           "amount is within this many dollars of such a training row's."),
    dedupe_extra: float = typer.Option(0.25, "--dedupe-extra", help="With --dedupe-against: sample this fraction more rows "
                                       "per history to make up for the dropped ones."),
    amount_noise: float = typer.Option(0.0, "--amount-noise", help="Multiply every amount by exp(N(0, this)) and round "
                                       "to cents (0.03: about 3% either way), before --dedupe-against: moves rows away "
                                       "from the training rows' exact amounts (new histories only)."),
    which: str = typer.Option("best", "--weights", help="best (lowest validation loss) or last."),
    no_marginals: bool = typer.Option(False, "--no-marginals", help="Sample the model's own distribution, without the "
                                      "run's marginal calibration (`synth calibrate`)."),
    threads: int = threads_option(1, "with --scheduler: per task; 1 is fastest on a shared, loaded CPU"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP + " With a tcp:// scheduler each worker resolves it."),
    scheduler: str = typer.Option(None, "--scheduler", help=SCHEDULER_HELP + " The run folder must be on storage "
                                  "every worker sees, at the same path."),
    skip_bad_rows: bool = SkipOpt,
    progress: bool = ProgressOpt,
) -> None:
    """Sample synthetic transactions (every row valid by construction) and write them."""
    from foundation.atomic import check_file_target
    from foundation.cluster import parse_scheduler
    from forecaster.core.device import parse_device, resolve_device
    from forecaster.synthesis.documents import SynthesisInputError, read_table, write_table
    from forecaster.core.sampler import SamplingConfig
    from forecaster.synthesis.generate import Synthesizer, parse_condition

    if out.suffix.lower() not in (".csv", ".parquet"):
        raise SynthesisInputError(f"{out}: the output must end in .csv or .parquet")
    check_file_target(out, "--out")  # before the model is loaded; the write checks again
    SamplingConfig(temperature, top_k, top_p)  # refused before the model is loaded
    if (rows is None) == (histories is None):
        raise UserError("give either --rows or --histories")
    if histories is not None:
        if context is not None:
            raise UserError("--histories is for new histories; with --context use --rows (new rows per card)")
        if histories < 1:
            raise UserError(f"--histories must be at least 1, got {histories}")
        rows = histories * rows_per_history
    parse_device(device)
    sched = parse_scheduler(scheduler) if scheduler else None
    dev = device
    if sched is None or sched.local:
        dev = resolve_device(device)  # this machine samples: an unusable GPU is refused before the model loads
    if sched is None:
        set_threads(threads)
    elif threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    conditions = dict(parse_condition(c) for c in (condition or []))
    if not 0 <= amount_noise <= 1:
        raise UserError(f"--amount-noise is a relative spread from 0 to 1 (0.03: about 3%), got {amount_noise}")
    if amount_noise and context is not None:
        raise UserError("--amount-noise applies to new histories; leave it out with --context")
    ctx = read_table(context, skip_bad_rows) if context is not None else None
    dedupe = None
    if dedupe_against is not None:
        from forecaster.synthesis.privacy import NearCopyIndex

        if ctx is not None:
            raise UserError("--dedupe-against applies to new histories; leave it out with --context")
        if dedupe_tolerance < 0 or not 0 <= dedupe_extra <= 10:
            raise UserError("--dedupe-tolerance must be >= 0 dollars and --dedupe-extra from 0 to 10")
        dedupe = NearCopyIndex(read_table(dedupe_against, skip_bad_rows))
    synth_model = Synthesizer(run, which=which, device=dev)
    # with --context, --rows is per card: the total is known once the cards are
    with progress_bar(progress, total=rows if ctx is None else None, desc="generating", unit="row") as bar:
        table, stats = synth_model.generate(rows, rows_per_history=rows_per_history, conditions=conditions,
                                            context=ctx, seed=seed, temperature=temperature, top_k=top_k, top_p=top_p,
                                            batch_paths=batch_paths, dedupe=dedupe, dedupe_tolerance=dedupe_tolerance,
                                            dedupe_extra=dedupe_extra, amount_noise=amount_noise,
                                            marginals=not no_marginals, scheduler=scheduler, threads=threads,
                                            progress=lambda done: bar.update(done - bar.n),
                                            log=lambda m: typer.echo(m, err=True))
    write_table(table, out)
    dropped = f"; {stats.near_copies_dropped} near-copies of training rows dropped" if dedupe is not None else ""
    dropped += "; marginal calibration added" if stats.calibrated else ""
    typer.echo(f"{stats.rows:,} rows in {stats.histories} histories -> {out} ({stats.seconds:.1f} s, "
               f"{stats.rows_per_s:,.0f} rows/s on {stats.device}; {stats.out_of_order_rows} rows out of time "
               f"order{dropped})", err=True)


@synth.command("calibrate")
def calibrate_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory of `forecaster synth train`."),
    data: Path = typer.Option(..., "--data", help="The run's training transactions (the file `synth train --data` read)."),
    rounds: int = typer.Option(8, "--rounds", help="Rounds of sampling and correction."),
    rows: int = typer.Option(None, "--rows", help="Rows sampled per round (default: the training rows, at least 16,000)."),
    seed: int = typer.Option(None, "--seed", help="First seed of the calibration samples (default 1,000,000: never a "
                             "seed a reported set uses)."),
    which: str = typer.Option("best", "--weights", help="best (lowest validation loss) or last."),
    threads: int = ThreadsOpt,
    skip_bad_rows: bool = SkipOpt,
) -> None:
    """Fit log-biases that give the sampled rows the training rows' shares: each card's merchants and yearly chip
    use, and the gap by the previous row's hour (marginals.json in the run; `synth generate` adds them)."""
    from forecaster.synthesis.documents import read_table
    from forecaster.synthesis.generate import Synthesizer
    from forecaster.synthesis.marginals import CALIBRATION_SEED, check_training_rows, fit_marginals

    set_threads(threads)
    synth_model = Synthesizer(run, which=which)
    train = read_table(data, skip_bad_rows)
    check_training_rows(synth_model, train, data)
    n = rows if rows is not None else max(16000, len(train))
    m = fit_marginals(synth_model, train, iterations=rounds, rows=n,
                      seed=CALIBRATION_SEED if seed is None else seed, log=lambda line: typer.echo(line, err=True))
    path = m.save(synth_model.run_dir)
    typer.echo(f"marginal calibration of {', '.join(m.bias)} -> {path} ({rounds} rounds of {n:,} rows); "
               "`synth generate` adds it (--no-marginals: without)", err=True)


@synth.command("evaluate")
def evaluate_cmd(
    real: Path = typer.Option(..., "--real", help="Held-out real transactions (the reference)."),
    synthetic: Path = typer.Option(..., "--synthetic", help="Synthetic transactions to judge."),
    out: Path = typer.Option(..., "--out", help="Output folder: report.json, summary.csv, report.html, samples. It must be "
                             "new, empty or a previous evaluation (replaced atomically); anything else is refused."),
    train: Path = typer.Option(None, "--train", help="The model's training transactions: copies, distances and the SDMetrics "
                               "scores are measured against them. Without it privacy is NOT assessed (measured against --real)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subsamples and the fraud classifiers."),
    dcr_rows: int = typer.Option(1000, "--dcr-rows", help="Synthetic (and held-out) rows used for distance-to-closest-record."),
    utility_extra: Path = typer.Option(None, "--utility-extra", help="More synthetic rows (e.g. generated with --condition is_fraud=Yes) used only to train the synthetic fraud classifier."),
    run: Path = typer.Option(None, "--run", help="The `synth train` run that generated --synthetic (recorded in "
                             "report.json, where the dashboard finds it to generate more)."),
    skip_bad_rows: bool = SkipOpt,
    progress: bool = ProgressOpt,
) -> None:
    """Privacy, fidelity and utility report of a synthetic table against real held-out transactions."""
    from forecaster.synthesis.documents import read_table
    from forecaster.synthesis.evaluate import evaluate
    from forecaster.synthesis.report import check_report_dir, markdown_table, write_report

    check_report_dir(out)  # before reading anything; the folder is published when the report is complete
    if train is None:
        typer.echo("WARNING: no --train: privacy (copies, DCR, near-copies) is measured against the held-out rows "
                   "--real, NOT the training rows; no privacy target is assessed. Give --train TRAIN.csv.", err=True)
    if run is not None and not run.is_dir():
        raise UserError(f"--run {run}: no such run folder")
    # three steps; the metrics are the long one
    with progress_bar(progress, total=3, desc="evaluating", unit="step") as bar:
        bar.set_postfix_str("reading the tables")
        real_t = read_table(real, skip_bad_rows)
        syn_t = read_table(synthetic, skip_bad_rows)
        train_t = read_table(train, skip_bad_rows) if train is not None else None
        extra_t = read_table(utility_extra, skip_bad_rows) if utility_extra is not None else None
        bar.update(1)
        bar.set_postfix_str("privacy, fidelity and utility metrics")
        report = evaluate(real_t, syn_t, train_t, seed=seed, dcr_rows=dcr_rows, utility_extra=extra_t)
        report["inputs"] = {"real": str(real), "synthetic": str(synthetic),
                            "train": None if train is None else str(train),
                            "utility_extra": None if utility_extra is None else str(utility_extra), "seed": seed,
                            "run": None if run is None else str(run.resolve())}
        bar.update(1)
        bar.set_postfix_str("writing the report")
        write_report(report, real_t, syn_t, out, seed=seed)
        bar.update(1)
    typer.echo(markdown_table(report))
    if report["coarse"]["exact_copy_flagged"]:
        typer.echo(f"WARNING: {report['coarse']['exact_copy_rate']:.2%} of the synthetic rows are exact copies of "
                   "training rows; do not share this table", err=True)
    if train is None:
        typer.echo("WARNING: privacy not assessed (no --train)", err=True)
    typer.echo(f"report in {out}", err=True)


@synth.command("export-model")
def export_model_cmd(
    run: Path = typer.Option(..., "--run", help="Run directory of `forecaster synth train`."),
    out: Path = typer.Option(..., "--out", help="New folder for the model to share (must not exist, or be empty)."),
    which: str = typer.Option("best", "--weights", help="best (lowest validation loss) or last."),
    no_marginals: bool = typer.Option(False, "--no-marginals", help="Leave the marginal calibration (per-card "
                                      "merchant shares, `synth calibrate`) out of the export."),
) -> None:
    """Write only what generation needs (weights, tokenizer, aggregate start statistics): no checkpoints,
    optimizer state, metrics, training file path or per-card counts. `synth generate --run MODEL_DIR` samples from it."""
    from forecaster.synthesis.export import export_model

    manifest = export_model(run, out, which=which, marginals=not no_marginals)
    typer.echo(f"{len(manifest['files'])} files -> {out} ({', '.join(sorted(manifest['files']))})", err=True)


def register(root: typer.Typer) -> None:
    root.add_typer(synth, name="synth")
