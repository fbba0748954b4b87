"""``ColumnSpec``: how one column is tokenized, as a small JSON-able dataclass.

Every field is optional; what is left as ``None`` is chosen at fit time from the
column's dtype and values (see ``codecs.fit_codec``). The fitted codec, not the
spec, is what a saved tokenizer stores, so a spec only matters at fit time.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from forecaster.core.tokenizer.errors import SpecError

KINDS = ("float", "int", "category", "datetime", "duration")
DATETIME_PARTS = ("year", "month", "day", "hour", "minute", "second")
TIMESTAMP_UNITS = ("D", "h", "m", "s")


@dataclass(frozen=True)
class ColumnSpec:
    """How to tokenize one column.

    Attributes
    ----------
    kind : ``"float" | "int" | "category" | "datetime"``; ``None`` picks it from the dtype
        (float -> float, integer -> int, bool/str/object/category -> category,
        datetime64 -> datetime).
    transform : float only. ``"none" | "log" | "log1p" | "signed_log" | "yeo_johnson" |
        "robust" | "quantile"``; default ``"none"``. See ``transforms``.
    base : digits are written in base ``base`` (float and int); default 16.
    digits : number of digit tokens (float and int); ``None`` chooses the fewest digits
        that meet ``precision`` (float) or cover the range (int).
    precision : float only: target worst-case round-trip error over the fitted range,
        in the column's own units. Default: 1e-4 of the fitted span.
    step : float only: values lie on a grid of this step (e.g. 0.01 for prices in
        cents). Bins are then exactly ``step`` wide and centred on the grid, so
        on-grid values round-trip exactly (to float rounding). Needs transform "none".
    anchor : float only: a value that must decode exactly (it is made a bin centre).
        ``None`` (default) anchors 0 when 0 is in the fitted range.
    headroom : fraction of the fitted span added beyond each end of the fitted range
        (in transformed space; years for datetime parts, counts for int). Values beyond
        the headroom are clamped and counted. Default 0.1.
    nullable : whether the column gets a missing-value token; ``None`` means "if the
        fit data has a missing value".
    scale : signed_log only: ``x -> sign(x) * log1p(|x| / scale)``; default: median of |x|
        over non-zero values.
    n_quantiles : quantile only: number of quantile knots; default 1000.
    parts : datetime only: which parts become tokens, most significant first, from
        ``year month day hour minute second``; or ``("timestamp",)`` for one integer
        timestamp codec. Default: year, month, day, plus hour/minute/second when the fit
        data has them.
    unit : datetime timestamp only: ``"D" | "h" | "m" | "s"``; default ``"m"``.
    bins : duration only (``kind="duration"``, minutes >= 0, see ``duration_codec``): the
        number of log-spaced bins; default 64.
    """

    kind: str | None = None
    transform: str | None = None
    base: int | None = None
    digits: int | None = None
    precision: float | None = None
    step: float | None = None
    anchor: float | None = None
    headroom: float | None = None
    nullable: bool | None = None
    scale: float | None = None
    n_quantiles: int | None = None
    parts: tuple[str, ...] | None = None
    unit: str | None = None
    bins: int | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise SpecError(f"unknown column kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.base is not None and not (2 <= int(self.base) <= 4096):
            raise SpecError(f"base must be between 2 and 4096, got {self.base}")
        if self.digits is not None and not (1 <= int(self.digits) <= 16):
            raise SpecError(f"digits must be between 1 and 16, got {self.digits}")
        for name in ("precision", "step", "scale"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise SpecError(f"{name} must be a positive number, got {value}")
        if self.headroom is not None and not (0 <= self.headroom <= 10):
            raise SpecError(f"headroom must be between 0 and 10 (a fraction of the span), got {self.headroom}")
        if self.parts is not None:
            object.__setattr__(self, "parts", tuple(self.parts))
            if self.parts != ("timestamp",) and (
                not self.parts or any(p not in DATETIME_PARTS for p in self.parts)
            ):
                raise SpecError(f"datetime parts {self.parts} must be drawn from {DATETIME_PARTS} or be ('timestamp',)")
        if self.bins is not None and (isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 4):
            raise SpecError(f"bins must be a whole number of at least 4, got {self.bins!r}")
        if self.unit is not None and self.unit not in TIMESTAMP_UNITS:
            raise SpecError(f"timestamp unit {self.unit!r}: use one of {', '.join(TIMESTAMP_UNITS)}")

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set (JSON-able)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if "parts" in out:
            out["parts"] = list(out["parts"])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ColumnSpec":
        """Rebuild from ``to_dict``; an unknown key is a ``SpecError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown ColumnSpec field(s) {unknown}: known fields are {sorted(known)}")
        return cls(**data)
