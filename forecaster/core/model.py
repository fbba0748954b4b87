"""A compact decoder-only transformer (GPT) over table-row token sequences.

The model knows nothing about columns, digits or dates: it maps token ids
``(B, T)`` to next-token logits ``(B, T, vocab_size)``. The only thing it knows
about the table is ``row_len``, the number of tokens per row (row delimiter
included), which it uses for the slot embedding below.

Positions. Each token gets two learned embeddings added to its token embedding:

* an absolute position embedding ``wpe[t]`` for ``t`` in ``[0, block_size)``,
  which lets attention learn "how many days back" a token is;
* a slot embedding ``wse[t % row_len]``, the column slot within its row. Every
  window starts on a row boundary, so ``t % row_len`` is the slot of the token.
  Without it the model would have to infer the slot from the absolute position
  alone, which it can only do by memorising every ``(row, slot)`` pair; with it,
  what it learns about "the 3rd token of the VIX column" is shared by all rows.

Both are learned because context windows are short (a few thousand tokens) and
fixed; nothing extrapolates past ``block_size``. A sampler that runs longer than
the context re-windows on a row boundary and restarts positions at zero.

Incremental decoding uses :class:`KVCache`, a preallocated buffer of keys and
values with a length pointer (one prefill, then :meth:`KVCache.expand` to N
samples, then one token per step). :meth:`GPT.generate` is the slow full-recompute
reference that the cached path is tested against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from foundation.dataclass_io import JsonConfig
from foundation.errors import UserError


# Bounds of a model shape: generous (far beyond the largest preset), but an absurd value
# in a hand-edited model_config.json is refused before any memory is allocated.
_BOUNDS = {"vocab_size": (2, 1 << 24), "row_len": (1, 1 << 16), "block_size": (1, 1 << 20),
           "n_layer": (1, 512), "n_head": (1, 1024), "n_embd": (1, 1 << 16)}
MAX_PARAMS = 20_000_000_000


@dataclass
class GPTConfig(JsonConfig):
    """Model hyper-parameters; saved as ``model_config.json`` in a run directory."""

    _error = UserError
    _what = "model config"

    vocab_size: int = 512
    row_len: int = 16          # tokens per table row, delimiter included
    block_size: int = 256      # context length in tokens (a multiple of row_len)
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = False         # biases in Linear/LayerNorm; False is a bit better and faster
    n_kv_head: int | None = None  # key/value heads (grouped-query attention); None = n_head

    def __post_init__(self) -> None:
        """Refuse shapes that cannot be built (or would exhaust memory) with a one-line ``UserError``.

        These are checks of user input (a ``model_config.json`` may be edited by hand), so
        they raise instead of asserting: an assert vanishes under ``python -O``.
        """
        for name, (lo, hi) in _BOUNDS.items():
            self.check_whole(name, lo, hi)
        if self.n_kv_head is not None:
            self.check_whole("n_kv_head", 1, self.n_head)
            if self.n_head % self.n_kv_head:
                raise UserError(f"model config: n_head={self.n_head} must be a multiple of n_kv_head={self.n_kv_head}")
        if self.n_embd % self.n_head:
            raise UserError(f"model config: n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.row_len > self.block_size or self.block_size % self.row_len:
            raise UserError(f"model config: block_size={self.block_size} must be a multiple of "
                            f"row_len={self.row_len} (windows start on a row boundary)")
        self.check_fraction("dropout")
        self.check_flag("bias")
        n = self.approx_params()
        if n > MAX_PARAMS:
            raise UserError(f"model config asks for about {n:,.0f} parameters, more than the {MAX_PARAMS:,} "
                            "this program builds; check n_layer, n_embd, vocab_size and block_size")

    def approx_params(self) -> int:
        """Parameter count of this shape (embeddings + blocks), without building the model."""
        c = self.n_embd
        kv = (self.n_kv_head or self.n_head) * (c // self.n_head)
        block = c * (c + 2 * kv) + c * c + 8 * c * c + 4 * c
        return (self.vocab_size + self.block_size + self.row_len) * c + self.n_layer * block + c

    @property
    def kv_heads(self) -> int:
        return self.n_head if self.n_kv_head is None else self.n_kv_head


class KVCache:
    """Preallocated keys/values of every layer for incremental decoding.

    ``kv`` has shape ``(n_layer, 2, B, n_kv_head, max_T, head_dim)``; positions
    ``[0, pos)`` are filled. A forward pass with this cache writes the keys and
    values of its ``T`` new tokens at ``[pos, pos + T)`` in every layer and then
    advances ``pos`` by ``T`` (the last layer advances it).

    Typical sampler use::

        cache = KVCache.for_model(model, batch_size=1, max_T=model.config.block_size)
        logits, _ = model(prompt, kv_cache=cache)          # prefill once, (1, T0, V)
        cache = cache.expand(n_samples)                     # copy to N samples
        logits, _ = model(next_ids, kv_cache=cache)         # next_ids (N, 1), appends
    """

    def __init__(self, n_layer: int, batch_size: int, n_head: int, max_T: int, head_dim: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        self.kv = torch.zeros(n_layer, 2, batch_size, n_head, max_T, head_dim, dtype=dtype, device=device)
        self.pos = 0  # number of filled positions

    @classmethod
    def for_model(cls, model: "GPT", batch_size: int, max_T: int | None = None) -> "KVCache":
        c = model.config
        p = next(model.parameters())
        return cls(c.n_layer, batch_size, c.kv_heads, max_T or c.block_size, c.n_embd // c.n_head,
                   dtype=p.dtype, device=p.device)

    @property
    def batch_size(self) -> int:
        return self.kv.shape[2]

    @property
    def max_T(self) -> int:
        return self.kv.shape[4]

    def reset(self) -> None:
        self.pos = 0

    def insert(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``k, v`` (B, nh, T, hd) at ``[pos, pos+T)`` of ``layer``; return all keys/values so far."""
        B, _, T, _ = k.shape
        assert B == self.batch_size, f"cache holds batch {self.batch_size}, got {B}"
        end = self.pos + T
        assert end <= self.max_T, f"KV cache overflow: {end} > max_T={self.max_T}; re-window and prefill again"
        self.kv[layer, 0, :, :, self.pos:end] = k
        self.kv[layer, 1, :, :, self.pos:end] = v
        if layer == self.kv.shape[0] - 1:
            self.pos = end
        return self.kv[layer, 0, :, :, :end], self.kv[layer, 1, :, :, :end]  # (B, nh, end, hd) each

    def expand(self, n: int) -> "KVCache":
        """A new cache with each of the current batch rows repeated ``n`` times (a batch of 1 -> n samples)."""
        new = KVCache.__new__(KVCache)
        new.kv = self.kv.repeat_interleave(n, dim=2).contiguous()  # (L, 2, B*n, nh, max_T, hd)
        new.pos = self.pos
        return new

    def clone(self) -> "KVCache":
        new = KVCache.__new__(KVCache)
        new.kv = self.kv.clone()
        new.pos = self.pos
        return new

    def reorder(self, idx: torch.Tensor) -> None:
        """Keep batch rows ``idx`` (a permutation with repeats, ``(B,)``), in place: paths resampled."""
        self.kv = self.kv.index_select(2, idx.to(self.kv.device))


class CausalSelfAttention(nn.Module):

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.n_kv_head = config.kv_heads
        self.n_embd = config.n_embd
        self.head_dim = config.n_embd // config.n_head
        self.dropout = config.dropout
        # queries for every head, keys/values for n_kv_head heads (grouped-query attention: the
        # KV cache, which bounds sampling speed when hundreds of paths decode together, shrinks
        # by n_head / n_kv_head)
        kv_dim = self.n_kv_head * self.head_dim
        self.c_attn = nn.Linear(config.n_embd, config.n_embd + 2 * kv_dim, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.size()
        hd, kv_dim = self.head_dim, self.n_kv_head * self.head_dim
        q, k, v = self.c_attn(x).split([self.n_embd, kv_dim, kv_dim], dim=2)
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)     # (B, nh, T, hd)
        k = k.view(B, T, self.n_kv_head, hd).transpose(1, 2)  # (B, nkv, T, hd)
        v = v.view(B, T, self.n_kv_head, hd).transpose(1, 2)  # (B, nkv, T, hd)
        dropout_p = self.dropout if self.training else 0.0
        gqa = {"enable_gqa": True} if self.n_kv_head != self.n_head else {}
        if kv_cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True, **gqa)
        else:
            past = kv_cache.pos
            k, v = kv_cache.insert(self.layer_idx, k, v)  # (B, nkv, past+T, hd)
            if past == 0:
                y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True, **gqa)
            else:  # new tokens after a cached prefix: query i (absolute past+i) sees keys [0, past+i]
                y = self._grouped_attention(q, k, v, past)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def _grouped_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: int) -> torch.Tensor:
        """Attention of ``T`` new queries ``(B, nh, T, hd)`` to cached keys/values ``(B, nkv, past+T, hd)``.

        The decode step of a sampler. The query heads that share a key/value head are stacked
        as extra query rows, so the cache is read in place (a strided view of the buffer) and
        never repeated per query head; on a CPU this is several times faster than
        ``scaled_dot_product_attention``, which copies the keys and values of every head.
        """
        B, nh, T, hd = q.shape
        nkv, L = k.size(1), k.size(2)
        g = nh // nkv
        qg = q.reshape(B, nkv, g * T, hd)  # rows: (head in group, query)
        att = torch.matmul(qg, k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # (B, nkv, g*T, L)
        if T > 1:
            keys = torch.arange(L, device=q.device)
            queries = torch.arange(past, past + T, device=q.device).repeat(g)  # (g*T,)
            att = att.masked_fill(keys[None, :] > queries[:, None], float("-inf"))
        y = torch.matmul(F.softmax(att, dim=-1), v)  # (B, nkv, g*T, hd)
        return y.view(B, nh, T, hd)


class MLP(nn.Module):

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):

    def __init__(self, config: GPTConfig, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), kv_cache)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    """Decoder-only transformer: token ids ``(B, T)`` -> logits ``(B, T, vocab_size)``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            wse=nn.Embedding(config.row_len, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the input embedding and the output projection share one matrix.
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2 scaled init of the residual projections: keeps the residual stream's
        # variance from growing with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Number of parameters (the tied embedding counted once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                kv_cache: KVCache | None = None, start_pos: int | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position, and the mean cross-entropy if ``targets`` are given.

        Parameters
        ----------
        idx : (B, T) int64 token ids; position ``start_pos`` must be a row-aligned offset
            into a window that starts on a row boundary.
        targets : (B, T) int64 next-token ids, ``-1`` = ignored.
        kv_cache : if given, keys/values of ``idx`` are appended to it and attention
            also covers the cached positions.
        start_pos : absolute position of ``idx[:, 0]``; defaults to ``kv_cache.pos``
            (or 0 without a cache).

        Returns
        -------
        logits (B, T, vocab_size) float, loss (scalar) or None.
        """
        x = self.hidden(idx, kv_cache, start_pos)
        logits = self.lm_head(x)                                         # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    def hidden(self, idx: torch.Tensor, kv_cache: KVCache | None = None,
               start_pos: int | None = None) -> torch.Tensor:
        """The final hidden states ``(B, T, n_embd)``; ``logits = lm_head(hidden)``.

        A sampler that may draw only a few ids at a position multiplies these with
        just those ids' rows of ``lm_head.weight`` instead of the whole vocabulary.
        Arguments as in ``forward``.
        """
        B, T = idx.size()
        if start_pos is None:
            start_pos = kv_cache.pos if kv_cache is not None else 0
        if kv_cache is not None:
            assert start_pos == kv_cache.pos, f"start_pos={start_pos} but the cache holds {kv_cache.pos} positions"
        assert start_pos + T <= self.config.block_size, (
            f"positions up to {start_pos + T} exceed block_size={self.config.block_size}")
        pos = torch.arange(start_pos, start_pos + T, dtype=torch.long, device=idx.device)  # (T,)
        tok_emb = self.transformer.wte(idx)                              # (B, T, C)
        pos_emb = self.transformer.wpe(pos)                              # (T, C)
        slot_emb = self.transformer.wse(pos % self.config.row_len)       # (T, C)
        x = self.transformer.drop(tok_emb + pos_emb + slot_emb)          # (B, T, C)
        for block in self.transformer.h:
            x = block(x, kv_cache)
        return self.transformer.ln_f(x)                                  # (B, T, C)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, n_new: int, generator: torch.Generator | None = None,
                 temperature: float = 1.0, valid_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Reference sampler: recompute the whole context for every new token (slow, simple).

        Parameters
        ----------
        idx : (B, T0) int64 context starting on a row boundary.
        n_new : number of tokens to append.
        generator : seeded ``torch.Generator`` for reproducible draws.
        temperature : softmax temperature; 0 means argmax.
        valid_mask : (row_len, vocab_size) bool; token ``v`` may be drawn at slot ``s``
            only where ``valid_mask[s, v]`` (the tokenizer's per-slot valid ids).

        Returns
        -------
        (B, T0 + n_new) int64.
        """
        row_len, block = self.config.row_len, self.config.block_size
        for _ in range(n_new):
            T = idx.size(1)
            # Keep the longest suffix that fits and still starts on a row boundary.
            drop = 0 if T <= block else math.ceil((T - block) / row_len) * row_len
            ctx = idx[:, drop:]
            logits, _ = self(ctx)
            logits = logits[:, -1, :].float()  # (B, V)
            if valid_mask is not None:
                slot = T % row_len  # slot of the token being drawn; windows start on row boundaries
                logits = logits.masked_fill(~valid_mask[slot].to(logits.device), float("-inf"))
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                probs = F.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
