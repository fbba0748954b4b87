"""Sample many future rows from a :class:`~forecaster.core.daymodel.DayGPT`, on token ids only.

The same contract as :class:`forecaster.core.sampler.Sampler`: the sampler knows nothing
about columns, digits or dates. It is given the model, the tokenizer's per-slot valid ids
``(R, V)``, a prompt of whole rows ``(rows, R)`` with its feature rows ``(rows, F)``,
optionally tokens forced at some (row, slot) positions, and a ``next_features`` callback
that turns the rows so far into the next row's features (the domain computes them; here
they are just floats). It returns ``(paths, n_rows, R)`` ids.

The fast path (:meth:`DaySampler.sample`):

1. one prefill of the prompt rows (batch 1) through the global model; its KV cache is
   copied to all paths, which are then decoded together as one batch;
2. each new day: the local decoder draws the row slot by slot (its own small KV cache,
   reset every row), only among each slot's valid ids (and the ``step_mask``'s, if
   given), with temperature / top-k / top-p and a seeded ``torch.Generator``; forced
   tokens replace the draws and are what the next slot sees;
3. then ``next_features(rows so far)`` gives the new row's features and the global model
   takes one step with that row appended: one global step + ``R`` local steps a day;
4. when the global context is full it slides on a row boundary: every path keeps its own
   last ``keep_rows`` rows (and their features), re-prefilled as a batch.

**Conditioning on forced tokens** (``resample=True``, what a stress scenario uses). A
forced token only moves the slots drawn after it; the slots before it in the row (and
the days before) were drawn without knowing it. So each path carries an importance
weight, the model's probability of every forced token it was given (at the sampling
temperature; "no release" calendar tokens, which are never drawable, do not count), and
after a row with such tokens the paths are resampled (systematic resampling, one uniform
from the generator) when the effective sample size falls below half the paths: paths
whose day made the forced values likely are copied, the others dropped (sequential
importance resampling). The callback's per-path state is reordered with them
(``next_features.reorder(idx)``). The reference path does not resample: a test holds
the two equal without it.

:meth:`DaySampler.sample_reference` recomputes the whole window, global and local, for
every token, with the same window schedule and the same random draws; a test holds the
fast path to it token for token.
"""
from __future__ import annotations

from typing import Callable

import torch

from forecaster.core.daymodel import DayGPT, SlotVocab
from forecaster.core.sampler import SamplingConfig, draw_valid, valid_logits

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


class DaySampler:
    """Batched, constrained, two-level KV-cached sampling of whole rows (see module doc).

    Parameters
    ----------
    model : a trained ``DayGPT`` (put in eval mode here).
    valid_mask : (row_len, vocab_size) bool, the tokenizer's valid ids per slot.
    keep_rows : rows each path keeps when the window slides (default: half the context).
    next_features : ``f(rows) -> (paths, F)`` float, where ``rows`` is ``(paths, k, R)``: the
        prompt rows given and every row sampled so far, the newest last; it returns the
        features of that newest row. Required when the model has features.
    step_mask : optional ``f(prefix) -> (paths, vocab) bool``, ``prefix`` ``(paths, s)`` the ids
        drawn so far in each path's current row (as in ``Sampler``).
    force_mask : (row_len, vocab_size) bool, the ids ``forced`` may hold per slot (default: ``valid_mask``).
    """

    def __init__(self, model: DayGPT, valid_mask: torch.Tensor, keep_rows: int | None = None,
                 next_features: FeatureFn | None = None,
                 step_mask: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 force_mask: torch.Tensor | None = None) -> None:
        self.model = model.eval()
        cfg = model.config
        self.row_len, self.n_features, self.context_rows = cfg.row_len, cfg.n_features, cfg.context_rows
        assert valid_mask.shape == (cfg.row_len, cfg.vocab_size), f"valid_mask {tuple(valid_mask.shape)} != (row_len, vocab)"
        assert cfg.n_features == 0 or next_features is not None, "a model with features needs a next_features callback"
        self.device = model.lm_head.weight.device
        self.vocab = SlotVocab(valid_mask).to(self.device)
        self.valid_mask = self.vocab.mask
        # ids that may be forced per slot: a superset of the drawable ones (e.g. a token that is
        # forced on some rows and never drawn, such as a macro series' "no release")
        self.force_mask = self.valid_mask if force_mask is None else torch.as_tensor(force_mask, dtype=torch.bool)
        assert self.force_mask.shape == self.valid_mask.shape, "force_mask must be (row_len, vocab)"
        self.valid_ids = [self.vocab.slot_ids(s) for s in range(cfg.row_len)]
        self.keep_rows = keep_rows if keep_rows is not None else max(1, cfg.context_rows // 2)
        assert 1 <= self.keep_rows < cfg.context_rows, f"keep_rows must be in [1, {cfg.context_rows - 1}]"
        self.next_features = next_features
        self.step_mask = step_mask
        self._every = cfg.local_state == "every"  # the local decoder reads the global state at every slot

    # -- shared pieces of both paths ---------------------------------------------------------
    def _draw(self, hidden: torch.Tensor, slot: int, cfg: SamplingConfig, generator: torch.Generator,
              forced: torch.Tensor | None, prefix: torch.Tensor) -> torch.Tensor:
        """Next ids ``(N,)`` from local states ``(N, Cl)`` (``draw_valid``, shared with the flat sampler)."""
        return draw_valid(hidden, self.model.lm_head.weight, self.valid_ids[slot], cfg, generator, forced,
                          self.step_mask, prefix)

    def _features(self, rows: torch.Tensor) -> torch.Tensor | None:
        """The newest row's features ``(N, F)`` from the callback, checked."""
        if self.n_features == 0:
            return None
        f = torch.as_tensor(self.next_features(rows), dtype=torch.float32, device=self.device)
        assert f.shape == (rows.size(0), self.n_features), f"next_features returned {tuple(f.shape)}, " \
                                                           f"expected ({rows.size(0)}, {self.n_features})"
        assert bool(torch.isfinite(f).all()), "next_features returned a non-finite value"
        return f

    def _setup(self, prompt, features, n_paths: int, n_rows: int, forced):
        """History buffers ``(N, P + n_rows, R)`` / ``(N, P + n_rows, F)`` holding the prompt, and
        the first window's start (the prompt is cut to the ``context_rows`` rows a window holds)."""
        R, Fn = self.row_len, self.n_features
        prompt = torch.as_tensor(prompt, dtype=torch.long, device=self.device).reshape(-1, R)
        P = prompt.size(0)
        assert P >= 1 and n_rows >= 1 and n_paths >= 1, "need a prompt row, a row to sample and a path"
        rows = torch.empty(n_paths, P + n_rows, R, dtype=torch.long, device=self.device)
        rows[:, :P] = prompt
        feats = torch.zeros(n_paths, P + n_rows, Fn, device=self.device)
        if Fn:
            assert features is not None, "the prompt needs its feature rows (rows, F)"
            features = torch.as_tensor(features, dtype=torch.float32, device=self.device)
            assert features.shape == (P, Fn), f"prompt features {tuple(features.shape)} != ({P}, {Fn})"
            assert bool(torch.isfinite(features).all()), "prompt features must be finite"
            feats[:, :P] = features
        if forced is not None:
            assert forced.shape[-2:] == (n_rows, R), f"forced must end in ({n_rows}, {R})"
            slots = torch.arange(R, device=forced.device).expand_as(forced)
            ok = (forced < 0) | self.force_mask.to(forced.device)[slots, forced.clamp_min(0)]
            assert bool(ok.all()), "a forced id is not valid for its slot"
            forced = forced.to(self.device)
        return rows, feats, P, max(0, P - self.context_rows), forced

    def _forced_logp(self, hidden: torch.Tensor, slot: int, cfg: SamplingConfig, forced: torch.Tensor,
                     prefix: torch.Tensor) -> torch.Tensor | None:
        """``(N,)`` log-probability of each path's forced id at ``slot`` under the model at the sampling
        temperature (0 where nothing is forced); None when no forced id is drawable (e.g. "no release")."""
        valid = self.valid_ids[slot]
        col = self.vocab.index[slot, forced.clamp_min(0)]  # position among the valid ids, -1: not drawable
        use = (forced >= 0) & (col >= 0)
        if not bool(use.any()):
            return None
        logits = valid_logits(hidden, self.model.lm_head.weight, valid, self.step_mask, prefix)
        logp = torch.log_softmax(logits / max(cfg.temperature, 1e-6), dim=-1)
        picked = logp.gather(1, col.clamp_min(0)[:, None]).squeeze(1)
        return torch.where(use, picked, torch.zeros_like(picked))

    @staticmethod
    def _resample(logw: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor | None, float]:
        """Systematic resampling of ``logw`` ``(N,)``: the kept path indices (None: weights even enough) and the ESS."""
        n = logw.numel()
        if not bool(torch.isfinite(logw).any()):
            return None, 0.0
        w = torch.exp(logw - logw[torch.isfinite(logw)].max())
        w = torch.where(torch.isfinite(w), w, torch.zeros_like(w))
        w = w / w.sum()
        ess = float(1.0 / (w * w).sum())
        u = torch.rand(1, generator=generator, dtype=torch.float64, device=w.device)
        if ess >= n / 2:
            return None, ess
        points = (u + torch.arange(n, dtype=torch.float64, device=w.device)) / n
        idx = torch.searchsorted(torch.cumsum(w, 0), points).clamp_max(n - 1)
        return idx, ess

    @staticmethod
    def _forced_at(forced: torch.Tensor | None, row: int, slot: int, n: int) -> torch.Tensor | None:
        if forced is None:
            return None
        f = forced[..., row, slot]
        return f.expand(n) if f.dim() == 0 else f

    def _f(self, feats: torch.Tensor, a: int, b: int) -> torch.Tensor | None:
        return feats[:, a:b] if self.n_features else None

    # -- fast path ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, prompt: torch.Tensor, n_paths: int, n_rows: int, generator: torch.Generator,
               cfg: SamplingConfig | None = None, forced: torch.Tensor | None = None,
               progress: Callable[[int], None] | None = None, *,
               features: torch.Tensor | None = None, resample: bool = False) -> torch.Tensor:
        """Sample ``n_rows`` future rows for ``n_paths`` paths.

        Parameters
        ----------
        prompt : (P, R) ids of whole rows of history, or (P * R,) (the last ``context_rows`` are used).
        features : (P, F) float features of the prompt rows (required when F > 0).
        forced : (n_rows, R) or (n_paths, n_rows, R) ids, -1 = sample freely.
        progress : called with the number of rows finished, after each row.
        resample : condition the paths on the forced tokens by importance resampling (module
            doc); ``self.resampling`` then says how often it resampled and the lowest ESS.

        Returns
        -------
        (n_paths, n_rows, R) int64 ids.
        """
        cfg = cfg or SamplingConfig()
        rows, feats, P, start, forced = self._setup(prompt, features, n_paths, n_rows, forced)
        N, R, m = n_paths, self.row_len, self.model
        gcache = m.global_cache(1)
        state = m.global_hidden(rows[:1, start:P], self._f(feats[:1], start, P), gcache)[:, -1]  # prefill once
        gcache = gcache.expand(N)
        state = state.expand(N, -1)                                       # (N, C)
        lcache = m.local_cache(N)
        logw = torch.zeros(N, dtype=torch.float64, device=self.device)
        self.resampling = {"rows": 0, "min_ess": float(N)}
        for row in range(n_rows):
            end = P + row                                                 # the row being drawn
            lcache.reset()
            h = m.local_hidden(state, rows[:, end, :0], lcache)[:, -1]    # local position 0, (N, Cl)
            weighted = False
            for slot in range(R):
                f = self._forced_at(forced, row, slot, N)
                if resample and f is not None and bool((f >= 0).any()):
                    lp = self._forced_logp(h, slot, cfg, f, rows[:, end, :slot])
                    if lp is not None:
                        logw, weighted = logw + lp, True
                ids = self._draw(h, slot, cfg, generator, f, rows[:, end, :slot])
                rows[:, end, slot] = ids
                if slot < R - 1:
                    h = m.local_hidden(state if self._every else None, ids[:, None], lcache)[:, -1]
            if weighted:
                idx, ess = self._resample(logw, generator)
                self.resampling["min_ess"] = min(self.resampling["min_ess"], ess)
                if idx is not None:  # copy the paths that made the forced tokens likely, with all their state
                    rows, feats, state = rows[idx], feats[idx], state[idx]
                    gcache.reorder(idx)
                    if forced is not None and forced.dim() == 3:
                        forced = forced[idx]
                    if self.next_features is not None and hasattr(self.next_features, "reorder"):
                        self.next_features.reorder(idx.cpu().numpy())
                    logw = torch.zeros_like(logw)
                    self.resampling["rows"] += 1
            if progress is not None:
                progress(row + 1)
            if row == n_rows - 1:
                break  # the last row needs no features and no global step
            f = self._features(rows[:, : end + 1])
            if f is not None:
                feats[:, end] = f
            if gcache.pos == self.context_rows:  # slide: each path re-prefills its own last rows
                gcache.reset()
                a = end + 1 - self.keep_rows
                state = m.global_hidden(rows[:, a:end + 1], self._f(feats, a, end + 1), gcache)[:, -1]
            else:
                state = m.global_hidden(rows[:, end:end + 1], self._f(feats, end, end + 1), gcache)[:, -1]
        return rows[:, P:].clone()

    # -- reference -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_reference(self, prompt: torch.Tensor, n_paths: int, n_rows: int, generator: torch.Generator,
                         cfg: SamplingConfig | None = None, forced: torch.Tensor | None = None, *,
                         features: torch.Tensor | None = None) -> torch.Tensor:
        """Same output as ``sample`` for the same generator state, by full recomputation of the
        window, global and local, for every token (slow)."""
        cfg = cfg or SamplingConfig()
        rows, feats, P, start, forced = self._setup(prompt, features, n_paths, n_rows, forced)
        N, R, m = n_paths, self.row_len, self.model
        for row in range(n_rows):
            end = P + row
            if row > 0:
                f = self._features(rows[:, :end])
                if f is not None:
                    feats[:, end - 1] = f
            if end - start > self.context_rows:
                start = end - self.keep_rows
            for slot in range(R):
                state = m.global_hidden(rows[:, start:end], self._f(feats, start, end))[:, -1]
                h = m.local_hidden(state, rows[:, end, :slot])[:, -1]
                ids = self._draw(h, slot, cfg, generator, self._forced_at(forced, row, slot, N), rows[:, end, :slot])
                rows[:, end, slot] = ids
        return rows[:, P:].clone()
