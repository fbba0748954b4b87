"""Calibration without look-ahead: the sampling temperature chosen on a validation backtest.

A run's paths may be too narrow or too wide. The one setting that widens or narrows
them without retraining is the sampling temperature. ``calibrate`` chooses it on a
validation window that lies after the run's training data and before any test
window, and records the choice in the run folder (``calibration.json``), where every
later forecast and backtest of the run finds it:

1. the validation window defaults to the run's own validation split (the days it
   held out of training and only used to stop early): for the README's model,
   2015-03-16 .. 2017-12-29, with training data to 2015-03-13 and the test window
   from 2018;
2. the data are read **as of the window's last day**: the panel builder never gives
   a value published after it, so nothing in the test window can influence the
   choice (``tests/test_calibration.py`` alters every value after the window and gets
   the same choice, to the last digit);
3. from each origin of the window (every ``every``), the run samples ``n_paths`` paths
   at each candidate temperature, with the same seed for every candidate (common
   random numbers), and each path is scored by the CRPS of every series at the
   horizons that end inside the window. The run's drift tilts (``drift.json``,
   ``forecaster.market.drift``) are not applied: they are fitted after the temperature,
   at it, on history to the run's as-of date (inside the window, or past an earlier
   ``--validation-end``: look-ahead);
4. a candidate's score is the mean over (series, horizon) of its mean CRPS divided by
   that of temperature 1 (a unitless ratio, so VIX points and CPI percent weigh alike);
5. the lowest wins, unless a candidate nearer 1 is within one standard error of it (the
   one-standard-error rule; ``--tie-se`` sets how many, 0 for the lowest score alone).
   The error of each candidate's difference from the best is a moving-block bootstrap
   over the origins (``score_spread``): its paths share the common random numbers of the
   best's, and origins closer than the longest horizon share outcome days, so blocks of
   that many origins are resampled together. Why: a validation window is a few years of
   one regime; a score one or two percent below temperature 1's over 16 overlapping
   origins can be that window's luck, and 1 is the model as trained.

One temperature for every series (the issue allows one per group at most): a
per-series temperature would need per-slot sampling settings and twice the
validation data to choose without overfitting it.

``check_test_origins`` refuses a backtest of a calibrated run whose first origin
is not after the validation window.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from foundation.atomic import write_text
from foundation.dataclass_io import dataclass_from_dict
from foundation.errors import UserError
from forecaster.market.backtest import metrics
from forecaster.market.backtest.runner import GPTModel, origin_seed
from forecaster.market.backtest.scoring import realised_after
from forecaster.market.backtest.windows import origin_schedule
from forecaster.market.inputs import yoy_index_levels
from forecaster.market.run import PanelRun

CALIBRATION_FORMAT = "forecaster-calibration"
DEFAULT_TEMPERATURES = (0.8, 0.9, 1.0, 1.1, 1.25)
DEFAULT_HORIZONS = (21, 63, 250)
BOOTSTRAP = 1000  # resamples of the origins for the standard errors of the scores


class CalibrationError(UserError):
    """A calibration that cannot be run, or a backtest that would see its validation window."""


@dataclass
class Calibration:
    """The chosen sampling temperature and how it was chosen (``calibration.json``).

    temperature : the choice. validation_start, validation_end : the window (origins and
    outcomes all inside it; data read as of ``validation_end``). origins : the origins used.
    n_paths, seed, horizons : the validation backtest's settings. scores : per candidate
    temperature (as a string key), the mean CRPS ratio to temperature 1 (lower is better).
    by_series : per candidate, per series, the mean CRPS ratio over the horizons.
    score_se : per candidate, the standard error of its score's difference from the best's
    (``score_spread``). tie_se : the standard errors within which a candidate nearer 1 ties
    (0: the lowest score wins). Both are empty / 0 in files written before the rule.
    data : the data source it was read from. from_run : None when chosen for this run; a
    refit's (``forecaster.market.refit``) names the base run whose validation chose it.
    """

    temperature: float
    validation_start: str
    validation_end: str
    origins: list[str]
    n_paths: int
    seed: int
    horizons: list[int]
    scores: dict[str, float]
    by_series: dict[str, dict[str, float]] = field(default_factory=dict)
    data: str | None = None
    seconds: float = 0.0
    from_run: str | None = None  # the run whose validation backtest chose it (a refit inherits its base run's)
    format: str = CALIBRATION_FORMAT
    score_se: dict[str, float] = field(default_factory=dict)
    tie_se: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return dataclass_from_dict(cls, d, CalibrationError, "calibration setting")


def calibration_path(run_dir) -> Path:
    """Where a run folder keeps its calibration (``RunDir.calibration``)."""
    return PanelRun(run_dir).calibration


def load_calibration(run_dir) -> Calibration | None:
    """The run's calibration, or None when it has none. A damaged file is a ``CalibrationError``."""
    path = calibration_path(run_dir)
    if not path.exists():
        return None
    try:
        return Calibration.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise CalibrationError(f"{path}: not a calibration file ({exc}); delete it or run "
                               "'forecaster calibrate' again") from None


def check_test_origins(run_dir, first_origin) -> None:
    """Refuse test origins on or before the run's calibration window's end (the choice saw those days)."""
    cal = load_calibration(run_dir)
    if cal is not None and pd.Timestamp(first_origin) <= pd.Timestamp(cal.validation_end):
        raise CalibrationError(
            f"the run {run_dir} was calibrated on a window up to {cal.validation_end}, and the backtest starts "
            f"{pd.Timestamp(first_origin).date()}: a test origin must come after it (look-ahead); start the "
            "backtest later, or calibrate on an earlier --validation-end")


def _window(run: PanelRun, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    info = run.info
    val = info.get("val_range") or [None, None]
    trained = pd.Timestamp((info.get("train_range") or [None, None])[1] or info.get("last_date"))
    start = pd.Timestamp(start if start is not None else val[0])
    end = pd.Timestamp(end if end is not None else val[1])
    if info.get("refit_of") and (pd.isna(start) or pd.isna(end)):
        raise CalibrationError(f"the run {run.path} is a refit of {info['refit_of']}: every day to its as-of date "
                               "is training data, so it has no window of its own to calibrate on; it inherits "
                               "its base run's calibration (calibrate the base run, then refit)")
    if pd.isna(start) or pd.isna(end):
        raise CalibrationError(f"the run {run.path} records no validation split; give --validation-start and "
                               "--validation-end")
    if start <= trained:
        raise CalibrationError(f"--validation-start {start.date()} is not after the run's training data "
                               f"(to {trained.date()}); the window must be data the run was not trained on")
    if end <= start:
        raise CalibrationError(f"--validation-end {end.date()} is not after --validation-start {start.date()}")
    return start, end


def relative_scores(crps: dict[float, pd.DataFrame]) -> tuple[dict[float, float], dict[float, dict[str, float]]]:
    """Per candidate, the mean over (series, horizon) of mean CRPS / mean CRPS at temperature 1.

    ``crps[t]``: a frame of CRPS values indexed by (origin, series, horizon), the same index
    for every candidate. Returns (score per candidate, per candidate {series: mean ratio}).
    """
    ref = crps[1.0].groupby(level=["series", "horizon"]).mean()
    ok = ref > 0
    scores, by_series = {}, {}
    for t, frame in crps.items():
        ratio = (frame.groupby(level=["series", "horizon"]).mean()[ok] / ref[ok]).dropna()
        scores[t] = float(ratio.mean())
        by_series[t] = {str(s): float(v) for s, v in ratio.groupby(level="series").mean().items()}
    return scores, by_series


def score_spread(crps: dict[float, pd.Series], block: int, n_boot: int = BOOTSTRAP, seed: int = 0
                 ) -> dict[float, float]:
    """Per candidate, the bootstrap standard error of its score's difference from the best candidate's.

    ``crps[t]``: CRPS values indexed by (origin, series, horizon), as for ``relative_scores``
    (whose score each resample recomputes). The origins are resampled in moving blocks of
    ``block`` consecutive origins (``n_boot`` resamples, seeded: the same every time). The
    best candidate's own entry is 0.
    """
    ref = crps[1.0].unstack(["series", "horizon"])
    cells = ref.columns
    arrays = {t: c.unstack(["series", "horizon"]).reindex(index=ref.index, columns=cells).to_numpy(np.float64)
              for t, c in crps.items()}
    n = len(ref.index)
    block = int(min(max(block, 1), n))
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_boot, n))
    for b in range(n_boot):
        for s0 in rng.integers(0, n - block + 1, size=-(-n // block)):
            weights[b, s0:s0 + block] += 1.0
    den = weights @ np.nan_to_num(arrays[1.0])
    boot = {}
    for t, a in arrays.items():
        num = weights @ np.nan_to_num(a)
        ratio = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        boot[t] = np.nanmean(ratio, axis=1)
    point, _ = relative_scores(crps)
    best = min(point, key=point.get)
    return {t: float(np.std(boot[t] - boot[best], ddof=1)) if t != best else 0.0 for t in crps}


def choose(scores: dict[float, float], spread: dict[float, float] | None = None, tie_se: float = 1.0) -> float:
    """The candidate with the lowest score, or the one nearest 1 among those within ``tie_se`` standard
    errors (``spread``, from ``score_spread``) of it; exact ties (to 1e-12) go to the one nearest 1."""
    best = min(scores.values())
    margin = {t: tie_se * (spread or {}).get(t, 0.0) for t in scores}
    return min((t for t, s in scores.items() if s <= best + max(margin[t], 1e-12)), key=lambda t: (abs(t - 1.0), t))


def origin_block(origins: Sequence[pd.Timestamp], calendar: pd.DatetimeIndex, horizon: int) -> int:
    """How many consecutive origins share outcome days: the longest horizon over their median spacing (business days)."""
    if len(origins) < 2:
        return 1
    pos = calendar.searchsorted(pd.DatetimeIndex(origins))
    return int(max(1, np.ceil(horizon / max(float(np.median(np.diff(pos))), 1.0))))


def calibrate(run_dir, data: str | None = None, validation_start=None, validation_end=None, *,
              temperatures: Sequence[float] = DEFAULT_TEMPERATURES, n_paths: int = 50, every: str = "2M",
              horizons: Sequence[int] = DEFAULT_HORIZONS, seed: int = 0, tie_se: float = 1.0, save: bool = True,
              progress: Callable[[str], None] | None = None) -> Calibration:
    """Choose the run's sampling temperature on a validation backtest (module doc); write it unless ``save`` is False.

    Parameters
    ----------
    run_dir : a trained market run. data : the data source (default: the run's).
    validation_start, validation_end : the window (default: the run's validation split).
    temperatures : the candidates (1.0 is always added: it is the reference).
    n_paths : paths per origin and candidate. every : origin spacing ("2M", "1M", "3M").
    horizons : business days scored (only those ending inside the window count).
    tie_se : a candidate nearer 1 within this many standard errors of the best wins (module doc, 5).
    """
    from forecaster.core.sampler import SamplingConfig  # deferred: it imports torch
    from forecaster.market.pipeline import ForecastPipeline

    t0 = time.perf_counter()
    run = PanelRun(run_dir)
    start, end = _window(run, validation_start, validation_end)
    temps = sorted({float(t) for t in temperatures} | {1.0})
    for t in temps:
        SamplingConfig(t)  # validates: finite, >= 0
    if 0.0 in temps:
        raise CalibrationError("temperature 0 (argmax) gives one path, not a distribution; leave it out")
    if not np.isfinite(tie_se) or tie_se < 0:
        raise CalibrationError(f"--tie-se must be a number of standard errors, 0 or more, got {tie_se}")
    if n_paths < 2:
        raise CalibrationError(f"--paths must be at least 2 (an ensemble), got {n_paths}")
    builder = run.panel_builder(data)
    full = builder.build(end)  # nothing published after the window's end is ever read
    series = list(run.info["series"])
    full = full[series]
    max_h = max(int(h) for h in horizons)
    origins = [o for o in origin_schedule(full.index, start, end, every)
               if full.index.searchsorted(o, side="right") + min(horizons) <= len(full)]
    if not origins:
        raise CalibrationError(f"no origin in {start.date()} .. {end.date()} leaves {min(horizons)} days to score; "
                               "widen the window or score shorter horizons")
    pipe = ForecastPipeline.from_run(run.path)
    # the temperature is the model's own: a drift fit (drift.json) comes after it, at the chosen
    # temperature, on history to the run's as-of date, which may lie after this window's end
    pipe.drift = None
    index_levels = yoy_index_levels(builder)
    frames: dict[float, list[pd.DataFrame]] = {t: [] for t in temps}
    for k, origin in enumerate(origins):
        panel = builder.build(origin)[series]
        realised = realised_after(full, origin, max_h)
        hz = [int(h) for h in horizons if h <= max_h and pd.notna(realised["date"].iloc[int(h) - 1])]
        for t in temps:
            model = GPTModel(pipe, SamplingConfig(t), index_levels)
            fc = model.forecast(panel, n_paths, max_h, origin_seed(seed, origin))
            for s in fc.series:
                obs = realised[s].to_numpy(dtype=np.float64)[np.asarray(hz) - 1]
                ens = fc.column(s)[:, np.asarray(hz) - 1].T                    # (len(hz), paths)
                c = metrics.crps(obs, ens)
                frames[t].append(pd.DataFrame({"origin": origin, "series": s, "horizon": hz, "crps": c}))
        if progress:
            progress(f"origin {origin.date()} ({k + 1}/{len(origins)})")
    crps = {t: pd.concat(f).set_index(["origin", "series", "horizon"])["crps"] for t, f in frames.items()}
    scored = np.isfinite(crps[1.0])  # cells the reference scores (same index for every candidate)
    crps = {t: c[scored] for t, c in crps.items()}
    scores, by_series = relative_scores(crps)
    spread = score_spread(crps, origin_block(origins, full.index, max_h), seed=seed)
    cal = Calibration(choose(scores, spread, tie_se), str(start.date()), str(end.date()), [str(o.date()) for o in origins],
                      n_paths, seed, [int(h) for h in horizons], {f"{t:g}": v for t, v in scores.items()},
                      {f"{t:g}": v for t, v in by_series.items()}, data or run.data, round(time.perf_counter() - t0, 1),
                      score_se={f"{t:g}": v for t, v in spread.items()}, tie_se=float(tie_se))
    if save:
        write_text(calibration_path(run.path), json.dumps(cal.to_dict(), indent=2))
    return cal
