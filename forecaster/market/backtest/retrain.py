"""Retraining for the backtest: a run like the base run, trained on data up to an origin.

The expanding-window policy trains a fresh run as of each retraining date with
the base run's training configuration, series and panel start: the tokenizer is
fitted on the panel known at that date and the model never sees a day after it.
A run directory that already finished training is reused (and an interrupted one
resumes from its checkpoint), so a resumed backtest does not train twice.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_sources.panel import PanelBuilder


def train_as_of(builder: PanelBuilder, as_of: pd.Timestamp, base_run: Path, run_dir: Path,
                max_steps: int | None = None, progress: bool = False) -> Path:
    """Train (or finish training) ``run_dir`` on the panel as of ``as_of``, configured like ``base_run``.

    Returns ``run_dir``. The base run's ``train_config.json`` and ``run.json``
    (series, panel start, preset) decide everything but the data's end date.
    """
    from forecaster.market.features import model_frame
    from forecaster.core.tokenizer import TableTokenizer
    from forecaster.market.tokenizer import market_specs
    from forecaster.core.training.checkpoint import RunDir
    from forecaster.core.training.config import TrainConfig, model_config_for
    from forecaster.core.training.engine import train
    from forecaster.core.training.windows import make_datasets, panel_segment

    run = RunDir(run_dir)
    latest = run.latest() if run.path.exists() else None
    if latest and latest.get("finished"):
        return run_dir
    base = RunDir(base_run)
    info = base.read_info()
    cfg = TrainConfig.from_json((base.path / "train_config.json").read_text())
    cfg.max_minutes = None
    if max_steps is not None:
        cfg.max_steps = int(max_steps)
    panel = builder.build(as_of)[list(info["series"])]
    start = info.get("start")
    if start:
        panel = panel[panel.index >= pd.Timestamp(start)]
    frame = model_frame(panel)
    tok = TableTokenizer.fit(frame, market_specs(frame))
    tokens = tok.encode(frame)
    train_ds, val_ds, split = make_datasets([panel_segment(tokens, frame.index)], cfg.context_rows, cfg.val_fraction)
    mcfg = model_config_for(cfg.preset, tok.vocab_size, tok.tokens_per_row, cfg.context_rows)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "tokenizer.json").exists():
        tok.save(run_dir / "tokenizer.json")
    new_info = {**info, "as_of": str(as_of.date()), "first_date": str(frame.index[0].date()),
                "last_date": str(frame.index[-1].date()), "val_start": str(split.date()),
                "retrained_from": str(base_run)}
    train(mcfg, cfg, train_ds, val_ds, run_dir, info=new_info, fingerprint=tok.fingerprint(), progress=progress)
    return run_dir
