"""Retraining for the backtest: a run like the base run, trained on data up to an origin.

The expanding-window policy trains a fresh run as of each retraining date with
the base run's recipe (a refit, ``forecaster.market.refit``): the tokenizer is
fitted on the panel known at that date and the model never sees a day after it.
A run directory that already finished training is reused (and an interrupted one
resumes from its checkpoint), so a resumed backtest does not train twice.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_sources.panel import PanelBuilder
from forecaster.core.run import RunDir
from forecaster.market.refit import refit_run


def train_as_of(builder: PanelBuilder, as_of: pd.Timestamp, base_run: Path, run_dir: Path,
                max_steps: int | None = None, progress: bool = False) -> Path:
    """Train (or finish training) ``run_dir`` on the panel as of ``as_of``: the base run's refit as of that date.

    Returns ``run_dir``. The base run's ``train_config.json`` and ``run.json`` (series,
    panel start, data source, transforms, bins, preset and model options) decide everything
    but the data's end date. A retrained run is a refit (``forecaster.market.refit``): it
    trains on every day up to ``as_of``, with no validation window, for ``max_steps``
    steps (default: the step of the base run's lowest validation loss) on the base run's
    learning-rate schedule, so the latest years before a retraining date are in its
    weights, not held out to stop on. It inherits the base run's calibration.
    """
    run = RunDir(run_dir)
    latest = run.latest() if run.path.exists() else None
    if latest and latest.get("finished"):
        return run_dir
    refit_run(base_run, run_dir, builder=builder, as_of=as_of, steps=max_steps, progress=progress,
              info={"retrained_from": str(base_run)})
    return run_dir
