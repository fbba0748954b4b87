"""The precision report: what each column costs in tokens and what it loses in a round trip.

For a fitted tokenizer and a frame (normally the fit data), one row per column:

- ``codec``: kind, transform, base x digits; ``tokens``: slots per row;
  ``vocab``: the column's id slice ``start..stop-1``.
- ``bound``: the worst-case round-trip error over the fitted range, in the
  column's units (seconds for datetimes; 0 for exact codecs).
- ``max_error``, ``median_error``, ``mean_signed_error``: |decoded - original| on the
  frame's present, in-range values (signed for the mean, to expose bias).
- ``bin_width``: for float codecs, the bin width in transformed space, so the mean
  signed error can be read against it.
- ``values``, ``missing``, ``clamped`` (out of range, or unseen categories), ``mismatches``
  (values that did not come back equal, after counting clamped ones out; 0 for
  category/int/datetime codecs unless something is wrong).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecaster.core.tokenizer.datetime_codec import DatetimeCodec
from forecaster.core.tokenizer.discrete_codecs import CategoryCodec, IntCodec, as_int
from forecaster.core.tokenizer.float_codec import FloatCodec, as_float

if TYPE_CHECKING:  # annotations only: table imports this module
    from forecaster.core.tokenizer.table import TableTokenizer


def _errors(tok: TableTokenizer, name: str, original: pd.Series, decoded: pd.Series) -> tuple[np.ndarray, int, int]:
    """(in-range present values,) signed errors, number of present values, mismatches."""
    codec = tok.codec(name)
    if isinstance(codec, FloatCodec):
        x, y = as_float(original), as_float(decoded)
        keep = np.isfinite(x) & (x >= codec.raw_lo) & (x <= codec.raw_hi)
        err = y[keep] - x[keep]
        return err, int(np.isfinite(x).sum()), int(np.count_nonzero(np.abs(err) > codec.error_bound))
    if isinstance(codec, IntCodec):
        x, miss = as_int(original, name)
        keep = ~miss & (x >= codec.lo) & (x <= codec.hi)
        y = decoded.to_numpy(dtype=np.int64, na_value=0)
        err = (y[keep] - x[keep]).astype(np.float64)
        return err, int((~miss).sum()), int(np.count_nonzero(err))
    if isinstance(codec, DatetimeCodec):
        xs, ys = pd.Series(original), pd.Series(decoded)
        if codec.tz is not None:
            xs, ys = xs.dt.tz_convert("UTC").dt.tz_localize(None), ys.dt.tz_convert("UTC").dt.tz_localize(None)
        x = xs.to_numpy(dtype="datetime64[ns]")
        y = ys.to_numpy(dtype="datetime64[ns]")
        present = ~np.isnat(x)
        keep = present & ~np.isnat(y)
        if codec.timestamp is None:
            keep &= (x.astype(np.int64) >= codec.ns_lo) & (x.astype(np.int64) <= codec.ns_hi)
        err = (y[keep].astype(np.int64) - x[keep].astype(np.int64)) / 1e9
        return err, int(present.sum()), int(np.count_nonzero(np.abs(err) > codec.error_bound))
    assert isinstance(codec, CategoryCodec), type(codec)
    xs = pd.Series(original).reset_index(drop=True)
    present = xs.notna().to_numpy()
    known = present & (codec._index.get_indexer(xs.to_numpy(dtype=object)) >= 0)
    a = xs[known].astype(object).to_numpy()
    b = pd.Series(decoded).reset_index(drop=True)[known].astype(object).to_numpy()
    return np.zeros(int(known.sum())), int(present.sum()), int(np.count_nonzero(a != b))


def precision_report(tok: TableTokenizer, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column of ``tok`` (index: column name); see the module docstring."""
    ids, clamped = tok.encode_with_report(frame)
    decoded = tok.decode(ids)
    rows = []
    for name, codec, off in zip(tok.columns, tok.codecs, tok.offsets):
        err, n_present, mismatches = _errors(tok, name, frame[name], decoded[name])
        abs_err = np.abs(err)
        rows.append(
            {
                "column": name,
                "codec": codec.describe(),
                "tokens": codec.n_slots,
                "vocab": f"{off}..{off + codec.vocab_size - 1}",
                "bound": codec.error_bound,
                "max_error": float(abs_err.max()) if abs_err.size else 0.0,
                "median_error": float(np.median(abs_err)) if abs_err.size else 0.0,
                "mean_signed_error": float(err.mean()) if err.size else 0.0,
                "bin_width": codec.width if isinstance(codec, FloatCodec) else np.nan,
                "values": n_present,
                "missing": int(len(frame) - n_present),
                "clamped": clamped[name],
                "mismatches": mismatches,
            }
        )
    return pd.DataFrame(rows).set_index("column")
