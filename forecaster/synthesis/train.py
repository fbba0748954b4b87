"""Train the day-level GPT on credit-card documents: table -> tokenizer -> per-card row windows -> engine.

A transaction is one row of the global model and a card's history its sequence
(``documents``); a window is ``context_rows + 1`` consecutive transactions of one
card with their input features. Only day-level presets (``day-tiny``, ``day-small``)
apply.

The run directory is the one of ``forecaster train`` (``forecaster.core.run.RunDir``)
plus ``tokenizer.json`` and ``synthesis.json``: the columns the model writes and
the *aggregate* statistics generation starts from (the transactions of each card
index in each month, and the most common value of each column). No real
transaction is stored in the run directory; but it holds per-card aggregates (the
card counts; for a one-user sample these are that person's), optimizer
checkpoints, the metrics history and the training file's path, and the
tokenizer's category lists (merchant ids, cities, zips seen in training): treat it
as confidential and share ``synth export-model``'s folder instead (``export``).
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from foundation.atomic import write_text
from forecaster.core.device import Device, DeviceError, as_device, cuda_count
from forecaster.core.run import RunDir, check_run_target
from forecaster.core.tokenizer import TableTokenizer
from forecaster.core.training.config import TrainConfig, model_config_for, model_kind
from forecaster.core.training.engine import train as run_training
from forecaster.core.training.metrics import best_validation_step
from forecaster.synthesis.documents import (
    FEATURE_NAMES, MODEL_COLUMNS, ROW_COLUMNS, VAL_TAIL, SynthesisInputError, card_segments, check_table,
    describe_cut, fit_tokenizer, window_datasets,
)

#: synthesis has one model kind, the day-level one: the flat presets' names stand for their day-level peers
PRESET_ALIASES = {"tiny": "day-tiny", "small": "day-small"}
#: the model shape synthesis trains, over the preset's (tuned on the market panel): measured on the shared
#: card sample (docs/SYNTHESIS.md), a 128-wide local decoder without state dropout reached a validation loss
#: of 1.371 in 250 steps; the preset's 64-wide one with state dropout 0.3, 1.436 at 350 (0: 1.380 at 650).
#: ``--model-option`` overrides a key; the shape used is recorded in train_config.json / model_config.json.
SYNTHESIS_SHAPE: dict[str, dict] = {"day-small": {"state_dropout": 0.0, "local_n_embd": 128}}
SYNTHESIS_FILE = "synthesis.json"  # beside the RunDir layout (forecaster.core.run)
FORMAT = "forecaster-synthesis"
VERSION = 2  # 2: the day-level model, gaps and time of day instead of calendar parts


@dataclass
class SynthTrainResult:
    """What a training call did: the engine's result plus the data it saw."""

    run_dir: Path
    steps: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    reason: str
    train_windows: int
    val_windows: int
    tokens_per_row: int
    vocab_size: int
    val_tail: float = VAL_TAIL  # the validation cut (documents.split_segments); 0: each card's latest rows validate


def seed_statistics(table: pd.DataFrame) -> dict:
    """Aggregates that generation starts from: card and month frequencies, per-column modes.

    Returns a JSON-able dict: ``cards`` {card: count}, ``months`` {"YYYY-MM": count} (the
    marginals), ``card_months`` [[card, "YYYY-MM", count], ...] sorted, the transactions of
    each card in each month (a history's card and the month it starts in are drawn from
    these jointly: a card only starts in a month it was used in), ``card_month_use_chip``
    [[card, "YYYY-MM", value], ...] the card's most common use_chip in that month (a history's
    burn-in rows are primed with it), ``modes`` {column: most common value as text or number,
    None for missing}.
    """
    card = table["card"].astype("int64")
    month = table["timestamp"].dt.to_period("M").astype(str)
    cards = card.value_counts().sort_index()
    months = month.value_counts().sort_index()
    pairs = pd.DataFrame({"card": card.to_numpy(), "month": month.to_numpy(), "use_chip": table["use_chip"].astype(str)})
    joint = pairs[["card", "month"]].value_counts().sort_index()
    chip = pairs.groupby(["card", "month"])["use_chip"].agg(lambda s: s.value_counts().index[0]).sort_index()
    modes: dict = {}
    for col in MODEL_COLUMNS:
        if col in ("card", "timestamp"):
            continue
        if col == "amount":
            modes[col] = float(table[col].median())
            continue
        counts = table[col].value_counts(dropna=False)
        value = counts.index[0]
        modes[col] = None if pd.isna(value) else (value.item() if hasattr(value, "item") else value)
    return {"cards": {str(k): int(v) for k, v in cards.items()},
            "months": {str(k): int(v) for k, v in months.items()},
            "card_months": [[int(c), str(m), int(v)] for (c, m), v in joint.items()],
            "card_month_use_chip": [[int(c), str(m), str(v)] for (c, m), v in chip.items()], "modes": modes}


def train_synthesizer(table: pd.DataFrame, run_dir: str | Path, preset: str = "day-small", *,
                      max_minutes: float | None = None, max_steps: int | None = None,
                      context_rows: int | None = None, batch_size: int | None = None, lr: float | None = None,
                      val_fraction: float | None = None, seed: int | None = None, patience: int | None = None,
                      eval_every: int | None = None, progress: bool = True, info: dict | None = None,
                      log=None, device: Device | str | None = None,
                      model_options: dict | None = None, val_tail: float | None = None) -> SynthTrainResult:
    """Fit the tokenizer on ``table`` (typed TabFormer) and train (or resume) the GPT in ``run_dir``.

    Windows are ``context_rows`` consecutive transactions of one card; a block of
    ``val_fraction`` of every card's rows, ending where its latest ``val_tail`` of rows
    begin (default ``VAL_TAIL``: those latest rows train; 0: the latest rows validate, the
    cut of older runs), is the validation set (``documents.split_segments``). The cut is
    recorded in ``synthesis.json`` (``validation``) and ``run.json`` (``val_tail``); a
    resumed run keeps its own (a run from before the key: 0). Rerunning on the
    same ``run_dir`` resumes (the tokenizer saved there is reused, and a run
    trained on other data is refused by its fingerprint). The folder is locked for
    the whole call: a second process training into it is refused, naming the PID.
    ``device`` (a ``Device`` or a ``--device`` spec; None: the engine's choice, the GPU when
    torch sees one): where it trains (``on_device``). ``model_options``: model shape keys that
    replace the preset's and ``SYNTHESIS_SHAPE``'s (``--model-option``, e.g. ``{"state_dropout": 0.3}``);
    a resumed run keeps the shape it was built with.
    """
    check_table(table)
    preset = PRESET_ALIASES.get(preset, preset)
    if model_kind(preset) != "day":
        raise SynthesisInputError(f"preset {preset!r} is a flat model; synthesis trains the day-level model "
                                  "(a transaction per row): use --preset day-small (or day-tiny for tests)")
    run_dir = check_run_target(run_dir)
    tail = resolve_val_tail(run_dir, val_tail)
    shape = dict(SYNTHESIS_SHAPE.get(preset, {}))
    if RunDir(run_dir).train_config.exists():  # a resumed run keeps the shape it started with
        shape = dict(RunDir(run_dir).read_train_config().model_options)
    cfg = TrainConfig.from_preset(preset, max_minutes=max_minutes, max_steps=max_steps, context_rows=context_rows,
                                  batch_size=batch_size, lr=lr, val_fraction=val_fraction, seed=seed,
                                  patience=patience, eval_every=eval_every,
                                  model_options={**shape, **(model_options or {})} or None)
    if cfg.val_fraction + tail >= 1.0:
        raise SynthesisInputError(f"--val-fraction {cfg.val_fraction} plus --val-tail {tail} leave no rows to train "
                                  "before the validation block; make their sum smaller than 1")
    with on_device(device), RunDir(run_dir).lock():  # one process trains into a folder at a time
        return _train_locked(table, run_dir, preset, cfg, progress, info, log, tail)


def recorded_val_tail(run_dir: str | Path) -> float | None:
    """The validation cut a run in ``run_dir`` trains with (``synthesis.json``), None for a new folder.

    A run trained before the cut was recorded validated on each card's latest rows: 0.
    """
    path = Path(run_dir) / SYNTHESIS_FILE
    if not path.exists():
        return None
    return float(json.loads(path.read_text()).get("validation", {}).get("tail_fraction", 0.0))


def resolve_val_tail(run_dir: str | Path, val_tail: float | None) -> float:
    """``val_tail`` for a new run (None: ``VAL_TAIL``), the recorded one for a resumed run.

    A ``SynthesisInputError`` for a value out of [0, 1) or one that differs from a resumed run's.
    """
    if val_tail is not None and not 0.0 <= val_tail < 1.0:
        raise SynthesisInputError(f"--val-tail is the share of each card's latest rows kept for training after its "
                                  f"validation block, in [0, 1); got {val_tail}")
    recorded = recorded_val_tail(run_dir)
    if recorded is None:
        return VAL_TAIL if val_tail is None else float(val_tail)
    if val_tail is not None and abs(val_tail - recorded) > 1e-12:
        raise SynthesisInputError(f"{run_dir} trains with --val-tail {recorded:g} (its synthesis.json); a resumed run "
                                  "keeps its validation cut: leave --val-tail out or use a new --out directory")
    return recorded


def best_step(run_dir: str | Path) -> int:
    """The step of a run's lowest validation loss (``metrics.jsonl``); a ``SynthesisInputError`` if it has none."""
    step = best_validation_step(Path(run_dir))
    if step is None:
        raise SynthesisInputError(f"{run_dir} records no validation loss (metrics.jsonl): no validated step count "
                                  "to refit for; train it with a validation fraction first")
    return step


def refit_synthesizer(table: pd.DataFrame, base_run: str | Path, run_dir: str | Path, *,
                      max_minutes: float | None = None, progress: bool = True, log=None,
                      device: Device | str | None = None, info: dict | None = None) -> SynthTrainResult:
    """Train ``run_dir`` like the validated run ``base_run`` on every row of ``table``, no validation.

    A run validated on each card's latest rows (``val_tail`` 0, the cut of older runs) never
    trains on them (on the shared sample: all of cards 0 and 2's chip transactions of
    2015). The refit takes the base run's recipe (``train_config.json``: preset, model
    options, context, batch, learning rate, seed) for the number of steps at which the base
    run's validation loss was lowest, on the base run's learning-rate schedule
    (``TrainConfig.schedule_steps``): the same trajectory, stopped where the base run says it
    generalised best, on all the rows. Nothing is chosen on the refit's own data.
    """
    check_table(table)
    base = RunDir(base_run)
    if not base.train_config.exists() or not (base.path / SYNTHESIS_FILE).exists():
        raise SynthesisInputError(f"--refit-of {base_run}: not a trained synthesis run (no train_config.json or "
                                  f"{SYNTHESIS_FILE}); train one with `forecaster synth train` first")
    base_cfg = base.read_train_config()
    if model_kind(base_cfg.preset) != "day":
        raise SynthesisInputError(f"--refit-of {base_run}: a flat-model run; synthesis trains the day-level model")
    steps = best_step(base.path)
    cfg = base_cfg.refit(steps, max_minutes)
    run_dir = check_run_target(run_dir)
    if run_dir.resolve() == base.path.resolve():
        raise SynthesisInputError(f"--out {run_dir} is the base run itself; give the refit its own folder")
    info = {"refit_of": str(base.path.resolve()), "refit_steps": steps, "refit_schedule_steps": cfg.schedule_steps,
            **(info or {})}
    with on_device(device), RunDir(run_dir).lock():
        return _train_locked(table, run_dir, base_cfg.preset, cfg, progress, info, log, 0.0)


def on_device(device: Device | str | None) -> contextlib.AbstractContextManager:
    """A context in which the training engine trains on ``device``.

    The engine (``forecaster.core.training``) trains on the current CUDA device whenever
    torch sees a GPU, else on the CPU. So ``cuda:N`` makes GPU N the current device; the CPU
    on a machine whose GPU torch sees (``--device cpu``, or ``auto`` when no GPU passed the
    test operation) is a ``DeviceError`` naming the way out (hide the GPUs).
    """
    if device is None:
        return contextlib.nullcontext()
    dev = as_device(device)
    if dev.type == "cuda":
        return torch.cuda.device(dev.torch)
    if cuda_count() > 0:
        raise DeviceError(f"--device {device}: training runs on the GPU whenever torch sees one ({dev.why or 'cpu'}); "
                          "to train on the CPU hide the GPUs with CUDA_VISIBLE_DEVICES= (empty)")
    return contextlib.nullcontext()


def _train_locked(table: pd.DataFrame, run_dir: Path, preset: str, cfg, progress: bool, info: dict | None,
                  log, val_tail: float) -> SynthTrainResult:
    """The body of :func:`train_synthesizer`, with ``run_dir`` held."""
    run = RunDir(run_dir)
    tok = fit_tokenizer(table)
    if run.tokenizer.exists():
        saved = TableTokenizer.load(run.tokenizer)
        if saved.fingerprint() != tok.fingerprint():
            raise SynthesisInputError(f"{run_dir} holds a run trained on other data (tokenizer differs); "
                                      "use a new --out directory")
        tok = saved
    segments = card_segments(tok, table)
    train_ds, val_ds = window_datasets(segments, cfg.context_rows, cfg.val_fraction, val_tail)
    mcfg = model_config_for(preset, tok.vocab_size, tok.tokens_per_row, cfg.context_rows,
                            n_features=len(FEATURE_NAMES), options=cfg.model_options)
    if run.model_config.exists():  # a resumed run keeps the shape it was built with (presets may change)
        saved_cfg = run.read_model_config()
        if (saved_cfg.vocab_size, saved_cfg.row_len, saved_cfg.n_features) != (mcfg.vocab_size, mcfg.row_len,
                                                                               mcfg.n_features):
            raise SynthesisInputError(f"{run_dir} holds a model for other data; use a new --out directory")
        mcfg = saved_cfg
    if not run.tokenizer.exists():
        run.save_tokenizer(tok)
    meta = {"format": FORMAT, "version": VERSION, "columns": list(MODEL_COLUMNS), "row_columns": list(ROW_COLUMNS),
            "features": list(FEATURE_NAMES),
            "documents": len(segments), "rows": int(len(table)),
            "first_date": str(table["timestamp"].min()), "last_date": str(table["timestamp"].max()),
            "seed": seed_statistics(table),
            "validation": {"fraction": cfg.val_fraction, "tail_fraction": val_tail}}
    if not (run_dir / SYNTHESIS_FILE).exists():
        write_text(run_dir / SYNTHESIS_FILE, json.dumps(meta, indent=2, sort_keys=True))
    else:  # a run of an older release lacks the joint (card, month) table or the recorded cut: the same data
        saved_meta = json.loads((run_dir / SYNTHESIS_FILE).read_text())  # (fingerprint) adds them
        missing = [k for k in ("card_months", "card_month_use_chip") if k not in saved_meta.get("seed", {})]
        if missing or "validation" not in saved_meta:
            saved_meta.setdefault("seed", {}).update({k: meta["seed"][k] for k in missing})
            saved_meta.setdefault("validation", meta["validation"])
            write_text(run_dir / SYNTHESIS_FILE, json.dumps(saved_meta, indent=2, sort_keys=True))
    if log is not None:
        log(f"{len(table):,} transactions in {len(segments)} card histories -> {tok.tokens_per_row} tokens/row, "
            f"vocabulary {tok.vocab_size:,}, {len(FEATURE_NAMES)} input features/row; windows of {cfg.context_rows} + 1 rows; "
            f"{len(train_ds):,} training and {len(val_ds):,} validation windows " +
            (f"({describe_cut(cfg.val_fraction, val_tail)})" if cfg.val_fraction else
             f"(a refit: every row trains, {cfg.max_steps} steps of a {cfg.schedule_steps}-step schedule)"))
    run_info = {"source": "tabformer-synthesis", "documents": len(segments), "val_tail": val_tail, **(info or {})}
    res = run_training(mcfg, cfg, train_ds, val_ds, run_dir, info=run_info, fingerprint=tok.fingerprint(),
                       progress=progress, valid_mask=tok.valid_mask())
    return SynthTrainResult(run_dir, res.step, res.train_loss, res.val_loss, res.best_val_loss, res.reason,
                            len(train_ds), len(val_ds), tok.tokens_per_row, tok.vocab_size, val_tail)
