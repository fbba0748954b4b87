"""Float columns: transform, shift to non-negative bins, write the bin in base-B digits.

``t = transform(clip(x, raw_lo, raw_hi))``, ``code = floor((t - lo) / width)``
clipped to ``[0, base**digits)``. Decoding returns the *centre* of the bin in
transformed space, ``inverse(lo + (code + 0.5) * width)``, so round-trip errors
are symmetric within a bin and carry no systematic downward bias.

Out-of-range policy: the fitted range (in transformed space) is widened by
``headroom`` times its span at each end; all ``base**digits`` bins cover exactly
that widened range. A value beyond it (a new all-time high, +-inf, a non-positive
value under ``log``) is clamped to the nearest representable value and counted
in ``n_clamped``; nothing raises and nothing wraps around.

An anchor value (0 by default when the fitted range contains 0; the value of a
constant column) is made the exact centre of a bin and decodes exactly; this
keeps the zeros of zero-inflated returns exact. With ``step`` the bins are
exactly ``step`` wide around the anchor, so values on that grid (cents) decode to
the float nearest the grid value.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from forecaster.core.tokenizer.codec_base import ColumnCodec, DigitLayout, digits_for
from forecaster.core.tokenizer.errors import EncodeError, SpecError
from forecaster.core.tokenizer.spec import ColumnSpec
from forecaster.core.tokenizer.transforms import Transform, fit_transform, transform_from_dict

DEFAULT_BASE = 16
DEFAULT_HEADROOM = 0.1
DEFAULT_REL_PRECISION = 1e-4
MAX_CODES = 2**44
DATA_CHECK_MAX = 200_000  # fit values re-encoded when computing the error bound
LUT_MAX_CODES = 2**18  # decode through a table of all bin centres up to this many codes (2 MiB)  # beyond this, float64 bin arithmetic loses the resolution it promises


def as_float(column: pd.Series) -> np.ndarray:
    """(rows,) float64 with NaN for any missing value (None, NaN, pd.NA, NaT)."""
    return pd.Series(column).to_numpy(dtype=np.float64, na_value=np.nan)


class FloatCodec(ColumnCodec):
    kind = "float"

    def __init__(
        self,
        transform: Transform,
        layout: DigitLayout,
        lo: float,
        width: float,
        fit_range: tuple[float, float],
        anchor: float | None = None,
        anchor_code: int | None = None,
        grid_inv: float | None = None,
        error_bound: float = 0.0,
        raw_range: tuple[float, float] | None = None,
    ) -> None:
        self.transform, self.layout = transform, layout
        self.lo, self.width = float(lo), float(width)
        self.fit_range = (float(fit_range[0]), float(fit_range[1]))
        self.anchor = None if anchor is None else float(anchor)
        self.anchor_code = None if anchor_code is None else int(anchor_code)
        self.grid_inv = None if grid_inv is None else float(grid_inv)
        self.nullable = layout.nullable
        self.error_bound = float(error_bound)
        self._lut: np.ndarray | None = None
        self.hi = self.lo + layout.n_codes * self.width
        self.anchor_t = None if anchor is None else float(transform.forward(np.array([self.anchor]))[0])
        with np.errstate(all="ignore"):
            # The representable range in the column's own units is the outer edges of the
            # end bins; values beyond are clamped onto it (and decode to the end bins' centres).
            edges = transform.inverse(np.array([self.lo, self.hi]))
            ends = self._centre_values(np.array([0, layout.n_codes - 1], dtype=np.int64))
        self.raw_lo, self.raw_hi = (float(edges[0]), float(edges[1])) if raw_range is None else map(float, raw_range)
        self.decoded_lo, self.decoded_hi = float(ends[0]), float(ends[1])
        with np.errstate(all="ignore"):  # a value inside every transform's domain, to stand in for NaN
            self._fill = float(transform.inverse(np.array([self.fit_range[0]]))[0])
        # snap the anchor's bin to the exact anchor only where float rounding would miss it
        self._anchor_snap = False
        if self.anchor is not None:
            with np.errstate(all="ignore"):
                self._anchor_snap = float(self._centre_values(np.array([self.anchor_code]))[0]) != self.anchor

    # -- fitting -------------------------------------------------------------
    @classmethod
    def fit(cls, column: pd.Series, spec: ColumnSpec, name: str) -> "FloatCodec":
        x_all = as_float(column)
        x = x_all[np.isfinite(x_all)]
        nullable = bool(np.isnan(x_all).any()) if spec.nullable is None else spec.nullable
        base = spec.base or DEFAULT_BASE
        headroom = DEFAULT_HEADROOM if spec.headroom is None else spec.headroom
        tname = spec.transform or "none"
        if spec.step is not None and tname != "none":
            raise SpecError(f"column {name!r}: step={spec.step} needs transform 'none', not {tname!r}")
        with np.errstate(over="ignore", invalid="ignore"):
            raw_span = float(x.max() - x.min()) if x.size else 0.0
        if not math.isfinite(raw_span):
            raise SpecError(
                f"column {name!r}: values {x.min():g}..{x.max():g} span more than float64 can hold; scale the column first"
            )
        # values that differ by less than the smallest normal floats cannot be binned: the column is
        # treated as constant (one bin at its median; the error bound is then at most that span)
        constant = raw_span < np.finfo(np.float64).tiny * 2**20
        transform = fit_transform(tname, x, name, scale=spec.scale, n_quantiles=spec.n_quantiles, headroom=headroom)
        with np.errstate(all="ignore"):
            t = transform.forward(x) if x.size else np.zeros(1)
        tmin, tmax = float(t.min()), float(t.max())
        if not (math.isfinite(tmin) and math.isfinite(tmax) and math.isfinite(tmax - tmin)):
            raise SpecError(f"column {name!r}: transform {tname!r} overflows on values {x.min():g}..{x.max():g}; use another transform or scale the column")
        if transform.owns_headroom:
            lo, hi = transform.bounds
        else:
            span = tmax - tmin
            pad = headroom * span if span > 0 and not constant else max(abs(tmin), 1.0) * max(headroom, 0.01)
            lo, hi = tmin - pad, tmax + pad
        anchor = spec.anchor
        if anchor is None and x.size:
            if constant:
                anchor = float(np.median(x))
            elif x.min() <= 0 <= x.max():
                anchor = 0.0
        if anchor is None and spec.step is not None:
            anchor = 0.0
        if anchor is not None and not x.size and spec.anchor is None:
            anchor = None
        anchor_t = None if anchor is None else float(transform.forward(np.array([anchor], dtype=np.float64))[0])
        if anchor_t is not None and not math.isfinite(anchor_t):
            raise SpecError(f"column {name!r}: anchor {anchor} is outside the domain of transform {tname!r}")

        def build(digits: int) -> "FloatCodec":
            layout = DigitLayout(base, digits, nullable)
            return cls._layout(transform, layout, lo, hi, (tmin, tmax), anchor, anchor_t, spec.step, x)

        if spec.step is not None:
            n_needed = math.ceil((hi - lo) / spec.step) + 1
            digits = spec.digits or digits_for(n_needed, base)
            if base**digits < n_needed:
                raise SpecError(f"column {name!r}: {digits} base-{base} digits hold {base**digits} steps of {spec.step}, the range needs {n_needed}")
            return build(digits)
        if spec.digits is not None:
            return build(spec.digits)
        if constant:
            return build(1)
        # default: 1e-4 of the span, but never finer than float64 can resolve at these magnitudes
        floor = 64 * float(np.spacing(max(abs(float(x.min())), abs(float(x.max())))))
        target = spec.precision if spec.precision is not None else max(DEFAULT_REL_PRECISION * raw_span, floor)
        digits = 1
        while True:
            codec = build(digits)
            if codec.error_bound <= target:
                return codec
            if base ** (digits + 1) > MAX_CODES:
                raise SpecError(
                    f"column {name!r}: precision {target:g} is out of reach in base {base} "
                    f"(best is {codec.error_bound:g} with {digits} digits); relax precision or use a transform"
                )
            digits += 1

    @classmethod
    def _layout(cls, transform, layout, lo, hi, fit_range, anchor, anchor_t, step, x) -> "FloatCodec":
        n = layout.n_codes
        anchor_code = grid_inv = None
        if step is not None:
            width = float(step)
            mid = 0.5 * (fit_range[0] + fit_range[1])
            # centre the n bins on the data; the anchor only sets the grid's phase, so its
            # code may lie outside 0..n-1 (e.g. anchor 0 for a column of levels 3..15)
            k = round((anchor_t - (mid - 0.5 * n * width)) / width - 0.5)
            lo, anchor_code = anchor_t - (k + 0.5) * width, k
            inv = 1.0 / width
            grid_inv = float(round(inv)) if abs(inv - round(inv)) < 1e-9 * inv else None
        elif anchor_t is not None and n > 1:
            # one spare bin of width lets the grid shift so the anchor is a bin centre
            width = (hi - lo) / (n - 1)
            k = math.ceil((anchor_t - lo) / width - 0.5)
            lo, anchor_code = anchor_t - (k + 0.5) * width, k
        else:
            width = (hi - lo) / n
        codec = cls(transform, layout, lo, width, fit_range, anchor, anchor_code, grid_inv)
        if x.size:  # the fit data is representable even where the inverse transform rounds the edges inward
            codec.raw_lo, codec.raw_hi = min(codec.raw_lo, float(x.min())), max(codec.raw_hi, float(x.max()))
        codec.error_bound = codec._worst_error(x)
        return codec

    # -- encode / decode -----------------------------------------------------
    def encode(self, column, offset=0):
        x = as_float(column)
        return self.encode_array(x, offset)

    def encode_array(self, x: np.ndarray, offset: int = 0) -> tuple[np.ndarray, int]:
        """``encode`` on a (rows,) float64 array (NaN = missing). Whole-column numpy, no per-value loop."""
        missing = np.isnan(x)
        any_missing = bool(missing.any())
        if any_missing and not self.nullable:
            raise EncodeError(f"column {getattr(self, 'name', '')!r}: {int(missing.sum())} missing value(s) in a float column fitted without a missing token; refit with nullable=True")
        xc = np.clip(x, self.raw_lo, self.raw_hi)
        n_clamped = int(np.count_nonzero(xc != x))  # NaN != NaN: missing values counted, taken off below
        if any_missing:  # keep NaN out of the transforms; these rows get the missing ids
            n_clamped -= int(np.count_nonzero(missing))
            np.copyto(xc, self._fill, where=missing)
        t = self.transform.forward(xc)  # a new array, or xc itself (identity): ours to modify
        t -= self.lo
        t *= 1.0 / self.width
        np.clip(t, 0, self.layout.n_codes - 1, out=t)  # then truncation is floor
        return self.layout.encode(t.astype(np.int64), missing if any_missing else None, offset), n_clamped

    def fitted_codes(self) -> tuple[int, int]:
        """First and last code whose bins hold the fitted data (``fit_range``); the codes outside are headroom.

        The headroom bins exist so that later data and scenario constraints can be written;
        no fitted value ever lies in them.
        """
        with np.errstate(all="ignore"):
            k = np.floor((np.array(self.fit_range, dtype=np.float64) - self.lo) / self.width)
        lo, hi = np.clip(k, 0, self.layout.n_codes - 1).astype(np.int64).tolist()
        return int(lo), int(hi)

    def _centre_values(self, codes: np.ndarray) -> np.ndarray:
        """Decoded values (column units) of bin codes: the bin centre in transformed space."""
        if self.anchor_code is None:
            t = codes * self.width
            t += self.lo + 0.5 * self.width
        elif self.grid_inv is not None:  # exact decimal grid: k / 100 is the float nearest k cents
            t = (codes - self.anchor_code) / self.grid_inv
            if self.anchor_t != 0.0:
                t += self.anchor_t
        else:
            t = codes * self.width
            t += self.anchor_t - self.anchor_code * self.width
        return self.transform.inverse(t)

    def _decode_table(self) -> np.ndarray | None:
        """(n_codes,) decoded value of every code, when there are few enough codes to tabulate.

        Decoding is then one gather instead of a transform call; the table is built by
        the same ``_centre_values``, so results are identical to the direct path.
        """
        if self._lut is None and self.layout.n_codes <= LUT_MAX_CODES:
            with np.errstate(over="ignore", invalid="ignore"):
                lut = self._centre_values(np.arange(self.layout.n_codes, dtype=np.int64))
            if self._anchor_snap and 0 <= self.anchor_code < lut.size:
                lut[self.anchor_code] = self.anchor
            self._lut = lut
        return self._lut

    def decode_array(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(rows, digits) local ids -> (rows,) float64 values (NaN = missing), bad-row mask or None."""
        codes, missing, bad = self.layout.decode(ids)
        lut = self._decode_table()
        if lut is not None:
            x = np.take(lut, codes, mode="clip")  # clip: missing rows hold no code; overwritten below
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                x = self._centre_values(codes)
            if self._anchor_snap:
                np.copyto(x, self.anchor, where=codes == self.anchor_code)
        if missing is not None:
            np.copyto(x, np.nan, where=missing | bad)
        return x, bad

    def decode(self, ids):
        x, bad = self.decode_array(ids)
        return pd.Series(x, dtype=np.float64), (np.zeros(len(x), bool) if bad is None else bad)

    def _worst_error(self, x: np.ndarray) -> float:
        """Worst-case |decode(encode(v)) - v| over v in the fitted range, in the column's units.

        Between the transform's breakpoints the slope of ``inverse`` is monotone,
        so the worst bin is at an end of each piece: we evaluate the bins at the
        ends of the fitted range and next to every breakpoint exactly (their edges
        clipped to the fitted range), plus a coarse grid, and also the fit data
        itself. A float-rounding allowance is added.
        """
        if not x.size:
            return 0.0
        tmin, tmax = self.fit_range
        n = self.layout.n_codes
        with np.errstate(all="ignore"):
            k_end = np.floor((np.array([tmin, tmax]) - self.lo) / self.width)
            k_lo, k_hi = (int(v) for v in np.clip(k_end, 0, n - 1))
            cand = [np.array([k_lo, k_hi]), np.linspace(k_lo, k_hi, 257).astype(np.int64)]
            bp = self.transform.breakpoints()
            bp = bp[(bp >= tmin) & (bp <= tmax)]
            if bp.size:
                kb = np.floor((bp - self.lo) / self.width).astype(np.int64)
                cand.append(np.concatenate([kb - 1, kb, kb + 1]))
            k = np.unique(np.clip(np.concatenate(cand), k_lo, k_hi))
            e0 = np.maximum(self.lo + k * self.width, tmin)
            e1 = np.minimum(self.lo + (k + 1) * self.width, tmax)
            c = self._centre_values(k)
            inv = self.transform.inverse
            bins = np.maximum(np.abs(c - inv(e0)), np.abs(inv(e1) - c))
            if x.size > DATA_CHECK_MAX:  # the bins above are exact; the data check is a safety net
                pick = np.random.default_rng(0).choice(x.size, DATA_CHECK_MAX, replace=False)
                x = np.concatenate([x[pick], [x.min(), x.max()]])
            ids, _ = self.encode_array(x)
            data_err = np.abs(self.decode_array(ids)[0] - x)
        worst = max(float(np.nanmax(bins)), float(data_err.max()))
        scale = max(abs(float(x.min())), abs(float(x.max())), 1e-300)
        return worst * (1 + 1e-9) + 16 * np.finfo(np.float64).eps * scale

    # -- persistence and description ------------------------------------------
    def slot_sizes(self):
        return self.layout.slot_sizes()

    def describe(self):
        return f"float {self.transform.name} base{self.layout.base}x{self.layout.digits}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "transform": self.transform.to_dict(),
            **self.layout.to_dict(),
            "lo": self.lo,
            "width": self.width,
            "fit_range": list(self.fit_range),
            "anchor": self.anchor,
            "anchor_code": self.anchor_code,
            "grid_inv": self.grid_inv,
            "error_bound": self.error_bound,
            "raw_range": [self.raw_lo, self.raw_hi],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FloatCodec":
        layout = DigitLayout(d["base"], d["digits"], d["nullable"])
        return cls(
            transform_from_dict(d["transform"]), layout, d["lo"], d["width"], tuple(d["fit_range"]),
            d["anchor"], d["anchor_code"], d["grid_inv"], d["error_bound"], tuple(d["raw_range"]),
        )
