"""Choosing, fitting and rebuilding column codecs.

The kind of a column without an explicit ``ColumnSpec.kind`` follows its dtype:
float -> ``float``; integer -> ``int``; datetime64 -> ``datetime``; bool, string,
object and categorical -> ``category``; integers spread over more than 2**48
values (hashes) -> ``category``. Other identifier-like integers (zip codes, MCC)
should be given ``kind="category"`` explicitly: as ``int`` they would spend
digits on a meaningless order.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from forecaster.core.tokenizer.codec_base import ColumnCodec
from forecaster.core.tokenizer.datetime_codec import DatetimeCodec
from forecaster.core.tokenizer.discrete_codecs import CategoryCodec, IntCodec
from forecaster.core.tokenizer.duration_codec import DurationCodec
from forecaster.core.tokenizer.errors import SpecError
from forecaster.core.tokenizer.float_codec import FloatCodec
from forecaster.core.tokenizer.spec import ColumnSpec

CODECS: dict[str, type[ColumnCodec]] = {
    "float": FloatCodec,
    "int": IntCodec,
    "category": CategoryCodec,
    "datetime": DatetimeCodec,
    "duration": DurationCodec,  # given explicitly (kind="duration"), never inferred
}

_FLOAT_ONLY = ("transform", "precision", "step", "anchor", "scale", "n_quantiles")


def infer_kind(column: pd.Series) -> str:
    """The codec kind a column gets when its spec does not name one."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "category"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        # integers spread over more than 2**48 values are hashes/identifiers, not quantities
        present = column.dropna()
        if len(present) and int(present.max()) - int(present.min()) > 2**48:
            return "category"
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "category"


def fit_codec(name: str, column: pd.Series, spec: ColumnSpec | None = None) -> ColumnCodec:
    """Fit the codec for one column.

    Parameters
    ----------
    name : column name (for messages).
    column : (rows,) the column's values, missing as NaN/None/NaT.
    spec : how to tokenize it; ``None`` picks everything from the dtype and values.
    """
    spec = spec or ColumnSpec()
    kind = spec.kind or infer_kind(column)
    if kind != "float":
        stray = [f for f in _FLOAT_ONLY if getattr(spec, f) is not None]
        if stray:
            raise SpecError(f"column {name!r}: option(s) {stray} apply to float columns only, the column is {kind!r}")
    if spec.bins is not None and kind != "duration":
        raise SpecError(f"column {name!r}: option bins applies to duration columns only, the column is {kind!r}")
    if kind == "float" and not (pd.api.types.is_numeric_dtype(column.dtype) or column.isna().all()):
        raise SpecError(f"column {name!r}: kind 'float' needs a numeric column, got dtype {column.dtype}")
    return CODECS[kind].fit(column, spec, name)


def codec_from_dict(data: dict[str, Any], name: str) -> ColumnCodec:
    """Rebuild a fitted codec from its ``to_dict``; KeyError/TypeError on a malformed entry."""
    kind = data["kind"]
    if kind not in CODECS:
        raise KeyError(f"unknown codec kind {kind!r}")
    cls = CODECS[kind]
    return cls.from_dict(data) if cls is FloatCodec else cls.from_dict(data, name)
