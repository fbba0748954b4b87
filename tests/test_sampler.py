"""The KV-cache sampler against the full-recompute reference, constraints, forcing, seeds."""
from __future__ import annotations

import pytest
import torch

from forecaster.core.model import GPT, GPTConfig
from forecaster.core.sampler import Sampler, SamplingConfig, filter_logits

ROW, ROWS, VOCAB = 5, 4, 23


@pytest.fixture(scope="module")
def sampler():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=VOCAB, row_len=ROW, block_size=ROW * ROWS, n_layer=2, n_head=2, n_embd=32))
    # a random but fixed set of valid ids per slot; the last slot is the row delimiter (one id)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(ROW, VOCAB, generator=g) < 0.4
    mask[:, 0] = False
    mask[-1] = False
    mask[-1, 0] = True
    for s in range(ROW - 1):
        mask[s, 1 + s] = True
    return Sampler(model, mask, keep_rows=2)


def _prompt(sampler, rows=3):
    g = torch.Generator().manual_seed(7)
    out = []
    for _ in range(rows):
        for s in range(ROW):
            ids = torch.nonzero(sampler.valid_mask[s]).flatten()
            out.append(ids[torch.randint(len(ids), (1,), generator=g)])
    return torch.cat(out)


@pytest.mark.parametrize("n_rows", [1, 2, 5, 11])  # 5 and 11 rows slide the 4-row window several times
@pytest.mark.parametrize("cfg", [SamplingConfig(), SamplingConfig(temperature=0.7, top_k=5), SamplingConfig(top_p=0.8), SamplingConfig(temperature=0)])
def test_kv_cache_sampler_equals_reference_token_for_token(sampler, n_rows, cfg):
    prompt = _prompt(sampler)
    fast = sampler.sample(prompt, 6, n_rows, torch.Generator().manual_seed(42), cfg)
    ref = sampler.sample_reference(prompt, 6, n_rows, torch.Generator().manual_seed(42), cfg)
    assert fast.shape == (6, n_rows, ROW)
    assert torch.equal(fast, ref)


def test_every_token_is_valid_for_its_slot(sampler):
    out = sampler.sample(_prompt(sampler), 32, 9, torch.Generator().manual_seed(3))
    for s in range(ROW):
        assert sampler.valid_mask[s][out[:, :, s]].all()


def test_same_seed_same_paths_different_seed_different_paths(sampler):
    prompt = _prompt(sampler)
    a = sampler.sample(prompt, 8, 6, torch.Generator().manual_seed(5))
    b = sampler.sample(prompt, 8, 6, torch.Generator().manual_seed(5))
    c = sampler.sample(prompt, 8, 6, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # paths within one call differ from each other (independent draws, not copies)
    assert len({tuple(p.flatten().tolist()) for p in a}) == 8


def test_forced_tokens_come_back_and_stay_valid(sampler):
    forced = torch.full((7, ROW), -1, dtype=torch.long)
    forced[:3, 1] = 2  # slot 1 fixed to id 2 on the first three rows
    forced[5, 0] = 1
    out = sampler.sample(_prompt(sampler), 10, 7, torch.Generator().manual_seed(9), forced=forced)
    assert (out[:, :3, 1] == 2).all() and (out[:, 5, 0] == 1).all()
    ref = sampler.sample_reference(_prompt(sampler), 10, 7, torch.Generator().manual_seed(9), forced=forced)
    assert torch.equal(out, ref)


def test_paths_keep_their_own_history_across_slides(sampler):
    """Paths forced apart in their first row keep following their own rows after several slides:
    each equals the same path sampled alone (greedy), so nothing is shared or averaged across paths."""
    prompt = _prompt(sampler)
    n_rows, n_paths = 9, 4
    forced = torch.full((n_paths, n_rows, ROW), -1, dtype=torch.long)
    choices = torch.nonzero(sampler.valid_mask[0]).flatten()
    forced[:, 0, 0] = choices[:n_paths]  # a different first token per path
    greedy = SamplingConfig(temperature=0)
    together = sampler.sample(prompt, n_paths, n_rows, torch.Generator().manual_seed(0), greedy, forced=forced)
    for p in range(n_paths):
        alone = sampler.sample(prompt, 1, n_rows, torch.Generator().manual_seed(0), greedy, forced=forced[p:p + 1])
        assert torch.equal(alone[0], together[p])
    assert len({tuple(t.flatten().tolist()) for t in together[:, 1:4]}) > 1  # the forced first rows lead somewhere different


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float64))
    k2 = filter_logits(logits, SamplingConfig(top_k=2))
    assert torch.isinf(k2[0, 2:]).all() and torch.isfinite(k2[0, :2]).all()
    p = filter_logits(logits, SamplingConfig(top_p=0.75))  # 0.5 + 0.3 reach 0.75: keep two
    assert torch.isfinite(p[0, :2]).all() and torch.isinf(p[0, 2:]).all()
    p1 = filter_logits(logits, SamplingConfig(top_p=0.4))  # the top token alone
    assert torch.isfinite(p1[0, 0]) and torch.isinf(p1[0, 1:]).all()


def test_grouped_query_attention_cache_equals_reference():
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=VOCAB, row_len=ROW, block_size=ROW * ROWS, n_layer=2, n_head=4, n_kv_head=1, n_embd=32))
    mask = torch.ones(ROW, VOCAB, dtype=torch.bool)
    smp = Sampler(model, mask, keep_rows=2)
    prompt = torch.arange(3 * ROW) % VOCAB
    fast = smp.sample(prompt, 5, 9, torch.Generator().manual_seed(1))
    ref = smp.sample_reference(prompt, 5, 9, torch.Generator().manual_seed(1))
    assert torch.equal(fast, ref)
    # the cache holds one key/value head instead of four
    from forecaster.core.model import KVCache

    assert KVCache.for_model(model, 2).kv.shape[3] == 1


def test_step_mask_sees_the_row_prefix_and_narrows_the_draw(sampler):
    """A prefix-dependent rule (slot 1 must repeat slot 0's id + 1 when that is valid) is obeyed,
    and the hook is called with the ids drawn so far in the row."""
    seen = []

    def rule(prefix):
        seen.append(prefix.shape[1])
        allowed = torch.ones(prefix.shape[0], VOCAB, dtype=torch.bool)
        if prefix.shape[1] == 1:
            allowed[:] = False
            allowed[torch.arange(prefix.shape[0]), 2] = True  # slot 1: always id 2 (valid by construction)
        return allowed

    narrowed = Sampler(sampler.model, sampler.valid_mask, keep_rows=2, step_mask=rule)
    out = narrowed.sample(_prompt(sampler), 6, 7, torch.Generator().manual_seed(2))
    assert (out[:, :, 1] == 2).all()
    assert sorted(set(seen)) == list(range(ROW))
    ref = narrowed.sample_reference(_prompt(sampler), 6, 7, torch.Generator().manual_seed(2))
    assert torch.equal(out, ref)
