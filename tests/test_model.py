"""GPT unit tests: shapes, causal masking, KV cache against the full forward, reference generate."""
from __future__ import annotations

import pytest
import torch

from foundation.errors import UserError
from forecaster.core.model import GPT, GPTConfig, KVCache

ROW = 5


def _model(dropout: float = 0.0, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=37, row_len=ROW, block_size=6 * ROW, n_layer=2, n_head=2, n_embd=32, dropout=dropout)
    return GPT(cfg).eval()


def _ids(B: int, T: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 37, (B, T), generator=g)


def test_shapes_and_loss():
    m = _model()
    x = _ids(3, 4 * ROW)
    logits, loss = m(x)
    assert logits.shape == (3, 4 * ROW, 37)
    assert loss is None
    _, loss = m(x, targets=x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # an untrained model is close to uniform over the vocabulary
    assert abs(loss.item() - torch.log(torch.tensor(37.0)).item()) < 0.5


def test_positions_beyond_block_size_are_refused():
    m = _model()
    with pytest.raises(AssertionError, match="block_size"):
        m(_ids(1, 6 * ROW + 1))


def test_causal_masking_future_token_never_changes_earlier_logits():
    m = _model()
    x = _ids(2, 5 * ROW)
    ref, _ = m(x)
    for t in (0, 7, 5 * ROW - 1):
        y = x.clone()
        y[:, t] = (y[:, t] + 1) % 37
        out, _ = m(y)
        torch.testing.assert_close(out[:, :t], ref[:, :t], rtol=0, atol=0)
        assert not torch.allclose(out[:, t], ref[:, t]), "the changed token must change its own logits"


def test_slot_embedding_is_used():
    # The same token at the same absolute position gives different logits when row_len differs.
    torch.manual_seed(0)
    a = GPT(GPTConfig(vocab_size=37, row_len=5, block_size=30, n_embd=32)).eval()
    b = GPT(GPTConfig(vocab_size=37, row_len=5, block_size=30, n_embd=32)).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.transformer.wse.weight[2] += 1.0
    x = _ids(1, 10)
    la, _ = a(x)
    lb, _ = b(x)
    torch.testing.assert_close(la[:, :2], lb[:, :2])
    assert not torch.allclose(la[:, 2], lb[:, 2])
    assert not torch.allclose(la[:, 7], lb[:, 7])  # slot 2 of the second row


@pytest.mark.parametrize("chunks", [[1] * 20, [ROW] * 4, [7, 1, 1, 11], [20]])
def test_kv_cache_matches_full_forward_at_every_position(chunks):
    m = _model()
    x = _ids(2, sum(chunks))
    full, _ = m(x)  # (B, T, V)
    cache = KVCache.for_model(m, batch_size=2)
    outs, t = [], 0
    for n in chunks:
        logits, _ = m(x[:, t:t + n], kv_cache=cache, start_pos=t)
        outs.append(logits)
        t += n
        assert cache.pos == t
    torch.testing.assert_close(torch.cat(outs, dim=1), full, rtol=1e-5, atol=1e-5)


def test_kv_cache_prefill_then_expand_to_samples():
    m = _model()
    prompt = _ids(1, 2 * ROW)
    cache = KVCache.for_model(m, batch_size=1)
    m(prompt, kv_cache=cache)
    cache = cache.expand(3)
    assert cache.batch_size == 3 and cache.pos == 2 * ROW
    nxt = torch.tensor([[1], [2], [3]])
    logits, _ = m(nxt, kv_cache=cache)
    full, _ = m(torch.cat([prompt.expand(3, -1), nxt], dim=1))
    torch.testing.assert_close(logits[:, -1], full[:, -1], rtol=1e-5, atol=1e-5)


def test_kv_cache_overflow_is_an_assertion():
    m = _model()
    cache = KVCache.for_model(m, batch_size=1, max_T=4)
    with pytest.raises(AssertionError, match="overflow"):
        m(_ids(1, 5), kv_cache=cache)


def test_cached_greedy_decoding_equals_reference_generate():
    m = _model()
    prompt = _ids(2, 2 * ROW)
    ref = m.generate(prompt, 2 * ROW, temperature=0)
    cache = KVCache.for_model(m, batch_size=2)
    logits, _ = m(prompt, kv_cache=cache)
    out = prompt
    for _ in range(2 * ROW):
        nxt = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        out = torch.cat([out, nxt], dim=1)
        logits, _ = m(nxt, kv_cache=cache)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_generate_is_seeded_respects_valid_mask_and_rewindows():
    m = _model()
    prompt = _ids(2, 2 * ROW)
    mask = torch.zeros(ROW, 37, dtype=torch.bool)
    for s in range(ROW):
        mask[s, s * 3:s * 3 + 3] = True  # slot s may only draw ids 3s..3s+2
    n_new = 6 * ROW  # runs past block_size, so the reference must re-window on row boundaries
    a = m.generate(prompt, n_new, generator=torch.Generator().manual_seed(5), temperature=1.0, valid_mask=mask)
    b = m.generate(prompt, n_new, generator=torch.Generator().manual_seed(5), temperature=1.0, valid_mask=mask)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == (2, 2 * ROW + n_new)
    new = a[:, 2 * ROW:]
    for t in range(n_new):
        slot = (2 * ROW + t) % ROW
        assert mask[slot][new[:, t]].all()


def test_config_json_round_trip_and_unknown_key():
    cfg = GPTConfig(vocab_size=11, row_len=3, block_size=12)
    assert GPTConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(UserError, match="unknown model config key"):
        GPTConfig.from_dict({**cfg.to_dict(), "n_heads": 4})
