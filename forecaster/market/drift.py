"""Drift calibration of mean-reverting series: a tilt, by the path's own level, that gives sampled paths history's mean reversion.

Why. A day-level model's one-day-ahead error in a mean-reverting series is small, and it
compounds along a path. Teacher-forced on its training days, the README's model puts a
VIX spike (a rise of more than 10 % in a day) after a day below 13 at probability 0.022
against history's 0.031, and its mean log change from there at +0.58 % against +0.76 %
a day (``benchmarks/bench_onestep.py``); from a calm origin its paths then drift below
VIX's record low, and from a nervous one they explode. Neither a transform (``log_mr``)
nor a loss weight moved it (docs/PERFORMANCE.md).

What. For each calibrated series (by default the daily ``stationary`` series of the
catalog modeled by their changes: VIX), the levels of the days up to the run's as-of
date are cut into buckets at quantiles of the day before's level. A path's draw of the
series on a day whose previous level lies in bucket ``b`` is tilted exponentially:

    p'(value) ∝ p(value) · exp(lambda_b · value)        (value in model units, e.g. % log change)

the least change of the model's distribution (in Kullback-Leibler divergence) that
moves its mean by a given amount. With the spread, a second term per bucket matches
history's mean absolute change as well:

    p'(value) ∝ p(value) · exp(lambda_b · value + kappa_b · |value|)

the least change that gives both moments; ``kappa_b > 0`` widens the day's draw in that
bucket, ``< 0`` narrows it. A mean tilt alone moves the level's drift but not its
day-to-day spread, and from a calm origin the model's VIX paths are too quiet: their
daily changes below VIX 11 are 10 % narrower than history's (docs/PERFORMANCE.md). With the
spikes, a third term ``eta_b · [value > spike]`` matches the share of days whose change
tops history's 97th percentile (VIX: a rise of 12.7 % in a day), the rare days that end a
calm spell; untilted, the model draws them on 1.7 % of the days after a VIX below 11,
against history's 3.1 %. The default fit matches all three (``MATCHES``). The rest of
the row (the series drawn after it) and every later day respond as the model has learnt:
these tilts move the level's path, not the co-movement (for that, the pairs below).

How it is fitted, without look-ahead (``fit_drift``). The target is history's mean
change per bucket, on the days to the run's as-of date. The model samples paths from
origins spread over the same days (the panel as of each origin), at the run's sampling
temperature, with the current tilts; each bucket's ``lambda`` moves by the gap between
the target and the paths' mean, divided by the paths' variance in that bucket (the
derivative of a tilted mean; with more statistics, the gaps in all of them times the
inverse of the paths' covariance of the statistics, a Newton step), damped, for
``rounds`` rounds (raking, as the synthesis mode's marginal calibration does). The tilt is applied after the temperature, so it
means the same at every temperature. Nothing after the as-of date is read.

A series may match its spread alone (``--drift-series VIX,UST2Y=spread``): ``kappa`` widens
or narrows its draws by its level, and ``lambda`` holds each bucket's mean change where the
untilted model put it (the first round's paths), so no drift of history's is imposed and a
widened skewed draw does not drift either. The 2-year yield is the case: its mean change by
level in 1990-2017 is the era's falling rates, not something to impose, but its daily spread
by level is. Untilted, the README model's 2-year paths move 40-47 % less than history's did
after a day between 0.28 and 3.75 % (mean absolute change), and the 10-year's co-movement
with them stays low however the pair below is tilted.

Co-movement (``pairs``, optional: ``--drift-pairs UST2Y:UST10Y``). A pair tilts one
series' draw by the change another one drew earlier in the same row:

    p'(value) ∝ p(value) · exp(gamma_b · driver's change today · value)

by bucket ``b`` of the driver's previous level, so that the mean of the product of the two
changes (their co-movement, in model units) matches history's per bucket. The driver must
come earlier in the row (the local decoder draws it first); a forced driver (a scenario)
tilts the other series as a drawn one does. Fitted in the same rounds, by the gap over the
variance of the product (a step no larger than Newton's: no damping).

The run folder keeps it in ``drift.json`` with the weights' hash it was fitted for; a
forecast of the run applies it (its metadata says so) unless asked not to.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data_sources import catalog
from foundation.atomic import write_text
from foundation.dataclass_io import dataclass_from_dict
from foundation.errors import UserError

DRIFT_FILE = "drift.json"
DRIFT_FORMAT = "forecaster-drift"
#: bucket edges at these quantiles of the day before's level (8 buckets: the tails get their own)
QUANTILES = (0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 0.95)
MIN_DAYS = 200      # sampled days a bucket needs before its tilt moves
DAMPING = 0.7       # of the Newton step per round
MAX_LAMBDA = 0.2    # |lambda| at most (model units: per % of log change)
MAX_KAPPA = 0.1     # |kappa| at most (per % of absolute change: exp(0.1 x 30) = 20x at a 30 % day)
MAX_ETA = 1.5       # |eta| at most: a spike's odds times exp(1.5) = 4.5 at most
SPIKE_QUANTILE = 0.97  # a spike: a change above this quantile of history's changes
MAX_GAMMA = 5.0     # |gamma| at most (per unit of the product of the two changes, model units; 20 measured worse)
MATCHES = ("mean", "spread", "spikes")  # the statistics a fit can match, in this order; "mean" always
CALIBRATION_SEED = 2_000_000  # the fit samples its own seeds, never a reported forecast's


class DriftError(UserError):
    """A drift calibration that cannot be fitted or read."""


@dataclass
class SeriesDrift:
    """One series' tilt: bucket ``edges`` (levels, ascending; ``len(edges) + 1`` buckets) and ``lam`` per bucket."""

    edges: list[float]
    lam: list[float]
    target: list[float]                                  # history's mean change per bucket (model units)
    history_days: list[int]                              # history's days per bucket
    sampled: list[list[float]] = field(default_factory=list)   # per round: the paths' mean per bucket (before its update)
    kappa: list[float] = field(default_factory=list)           # per bucket: the tilt on |change| (spread); empty: none
    target_abs: list[float] = field(default_factory=list)      # history's mean |change| per bucket (model units)
    sampled_abs: list[list[float]] = field(default_factory=list)  # per round: the paths' mean |change| per bucket
    spike: float | None = None                                 # a spike: a change above this (model units); None: none
    eta: list[float] = field(default_factory=list)             # per bucket: the tilt on a spike
    target_spike: list[float] = field(default_factory=list)    # history's share of spike days per bucket
    sampled_spike: list[list[float]] = field(default_factory=list)  # per round: the paths' share per bucket
    fit_mean: bool = True                                      # False: ``lam`` holds the untilted paths' mean
    hold_mean: list = field(default_factory=list)              # per bucket: the untilted paths' mean (None: too few days)

    @property
    def match(self) -> tuple[str, ...]:
        """The statistics this tilt matches (``MATCHES``)."""
        return (("mean",) if self.fit_mean else ()) + (("spread",) if self.kappa else ()) + (("spikes",) if self.eta else ())

    def mean_target(self, b: int) -> float | None:
        """Bucket ``b``'s target for the mean change: history's, or (``fit_mean`` False) the untilted paths'."""
        if self.fit_mean:
            return self.target[b]
        return self.hold_mean[b] if b < len(self.hold_mean) else None

    def bucket(self, level: np.ndarray) -> np.ndarray:
        """The bucket index of each previous-day level; bucket ``b`` holds ``edges[b-1] <= level < edges[b]``."""
        return np.searchsorted(np.asarray(self.edges), level, side="right")


@dataclass
class PairDrift:
    """A co-movement tilt: ``series``' draw tilted by ``gamma_b`` × the ``driver``'s change of the same day × its value."""

    driver: str
    series: str
    edges: list[float]                                   # buckets of the driver's previous level
    gamma: list[float]
    target: list[float]                                  # history's mean of (driver change x series change) per bucket
    history_days: list[int]
    sampled: list[list[float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.driver}:{self.series}"

    def bucket(self, level: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges), level, side="right")


@dataclass
class DriftCalibration:
    """The fitted tilts of a run (``drift.json``); see the module doc."""

    weights: str                                         # sha256 of the weights it was fitted for
    as_of: str                                           # history and origins up to this day
    temperature: float                                   # the sampling temperature of the fit
    series: dict[str, SeriesDrift]
    origins: list[str]
    n_paths: int
    horizon: int
    rounds: int
    data: str | None = None
    seconds: float = 0.0
    format: str = DRIFT_FORMAT
    pairs: list[PairDrift] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def options(self) -> str:
        """The ``forecaster calibrate --drift`` options that fit these tilts again (series, statistics, pairs, rounds)."""
        out = f"--drift-rounds {self.rounds} --drift-series " + ",".join(
            f"{name}={'+'.join(d.match)}" for name, d in self.series.items())
        if self.pairs:
            out += " --drift-pairs " + ",".join(pr.name for pr in self.pairs)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "DriftCalibration":
        d = dict(d)
        try:
            d["series"] = {k: dataclass_from_dict(SeriesDrift, v, DriftError, "drift setting")
                           for k, v in d.get("series", {}).items()}
        except AttributeError:
            raise DriftError("drift setting 'series' must be a mapping of series to their tilts") from None
        if not isinstance(d.get("pairs", []), list):
            raise DriftError("drift setting 'pairs' must be a list of co-movement tilts")
        d["pairs"] = [dataclass_from_dict(PairDrift, v, DriftError, "drift pair") for v in d.get("pairs", [])]
        out = dataclass_from_dict(cls, d, DriftError, "drift setting")
        if out.format != DRIFT_FORMAT:
            raise DriftError(f"format {out.format!r} is not {DRIFT_FORMAT!r}")
        for name, s in out.series.items():
            if len(s.lam) != len(s.edges) + 1 or list(s.edges) != sorted(s.edges):
                raise DriftError(f"{name}: needs ascending edges and one lambda per bucket "
                                 f"({len(s.edges)} edges, {len(s.lam)} lambdas)")
            if s.kappa and len(s.kappa) != len(s.lam):
                raise DriftError(f"{name}: needs one kappa (spread tilt) per bucket or none "
                                 f"({len(s.lam)} buckets, {len(s.kappa)} kappas)")
            if s.eta and (len(s.eta) != len(s.lam) or s.spike is None):
                raise DriftError(f"{name}: needs a spike threshold and one eta (spike tilt) per bucket, or neither "
                                 f"({len(s.lam)} buckets, {len(s.eta)} etas, spike {s.spike})")
        for pr in out.pairs:
            if len(pr.gamma) != len(pr.edges) + 1 or list(pr.edges) != sorted(pr.edges):
                raise DriftError(f"pair {pr.name}: needs ascending edges and one gamma per bucket "
                                 f"({len(pr.edges)} edges, {len(pr.gamma)} gammas)")
        return out


def drift_path(run_dir) -> Path:
    return Path(run_dir) / DRIFT_FILE


def load_drift(run_dir, weights: str | None = None) -> DriftCalibration | None:
    """The run's drift calibration, or None. A damaged file, or one fitted for other weights, is a ``DriftError``."""
    path = drift_path(run_dir)
    if not path.exists():
        return None
    try:
        cal = DriftCalibration.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise DriftError(f"{path}: not a drift calibration ({exc}); delete it or run "
                         "'forecaster calibrate --drift' again") from None
    if weights is not None and cal.weights != weights:
        raise DriftError(f"{path} was fitted for other weights (sha256 {cal.weights[:12]}..., the run's best are "
                         f"{weights[:12]}...); run 'forecaster calibrate --drift' again or delete it")
    return cal


def check_drift_origins(run_dir, first_origin) -> None:
    """Refuse test origins on or before the as-of date of the run's drift fit (its history and paths saw those days)."""
    path = drift_path(run_dir)
    if not path.exists():
        return
    try:
        as_of = pd.Timestamp(json.loads(path.read_text())["as_of"])
    except (ValueError, TypeError, KeyError) as exc:
        raise DriftError(f"{path}: not a drift calibration ({exc}); delete it or run "
                         "'forecaster calibrate --drift' again") from None
    if pd.Timestamp(first_origin) <= as_of:
        raise DriftError(f"the run {run_dir} has drift tilts fitted on its history to {as_of.date()}, and the "
                         f"backtest starts {pd.Timestamp(first_origin).date()}: a test origin must come after it "
                         "(look-ahead); start the backtest later, or delete its drift.json")


def default_series(series: Sequence[str], transforms: Sequence) -> list[str]:
    """The series calibrated by default: daily, ``stationary`` in the catalog, modeled by their changes (VIX)."""
    cat = catalog.active()
    return [name for name, t in zip(series, transforms)
            if name in cat and cat[name].stationary and cat[name].frequency == "D" and t.models_changes]


def _history_changes(levels: pd.Series, transform) -> tuple[np.ndarray, np.ndarray]:
    """History's change into each day (model units) and the day before's level, over the days with both."""
    x = levels.dropna().to_numpy(dtype=np.float64)
    values = np.asarray(transform.forward(x), dtype=np.float64)[1:]   # the change into day d, d >= 1
    prev = x[:-1]
    ok = np.isfinite(values)
    return values[ok], prev[ok]


def history_target(levels: pd.Series, transform, quantiles: Sequence[float] = QUANTILES
                   ) -> tuple[list[float], list[float], list[int]]:
    """Bucket edges at ``quantiles`` of the day before's level, history's mean change (model units) and days per bucket."""
    n = int(levels.notna().sum())
    if n < 10 * (len(quantiles) + 1):
        raise DriftError(f"{levels.name}: {n} days of history are too few to calibrate its drift")
    values, prev = _history_changes(levels, transform)
    edges = [float(e) for e in np.quantile(prev, quantiles)]
    b = np.searchsorted(edges, prev, side="right")
    target, days = [], []
    for k in range(len(edges) + 1):
        sel = b == k
        days.append(int(sel.sum()))
        target.append(float(values[sel].mean()) if sel.any() else 0.0)
    return edges, target, days


def history_abs_target(levels: pd.Series, transform, edges: Sequence[float]) -> list[float]:
    """History's mean absolute change (model units) per bucket of the day before's level (``edges`` as in ``history_target``)."""
    values, prev = _history_changes(levels, transform)
    b = np.searchsorted(np.asarray(edges), prev, side="right")
    return [float(np.abs(values[b == k]).mean()) if (b == k).any() else 0.0 for k in range(len(edges) + 1)]


def history_spike_target(levels: pd.Series, transform, edges: Sequence[float],
                         quantile: float = SPIKE_QUANTILE) -> tuple[float, list[float]]:
    """The spike threshold (``quantile`` of history's changes) and history's share of spike days per bucket."""
    values, prev = _history_changes(levels, transform)
    spike = float(np.quantile(values, quantile))
    b = np.searchsorted(np.asarray(edges), prev, side="right")
    return spike, [float((values[b == k] > spike).mean()) if (b == k).any() else 0.0 for k in range(len(edges) + 1)]


def parse_pairs(spec: str | Sequence[str] | None) -> list[tuple[str, str]]:
    """``"UST2Y:UST10Y,..."`` (or a list of such) as ``[(driver, series), ...]``; a malformed one is a ``DriftError``."""
    if not spec:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        parts = [x.strip() for x in item.split(":")]
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise DriftError(f"drift pair {item!r} must be DRIVER:SERIES, two different series (e.g. UST2Y:UST10Y)")
        out.append((parts[0], parts[1]))
    return out


def parse_match(spec: str | Sequence[str], sep: str = ",", where: str = "--drift-match") -> list[str]:
    """The statistics a fit matches (``"mean,spikes"`` or a list), in ``MATCHES`` order; else a ``DriftError``."""
    items = {m.strip() for m in (spec.split(sep) if isinstance(spec, str) else spec) if m.strip()}
    odd = sorted(items - set(MATCHES))
    if odd:
        raise DriftError(f"unknown statistic {', '.join(odd)} for the drift fit ({where}); "
                         f"choose among {', '.join(MATCHES)}")
    if not items:
        raise DriftError(f"no statistic for the drift fit ({where}); choose among {', '.join(MATCHES)}")
    return [m for m in MATCHES if m in items]


def parse_series(spec: str | Sequence[str] | None, match: Sequence[str]) -> dict[str, list[str]] | None:
    """``"VIX,UST2Y=spread"`` (or a list of such) as ``{series: statistics}``: each series with the statistics
    after its ``=`` (joined by ``+``: ``UST2Y=mean+spread``), else ``match``; None for no spec (the defaults)."""
    if not spec:
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: dict[str, list[str]] = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, _, stats = (x.strip() for x in item.partition("="))
        if not name or ("=" in item and not stats):
            raise DriftError(f"drift series {item!r} must be SERIES or SERIES=STATISTIC+... (e.g. UST2Y=spread)")
        out[name] = parse_match(stats, "+", f"--drift-series {name}") if stats else list(match)
    return out or None


def check_pair_order(tokenizer, driver: str, series: str) -> tuple[slice, slice]:
    """The driver's and the series' slots in a row; a ``DriftError`` unless the driver is drawn first."""
    sd, ss = tokenizer.column_slots(driver), tokenizer.column_slots(series)
    if ss.start <= sd.start:
        raise DriftError(f"drift pair {driver}:{series}: {series} is drawn before {driver} in a row; "
                         "the driver must come first")
    return sd, ss


def history_pair_target(driver: pd.Series, series: pd.Series, t_driver, t_series,
                        quantiles: Sequence[float] = QUANTILES) -> tuple[list[float], list[float], list[int]]:
    """Bucket edges of the driver's previous level, history's mean of the product of both changes, days per bucket."""
    both = pd.concat([driver, series], axis=1).dropna()
    if len(both) < 10 * (len(quantiles) + 1):
        raise DriftError(f"{driver.name}:{series.name}: {len(both)} days with both are too few to calibrate")
    x = both.to_numpy(dtype=np.float64)
    vd = np.asarray(t_driver.forward(x[:, 0]), dtype=np.float64)[1:]
    vs = np.asarray(t_series.forward(x[:, 1]), dtype=np.float64)[1:]
    prev = x[:-1, 0]
    ok = np.isfinite(vd) & np.isfinite(vs)
    prod, prev = (vd * vs)[ok], prev[ok]
    edges = [float(e) for e in np.quantile(prev, quantiles)]
    b = np.searchsorted(edges, prev, side="right")
    target = [float(prod[b == k].mean()) if (b == k).any() else 0.0 for k in range(len(edges) + 1)]
    return edges, target, [int((b == k).sum()) for k in range(len(edges) + 1)]


def pair_bucket_stats(driver_paths: np.ndarray, series_paths: np.ndarray, origins: tuple[float, float],
                      t_driver, t_series, pair: PairDrift) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bucket of the driver's previous level: sum and sum of squares of the product of both changes, and the count."""
    prev, vd = _path_changes(driver_paths, origins[0], t_driver)
    _, vs = _path_changes(series_paths, origins[1], t_series)
    x = vd * vs
    ok = np.isfinite(x) & np.isfinite(prev)
    b = pair.bucket(prev[ok])
    n = len(pair.edges) + 1
    s1, s2, c = np.zeros(n), np.zeros(n), np.zeros(n)
    np.add.at(s1, b, x[ok])
    np.add.at(s2, b, x[ok] ** 2)
    np.add.at(c, b, 1.0)
    return s1, s2, c


def statistics(values: np.ndarray, drift: SeriesDrift) -> np.ndarray:
    """``(n, k)``: the statistics of each change that ``drift`` matches: the change, ``|change|``, ``[change > spike]``."""
    cols = [values]
    if drift.kappa:
        cols.append(np.abs(values))
    if drift.eta:
        cols.append((values > drift.spike).astype(np.float64))
    return np.stack(cols, axis=-1)


class DriftTilt:
    """A ``step_mask`` for the ``DaySampler`` that adds each path's tilt ``lambda_b · value + kappa_b · |value|
    + eta_b · [value > spike]`` (the terms the fit matched) at a calibrated series' slot.

    ``levels``: a callable giving every path's levels of its newest day ``(paths, series)`` (the
    ``PathFeatures`` callback's ``levels``, which the sampler updates after each day). The bias is
    multiplied by the sampling ``temperature`` (the sampler divides the logits by it), so the tilt
    is the same at every temperature. At every other slot it returns None (no mask).
    """

    def __init__(self, tokenizer, drift: DriftCalibration, levels: Callable[[], np.ndarray], temperature: float) -> None:
        self.levels = levels
        V = tokenizer.vocab_size
        t = float(max(temperature, 1e-6))
        self.slots: dict[int, tuple] = {}   # slot -> (column, its drift, values, lambda, kappa or None, (eta, spike mask) or None)
        for name, s in drift.series.items():
            j = list(tokenizer.columns).index(name)
            ids = tokenizer.column_vocab(name)
            v = self._values(tokenizer, name)
            lam = torch.tensor(s.lam, dtype=torch.float64) * t
            kappa = torch.tensor(s.kappa, dtype=torch.float64) * t if any(s.kappa) else None
            eta = None
            if any(s.eta):
                spikes = np.zeros(V)
                spikes[ids.start:ids.stop] = v.numpy()[ids.start:ids.stop] > s.spike   # a missing value (0): no spike
                eta = (torch.tensor(s.eta, dtype=torch.float64) * t, torch.from_numpy(spikes))
            self.slots[tokenizer.column_slots(name).start] = (j, s, v, lam, kappa, eta)
        columns = list(tokenizer.columns)
        self.pairs: dict[int, list[tuple]] = {}   # series' slot -> [(driver column, driver slot, pair, driver values, values, gamma)]
        for pr in drift.pairs:
            sd, ss = check_pair_order(tokenizer, pr.driver, pr.series)
            self.pairs.setdefault(ss.start, []).append(
                (columns.index(pr.driver), sd.start, pr, self._values(tokenizer, pr.driver),
                 self._values(tokenizer, pr.series), torch.tensor(pr.gamma, dtype=torch.float64) * t))

    @staticmethod
    def _values(tokenizer, name: str) -> torch.Tensor:
        """``(vocab,)``: each id's value of ``name`` in model units (0 elsewhere and for a missing value)."""
        ids = tokenizer.column_vocab(name)
        values, _ = tokenizer.codec(name).decode(np.arange(len(ids))[:, None])
        v = np.zeros(tokenizer.vocab_size)
        v[ids.start:ids.stop] = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
        return torch.from_numpy(v)

    def __call__(self, prefix: torch.Tensor) -> torch.Tensor | None:
        slot = prefix.shape[1]
        series, pairs = self._series(prefix, slot), self._pairs(prefix, slot)
        if pairs is None:
            return series
        return pairs if series is None else series + pairs

    def _pairs(self, prefix: torch.Tensor, slot: int) -> torch.Tensor | None:
        hits = self.pairs.get(slot)
        if not hits:
            return None
        out = None
        for jd, sd, pr, vd, vs, gamma in hits:
            level = self.levels()[:, jd]
            b = torch.from_numpy(pr.bucket(np.where(np.isfinite(level), level, -np.inf)))
            drawn = vd[prefix[:, sd].long()]                        # (paths,): the driver's change today
            tilt = (gamma[b] * drawn)[:, None] * vs[None, :]
            if np.isnan(level).any():
                tilt[torch.from_numpy(np.isnan(level))] = 0.0
            out = tilt if out is None else out + tilt
        return out

    def _series(self, prefix: torch.Tensor, slot: int) -> torch.Tensor | None:
        hit = self.slots.get(slot)
        if hit is None:
            return None
        j, s, v, lam, kappa, eta = hit
        level = self.levels()[:, j]
        b = torch.from_numpy(s.bucket(np.where(np.isfinite(level), level, -np.inf)))
        tilt = lam[b][:, None] * v[None, :]                        # (paths, V)
        if kappa is not None:
            tilt += kappa[b][:, None] * v.abs()[None, :]
        if eta is not None:
            tilt += eta[0][b][:, None] * eta[1][None, :]
        if np.isnan(level).any():                                  # no level: no tilt
            tilt[torch.from_numpy(np.isnan(level))] = 0.0
        return tilt


def _path_changes(paths: np.ndarray, origin: float, transform) -> tuple[np.ndarray, np.ndarray]:
    """``(paths, days)`` previous levels and changes (model units) of level paths from ``origin``."""
    full = np.concatenate([np.full((paths.shape[0], 1), origin), paths], axis=1)
    return full[:, :-1], np.stack([np.asarray(transform.forward(p), dtype=np.float64)[1:] for p in full])


def path_bucket_stats(paths: np.ndarray, origin: float, transform, drift: SeriesDrift
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bucket of the previous level: the sums of the matched statistics ``f`` of the paths' changes
    (``statistics``), of ``f f^T``, and the count: ``(buckets, k)``, ``(buckets, k, k)``, ``(buckets,)``.

    ``paths``: (paths, days) levels of one series; ``origin``: its level at the origin.
    """
    prev, vals = _path_changes(paths, origin, transform)
    ok = np.isfinite(vals) & np.isfinite(prev)
    b = drift.bucket(np.where(ok, prev, 0.0))[ok]
    f = statistics(vals[ok], drift)                                                         # (n, k)
    n, k = len(drift.edges) + 1, f.shape[1]
    s1, s2, c = np.zeros((n, k)), np.zeros((n, k, k)), np.zeros(n)
    np.add.at(s1, b, f)
    np.add.at(s2, b, f[:, :, None] * f[:, None, :])
    np.add.at(c, b, 1.0)
    return s1, s2, c


def newton_step(s1: np.ndarray, s2: np.ndarray, count: float, target: Sequence[float]) -> np.ndarray:
    """One bucket's undamped step of its tilts (``lambda``, then ``kappa``, ``eta`` as matched) to history's ``target``.

    ``s1`` (k,), ``s2`` (k, k), ``count``: the bucket's sums (``path_bucket_stats``). The step is
    the gaps in the statistics' means times the inverse of their covariance under the paths,
    the Jacobian of the tilted means (mean only: the gap over the variance). Where the covariance
    is nearly singular (no spike in the bucket, every change of one sign), the last statistics
    are left out of the step (their tilts do not move) until it is not.
    """
    mean = s1 / count
    cov = s2 / count - np.outer(mean, mean)
    gap = np.asarray(target, dtype=np.float64) - mean
    step = np.zeros(len(mean))
    for k in range(len(mean), 0, -1):
        c = cov[:k, :k]
        scale = np.prod(np.clip(np.diag(c), 0.0, None))
        if scale > 0 and np.linalg.det(c) > 1e-6 * scale:
            step[:k] = np.linalg.solve(c, gap[:k])
            break
    return step


def fit_drift(run_dir, data: str | None = None, series: Sequence[str] | Mapping[str, Sequence[str]] | None = None, *, n_origins: int = 16,
              n_paths: int = 48, horizon: int = 250, rounds: int = 4, temperature: float | None = None,
              min_days: int = MIN_DAYS, match: Sequence[str] = MATCHES, pairs: Sequence[tuple[str, str]] = (),
              save: bool = True, progress: Callable[[str], None] | None = None) -> DriftCalibration:
    """Fit the run's drift tilts (module doc); write ``drift.json`` unless ``save`` is False.

    ``n_origins`` origins evenly spaced over the run's days (after a context and a year of
    inputs), ``n_paths`` paths of ``horizon`` days each per round; a bucket's tilt moves only
    when the round's paths spent ``min_days`` days in it. ``match``: the statistics matched per
    bucket (``MATCHES``): the mean change (``"mean"``, ``lambda``), the mean absolute change
    (``"spread"``, ``kappa``) and the share of spike days (``"spikes"``, ``eta``), as asked;
    ``series`` as a mapping gives each series its own (``parse_series``). ``pairs``:
    ``(driver, series)`` co-movement tilts fitted in the same rounds (module doc).
    """
    from forecaster.core.sampler import SamplingConfig  # deferred: torch-heavy imports
    from forecaster.market.inputs import yoy_index_levels
    from forecaster.market.pipeline import ForecastPipeline
    from forecaster.market.run import PanelRun

    t0 = time.perf_counter()
    run = PanelRun(run_dir)
    pipe = ForecastPipeline.from_run(run.path)
    if not pipe.is_day or pipe.inputs is None:
        raise DriftError(f"the run {run.path} is not a day-level model with input features; the drift tilt reads "
                         "each path's level from them")
    as_of = pd.Timestamp(run.info["last_date"])      # the last day of data the run read (its as-of date)
    transforms = dict(zip(pipe.series, pipe.transforms))
    names = list(series) if series else default_series(pipe.series, pipe.transforms)
    matches = {s: parse_match(series[s] if isinstance(series, Mapping) else match) for s in names}
    unknown = [s for s in [*names, *(x for pr in pairs for x in pr)] if s not in transforms]
    if unknown:
        raise DriftError(f"series {', '.join(unknown)} not modeled by this run (it models {', '.join(pipe.series)})")
    if not names and not pairs:
        raise DriftError("no series to calibrate: the run models no daily stationary series by its changes; "
                         "name one with --drift-series")
    bad = [s for s in names if not transforms[s].models_changes]
    if bad:
        raise DriftError(f"{', '.join(bad)}: modeled as levels, not changes; the drift tilt is for changes")
    for drv, ser in pairs:   # refused before any panel is built
        check_pair_order(pipe.tokenizer, drv, ser)
    temp = float(temperature if temperature is not None else
                 (pipe.calibration.temperature if pipe.calibration is not None else 1.0))
    builder = pipe.panel_builder(data)
    full = builder.build(as_of)[pipe.series]          # nothing published after the as-of date
    drift_series = {}
    for s in names:
        edges, target, days = history_target(full[s].rename(s), transforms[s])
        zeros = [0.0] * (len(edges) + 1)
        d = SeriesDrift(edges, list(zeros), target, days, fit_mean="mean" in matches[s])
        if "spread" in matches[s]:
            d.kappa, d.target_abs = list(zeros), history_abs_target(full[s].rename(s), transforms[s], edges)
        if "spikes" in matches[s]:
            d.spike, d.target_spike = history_spike_target(full[s].rename(s), transforms[s], edges)
            d.eta = list(zeros)
        drift_series[s] = d
    pair_drifts = []
    for drv, ser in pairs:
        edges, target, days = history_pair_target(full[drv].rename(drv), full[ser].rename(ser),
                                                  transforms[drv], transforms[ser])
        pair_drifts.append(PairDrift(drv, ser, edges, [0.0] * (len(edges) + 1), target, days))
    need = pipe.model.config.context_rows + 300       # the prompt and the slow inputs' windows
    first = full.index[min(need, len(full) - 1)]
    candidates = full.index[(full.index >= first)]
    picks = np.unique(np.linspace(0, len(candidates) - 1, n_origins).round().astype(int))
    origins = [candidates[i] for i in picks]
    index_levels = yoy_index_levels(builder)
    panels = [builder.build(o)[pipe.series] for o in origins]
    cal = DriftCalibration(run.best_weights_sha256(), str(as_of.date()), temp, drift_series,
                           [str(o.date()) for o in origins], n_paths, horizon, rounds, data or run.data,
                           pairs=pair_drifts)
    for r in range(rounds):
        pipe.drift = cal
        totals = {s: None for s in drift_series}
        pair_totals = [None] * len(pair_drifts)
        for k, (origin, panel) in enumerate(zip(origins, panels)):
            fc = pipe.predict(panel, as_of=origin, n_paths=n_paths, horizon=horizon,
                              seed=CALIBRATION_SEED + 1000 * r + k, sampling=SamplingConfig(temp),
                              index_levels=index_levels)
            for s, d in drift_series.items():
                j = fc.series.index(s)
                stats = path_bucket_stats(fc.paths[:, :, j], float(panel[s].iloc[-1]), transforms[s], d)
                totals[s] = stats if totals[s] is None else tuple(a + x for a, x in zip(totals[s], stats))
            for i, pr in enumerate(pair_drifts):
                jd, js = fc.series.index(pr.driver), fc.series.index(pr.series)
                stats = pair_bucket_stats(fc.paths[:, :, jd], fc.paths[:, :, js],
                                          (float(panel[pr.driver].iloc[-1]), float(panel[pr.series].iloc[-1])),
                                          transforms[pr.driver], transforms[pr.series], pr)
                pair_totals[i] = stats if pair_totals[i] is None else tuple(a + x for a, x in zip(pair_totals[i], stats))
        for s, d in drift_series.items():
            s1, s2, c = totals[s]
            means = np.where(c[:, None] > 0, s1 / np.maximum(c, 1)[:, None], np.nan)   # (buckets, k)
            rounded = [[None if not np.isfinite(m) else round(float(m), 5) for m in col] for col in means.T]
            d.sampled.append(rounded[0])
            if r == 0 and not d.fit_mean:   # the first round is untilted: the mean a spread-only tilt holds
                d.hold_mean = [m if n >= min_days else None for m, n in zip(rounded[0], c)]
            if d.kappa:
                d.sampled_abs.append(rounded[1])
            if d.eta:
                d.sampled_spike.append(rounded[-1])
            for b in range(len(d.lam)):
                if c[b] < min_days:
                    continue
                mean = d.mean_target(b)
                target = np.array([np.nan if mean is None else mean] + ([d.target_abs[b]] if d.kappa else [])
                                  + ([d.target_spike[b]] if d.eta else []))
                cols = [k for k in range(len(target)) if np.isfinite(target[k])]
                step = dict(zip(cols, DAMPING * newton_step(s1[b][cols], s2[b][np.ix_(cols, cols)], c[b], target[cols])))
                if 0 in step:
                    d.lam[b] = float(np.clip(d.lam[b] + step[0], -MAX_LAMBDA, MAX_LAMBDA))
                if d.kappa:
                    d.kappa[b] = float(np.clip(d.kappa[b] + step[1], -MAX_KAPPA, MAX_KAPPA))
                if d.eta:
                    d.eta[b] = float(np.clip(d.eta[b] + step[1 + bool(d.kappa)], -MAX_ETA, MAX_ETA))
        for pr, (s1, s2, c) in zip(pair_drifts, pair_totals):
            mean = np.where(c > 0, s1 / np.maximum(c, 1), np.nan)
            var = np.where(c > 1, s2 / np.maximum(c, 1) - mean ** 2, np.nan)
            pr.sampled.append([None if not np.isfinite(m) else round(float(m), 6) for m in mean])
            for b in range(len(pr.gamma)):
                if c[b] >= min_days and np.isfinite(var[b]) and var[b] > 0:
                    pr.gamma[b] = float(np.clip(pr.gamma[b] + (pr.target[b] - mean[b]) / var[b], -MAX_GAMMA, MAX_GAMMA))
        if progress and pair_drifts:
            progress(f"round {r + 1}/{rounds}: " + "; ".join(
                f"{pr.name} mean product {', '.join(f'{m:+.4f}' if m is not None else '-' for m in pr.sampled[-1])} "
                f"vs history {', '.join(f'{t:+.4f}' for t in pr.target)}" for pr in pair_drifts))
        if progress and drift_series:
            progress(f"round {r + 1}/{rounds}: " + "; ".join(
                f"{s} paths {', '.join(f'{m:+.2f}' if m is not None else '-' for m in d.sampled[-1])} "
                f"vs history {', '.join(f'{t:+.2f}' for t in d.target)}"
                + (f"; mean |change| {', '.join(f'{m:.2f}' if m is not None else '-' for m in d.sampled_abs[-1])} "
                   f"vs {', '.join(f'{t:.2f}' for t in d.target_abs)}" if d.kappa else "")
                + (f"; spike days % {', '.join(f'{100 * m:.1f}' if m is not None else '-' for m in d.sampled_spike[-1])} "
                   f"vs {', '.join(f'{100 * t:.1f}' for t in d.target_spike)}" if d.eta else "")
                for s, d in drift_series.items()))
    pipe.drift = None
    cal.seconds = round(time.perf_counter() - t0, 1)
    if save:
        write_text(drift_path(run.path), json.dumps(cal.to_dict(), indent=2))
    return cal
