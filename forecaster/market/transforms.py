"""The modeling transforms: how a series' levels become the values the GPT models, and back.

Each series' transform is named in the catalog (``data_sources.catalog``,
``SeriesSpec.transform``); ``transform_of(name)`` gives the object that applies it:

- ``log_return``: ``100 * log(x_t / x_{t-1})`` (percent). A non-positive level
  (WTI's -36.98 on 2020-04-20) has no log: the return into and out of it is
  missing, and the next return is taken against the last positive level.
- ``diff``: ``x_t - x_{t-1}`` in the series' unit (percentage points for yields).
- ``level``: ``x_t``.
- ``shifted_log``: ``100 * log((x_t + 0.5) / (x_{t-1} + 0.5))`` (percent), the
  displaced-lognormal rule for interest rates near zero: a yield's daily moves
  shrink as it nears its floor, and no path goes below -0.5 % (the lowest US
  Treasury yield on record is 0.00 %, the 3-month bill in December 2008). A run's
  choice for yields (``--transform UST3M=shifted_log``). ``shifted_log1``: the same
  with a shift of 1 (floor -1 %).
- ``log_mr``: the log change with its mean reversion taken out,
  ``100 * (log x_t - log x_{t-1} + kappa * (log x_{t-1} - mu))`` (percent): the
  residual of an AR(1) of the log level, whose ``kappa`` (pull per day) and ``mu``
  (long-run log level) are fitted on the run's training days (``LogMeanReverting.fit``).
  A path of zero residuals decays to ``exp(mu)``, so the model samples the shocks and
  the reversion is the transform's: a run's choice for VIX (``--transform VIX=log_mr``).
  run.json records the fitted form, ``log_mr(kappa=..., mu=...)``; a retraining refits it.

For lower-frequency series on the daily panel, ``log_return``/``diff`` are zero
on days without a release and jump on release days, which is exactly what the
point-in-time panel shows.

Every transform answers the same five questions (see ``Transform``): the model
values of a level history (``forward``), the level paths of sampled values from
the last known level (``integrate``), one step of that (``step``), the value that
moves a level to a target level (``value_for_level``) and the change of a level
from an origin level in the transform's own terms (``change_from_origin``).

Adding a transform is one subclass here and one entry in ``TRANSFORMS`` (and its
name in ``data_sources.catalog.TRANSFORMS``, which the catalog checks series against).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from data_sources import catalog


@dataclass(frozen=True)
class Transform:
    """A modeling transform; the base class of all of them. Stateless: one instance serves every series.

    Arrays are float64; ``levels`` and model values are in the series' units (log
    returns in percent). Methods broadcast like numpy arithmetic over their inputs.

    Attributes
    ----------
    name : the catalog's name for the transform.
    models_changes : True when a model value is a change from the previous level, so a
        path of model values fixes levels only relative to where it starts.
    positive_levels : True when levels must be positive (a log is taken).
    neutral_level : a stand-in start level for a path known only by its changes (a
        scenario ramp starting after day 1): any level would do, this one is valid.
    path_dependent : True when a level path is not a function of the running sum of its
        model values (``log_mr``): a path's levels are then stepped day by day.
    """

    name: ClassVar[str]
    models_changes: ClassVar[bool] = True
    positive_levels: ClassVar[bool] = False
    neutral_level: ClassVar[float] = 0.0
    path_dependent: ClassVar[bool] = False

    def __str__(self) -> str:
        return self.name

    def forward(self, levels) -> np.ndarray:
        """Model values of a level history: ``(time,)`` or ``(time, series)``, time along axis 0; same shape.

        The first row of a change transform is NaN (no previous level), as is any
        change into or out of a missing level.
        """
        raise NotImplementedError

    def integrate(self, last_level, steps: np.ndarray, axis: int = -1) -> np.ndarray:
        """Level paths of sampled model values, starting from ``last_level`` (the origin's level).

        ``steps`` has time along ``axis`` (e.g. ``(paths, horizon)``); ``last_level`` is a
        scalar or broadcasts against ``steps`` (e.g. ``(series,)`` for ``(paths, horizon,
        series)`` with ``axis=-2``). A missing step (NaN) of a change transform keeps the
        level unchanged. Returns levels of the shape of ``steps``.
        """
        raise NotImplementedError

    def step(self, prev_level, value):
        """The level one finite model ``value`` moves ``prev_level`` to (one step of ``integrate``)."""
        raise NotImplementedError

    def value_for_level(self, prev_level, level):
        """The model value that moves ``prev_level`` to ``level`` (the inverse of ``step``)."""
        raise NotImplementedError

    def change_from_origin(self, levels, origin_level):
        """The change of ``levels`` from ``origin_level`` in the transform's terms; broadcasts.

        Change transforms: the sum of the model values between the two levels. ``level``:
        the difference. A non-positive level of a ``positive_levels`` transform gives NaN or -inf.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class Level(Transform):
    """The level itself, ``x_t``; the change from the origin is ``x - x0``."""

    name: ClassVar[str] = "level"
    models_changes: ClassVar[bool] = False

    def forward(self, levels) -> np.ndarray:
        return np.array(levels, dtype=np.float64)

    def integrate(self, last_level, steps: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.array(steps, dtype=np.float64)

    def step(self, prev_level, value):
        return value

    def value_for_level(self, prev_level, level):
        return level

    def change_from_origin(self, levels, origin_level):
        return levels - origin_level


@dataclass(frozen=True)
class Diff(Transform):
    """First difference ``x_t - x_{t-1}`` in the series' unit."""

    name: ClassVar[str] = "diff"

    def forward(self, levels) -> np.ndarray:
        x = np.asarray(levels, dtype=np.float64)
        y = np.full_like(x, np.nan)
        y[1:] = x[1:] - x[:-1]
        return y

    def integrate(self, last_level, steps: np.ndarray, axis: int = -1) -> np.ndarray:
        return last_level + np.nancumsum(steps, axis=axis)

    def step(self, prev_level, value):
        return prev_level + value

    def value_for_level(self, prev_level, level):
        return level - prev_level

    def change_from_origin(self, levels, origin_level):
        return levels - origin_level


@dataclass(frozen=True)
class LogReturn(Transform):
    """Log return in percent, ``100 * log(x_t / x_{t-1})``, with the non-positive-level rule of the module doc."""

    name: ClassVar[str] = "log_return"
    positive_levels: ClassVar[bool] = True
    neutral_level: ClassVar[float] = 100.0

    def forward(self, levels) -> np.ndarray:
        x = np.asarray(levels, dtype=np.float64)
        if x.ndim not in (1, 2):
            raise ValueError(f"levels must be (time,) or (time, series), got shape {x.shape}")
        table = pd.Series if x.ndim == 1 else pd.DataFrame
        positive = table(np.where(x > 0, x, np.nan))
        # previous positive level, carried over gaps from a non-positive print only
        prev = positive.shift(1)
        gap = table(x).shift(1).le(0)
        prev = prev.where(~gap, positive.ffill().shift(1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * np.log(positive.to_numpy() / prev.to_numpy())

    def integrate(self, last_level, steps: np.ndarray, axis: int = -1) -> np.ndarray:
        return last_level * np.exp(np.nancumsum(steps, axis=axis) / 100.0)

    def step(self, prev_level, value):
        return prev_level * np.exp(value / 100.0)

    def value_for_level(self, prev_level, level):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * np.log(level / prev_level)

    def change_from_origin(self, levels, origin_level):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100 * np.log(levels / origin_level)


@dataclass(frozen=True)
class ShiftedLog(Transform):
    """Log change of the level plus ``SHIFT`` in percent, ``100 * log((x_t + s) / (x_{t-1} + s))``.

    Levels must stay above ``-SHIFT``; a level at or below it has no log (NaN, as a
    non-positive price has for ``log_return``).
    """

    name: ClassVar[str] = "shifted_log"
    SHIFT: ClassVar[float] = 0.5  # percentage points: the floor a path can approach and never cross
    neutral_level: ClassVar[float] = 1.0

    def forward(self, levels) -> np.ndarray:
        x = np.asarray(levels, dtype=np.float64) + self.SHIFT
        x = np.where(x > 0, x, np.nan)
        y = np.full_like(x, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            y[1:] = 100.0 * np.log(x[1:] / x[:-1])
        return y

    def integrate(self, last_level, steps: np.ndarray, axis: int = -1) -> np.ndarray:
        return (np.asarray(last_level) + self.SHIFT) * np.exp(np.nancumsum(steps, axis=axis) / 100.0) - self.SHIFT

    def step(self, prev_level, value):
        return (prev_level + self.SHIFT) * np.exp(value / 100.0) - self.SHIFT

    def value_for_level(self, prev_level, level):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * np.log((level + self.SHIFT) / (prev_level + self.SHIFT))

    def change_from_origin(self, levels, origin_level):
        return self.value_for_level(origin_level, levels)


@dataclass(frozen=True)
class ShiftedLogWide(ShiftedLog):
    """``shifted_log`` with a shift of 1 percentage point: ``100 * log((x_t + 1) / (x_{t-1} + 1))``.

    Closer to a plain difference at the levels of a 2-year yield (a move at 0.7 % is
    divided by 1.7, not 1.2), with a floor of -1 %.
    """

    name: ClassVar[str] = "shifted_log1"
    SHIFT: ClassVar[float] = 1.0


@dataclass(frozen=True)
class LogMeanReverting(Transform):
    """The residual of an AR(1) of the log level, in percent: ``100 * (log x_t - log x_{t-1} + kappa * (log x_{t-1} - mu))``.

    ``kappa`` is the share of the log level's distance from ``mu`` that a day closes
    (0 < kappa < 1); ``mu`` the long-run log level. ``fit`` takes both from a level
    history by least squares, so the model values of those days have mean zero and no
    linear dependence on the previous log level. A level path is path dependent (each
    step's pull depends on the level reached): ``integrate`` applies ``step`` day by day,
    and a missing value leaves the level where it was. ``change_from_origin`` is the log
    change in percent, the terms in which a forecast of this series is scored.
    """

    kappa: float
    mu: float
    BASE: ClassVar[str] = "log_mr"
    positive_levels: ClassVar[bool] = True
    path_dependent: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not (np.isfinite(self.kappa) and np.isfinite(self.mu) and 0.0 < self.kappa < 1.0):
            raise ValueError(f"log_mr needs 0 < kappa < 1 and a finite mu, got kappa={self.kappa!r}, mu={self.mu!r}")

    @property
    def name(self) -> str:  # the fitted form, as run.json records it and ``get`` reads it back
        return f"{self.BASE}(kappa={float(self.kappa)!r}, mu={float(self.mu)!r})"

    @property
    def neutral_level(self) -> float:  # type: ignore[override]
        return float(np.exp(self.mu))

    @classmethod
    def fit(cls, levels, series: str = "the series") -> "LogMeanReverting":
        """Least squares of the daily log change on the previous log level over ``levels`` (positive ones)."""
        x = np.asarray(levels, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(np.where(x > 0, x, np.nan))
        prev, d = y[:-1], y[1:] - y[:-1]
        ok = np.isfinite(prev) & np.isfinite(d)
        if ok.sum() < 250:
            raise ValueError(f"log_mr: {series} has {int(ok.sum())} daily changes to fit its mean reversion on; "
                             "it needs a year (250)")
        slope, intercept = np.polyfit(prev[ok], d[ok], 1)
        if not 0.0 < -slope < 1.0:
            raise ValueError(f"log_mr: {series} does not revert to a mean on these days (slope {slope:.4g} of the "
                             "daily log change on the log level); model it as log_return")
        return cls(kappa=float(-slope), mu=float(intercept / -slope))

    def forward(self, levels) -> np.ndarray:
        x = np.asarray(levels, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(np.where(x > 0, x, np.nan))
        out = np.full_like(y, np.nan)
        out[1:] = 100.0 * (y[1:] - y[:-1] + self.kappa * (y[:-1] - self.mu))
        return out

    def step(self, prev_level, value):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(prev_level)
        return np.exp(y + value / 100.0 - self.kappa * (y - self.mu))

    def integrate(self, last_level, steps: np.ndarray, axis: int = -1) -> np.ndarray:
        s = np.moveaxis(np.asarray(steps, dtype=np.float64), axis, 0)
        out = np.empty_like(s)
        level = np.broadcast_to(np.asarray(last_level, dtype=np.float64), s.shape[1:]).copy()
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(s.shape[0]):
                level = np.where(np.isnan(s[t]), level, self.step(level, s[t]))
                out[t] = level
        return np.moveaxis(out, 0, axis)

    def value_for_level(self, prev_level, level):
        with np.errstate(divide="ignore", invalid="ignore"):
            y0 = np.log(prev_level)
            return 100.0 * (np.log(level) - y0 + self.kappa * (y0 - self.mu))

    def change_from_origin(self, levels, origin_level):
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100 * np.log(levels / origin_level)


_FITTED = re.compile(r"^log_mr\(kappa=([^,()]+), ?mu=([^,()]+)\)$")


def is_fitted_on_training(name: str) -> bool:
    """Whether transform ``name`` is fitted on a run's training days (``log_mr``, in its bare or fitted form)."""
    return name == LogMeanReverting.BASE or name.startswith(LogMeanReverting.BASE + "(")


def is_known(name: str) -> bool:
    """Whether ``name`` names a transform a run may choose (a key of ``TRANSFORMS``, or ``log_mr``)."""
    return name in TRANSFORMS or is_fitted_on_training(name)


class IndexMissing(ValueError):
    """A ``yoy_index`` series was used without its index's monthly observations."""


@dataclass(frozen=True)
class YoyIndex(Transform):
    """A YoY rate modeled by its index's month-on-month change on release days (``forecaster.market.yoy``).

    Its values need the index's monthly observations, so it has no stateless form: the
    methods here refuse, and ``model_frame``, ``integrate`` and scenarios use ``yoy``'s functions.
    """

    name: ClassVar[str] = "yoy_index"

    def _refuse(self, *_args, **_kw):
        raise IndexMissing("the yoy_index transform needs its index's monthly observations "
                           "(forecaster.market.yoy); it has no stateless form")

    forward = integrate = step = value_for_level = change_from_origin = _refuse


#: every modeling transform by its name (``yoy_index`` and ``shifted_log`` are a run's choice; the catalog names the others)
TRANSFORMS: dict[str, Transform] = {t.name: t for t in (Level(), Diff(), LogReturn(), ShiftedLog(), ShiftedLogWide(),
                                                         YoyIndex())}


def get(name: str) -> Transform:
    """The transform called ``name``: a key of ``TRANSFORMS``, or a fitted ``log_mr(kappa=..., mu=...)``."""
    if name in TRANSFORMS:
        return TRANSFORMS[name]
    if (m := _FITTED.match(name)) is not None:
        try:
            return LogMeanReverting(kappa=float(m.group(1)), mu=float(m.group(2)))
        except ValueError as e:
            raise ValueError(f"modeling transform {name!r}: {e}") from None
    if name == LogMeanReverting.BASE:
        raise ValueError("log_mr is fitted on a run's training days: a run records it as log_mr(kappa=..., mu=...)")
    raise ValueError(f"unknown modeling transform {name!r} (known: {', '.join(TRANSFORMS)}, log_mr)")


def transform_of(series: str) -> Transform:
    """The catalog's modeling transform of one series; a ``CatalogError`` for an unknown series."""
    return get(catalog.get(series).transform)


def transforms_for(columns: Iterable[str], chosen: Mapping[str, str] | None = None) -> list[Transform]:
    """The modeling transform of each column name, in order: ``chosen[name]`` (a run's own
    choice, e.g. ``run.json``'s ``transforms``) where given, else the catalog's."""
    chosen = chosen or {}
    return [get(chosen[c]) if c in chosen else transform_of(c) for c in columns]
