"""Sample many future rows from a GPT, on token ids only.

The sampler knows nothing about columns, digits or dates. It is given the model,
the per-slot valid-id mask of the tokenizer ``(row_len, vocab)``, a prompt of
whole rows, and optionally tokens forced at some (row, slot) positions (stress
scenarios). It returns ``(paths, rows, row_len)`` token ids.

The fast path (``Sampler.sample``):

1. one prefill of the prompt (batch 1), then the KV cache is copied to all N
   paths, which are decoded together as one batch, one token per step;
2. at every step only the ids valid for the slot can be drawn (constrained
   decoding), then temperature, top-k and top-p, with a seeded ``torch.Generator``.
   Logits are computed for the slot's valid ids only (their rows of the output
   matrix), not for the whole vocabulary. An optional ``step_mask`` narrows the
   ids further given the tokens already drawn in the current row (the tokenizer's
   per-prefix constraints, e.g. real dates); it too sees ids only;
3. when the context window is full, it slides on a row boundary: every path
   keeps its *own* last ``keep_rows`` rows, which are re-prefilled as a batch.
   Nothing is averaged across paths, so each path stays one coherent scenario
   however long the horizon is.

``Sampler.sample_reference`` recomputes the whole window for every token with the
same window schedule and the same random draws; a test holds the fast path to it
token for token.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

from foundation.errors import UserError
from forecaster.core.model import GPT, KVCache

MAX_SEED = 2**64 - 1  # what torch.Generator.manual_seed takes without wrapping


class SamplingError(UserError):
    """Sampling settings or a seed that cannot be used."""


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclass
class SamplingConfig:
    """How tokens are drawn. ``temperature=0`` means argmax; ``top_k``/``top_p`` of None are off."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        t, k, p = self.temperature, self.top_k, self.top_p
        if not (_is_real(t) and math.isfinite(t) and t >= 0):
            raise SamplingError(f"temperature must be a finite number >= 0, got {t!r}")
        if k is not None:
            if not _is_int(k):
                raise SamplingError(f"top_k must be an integer >= 1, got {k!r}")
            if k < 1:
                raise SamplingError(f"top_k must be >= 1, got {k}")
        if p is not None and not (_is_real(p) and 0 < p <= 1):  # NaN fails both comparisons
            raise SamplingError(f"top_p must be in (0, 1], got {p!r}")
        self.temperature = float(t)
        self.top_k = None if k is None else int(k)
        self.top_p = None if p is None else float(p)


def make_generator(seed, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed``, an integer in ``[0, 2**64 - 1]`` (else a ``SamplingError``)."""
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise SamplingError(f"seed must be an integer in 0..{MAX_SEED} (64 bits), got {seed!r}")
    return torch.Generator(device=device).manual_seed(int(seed))


def filter_logits(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Apply temperature, top-k and top-p to ``(B, V)`` logits (invalid ids already at -inf)."""
    logits = logits / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < logits.size(-1):
        kth = torch.topk(logits, cfg.top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p is not None and cfg.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cum = F.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop_sorted = (cum - F.softmax(sorted_logits, dim=-1)) >= cfg.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def valid_logits(hidden: torch.Tensor, head: torch.Tensor, valid: torch.Tensor,
                 step_mask: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 prefix: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, n_valid)`` float64 logits of one slot's ``valid`` ids (rows of the output matrix ``head``)
    from hidden states ``(B, C)``, with the step mask given the row's ``prefix``: a bool mask puts the
    ids it forbids at ``-inf``; a float one is added to the logits (a log-bias, ``-inf`` forbids); None
    (the mask has nothing to say at this slot) leaves them."""
    logits = (hidden @ head.index_select(0, valid).T).double()  # (B, n_valid)
    mask = step_mask(prefix) if step_mask is not None else None
    if mask is not None:
        mask = mask.to(logits.device).index_select(-1, valid)  # (B, n_valid)
        if mask.dtype == torch.bool:
            logits = logits.masked_fill(~mask, float("-inf"))
        else:
            logits = logits + mask.double()
    return logits


def draw_valid(hidden: torch.Tensor, head: torch.Tensor, valid: torch.Tensor, cfg: SamplingConfig,
               generator: torch.Generator, forced: torch.Tensor | None = None,
               step_mask: Callable[[torch.Tensor], torch.Tensor] | None = None,
               prefix: torch.Tensor | None = None) -> torch.Tensor:
    """Next ids ``(B,)`` of one slot from hidden states ``(B, C)``: logits of the slot's ``valid`` ids only
    (their rows of the output matrix ``head``), the step mask given the row's ``prefix``, temperature /
    top-k / top-p, one uniform per path, then ``forced`` ids (``-1``: free) in their place.

    One uniform is drawn per path and step whatever the settings, so a fast path and its
    full-recompute reference consume the generator alike. Both samplers (flat and day-level) draw here.
    """
    logits = valid_logits(hidden, head, valid, step_mask, prefix)
    u = torch.rand(logits.size(0), 1, generator=generator, dtype=torch.float64, device=logits.device)
    if cfg.temperature == 0:
        pick = logits.argmax(dim=-1)
    else:
        probs = F.softmax(filter_logits(logits, cfg), dim=-1)
        cdf = probs.cumsum(dim=-1)
        pick = torch.searchsorted(cdf, u * cdf[:, -1:]).squeeze(-1).clamp_max(logits.size(-1) - 1)
    ids = valid[pick]
    return ids if forced is None else torch.where(forced >= 0, forced, ids)


class Sampler:
    """Batched, constrained, KV-cached sampling of whole rows (see module doc).

    Parameters
    ----------
    model : a trained ``GPT`` (put in eval mode here).
    valid_mask : (row_len, vocab_size) bool, the tokenizer's valid ids per slot.
    keep_rows : rows each path keeps when the window slides (default: half the window).
    step_mask : optional ``f(prefix) -> (B, vocab) bool`` where ``prefix`` is ``(B, k)``, the ids
        drawn so far in each path's current row (``k`` = the slot being drawn).
    force_mask : (row_len, vocab_size) bool, the ids ``forced`` may hold per slot (default:
        ``valid_mask``); an id can be forced without ever being drawn.
    """

    def __init__(self, model: GPT, valid_mask: torch.Tensor, keep_rows: int | None = None,
                 step_mask: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 force_mask: torch.Tensor | None = None) -> None:
        self.model = model.eval()
        cfg = model.config
        self.row_len = cfg.row_len
        self.window_rows = cfg.block_size // cfg.row_len
        assert self.window_rows >= 2, "the context must hold at least two rows"
        assert valid_mask.shape == (cfg.row_len, cfg.vocab_size), f"valid_mask {tuple(valid_mask.shape)} != (row_len, vocab)"
        assert valid_mask.any(dim=1).all(), "every slot needs at least one valid id"
        self.valid_mask = valid_mask.to(torch.bool)
        # ids that may be forced per slot: a superset of the drawable ones (e.g. a token that is
        # forced on some rows and never drawn, such as a macro series' "no release")
        self.force_mask = self.valid_mask if force_mask is None else torch.as_tensor(force_mask, dtype=torch.bool)
        assert self.force_mask.shape == self.valid_mask.shape, "force_mask must be (row_len, vocab)"
        # per slot, the valid ids: drawing among them only is the same distribution as masking
        # the rest to -inf, and much cheaper than a softmax over the whole vocabulary
        self.valid_ids = [torch.nonzero(row).flatten().to(model.lm_head.weight.device) for row in self.valid_mask]
        self.step_mask = step_mask
        self.keep_rows = keep_rows if keep_rows is not None else max(1, self.window_rows // 2)
        assert 1 <= self.keep_rows < self.window_rows, f"keep_rows must be in [1, {self.window_rows - 1}]"
        self.device = next(model.parameters()).device

    # -- shared pieces of both paths ---------------------------------------------------------
    def _draw(self, hidden: torch.Tensor, slot: int, cfg: SamplingConfig, generator: torch.Generator,
              forced: torch.Tensor | None, prefix: torch.Tensor) -> torch.Tensor:
        """Next ids ``(B,)`` from the last hidden states ``(B, C)`` (see ``draw_valid``)."""
        return draw_valid(hidden, self.model.lm_head.weight, self.valid_ids[slot], cfg, generator, forced,
                          self.step_mask, prefix)

    def _check(self, prompt: torch.Tensor, n_rows: int, forced: torch.Tensor | None) -> torch.Tensor:
        prompt = torch.as_tensor(prompt, dtype=torch.long, device=self.device).reshape(-1)
        assert prompt.numel() % self.row_len == 0 and prompt.numel() > 0, "the prompt must be whole rows"
        assert n_rows >= 1, "n_rows must be >= 1"
        if forced is not None:
            assert forced.shape[-2:] == (n_rows, self.row_len), f"forced must end in ({n_rows}, {self.row_len})"
            slots = torch.arange(self.row_len).expand_as(forced)
            ok = (forced < 0) | self.force_mask[slots, forced.clamp_min(0)]
            assert bool(ok.all()), "a forced id is not valid for its slot"
        # the prompt is cut to the rows the first window can hold while leaving room to generate
        keep = min(prompt.numel() // self.row_len, self.window_rows - 1)
        return prompt[-keep * self.row_len:]

    @staticmethod
    def _forced_at(forced: torch.Tensor | None, row: int, slot: int, n: int) -> torch.Tensor | None:
        if forced is None:
            return None
        f = forced[..., row, slot]
        return f.expand(n) if f.dim() == 0 else f

    # -- fast path ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, n_paths: int, n_rows: int, generator: torch.Generator,
               cfg: SamplingConfig | None = None, forced: torch.Tensor | None = None,
               progress: Callable[[int], None] | None = None) -> torch.Tensor:
        """Sample ``n_rows`` future rows for ``n_paths`` paths.

        Parameters
        ----------
        prompt : (T0,) ids of whole rows of history (only the last window-1 rows are used).
        forced : (n_rows, row_len) or (n_paths, n_rows, row_len) ids, -1 = sample freely.
        progress : called with the number of rows finished, after each row.

        Returns
        -------
        (n_paths, n_rows, row_len) int64 ids.
        """
        cfg = cfg or SamplingConfig()
        prompt = self._check(prompt, n_rows, forced)
        forced = None if forced is None else forced.to(self.device)  # checked on the host, used on the device
        R, N = self.row_len, n_paths
        history = torch.empty(N, prompt.numel() + n_rows * R, dtype=torch.long, device=self.device)
        history[:, : prompt.numel()] = prompt
        length = prompt.numel()

        cache = KVCache.for_model(self.model, batch_size=1)
        h = self.model.hidden(prompt[None, :], kv_cache=cache)  # prefill once, (1, T0, C)
        cache = cache.expand(N)
        last = h[:, -1, :].expand(N, -1)  # (N, C)
        for row in range(n_rows):
            if cache.pos + R > cache.max_T:  # slide: each path re-prefills its own last rows
                start = length - self.keep_rows * R
                cache.reset()
                last = self.model.hidden(history[:, start:length], kv_cache=cache)[:, -1, :]
            for slot in range(R):
                prefix = history[:, length - slot:length]  # (N, slot) ids of this row so far
                ids = self._draw(last, slot, cfg, generator, self._forced_at(forced, row, slot, N), prefix)
                history[:, length] = ids
                length += 1
                if row == n_rows - 1 and slot == R - 1:
                    break  # the last token needs no forward pass
                last = self.model.hidden(ids[:, None], kv_cache=cache)[:, -1, :]  # (N, C)
            if progress is not None:
                progress(row + 1)
        return history[:, prompt.numel():].reshape(N, n_rows, R)

    # -- reference -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_reference(self, prompt: torch.Tensor, n_paths: int, n_rows: int, generator: torch.Generator,
                         cfg: SamplingConfig | None = None, forced: torch.Tensor | None = None) -> torch.Tensor:
        """Same output as ``sample`` for the same generator state, by full recomputation (slow)."""
        cfg = cfg or SamplingConfig()
        prompt = self._check(prompt, n_rows, forced)
        forced = None if forced is None else forced.to(self.device)  # checked on the host, used on the device
        R, N = self.row_len, n_paths
        history = prompt[None, :].repeat(N, 1)
        start = 0  # first token of the current window
        for row in range(n_rows):
            if history.size(1) - start + R > self.window_rows * R:
                start = history.size(1) - self.keep_rows * R
            for slot in range(R):
                hidden = self.model.hidden(history[:, start:])[:, -1, :]
                prefix = history[:, history.size(1) - slot:]
                ids = self._draw(hidden, slot, cfg, generator, self._forced_at(forced, row, slot, N), prefix)
                history = torch.cat([history, ids[:, None]], dim=1)
        return history[:, prompt.numel():].reshape(N, n_rows, R)
