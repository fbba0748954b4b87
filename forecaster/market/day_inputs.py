"""The inputs a day-level model reads along its sampled paths: prompt features and the per-day callback.

A :class:`~forecaster.core.daymodel.DayGPT` reads, with the row of day ``d``, the float vector
of ``d`` (``forecaster.market.inputs``), normalised as in training. At the origin those
vectors come from the history (``features_for_history``); after every sampled day the
:class:`PathFeatures` callback of the ``DaySampler`` decodes the new row of each path to
model values, moves each path's levels one step with the series' ``Transform`` and feeds
them to ``IncrementalFeatures``: the same vectors ``features_for_history`` would give on
the panel extended with the path (a test holds them equal).

The run folder keeps the feature names and the normalisation in ``inputs.json``
(``{"names": [...], "normalization": InputNormalization.to_dict()}``).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from forecaster.core.tokenizer import TableTokenizer
from forecaster.market.forecast import ForecastError
from forecaster.market.inputs import IncrementalFeatures, InputNormalization, feature_names, features_for_history
from forecaster.market.transforms import Transform
from forecaster.market.yoy import NAME as YOY, YoyPaths, dropouts, needs_index

INPUTS_FILE = "inputs.json"

DayInputs = tuple[list[str], InputNormalization]  # feature names, their normalisation


def read_inputs(run_dir: str | Path) -> DayInputs | None:
    """``(names, normalization)`` from ``run_dir/inputs.json``, or None when the run has no such file."""
    path = Path(run_dir) / INPUTS_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        extra = set(doc) - {"names", "normalization"}
        if extra:
            raise ValueError(f"unknown key(s) {sorted(extra)}")
        return list(doc["names"]), InputNormalization.from_dict(doc["normalization"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ForecastError(f"{path} cannot be read ({e}); retrain the run or restore the file") from None


def check_inputs(inputs: DayInputs | None, series: Sequence[str], n_features: int) -> None:
    """Refuse inputs that are not the features of ``series`` the model was built for (a ``ForecastError``)."""
    if n_features == 0:
        return
    if inputs is None:
        raise ForecastError(f"this day-level model reads {n_features} input features, but the run has no "
                            f"{INPUTS_FILE} (their names and normalisation); retrain the run")
    names, norm = inputs
    expected = feature_names(series)
    if list(names) != expected or list(norm.names) != expected:
        got = list(names) if list(names) != expected else list(norm.names)
        diff = sorted(set(got) ^ set(expected))[:5]
        raise ForecastError(
            f"{INPUTS_FILE} names {len(got)} input features that are not those of this run's series "
            f"({len(expected)} features of {', '.join(series)})"
            + (f"; e.g. {', '.join(diff)} differ" if diff else "; their order differs")
            + ". The run's inputs and tokenizer come from different runs: retrain it")
    if len(expected) != n_features:
        raise ForecastError(f"the model reads {n_features} input features, {INPUTS_FILE} names {len(expected)}; "
                            "retrain the run")


def prompt_features(panel: pd.DataFrame, index_levels: Mapping[str, pd.Series] | None,
                    norm: InputNormalization, n_rows: int) -> np.ndarray:
    """The normalised vectors of the last ``n_rows`` panel days, ``(n_rows, F)`` float32.

    Computed on the whole panel given (rolling windows need the days before the prompt).
    """
    return norm.apply(features_for_history(panel, index_levels)[-n_rows:]).astype(np.float32)


class PathFeatures:
    """The ``next_features`` callback of a ``DaySampler``: the newest sampled row of every path -> its vector.

    Parameters
    ----------
    tokenizer : the run's tokenizer (columns = ``series``).
    transforms : one ``Transform`` per series.
    panel : the point-in-time panel up to the origin (levels, columns = series).
    index_levels : the YoY series' monthly index observations (``yoy_index_levels``), or None.
    norm : the run's input normalisation.
    n_paths, dates : the paths sampled and the business days of the rows to be sampled.
    prompt_rows : rows of the prompt given to the sampler (the first call sees ``prompt_rows + 1``).

    ``levels`` holds every path's levels of the newest day seen, ``(paths, series)`` float64,
    exactly (bit for bit) what ``features.integrate`` gives for that day: each change transform
    integrates the running sum of its values from the origin's level (a missing value adds
    nothing, so the level stays), a ``level`` series is its value (missing stays missing).
    """

    def __init__(self, tokenizer: TableTokenizer, transforms: Sequence[Transform], panel: pd.DataFrame,
                 index_levels: Mapping[str, pd.Series] | None, norm: InputNormalization, n_paths: int,
                 dates: pd.DatetimeIndex, prompt_rows: int) -> None:
        self.tokenizer, self.transforms, self.norm = tokenizer, list(transforms), norm
        self.series = list(tokenizer.columns)
        assert list(panel.columns) == self.series, "the panel's columns must be the tokenizer's"
        self.dates = pd.DatetimeIndex(dates)
        self.prompt_rows = prompt_rows
        self.state = IncrementalFeatures.from_history(panel, index_levels, n_paths, horizon_days=len(self.dates) + 5)
        self.origin = panel.iloc[-1].to_numpy(dtype=np.float64)  # (S,)
        self.levels = np.tile(self.origin, (n_paths, 1))  # (P, S)
        self.total = np.zeros_like(self.levels)  # (P, S) running sum of the values since the origin
        self.yoy = {j: YoyPaths(self.origin[j], dropouts(c, needs_index(c, index_levels), panel.index[-1]), n_paths)
                    for j, (c, t) in enumerate(zip(self.series, self.transforms)) if t.name == YOY}
        self.days = 0  # sampled days fed so far

    def _step_levels(self, values: np.ndarray) -> np.ndarray:
        """``(paths, series)`` model values -> the next levels: one step of ``integrate``, to the bit.

        ``integrate`` takes a change transform's cumulative (NaN-skipping) sum, added in day
        order; the running ``total`` is the same sum, so ``Transform.integrate`` of it gives the
        same float as the whole path would. A path-dependent transform (``log_mr``) integrates
        one day from yesterday's level, the step its ``integrate`` takes. A ``yoy_index`` rate
        steps its ``YoyPaths``, as ``integrate`` does day by day.
        """
        self.total += np.where(np.isnan(values), 0.0, values)
        out = np.empty_like(self.levels)
        with np.errstate(over="ignore", invalid="ignore"):
            for j, t in enumerate(self.transforms):
                if j in self.yoy:  # the rate after today's release, if any (yoy.YoyPaths, as integrate steps it)
                    out[:, j] = self.yoy[j].step(values[:, j])
                    continue
                if t.path_dependent:  # one step from yesterday's level, as integrate steps it
                    out[:, j] = t.integrate(self.levels[:, j], values[:, j:j + 1])[:, 0]
                    continue
                x = self.total[:, j:j + 1] if t.models_changes else values[:, j:j + 1]
                out[:, j] = t.integrate(self.origin[j], x)[:, 0]
        return out

    def reorder(self, idx: np.ndarray) -> None:
        """Keep paths ``idx`` (the sampler resampled them to condition on a scenario): all per-path state."""
        self.levels, self.total = self.levels[idx], self.total[idx]
        self.state.reorder(idx)
        for paths in self.yoy.values():
            paths.reorder(idx)

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows`` (paths, k, R): the prompt and the rows sampled so far -> (paths, F) float32, the newest's vector."""
        assert rows.shape[1] == self.prompt_rows + self.days + 1, (
            f"expected {self.prompt_rows + self.days + 1} rows, got {rows.shape[1]}: one call per sampled day")
        ids = rows[:, -1].cpu().numpy()
        values = self.tokenizer.decode(ids)[self.series].to_numpy(dtype=np.float64)  # (P, S) model values
        self.levels = self._step_levels(values)
        raw = self.state.step(self.levels, self.dates[self.days])
        self.days += 1
        return torch.from_numpy(self.norm.apply(raw).astype(np.float32))
