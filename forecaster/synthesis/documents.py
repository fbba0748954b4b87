"""Credit-card documents: typed TabFormer tables <-> per-card rows of the day-level model.

A *document* is the whole history of one (user, card), ordered by time; a
transaction is one row of the day-level GPT (``forecaster.core.daymodel``), so a
card's history is the global model's sequence. Time is a sampled quantity: each
row carries the time since the card's previous transaction (``gap``, a log-binned
duration, missing for a card's first row) and its time of day; the date follows
by adding the gaps up, so a sampled history is in time order by construction.
Which columns are tokenized, and how (``ROW_COLUMNS``, ``synthesis_specs``):

==============  ====================================================================
column          codec
==============  ====================================================================
card            category (the card index within its user: 0..8)
gap             duration: minutes since the card's previous transaction, log bins
                (exact minutes below 8, then ~19% wide, to the fitted maximum)
hour, minute    category: the time of day (it must agree with the gap's bin)
amount          float on the cent grid, base 100 (exact round trip; refunds < 0)
use_chip        category
merchant_name   category (an identifier, not a number)
merchant_city   category
merchant_state  category, missing token for online transactions
zip             category (an identifier), missing token for online transactions
mcc             category
errors          category (the raw flag combination), missing token = no error
is_fraud        category
==============  ====================================================================

Every row also gives the model input features (never predicted, ``row_features``):
weekday, hour of day, days since the card's previous transaction, and the date as
years since 2000 (chip cards came in 2015: the period matters).

``user`` is *not* tokenized: a synthetic history gets a fresh synthetic user id
(``SYNTHETIC_USER_BASE`` + history number), so no real customer id is ever
emitted. Also here: reading and writing tables by file suffix, and the per-card
time split (first ``fraction`` of every card's history / the rest).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_sources.errors import DataError
from foundation.errors import UserError
from foundation.atomic import atomic_path
from data_sources.tabformer import TYPED_COLUMNS, TYPED_DTYPES, read_tabformer, sort_transactions, write_tabformer_csv
from forecaster.core.tokenizer import ColumnSpec, TableTokenizer
from forecaster.synthesis.tokenizer import tabformer_specs
from forecaster.core.training.windows import RowWindowDataset, Segment

#: typed columns the GPT writes, in row order (``user`` is assigned, not sampled)
MODEL_COLUMNS: tuple[str, ...] = tuple(c for c in TYPED_COLUMNS if c != "user")
#: synthetic user ids start here; TabFormer's real ids are 0..1999
SYNTHETIC_USER_BASE = 100_000
#: a document key: user * KEY_FACTOR + card
KEY_FACTOR = 100_000


class SynthesisInputError(UserError):
    """A table for synthesis is unusable (wrong columns, no rows, unknown file type)."""


#: the tokenized columns of a row, in slot order (``gap``, ``hour``, ``minute`` replace ``timestamp``)
ROW_COLUMNS: tuple[str, ...] = ("card", "gap", "hour", "minute", "amount", "use_chip", "merchant_name",
                                "merchant_city", "merchant_state", "zip", "mcc", "errors", "is_fraud")
#: log bins of the gap codec
GAP_BINS = 96
#: names of the per-row input features (``row_features``)
FEATURE_NAMES: tuple[str, ...] = tuple(f"weekday_{d}" for d in range(7)) + (
    "hour_sin", "hour_cos", "log1p_gap_days", "years_since_2000")
MINUTE = np.timedelta64(1, "m")


def synthesis_specs(rows: pd.DataFrame) -> dict[str, ColumnSpec]:
    """Column specs of ``ROW_COLUMNS``: the shared TabFormer defaults, a duration for ``gap``, categories for the clock."""
    specs = tabformer_specs(rows.drop(columns=["gap", "hour", "minute"]))
    specs["gap"] = ColumnSpec(kind="duration", bins=GAP_BINS, nullable=True)
    specs["hour"] = ColumnSpec(kind="category")
    specs["minute"] = ColumnSpec(kind="category")
    return specs


def order_cards(table: pd.DataFrame) -> pd.DataFrame:
    """The table ordered by (user, card, time), the order of ``card_rows`` (stable for equal times)."""
    return table.sort_values(["user", "card", "timestamp"], kind="stable").reset_index(drop=True)


def card_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The model's view of a typed table ordered by ``order_cards``: ``ROW_COLUMNS`` with ``gap`` in minutes.

    ``gap`` is missing on a card's first row; ``hour`` and ``minute`` are int64.
    """
    check_table(table)
    t = order_cards(table)
    ts = t["timestamp"].to_numpy().astype("datetime64[m]")
    keys = document_keys(t)
    first = np.r_[True, keys[1:] != keys[:-1]]
    gap = np.r_[0.0, (np.diff(ts) / MINUTE).astype(np.float64)]
    gap[first] = np.nan
    out = {c: t[c] for c in ROW_COLUMNS if c in t.columns}
    out["gap"] = gap
    out["hour"] = t["timestamp"].dt.hour.astype("int64").to_numpy()
    out["minute"] = t["timestamp"].dt.minute.astype("int64").to_numpy()
    return pd.DataFrame({c: out[c] for c in ROW_COLUMNS})


def row_features(times: np.ndarray, gap_minutes: np.ndarray) -> np.ndarray:
    """Input features ``(rows, len(FEATURE_NAMES))`` float32 of rows at ``times`` (datetime64) after ``gap_minutes``.

    Weekday one-hot, hour of day as a point on the circle, ``log1p`` of the days since the
    card's previous transaction (0 on a first row, ``gap`` missing), years since 2000 / 10.
    """
    t = np.asarray(times).astype("datetime64[m]")
    minutes = t.astype(np.int64)
    days = minutes // 1440
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    hour = (minutes % 1440) / 60.0
    gap = np.nan_to_num(np.asarray(gap_minutes, dtype=np.float64), nan=0.0)
    years = (days - 10957) / 365.25  # 10957 = days from 1970 to 2000-01-01
    out = np.zeros((len(t), len(FEATURE_NAMES)), dtype=np.float32)
    out[np.arange(len(t)), weekday] = 1.0
    out[:, 7] = np.sin(2 * np.pi * hour / 24)
    out[:, 8] = np.cos(2 * np.pi * hour / 24)
    out[:, 9] = np.log1p(gap / 1440.0)
    out[:, 10] = years / 10.0
    return out


def fit_tokenizer(table: pd.DataFrame) -> TableTokenizer:
    """The shared ``TableTokenizer`` fitted on the rows of a typed table (``card_rows``)."""
    rows = card_rows(table)
    return TableTokenizer.fit(rows, synthesis_specs(rows))


def document_keys(table: pd.DataFrame) -> np.ndarray:
    """(rows,) int64 document id ``user * KEY_FACTOR + card`` of every row."""
    return table["user"].astype("int64").to_numpy() * KEY_FACTOR + table["card"].astype("int64").to_numpy()


def card_segments(tok: TableTokenizer, table: pd.DataFrame) -> list[Segment]:
    """One segment per (user, card), rows in time order, with their input features ``(rows, F)``."""
    t = order_cards(table)
    rows = card_rows(t)
    ids = tok.encode(rows)
    feats = row_features(t["timestamp"].to_numpy(), rows["gap"].to_numpy())
    keys = document_keys(t)
    bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
    times = t["timestamp"].to_numpy().astype("datetime64[ns]")
    return [Segment(ids[a:b].astype(np.int64), times[a:b], feats[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


#: the default validation cut (``split_segments``): each card's validation block ends where its latest 15%
#: of rows begin, so those latest rows train (0: the card's latest rows validate, the cut of older runs)
VAL_TAIL = 0.15


def split_segments(segments: list[Segment], val_fraction: float, val_tail: float = VAL_TAIL,
                   min_tail_rows: int = 0) -> tuple[list[Segment], list[Segment]]:
    """Cut every document into training and validation rows; returns ``(train, val)`` segments.

    A card of ``n`` rows validates on one block of ``round(n * val_fraction)`` rows that ends
    where its latest ``round(n * val_tail)`` rows begin; the rows before the block and the
    latest rows after it train, as two separate segments, so no training window splices
    across the block (a window holds consecutive real transactions only). With ``val_tail > 0``
    the latest stretch is at least ``min_tail_rows`` long (a window's rows: shorter, it would
    make no training window); a card too short for it and its block trains whole, with no
    validation rows. ``val_tail=0``: the latest ``val_fraction`` validates (the cut of runs
    before ``VAL_TAIL``); ``val_fraction=0``: every row trains, no validation (a refit). The
    cut is deterministic.
    """
    assert 0.0 <= val_fraction < 1.0, f"val_fraction must be in [0, 1), got {val_fraction}"
    assert 0.0 <= val_tail and val_fraction + val_tail < 1.0, (
        f"val_tail must be >= 0 with val_fraction + val_tail < 1, got {val_tail} and {val_fraction}")
    train, val = [], []
    for s in segments:
        n = len(s.tokens)
        hi = n - max(int(round(n * val_tail)), min_tail_rows) if val_tail > 0 else n
        hi = max(hi, 0)
        lo = max(0, hi - int(round(n * val_fraction)))
        if lo == hi:  # nothing validates: the whole card trains as one segment
            train.append(s)
            continue
        if lo > 0:
            train.append(s.rows(0, lo))
        val.append(s.rows(lo, hi))
        if hi < n:
            train.append(s.rows(hi, n))
    return train, val


def describe_cut(val_fraction: float, val_tail: float) -> str:
    """The validation cut in words, for the training log (``val_fraction`` > 0)."""
    if val_tail == 0:
        return f"latest {val_fraction:.0%} of each card"
    return (f"{val_fraction:.0%} of each card's rows just before its latest {val_tail:.0%}, "
            "which train")


def window_datasets(segments: list[Segment], context_rows: int, val_fraction: float,
                    val_tail: float = VAL_TAIL) -> tuple[RowWindowDataset, RowWindowDataset]:
    """Training and validation windows of ``context_rows + 1`` rows, cut per card (``split_segments``:
    a block of ``val_fraction`` of each card's rows ending where its latest ``val_tail`` begin validates;
    ``val_fraction=0``: every row trains and the validation set is empty, a refit).

    A per-card cut rather than one global date: cards span different years (one
    card of the reference sample has 26 rows, all in 2008-2009), and a global
    date would leave some cards out of training entirely. An interior block rather
    than each card's latest rows: a card's newest behaviour (on the reference sample,
    cards 0 and 2's switch to chip in their last months) must be in training, or the
    model never learns it; the later period is already the evaluation's held-out table.
    """
    train, val = split_segments(segments, val_fraction, val_tail, min_tail_rows=context_rows + 1)
    train_ds, val_ds = RowWindowDataset(train, context_rows), RowWindowDataset(val, context_rows)
    if len(train_ds) == 0:
        raise SynthesisInputError(f"no card has {context_rows + 1} training rows; use more data or fewer --context-rows")
    if len(val_ds) == 0 and val_fraction > 0:
        raise SynthesisInputError(f"no card has {context_rows + 1} validation rows in its validation block "
                                  f"({describe_cut(val_fraction, val_tail)}); use more data, a larger "
                                  "--val-fraction or fewer --context-rows")
    return train_ds, val_ds


def split_by_card(table: pd.DataFrame, fraction: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first ``fraction`` of every card's history (by time) and the rest, both typed and sorted.

    This is the split of the reference evaluation: the model trains on the first
    part; the rest is the held-out real reference for fidelity and privacy.
    """
    if not 0.0 < fraction < 1.0:
        raise SynthesisInputError(f"the split fraction must be in (0, 1), got {fraction}")
    check_table(table)
    table = sort_transactions(table)
    pos = table.groupby(["user", "card"], sort=False).cumcount().to_numpy()
    size = table.groupby(["user", "card"], sort=False)["card"].transform("size").to_numpy()
    first = pos < np.round(size * fraction)
    return table[first].reset_index(drop=True), table[~first].reset_index(drop=True)


# -- files ---------------------------------------------------------------------------------
def check_table(table: pd.DataFrame) -> None:
    """Raise ``SynthesisInputError`` unless ``table`` is a non-empty typed TabFormer table."""
    missing = [c for c in TYPED_COLUMNS if c not in table.columns]
    if missing:
        raise SynthesisInputError(f"the table lacks the typed TabFormer column(s) {missing}; "
                                  "read files with forecaster.synthesis.documents.read_table")
    if len(table) == 0:
        raise SynthesisInputError("the table has no transactions")


def read_table(path: str | Path, skip_bad_rows: bool = False) -> pd.DataFrame:
    """A typed TabFormer table from a published-format ``.csv`` or a typed ``.parquet`` file.

    ``skip_bad_rows``: leave out malformed CSV lines (counted in a warning) instead
    of stopping at the first one.
    """
    path = Path(path)
    if not path.exists():
        raise SynthesisInputError(f"{path} does not exist")
    if path.suffix.lower() == ".parquet":
        try:
            table = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(f"{path} is not a readable Parquet file ({exc})") from None
        check_table(table)
        table = table[list(TYPED_COLUMNS)]
        try:
            return table.astype({c: TYPED_DTYPES[c] for c in TYPED_COLUMNS})
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: a column does not have the typed TabFormer values ({exc})") from None
    if path.suffix.lower() != ".csv":
        raise SynthesisInputError(f"{path}: use a TabFormer .csv or a typed .parquet file")
    if skip_bad_rows:
        table, _bad = read_tabformer(path, on_error="skip", progress=False)
    else:
        table = read_tabformer(path, progress=False)
    if len(table) == 0:
        raise SynthesisInputError(f"{path} has no usable transactions")
    return table


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a typed table atomically: published TabFormer CSV for ``.csv``, typed Parquet for ``.parquet``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return write_tabformer_csv(table[list(TYPED_COLUMNS)], path)
    if suffix == ".parquet":
        with atomic_path(path) as tmp:
            table[list(TYPED_COLUMNS)].to_parquet(tmp, index=False)
        return path
    raise SynthesisInputError(f"{path}: the output must end in .csv (TabFormer format) or .parquet (typed table)")
