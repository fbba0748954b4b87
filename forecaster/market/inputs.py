"""Inputs beyond the tokens: a float vector per business day that the model reads but never samples.

The same features come from two places, held equal by the tests:

- ``features_for_history(panel)``: vectorised over the whole point-in-time panel, ``(days, F)``;
- ``IncrementalFeatures``: built from the history at a forecast origin, then fed each sampled
  day's levels by the sampler's callback (``step(levels, date) -> (paths, F)``), O(1) per day
  and path (ring buffers and running sums, never a 250-day window recomputed). It takes level
  values and dates only; decoding token ids to levels is the caller's job.

The vector of day ``d`` uses only what is public at the close of ``d``: the panel's levels
through ``d`` (point-in-time by construction) and the calendar. Release counters come from
the catalog's publication rules (``data_sources.publication``) on the NYSE calendar
(``data_sources.calendar``), so they are known in advance for every future day and never
look at a future value. The model reads the vector of ``d`` with the row of ``d`` to predict
``d + 1``: "until next release = 1" says that tomorrow's row carries a release.

Feature order (``feature_names(columns)``), block by block, series in panel column order:

1. ``calendar.*`` (7): ``weekday_sin/cos`` (Monday..Friday on a 5-day circle),
   ``month_sin/cos``, ``bday_of_month`` (0-based NYSE business day / 21), ``bday_of_quarter``
   (/ 63), ``next_gap`` ((calendar days to the next business day - 1) / 3: 0 midweek,
   2/3 over a weekend).
2. ``release.S.since`` / ``release.S.until`` for each lower-frequency series S (W, M, Q):
   NYSE business days since its last release and until its next one, both 0 on a release
   day (the first business day on or after the rule's release date), scaled by 5 / 21 / 63
   business days for W / M / Q.
3. ``level.S.value`` / ``level.S.known`` for every series whose level means something on
   its own: not modeled as a log return, or mean-reverting (the catalog's ``stationary``:
   VIX, modeled as a log change), i.e. VIX, yields, spreads, YoY rates, unemployment:
   ``log`` of the level for a ``positive`` one (VIX), the level itself otherwise; 0 and
   ``known = 0`` when missing. The log levels of trending indices and stocks of money (SPX,
   the sector ETFs, WTI, GSCI, M2, GDP, the Fed balance sheet) are left out: each names its
   date almost uniquely, so a model reading them memorises the training days (measured:
   the day-level model's validation loss rose from step 100 while its training loss fell).
4. ``rollW.S.mean`` / ``rollW.S.vol`` / ``rollW.S.known`` for W in 21, 63, 250 and every
   series: the mean and the realised volatility (root mean square) of the modeled changes
   over the last W panel days, over the finite values among them; ``known`` when at least
   W / 2 are finite (0 otherwise, and the stats are 0). The modeled change is the series'
   modeling transform (``forecaster.market.transforms``); for a ``level`` series (VIX) it is
   the daily difference of the level.
5. ``yoy_dropout.S.value`` / ``.known`` for each YoY inflation series S: the month-on-month
   change (percent) of the index that leaves the 12-month window at the next release, i.e.
   with month P the latest released, ``100 * (I[P-11] / I[P-12] - 1)``. It needs the index's
   monthly observations (``yoy_index_levels(builder)``); without them it is unknown. On a path
   the index of a newly released month is implied by the sampled YoY rate,
   ``I[P] = I[P-12] * (1 + yoy / 100)``.

``InputNormalization`` standardises the values with a mean and std fitted on days up to a
training as-of date only, over known values only; flags pass through and unknown values stay
0. It round-trips through a JSON-able dict.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_sources import catalog
from data_sources.calendar import business_days_after
from forecaster.market.transforms import Diff, transforms_for

WINDOWS = (21, 63, 250)
CALENDAR_FEATURES = (
    "weekday_sin", "weekday_cos", "month_sin", "month_cos", "bday_of_month", "bday_of_quarter", "next_gap",
)  # fmt: skip
# Business days of a typical release cycle, the scale of the counters.
_CYCLE = {"W": 5.0, "M": 21.0, "Q": 63.0}
# Period dates of each frequency (publication's conventions); H.4.1, the only weekly series, is dated Wednesday.
_PERIODS = {"W": "W-WED", "M": "MS", "Q": "QS"}
_MARGIN = pd.Timedelta(days=800)  # releases and business days computed this far around the dates asked for


def _days(dates) -> np.ndarray:
    return pd.DatetimeIndex(dates).to_numpy().astype("datetime64[D]")


def yoy_index(name: str) -> str | None:
    """The index a YoY inflation series is computed from (``CPI_YOY`` -> ``CPI``), else None."""
    spec = catalog.get(name)
    return spec.derived_from[0] if spec.is_derived and name.endswith("_YOY") else None


def yoy_index_levels(builder) -> dict[str, pd.Series]:
    """``{yoy series: its index's monthly observations}`` from a ``PanelBuilder`` (all vintages' releases).

    Passing every observation is safe: the features use only those released by each day.
    """
    out = {}
    for name in builder.series:
        index = yoy_index(name)
        if index is not None and index in builder.raw:
            out[name] = builder.observations(index)
    return out


# -- the layout ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputLayout:
    """Which features a panel's columns give, and in which order (see the module doc)."""

    columns: tuple[str, ...]

    @property
    def low_frequency(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if catalog.get(c).frequency != "D")

    @property
    def level_columns(self) -> tuple[str, ...]:
        """The columns whose level is an input (not the log-return ones: see the module doc)."""
        return tuple(c for c, t in zip(self.columns, transforms_for(self.columns))
                     if t.name != "log_return" or catalog.get(c).stationary)

    @property
    def yoy(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if yoy_index(c) is not None)

    @property
    def names(self) -> list[str]:
        names = [f"calendar.{n}" for n in CALENDAR_FEATURES]
        names += [f"release.{s}.{k}" for s in self.low_frequency for k in ("since", "until")]
        names += [f"level.{s}.{k}" for s in self.level_columns for k in ("value", "known")]
        names += [f"roll{w}.{s}.{k}" for w in WINDOWS for s in self.columns for k in ("mean", "vol", "known")]
        names += [f"yoy_dropout.{s}.{k}" for s in self.yoy for k in ("value", "known")]
        return names


def feature_names(columns: Sequence[str]) -> list[str]:
    """The names of the F features of a panel with these columns, in vector order."""
    return InputLayout(tuple(columns)).names


def flag_index(names: Sequence[str]) -> np.ndarray:
    """For each feature, the position of its 0/1 ``known`` flag (``g.s.known`` for ``g.s.x``), or -1. ``(F,)`` int."""
    where = {n: i for i, n in enumerate(names)}
    out = np.full(len(names), -1, dtype=np.int64)
    for i, n in enumerate(names):
        if not n.endswith(".known"):
            out[i] = where.get(n.rsplit(".", 1)[0] + ".known", -1)
    return out


# -- the calendar: a pure function of the date ------------------------------------------------------
class ReleaseClock:
    """NYSE business days over ``[start, end]`` (with a margin) and the release days of some series.

    ``features(dates)`` gives the calendar and release-counter blocks, ``(n, 7 + 2 * len(series))``.
    """

    def __init__(self, series: Sequence[str], start, end) -> None:
        lo, hi = pd.Timestamp(start) - _MARGIN, pd.Timestamp(end) + _MARGIN
        n = int(np.busday_count(_days([lo])[0], _days([hi])[0])) + 1
        self.bdays = _days(business_days_after(lo - pd.Timedelta(days=1), n))
        self.start, self.end = pd.Timestamp(start), pd.Timestamp(end)
        self.series = tuple(series)
        self.releases = {}  # series -> sorted ordinals (positions in bdays) of its release days
        for name in self.series:
            spec = catalog.get(name)
            periods = pd.date_range(lo - pd.Timedelta(days=200), hi, freq=_PERIODS[spec.frequency])
            release = _days(spec.release.release_dates(periods))
            self.releases[name] = np.unique(np.searchsorted(self.bdays, release, side="left"))

    def is_release(self, name: str, dates) -> np.ndarray:
        """``(n,)`` bool: whether a new value of ``name`` enters the panel on each of ``dates`` (business days)."""
        pos = np.searchsorted(self.bdays, _days(dates), side="left")
        return np.isin(pos, self.releases[name])

    def features(self, dates) -> np.ndarray:
        """Calendar and release-counter features of ``dates`` (datetime-like, ``(n,)``); ``(n, K)`` float64."""
        d = _days(dates)
        if len(d) and (d.min() < _days([self.start])[0] or d.max() > _days([self.end])[0]):
            raise ValueError(f"dates {d.min()} .. {d.max()} lie outside this clock's range "
                             f"{self.start.date()} .. {self.end.date()}; build it over a longer span")
        floor = np.searchsorted(self.bdays, d, side="right") - 1  # last business day <= d
        ceil = np.searchsorted(self.bdays, d, side="left")  # first business day >= d
        stamp = pd.DatetimeIndex(d)
        weekday = stamp.day_of_week.to_numpy()
        month = stamp.month.to_numpy() - 1
        month_start = np.searchsorted(self.bdays, _days(stamp.to_period("M").to_timestamp()), side="left")
        quarter_start = np.searchsorted(self.bdays, _days(stamp.to_period("Q").to_timestamp()), side="left")
        gap = (self.bdays[floor + 1] - d).astype(np.int64)
        cols = [
            np.sin(2 * np.pi * weekday / 5), np.cos(2 * np.pi * weekday / 5),
            np.sin(2 * np.pi * month / 12), np.cos(2 * np.pi * month / 12),
            np.maximum(floor - month_start, 0) / 21.0, np.maximum(floor - quarter_start, 0) / 63.0,
            (gap - 1) / 3.0,
        ]  # fmt: skip
        for name in self.series:
            r = self.releases[name]
            scale = _CYCLE[catalog.get(name).frequency]
            prev = r[np.searchsorted(r, floor, side="right") - 1]
            nxt = r[np.searchsorted(r, ceil, side="left")]
            cols += [(floor - prev) / scale, (nxt - ceil) / scale]
        return np.stack(cols, axis=1).astype(np.float64)


# -- levels and modeled changes -------------------------------------------------------------------
def _positive_mask(columns: Sequence[str]) -> np.ndarray:
    return np.array([t.positive_levels or catalog.get(c).positive for c, t in zip(columns, transforms_for(columns))])


def _level_index(layout: InputLayout) -> np.ndarray:
    return np.array([layout.columns.index(c) for c in layout.level_columns], dtype=np.int64)


def _level_block(levels: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """``(..., S)`` levels -> ``(..., 2 S)`` (value, known) pairs in series order."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(positive, np.log(np.where(levels > 0, levels, np.nan)), levels)
    known = np.isfinite(value)
    out = np.stack([np.where(known, value, 0.0), known.astype(np.float64)], axis=-1)
    return out.reshape(*levels.shape[:-1], -1)


def _changes(levels: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """Modeled changes of ``(T, S)`` levels (a ``level`` series: its difference); NaN where undefined."""
    out = np.empty_like(levels)
    for j, t in enumerate(transforms_for(columns)):
        out[:, j] = (t if t.models_changes else Diff()).forward(levels[:, j])
    return out


def _stats(s1: np.ndarray, s2: np.ndarray, n: np.ndarray, nz: np.ndarray, window: int) -> np.ndarray:
    """Running sums of one window (values, squares, finite count, nonzero count) -> ``(..., S, 3)`` (mean, vol, known).

    A window without a nonzero change (a monthly series between releases) has mean and vol exactly 0,
    whatever rounding the running sums kept.
    """
    ok = n >= max(2, window // 2)
    m = np.where(ok, n, 1)
    moved = ok & (nz > 0.5)
    mean = np.where(moved, s1 / m, 0.0)
    vol = np.where(moved, np.sqrt(np.maximum(s2 / m, 0.0)), 0.0)
    return np.stack([mean, vol, ok.astype(np.float64)], axis=-1)


def _rolling_history(changes: np.ndarray) -> np.ndarray:
    """``(T, S)`` changes -> ``(T, 3 * 3 S)`` rolling blocks, window by window (cumulative sums)."""
    valid = np.isfinite(changes)
    c = np.where(valid, changes, 0.0)
    zero = np.zeros((1, c.shape[1]))
    sums = (c, c * c, valid.astype(np.float64), (c != 0).astype(np.float64))
    cum = [np.concatenate([zero, np.cumsum(a, axis=0)]) for a in sums]
    t = np.arange(1, len(c) + 1)
    blocks = []
    for w in WINDOWS:
        lo = np.maximum(t - w, 0)
        blocks.append(_stats(*(a[t] - a[lo] for a in cum), w).reshape(len(c), -1))
    return np.concatenate(blocks, axis=1)


# -- the YoY drop-out ------------------------------------------------------------------------------
def _index_table(obs: pd.Series, rule) -> tuple[int, np.ndarray, np.ndarray]:
    """Monthly index observations as arrays by month ordinal: (first ordinal, values, release days)."""
    months = obs.index.to_period("M")
    base = int(months.min().ordinal) - 12
    size = int(months.max().ordinal) - base + 1
    values = np.full(size, np.nan)
    release = np.full(size, np.datetime64("NaT"), dtype="datetime64[D]")
    pos = months.asi8 - base
    values[pos] = obs.to_numpy(dtype=np.float64)
    release[pos] = _days(rule.release_dates(obs.index))
    return base, values, release


def _latest_period(release: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """For each date, the position of the newest month released by then (-1: none)."""
    have = ~np.isnat(release)
    pos = np.flatnonzero(have)
    order = np.argsort(release[have], kind="stable")
    newest = np.maximum.accumulate(pos[order])
    k = np.searchsorted(release[have][order], dates, side="right") - 1
    return np.where(k >= 0, newest[np.maximum(k, 0)], -1)


def _dropout(i11: np.ndarray, i12: np.ndarray) -> np.ndarray:
    """(value, known) of the drop-out change from the index 11 and 12 months back; ``(..., 2)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 * (i11 / i12 - 1.0)
    known = np.isfinite(value)
    return np.stack([np.where(known, value, 0.0), known.astype(np.float64)], axis=-1)


def _dropout_history(dates: np.ndarray, name: str, obs: pd.Series | None) -> np.ndarray:
    if obs is None or obs.empty:
        return np.zeros((len(dates), 2))
    _, values, release = _index_table(obs.astype(np.float64), catalog.get(name).release)
    p = _latest_period(release, dates)

    def known_at(k):  # index value of month position k as known on each date
        k = np.clip(k, 0, len(values) - 1)
        return np.where((p >= 12) & (release[k] <= dates), values[k], np.nan)

    return _dropout(known_at(p - 11), known_at(p - 12))


def features_for_history(panel: pd.DataFrame, index_levels: Mapping[str, pd.Series] | None = None) -> np.ndarray:
    """The input vector of every panel day, vectorised.

    Parameters
    ----------
    panel : the point-in-time panel (business days x catalog series, levels).
    index_levels : ``{yoy series: monthly index observations}`` (``yoy_index_levels(builder)``)
        for the drop-out features; without it they are unknown (0, flag 0).

    Returns
    -------
    (days, F) float64, finite, in ``feature_names(panel.columns)`` order.
    """
    layout = InputLayout(tuple(panel.columns))
    dates = _days(panel.index)
    levels = panel.to_numpy(dtype=np.float64)
    clock = ReleaseClock(layout.low_frequency, panel.index[0], panel.index[-1])
    blocks = [
        clock.features(dates),
        _level_block(levels[:, _level_index(layout)], _positive_mask(layout.level_columns)),
        _rolling_history(_changes(levels, layout.columns)),
    ]
    blocks += [_dropout_history(dates, s, (index_levels or {}).get(s)) for s in layout.yoy]
    out = np.concatenate(blocks, axis=1)
    assert out.shape[1] == len(layout.names), f"{out.shape[1]} features, {len(layout.names)} names"
    assert np.isfinite(out).all(), "a feature is not finite"
    return out


# -- the same, one day at a time ------------------------------------------------------------------
def _release_day(name: str, month: pd.Period) -> np.datetime64:
    """The rule's release date of ``name`` for ``month``."""
    return _days(catalog.get(name).release.release_dates(pd.DatetimeIndex([month.to_timestamp()])))[0]


def _yoy_state(name: str, obs: pd.Series | None, origin: np.datetime64, n_paths: int) -> dict | None:
    """The drop-out state of one YoY series at the origin: latest month, next release day, index ring (P, 13)."""
    if obs is None or obs.empty:
        return None
    base, values, release = _index_table(obs.astype(np.float64), catalog.get(name).release)
    p = int(_latest_period(release, np.array([origin]))[0])
    if p < 0:
        return None
    m = np.arange(p - 12, p + 1)  # months P-12 .. P; base is 12 months before the first observation
    hist = np.where(release[m] <= origin, values[m], np.nan)
    period = pd.Period(ordinal=base + p, freq="M")
    return {"period": period, "next": _release_day(name, period + 1), "ring": np.tile(hist, (n_paths, 1))}


class IncrementalFeatures:
    """The input vector of each sampled day, from the state at the origin; vectorised over paths.

    Build it with ``from_history``; ``last`` is the origin day's vector, and ``step(levels, date)``
    after each sampled day gives that day's vector. State per path: the previous level and
    last positive level (log returns), a ring of the last 250 modeled changes with running
    sums for each window, and per YoY series the last 13 monthly index levels.
    """

    def __init__(self, columns, clock, last_date, prev, last_pos, ring, ring_ok, sums, yoy) -> None:
        """The state's parts as ``from_history`` builds them (use that)."""
        self.layout = InputLayout(tuple(columns))
        self.clock = clock
        self.last_date = np.datetime64(last_date, "D")
        self.prev, self.last_pos = prev, last_pos  # (P, S)
        self.ring, self.ring_ok, self.pos = ring, ring_ok, 0  # (P, S, 250); pos: the next slot to write
        self.sums = sums  # window -> [sum, sum of squares, finite count, nonzero count], each (P, S)
        # series -> None or {"period": latest month P, "next": release day of P+1, "ring": index P-12..P, (P, 13)}
        self.yoy = yoy
        self.last: np.ndarray = np.empty((prev.shape[0], 0))  # (P, F): the latest day's vector
        transforms = transforms_for(columns)
        self._log = np.array([t.models_changes and t.positive_levels for t in transforms])
        self._level_index = _level_index(self.layout)
        self._positive = _positive_mask(self.layout.level_columns)
        self._yoy_col = {s: list(columns).index(s) for s in yoy}
        self._yoy_order = self.layout.yoy

    @property
    def names(self) -> list[str]:
        return self.layout.names

    @classmethod
    def from_history(cls, panel: pd.DataFrame, index_levels: Mapping[str, pd.Series] | None = None,
                     n_paths: int = 1, origin=None, horizon_days: int = 1000) -> "IncrementalFeatures":
        """The state at ``origin`` (default: the panel's last day), copied to ``n_paths`` paths.

        Only panel rows up to ``origin`` and index months released by it are read.
        ``horizon_days``: how many business days after the origin ``step`` may be called for.
        """
        if origin is not None:
            panel = panel.loc[: pd.Timestamp(origin)]
        assert len(panel), "no panel rows up to the origin"
        columns = list(panel.columns)
        layout = InputLayout(tuple(columns))
        origin = panel.index[-1]
        window = max(WINDOWS)
        tail = panel.iloc[-(window + 1):]
        levels = tail.to_numpy(dtype=np.float64)
        changes = _changes(levels, columns)[1:] if len(tail) > window else _changes(levels, columns)
        changes = np.concatenate([np.full((window - len(changes), len(columns)), np.nan), changes])
        ok = np.isfinite(changes).T  # (S, 250), oldest first
        ring = np.where(ok, changes.T, 0.0)
        sums = {w: [ring[:, -w:].sum(axis=1), (ring[:, -w:] ** 2).sum(axis=1), ok[:, -w:].sum(axis=1).astype(float),
                    (ring[:, -w:] != 0).sum(axis=1).astype(float)] for w in WINDOWS}
        last_pos = panel.where(panel > 0).ffill().iloc[-1].to_numpy(dtype=np.float64)
        end = business_days_after(origin, horizon_days)[-1]
        clock = ReleaseClock(layout.low_frequency, origin, end)
        yoy = {s: _yoy_state(s, (index_levels or {}).get(s), _days([origin])[0], n_paths) for s in layout.yoy}
        state = cls(columns, clock, origin, np.tile(levels[-1], (n_paths, 1)), np.tile(last_pos, (n_paths, 1)),
                    np.tile(ring, (n_paths, 1, 1)), np.tile(ok, (n_paths, 1, 1)),
                    {w: [np.tile(a, (n_paths, 1)) for a in v] for w, v in sums.items()}, yoy)
        state.last = state._assemble(_days([origin]), state.prev)
        return state

    def _assemble(self, day: np.ndarray, levels: np.ndarray) -> np.ndarray:
        n = levels.shape[0]
        blocks = [np.repeat(self.clock.features(day), n, axis=0),
                  _level_block(levels[:, self._level_index], self._positive)]
        for w in WINDOWS:
            blocks.append(_stats(*self.sums[w], w).reshape(n, -1))
        for s in self._yoy_order:
            st = self.yoy[s]
            blocks.append(np.zeros((n, 2)) if st is None else _dropout(st["ring"][:, 1], st["ring"][:, 0]))
        return np.concatenate(blocks, axis=1)

    def reorder(self, idx: np.ndarray) -> None:
        """Keep paths ``idx`` (resampled paths, repeats allowed): every per-path array of the state."""
        self.prev, self.last_pos, self.last = self.prev[idx], self.last_pos[idx], self.last[idx]
        self.ring, self.ring_ok = self.ring[idx], self.ring_ok[idx]
        self.sums = {w: [a[idx] for a in v] for w, v in self.sums.items()}
        for st in self.yoy.values():
            if st is not None:
                st["ring"] = st["ring"][idx]

    def step(self, levels: np.ndarray, date) -> np.ndarray:
        """Feed the levels of the day just sampled; returns its vector.

        Parameters
        ----------
        levels : (paths, series) levels in the panel's units and column order (NaN: missing).
        date : that day (after the previous one).

        Returns
        -------
        (paths, F) float64, finite.
        """
        x = np.array(levels, dtype=np.float64)  # a copy: the state keeps it
        if x.shape != self.prev.shape:
            raise ValueError(f"levels must be (paths, series) = {self.prev.shape}, got {x.shape}")
        day = _days([date])
        if day[0] <= self.last_date:
            raise ValueError(f"step dates must increase: {day[0]} after {self.last_date}")
        # the modeled change, as Transform.forward computes it (log returns skip a non-positive print)
        with np.errstate(divide="ignore", invalid="ignore"):
            prev_pos = np.where(self.prev > 0, self.prev, np.where(self.prev <= 0, self.last_pos, np.nan))
            change = np.where(self._log, 100.0 * np.log(np.where(x > 0, x, np.nan) / prev_pos), x - self.prev)
        self.last_pos = np.where(x > 0, x, self.last_pos)
        self.prev = x
        ok = np.isfinite(change)
        c = np.where(ok, change, 0.0)
        size = self.ring.shape[2]
        for w in WINDOWS:
            old = (self.pos - w) % size
            s1, s2, n, nz = self.sums[w]
            gone = self.ring[:, :, old]
            s1 += c - gone
            s2 += c * c - gone * gone
            n += ok.astype(float) - self.ring_ok[:, :, old]
            nz += (c != 0).astype(float) - (gone != 0)
        self.ring[:, :, self.pos] = c
        self.ring_ok[:, :, self.pos] = ok
        self.pos = (self.pos + 1) % size
        for s, st in self.yoy.items():
            if st is None or day[0] < st["next"]:
                continue
            while day[0] >= st["next"]:  # a month released today (more than one only after a delayed release)
                st["ring"] = np.concatenate([st["ring"][:, 1:], np.full((x.shape[0], 1), np.nan)], axis=1)
                st["period"] += 1
                st["next"] = _release_day(s, st["period"] + 1)
            st["ring"][:, -1] = st["ring"][:, 0] * (1.0 + x[:, self._yoy_col[s]] / 100.0)
        self.last_date = day[0]
        self.last = self._assemble(day, x)
        return self.last


# -- normalisation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputNormalization:
    """Per-feature mean and std fitted on training days; flags pass through, unknown values stay 0.

    ``names``, ``mean``, ``std`` : per feature (F,); ``fitted_through`` : the last training day.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    fitted_through: str

    @classmethod
    def fit(cls, features: np.ndarray, dates, names: Sequence[str], through) -> "InputNormalization":
        """Fit on the rows of ``features`` (days, F) whose date is on or before ``through``, known values only."""
        through = pd.Timestamp(through)
        rows = np.asarray(pd.DatetimeIndex(dates) <= through)
        if not rows.any():
            raise ValueError(f"no training days on or before {through.date()}")
        x = features[rows]
        flags = flag_index(names)
        mean, std = np.zeros(len(names)), np.ones(len(names))
        for i, name in enumerate(names):
            if name.endswith(".known"):
                continue
            v = x[:, i] if flags[i] < 0 else x[x[:, flags[i]] > 0.5, i]
            if len(v):
                mean[i] = v.mean()
                std[i] = v.std() if v.std() > 1e-9 else 1.0
        return cls(tuple(names), mean, std, str(through.date()))

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Normalised ``(..., F)`` features (same shape)."""
        assert features.shape[-1] == len(self.names), (
            f"{features.shape[-1]} features, the normalisation has {len(self.names)}")
        out = (features - self.mean) / self.std
        flags = flag_index(self.names)
        has = flags >= 0
        out[..., has] = np.where(features[..., flags[has]] > 0.5, out[..., has], 0.0)
        return out

    def to_dict(self) -> dict:
        return {"names": list(self.names), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "fitted_through": self.fitted_through}

    @classmethod
    def from_dict(cls, d: dict) -> "InputNormalization":
        keys = {"names", "mean", "std", "fitted_through"}
        if set(d) != keys:
            raise ValueError(f"input normalisation keys must be {sorted(keys)}, got {sorted(d)}")
        names = tuple(d["names"])
        mean, std = np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64)
        if not (len(names) == len(mean) == len(std)):
            raise ValueError(f"input normalisation: {len(names)} names, {len(mean)} means, {len(std)} stds")
        return cls(names, mean, std, str(d["fitted_through"]))
