"""The compared view of a typed TabFormer table, shared by the fidelity, privacy and utility metrics.

Numbers as float (``amount``, ``time_of_day`` in minutes after midnight, ``date`` in
days since 1970), categories as text with missing as its own category ``MISSING``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: how a missing category value is written in the compared view
MISSING = "<NA>"


def features(table: pd.DataFrame) -> pd.DataFrame:
    """The compared view of a typed table: numbers as float, categories as text (missing -> ``MISSING``).

    ``time_of_day`` is minutes after midnight, ``weekday`` 0 = Monday, ``date`` days since 1970.
    """
    ts = table["timestamp"]
    out = {"amount": table["amount"].astype(float).to_numpy(),
           "time_of_day": (ts.dt.hour * 60 + ts.dt.minute).astype(float).to_numpy(),
           "date": (ts.to_numpy().astype("datetime64[D]").astype(np.int64)).astype(float)}
    out["weekday"] = ts.dt.day_of_week.astype(str).to_numpy()
    for col in ("card", "use_chip", "merchant_name", "merchant_city", "merchant_state", "zip", "mcc", "errors",
                "is_fraud"):
        s = table[col]
        if col in ("card", "merchant_name", "zip", "mcc"):  # identifiers: "91750", never "91750.0"
            s = s.astype("Int64")
        s = s.astype(object)
        out[col] = np.where(pd.isna(s), MISSING, s.astype(str)).astype(object)
    return pd.DataFrame(out)
