"""The TabFormer credit-card format: published columns, typed columns, small helpers.

Published format (IBM TabFormer ``card_transaction.v1.csv``), one transaction per
line, comma-separated, minimal quoting, ``\\n`` line ends, header line first.

================  ==================  ======================  =========================================
published         typed column        typed dtype             published text -> typed value
================  ==================  ======================  =========================================
User              user                int32                   ``0``
Card              card                int16                   ``0`` .. ``8`` (card index of the user)
Year,Month,Day,   timestamp           datetime64[ns]          ``2002``,``9``,``1``,``06:21`` ->
Time                                                          2002-09-01 06:21; minute precision, so
                                                              Year/Month/Day/Time are recovered exactly
Amount            amount              float64 (USD)           ``$134.09`` -> 134.09; ``$-77.00`` (refund)
                                                              -> -77.0
Use Chip          use_chip            category (3 values)     ``Swipe Transaction`` etc., see USE_CHIP
Merchant Name     merchant_name       int64                   signed 64-bit merchant id
Merchant City     merchant_city       string[pyarrow]         ``La Verne``; ``ONLINE`` for online
Merchant State    merchant_state      string[pyarrow], <NA>   ``CA``; a country name abroad; empty ->
                                                              <NA> (online transactions)
Zip               zip                 Int32, <NA>             ``91750.0`` -> 91750; empty -> <NA>
MCC               mcc                 int16                   merchant category code ``5411``
Errors?           errors              string[pyarrow], <NA>   raw, e.g. ``Bad PIN,Insufficient Balance``;
                                                              empty -> <NA>; see ``error_flags``
Is Fraud?         is_fraud            bool                    ``Yes`` / ``No``
================  ==================  ======================  =========================================
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

PUBLISHED_COLUMNS: tuple[str, ...] = (
    "User", "Card", "Year", "Month", "Day", "Time", "Amount", "Use Chip",
    "Merchant Name", "Merchant City", "Merchant State", "Zip", "MCC", "Errors?", "Is Fraud?",
)
HEADER_LINE = ",".join(PUBLISHED_COLUMNS)

TYPED_COLUMNS: tuple[str, ...] = (
    "user", "card", "timestamp", "amount", "use_chip", "merchant_name", "merchant_city",
    "merchant_state", "zip", "mcc", "errors", "is_fraud",
)

#: typed column -> the published column(s) it comes from
COLUMN_SOURCES: dict[str, tuple[str, ...]] = {
    "user": ("User",), "card": ("Card",), "timestamp": ("Year", "Month", "Day", "Time"),
    "amount": ("Amount",), "use_chip": ("Use Chip",), "merchant_name": ("Merchant Name",),
    "merchant_city": ("Merchant City",), "merchant_state": ("Merchant State",), "zip": ("Zip",),
    "mcc": ("MCC",), "errors": ("Errors?",), "is_fraud": ("Is Fraud?",),
}

USE_CHIP: tuple[str, ...] = ("Swipe Transaction", "Chip Transaction", "Online Transaction")
USE_CHIP_DTYPE = pd.CategoricalDtype(list(USE_CHIP), ordered=False)
FRAUD_LABELS: tuple[str, str] = ("No", "Yes")  # index = bool value
ONLINE_CITY = "ONLINE"
#: "00:00" .. "23:59"; the index of a time is its minute of the day
TIMES_OF_DAY = pa.array([f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)])
#: The flags seen in the published data; ``errors`` is kept raw, so others pass through.
KNOWN_ERROR_FLAGS: tuple[str, ...] = (
    "Bad CVV", "Bad Card Number", "Bad Expiration", "Bad PIN", "Bad Zipcode",
    "Insufficient Balance", "Technical Glitch",
)

STRING_DTYPE = pd.StringDtype(storage="pyarrow")  # nullable, missing is pd.NA
TYPED_DTYPES: dict[str, object] = {
    "user": np.dtype("int32"), "card": np.dtype("int16"), "timestamp": np.dtype("datetime64[ns]"),
    "amount": np.dtype("float64"), "use_chip": USE_CHIP_DTYPE, "merchant_name": np.dtype("int64"),
    "merchant_city": STRING_DTYPE, "merchant_state": STRING_DTYPE, "zip": pd.Int32Dtype(),
    "mcc": np.dtype("int16"), "errors": STRING_DTYPE, "is_fraud": np.dtype("bool"),
}

BAD_ROW_COLUMNS: tuple[str, ...] = ("line", "column", "value", "reason")


def empty_table() -> pd.DataFrame:
    """A typed table with no rows (the columns and dtypes of every read)."""
    return pd.DataFrame({c: pd.Series([], dtype=TYPED_DTYPES[c]) for c in TYPED_COLUMNS})


def empty_bad_rows() -> pd.DataFrame:
    """A bad-row report with no rows: line (int64, 1-based), column, value, reason (str)."""
    return pd.DataFrame({"line": pd.Series([], dtype="int64"),
                         **{c: pd.Series([], dtype=str) for c in BAD_ROW_COLUMNS[1:]}})


def error_flags(errors: pd.Series) -> pd.Series:
    """Split the raw ``errors`` column into one ``frozenset`` of flags per row.

    ``"Bad PIN,Insufficient Balance"`` -> ``frozenset({"Bad PIN", "Insufficient Balance"})``;
    <NA> or empty -> ``frozenset()``. Same index as ``errors``; object dtype.
    """
    def split(raw: object) -> frozenset[str]:
        if raw is None or raw is pd.NA or (isinstance(raw, float) and np.isnan(raw)) or raw == "":
            return frozenset()
        return frozenset(part for part in str(raw).split(",") if part)

    # the column has a handful of distinct values: split each once, then map
    codes, uniques = pd.factorize(errors, use_na_sentinel=True)
    table = [split(u) for u in uniques]
    out = [table[c] if c >= 0 else frozenset() for c in codes]
    return pd.Series(out, index=errors.index, dtype=object, name=errors.name)


def error_flag_columns(errors: pd.Series, flags: tuple[str, ...] = KNOWN_ERROR_FLAGS) -> pd.DataFrame:
    """One bool column per flag (named as the flag), True where the row carries it."""
    sets = error_flags(errors)
    return pd.DataFrame({f: sets.map(lambda s, f=f: f in s).astype(bool) for f in flags},
                        index=errors.index)


def sort_transactions(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by (user, card, timestamp); ties keep their input order (stable).

    Returns a new frame with a fresh RangeIndex; the input is not modified.
    """
    out = frame.sort_values(["user", "card", "timestamp"], kind="stable")
    return out.reset_index(drop=True)
