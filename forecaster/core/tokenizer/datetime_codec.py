"""Datetime columns, as calendar parts or as one integer timestamp.

Parts mode (default): one token per part, most significant first, a prefix of
``year month day hour minute second`` (the credit-card table uses year..minute).
Values are first rounded to the finest part (so decoding is unbiased: the error
is at most half of that unit), then split. The year slot covers the fitted
years plus ``headroom`` of their span (at least one year) at each end; datetimes
beyond are clamped to the first/last representable instant and counted.
The missing id exists only in the first part's slot. A decoded day past the
month's end (30 February, which a sampler that knows only each slot's id range
can produce) is repaired to the month's last day; ``constrained_mask`` avoids it
when sampling.

Timestamp mode (``parts=("timestamp",)``): the count of ``unit`` since
1970-01-01 (rounded), written by an ``IntCodec``.

Time zones: an aware column is encoded in UTC and decoded back to its zone.
Error bounds are in seconds.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from forecaster.core.tokenizer.codec_base import ColumnCodec
from forecaster.core.tokenizer.discrete_codecs import IntCodec
from forecaster.core.tokenizer.errors import EncodeError, SpecError
from forecaster.core.tokenizer.spec import DATETIME_PARTS, ColumnSpec

_NS = {"year": None, "month": None, "day": 86_400 * 10**9, "hour": 3600 * 10**9, "minute": 60 * 10**9, "second": 10**9}
_UNIT_NS = {"D": 86_400 * 10**9, "h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9}
_FIXED = {"month": (1, 12), "day": (1, 31), "hour": (0, 23), "minute": (0, 59), "second": (0, 59)}


def as_ns(column: pd.Series, name: str, tz: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(rows,) int64 nanoseconds since the epoch (UTC for aware columns) and the missing mask."""
    s = pd.Series(column)
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        raise EncodeError(f"column {name!r}: datetime codec got dtype {s.dtype}; convert it with pd.to_datetime")
    aware = getattr(s.dt, "tz", None) is not None
    if aware != (tz is not None):
        raise EncodeError(f"column {name!r}: the tokenizer was fitted on {'tz-aware' if tz else 'naive'} datetimes, got {'aware' if aware else 'naive'} ones")
    if aware:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    missing = s.isna().to_numpy()
    ns = s.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.where(missing, 0, ns), missing


class DatetimeCodec(ColumnCodec):
    kind = "datetime"

    def __init__(self, parts: tuple[str, ...], year_lo: int, year_hi: int, nullable: bool, tz: str | None = None,
                 timestamp: IntCodec | None = None, unit: str = "m", name: str = "") -> None:
        self.parts, self.year_lo, self.year_hi = tuple(parts), int(year_lo), int(year_hi)
        self.nullable, self.tz, self.timestamp, self.unit, self.name = bool(nullable), tz, timestamp, unit, name
        if timestamp is not None:
            self.error_bound = _UNIT_NS[unit] / 2e9
            self.nullable = timestamp.nullable
        else:
            ranges = [(self.year_lo, self.year_hi) if p == "year" else _FIXED[p] for p in self.parts]
            self.part_lo = np.array([r[0] for r in ranges], dtype=np.int64)
            self.part_size = np.array([r[1] - r[0] + 1 for r in ranges], dtype=np.int64)
            # the missing id exists in the first part's slot only (see DigitLayout)
            self.sizes = self.part_size.copy()
            self.sizes[0] += int(self.nullable)
            self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
            finest = self.parts[-1]
            self.round_ns = _NS[finest] if finest in ("day", "hour", "minute", "second") else None
            self.error_bound = 0.0 if self.round_ns is None else self.round_ns / 2e9
            self.error_bound = self.error_bound if finest not in ("year", "month") else 366 * 86_400.0
            first = np.datetime64(f"{self.year_lo:04d}-01-01", "ns").astype(np.int64)
            last = np.datetime64(f"{self.year_hi + 1:04d}-01-01", "ns").astype(np.int64) - (self.round_ns or 1)
            self.ns_lo, self.ns_hi = int(first), int(last)

    @classmethod
    def fit(cls, column: pd.Series, spec: ColumnSpec, name: str) -> "DatetimeCodec":
        s = pd.Series(column)
        tz = str(s.dt.tz) if pd.api.types.is_datetime64_any_dtype(s.dtype) and s.dt.tz is not None else None
        ns, missing = as_ns(s, name, tz)
        nullable = bool(missing.any()) if spec.nullable is None else spec.nullable
        ns = ns[~missing]
        headroom = 0.1 if spec.headroom is None else spec.headroom
        if spec.parts == ("timestamp",):
            unit = spec.unit or "m"
            ints = pd.Series(_round_div(ns, _UNIT_NS[unit]))
            ts = IntCodec.fit(ints, ColumnSpec(base=spec.base, digits=spec.digits, headroom=headroom, nullable=nullable), name)
            return cls(("timestamp",), 0, 0, nullable, tz, ts, unit, name)
        parts = spec.parts
        if parts is None:
            has_time = bool(ns.size) and bool(np.any(ns % _NS["day"]))
            has_sec = bool(ns.size) and bool(np.any(ns % _NS["minute"]))
            parts = DATETIME_PARTS[: 6 if has_sec else 5 if has_time else 3]
        if parts != DATETIME_PARTS[: len(parts)]:
            raise SpecError(f"column {name!r}: datetime parts {parts} must be a prefix of {DATETIME_PARTS}")
        years = ns.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970 if ns.size else np.array([1970])
        y0, y1 = int(years.min()), int(years.max())
        pad = max(1, math.ceil(headroom * (y1 - y0))) if headroom > 0 else 0
        return cls(parts, max(y0 - pad, 1678), min(y1 + pad, 2261), nullable, tz, name=name)

    def _parts_of(self, ns: np.ndarray) -> np.ndarray:
        """(rows,) int64 ns -> (rows, n_parts) int64 calendar parts."""
        dt = ns.astype("datetime64[ns]")
        month = dt.astype("datetime64[M]")
        cols = {"year": month.astype("datetime64[Y]").astype(np.int64) + 1970}
        cols["month"] = month.astype(np.int64) % 12 + 1
        day = dt.astype("datetime64[D]")
        cols["day"] = (day - month.astype("datetime64[D]")).astype(np.int64) + 1
        sec = (ns - day.astype("datetime64[ns]").astype(np.int64)) // 10**9
        cols["hour"], cols["minute"], cols["second"] = sec // 3600, sec // 60 % 60, sec % 60
        return np.stack([cols[p] for p in self.parts], axis=1)

    def encode(self, column, offset=0):
        ns, missing = as_ns(column, self.name, self.tz)
        any_missing = bool(missing.any())
        if any_missing and not self.nullable:
            raise EncodeError(f"column {self.name!r}: {int(missing.sum())} missing value(s) in a column fitted without a missing token; refit with nullable=True")
        if self.timestamp is not None:
            return self.timestamp.encode_array(_round_div(ns, _UNIT_NS[self.unit]), missing, offset)
        if self.round_ns is not None:
            ns = _round_div(ns, self.round_ns) * self.round_ns
        out = ((ns < self.ns_lo) | (ns > self.ns_hi)) & ~missing
        ns = np.clip(ns, self.ns_lo, self.ns_hi)
        ids = self._parts_of(ns) - self.part_lo + self.starts + offset
        if any_missing:  # the missing id in the first part, the lowest value in the others
            ids[missing] = self.starts + offset
            ids[missing, 0] = self.starts[0] + self.part_size[0] + offset
        return ids, int(out.sum())

    def decode(self, ids):
        if self.timestamp is not None:
            counts, missing, bad = self.timestamp.decode_array(ids)
            ns = counts * _UNIT_NS[self.unit]
            bad = np.zeros(len(ids), bool) if bad is None else bad
            missing = bad if missing is None else missing | bad
        else:
            values = ids - self.starts
            missing = values[:, 0] == self.part_size[0]
            bad = np.zeros(len(ids), dtype=bool)
            values = np.minimum(values, self.part_size - 1) + self.part_lo
            get = dict(zip(self.parts, values.T))
            months = (get["year"] - 1970) * 12 + (get.get("month", 1) - 1)
            start = months.astype("datetime64[M]").astype("datetime64[D]")
            # a day past the month's end (30 February) is repaired to the month's last day
            n_days = ((start.astype("datetime64[M]") + 1).astype("datetime64[D]") - start).astype(np.int64)
            day = start + (np.minimum(get.get("day", 1), n_days) - 1)
            ns = day.astype("datetime64[ns]").astype(np.int64)
            ns = ns + (get.get("hour", 0) * 3600 + get.get("minute", 0) * 60 + get.get("second", 0)) * 10**9
        out = pd.Series(np.where(missing, np.datetime64("NaT", "ns").astype(np.int64), ns).astype("datetime64[ns]"))
        if self.tz is not None:
            out = out.dt.tz_localize("UTC").dt.tz_convert(self.tz)
        return out, bad

    def slot_constraint(self, j, prev):
        """As the base class, and a day slot allows only the days of the chosen year and month."""
        allowed = super().slot_constraint(j, prev)
        if self.timestamp is None and self.parts[j] == "day":
            year = prev[:, 0] - self.starts[0] + self.part_lo[0]
            month = prev[:, 1] - self.starts[1] + self.part_lo[1]
            known = (year <= self.year_hi) & (month <= 12)  # rows whose year/month are not missing
            start = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
            n_days = ((start + 1).astype("datetime64[D]") - start.astype("datetime64[D]")).astype(np.int64)
            days = np.arange(1, 32)
            allowed[:, :31] &= ~(known[:, None] & (days[None, :] > n_days[:, None]))
        return allowed

    def slot_sizes(self):
        if self.timestamp is not None:
            return self.timestamp.slot_sizes()
        return [int(s) for s in self.sizes]

    def describe(self):
        return f"datetime {self.unit}-timestamp" if self.timestamp is not None else "datetime " + "/".join(self.parts)

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "parts": list(self.parts), "tz": self.tz, "nullable": self.nullable}
        if self.timestamp is not None:
            return {**d, "unit": self.unit, "timestamp": self.timestamp.to_dict()}
        return {**d, "year_lo": self.year_lo, "year_hi": self.year_hi}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "") -> "DatetimeCodec":
        if tuple(d["parts"]) == ("timestamp",):
            return cls(("timestamp",), 0, 0, d["nullable"], d["tz"], IntCodec.from_dict(d["timestamp"], name), d["unit"], name)
        return cls(tuple(d["parts"]), d["year_lo"], d["year_hi"], d["nullable"], d["tz"], name=name)


def _round_div(ns: np.ndarray, unit: int) -> np.ndarray:
    """Round-half-up integer division of int64 nanoseconds by ``unit`` (unbiased to within one tie)."""
    return (ns + unit // 2) // unit
