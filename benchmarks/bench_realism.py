"""Realism of sampled joint paths against history (issue 14): co-movement, VIX, releases, drift, floors.

    OMP_NUM_THREADS=1 python benchmarks/bench_realism.py --run /tmp/runs/bt-full --data tests/fixtures/shared_data.yaml
    python benchmarks/bench_realism.py --run RUN --run RUN2 --origins 2019-12-31 --out realism.md   # runs side by side
    python benchmarks/bench_realism.py --run RUN --pool RUN,RUN_S1,RUN_S2   # and a seed pool (forecaster.market.pool)
    python benchmarks/bench_realism.py --run RUN --seeds 0,1,2,3   # and the cells each sampling seed misses

Samples ``--paths`` paths x ``--horizon`` business days from each origin with each run,
computes the facts below on the paths and on the real panel since 1990, and prints
one table: a row per fact, its history, its target, and a column per run and origin
with the value and PASS/FAIL. It is a measurement: it exits 0 whatever the verdicts.

Daily changes are the catalog's modeling transform (log returns in % for prices,
differences for yields and spreads), and the first difference in the series' own unit
for a mean-reverting level (the catalog's ``stationary``: VIX in index points, as the
issue's table measures it, whether a run models it as a level or as a log change). Path changes start from the origin's level, so a path of H days
has H changes. How each fact is summarised over paths:

- correlations, VIX change std and lag-1 autocorrelation: pooled over paths (all
  within-path daily changes of all paths, lag pairs inside one path); history: all
  days since 1990 (pairwise complete);
- release days (days on which a monthly or quarterly series publishes a new value, from
  its publication calendar: 12 a year for a monthly series, 4 for GDP), per 250 days;
  history: the median 250-day block of the real panel's release days. On a path, a
  release day is a day on which it may change; "changes off a release day" counts the
  days on which any path moves a release series between its releases (target 0);
- change days (days on which a monthly or quarterly series changes): per path, the
  median path, scaled to 250 days; history: the median 250-day block. A release that
  repeats the last value is no change: unemployment is unchanged in about a quarter
  of months, so its history is 9, not 12, and the target is history +- 1;
- drift: the annualised log growth (252 days a year) of the median and of the mean
  SPX path from the origin; history: 252 x the mean daily log return;
- floors: the share of paths whose minimum goes below the floor; history: the share
  of 250-day blocks;
- VIX's range (no targets; what a risk committee asks of a volatility path): the median
  and 90th percentile over paths of each path's high, and the share of paths above 60
  or below 9 index points; history: the same over 250-day blocks;
- NaN cells: missing cells in the paths.

Beside the table, *history from the origin's state* (no targets: the context a target
against all history lacks): the VIX change std over the real 250-day blocks since 1990
that start with VIX within 10 % of the origin's level, and the UST2Y x UST10Y correlation
over the blocks that start with UST2Y within 0.25 points of the origin's (pooled over the
blocks, as the paths are). From a calm VIX or a 2-year yield at zero, history's next year
is calmer and its curve less tied than all of history.

Paths are sampled at each run's calibrated temperature (``forecaster calibrate``), or 1
for an uncalibrated run, unless ``--temperature`` is given; the header line says which.

A run trained to date T may forecast from later origins: it is given the panel as of
each origin (no look-ahead for the forecast), but those days lie outside the period
it was trained on, and the table says so.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from data_sources import catalog
from forecaster import ForecastPipeline
from forecaster.market.features import release_days as calendar_release_days
from forecaster.market.pool import PooledPipeline
from forecaster.market.run import PanelRun
from forecaster.market.transforms import Transform, get as get_transform, transform_of

HISTORY_START = "1990-01-01"
BLOCK_DAYS = 250  # one "path" of history for per-path counts
DAYS_PER_YEAR = 252  # the panel and the paths are on the NYSE trading calendar
FLOOR = -0.75  # % : a yield below it counts against the floor target
FLOOR_SERIES = ("UST3M", "UST2Y")
VIX_HIGH, VIX_LOW = 60.0, 9.0  # index points: the range facts (no target) count paths beyond them
PAIRS = (("SPX", "XLK"), ("SPX", "VIX"), ("UST2Y", "UST10Y"), ("SPX", "UST10Y"))
DEFAULT_ORIGINS = ("2017-12-29", "2019-12-31", "2021-12-31")
ANALOGUE_VIX = 0.10     # relative: history's blocks that start with VIX within 10 % of the origin's
ANALOGUE_UST2Y = 0.25   # points: ... with UST2Y within 0.25 of the origin's


# -- which series is what --------------------------------------------------------------------
def market_series(series: Sequence[str]) -> list[str]:
    """The daily market series among ``series`` (catalog group ``market``), in order."""
    return [s for s in series if catalog.get(s).group == "market" and catalog.get(s).frequency == "D"]


def release_series(series: Sequence[str]) -> list[str]:
    """The monthly and quarterly series among ``series`` (they change on release days only), in order."""
    return [s for s in series if catalog.get(s).frequency in ("M", "Q")]


def releases_per_block(name: str) -> int:
    """Releases of a series in ``BLOCK_DAYS`` business days: 12 for monthly, 4 for quarterly."""
    return {"M": 12, "Q": 4}[catalog.get(name).frequency]


def change_transform(name: str) -> Transform:
    """The transform whose values are the series' daily changes: its modeling transform, or ``diff`` for a
    level or a mean-reverting (``stationary``) series, so VIX changes are in points."""
    t = transform_of(name)
    return t if t.models_changes and not catalog.get(name).stationary else get_transform("diff")


# -- changes ---------------------------------------------------------------------------------
def path_changes(paths: np.ndarray, series: Sequence[str], origin: np.ndarray) -> np.ndarray:
    """Daily changes along sampled level paths, the first one from the origin's level.

    Parameters
    ----------
    paths : (paths, horizon, series) levels.
    origin : (series,) levels on the origin day.

    Returns
    -------
    (paths, horizon, series) changes (log returns in %, differences in the series' unit).
    """
    assert paths.ndim == 3 and paths.shape[2] == len(series) == len(origin), \
        f"paths {paths.shape} must be (paths, horizon, series) with {len(series)} series and origin levels"
    n_paths = paths.shape[0]
    out = np.empty(paths.shape, dtype=np.float64)
    for j, name in enumerate(series):
        levels = np.vstack([np.full((1, n_paths), origin[j], dtype=np.float64), paths[:, :, j].T])  # (1 + H, P)
        out[:, :, j] = change_transform(name).forward(levels)[1:].T
    return out


def history_changes(panel: pd.DataFrame) -> pd.DataFrame:
    """Daily changes of each panel column (same index; the first row NaN)."""
    return pd.DataFrame({c: change_transform(c).forward(panel[c].to_numpy(dtype=np.float64)) for c in panel.columns},
                        index=panel.index)


# -- statistics on (paths, days) arrays; history is one path ---------------------------------
def pooled_corr(x: np.ndarray, y: np.ndarray) -> float:
    """Correlation of two equally shaped change arrays, all cells pooled where both are finite (NaN if constant)."""
    a, b = np.ravel(x), np.ravel(y)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def pooled_lag1_autocorr(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of (paths, days) changes, lag pairs inside each path pooled."""
    x = np.atleast_2d(x)
    return pooled_corr(x[:, :-1], x[:, 1:])


def mean_abs_corr(changes: dict[str, np.ndarray]) -> float:
    """Mean |correlation| over all pairs of the given series' change arrays (pooled; NaN pairs left out)."""
    corrs = [abs(pooled_corr(changes[a], changes[b])) for a, b in itertools.combinations(changes, 2)]
    return float(np.nanmean(corrs)) if corrs and not np.all(np.isnan(corrs)) else float("nan")


def change_days(x: np.ndarray) -> np.ndarray:
    """Days with a nonzero finite change in each row of (paths, days) changes: (paths,)."""
    x = np.atleast_2d(x)
    return (np.isfinite(x) & (x != 0)).sum(axis=1)


def annual_drift(start: float, end: float, days: int) -> float:
    """Annualised log growth in % per year from ``start`` to ``end`` over ``days`` business days."""
    return float(100.0 * np.log(end / start) * DAYS_PER_YEAR / days)


def blocks(values: np.ndarray, size: int = BLOCK_DAYS) -> np.ndarray:
    """Consecutive non-overlapping blocks of a (days,) array: (blocks, size); the last partial block is dropped."""
    n = len(values) // size
    return np.asarray(values[: n * size], dtype=np.float64).reshape(n, size)


# -- the facts ---------------------------------------------------------------------------------
def _corr_facts(changes: dict[str, np.ndarray], market: list[str]) -> dict[str, float]:
    facts = {"mean_abs_corr": mean_abs_corr({s: changes[s] for s in market})}
    for a, b in PAIRS:
        if a in changes and b in changes:
            facts[f"corr:{a}:{b}"] = pooled_corr(changes[a], changes[b])
    if "VIX" in changes:
        facts["vix_change_std"] = float(np.nanstd(changes["VIX"], ddof=1))
        facts["vix_lag1_autocorr"] = pooled_lag1_autocorr(changes["VIX"])
    return facts


def realism_facts(paths: np.ndarray, series: Sequence[str], origin: np.ndarray,
                  dates: Sequence | None = None) -> dict[str, float]:
    """The realism facts of sampled paths (see the module doc for each summary).

    Parameters
    ----------
    paths : (paths, horizon, series) levels, as ``Forecast.paths``.
    series : the names along the last axis.
    origin : (series,) levels on the origin day (the last row of ``Forecast.history``).
    dates : the paths' business days (``Forecast.dates``); with them, the release facts.

    Returns
    -------
    fact key -> value: ``mean_abs_corr`` (over the market series' pairs), ``corr:A:B``,
    ``vix_change_std``, ``vix_lag1_autocorr``, ``change_days:NAME`` (median path, per
    ``BLOCK_DAYS`` days), with ``dates`` also ``release_days:NAME`` (its calendar's release
    days, per ``BLOCK_DAYS``) and ``off_release_changes`` (days x paths on which a release
    series changes on a day without a release, all release series), ``spx_drift_median`` / ``spx_drift_mean`` (% per year),
    ``floor:NAME`` (% of paths below ``FLOOR``), ``nan_cells``. Facts of series that are
    not there are left out.
    """
    series = list(series)
    origin = np.asarray(origin, dtype=np.float64)
    ch = path_changes(paths, series, origin)
    changes = {s: ch[:, :, j] for j, s in enumerate(series)}  # each (paths, horizon)
    facts = _corr_facts(changes, market_series(series))
    horizon = paths.shape[1]
    names = release_series(series)
    for s in names:  # per BLOCK_DAYS days, so a shorter horizon keeps the same target
        facts[f"change_days:{s}"] = float(np.median(change_days(changes[s]))) * BLOCK_DAYS / horizon
    if dates is not None and names:
        assert len(dates) == horizon, f"{len(dates)} dates for a horizon of {horizon} days"
        on = calendar_release_days(names, dates)
        off = 0
        for s in names:
            facts[f"release_days:{s}"] = float(on[s].sum()) * BLOCK_DAYS / horizon
            off += int(change_days(changes[s][:, ~on[s]]).sum())
        facts["off_release_changes"] = float(off)
    if "SPX" in series:
        j = series.index("SPX")
        end = paths[:, -1, j]
        facts["spx_drift_median"] = annual_drift(origin[j], np.nanmedian(end), horizon)
        facts["spx_drift_mean"] = annual_drift(origin[j], np.nanmean(end), horizon)
    for s in FLOOR_SERIES:
        if s in series:
            low = np.nanmin(paths[:, :, series.index(s)], axis=1)
            facts[f"floor:{s}"] = float(100.0 * np.mean(low < FLOOR))
    if "VIX" in series:
        _vix_range(facts, paths[:, :, series.index("VIX")])
    facts["nan_cells"] = float(np.isnan(paths).sum())
    return facts


def _vix_range(facts: dict[str, float], levels: np.ndarray) -> None:
    """VIX's range facts of (paths or blocks, days) levels: median and 90th percentile of each one's
    high, and % of them above ``VIX_HIGH`` / below ``VIX_LOW`` (no targets: what a risk committee asks)."""
    hi, lo = np.nanmax(levels, axis=1), np.nanmin(levels, axis=1)
    facts["vix_max_median"] = float(np.median(hi))
    facts["vix_max_p90"] = float(np.quantile(hi, 0.9))
    facts["vix_above_high"] = float(100.0 * np.mean(hi > VIX_HIGH))
    facts["vix_below_low"] = float(100.0 * np.mean(lo < VIX_LOW))


def history_facts(panel: pd.DataFrame, start: str = HISTORY_START, block: int = BLOCK_DAYS) -> dict[str, float]:
    """The same facts on the real panel since ``start``: one long path, or ``block``-day blocks for per-path ones.

    Parameters
    ----------
    panel : (days, series) levels, business-day index (``PanelBuilder.build()``).

    Returns
    -------
    The keys of ``realism_facts`` (without ``nan_cells`` and ``off_release_changes``). Change
    days: the median over the blocks in which the series has no missing change; release days:
    the median over all blocks of the publication calendar's release days; drift: 252 x the mean daily SPX log
    return (% per year); floors: % of blocks whose minimum is below ``FLOOR``.
    """
    panel = panel.loc[panel.index >= pd.Timestamp(start)]
    series = list(panel.columns)
    ch = history_changes(panel)
    changes = {s: ch[s].to_numpy()[None, 1:] for s in series}  # each (1, days - 1)
    facts = _corr_facts(changes, market_series(series))
    names = release_series(series)
    on = calendar_release_days(names, panel.index[1:]) if names else {}
    for s in names:
        b = blocks(changes[s][0], block)
        b = b[np.isfinite(b).all(axis=1)]
        facts[f"change_days:{s}"] = float(np.median(change_days(b))) if len(b) else float("nan")
        r = blocks(on[s].astype(np.float64), block)
        facts[f"release_days:{s}"] = float(np.median(r.sum(axis=1))) if len(r) else float("nan")
    if "SPX" in series:
        facts["spx_drift_median"] = facts["spx_drift_mean"] = float(DAYS_PER_YEAR * np.nanmean(changes["SPX"]))
    for s in FLOOR_SERIES:
        if s in series:
            b = blocks(panel[s].to_numpy(), block)
            facts[f"floor:{s}"] = float(100.0 * np.mean(np.nanmin(b, axis=1) < FLOOR)) if len(b) else float("nan")
    if "VIX" in series:
        b = blocks(panel["VIX"].to_numpy(), block)
        b = b[np.isfinite(b).all(axis=1)]
        if len(b):
            _vix_range(facts, b)
    return facts


def analogue_facts(panel: pd.DataFrame, origin, start: str = HISTORY_START, block: int = BLOCK_DAYS
                   ) -> dict[str, float]:
    """History from the origin's state: VIX change std and UST2Y x UST10Y correlation over the analogue blocks.

    A block is the ``block`` days after a start day since ``start``; the analogue blocks of a fact
    start on the days whose level (VIX; UST2Y) is near the origin's (``ANALOGUE_VIX`` relative,
    ``ANALOGUE_UST2Y`` in points). Changes are pooled over the blocks (overlapping blocks count
    each time, as each start day is one "path"). Keys: ``vix_change_std``, ``corr:UST2Y:UST10Y``
    and ``blocks:`` each, the number of blocks (a NaN fact where the panel lacks the series).
    """
    origin = pd.Timestamp(origin)
    panel = panel.loc[panel.index >= pd.Timestamp(start)]
    ch = history_changes(panel)
    out: dict[str, float] = {}

    def starts(name: str, near: Callable[[np.ndarray, float], np.ndarray]) -> np.ndarray:
        levels = panel[name].to_numpy(dtype=np.float64)
        at = panel[name].loc[:origin].dropna()
        if at.empty:
            return np.array([], dtype=int)
        ok = near(levels, float(at.iloc[-1]))
        ok[len(levels) - block:] = False      # a whole block after the start day
        return np.flatnonzero(ok)

    def pooled(idx: np.ndarray, cols: list[str]) -> np.ndarray:
        x = ch[cols].to_numpy(dtype=np.float64)
        return np.concatenate([x[i + 1:i + 1 + block] for i in idx]) if len(idx) else np.empty((0, len(cols)))

    if "VIX" in panel:
        idx = starts("VIX", lambda x, v: np.abs(x - v) <= ANALOGUE_VIX * v)
        x = pooled(idx, ["VIX"])[:, 0]
        out["vix_change_std"] = float(np.nanstd(x)) if np.isfinite(x).sum() > 1 else float("nan")
        out["blocks:vix_change_std"] = float(len(idx))
    if "UST2Y" in panel and "UST10Y" in panel:
        idx = starts("UST2Y", lambda x, v: np.abs(x - v) <= ANALOGUE_UST2Y)
        x = pooled(idx, ["UST2Y", "UST10Y"])
        x = x[np.isfinite(x).all(axis=1)]
        out["corr:UST2Y:UST10Y"] = float(np.corrcoef(x.T)[0, 1]) if len(x) > 2 else float("nan")
        out["blocks:corr:UST2Y:UST10Y"] = float(len(idx))
    return out


def analogue_table(history: dict, analogues: dict[str, dict]) -> str:
    """The state-conditioned history beside all history: a row per fact, a column per origin."""
    rows = [("vix_change_std", "VIX daily change std", "VIX within 10 %"),
            ("corr:UST2Y:UST10Y", "corr UST2Y x UST10Y", "UST2Y within 0.25")]
    head = ["fact (history from the origin's state)", "all history", *(f"@ {o}" for o in analogues)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, rule in rows:
        if key not in history:
            continue
        cells = []
        for a in analogues.values():
            v = a.get(key, float("nan"))
            ratio = f" ({v / history[key]:.2f}x)" if key == "vix_change_std" and np.isfinite(v) else ""
            cells.append(f"{_fmt(v, 2)}{ratio}, {int(a.get('blocks:' + key, 0))} blocks")
        lines.append(f"| {label} ({rule}) | {_fmt(history[key], 2)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- targets and the table ---------------------------------------------------------------------
@dataclass(frozen=True)
class Fact:
    """One row of the table: a fact key, its label, its target and how a value passes it."""

    key: str
    label: str
    target: str
    passes: Callable[[float, float], bool] | None  # (value, history value) -> PASS; None: no target
    relative: bool = False  # show value / history too
    digits: int = 2


def facts_table(series: Sequence[str]) -> list[Fact]:
    """The rows for a run's series, in the issue's order (facts of absent series left out)."""
    s = set(series)
    rows = [Fact("mean_abs_corr", "mean |corr| of market changes", ">= 0.75 x history",
                 lambda v, h: v >= 0.75 * h, relative=True)]
    pair_targets = {("SPX", "XLK"): (">= 0.75", lambda v, h: v >= 0.75),
                    ("SPX", "VIX"): ("<= -0.55", lambda v, h: v <= -0.55),
                    ("UST2Y", "UST10Y"): (">= 0.65", lambda v, h: v >= 0.65),
                    ("SPX", "UST10Y"): ("(none)", None)}
    for (a, b), (text, ok) in pair_targets.items():
        if a in s and b in s:
            rows.append(Fact(f"corr:{a}:{b}", f"corr {a} x {b}", text, ok))
    if "VIX" in s:
        rows.append(Fact("vix_change_std", "VIX daily change std", "0.7-1.4 x history",
                         lambda v, h: 0.7 <= v / h <= 1.4, relative=True))
        rows.append(Fact("vix_lag1_autocorr", "VIX lag-1 autocorr of changes", ">= -0.2", lambda v, h: v >= -0.2))
    names = release_series(series)
    for name in names:
        n = releases_per_block(name)
        rows.append(Fact(f"release_days:{name}", f"{name} release days / {BLOCK_DAYS}", f"{n} +- 1",
                         lambda v, h, n=n: abs(v - n) <= 1, digits=1))
        rows.append(Fact(f"change_days:{name}", f"{name} change days / {BLOCK_DAYS}", "history +- 1",
                         lambda v, h: abs(v - h) <= 1, digits=1))
    if names:
        rows.append(Fact("off_release_changes", "changes off a release day (all paths)", "0",
                         lambda v, h: v == 0, digits=0))
    if "SPX" in s:
        for which in ("median", "mean"):
            rows.append(Fact(f"spx_drift_{which}", f"SPX drift, {which} path (%/yr)", "history +- 6",
                             lambda v, h: abs(v - h) <= 6, digits=1))
    for name in FLOOR_SERIES:
        if name in s:
            rows.append(Fact(f"floor:{name}", f"paths with {name} < {FLOOR} % (%)", "<= 2", lambda v, h: v <= 2, digits=0))
    if "VIX" in s:
        rows += [Fact("vix_max_median", "VIX 250-day high, median path", "(none)", None, digits=1),
                 Fact("vix_max_p90", "VIX 250-day high, 90th percentile", "(none)", None, digits=1),
                 Fact("vix_above_high", f"paths with VIX > {VIX_HIGH:g} (%)", "(none)", None, digits=0),
                 Fact("vix_below_low", f"paths with VIX < {VIX_LOW:g} (%)", "(none)", None, digits=0)]
    rows.append(Fact("nan_cells", "NaN cells", "0", lambda v, h: v == 0, digits=0))
    return rows


def _fmt(value: float, digits: int) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def verdict(fact: Fact, value: float | None, history: float | None) -> str:
    """PASS, FAIL, or '' (no target, or no value)."""
    if fact.passes is None or value is None or not np.isfinite(value):
        return ""
    return "PASS" if fact.passes(value, np.nan if history is None else history) else "FAIL"


def cell(fact: Fact, value: float | None, history: float | None) -> str:
    """A table cell: the value, its ratio to history for a relative target, and the verdict."""
    if value is None:
        return "–"
    text = _fmt(value, fact.digits)
    if fact.relative and history and np.isfinite(value):
        text += f" ({value / history:.2f}x)"
    v = verdict(fact, value, history)
    return f"{text} {v}".strip()


def records(rows: list[Fact], history: dict, results: dict[str, dict]) -> list[dict]:
    """Long-format rows (fact, column, value, history, target, verdict) for the CSV."""
    out = []
    for fact in rows:
        for column, facts in results.items():
            value = facts.get(fact.key)
            out.append({"fact": fact.label, "key": fact.key, "column": column, "value": value,
                        "history": history.get(fact.key), "target": fact.target,
                        "verdict": verdict(fact, value, history.get(fact.key))})
    return out


def markdown(rows: list[Fact], history: dict, results: dict[str, dict]) -> str:
    """The table: fact | history | target | one column per run and origin."""
    head = ["fact", "history", "target", *results]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for fact in rows:
        h = history.get(fact.key)
        cells = [fact.label, "–" if h is None else _fmt(h, fact.digits), fact.target,
                 *(cell(fact, r.get(fact.key), h) for r in results.values())]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")  # "|corr|" inside a cell
    return "\n".join(lines)


def seed_summary(rows: list[Fact], history: dict, by_seed: dict[int, dict[str, dict]]) -> str:
    """Cells missed per column (run) and seed, then every cell that misses at some seed: at how many, with its values.

    ``by_seed[seed]``: the ``results`` of one seed (``"column @ origin"`` -> facts), the same keys at every seed.
    """
    seeds = list(by_seed)
    keys = list(by_seed[seeds[0]])
    columns = list(dict.fromkeys(k.rsplit(" @ ", 1)[0] for k in keys))
    lines = ["| column | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|" + "---|" * (1 + len(seeds))]
    fails = {s: {(f.key, k): verdict(f, by_seed[s][k].get(f.key), history.get(f.key)) == "FAIL"
                 for f in rows for k in keys} for s in seeds}
    for col in columns:
        counts = [sum(v for (_, k), v in fails[s].items() if k.rsplit(" @ ", 1)[0] == col) for s in seeds]
        lines.append(f"| {col} | " + " | ".join(str(c) for c in counts) + " |")
    lines += ["", "| cell | seeds missed | values |", "|---|---|---|"]
    for f in rows:
        for k in keys:
            n = sum(fails[s][(f.key, k)] for s in seeds)
            if n:
                values = ", ".join(cell(replace(f, passes=None), by_seed[s][k].get(f.key),
                                        history.get(f.key)) for s in seeds)   # value (and x history), no verdict
                label = f.label.replace("|", "\\|")   # "|corr|" inside a cell, as in markdown()
                lines.append(f"| {label} @ {k} | {n} of {len(seeds)} | {values} |")
    return "\n".join(lines)


# -- the measurement ---------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="Trained run folder (repeat for several).")
    parser.add_argument("--pool", action="append", default=[],
                        help="Comma-separated runs of one recipe sampled as one pool (a column; repeatable).")
    parser.add_argument("--run-without-drift", action="append", default=[],
                        help="A run sampled without its drift tilts (drift.json): a column of its own (repeatable).")
    parser.add_argument("--data", default=None, help="Data spec for history and prompts (default: each run's own).")
    parser.add_argument("--origins", default=",".join(DEFAULT_ORIGINS), help="Comma-separated forecast origins.")
    parser.add_argument("--paths", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", default=None, help="Comma-separated sampling seeds (instead of --seed): the table "
                        "is the first seed's; a summary counts the cells each seed misses.")
    parser.add_argument("--temperature", type=float, default=None,
                        help="Sampling temperature (default: each run's calibrated one, else 1).")
    parser.add_argument("--out", type=Path, default=None, help="Also write the table: .csv (long format) or .md.")
    args = parser.parse_args()
    origins = [o.strip() for o in args.origins.split(",") if o.strip()]
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else [args.seed]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 0,1,2,3")
    if not seeds or len(set(seeds)) != len(seeds):
        parser.error(f"--seeds {args.seeds!r}: give one or more different seeds")

    by_seed: dict[int, dict[str, dict]] = {s: {} for s in seeds}
    history: dict | None = None
    rows: list[Fact] = []
    t_all = time.perf_counter()
    if not args.run and not args.pool and not args.run_without_drift:
        parser.error("give at least one --run, --pool or --run-without-drift")
    columns = [[r] for r in args.run] + [[r.strip() for r in p.split(",") if r.strip()] for p in args.pool]
    own = len(columns)  # columns from here on are sampled without their drift tilts
    columns += [[r] for r in args.run_without_drift]
    for r, members in enumerate(columns):
        drift = r < own
        run = members[0]
        pipe = ForecastPipeline.from_run(run)
        if len(members) > 1:
            pipe = PooledPipeline([pipe, *(ForecastPipeline.from_run(m) for m in members[1:])])
        builder = pipe.panel_builder(args.data)
        if history is None:  # the first run's series and data define the history column
            real = builder.build()
            history = history_facts(real)
            rows = facts_table(pipe.series)
            analogues = {o: analogue_facts(real, o) for o in origins}
        trained = PanelRun(run).trained_until
        label = "+".join(Path(m).name for m in members) + ("" if drift else " (no drift)")
        name = label if len(columns) == 1 else f"{r + 1}:{label}"
        temp = args.temperature if args.temperature is not None else (
            pipe.calibration.temperature if pipe.calibration is not None else 1.0)
        print(f"{'pool ' + label if len(members) > 1 else 'run ' + str(run)}: {len(pipe.series)} series, trained on data to "
              f"{trained.date() if trained is not None else '?'}; temperature {temp:g}"
              + (" (calibrated)" if args.temperature is None and pipe.calibration is not None else "")
              + ("; drift tilts of " + ", ".join(sorted(pipe.drift.series)) if drift and getattr(pipe, "drift", None)
                 else ""))
        for origin in origins:
            for seed in seeds:
                t0 = time.perf_counter()
                fc = pipe.predict(builder, as_of=origin, n_paths=args.paths, horizon=args.horizon, seed=seed,
                                  temperature=args.temperature, drift=drift)
                wall = time.perf_counter() - t0
                origin_levels = fc.history[fc.series].iloc[-1].to_numpy(dtype=np.float64)
                by_seed[seed][f"{name} @ {fc.as_of.date()}"] = realism_facts(fc.paths, fc.series, origin_levels,
                                                                             fc.dates)
            after = trained is not None and fc.as_of > trained
            print(f"  origin {fc.as_of.date()}: {args.paths} paths x {args.horizon} days sampled in {wall:.0f} s"
                  + (f" (each of {len(seeds)} seeds)" if len(seeds) > 1 else "")
                  + ("; after the training data (panel as of the origin: no look-ahead, out of the training period)"
                     if after else ""), flush=True)
    results = by_seed[seeds[0]]

    table = markdown(rows, history, results)
    print()
    print(table)
    print(f"\nhistory: the panel since {HISTORY_START} (correlations, VIX: all days; counts, floors: "
          f"{BLOCK_DAYS}-day blocks); paths: pooled over paths (correlations, VIX), median path (counts)")
    context = analogue_table(history, analogues)
    print()
    print(context)
    print(f"\nhistory from the origin's state: the {BLOCK_DAYS}-day blocks since {HISTORY_START} that start in it, "
          "pooled (no targets)")
    summary = seed_summary(rows, history, by_seed) if len(seeds) > 1 else None
    if summary is not None:
        print(f"\ncells missed, per sampling seed (the table above is seed {seeds[0]}'s):")
        print(summary)
    print(f"wall time {time.perf_counter() - t_all:.0f} s; load average {os.getloadavg()[0]:.1f}")
    if args.out is not None:
        if args.out.suffix == ".csv":
            recs = [{**rec, "seed": seed} for seed in seeds for rec in records(rows, history, by_seed[seed])]
            with args.out.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(recs[0]))
                writer.writeheader()
                writer.writerows(recs)
        else:
            args.out.write_text(table + "\n\n" + context + "\n"
                                + (f"\n{summary}\n" if summary is not None else ""))
        print(f"table written to {args.out}")


if __name__ == "__main__":
    main()
