"""Training windows: consecutive table rows cut on row boundaries, split by time.

A *segment* is a run of consecutive token rows ``(rows, row_len)`` with one
timestamp per row: the whole tokenized panel is one segment; in the credit-card
mode every user/card document is one. A window is ``context_rows`` consecutive
rows of one segment, flattened to ``context_rows * row_len`` tokens; it never
crosses a segment (or the train/validation split). Input and target are the
window shifted by one token, so the model learns the next row given the past.

The split is by time: every row at or after ``val_start`` is validation, every
row before it is training, and no window mixes the two. Which windows form a
training batch is a pure function of ``(seed, step)``, so a resumed run sees
exactly the batches an uninterrupted one would, and a global batch is the same
whatever the number of processes (each rank takes its slice).

The day-level model (:class:`~forecaster.core.daymodel.DayGPT`) reads whole rows:
:class:`RowWindowDataset` gives windows of ``context_rows + 1`` rows ``(B, T, R)``
(the last row is only a target) with the segment's per-row input features
``(B, T, F)`` cut from the same rows, so feature row ``t`` is the vector of the
day of row ``t`` (which the features' producer computes from data up to that day).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from foundation.errors import UserError


class WindowError(UserError):
    """Too little data for the requested windows or split."""


@dataclass
class Segment:
    """Consecutive token rows of one table (or one document) with their timestamps."""

    tokens: np.ndarray   # (rows, row_len) int64
    times: np.ndarray    # (rows,) datetime64[ns], non-decreasing
    features: np.ndarray | None = None  # (rows, F) float32 per-row inputs (day-level model), or None

    def __post_init__(self) -> None:
        assert self.tokens.ndim == 2, f"tokens must be (rows, row_len), got {self.tokens.shape}"
        assert len(self.times) == len(self.tokens), "one timestamp per row"
        if self.features is not None:
            assert self.features.ndim == 2 and len(self.features) == len(self.tokens), (
                f"features must be (rows, F) with one row per token row, got {self.features.shape}")

    def rows(self, lo: int, hi: int) -> "Segment":
        """Rows ``lo:hi`` (tokens, times and features together)."""
        return Segment(self.tokens[lo:hi], self.times[lo:hi],
                       None if self.features is None else self.features[lo:hi])


class WindowDataset:
    """All windows of ``context_rows`` rows inside a list of segments."""

    extra_rows = 0  # rows of a window beyond context_rows

    def __init__(self, segments: list[Segment], context_rows: int) -> None:
        assert context_rows >= 1
        n = context_rows + self.extra_rows
        self.segments = [s for s in segments if len(s.tokens) >= n]
        self.context_rows = context_rows
        self.window_rows = n
        self.row_len = segments[0].tokens.shape[1] if segments else 0
        starts = [(i, r) for i, s in enumerate(self.segments) for r in range(len(s.tokens) - n + 1)]
        self._starts = np.array(starts, dtype=np.int64).reshape(-1, 2)  # (n_windows, 2): segment, first row

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def n_rows(self) -> int:
        return sum(len(s.tokens) for s in self.segments)

    def time_range(self) -> tuple[str, str] | None:
        if not self.segments:
            return None
        lo = min(s.times[0] for s in self.segments)
        hi = max(s.times[-1] for s in self.segments)
        return str(pd.Timestamp(lo).date()), str(pd.Timestamp(hi).date())

    def window(self, i: int) -> np.ndarray:
        """Window ``i`` as ``(context_rows * row_len,)`` int64 tokens."""
        seg, r = self._starts[i]
        return self.segments[seg].tokens[r:r + self.context_rows].reshape(-1)

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets ``(len(indices), context_rows * row_len - 1)`` int64."""
        w = torch.from_numpy(np.stack([self.window(int(i)) for i in indices]))  # (B, W)
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    @property
    def targets_per_window(self) -> int:
        """Tokens a window's loss predicts (for tokens/s)."""
        return self.context_rows * self.row_len - 1

    def train_indices(self, step: int, batch_size: int, seed: int) -> np.ndarray:
        """The global batch of optimizer step ``step``: ``batch_size`` window indices drawn with replacement."""
        if len(self) == 0:
            raise WindowError("no training windows: the training period is shorter than one context")
        rng = np.random.default_rng([seed, step])
        return rng.integers(0, len(self), size=batch_size)

    def eval_indices(self, n: int) -> np.ndarray:
        """Up to ``n`` fixed windows spread evenly over the set (non-overlapping when there is room)."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.int64)
        n_disjoint = max(1, len(self) // self.context_rows)
        k = min(n, n_disjoint)
        return np.unique(np.linspace(0, len(self) - 1, k).round().astype(np.int64))


class RowWindowDataset(WindowDataset):
    """Windows of ``context_rows + 1`` whole rows with their features, for the day-level model.

    The model reads rows ``0 .. context_rows - 1`` (and their features) and predicts rows
    ``1 .. context_rows``; ``batch`` gives ``rows (B, T, R)`` int64 and ``features (B, T, F)``
    float32 with ``T = context_rows + 1`` (``F = 0`` when the segments carry none).
    """

    extra_rows = 1

    def __init__(self, segments: list[Segment], context_rows: int) -> None:
        super().__init__(segments, context_rows)
        widths = {0 if s.features is None else s.features.shape[1] for s in segments}
        assert len(widths) <= 1, f"segments disagree on the number of features: {sorted(widths)}"
        self.n_features = widths.pop() if widths else 0

    def window(self, i: int) -> np.ndarray:
        """Window ``i`` as ``(context_rows + 1, row_len)`` int64 tokens."""
        seg, r = self._starts[i]
        return self.segments[seg].tokens[r:r + self.window_rows]

    def window_features(self, i: int) -> np.ndarray:
        """The features of window ``i``'s rows, ``(context_rows + 1, F)`` float32."""
        seg, r = self._starts[i]
        f = self.segments[seg].features
        if f is None:
            return np.zeros((self.window_rows, 0), dtype=np.float32)
        return np.asarray(f[r:r + self.window_rows], dtype=np.float32)

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``rows (B, T, R)`` int64 and aligned ``features (B, T, F)`` float32, ``T = context_rows + 1``."""
        rows = torch.from_numpy(np.stack([self.window(int(i)) for i in indices]))
        feats = torch.from_numpy(np.stack([self.window_features(int(i)) for i in indices]))
        return rows, feats

    @property
    def targets_per_window(self) -> int:
        return self.context_rows * self.row_len


def split_by_time(segments: list[Segment], val_start) -> tuple[list[Segment], list[Segment]]:
    """Cut every segment at ``val_start``: rows before it train, rows at/after it validate."""
    cut = np.datetime64(pd.Timestamp(val_start).to_datetime64(), "ns")
    train, val = [], []
    for s in segments:
        k = int(np.searchsorted(s.times.astype("datetime64[ns]"), cut, side="left"))
        if k > 0:
            train.append(s.rows(0, k))
        if k < len(s.tokens):
            val.append(s.rows(k, len(s.tokens)))
    return train, val


def default_val_start(segments: list[Segment], val_fraction: float) -> pd.Timestamp:
    """The date after which the most recent ``val_fraction`` of all rows lie."""
    return val_start_of(np.concatenate([s.times for s in segments]), val_fraction)


def val_start_of(times: np.ndarray, val_fraction: float) -> pd.Timestamp:
    """The date after which the most recent ``val_fraction`` of ``times`` (one per row) lie.

    ``val_fraction`` 0: no validation, the day after the last row (every row trains).
    """
    times = np.sort(np.asarray(times).astype("datetime64[ns]"))
    if val_fraction == 0 and len(times):
        return pd.Timestamp(times[-1]).normalize() + pd.Timedelta(days=1)
    if len(times) < 2:
        raise WindowError("need at least two rows to split into training and validation")
    k = min(len(times) - 1, max(1, int(round(len(times) * (1.0 - val_fraction)))))
    return pd.Timestamp(times[k])


def make_datasets(segments: list[Segment], context_rows: int, val_fraction: float = 0.1,
                  val_start=None, rows: bool = False) -> tuple[WindowDataset, WindowDataset, pd.Timestamp]:
    """Training and validation windows split by time; returns ``(train, val, val_start)``.

    ``rows``: :class:`RowWindowDataset` windows of whole rows with features (the day-level
    model) instead of flat token windows. ``val_fraction`` 0 with no ``val_start``: every row
    trains and the validation set is empty (a refit).
    """
    if val_start is None:
        val_start = default_val_start(segments, val_fraction)
    val_start = pd.Timestamp(val_start)
    tr, va = split_by_time(segments, val_start)
    cls = RowWindowDataset if rows else WindowDataset
    train, val = cls(tr, context_rows), cls(va, context_rows)
    n = train.window_rows
    if len(train) == 0:
        raise WindowError(f"no training window of {n} rows before {val_start.date()}; "
                          "use more data, an earlier validation start or fewer --context-rows")
    if len(val) == 0 and val_fraction > 0:
        raise WindowError(f"no validation window of {n} rows from {val_start.date()} on; "
                          "use a larger validation fraction or fewer --context-rows")
    return train, val, val_start


def panel_segment(tokens: np.ndarray, index: pd.DatetimeIndex, features: np.ndarray | None = None) -> Segment:
    """The tokenized panel ``(rows, row_len)`` with its dates (and per-row ``features (rows, F)``) as one segment."""
    return Segment(np.asarray(tokens, dtype=np.int64), np.asarray(index.values, dtype="datetime64[ns]"),
                   None if features is None else np.asarray(features, dtype=np.float32))


def document_segments(tokens: np.ndarray, times: np.ndarray, keys: np.ndarray) -> list[Segment]:
    """Per-document segments (e.g. one per user/card) from a tokenized transaction table.

    ``tokens`` (rows, row_len), ``times`` (rows,) and ``keys`` (rows,) document ids;
    rows of a document keep their table order and are sorted by time within it.
    """
    times = np.asarray(times, dtype="datetime64[ns]")
    keys = np.asarray(keys)
    out = []
    for key in pd.unique(keys):
        sel = np.flatnonzero(keys == key)
        order = sel[np.argsort(times[sel], kind="stable")]
        out.append(Segment(np.asarray(tokens[order], dtype=np.int64), times[order]))
    return out
