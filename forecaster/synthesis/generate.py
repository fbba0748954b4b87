"""Generate synthetic credit-card histories from a trained synthesis run (the day-level model).

``Synthesizer(run_dir).generate(...)`` returns a typed TabFormer table (the
columns and dtypes of ``data_sources.tabformer``), one synthetic card history per
sampled path, many paths per step (``DaySampler``: one global step and one short
local pass per transaction):

- **unconditional**: every path starts from one neutral seed row built from the
  run's aggregate statistics (modes, median amount), with its card index and the
  month its clock starts in drawn jointly from the training rows' transactions per
  card and month (systematic sampling over the pairs); the card token stays forced in every row (one card per history). The
  first ``burn_in`` rows are sampled and thrown away, so the kept rows are
  conditioned only on the model's own rows;
- **fixed column values** (``conditions={"is_fraud": True, "merchant_state":
  "CA"}``): the column's tokens are forced in every row, the other columns are
  sampled given them;
- **continuation** (``context=table``): for every (user, card) of ``context``
  its latest rows are the prompt and ``rows`` new rows follow, with the same
  user and card ids, the clock going on from the card's last transaction.

Time is sampled, not sorted: each row draws the gap since the previous row, then a
time of day inside that gap's bin (``clock.PathClock``), so a history is in time
order by construction. Every token is drawn among the ids valid at its slot and
the tokenizer's per-prefix mask (constrained decoding), so every row decodes.
Synthetic users get ids from ``SYNTHETIC_USER_BASE`` up.

``dedupe`` (a ``privacy.NearCopyIndex`` of the training rows) drops the rows that
equal a training row in every column but the time (with ``dedupe_tolerance``: and an
amount within that many dollars); a dropped row takes the whole days of its gap
with it, so the history's pace and order stay; each history samples more rows than
asked to make up for them (see docs/SYNTHESIS.md, privacy by design). ``amount_noise``
multiplies every new amount by a log-normal factor first (its spread: 0.03 ~ 3%).

**Marginal calibration.** A run calibrated by ``synth calibrate`` (``marginals.json``,
``forecaster.synthesis.marginals``) samples with log-biases added to the model's logits:
each card's merchants and yearly chip use, and the gap by the previous row's hour, keep
their training shares; ``marginals=False`` samples the model's own distribution.

**Blocks.** New histories are cut into blocks of ``batch_paths`` (default 256): a
block is sampled in one batch, and its start points and sampler are seeded from
``(seed, block index)`` only (``block_seed``), so a block is the same table whoever
samples it. Without a scheduler the blocks run one after another here; with one
(``scheduler="local:2"`` or ``"tcp://HOST:PORT"``, ``forecaster.synthesis.distributed``)
each block is a Dask task; either way the table is the blocks in order, the same
table (same seed, same ``batch_paths``, same device).

**Device.** ``Synthesizer(run, device="auto"|"cpu"|"cuda[:N]")`` samples there
(``forecaster.core.device``: the model, its KV caches and the generator; bf16 autocast
on GPUs that support it); the spec is resolved on the first sampling, so a client that
only hands blocks to Dask workers never needs the GPU its workers use.
"""
from __future__ import annotations

import hashlib
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
from forecaster.core.device import Device, as_device, parse_device
from forecaster.core.run import RunDir
from forecaster.core.daymodel import DayGPT
from forecaster.core.daysampler import DaySampler
from forecaster.core.sampler import SamplingConfig, make_generator
from forecaster.core.tokenizer import CategoryCodec
from forecaster.synthesis.documents import (
    KEY_FACTOR, MODEL_COLUMNS, ROW_COLUMNS, SYNTHETIC_USER_BASE, SynthesisInputError, card_rows, check_table,
    document_keys, order_cards, row_features,
)
from forecaster.synthesis.clock import PathClock
from forecaster.synthesis.marginals import MARGINALS_FILE, BiasedMask, Marginals
from forecaster.synthesis.privacy import NearCopyIndex
from forecaster.synthesis.train import SYNTHESIS_FILE, VERSION


def _row_mask(tok):
    """``(static (R, V) bool, step_mask)``: the per-slot ids a synthetic row may hold and the per-prefix mask.

    A category's "unknown" id decodes to a missing value: never a value a synthetic
    row may have, so it is removed from both. The step mask adds the tokenizer's
    ``constrained_mask`` (canonical missing values) given the ids already drawn.
    """
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

    return static, step_mask


class ConditionError(UserError):
    """A ``--condition`` that names an unknown column or a value the model never saw."""


#: columns that can be fixed with a condition (one token each)
CONDITION_COLUMNS: tuple[str, ...] = ("card", "use_chip", "merchant_name", "merchant_city", "merchant_state",
                                      "zip", "mcc", "errors", "is_fraud")


DEFAULT_BLOCK = 256  # histories per block (``batch_paths``): one batch, one Dask task


@dataclass
class GenerationStats:
    """What one ``generate`` call (or one block) did; ``rows_per_s`` counts kept rows over the wall time."""

    rows: int = 0
    histories: int = 0
    sampled_rows: int = 0          # kept + burn-in rows
    out_of_order_rows: int = 0     # rows earlier than the row before them in their history (0 by construction)
    near_copies_dropped: int = 0   # rows dropped as near-copies of training rows (``dedupe``)
    seconds: float = 0.0
    rows_per_s: float = 0.0
    conditions: dict = field(default_factory=dict)
    blocks: int = 0                # blocks sampled (``batch_paths`` histories each)
    device: str = ""               # where they were sampled ("cpu", "cuda:0"; several: comma-separated)
    calibrated: bool = False       # the run's marginal calibration was added (``synth calibrate``)

    def add(self, block: "GenerationStats") -> None:
        """Count a block's rows, histories and drops in; its device joins the list."""
        for name in ("rows", "histories", "sampled_rows", "out_of_order_rows", "near_copies_dropped", "blocks"):
            setattr(self, name, getattr(self, name) + getattr(block, name))
        devices = [d for d in self.device.split(", ") if d]
        if block.device and block.device not in devices:
            self.device = ", ".join(devices + [block.device])

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Block:
    """One unit of generation: a batch, and one Dask task with a scheduler.

    New histories: ``n`` histories numbered from ``first`` (users ``SYNTHETIC_USER_BASE + first``
    on), seeded by ``block_seed(seed, index)``. Continuation: the context cards ``first ..
    first + n - 1`` (their rows in ``context``), card ``i`` seeded ``seed + i``.
    """

    index: int
    first: int
    n: int
    context: pd.DataFrame | None = None


@dataclass(frozen=True)
class GenerationPlan:
    """The checked arguments of one ``generate`` call, shared by all its blocks (``Synthesizer.plan``)."""

    rows: int                  # total rows (new histories) or new rows per card (continuation)
    rows_per_history: int
    forced_row: np.ndarray     # (tokens_per_row,) ids fixed by the conditions, -1 elsewhere
    conditions: dict
    sampling: SamplingConfig
    seed: int
    burn: int                  # rows sampled and dropped before a new history's first row
    keep: int                  # rows sampled after the burn-in (more than rows_per_history with dedupe)
    dedupe_tolerance: float
    continuation: bool
    amount_noise: float = 0.0  # sd of the log-normal factor on new histories' amounts (0: none)
    marginals: bool = True     # add the run's marginal calibration (``marginals.json``) where it has one

    def stats_conditions(self) -> dict:
        return {k: (None if v is None else str(v)) for k, v in self.conditions.items()}


def block_seed(seed: int, block: int) -> tuple[int, np.random.Generator]:
    """Block ``block``'s sampler seed and the generator of its start points (cards, months, days).

    A function of ``(seed, block)`` only (numpy's ``SeedSequence``), so a block draws the same
    histories in any process, in any order, whatever the other blocks do.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(block)]))
    return int(rng.integers(0, 2**63)), rng


def systematic_picks(weights, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indexes into ``weights`` by systematic sampling, shuffled: one uniform offset and evenly
    spaced points of the cumulative distribution, so index ``i`` is drawn ``n * w_i / sum(w)``
    times, rounded up or down (never the luck of ``n`` independent draws)."""
    cdf = np.cumsum(np.asarray(weights, float))
    cdf /= cdf[-1]
    picks = np.minimum(np.searchsorted(cdf, (rng.random() + np.arange(n)) / n, side="right"), len(cdf) - 1)
    return picks[rng.permutation(n)]


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
    """A trained synthesis run (or an exported model folder), ready to sample. ``which``: "best" or "last" weights.

    ``device``: where it samples, a ``Device`` or a ``--device`` spec (``"auto"``, ``"cpu"``,
    ``"cuda:0"``; None: the CPU). A spec that is not a device name is refused here; it is
    resolved (an unusable GPU refused) on the first sampling (``device``).
    """

    def __init__(self, run_dir: str | Path, which: str = "best", device: Device | str | None = None) -> None:
        run = RunDir(run_dir)
        for path in (run.tokenizer, run.path / SYNTHESIS_FILE):
            if not path.exists():
                raise SynthesisInputError(f"{run.path} is not a synthesis run (no {path.name}); "
                                          "train one with `forecaster synth train`")
        self.run_dir = run.path
        self.tok = run.load_tokenizer()
        self.meta = json.loads((run.path / SYNTHESIS_FILE).read_text())
        if self.meta.get("version") != VERSION or list(self.tok.columns) != list(ROW_COLUMNS):
            raise SynthesisInputError(f"{run.path} is a synthesis run of an older format (calendar parts, flat "
                                      "model); retrain it with `forecaster synth train`")
        self.model = run.load_model(which, fingerprint=self.tok.fingerprint())
        assert isinstance(self.model, DayGPT), "a synthesis run of this version holds a day-level model"
        self.row_len = self.tok.tokens_per_row
        self.context_rows = self.model.config.context_rows
        self.static, self.base_mask = _row_mask(self.tok)
        self._digest: str | None = None
        self.marginals: Marginals | None = None  # ``synth calibrate``'s biases; None: none
        self.marginals_error: str | None = None  # why the folder's file could not be read (refused when used)
        try:
            self.marginals = Marginals.load(run.path, self.tok)
        except SynthesisInputError as e:
            self.marginals_error = str(e)
        self.which = which
        if isinstance(device, str):
            parse_device(device)
        self.device_spec = device
        self._device: Device | None = None

    @property
    def device(self) -> Device:
        """The resolved device; the model moves there on first use."""
        if self._device is None:
            dev = as_device(self.device_spec)
            self.model.to(dev.torch)
            self._device = dev
        return self._device

    # -- pieces ----------------------------------------------------------------------------------
    def _typed(self, frame: pd.DataFrame, times: np.ndarray) -> pd.DataFrame:
        """Decoded rows + their timestamps (datetime64[m]) -> the typed columns of ``data_sources.tabformer``."""
        out = {}
        for col in MODEL_COLUMNS:
            if col == "timestamp":
                out[col] = pd.Series(times.astype("datetime64[ns]")).astype(TYPED_DTYPES[col]).to_numpy()
                continue
            s = frame[col]
            if col == "is_fraud":
                out[col] = s.astype(str).str.lower().isin(["true", "yes"]).to_numpy()
            elif isinstance(TYPED_DTYPES[col], pd.CategoricalDtype):
                out[col] = pd.Categorical(np.asarray(s.astype(object)), dtype=TYPED_DTYPES[col])
            else:
                out[col] = s.astype(TYPED_DTYPES[col])
        return pd.DataFrame(out)

    def start_points(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (card, start minute) pairs, drawn by systematic sampling (one uniform offset, evenly
        spaced points of the cumulative distribution, shuffled), so even a few histories cover the
        training data in proportion; a uniform day of the month, noon.

        The (card, month) pairs are drawn jointly from the training rows' transactions per card and
        month (``seed.card_months``): every history starts in a month its card was used in (a card
        issued in 2010 never starts a history in 2004). A run trained before that table existed
        (``start_note`` says so) draws the card and the month independently from their marginals.
        """
        st = self.meta["seed"]
        if st.get("card_months"):
            pairs = st["card_months"]  # [[card, "YYYY-MM", weight], ...] sorted by card, then month
            picks = systematic_picks([w for _, _, w in pairs], n, rng)
            cards = np.array([pairs[i][0] for i in picks], dtype=np.int64)
            months = [pairs[i][1] for i in picks]
        else:
            keys = list(st["cards"])
            cards = np.array(keys, dtype=object)[systematic_picks(list(st["cards"].values()), n, rng)]
            cards = cards.astype(np.int64)
            mkeys = list(st["months"])
            months = list(np.array(mkeys, dtype=object)[systematic_picks(list(st["months"].values()), n, rng)])
        month = pd.PeriodIndex(months, freq="M")
        days = rng.integers(0, month.days_in_month.to_numpy())
        start = month.to_timestamp().to_numpy().astype("datetime64[m]") + days.astype("timedelta64[D]") \
            + np.timedelta64(12, "h")
        return cards, start.astype(np.int64)

    def start_use_chip(self, cards: np.ndarray, start: np.ndarray) -> np.ndarray | None:
        """Per history, its card's most common use_chip in the month it starts (``seed.card_month_use_chip``),
        the mode over all rows where the pair is unknown; None for a run without the table.

        The burn-in rows are forced to it: a card that had switched to chip by that month starts as
        a chip card (the model carries a card's way of use from row to row; from the neutral seed
        row's overall mode, swipe, it would not switch by itself)."""
        table = self.meta["seed"].get("card_month_use_chip")
        if not table:
            return None
        lookup = {(int(c), str(m)): v for c, m, v in table}
        months = pd.Series(start.astype("datetime64[m]")).dt.to_period("M").astype(str)
        mode = self.meta["seed"]["modes"]["use_chip"]
        return np.array([lookup.get((int(c), m), mode) for c, m in zip(cards, months)], dtype=object)

    @property
    def start_note(self) -> str | None:
        """None, or why this run draws a history's card and start month independently (an older run)."""
        if self.meta["seed"].get("card_months"):
            return None
        return (f"note: {self.run_dir} predates the joint (card, month) table: each history's card and start month "
                "are drawn independently (a card may start in a month it was never used in); rerun `forecaster "
                "synth train` with the same --data and --out to add the table (a finished run is not trained further)")

    def seed_frame(self, card: int = 0) -> pd.DataFrame:
        """One neutral row of ``ROW_COLUMNS``: the modes, the median amount, no previous transaction, noon."""
        st = self.meta["seed"]
        row = {"card": [card], "gap": [np.nan], "hour": [12], "minute": [0]}
        for col, value in st["modes"].items():
            row[col] = [value]
        frame = pd.DataFrame(row)
        for col in ROW_COLUMNS:
            if col in TYPED_DTYPES:
                frame[col] = frame[col].astype(TYPED_DTYPES[col])
        return frame[list(ROW_COLUMNS)]

    def condition_ids(self, conditions: dict[str, object]) -> np.ndarray:
        """(tokens_per_row,) ids with the conditioned columns' tokens, -1 elsewhere."""
        forced = np.full(self.row_len, -1, dtype=np.int64)
        if not conditions:
            return forced
        row = self.seed_frame()
        for col, value in conditions.items():
            if col not in CONDITION_COLUMNS:
                raise ConditionError(f"cannot condition on {col!r}; use one of {', '.join(CONDITION_COLUMNS)}")
            row[col] = pd.Series([value]).astype(TYPED_DTYPES[col])
        ids, clamped = self.tok.encode_with_report(row)
        for col, value in conditions.items():
            if clamped.get(col) or ids[0, self.tok.column_slots(col)][0] not in np.flatnonzero(
                    self.static[self.tok.column_slots(col).start]):
                known = list(getattr(self.tok.codec(col), "categories", []))[:8]
                raise ConditionError(f"{col}={value!r} never occurs in the training data of {self.run_dir}; "
                                     f"known values include {known}")
            forced[self.tok.column_slots(col)] = ids[0, self.tok.column_slots(col)]
        return forced

    def sample_paths(self, prompt: np.ndarray, prompt_times: np.ndarray, start: np.ndarray, forced: np.ndarray,
                     n_rows: int, seed: int, sampling: SamplingConfig,
                     marginals: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``n_rows`` rows after a prompt for ``len(start)`` paths.

        Parameters
        ----------
        prompt : (P, R) ids shared by every path; ``prompt_times`` (P,) int64 minutes of its rows.
        start : (N,) int64 minutes each path's clock starts from (its first row follows it).
        forced : (N, n_rows, R) ids, -1 = free.
        marginals : add the marginal calibration's log-biases (``self.marginals``), if any.

        Returns
        -------
        ids (N, n_rows, R) int64 and times (N, n_rows) int64 minutes since 1970, non-decreasing per path.
        """
        dev = self.device
        clock = PathClock(self.tok, self.base_mask, start, prompt_rows=len(prompt))
        mask = BiasedMask(self.tok, clock, self.marginals) if marginals and self.marginals is not None else clock
        gap = self.tok.decode(prompt)["gap"].to_numpy(dtype=np.float64)
        feats = row_features(np.asarray(prompt_times).astype("datetime64[m]"), gap)
        sampler = DaySampler(self.model, torch.from_numpy(self.static), keep_rows=max(1, self.context_rows // 2),
                             next_features=clock.features, step_mask=mask)
        with dev.autocast():  # bf16 on GPUs that support it; a no-op on the CPU
            ids = sampler.sample(torch.from_numpy(prompt), len(start), n_rows, make_generator(seed, dev.torch),
                                 sampling, forced=torch.from_numpy(forced), features=torch.from_numpy(feats))
        ids = ids.cpu().numpy()
        if len(clock.times) < n_rows:  # the sampler gives no features after the last row: finish the clock
            clock.advance(ids[:, n_rows - 1])
        return ids, np.stack(clock.times, axis=1)

    def _table(self, ids: np.ndarray, times: np.ndarray, users: np.ndarray, cards: np.ndarray | None) -> pd.DataFrame:
        """(paths, rows, R) ids and (paths, rows) minutes -> one typed table, path by path (no re-sorting)."""
        n_paths, n_rows, _ = ids.shape
        frame = self._typed(self.tok.decode(ids.reshape(-1, self.row_len)), times.reshape(-1).astype("datetime64[m]"))
        frame.insert(0, "user", np.repeat(users, n_rows).astype(TYPED_DTYPES["user"]))
        if cards is not None:
            frame["card"] = np.repeat(cards, n_rows).astype(TYPED_DTYPES["card"])
        return frame[list(TYPED_COLUMNS)]

    # -- blocks ----------------------------------------------------------------------------------
    def plan(self, rows: int, *, rows_per_history: int = 200, conditions: dict[str, object] | None = None,
             context: pd.DataFrame | None = None, seed: int = 0, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, burn_in: int | None = None, batch_paths: int = DEFAULT_BLOCK,
             dedupe: bool = False, dedupe_tolerance: float = 0.0,
             dedupe_extra: float = 0.25, amount_noise: float = 0.0,
             marginals: bool = True) -> tuple[GenerationPlan, list[Block]]:
        """The arguments of ``generate`` checked and cut into blocks of ``batch_paths`` histories (or cards).

        Nothing is sampled. The blocks depend on the arguments only, never on who samples them:
        ``run_block`` gives the same table for a block in any process (same device).
        """
        if rows < 1:
            raise SynthesisInputError(f"rows must be at least 1, got {rows}")
        sampling = SamplingConfig(temperature, top_k, top_p)
        make_generator(seed)  # a seed torch cannot take is refused here, before any block
        if rows_per_history < 1:
            raise SynthesisInputError(f"rows per history must be at least 1, got {rows_per_history}")
        if batch_paths < 1:
            raise SynthesisInputError(f"batch paths must be at least 1, got {batch_paths}")
        if marginals and self.marginals is None and self.marginals_error:
            raise SynthesisInputError(self.marginals_error + " (or pass --no-marginals)")
        if marginals and self.marginals is not None and self.marginals.weights != self.weights_digest():
            raise SynthesisInputError(f"{self.run_dir / MARGINALS_FILE} was fitted for other weights than these "
                                      f"({self.which}); rerun `forecaster synth calibrate` or pass --no-marginals")
        if not (0.0 <= amount_noise <= 1.0):
            raise SynthesisInputError(f"amount noise is a relative spread from 0 to 1 (0.03: about 3%), got {amount_noise}")
        if amount_noise and context is not None:
            raise SynthesisInputError("amount noise applies to new histories; leave it out with a context")
        conditions = dict(conditions or {})
        forced_row = self.condition_ids(conditions)
        blocks: list[Block] = []
        if context is not None:
            check_table(context)
            keys = document_keys(context)
            cards = pd.unique(keys)
            for index, first in enumerate(range(0, len(cards), batch_paths)):
                mine = cards[first:first + batch_paths]
                blocks.append(Block(index, first, len(mine), context[np.isin(keys, mine)]))
            plan = GenerationPlan(rows, rows, forced_row, conditions, sampling, int(seed), 0, rows, dedupe_tolerance,
                                  True, marginals=bool(marginals))
            return plan, blocks
        rows_per_history = min(rows_per_history, rows)
        burn = 16 if burn_in is None else int(burn_in)
        if burn < 0:
            raise SynthesisInputError(f"burn-in must be at least 0 rows, got {burn}")
        keep = rows_per_history + (math.ceil(rows_per_history * dedupe_extra) if dedupe else 0)
        n_hist = math.ceil(rows / rows_per_history)
        for index, first in enumerate(range(0, n_hist, batch_paths)):
            blocks.append(Block(index, first, min(batch_paths, n_hist - first)))
        plan = GenerationPlan(rows, rows_per_history, forced_row, conditions, sampling, int(seed), burn, keep,
                              dedupe_tolerance, False, float(amount_noise), bool(marginals))
        return plan, blocks

    def run_block(self, plan: GenerationPlan, block: Block,
                  dedupe: NearCopyIndex | None = None) -> tuple[pd.DataFrame, GenerationStats]:
        """Sample one block of ``plan`` on this synthesizer's device: its table (history by history, in
        time order as sampled; each new history at most ``plan.rows_per_history`` rows) and its stats."""
        stats = GenerationStats(conditions=plan.stats_conditions(), device=str(self.device), blocks=1)
        card_sl = self.tok.column_slots("card")
        forced_row = plan.forced_row
        if plan.continuation:
            tables = []
            keys = document_keys(block.context)
            for i, key in enumerate(pd.unique(keys), start=block.first):
                hist = order_cards(block.context[keys == key]).tail(self.context_rows)
                prompt = self.tok.encode(card_rows(hist))
                prompt_times = hist["timestamp"].to_numpy().astype("datetime64[m]").astype(np.int64)
                forced = np.broadcast_to(forced_row, (1, plan.rows, self.row_len)).copy()
                if forced_row[card_sl][0] < 0 and bool(self.static[card_sl.start, prompt[-1, card_sl][0]]):
                    forced[:, :, card_sl] = prompt[-1, card_sl]  # the card of the context stays the card
                ids, times = self.sample_paths(prompt, prompt_times, prompt_times[-1:], forced, plan.rows,
                                               plan.seed + i, plan.sampling, plan.marginals)
                tables.append(self._table(ids, times, np.array([key // KEY_FACTOR]), np.array([key % KEY_FACTOR])))
                stats.out_of_order_rows += int((np.diff(times, axis=1) < 0).sum())
                stats.histories += 1
                stats.sampled_rows += plan.rows
            table = pd.concat(tables, ignore_index=True)
            stats.rows = len(table)
            return table, stats
        n_paths, burn = block.n, plan.burn
        n_total = burn + plan.keep
        torch_seed, rng = block_seed(plan.seed, block.index)
        prompt = self.tok.encode(self.seed_frame())
        cards, start = self.start_points(n_paths, rng)
        seeds = self.seed_frame().iloc[[0] * n_paths].reset_index(drop=True)
        seeds["card"] = pd.Series(cards).astype(TYPED_DTYPES["card"])
        prime = self.start_use_chip(cards, start)
        if prime is not None:
            seeds["use_chip"] = pd.Series(prime).astype(TYPED_DTYPES["use_chip"])
        seed_ids = self.tok.encode(seeds)
        forced = np.broadcast_to(forced_row, (n_paths, n_total, self.row_len)).copy()
        # one card per history: its card token is forced in every row (a condition on card wins)
        forced[:, :, card_sl] = np.where(forced[:, :, card_sl] >= 0, forced[:, :, card_sl], seed_ids[:, None, card_sl])
        if prime is not None and burn > 0:  # the burn-in rows use the card the way it was used that month
            chip_sl = self.tok.column_slots("use_chip")
            forced[:, :burn, chip_sl] = np.where(forced[:, :burn, chip_sl] >= 0, forced[:, :burn, chip_sl],
                                                 seed_ids[:, None, chip_sl])
        ids, times = self.sample_paths(prompt, start[:1], start, forced, n_total, torch_seed, plan.sampling,
                                       plan.marginals)
        prev = times[:, burn - 1:burn] if burn > 0 else start[:, None]
        ids, times = ids[:, burn:], times[:, burn:]
        users = SYNTHETIC_USER_BASE + np.arange(block.first, block.first + n_paths)
        table = self._table(ids, times, users, None)
        stats.out_of_order_rows += int((np.diff(times, axis=1) < 0).sum())
        if plan.amount_noise > 0:  # after the start points: the block's generator, so the block stays reproducible
            factor = np.exp(rng.normal(0.0, plan.amount_noise, len(table)))
            table["amount"] = np.round(table["amount"].to_numpy(np.float64) * factor, 2)
        if dedupe is not None:
            drop = dedupe.close(table, plan.dedupe_tolerance).reshape(n_paths, -1)
            stats.near_copies_dropped += int(drop.sum())
            gaps = np.diff(np.concatenate([prev, times], axis=1), axis=1)  # (N, n) minutes since the row before
            shift = np.cumsum(np.where(drop, gaps // 1440 * 1440, 0), axis=1)  # whole days only
            table["timestamp"] = (times - shift).reshape(-1).astype("datetime64[m]").astype("datetime64[ns]")
            table = table[~drop.reshape(-1)]
        table = table[table.groupby("user", sort=False).cumcount() < plan.rows_per_history].reset_index(drop=True)
        stats.histories += n_paths
        stats.sampled_rows += n_paths * n_total
        stats.rows = len(table)
        return table, stats

    def weights_digest(self) -> str:
        """sha256 of the loaded weights (every tensor, by name): a Dask worker checks that it loaded the
        client's, and a marginal calibration that it was fitted for them."""
        if self._digest is not None:
            return self._digest
        h = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self._digest = h.hexdigest()
        return self._digest

    # -- public ------------------------------------------------------------------------------------
    def generate(self, rows: int, *, rows_per_history: int = 200, conditions: dict[str, object] | None = None,
                 context: pd.DataFrame | None = None, seed: int = 0, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, burn_in: int | None = None,
                 batch_paths: int = DEFAULT_BLOCK, dedupe: NearCopyIndex | None = None, dedupe_tolerance: float = 0.0,
                 dedupe_extra: float = 0.25, amount_noise: float = 0.0, marginals: bool = True,
                 scheduler: str | None = None,
                 threads: int | None = None,
                 progress: Callable[[int], None] | None = None,
                 log: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, GenerationStats]:
        """Sample synthetic transactions.

        Parameters
        ----------
        rows : unconditional: total rows (``ceil(rows / rows_per_history)`` histories, the
            last one cut); with ``context``: new rows per context card.
        rows_per_history : rows of one synthetic card history (unconditional mode).
        conditions : {column: typed value} fixed in every row (see ``parse_condition``).
        context : typed table whose cards are continued (their ids are kept).
        burn_in : rows sampled after the seed row and dropped (default 16).
        batch_paths : histories (with ``context``: cards) per block. A block is sampled in one
            batch (one model step covers all of its histories) and is one Dask task; its histories
            are seeded by ``(seed, block index)`` (``block_seed``), so the table depends on
            ``seed`` and ``batch_paths``, never on the scheduler or the number of workers.
        dedupe : the training rows (``privacy.NearCopyIndex``): a row equal to one of them in
            every column but the time, with an amount within ``dedupe_tolerance`` dollars, is
            dropped, and the later rows of its history move back by the whole days of its gap
            (times of day and order kept); ``dedupe_extra`` more rows per history are sampled
            to make up for them (a history may end shorter; counted in the stats).
        amount_noise : new histories only: every amount is multiplied by ``exp(N(0, amount_noise))``
            (0.03: about 3% either way) and rounded to cents, before de-duplication; it moves
            the rows away from the training rows' exact amounts (the median DCR, docs/SYNTHESIS.md)
            at the cost of exact recurring amounts. The block's generator draws it.
        marginals : add the run's marginal calibration (``synth calibrate``, ``marginals``) where it
            has one: per-card log-biases that give the merchants their training shares. False: the
            model's own distribution.
        scheduler : None (blocks one after another here) or a Dask ``--scheduler``
            (``local:N``, ``tcp://HOST:PORT``, ``foundation.cluster``): one task per block; every
            worker loads ``self.run_dir`` itself (shared storage) on this synthesizer's device
            spec, resolved there, and the table is assembled here in block order.
        threads : torch CPU threads per Dask task (default 1); ignored without a scheduler.
        progress : called with the number of rows kept so far.
        log : called with a line about the split (blocks and workers) when a scheduler is used, and
            with ``start_note`` when the run predates the joint (card, month) table.

        Returns
        -------
        (table, stats): a typed TabFormer table, history by history, each in time order as
        sampled; and ``GenerationStats``.
        """
        plan, blocks = self.plan(rows, rows_per_history=rows_per_history, conditions=conditions, context=context,
                                 seed=seed, temperature=temperature, top_k=top_k, top_p=top_p, burn_in=burn_in,
                                 batch_paths=batch_paths, dedupe=dedupe is not None,
                                 dedupe_tolerance=dedupe_tolerance, dedupe_extra=dedupe_extra,
                                 amount_noise=amount_noise, marginals=marginals)
        if not plan.continuation and self.start_note and log is not None:
            log(self.start_note)
        t0 = time.perf_counter()
        done = [0]

        def finished(part: pd.DataFrame) -> None:
            done[0] += len(part)
            if progress is not None:
                progress(done[0] if plan.continuation else min(done[0], plan.rows))

        if scheduler is not None:
            from forecaster.synthesis.distributed import run_blocks  # deferred: it imports this module

            parts = run_blocks(self, plan, blocks, dedupe, scheduler, threads=threads,
                               on_block=lambda part: finished(part[0]), log=log)
        else:
            parts = []
            for block in blocks:
                parts.append(self.run_block(plan, block, dedupe))
                finished(parts[-1][0])
        out = pd.concat([table for table, _ in parts], ignore_index=True)
        if not plan.continuation:
            out = out.iloc[:plan.rows].reset_index(drop=True)
        stats = GenerationStats(conditions=plan.stats_conditions(),
                                calibrated=bool(plan.marginals and self.marginals is not None))
        for _, part in parts:
            stats.add(part)
        stats.rows = len(out)
        stats.seconds = time.perf_counter() - t0
        stats.rows_per_s = stats.rows / max(stats.seconds, 1e-9)
        return out, stats
