"""Generate synthetic credit-card histories from a trained synthesis run.

``Synthesizer(run_dir).generate(...)`` returns a typed TabFormer table (the
columns and dtypes of ``data_sources.tabformer``), one synthetic card history per
sampled path:

- **unconditional**: every path starts from a neutral seed row built from the
  run's aggregate statistics (modes, median amount), with its card index and the
  year/month of its first row drawn from the training (card, month) counts
  (forced tokens; the card token stays forced in every row: one card per history). The first ``burn_in`` rows (default: one context window) are sampled
  and thrown away, so the kept rows are conditioned only on the model's own rows;
- **fixed column values** (``conditions={"is_fraud": True, "merchant_state":
  "CA"}``): the column's tokens are forced in every row, the other columns are
  sampled given them;
- **continuation** (``context=table``): for every (user, card) of ``context``
  its latest rows are the prompt and ``rows`` new rows follow, with the same
  user and card ids.

Every token is drawn among the ids valid at its slot (constrained decoding), so
every row decodes; the rows of a history are finally ordered by time (the count
of rows that had to move is reported). Synthetic users get ids from
``SYNTHETIC_USER_BASE`` up.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from foundation.errors import UserError
from data_sources.tabformer import TYPED_COLUMNS, TYPED_DTYPES
from forecaster.core.run import RunDir
from forecaster.core.sampler import Sampler, SamplingConfig, make_generator
from forecaster.core.tokenizer import CategoryCodec
from forecaster.synthesis.documents import (
    KEY_FACTOR, MODEL_COLUMNS, SYNTHETIC_USER_BASE, SynthesisInputError, check_table, document_keys,
)
from forecaster.synthesis.train import SYNTHESIS_FILE


def _row_constrained_sampler(model, tok):
    """A ``Sampler`` whose draws also obey ``tok.constrained_mask`` (rows that always decode).

    The shared sampler constrains each slot to its static valid ids (here without
    the categories' "unknown" ids); the sampler's ``step_mask`` hook adds the
    tokenizer's per-prefix mask, given the ids already drawn in the row (canonical
    missing values, real dates: no 31 April).
    """
    # a category's "unknown" id decodes to a missing value: never a value a synthetic row may have
    static = tok.valid_mask()
    unknown = np.zeros(tok.vocab_size, dtype=bool)
    for name, codec in zip(tok.columns, tok.codecs):
        if isinstance(codec, CategoryCodec):
            unknown[tok.column_vocab(name).start + codec.unknown_id] = True
    static &= ~unknown[None, :]
    assert static.any(axis=1).all(), "a slot with no id left to sample"
    keep = torch.from_numpy(~unknown)

    def step_mask(prefix: torch.Tensor) -> torch.Tensor:  # (B, k) ids of the row so far -> (B, V)
        return torch.from_numpy(tok.constrained_mask(prefix.cpu().numpy())) & keep

    return Sampler(model, torch.from_numpy(static), step_mask=step_mask)


class ConditionError(UserError):
    """A ``--condition`` that names an unknown column or a value the model never saw."""


#: columns that can be fixed with a condition (one token each)
CONDITION_COLUMNS: tuple[str, ...] = ("card", "use_chip", "merchant_name", "merchant_city", "merchant_state",
                                      "zip", "mcc", "errors", "is_fraud")


@dataclass
class GenerationStats:
    """What one ``generate`` call did; ``rows_per_s`` counts kept rows over the sampling wall time."""

    rows: int = 0
    histories: int = 0
    sampled_rows: int = 0          # kept + burn-in rows
    reordered_rows: int = 0        # sampled rows earlier than the row before them (then ordered by time)
    seconds: float = 0.0
    rows_per_s: float = 0.0
    conditions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def parse_condition(text: str) -> tuple[str, object]:
    """``"column=value"`` -> (column, typed value); e.g. ``is_fraud=Yes``, ``merchant_state=CA``, ``mcc=5411``."""
    if "=" not in text:
        raise ConditionError(f"a condition is column=value (e.g. is_fraud=Yes), got {text!r}")
    col, value = (part.strip() for part in text.split("=", 1))
    if col not in CONDITION_COLUMNS:
        raise ConditionError(f"cannot condition on {col!r}; use one of {', '.join(CONDITION_COLUMNS)}")
    if col == "is_fraud":
        if value.lower() not in ("yes", "no", "true", "false"):
            raise ConditionError(f"is_fraud must be Yes or No, got {value!r}")
        return col, value.lower() in ("yes", "true")
    if col in ("merchant_state", "zip", "errors") and value == "":
        return col, None  # missing (online transaction / no error)
    if col in ("card", "merchant_name", "zip", "mcc"):
        try:
            return col, int(value)
        except ValueError:
            raise ConditionError(f"{col} must be an integer, got {value!r}") from None
    return col, value


class Synthesizer:
    """A trained synthesis run, ready to sample. ``which``: "best" or "last" weights."""

    def __init__(self, run_dir: str | Path, which: str = "best") -> None:
        run = RunDir(run_dir)
        for path in (run.tokenizer, run.path / SYNTHESIS_FILE):
            if not path.exists():
                raise SynthesisInputError(f"{run.path} is not a synthesis run (no {path.name}); "
                                          "train one with `forecaster synth train`")
        self.run_dir = run.path
        self.tok = run.load_tokenizer()
        self.meta = json.loads((run.path / SYNTHESIS_FILE).read_text())
        self.model = run.load_model(which, fingerprint=self.tok.fingerprint())
        self.row_len = self.tok.tokens_per_row
        self.window_rows = self.model.config.block_size // self.row_len

    # -- pieces ----------------------------------------------------------------------------------
    def _typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Decoded model columns -> the typed dtypes of ``data_sources.tabformer``."""
        out = {}
        for col in MODEL_COLUMNS:
            s = frame[col]
            if col == "is_fraud":
                out[col] = s.astype(str).str.lower().isin(["true", "yes"]).to_numpy()
            elif isinstance(TYPED_DTYPES[col], pd.CategoricalDtype):
                out[col] = pd.Categorical(np.asarray(s.astype(object)), dtype=TYPED_DTYPES[col])
            else:
                out[col] = s.astype(TYPED_DTYPES[col])
        return pd.DataFrame(out)

    def seed_rows(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` neutral typed rows: (card, month) drawn from the training counts, modes elsewhere.

        The (card, month) pairs are drawn by systematic sampling (one uniform offset,
        then evenly spaced points of the cumulative distribution), so even a few
        histories cover the cards in proportion, each in the months it was used.
        """
        st = self.meta["seed"]
        keys = list(st["card_months"])
        counts = np.array(list(st["card_months"].values()), float)
        cdf = np.cumsum(counts) / counts.sum()
        points = (rng.random() + np.arange(n)) / n
        picks = np.minimum(np.searchsorted(cdf, points, side="right"), len(keys) - 1)
        picks = picks[rng.permutation(n)]
        cards = np.array([int(keys[i].split("|")[0]) for i in picks], dtype=np.int64)
        month = pd.PeriodIndex([keys[i].split("|")[1] for i in picks], freq="M")
        days = rng.integers(0, month.days_in_month.to_numpy())
        ts = month.to_timestamp().to_numpy() + days.astype("timedelta64[D]") + np.timedelta64(12, "h")
        data = {"card": cards, "timestamp": ts}
        for col, value in st["modes"].items():
            data[col] = [value] * n
        frame = pd.DataFrame(data)
        frame["user"] = 0
        return frame

    def _encode_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, tokens_per_row) ids of typed rows; model columns only."""
        frame = frame.copy()
        for col in MODEL_COLUMNS:
            if col in TYPED_DTYPES and col != "timestamp":
                frame[col] = frame[col].astype(TYPED_DTYPES[col])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"])
        return self.tok.encode(frame[list(MODEL_COLUMNS)])

    def condition_ids(self, conditions: dict[str, object]) -> np.ndarray:
        """(tokens_per_row,) ids with the conditioned columns' tokens, -1 elsewhere."""
        forced = np.full(self.row_len, -1, dtype=np.int64)
        if not conditions:
            return forced
        row = self.seed_rows(1, np.random.default_rng(0))
        for col, value in conditions.items():
            if col not in CONDITION_COLUMNS:
                raise ConditionError(f"cannot condition on {col!r}; use one of {', '.join(CONDITION_COLUMNS)}")
            row[col] = [value]
        ids, clamped = self.tok.encode_with_report(
            row.astype({c: TYPED_DTYPES[c] for c in conditions})[list(MODEL_COLUMNS)])
        for col, value in conditions.items():
            if clamped.get(col):
                known = list(getattr(self.tok.codec(col), "categories", []))[:8]
                raise ConditionError(f"{col}={value!r} never occurs in the training data of {self.run_dir}; "
                                     f"known values include {known}")
            forced[self.tok.column_slots(col)] = ids[0, self.tok.column_slots(col)]
        return forced

    def _sample(self, prompt: np.ndarray, forced: np.ndarray, n_paths: int, n_rows: int, seed: int,
                sampling: SamplingConfig) -> np.ndarray:
        """(n_paths, n_rows, tokens_per_row) ids after a (rows, tokens_per_row) prompt."""
        sampler = _row_constrained_sampler(self.model, self.tok)
        gen = make_generator(seed)
        out = sampler.sample(torch.from_numpy(prompt.reshape(-1)), n_paths, n_rows, gen, sampling,
                             forced=torch.from_numpy(forced))
        return out.numpy()

    def _decode_histories(self, ids: np.ndarray, users: np.ndarray, cards: np.ndarray | None) -> tuple[pd.DataFrame, int]:
        """(paths, rows, T) ids -> one typed table, histories ordered by time; and the rows moved."""
        n_paths, n_rows, _ = ids.shape
        frame = self._typed(self.tok.decode(ids.reshape(-1, self.row_len)))
        frame.insert(0, "user", np.repeat(users, n_rows).astype(TYPED_DTYPES["user"]))
        if cards is not None:
            frame["card"] = np.repeat(cards, n_rows).astype(TYPED_DTYPES["card"])
        path = np.repeat(np.arange(n_paths), n_rows)
        ts = frame["timestamp"].to_numpy().reshape(n_paths, n_rows)
        moved = int((np.diff(ts, axis=1) < np.timedelta64(0, "ns")).sum())  # rows earlier than the row before
        order = np.lexsort((frame["timestamp"].to_numpy(), path))
        frame = frame.iloc[order].reset_index(drop=True)
        return frame[list(TYPED_COLUMNS)], moved

    # -- public ------------------------------------------------------------------------------------
    def generate(self, rows: int, *, rows_per_history: int = 200, conditions: dict[str, object] | None = None,
                 context: pd.DataFrame | None = None, seed: int = 0, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, burn_in: int | None = None, batch_paths: int = 64,
                 progress: Callable[[int], None] | None = None) -> tuple[pd.DataFrame, GenerationStats]:
        """Sample synthetic transactions.

        Parameters
        ----------
        rows : unconditional: total rows (``ceil(rows / rows_per_history)`` histories, the
            last one cut); with ``context``: new rows per context card.
        rows_per_history : rows of one synthetic card history (unconditional mode).
        conditions : {column: typed value} fixed in every row (see ``parse_condition``).
        context : typed table whose cards are continued (their ids are kept).
        burn_in : rows sampled after the seed row and dropped (default: the context window).
        batch_paths : histories sampled together (memory ~ batch_paths x context).
        progress : called with the number of rows kept so far.

        Returns
        -------
        (table, stats): a typed TabFormer table ordered by user, card, time; and ``GenerationStats``.
        """
        if rows < 1:
            raise SynthesisInputError(f"rows must be at least 1, got {rows}")
        sampling = SamplingConfig(temperature, top_k, top_p)
        if rows_per_history < 1:
            raise SynthesisInputError(f"rows per history must be at least 1, got {rows_per_history}")
        rows_per_history = min(rows_per_history, rows)
        conditions = dict(conditions or {})
        forced_row = self.condition_ids(conditions)
        t0 = time.perf_counter()
        stats = GenerationStats(conditions={k: (None if v is None else str(v)) for k, v in conditions.items()})
        tables = []
        if context is not None:
            check_table(context)
            keys = document_keys(context)
            for i, key in enumerate(pd.unique(keys)):
                hist = context[keys == key].sort_values("timestamp", kind="stable")
                prompt = self._encode_rows(hist.tail(self.window_rows - 1))
                forced = np.broadcast_to(forced_row, (rows, self.row_len)).copy()
                card_sl = self.tok.column_slots("card")
                known = prompt[-1, card_sl] != self.tok.column_vocab("card").start + self.tok.codec("card").unknown_id
                if forced_row[card_sl][0] < 0 and known.all():  # the card of the context stays the card
                    forced[:, card_sl] = prompt[-1, card_sl]
                ids = self._sample(prompt, forced, 1, rows, seed + i, sampling)
                table, moved = self._decode_histories(ids, np.array([key // KEY_FACTOR]), np.array([key % KEY_FACTOR]))
                tables.append(table)
                stats.reordered_rows += moved
                stats.histories += 1
                stats.sampled_rows += rows
                if progress is not None:
                    progress(sum(len(t) for t in tables))
        else:
            burn = self.window_rows if burn_in is None else int(burn_in)
            n_hist = math.ceil(rows / rows_per_history)
            rng = np.random.default_rng(seed)
            prompt = self._encode_rows(self.seed_rows(1, rng))
            done = 0
            for b0 in range(0, n_hist, batch_paths):
                n_paths = min(batch_paths, n_hist - b0)
                n_total = burn + rows_per_history
                forced = np.broadcast_to(forced_row, (n_paths, n_total, self.row_len)).copy()
                # each path's first row: its own card and month, so paths start apart like real cards
                starts = self._encode_rows(self.seed_rows(n_paths, rng))
                card_sl = self.tok.column_slots("card")
                ts_sl = self.tok.column_slots("timestamp")
                first = slice(ts_sl.start, ts_sl.start + 2)  # year, month
                # one card per history: its card token is forced in every row (a condition on card wins)
                forced[:, :, card_sl] = np.where(forced[:, :, card_sl] >= 0, forced[:, :, card_sl],
                                                 starts[:, None, card_sl])
                forced[:, 0, first] = starts[:, first]
                ids = self._sample(prompt, forced, n_paths, n_total, seed + 1 + b0, sampling)[:, burn:]
                users = SYNTHETIC_USER_BASE + np.arange(b0, b0 + n_paths)
                table, moved = self._decode_histories(ids, users, None)
                tables.append(table)
                stats.reordered_rows += moved
                stats.histories += n_paths
                stats.sampled_rows += n_paths * n_total
                done += len(table)
                if progress is not None:
                    progress(min(done, rows))
        out = pd.concat(tables, ignore_index=True)
        if context is None:
            out = out.iloc[:rows].reset_index(drop=True)
        stats.rows = len(out)
        stats.seconds = time.perf_counter() - t0
        stats.rows_per_s = stats.rows / max(stats.seconds, 1e-9)
        return out, stats
