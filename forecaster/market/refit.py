"""The final refit: a validated run's recipe trained again on every day up to its as-of date.

Early stopping needs a validation window, and the README's run holds out its most
recent 10 % of days (2015-03 .. 2017-12 for a run as of 2017-12-29) to stop on. The
weights of such a run never saw its last three years: the state a forecast starts
from (a calm 2017, a hiking cycle) is one it learned little of.

``refit_run`` trains a new run like the base run (the same data source, series, panel
start, transforms, bins, preset, model options, seed and batch schedule) on every day
through the as-of date, with no validation window, for the number of steps at which
the base run's validation loss was lowest, on the base run's learning-rate schedule
(``TrainConfig.schedule_steps``): the same trajectory, stopped where the base run
says it generalised best, on more data. Nothing is chosen on the refit's own data.

The refit inherits the base run's calibration (``calibration.json``, with
``from_run`` naming the base): the temperature was chosen on the base run's
validation window, which lies before the as-of date, so a backtest from after the
as-of date sees nothing it was chosen on. The refit cannot be calibrated on its own
past: every day of it is training data.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import pandas as pd

from foundation.atomic import write_text
from forecaster.core.training.config import TrainConfig
from forecaster.core.training.metrics import best_validation_step
from forecaster.market.run import PanelRun
from forecaster.market.train import TrainInputError, train_panel_run


def best_step(run_dir) -> int:
    """The step of the base run's lowest validation loss (``metrics.jsonl``); a ``TrainInputError`` if it has none."""
    step = best_validation_step(Path(run_dir))
    if step is None:
        raise TrainInputError(f"the run {run_dir} records no validation loss (metrics.jsonl), so there is no "
                              "validated step count to refit for; give the steps", param="steps")
    return step


def refit_config(base_run, steps: int | None = None, max_minutes: float | None = None) -> TrainConfig:
    """The base run's training configuration with no validation, ``steps`` (default: its best step) long."""
    base = PanelRun(base_run)
    cfg = base.read_train_config()
    n = best_step(base_run) if steps is None else int(steps)
    if n < 1:
        raise TrainInputError(f"must be at least 1 step, got {n}", param="steps")
    return cfg.refit(n, max_minutes)


def base_transforms(base: PanelRun) -> dict[str, str] | None:
    """The base run's per-series transform choices, as ``train_panel_run`` takes them.

    ``yoy_index`` is left to ``train_panel_run`` (it is the default wherever the data has
    the index), so a base run's choice carries over to data with or without it.
    """
    chosen = {str(k): str(v) for k, v in (base.info.get("transforms") or {}).items()
              if base.series is not None and k in base.series and v != "yoy_index"}
    return chosen or None


def refit_run(base_run, out, *, builder=None, as_of=None, steps: int | None = None,
              max_minutes: float | None = None, progress: bool = True,
              log: Callable[[str], None] | None = None, info: dict | None = None):
    """Train ``out`` as the final refit of ``base_run`` (module doc); returns the engine's ``TrainResult``.

    builder : the data (default: the base run's source, series and panel start).
    as_of : the data's as-of date (default: the base run's). It may be later than the
        base run's (a refit as of each retraining date of a backtest); the base run's
        calibration is then copied only when its validation window ends before ``as_of``.
    steps : optimizer steps (default: the base run's best validation step).
    info : more run.json entries (e.g. ``retrained_from``).
    """
    base = PanelRun(base_run)
    if not (base.path / "model_config.json").exists():
        raise TrainInputError(f"{base_run} is not a trained run (no model_config.json)", param="run")
    cfg = refit_config(base_run, steps, max_minutes)
    as_of = pd.Timestamp(as_of if as_of is not None else base.as_of) if (as_of or base.as_of) else None
    builder = builder if builder is not None else base.panel_builder()
    info = {"refit_of": str(Path(base_run).resolve()), "refit_steps": cfg.max_steps,
            "refit_schedule_steps": cfg.schedule_steps, **(info or {})}
    res = train_panel_run(builder, out, cfg, as_of=as_of, series=base.series, start=base.start, data=base.data,
                          info=info, progress=progress, log=log, transforms=base_transforms(base),
                          bins=base.info.get("bins"))
    inherit_calibration(base_run, out, as_of)
    return res


def inherit_calibration(base_run, out, as_of) -> bool:
    """Copy the base run's calibration into the refit ``out`` (``from_run`` set) when its window ends by ``as_of``."""
    from forecaster.market.calibration import CalibrationError, calibration_path, load_calibration

    try:
        cal = load_calibration(base_run)
    except CalibrationError:
        return False
    if cal is None or (as_of is not None and pd.Timestamp(cal.validation_end) > pd.Timestamp(as_of)):
        return False
    cal = dataclasses.replace(cal, from_run=cal.from_run or str(Path(base_run).resolve()))
    write_text(calibration_path(out), json.dumps(cal.to_dict(), indent=2))
    return True
