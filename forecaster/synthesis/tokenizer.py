"""Default column specs for the typed TabFormer transactions table (``data_sources.tabformer``).

- ``user``, ``card``, ``merchant_name``, ``zip``, ``mcc``: identifiers, so categories
  (one token each; unseen ones map to the unknown token), not ordered integers.
- ``amount``: dollars on a cent grid, ``step=0.01`` (exact round trip, refunds
  included), base 100: each digit is two decimal digits of the cent count.
- ``timestamp``: calendar parts year, month, day, hour, minute (one token each).
- ``use_chip``, ``merchant_city``, ``merchant_state``, ``errors``, ``is_fraud``:
  categories (dtype default).

Columns of the frame not named here get the dtype default of ``codecs.infer_kind``.
"""
from __future__ import annotations

import pandas as pd

from forecaster.core.tokenizer.spec import ColumnSpec

_IDENTIFIERS = ("user", "card", "merchant_name", "zip", "mcc")


def tabformer_specs(frame: pd.DataFrame) -> dict[str, ColumnSpec]:
    """Specs for the columns of a typed TabFormer table that ``frame`` has."""
    specs = {name: ColumnSpec(kind="category") for name in _IDENTIFIERS}
    specs["amount"] = ColumnSpec(kind="float", step=0.01, base=100)
    specs["timestamp"] = ColumnSpec(kind="datetime", parts=("year", "month", "day", "hour", "minute"))
    return {k: v for k, v in specs.items() if k in frame.columns}
