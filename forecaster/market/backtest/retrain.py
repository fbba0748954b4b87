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
from forecaster.core.run import RunDir
from forecaster.market.refit import base_transforms
from forecaster.market.run import PanelRun
from forecaster.market.train import train_panel_run


def train_as_of(builder: PanelBuilder, as_of: pd.Timestamp, base_run: Path, run_dir: Path,
                max_steps: int | None = None, progress: bool = False) -> Path:
    """Train (or finish training) ``run_dir`` on the panel as of ``as_of``, configured like ``base_run``.

    Returns ``run_dir``. The base run's ``train_config.json`` and ``run.json``
    (series, panel start, data source) decide everything but the data's end date.
    """
    run = RunDir(run_dir)
    latest = run.latest() if run.path.exists() else None
    if latest and latest.get("finished"):
        return run_dir
    base = PanelRun(base_run)
    cfg = base.read_train_config()
    cfg.max_minutes = None
    if max_steps is not None:
        cfg.max_steps = int(max_steps)
    # the base run's modeling choices: transforms (e.g. shifted log yields) and bins
    train_panel_run(builder, run_dir, cfg, as_of=as_of, series=base.series, start=base.start, data=base.data,
                    info={"retrained_from": str(base_run)}, progress=progress,
                    transforms=base_transforms(base), bins=base.info.get("bins"))
    return run_dir
