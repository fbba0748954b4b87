"""Credit-card documents: typed TabFormer tables <-> per-card token segments.

A *document* is the whole history of one (user, card), ordered by time. The GPT
is trained on windows of ``context_rows`` consecutive rows of one document (see
``training.windows``), so every row is predicted from the previous rows of the
same card. Which columns are tokenized, and how (``synthesis_specs``):

==============  ====================================================================
column          codec
==============  ====================================================================
card            category (the card index within its user: 0..8)
timestamp       datetime parts year, month, day, hour, minute (one token each)
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
from forecaster.core.training.windows import Segment, WindowDataset, document_segments

#: typed columns the GPT writes, in row order (``user`` is assigned, not sampled)
MODEL_COLUMNS: tuple[str, ...] = tuple(c for c in TYPED_COLUMNS if c != "user")
#: synthetic user ids start here; TabFormer's real ids are 0..1999
SYNTHETIC_USER_BASE = 100_000
#: a document key: user * KEY_FACTOR + card
KEY_FACTOR = 100_000


class SynthesisInputError(UserError):
    """A table for synthesis is unusable (wrong columns, no rows, unknown file type)."""


def synthesis_specs(table: pd.DataFrame) -> dict[str, ColumnSpec]:
    """Column specs for ``MODEL_COLUMNS`` (the shared TabFormer defaults; ``user`` left out)."""
    return tabformer_specs(table[list(MODEL_COLUMNS)])


def fit_tokenizer(table: pd.DataFrame) -> TableTokenizer:
    """The shared ``TableTokenizer`` fitted on the model columns of a typed table."""
    check_table(table)
    return TableTokenizer.fit(table[list(MODEL_COLUMNS)], synthesis_specs(table))


def document_keys(table: pd.DataFrame) -> np.ndarray:
    """(rows,) int64 document id ``user * KEY_FACTOR + card`` of every row."""
    return table["user"].astype("int64").to_numpy() * KEY_FACTOR + table["card"].astype("int64").to_numpy()


def card_segments(tok: TableTokenizer, table: pd.DataFrame) -> list[Segment]:
    """One token segment per (user, card), rows ordered by time: list of ``(rows, tokens_per_row)``."""
    check_table(table)
    ids = tok.encode(table[list(MODEL_COLUMNS)])
    return document_segments(ids, table["timestamp"].to_numpy(), document_keys(table))


def split_segments(segments: list[Segment], val_fraction: float) -> tuple[list[Segment], list[Segment]]:
    """Cut every document: its first ``1 - val_fraction`` rows train, the rest validate."""
    assert 0.0 < val_fraction < 1.0, f"val_fraction must be in (0, 1), got {val_fraction}"
    train, val = [], []
    for s in segments:
        k = int(round(len(s.tokens) * (1.0 - val_fraction)))
        if k > 0:
            train.append(Segment(s.tokens[:k], s.times[:k]))
        if k < len(s.tokens):
            val.append(Segment(s.tokens[k:], s.times[k:]))
    return train, val


def window_datasets(segments: list[Segment], context_rows: int, val_fraction: float) -> tuple[WindowDataset, WindowDataset]:
    """Training and validation windows, split per card (the latest ``val_fraction`` of each card validates).

    A per-card cut rather than one global date: cards span different years (one
    card of the reference sample has 26 rows, all in 2008-2009), and a global
    date would leave some cards out of training entirely.
    """
    train, val = split_segments(segments, val_fraction)
    train_ds, val_ds = WindowDataset(train, context_rows), WindowDataset(val, context_rows)
    if len(train_ds) == 0:
        raise SynthesisInputError(f"no card has {context_rows} training rows; use more data or a smaller preset")
    if len(val_ds) == 0:
        raise SynthesisInputError(f"no card has {context_rows} validation rows in its latest {val_fraction:.0%}; "
                                  "use more data or a larger validation fraction")
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
