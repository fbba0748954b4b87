"""Durations (e.g. the time since the previous transaction) as one log-binned token.

A duration is a non-negative number of minutes. The bins are exact whole minutes
while a minute is still a large part of the value, then grow geometrically up to
the fitted maximum (with ``headroom``): minutes to months in ``bins`` ids, each
bin a fixed relative width. Bin ``k`` holds ``[edges[k], edges[k + 1])`` and
decodes to its representative (the bin's own minute when it is one minute wide,
else the geometric middle rounded to a minute). Zero is its own bin (the same
minute). Longer durations are clamped into the last bin and counted. With
``nullable`` a missing id follows the bins (e.g. "no previous transaction").

``bin_bounds(ids)`` gives each id's ``[lo, hi)`` in minutes, so a caller can make
other fields agree with the drawn bin (the synthesis mode derives the calendar
from it).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecaster.core.tokenizer.codec_base import ColumnCodec
from forecaster.core.tokenizer.errors import EncodeError, SpecError
from forecaster.core.tokenizer.spec import ColumnSpec

DEFAULT_BINS = 64
MIN_BINS = 4
MAX_BINS = 4096


def log_edges(bins: int, hi: float) -> np.ndarray:
    """``bins + 1`` increasing whole-minute edges from 0 to ``round(hi)`` (float64 minutes).

    ``[0, 1)`` is the zero bin; every further edge is the previous one times the ratio
    that would reach ``hi`` in the bins left, but at least one minute more: consecutive
    minutes at the low end, a fixed relative width above.
    """
    assert bins >= MIN_BINS and hi > bins, (bins, hi)
    edges = [0.0, 1.0]
    for left in range(bins - 1, 0, -1):
        e = edges[-1]
        edges.append(max(e + 1.0, float(np.round(e * (hi / e) ** (1.0 / left)))))
    return np.asarray(edges, dtype=np.float64)


class DurationCodec(ColumnCodec):
    """Non-negative durations in minutes -> one log-binned token (see the module doc)."""

    kind = "duration"

    def __init__(self, edges: list[float], nullable: bool, name: str = "") -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        assert self.edges.ndim == 1 and len(self.edges) >= MIN_BINS + 1 and self.edges[0] == 0.0, "bad edges"
        assert bool((np.diff(self.edges) > 0).all()), "edges must increase"
        self.nullable, self.name = bool(nullable), name
        self.n_bins = len(self.edges) - 1
        self.missing_id = self.n_bins if self.nullable else None
        lo, hi = self.edges[:-1], self.edges[1:]
        mid = np.round(np.sqrt(np.maximum(lo, 0.5) * hi))
        self.values = np.where(hi - lo <= 1.0, lo, np.clip(mid, lo, hi - 1.0))  # (bins,) decoded minutes
        # worst-case round-trip error of a whole-minute duration in range (minutes)
        self.error_bound = float(np.max(np.maximum(self.values - lo, hi - 1.0 - self.values)))
        self.relative_error = float(np.max((hi - 1.0 - lo) / np.maximum(hi, 1.0)))

    @classmethod
    def fit(cls, column: pd.Series, spec: ColumnSpec, name: str) -> "DurationCodec":
        x, missing = _minutes(column, name)
        nullable = bool(missing.any()) if spec.nullable is None else bool(spec.nullable)
        bins = DEFAULT_BINS if spec.bins is None else int(spec.bins)
        if not MIN_BINS <= bins <= MAX_BINS:
            raise SpecError(f"column {name!r}: duration bins must be from {MIN_BINS} to {MAX_BINS}, got {bins}")
        present = x[~missing]
        top = float(present.max()) if present.size else 0.0
        headroom = 0.1 if spec.headroom is None else float(spec.headroom)
        hi = max(top * (1.0 + headroom) + 1.0, 4.0 * bins, 1440.0)  # at least a day, and room for the bins
        return cls(log_edges(bins, hi).tolist(), nullable, name)

    def slot_sizes(self) -> list[int]:
        return [self.n_bins + int(self.nullable)]

    def bins_of(self, minutes: np.ndarray) -> tuple[np.ndarray, int]:
        """(rows,) bin index of each duration (clamped into the last bin) and how many were clamped."""
        k = np.searchsorted(self.edges, minutes, side="right") - 1
        over = k >= self.n_bins
        return np.clip(k, 0, self.n_bins - 1).astype(np.int64), int(over.sum())

    def encode(self, column, offset: int = 0) -> tuple[np.ndarray, int]:
        x, missing = _minutes(column, self.name)
        if missing.any() and not self.nullable:
            raise EncodeError(f"column {self.name!r}: {int(missing.sum())} missing duration(s) in a column fitted "
                              "without a missing token; refit with nullable=True")
        k, clamped = self.bins_of(np.where(missing, 0.0, x))
        if missing.any():
            k[missing] = self.missing_id
            clamped -= int((missing & (x >= self.edges[-1])).sum())
        return (k + offset)[:, None], clamped

    def decode(self, ids: np.ndarray) -> tuple[pd.Series, np.ndarray]:
        k = np.asarray(ids)[:, 0]
        missing = k == self.missing_id if self.nullable else np.zeros(len(k), bool)
        values = self.values[np.where(missing, 0, k)].astype(np.float64)
        values[missing] = np.nan
        return pd.Series(values, dtype=np.float64), np.zeros(len(k), bool)

    def bin_bounds(self, local_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` float64 minutes of each local id's bin: the durations ``lo <= d < hi`` it encodes.

        The missing id gets ``(nan, nan)``.
        """
        k = np.asarray(local_ids, dtype=np.int64)
        missing = k >= self.n_bins
        kk = np.where(missing, 0, k)
        lo, hi = self.edges[kk].copy(), self.edges[kk + 1].copy()
        lo[missing] = hi[missing] = np.nan
        return lo, hi

    def describe(self) -> str:
        return f"duration {self.n_bins} log bins to {self.edges[-1] / 1440:.0f} d"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "edges": [float(e) for e in self.edges], "nullable": self.nullable}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "") -> "DurationCodec":
        return cls(list(d["edges"]), d["nullable"], name)


def _minutes(column: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows,) float64 minutes (0 where missing) and the missing mask; timedeltas are converted."""
    s = pd.Series(column)
    if pd.api.types.is_timedelta64_dtype(s.dtype):
        missing = s.isna().to_numpy()
        x = (s.dt.total_seconds() / 60.0).to_numpy(dtype=np.float64, na_value=0.0)
    elif pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        missing = s.isna().to_numpy()
        x = s.to_numpy(dtype=np.float64, na_value=0.0)
    else:
        raise EncodeError(f"column {name!r}: a duration column holds minutes (numbers) or timedeltas, got {s.dtype}")
    bad = (~np.isfinite(x) | (x < 0)) & ~missing
    if bad.any():
        raise EncodeError(f"column {name!r}: {int(bad.sum())} duration(s) are negative or not finite "
                          f"(first {x[bad][0]}); durations are minutes >= 0")
    return np.where(missing, 0.0, x), missing
