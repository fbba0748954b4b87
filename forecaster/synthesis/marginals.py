"""Marginal calibration of a synthesis run: per-card log-biases that give the sampled rows the training rows' merchant shares.

A model trained with early stopping and dropout draws each card's merchants a little
too evenly, and the error compounds over a 200-row history: on the shared sample the
sampled merchant shares are 0.11 from the training rows' in total variation (the top
grocery store at 6.6 % of rows instead of 8.7 %, four travel merchants at four times
their share), 0.06 already in the model's one-step predictions on the training rows.

``fit_marginals`` corrects that the way a survey statistician rakes a sample: it
samples histories, compares each card's share of every value of a column with the
training rows', and adds ``log(train share / sampled share)`` to that card's logits of
the column (``Marginals.bias``, clipped to +-``CLIP``), for ``iterations`` rounds. The
biases are added to the model's logits at that slot during sampling (a float
``step_mask``, ``BiasedMask``); the model's conditional structure is kept (a merchant
still comes with its city, zip and MCC), only each card's shares move.

Only the training rows are read (``synth calibrate`` checks that they are the run's),
and the calibration samples its own seeds (``CALIBRATION_SEED`` up), never the seed a
reported set uses. The file (``marginals.json``) holds per-card shares of merchants in
the form of log-ratios: an aggregate of the person's card use, like the per-card and
per-month shares of ``synthesis.json``; ``synth export-model`` keeps it rounded to
``EXPORT_STEP``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from foundation.atomic import write_text
from forecaster.core.tokenizer import TableTokenizer
from forecaster.synthesis.documents import SynthesisInputError, card_rows, document_keys, order_cards

MARGINALS_FILE = "marginals.json"
FORMAT = "forecaster.synthesis.marginals"
#: the calibrated columns by default: the merchant (its city, zip and MCC follow it) per card; the
#: use of the chip per card and calendar year (chip cards came in 2015: a history that reaches a
#: card's chip year should write chips as that card did, not toss a coin on the switch); and the
#: gap per hour of the previous row (a short gap fixes the next row's hour: the joint makes the hours)
DEFAULT_COLUMNS: tuple[str, ...] = ("merchant_name", "use_chip", "gap")
BY_YEAR: tuple[str, ...] = ("use_chip",)
CLIP = 4.0              # |log-bias| at most (a factor of 55)
CALIBRATION_SEED = 1_000_000
EXPORT_STEP = 0.05      # the exported biases' rounding (log units)


def card_shares(tok: TableTokenizer, table: pd.DataFrame, column: str,
                years: tuple[int, int] | None = None) -> np.ndarray:
    """(cards, K) counts of each of ``column``'s K fitted values per card index of a typed table;
    with ``years`` ``(first, last)``: (cards, years, K), per calendar year of each card's previous
    row (a card's first row: its own; years outside counted at the ends), the key ``BiasedMask``
    applies them by.

    Values the tokenizer does not know (and missing values) are not counted.
    """
    t = order_cards(table)  # each card's rows in time order: its previous row is the row before
    cats = list(tok.codec(column).categories)
    n_cards = len(tok.codec("card").categories)
    j = pd.Index(cats).get_indexer(t[column].astype(object).where(t[column].notna(), None))
    card_index = pd.Index(list(tok.codec("card").categories)).get_indexer(t["card"].astype("int64"))
    ok = (j >= 0) & (card_index >= 0)
    if years is None:
        out = np.zeros((n_cards, len(cats)))
        np.add.at(out, (card_index[ok], j[ok]), 1.0)
        return out
    year = pd.to_datetime(t["timestamp"]).dt.year.to_numpy()
    keys = document_keys(t)
    first = np.r_[True, keys[1:] != keys[:-1]]
    y = np.clip(np.where(first, year, np.r_[year[:1], year[:-1]]), years[0], years[1]) - years[0]
    out = np.zeros((n_cards, years[1] - years[0] + 1, len(cats)))
    np.add.at(out, (card_index[ok], y[ok], j[ok]), 1.0)
    return out


def gap_shares(tok: TableTokenizer, table: pd.DataFrame) -> np.ndarray:
    """(24, bins) counts of the gap bins of a typed table's rows by the hour of each card's previous row.

    A card's first row (no previous transaction) is not counted. The time of day of a row
    after a short gap follows from its previous row's time and the gap, so this joint is
    what makes the hours right.
    """
    codec = tok.codec("gap")
    rows = card_rows(table)
    gap = rows["gap"].to_numpy(dtype=np.float64)
    prev_hour = np.r_[0, rows["hour"].to_numpy()[:-1]]
    ok = np.isfinite(gap)
    k, _ = codec.bins_of(np.where(ok, gap, 0.0))
    out = np.zeros((24, codec.n_bins))
    np.add.at(out, (prev_hour[ok], k[ok]), 1.0)
    return out


def _shares(tok: TableTokenizer, table: pd.DataFrame, column: str, years: tuple[int, int] | None) -> np.ndarray:
    return gap_shares(tok, table) if column == "gap" else card_shares(tok, table, column, years)


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance of two count arrays' shares, every cell (card, [year,] value) its own."""
    return float(0.5 * np.abs(a / max(a.sum(), 1.0) - b / max(b.sum(), 1.0)).sum())


@dataclass
class Marginals:
    """Per-card log-biases of some columns' values (``bias[column]``: (cards, K) float64, or for a
    column keyed by year too, (cards, years, K) for the calendar years ``years``)."""

    fingerprint: str
    weights: str                                        # sha256 of the weights it was fitted for
    bias: dict[str, np.ndarray]
    years: tuple[int, int] | None = None                # first and last year of the year-keyed columns
    history: list[dict] = field(default_factory=list)  # per round: total variation before its update
    settings: dict = field(default_factory=dict)

    def to_json(self, step: float | None = None) -> str:
        def rounded(b: np.ndarray) -> list:
            return (np.round(np.round(b / step) * step, 6) if step else b).tolist()
        return json.dumps({"format": FORMAT, "tokenizer_fingerprint": self.fingerprint, "weights": self.weights,
                           "bias": {c: rounded(b) for c, b in self.bias.items()},
                           "years": list(self.years) if self.years else None,
                           "history": self.history, "settings": self.settings}, indent=1)

    def digest(self) -> str:
        """sha256 of the biases as saved (a Dask worker checks that it read the client's)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def save(self, folder: str | Path, step: float | None = None) -> Path:
        path = Path(folder) / MARGINALS_FILE
        write_text(path, self.to_json(step))
        return path

    @classmethod
    def load(cls, folder: str | Path, tok: TableTokenizer) -> "Marginals | None":
        """The folder's calibration, or None when it has none; refused when it is not this tokenizer's."""
        path = Path(folder) / MARGINALS_FILE
        if not path.exists():
            return None
        try:
            d = json.loads(path.read_text())
            assert d["format"] == FORMAT
            bias = {c: np.asarray(b, dtype=np.float64) for c, b in d["bias"].items()}
            years = tuple(int(y) for y in d["years"]) if d.get("years") else None
        except (ValueError, KeyError, AssertionError, TypeError) as e:
            raise SynthesisInputError(f"{path}: not a marginal calibration ({e}); rerun `forecaster synth calibrate`") from None
        if d["tokenizer_fingerprint"] != tok.fingerprint():
            raise SynthesisInputError(f"{path} was fitted for another tokenizer; rerun `forecaster synth calibrate`")
        n_cards = len(tok.codec("card").categories)
        for c, b in bias.items():
            if c == "gap":
                shape = (24, tok.codec("gap").n_bins)
            else:
                k = len(tok.codec(c).categories) if c in tok.columns else -1
                shape = (n_cards, years[1] - years[0] + 1, k) if b.ndim == 3 and years else (n_cards, k)
            if b.shape != shape or not np.isfinite(b).all():
                raise SynthesisInputError(f"{path}: the biases of {c!r} do not fit this run's tokenizer")
        return cls(d["tokenizer_fingerprint"], str(d.get("weights", "")), bias, years, d.get("history", []),
                   d.get("settings", {}))


class BiasedMask:
    """A ``step_mask`` that adds each path's log-biases at the calibrated slots (a float mask): by its card
    (and previous row's year), or for the gap by its previous row's hour.

    ``inner``: the bool ``step_mask`` it wraps (the clock); its forbidden ids stay ``-inf``.
    """

    def __init__(self, tok: TableTokenizer, inner: Callable[[torch.Tensor], torch.Tensor], marginals: Marginals) -> None:
        self.inner = inner
        self.card_slot = tok.column_slots("card").start
        self.card_ids = np.full(tok.vocab_size, -1, dtype=np.int64)
        off = tok.column_vocab("card").start
        self.card_ids[off:off + len(tok.codec("card").categories)] = np.arange(len(tok.codec("card").categories))
        self.years = marginals.years
        self.gap_slot = tok.column_slots("gap").start if "gap" in tok.columns else -1
        self.slots = {}
        for c, b in marginals.bias.items():
            start = tok.column_vocab(c).start
            full = torch.zeros((*b.shape[:-1], tok.vocab_size), dtype=torch.float64)
            full[..., start:start + b.shape[-1]] = torch.from_numpy(b)
            self.slots[tok.column_slots(c).start] = full

    def __call__(self, prefix: torch.Tensor) -> torch.Tensor:
        allowed = self.inner(prefix)
        bias = self.slots.get(prefix.shape[1])
        if bias is None:
            return allowed
        if prefix.shape[1] == self.gap_slot:  # keyed by the hour of the path's previous row
            rows = bias[(self.inner.now % 1440) // 60]
            return rows.masked_fill(~allowed.cpu(), float("-inf"))
        card = self.card_ids[prefix[:, self.card_slot].cpu().numpy()]
        assert (card >= 0).all(), "a row's card slot holds no card"
        if bias.dim() == 3:  # keyed by the calendar year of the path's previous row too
            year = self.inner.now.astype("datetime64[m]").astype("datetime64[Y]").astype(np.int64) + 1970
            rows = bias[card, np.clip(year, *self.years) - self.years[0]]
        else:
            rows = bias[card]
        return rows.masked_fill(~allowed.cpu(), float("-inf"))


def check_training_rows(synth, train: pd.DataFrame, name) -> None:
    """Refuse a table that is not the run's training table (its rows, cards and first and last times).

    The calibration must see the training rows and nothing else: held-out rows would leak
    into the model's output, another person's rows would move it to their card use.
    """
    meta = synth.meta
    if "rows" not in meta:
        raise SynthesisInputError(f"{synth.run_dir} records no training table; calibrate a `synth train` run, "
                                  "not an exported model")
    ts = pd.to_datetime(train["timestamp"])
    got = {"rows": len(train), "documents": int(train.groupby(["user", "card"]).ngroups),
           "first_date": str(ts.min()), "last_date": str(ts.max())}
    want = {k: (str(meta[k]) if "date" in k else int(meta[k])) for k in got if k in meta}
    bad = [f"{k} {got[k]} (the run's: {want[k]})" for k in want if got[k] != want[k]]
    if bad:
        raise SynthesisInputError(f"{name} is not the training table of {synth.run_dir}: " + "; ".join(bad)
                                  + "; give --data the file `synth train --data` read")


def fit_marginals(synth, train: pd.DataFrame, *, columns: Sequence[str] = DEFAULT_COLUMNS, iterations: int = 8,
                  rows: int = 16000, rows_per_history: int = 200, seed: int = CALIBRATION_SEED,
                  log: Callable[[str], None] | None = None) -> Marginals:
    """Fit the log-biases of ``columns`` on the training rows ``train`` (typed) by ``iterations`` rounds.

    Each round samples ``rows`` rows unconditionally (temperature 1, seed ``seed + round``)
    with the biases so far and adds ``log((train share + e) / (sampled share + e))`` per cell
    (card; card and previous row's year for ``BY_YEAR``; previous row's hour for ``gap``; ``e``:
    half a row of the cell's training rows), clipped to +-``CLIP``; a final sample only
    measures. Cells the training rows or the sample leave empty keep their biases. ``synth`` is a ``Synthesizer``; its ``marginals`` are
    replaced by the result.
    """
    tok = synth.tok
    for c in columns:
        if c != "gap" and (c not in tok.columns or not hasattr(tok.codec(c), "categories") or c == "card"):
            raise SynthesisInputError(f"cannot calibrate {c!r}: a calibrated column is gap or a category column "
                                      "other than card")
    if iterations < 1 or rows < rows_per_history:
        raise SynthesisInputError(f"calibration needs at least one round and one history, got {iterations} "
                                  f"rounds of {rows} rows")
    ts = pd.to_datetime(train["timestamp"])
    years = (int(ts.dt.year.min()), int(ts.dt.year.max())) if any(c in BY_YEAR for c in columns) else None
    key = {c: years if c in BY_YEAR else None for c in columns}
    target = {c: _shares(tok, train, c, key[c]) for c in columns}
    m = Marginals(tok.fingerprint(), synth.weights_digest(), {c: np.zeros(target[c].shape) for c in columns}, years,
                  settings={"columns": list(columns), "iterations": iterations, "rows": rows,
                            "rows_per_history": rows_per_history, "seed": seed, "clip": CLIP})
    synth.marginals_error = None  # a broken file of the folder is replaced, not read
    for r in range(iterations + 1):
        synth.marginals = m
        table, _ = synth.generate(rows, rows_per_history=rows_per_history, seed=seed + r)
        step = {"round": r}
        for c in columns:
            got, want = _shares(tok, table, c, key[c]), target[c]
            step[c] = round(total_variation(got, want), 4)
            if r == iterations:
                continue
            n = want.sum(-1, keepdims=True)             # training rows per card (and year)
            e = 0.5 / np.maximum(n, 1.0)
            upd = np.log(want / np.maximum(n, 1.0) + e) - np.log(got / np.maximum(got.sum(-1, keepdims=True), 1.0) + e)
            has = (n[..., 0] > 0) & (got.sum(-1) > 0)   # cells both the data and the sample have rows in
            m.bias[c][has] = np.clip(m.bias[c][has] + upd[has], -CLIP, CLIP)
        m.history.append(step)
        if log:
            log(f"round {r}: total variation of the sampled shares " + ", ".join(
                f"{c} {step[c]:.3f}" for c in columns) + " (cells: card x value; use_chip by year too; gap by previous hour)"
                + (" after the last update" if r == iterations else ""))
    synth.marginals = m
    return m
