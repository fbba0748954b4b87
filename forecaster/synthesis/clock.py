"""The clock of sampled card histories: gap + time of day -> the next timestamp, in order by construction.

A row holds the gap since the card's previous transaction as a log bin ``[lo, hi)``
minutes (``DurationCodec``) and its time of day (``hour``, ``minute``). The row's
timestamp is the time at that time of day inside ``[prev + lo, prev + hi)`` closest
to ``prev + value`` (the bin's representative), so every timestamp is at least
the previous one: histories come out in time order without sorting.

During sampling the time of day is drawn *given* the gap: :class:`PathClock` is
both the ``step_mask`` hook (the hours, then minutes, that fall inside each path's
window; a card's first-row "no previous transaction" gap is never drawn) and the
``next_features`` callback of the ``DaySampler`` (it advances each path's clock by
the row just drawn and returns the row's input features).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from forecaster.core.tokenizer import TableTokenizer
from forecaster.synthesis.documents import row_features

DAY = 1440  # minutes


def next_times(prev: np.ndarray, lo: np.ndarray, hi: np.ndarray, value: np.ndarray,
               tod: np.ndarray) -> np.ndarray:
    """(N,) int64 minutes since 1970 of each path's next row.

    ``prev`` the previous row's minute, ``[lo, hi)`` the gap bin and ``value`` its
    representative (minutes), ``tod`` the row's minute of the day. The result is the
    first time at ``tod`` at or after ``prev + lo``, moved on by whole days towards
    ``prev + value`` while it stays before ``prev + hi``; never before ``prev``.
    """
    prev = np.asarray(prev, dtype=np.int64)
    base = prev + np.asarray(lo, dtype=np.int64)
    first = base + (np.asarray(tod, dtype=np.int64) - base) % DAY
    last_ok = prev + np.asarray(hi, dtype=np.int64) - 1
    n_more = np.maximum((last_ok - first) // DAY, 0)
    want = np.round((prev + np.asarray(value, dtype=np.float64) - first) / DAY).astype(np.int64)
    return first + DAY * np.clip(want, 0, n_more)


def window_minutes(prev: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, 1440) bool: the minutes of the day that some time in ``[prev + lo, prev + hi)`` has."""
    n = len(prev)
    start = (np.asarray(prev, dtype=np.int64) + np.asarray(lo, dtype=np.int64)) % DAY
    length = np.asarray(hi, dtype=np.int64) - np.asarray(lo, dtype=np.int64)
    offs = np.arange(DAY)
    out = np.zeros((n, DAY), dtype=bool)
    cols = (start[:, None] + offs[None, :]) % DAY
    out[np.arange(n)[:, None], cols] = offs[None, :] < length[:, None]
    return out


class PathClock:
    """Per-path time of sampled histories: the sampler's ``step_mask`` and ``next_features`` (module doc).

    Parameters
    ----------
    tok : the run's tokenizer (columns ``documents.ROW_COLUMNS``).
    base_mask : ``f(prefix) -> (N, V)`` bool, the row constraint without the clock.
    start : (N,) int64 minutes since 1970: the time each path's first sampled row follows.
    prompt_rows : rows of the prompt (the first ``next_features`` call sees ``prompt_rows + 1``).
    """

    def __init__(self, tok: TableTokenizer, base_mask: Callable[[torch.Tensor], torch.Tensor], start: np.ndarray,
                 prompt_rows: int) -> None:
        self.tok, self.base_mask = tok, base_mask
        self.now = np.asarray(start, dtype=np.int64).copy()       # (N,) the newest row's minute per path
        self.times: list[np.ndarray] = []                         # one (N,) per sampled row
        self.prompt_rows = prompt_rows
        self.gap_codec = tok.codec("gap")
        self.gap_slot = tok.column_slots("gap").start
        self.hour_slot = tok.column_slots("hour").start
        self.minute_slot = tok.column_slots("minute").start
        assert self.gap_slot < self.hour_slot < self.minute_slot, "the clock needs gap, hour, minute in this order"
        self.gap_off = tok.column_vocab("gap").start
        self.hour_ids = self._clock_ids("hour", 24)    # (24,) global id of each hour, -1: never seen
        self.minute_ids = self._clock_ids("minute", 60)
        self._window: np.ndarray | None = None          # (N, 1440) of the row being drawn

    def _clock_ids(self, column: str, n: int) -> np.ndarray:
        codec, off = self.tok.codec(column), self.tok.column_vocab(column).start
        ids = np.full(n, -1, dtype=np.int64)
        for i, v in enumerate(codec.categories):
            if 0 <= int(v) < n:
                ids[int(v)] = off + i
        return ids

    def gap_bounds(self, gap_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lo, hi, value)`` minutes of global gap ids (N,)."""
        local = np.asarray(gap_ids, dtype=np.int64) - self.gap_off
        lo, hi = self.gap_codec.bin_bounds(local)
        return lo, hi, self.gap_codec.values[np.clip(local, 0, self.gap_codec.n_bins - 1)]

    # -- step_mask -----------------------------------------------------------------------------
    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        """``(N, s)`` ids of the row so far -> ``(N, V)`` allowed ids (the ``step_mask`` hook)."""
        allowed = self.base_mask(prefix).clone()
        s = prefix.shape[1]
        if s == self.gap_slot and self.gap_codec.nullable:
            allowed[:, self.gap_off + self.gap_codec.missing_id] = False  # "first row" is the seed's only
        elif s == self.hour_slot:
            lo, hi, _ = self.gap_bounds(prefix[:, self.gap_slot].cpu().numpy())
            self._window = window_minutes(self.now, lo, hi)
            self._restrict(allowed, self._window.reshape(-1, 24, 60).any(axis=2), self.hour_ids)
        elif s == self.minute_slot:
            hours = self._hour_of(prefix[:, self.hour_slot].cpu().numpy())
            win = self._window.reshape(-1, 24, 60)[np.arange(len(hours)), hours]  # (N, 60)
            self._restrict(allowed, win, self.minute_ids)
        return allowed

    def _hour_of(self, ids: np.ndarray) -> np.ndarray:
        lookup = {int(g): h for h, g in enumerate(self.hour_ids) if g >= 0}
        return np.array([lookup[int(i)] for i in ids], dtype=np.int64)

    @staticmethod
    def _restrict(allowed: torch.Tensor, ok: np.ndarray, ids: np.ndarray) -> None:
        """Keep only the clock values ``ok`` (N, n) among ``ids`` (n,); a path with none left keeps all."""
        seen = ids >= 0
        keep = ok[:, seen]
        some = keep.any(axis=1) & allowed[:, ids[seen]].numpy().any(axis=1)
        cols = torch.from_numpy(ids[seen])
        sub = allowed[:, cols] & torch.from_numpy(keep | ~some[:, None])
        allowed[:, cols] = sub

    # -- next_features -----------------------------------------------------------------------
    def advance(self, row_ids: np.ndarray) -> np.ndarray:
        """(N,) int64 minutes of the rows ``row_ids`` (N, R) drawn after each path's newest row; the clock moves."""
        lo, hi, value = self.gap_bounds(row_ids[:, self.gap_slot])
        hours = self._hour_of(row_ids[:, self.hour_slot])
        minute_lookup = {int(g): m for m, g in enumerate(self.minute_ids) if g >= 0}
        minutes = np.array([minute_lookup[int(i)] for i in row_ids[:, self.minute_slot]], dtype=np.int64)
        t = next_times(self.now, lo, hi, value, hours * 60 + minutes)
        assert bool((t >= self.now).all()), "a sampled row is earlier than the row before it"
        gap = (t - self.now).astype(np.float64)
        self.now = t
        self.times.append(t)
        self._last_gap = gap
        return t

    def features(self, rows: torch.Tensor) -> torch.Tensor:
        """The ``next_features`` callback: ``rows (N, k, R)`` -> the newest row's input features ``(N, F)``."""
        assert rows.shape[1] == self.prompt_rows + len(self.times) + 1, "one call per sampled row"
        t = self.advance(rows[:, -1].cpu().numpy())
        return torch.from_numpy(row_features(t.astype("datetime64[m]"), self._last_gap))
