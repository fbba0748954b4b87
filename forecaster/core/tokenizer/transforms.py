"""Monotone float transforms applied before a float column is binned.

Each transform is fitted on the finite values of a column and maps them
(vectorised, numpy) to a space where equal-width bins suit the data: ``log`` and
``signed_log`` give relative precision to heavy tails, ``yeo_johnson`` and
``robust`` standardise, ``quantile`` makes the bins equally populated. Every
transform is strictly increasing, so the codec can clamp in the column's own
units and bound the round-trip error bin by bin.

Attributes every transform has:

- ``bounds``: the image of the transform, ``(lo, hi)``; may be infinite.
- ``owns_headroom``: True when the transform already maps beyond the fitted range
  (quantile adds its headroom as end knots), so the codec adds none in its space.
- ``breakpoints()``: points in transformed space where the slope of ``inverse`` may
  change monotonicity; between them it is monotone, which lets the codec find the
  worst bin exactly by looking at the ends of each piece.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import stats

from forecaster.core.tokenizer.errors import SpecError

_INF = float("inf")


class Transform:
    """Identity; the base class of all transforms. ``forward``/``inverse`` take and return float64 arrays."""

    name: ClassVar[str] = "none"
    owns_headroom: ClassVar[bool] = False

    @classmethod
    def fit(cls, x: np.ndarray, column: str, **options: Any) -> "Transform":
        return cls()

    @property
    def bounds(self) -> tuple[float, float]:
        return (-_INF, _INF)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def inverse(self, t: np.ndarray) -> np.ndarray:
        return t

    def breakpoints(self) -> np.ndarray:
        return np.empty(0)

    def params(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}


class Log(Transform):
    """``log(x)`` for strictly positive columns (prices, volumes)."""

    name = "log"

    @classmethod
    def fit(cls, x, column, **options):
        if x.size and x.min() <= 0:
            raise SpecError(f"column {column!r}: transform 'log' needs positive values, min is {x.min()}; use 'log1p' or 'signed_log'")
        return cls()

    def forward(self, x):
        return np.log(x)

    def inverse(self, t):
        return np.exp(t)


class Log1p(Transform):
    """``log(1 + x)`` for non-negative columns with zeros (counts, amounts)."""

    name = "log1p"

    @classmethod
    def fit(cls, x, column, **options):
        if x.size and x.min() <= -1:
            raise SpecError(f"column {column!r}: transform 'log1p' needs values > -1, min is {x.min()}; use 'signed_log'")
        return cls()

    def forward(self, x):
        return np.log1p(x)

    def inverse(self, t):
        return np.expm1(t)


class SignedLog(Transform):
    """``sign(x) * log1p(|x| / scale)``: linear near 0, logarithmic in both tails (returns, P&L)."""

    name = "signed_log"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    @classmethod
    def fit(cls, x, column, scale=None, **options):
        if scale is None:
            nz = np.abs(x[x != 0])
            scale = float(np.median(nz)) if nz.size else 1.0
        return cls(scale)

    def forward(self, x):
        return np.copysign(np.log1p(np.abs(x) / self.scale), x)

    def inverse(self, t):
        return np.copysign(np.expm1(np.abs(t)) * self.scale, t)

    def breakpoints(self):
        return np.zeros(1)

    def params(self):
        return {"scale": self.scale}


class Robust(Transform):
    """``(x - median) / IQR``: a standardisation that outliers do not dominate."""

    name = "robust"

    def __init__(self, center: float = 0.0, spread: float = 1.0) -> None:
        self.center, self.spread = float(center), float(spread)

    @classmethod
    def fit(cls, x, column, **options):
        if not x.size:
            return cls()
        q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
        spread = q3 - q1
        if not spread > 0:
            spread = float(np.max(np.abs(x - med))) or 1.0
        return cls(med, spread)

    def forward(self, x):
        return (x - self.center) / self.spread

    def inverse(self, t):
        return t * self.spread + self.center

    def params(self):
        return {"center": self.center, "spread": self.spread}


class YeoJohnson(Transform):
    """Yeo-Johnson power transform with maximum-likelihood lambda, then standardised."""

    name = "yeo_johnson"

    def __init__(self, lmbda: float = 1.0, mean: float = 0.0, std: float = 1.0) -> None:
        self.lmbda, self.mean, self.std = float(lmbda), float(mean), float(std)

    @classmethod
    def fit(cls, x, column, **options):
        if x.size < 2 or np.ptp(x) == 0:
            return cls(1.0, float(x.mean()) if x.size else 0.0, 1.0)
        sample = x if x.size <= 200_000 else np.random.default_rng(0).choice(x, 200_000, replace=False)
        # lambda is kept in [0, 2]: there the transform maps onto the whole real line,
        # so any headroom beyond the fitted range stays invertible
        try:
            with np.errstate(all="ignore"):
                lmbda = float(np.clip(stats.yeojohnson_normmax(sample), 0.0, 2.0))
                y = cls(lmbda)._raw_forward(x)
                mean, std = float(y.mean()), float(y.std())
        except (ValueError, ArithmeticError) as exc:
            raise SpecError(f"column {column!r}: Yeo-Johnson cannot be fitted ({exc}); scale the column or use 'signed_log'") from None
        if not (np.isfinite(lmbda) and np.isfinite(mean) and np.isfinite(std)):
            raise SpecError(f"column {column!r}: Yeo-Johnson overflows on these values; scale the column or use 'signed_log'")
        return cls(lmbda, mean, std if std > 0 else 1.0)

    def _raw_forward(self, x):
        # both branches as one expression: sign(x) * expm1(l * log1p(|x|)) / l with
        # l = lambda for x >= 0 and 2 - lambda below (log1p(|x|) in the limit l = 0)
        lam = np.where(x >= 0, self.lmbda, 2.0 - self.lmbda)
        a = np.log1p(np.abs(x))
        if 0.0 < self.lmbda < 2.0:  # no branch hits the l = 0 limit
            y = np.expm1(lam * a)
            y /= lam
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(lam == 0.0, a, np.expm1(lam * a) / lam)
        return np.copysign(y, x, out=y)  # y >= 0; the sign is x's

    def _raw_inverse(self, y):
        pos = y >= 0
        lam = np.where(pos, self.lmbda, 2.0 - self.lmbda)
        b = np.abs(y)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(lam == 0.0, b, np.log1p(lam * b) / lam)
        x = np.expm1(a)
        return np.where(pos, x, -x)

    def forward(self, x):
        return (self._raw_forward(x) - self.mean) / self.std

    def inverse(self, t):
        return self._raw_inverse(t * self.std + self.mean)

    def breakpoints(self):
        return np.array([-self.mean / self.std])

    def params(self):
        return {"lmbda": self.lmbda, "mean": self.mean, "std": self.std}


class Quantile(Transform):
    """Piecewise-linear empirical CDF onto [0, 1]: bins hold equal shares of the fit data.

    Knots are the fitted quantiles (a point mass such as a run of zeros becomes one
    knot at the middle of its probability range), plus two end knots ``headroom``
    of the span beyond the fitted min and max, which take probability 0 and 1. So
    the transform owns the column's headroom and the whole [0, 1] is used.
    """

    name = "quantile"
    owns_headroom = True

    def __init__(self, xk: np.ndarray, pk: np.ndarray) -> None:
        self.xk, self.pk = np.asarray(xk, dtype=np.float64), np.asarray(pk, dtype=np.float64)
        assert self.xk.size >= 2 and np.all(np.diff(self.xk) > 0) and np.all(np.diff(self.pk) > 0), "quantile knots must increase"

    @classmethod
    def fit(cls, x, column, n_quantiles=None, headroom=0.1, **options):
        n = int(n_quantiles or 1000)
        if not x.size:
            return cls(np.array([-1.0, 1.0]), np.array([0.0, 1.0]))
        levels = np.linspace(0.0, 1.0, min(n, max(x.size, 2)))
        q = np.quantile(x, levels)
        xk, first = np.unique(q, return_index=True)
        last = np.r_[first[1:] - 1, q.size - 1]
        pk = 0.5 * (levels[first] + levels[last])  # a repeated knot sits mid-mass
        span = xk[-1] - xk[0]
        scale = span if span > 0 else max(abs(xk[0]), np.finfo(np.float64).tiny * 2**20)
        pad = max(headroom, 1e-6) * scale
        # end knots strictly outside the data even where pad is below float resolution
        lo_knot = min(xk[0] - pad, np.nextafter(xk[0], -np.inf))
        hi_knot = max(xk[-1] + pad, np.nextafter(xk[-1], np.inf))
        inner = 1e-3 + (1 - 2e-3) * (pk - pk[0]) / (pk[-1] - pk[0]) if pk.size > 1 else np.array([0.5])
        return cls(np.r_[lo_knot, xk, hi_knot], np.r_[0.0, inner, 1.0])

    @property
    def bounds(self):
        return (0.0, 1.0)

    def _build_buckets(self) -> None:
        """Uniform buckets over the knots, each knowing its first segment, to replace binary search.

        ``np.interp`` binary-searches the knots for every value (about 150 ns a value
        here); a bucket lookup plus a few vectorised refinement steps is several times
        faster. When the knots are too uneven for that (more than ``_MAX_STEPS`` knots
        in one bucket even with 2**20 buckets), ``forward`` keeps ``np.interp``.
        """
        self._buckets = None
        x0, x1, k = self.xk[0], self.xk[-1], self.xk.size
        for n_buckets in (2**14, 2**17, 2**20):
            edges = x0 + (x1 - x0) * np.arange(n_buckets + 1) / n_buckets
            first = np.clip(np.searchsorted(self.xk, edges, side="right") - 1, 0, k - 2)
            steps = int(np.max(first[1:] - first[:-1]))
            if steps <= self._MAX_STEPS:
                slope = np.diff(self.pk) / np.diff(self.xk)
                self._buckets = (first[:-1].copy(), n_buckets / (x1 - x0), steps, slope)
                return

    _MAX_STEPS = 6

    def forward(self, x):
        if not hasattr(self, "_buckets"):
            self._build_buckets()
        if self._buckets is None or x.size < 64:
            return np.interp(x, self.xk, self.pk)
        first, scale, steps, slope = self._buckets
        xk, top = self.xk, self.xk.size - 2
        xc = np.clip(x, xk[0], xk[-1])
        g = (xc - xk[0]) * scale
        i = first[np.clip(g.astype(np.int64), 0, first.size - 1)]
        for _ in range(steps):  # move right while the next knot is <= x
            np.minimum(i + (xc >= xk[i + 1]), top, out=i)
        t = xc - xk[i]
        t *= slope[i]
        t += self.pk[i]
        return t

    def inverse(self, t):
        return np.interp(t, self.pk, self.xk)

    def breakpoints(self):
        return self.pk

    def params(self):
        return {"xk": self.xk.tolist(), "pk": self.pk.tolist()}


TRANSFORMS: dict[str, type[Transform]] = {
    t.name: t for t in (Transform, Log, Log1p, SignedLog, Robust, YeoJohnson, Quantile)
}


def fit_transform(name: str, x: np.ndarray, column: str, **options: Any) -> Transform:
    """Fit transform ``name`` on the finite values ``x`` (1-D float64) of ``column``."""
    if name not in TRANSFORMS:
        raise SpecError(f"column {column!r}: unknown transform {name!r}; use one of {', '.join(TRANSFORMS)}")
    return TRANSFORMS[name].fit(x, column, **options)


def transform_from_dict(data: dict[str, Any]) -> Transform:
    """Rebuild a fitted transform from ``to_dict``."""
    data = dict(data)
    cls = TRANSFORMS[data.pop("name")]
    return cls(**data)
