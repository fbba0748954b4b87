"""Exact codecs: integers in positional digits, and categories with an unknown token.

``IntCodec``: ``code = x - lo`` written in base-B digits; the fitted range gets
``headroom`` of its span (at least 1) at each end, and the spare codes of the last
power of B widen it further. Values beyond it are clamped and counted.

``CategoryCodec``: one slot; one id per category seen at fit time (sorted), then
an ``unknown`` id that unseen values encode to (counted like clamped values, and
decoded as missing, since the tokenizer cannot know the value), then the missing
id when the column is nullable.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from forecaster.core.tokenizer.codec_base import ColumnCodec, DigitLayout, digits_for
from forecaster.core.tokenizer.errors import EncodeError, SpecError
from forecaster.core.tokenizer.spec import ColumnSpec

DEFAULT_INT_BASE = 16


def as_int(column: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows,) int64 values (0 where missing) and the (rows,) missing mask; non-integers raise."""
    s = pd.Series(column)
    missing = s.isna().to_numpy()
    if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.int64, na_value=0), missing
    if not pd.api.types.is_numeric_dtype(s.dtype):
        raise EncodeError(f"column {name!r}: int codec got dtype {s.dtype}; give it integers or use kind='category'")
    x = s.to_numpy(dtype=np.float64, na_value=0.0)
    bad = ~np.isfinite(x) | (np.round(x) != x) | (np.abs(x) > 2.0**53)
    if bad.any():
        raise EncodeError(f"column {name!r}: {int(bad.sum())} value(s) are not integers (first {x[bad][0]}); use kind='float'")
    return x.astype(np.int64), missing


class IntCodec(ColumnCodec):
    kind = "int"

    def __init__(self, layout: DigitLayout, lo: int, name: str = "") -> None:
        self.layout, self.lo, self.name = layout, int(lo), name
        self.nullable = layout.nullable
        self.hi = self.lo + layout.n_codes - 1

    @classmethod
    def fit(cls, column: pd.Series, spec: ColumnSpec, name: str) -> "IntCodec":
        x, missing = as_int(column, name)
        x = x[~missing]
        nullable = bool(missing.any()) if spec.nullable is None else spec.nullable
        base = spec.base or DEFAULT_INT_BASE
        headroom = 0.1 if spec.headroom is None else spec.headroom
        xmin, xmax = (int(x.min()), int(x.max())) if x.size else (0, 0)
        pad = math.ceil(headroom * (xmax - xmin)) if headroom > 0 else 0
        pad = max(pad, 1) if headroom > 0 else 0
        n_needed = xmax - xmin + 2 * pad + 1
        if n_needed > 2**62:
            raise SpecError(f"column {name!r}: integer range {xmin}..{xmax} is too wide for digits; use kind='category'")
        digits = spec.digits or digits_for(n_needed, base)
        if base**digits < n_needed:
            raise SpecError(f"column {name!r}: {digits} base-{base} digits hold {base**digits} values, the range {xmin}..{xmax} with headroom needs {n_needed}")
        layout = DigitLayout(base, digits, nullable)
        spare = layout.n_codes - n_needed
        lo = max(xmin - pad - spare // 2, -(2**63))  # keep the whole range inside int64
        lo = min(lo, 2**63 - layout.n_codes)
        return cls(layout, lo, name)

    def encode_array(self, x: np.ndarray, missing: np.ndarray, offset: int = 0) -> tuple[np.ndarray, int]:
        any_missing = bool(missing.any())
        if any_missing and not self.nullable:
            raise EncodeError(f"column {self.name!r}: {int(missing.sum())} missing value(s) in a column fitted without a missing token; refit with nullable=True")
        out = (x < self.lo) | (x > self.hi)
        if any_missing:
            out &= ~missing
        codes = np.clip(x, self.lo, self.hi) - self.lo
        return self.layout.encode(codes, missing if any_missing else None, offset), int(out.sum())

    def encode(self, column, offset=0):
        x, missing = as_int(column, self.name)
        return self.encode_array(x, missing, offset)

    def decode_array(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(rows, digits) local ids -> int64 values, missing mask or None, bad mask or None."""
        codes, missing, bad = self.layout.decode(ids)
        return codes + self.lo, missing, bad

    def decode(self, ids):
        values, missing, bad = self.decode_array(ids)
        bad = np.zeros(len(values), bool) if bad is None else bad
        if not self.nullable:
            return pd.Series(values, dtype=np.int64), bad
        mask = bad if missing is None else (missing | bad)
        return pd.Series(pd.arrays.IntegerArray(values, mask.copy())), bad

    def slot_sizes(self):
        return self.layout.slot_sizes()

    def describe(self):
        return f"int base{self.layout.base}x{self.layout.digits}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.layout.to_dict(), "lo": self.lo}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "") -> "IntCodec":
        return cls(DigitLayout(d["base"], d["digits"], d["nullable"]), d["lo"], name)


def _native(value: Any) -> Any:
    """A category as a JSON-native Python value (str, int, float, bool)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise SpecError(f"category value {value!r} of type {type(value).__name__} cannot be saved as JSON; convert the column to str")


def _value_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values}
    for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if kinds == {t}:
            return name
    return "float" if kinds == {int, float} else "object"


_OUTPUT_DTYPE = {"bool": "boolean", "int": "Int64", "float": "float64", "str": "str", "object": object}


class CategoryCodec(ColumnCodec):
    kind = "category"

    def __init__(self, categories: list[Any], value_type: str, nullable: bool, name: str = "", pandas_dtype: str | None = None) -> None:
        self.categories, self.value_type, self.nullable, self.name = list(categories), value_type, bool(nullable), name
        assert pandas_dtype in (None, "category", "string"), pandas_dtype
        self.pandas_dtype = pandas_dtype  # restore a pandas Categorical or "string" column as such
        self.unknown_id = len(self.categories)
        self.missing_id = self.unknown_id + 1 if self.nullable else None
        self._index = pd.Index(self.categories, dtype=object)
        self._table = np.array(self.categories + [None, None], dtype=object)

    @classmethod
    def fit(cls, column: pd.Series, spec: ColumnSpec, name: str) -> "CategoryCodec":
        s = pd.Series(column)
        missing = s.isna()
        nullable = bool(missing.any()) if spec.nullable is None else spec.nullable
        uniques = [_native(v) for v in pd.unique(s[~missing].to_numpy(dtype=object))]
        value_type = _value_type(uniques)
        if value_type == "float":
            uniques = sorted({float(v) for v in uniques})
        else:
            uniques = sorted(set(uniques), key=lambda v: (type(v).__name__, v))
        pandas_dtype = "category" if isinstance(s.dtype, pd.CategoricalDtype) else None
        if value_type == "str" and isinstance(s.dtype, pd.StringDtype) and s.dtype.na_value is pd.NA:
            pandas_dtype = "string"
        return cls(uniques, value_type, nullable, name, pandas_dtype)

    def encode(self, column, offset=0):
        s = pd.Series(column)
        missing = s.isna().to_numpy()
        idx = self._index.get_indexer(s.to_numpy(dtype=object)).astype(np.int64)
        unknown = (idx < 0) & ~missing
        idx[unknown] = self.unknown_id
        if missing.any():
            if not self.nullable:
                raise EncodeError(f"column {self.name!r}: {int(missing.sum())} missing value(s) in a column fitted without a missing token; refit with nullable=True")
            idx[missing] = self.missing_id
        return (idx + offset)[:, None], int(unknown.sum())

    def decode(self, ids):
        values = self._table[ids[:, 0]]  # unknown and missing ids decode to missing
        if self.pandas_dtype == "category":
            return pd.Series(pd.Categorical(values, categories=self.categories)), np.zeros(len(ids), bool)
        dtype = self.pandas_dtype or _OUTPUT_DTYPE[self.value_type]
        return pd.Series(pd.array(values, dtype=dtype) if dtype is not object else values), np.zeros(len(ids), bool)

    def slot_sizes(self):
        return [len(self.categories) + 1 + int(self.nullable)]

    def describe(self):
        return f"category {len(self.categories)}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "categories": self.categories, "value_type": self.value_type, "nullable": self.nullable,
                "pandas_dtype": self.pandas_dtype}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "") -> "CategoryCodec":
        return cls(d["categories"], d["value_type"], d["nullable"], name, d["pandas_dtype"])
