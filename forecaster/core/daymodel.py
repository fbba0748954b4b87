"""A day-level GPT with a within-day decoder (MEGABYTE / RQ-Transformer for table rows).

The flat :class:`~forecaster.core.model.GPT` spends one transformer step per token, so
its context is a few days (8 days x 22 tokens = 176 positions for the `small` preset)
and a day costs ``row_len`` full steps to sample. Here the two jobs are split:

* the **global** model is a causal transformer whose positions are *rows* (days). Its
  input for row ``t`` is the sum of the token embeddings of row ``t``, plus a linear
  projection of row ``t``'s feature vector (inputs only, never predicted), plus a
  learned row-position embedding. Its output at row ``t`` is a state that predicts row
  ``t + 1``. A context of 256 rows costs 256 positions, not 5,632;
* the **local** decoder is a small causal transformer over the ``row_len`` slots of
  the row being predicted. Its input at local position 0 is the projected global state;
  at position ``s > 0`` the embedding of the row's token ``s - 1``; every position adds
  a slot embedding. Its output at position ``s`` gives the logits of slot ``s``. The
  dependence between series on the same day (co-movement) is its short-range job.

Why a sum of token embeddings for the row (not concatenation + projection): in a
``TableTokenizer`` every slot owns a disjoint id range, so a per-id embedding already
is a per-(slot, id) embedding; the sum is then exactly as expressive as concatenating
per-slot embeddings and projecting (both are linear in the row's one-hot tokens), costs
no ``row_len * n_embd * n_embd`` projection, and works for any ``row_len``. A slot
embedding added to every term of a sum would only add a constant, so the global model
has none; the local decoder has one, where it is its position embedding.

Training (:meth:`DayGPT.forward`): rows ``(B, T, R)`` -> the mean cross-entropy of rows
``1 .. T-1`` predicted from rows ``0 .. T-2`` (teacher forcing in both levels). With a
:class:`SlotVocab` the logits of slot ``s`` are computed for that slot's valid ids only:
the same loss as masking every other id to ``-inf``, in about ``1 / row_len`` of the
memory of full-vocabulary logits (which would be ``B * T * R * V`` floats).

Sampling (see :mod:`forecaster.core.daysampler`) uses one :class:`KVCache` per level:
the global one over rows (one step per day), the local one within the row being drawn
(``row_len`` small steps per day).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from foundation.dataclass_io import JsonConfig
from foundation.errors import UserError
from forecaster.core.model import MAX_PARAMS, Block, GPTConfig, KVCache

# Generous bounds (far beyond any preset); an absurd hand-edited value is refused before
# any memory is allocated.
_BOUNDS = {"vocab_size": (2, 1 << 24), "row_len": (1, 1 << 16), "n_features": (0, 1 << 16),
           "context_rows": (2, 1 << 20), "n_layer": (1, 512), "n_head": (1, 1024), "n_embd": (1, 1 << 16),
           "local_n_layer": (1, 64), "local_n_head": (1, 256), "local_n_embd": (1, 1 << 14)}


@dataclass
class DayGPTConfig(JsonConfig):
    """Shape of a :class:`DayGPT`; saved as JSON and rebuilt with :meth:`from_dict` (unknown keys refused)."""

    _error = UserError
    _what = "day model config"

    vocab_size: int = 512
    row_len: int = 16          # tokens per row R, delimiter included
    n_features: int = 0        # per-row input features F (0 = none)
    context_rows: int = 256    # rows the global model attends to
    n_layer: int = 4           # global transformer
    n_head: int = 4
    n_kv_head: int | None = None  # global key/value heads (grouped-query attention); None = n_head
    n_embd: int = 128
    local_n_layer: int = 2     # within-row decoder
    local_n_head: int = 2
    local_n_embd: int = 64
    dropout: float = 0.0
    # training only: each past row's slot embeddings and feature values are dropped with this
    # probability (the rest scaled up), so the global model cannot identify a day by its exact
    # history and must learn what generalises (and leave within-day links to the local decoder)
    input_dropout: float = 0.0
    # training only: the local decoder gets no global state (zeros) for a row with this probability,
    # so it must learn the within-day joint distribution of the series (SPX with XLK and VIX) from
    # the row's own earlier slots instead of reading each series' move off a memorised day's state
    state_dropout: float = 0.0
    # the global state enters the local decoder at position 0 only ("first", as the RQ-Transformer),
    # or also added to every slot through a projection of its own per slot ("every", as MEGABYTE
    # gives each local position its own slice of the global output): each series' draw then reads
    # the day's state directly instead of through the local attention
    local_state: str = "first"
    bias: bool = False

    def __post_init__(self) -> None:
        """Refuse shapes that cannot be built with a one-line ``UserError`` (user input: no asserts)."""
        for name, (lo, hi) in _BOUNDS.items():
            self.check_whole(name, lo, hi)
        if self.n_kv_head is not None:
            self.check_whole("n_kv_head", 1, self.n_head)
            if self.n_head % self.n_kv_head:
                raise UserError(f"day model config: n_head={self.n_head} must be a multiple of n_kv_head={self.n_kv_head}")
        for width, heads in (("n_embd", "n_head"), ("local_n_embd", "local_n_head")):
            if getattr(self, width) % getattr(self, heads):
                raise UserError(f"day model config: {width}={getattr(self, width)} is not divisible by "
                                f"{heads}={getattr(self, heads)}")
        self.check_fraction("dropout")
        self.check_fraction("input_dropout")
        self.check_fraction("state_dropout")
        if self.local_state not in ("first", "every"):
            raise UserError(f"day model config: local_state must be 'first' or 'every', got {self.local_state!r}")
        self.check_flag("bias")
        n = self.approx_params()
        if n > MAX_PARAMS:
            raise UserError(f"day model config asks for about {n:,.0f} parameters, more than the {MAX_PARAMS:,} "
                            "this program builds; check the layers, widths and vocab_size")

    def approx_params(self) -> int:
        """Parameter count of this shape, without building the model."""
        def blocks(c: int, heads: int, kv_heads: int, n: int) -> int:
            kv = kv_heads * (c // heads)
            return n * (c * (c + 2 * kv) + c * c + 8 * c * c + 4 * c) + c

        g, l = self.n_embd, self.local_n_embd
        return ((self.vocab_size + self.context_rows + self.n_features) * g + blocks(g, self.n_head, self.kv_heads, self.n_layer)
                + g * l + (self.vocab_size + self.row_len) * l + blocks(l, self.local_n_head, self.local_n_head, self.local_n_layer))

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    def global_shape(self) -> GPTConfig:
        """The global transformer's blocks as a ``GPTConfig`` (what ``Block`` reads); positions are rows."""
        return GPTConfig(vocab_size=self.vocab_size, row_len=1, block_size=self.context_rows, n_layer=self.n_layer,
                         n_head=self.n_head, n_kv_head=self.n_kv_head, n_embd=self.n_embd,
                         dropout=self.dropout, bias=self.bias)

    def local_shape(self) -> GPTConfig:
        """The local decoder's blocks as a ``GPTConfig``; positions are the slots of one row."""
        return GPTConfig(vocab_size=self.vocab_size, row_len=1, block_size=self.row_len, n_layer=self.local_n_layer,
                         n_head=self.local_n_head, n_embd=self.local_n_embd, dropout=self.dropout, bias=self.bias)


class SlotVocab:
    """The valid ids of every slot, padded to one rectangle, for per-slot logits.

    Built from the tokenizer's ``valid_mask`` ``(R, V)``: ``ids (R, K)`` lists slot ``s``'s
    valid ids (``K`` = the largest count, padded with 0), ``real (R, K)`` marks the
    non-padding entries, ``index (R, V)`` maps an id to its column in ``ids[s]`` (-1 where
    not valid).
    """

    def __init__(self, valid_mask: torch.Tensor) -> None:
        mask = torch.as_tensor(valid_mask, dtype=torch.bool)
        assert mask.dim() == 2 and bool(mask.any(dim=1).all()), "valid_mask must be (R, V) with a valid id in every slot"
        R, V = mask.shape
        counts = mask.sum(dim=1)
        K = int(counts.max())
        self.ids = torch.zeros(R, K, dtype=torch.long)
        self.real = torch.arange(K)[None, :] < counts[:, None]  # (R, K)
        self.index = torch.full((R, V), -1, dtype=torch.long)
        for s in range(R):
            v = torch.nonzero(mask[s]).flatten()
            self.ids[s, : len(v)] = v
            self.index[s, v] = torch.arange(len(v))
        self.mask = mask

    def to(self, device: torch.device | str) -> "SlotVocab":
        new = SlotVocab.__new__(SlotVocab)
        for name in ("ids", "real", "index", "mask"):
            setattr(new, name, getattr(self, name).to(device))
        return new

    def slot_ids(self, slot: int) -> torch.Tensor:
        """(n_valid,) the valid ids of ``slot``, ascending."""
        return self.ids[slot, self.real[slot]]


class DayGPT(nn.Module):
    """Rows of token ids ``(B, T, R)`` (+ features ``(B, T, F)``) -> logits of the next rows, slot by slot."""

    def __init__(self, config: DayGPTConfig) -> None:
        super().__init__()
        self.config = config
        g, loc = config.global_shape(), config.local_shape()
        self.glob = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),   # summed over a row's tokens
            wpe=nn.Embedding(config.context_rows, config.n_embd),  # row position
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(g, i) for i in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        # features are inputs only; F = 0 has no projection at all
        self.feat_proj = nn.Linear(config.n_features, config.n_embd, bias=config.bias) if config.n_features else None
        self.local = nn.ModuleDict(dict(
            state_proj=nn.Linear(config.n_embd, config.local_n_embd, bias=config.bias),
            wte=nn.Embedding(config.vocab_size, config.local_n_embd),
            wse=nn.Embedding(config.row_len, config.local_n_embd),  # slot = local position
            drop=nn.Dropout(config.dropout),
            **({"state_slots": nn.Linear(config.n_embd, config.row_len * config.local_n_embd, bias=config.bias)}
               if config.local_state == "every" else {}),
            h=nn.ModuleList([Block(loc, i) for i in range(config.local_n_layer)]),
            ln_f=nn.LayerNorm(config.local_n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.local_n_embd, config.vocab_size, bias=False)
        self.local.wte.weight = self.lm_head.weight  # weight tying, as nanoGPT
        self.apply(self._init_weights)
        # GPT-2 scaled init of the residual projections, per level (its own depth)
        for blocks, depth in ((self.glob.h, config.n_layer), (self.local.h, config.local_n_layer)):
            for name, p in blocks.named_parameters():
                if name.endswith("c_proj.weight"):
                    torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * depth))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Number of parameters (the tied local embedding counted once)."""
        return sum(p.numel() for p in self.parameters())

    # -- caches -------------------------------------------------------------------------------
    def global_cache(self, batch_size: int) -> KVCache:
        """An empty cache over ``context_rows`` rows of the global model."""
        c, p = self.config, self.lm_head.weight
        return KVCache(c.n_layer, batch_size, c.kv_heads, c.context_rows, c.n_embd // c.n_head, p.dtype, p.device)

    def local_cache(self, batch_size: int) -> KVCache:
        """An empty cache over the ``row_len`` slots of one row (reset for every row)."""
        c, p = self.config, self.lm_head.weight
        return KVCache(c.local_n_layer, batch_size, c.local_n_head, c.row_len, c.local_n_embd // c.local_n_head,
                       p.dtype, p.device)

    # -- the two levels -----------------------------------------------------------------------
    def global_hidden(self, rows: torch.Tensor, features: torch.Tensor | None = None,
                      kv_cache: KVCache | None = None) -> torch.Tensor:
        """Global states ``(B, T, n_embd)`` of rows ``(B, T, R)``; the state at row ``t`` predicts row ``t+1``.

        ``features`` (B, T, F) float, required when ``n_features > 0``. With ``kv_cache`` the rows
        are appended after the cached ones (row positions continue from ``kv_cache.pos``).
        """
        B, T, R = rows.shape
        assert R == self.config.row_len, f"rows have {R} slots, the model {self.config.row_len}"
        start = kv_cache.pos if kv_cache is not None else 0
        assert start + T <= self.config.context_rows, (
            f"row positions up to {start + T} exceed context_rows={self.config.context_rows}")
        pos = torch.arange(start, start + T, dtype=torch.long, device=rows.device)
        # the row's token embeddings summed without materialising (B, T, R, C): a re-prefill of
        # 200 paths x 128 rows x 22 slots would otherwise build a 288 MB tensor
        p = self.config.input_dropout if self.training else 0.0
        weights = None
        if p > 0:  # input dropout (training only): drop whole slot embeddings of the past rows
            weights = (torch.rand(B * T, R, device=rows.device) >= p).to(self.glob.wte.weight.dtype) / (1 - p)
        x = F.embedding_bag(rows.reshape(B * T, R), self.glob.wte.weight, mode="sum",
                            per_sample_weights=weights).view(B, T, -1)
        x = x + self.glob.wpe(pos)                                        # (B, T, C)
        if self.feat_proj is not None:
            assert features is not None and features.shape == (B, T, self.config.n_features), (
                f"features must be (B, T, {self.config.n_features}), got "
                f"{None if features is None else tuple(features.shape)}")
            feats = features.to(x.dtype)
            if p > 0:
                feats = F.dropout(feats, p, training=True)
            x = x + self.feat_proj(feats)
        x = self.glob.drop(x)
        for block in self.glob.h:
            x = block(x, kv_cache)
        return self.glob.ln_f(x)                                          # (B, T, C)

    def local_hidden(self, state: torch.Tensor | None, ids: torch.Tensor,
                     kv_cache: KVCache | None = None) -> torch.Tensor:
        """Local decoder states ``(N, L, local_n_embd)``; position ``s`` gives slot ``s``'s logits.

        Parameters
        ----------
        state : (N, n_embd) global states, the input of local position 0; required when the
            local positions start at 0 (no cache, or an empty one). With ``local_state="every"``
            it is required at every call (each slot adds its own projection of it); otherwise
            it is None after position 0.
        ids : (N, k) tokens of the row being predicted, the inputs of the next ``k``
            local positions (token ``s-1`` is the input of position ``s``).
        kv_cache : a local cache; positions start at ``kv_cache.pos``.

        Returns ``L = k + 1`` positions when starting at 0, else ``L = k``.
        """
        start = kv_cache.pos if kv_cache is not None else 0
        every = self.config.local_state == "every"
        x = self.local.wte(ids)                                           # (N, k, Cl)
        if start == 0:
            assert state is not None, "local position 0 needs the global state"
            x = torch.cat([self.local.state_proj(state)[:, None, :], x], dim=1)  # (N, k+1, Cl)
        else:
            assert (state is not None) == every, ("the global state enters at every local position" if every
                                                  else "the global state enters at local position 0 only")
        L = x.size(1)
        assert start + L <= self.config.row_len, f"local positions up to {start + L} exceed row_len"
        x = x + self.local.wse(torch.arange(start, start + L, device=ids.device))
        if every:  # each slot's own projection of the day's state
            slots = self.local.state_slots(state).view(state.size(0), self.config.row_len, -1)  # (N, R, Cl)
            x = x + slots[:, start:start + L]
        x = self.local.drop(x)
        for block in self.local.h:
            x = block(x, kv_cache)
        return self.local.ln_f(x)                                         # (N, L, Cl)

    def slot_logits(self, hidden: torch.Tensor, vocab: SlotVocab | None = None) -> torch.Tensor:
        """Logits of local states ``(..., R, Cl)`` whose position ``s`` is slot ``s``.

        Without ``vocab``: ``(..., R, V)`` over the whole vocabulary. With it: ``(..., R, K)``
        over each slot's valid ids (``vocab.ids``), the padding at ``-inf``.
        """
        if vocab is None:
            return self.lm_head(hidden)
        w = self.lm_head.weight[vocab.ids]                                # (R, K, Cl)
        logits = torch.einsum("...rc,rkc->...rk", hidden, w)              # (..., R, K)
        return logits.masked_fill(~vocab.real, float("-inf"))

    def forward(self, rows: torch.Tensor, features: torch.Tensor | None = None, targets: bool = True,
                vocab: SlotVocab | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced logits of rows ``1 .. T-1`` and, with ``targets``, their mean cross-entropy.

        Parameters
        ----------
        rows : (B, T, R) int64 ids, ``2 <= T <= context_rows + 1`` (the last row is only a target).
        features : (B, T, F) float row features (the last row's are not used), or None when F = 0.
        targets : compute the loss against ``rows[:, 1:]``.
        vocab : per-slot valid ids; logits (and the softmax of the loss) cover only them.

        Returns
        -------
        logits (B, T-1, R, V), or (B, T-1, R, K) with ``vocab``; loss (scalar) or None.
        """
        B, T, R = rows.shape
        assert T >= 2, "a window needs at least two rows (one input, one target)"
        feats = features[:, :-1] if features is not None else None
        state = self.global_hidden(rows[:, :-1], feats).reshape(B * (T - 1), -1)  # (B * (T-1), C)
        q = self.config.state_dropout if self.training else 0.0
        if q > 0:  # state dropout (training only): some rows are drawn from their own slots alone
            state = state * (torch.rand(state.size(0), 1, device=state.device) >= q).to(state.dtype)
        nxt = rows[:, 1:]                                                 # (B, T-1, R)
        h = self.local_hidden(state, nxt[..., :-1].reshape(B * (T - 1), R - 1))
        logits = self.slot_logits(h, vocab).view(B, T - 1, R, -1)         # (B, T-1, R, V or K)
        loss = None
        if targets:
            tgt = nxt
            if vocab is not None:
                tgt = vocab.index[torch.arange(R, device=rows.device), nxt]  # (B, T-1, R) column in ids[s]
                assert bool((tgt >= 0).all()), "a target id is not valid for its slot"
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), tgt.reshape(-1))
        return logits, loss
