"""DayGPT (day-level GPT + within-day decoder) and DaySampler: shapes, caches against the full
forward, causality at both levels, the KV sampler against its reference, forcing, valid ids,
learning a within-row dependence, config bounds."""
from __future__ import annotations

import pytest
import torch

from foundation.errors import UserError
from forecaster.core.daymodel import DayGPT, DayGPTConfig, SlotVocab
from forecaster.core.daysampler import DaySampler
from forecaster.core.sampler import SamplingConfig

R, CTX, NF = 5, 6, 3
VOCAB = 3 + 4 * 5  # specials, then 4 slots x 5 ids; the last slot is the delimiter (id 2)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _mask() -> torch.Tensor:
    m = torch.zeros(R, VOCAB, dtype=torch.bool)
    for s in range(R - 1):
        m[s, 3 + 5 * s: 3 + 5 * (s + 1)] = True
    m[R - 2, 3 + 5 * (R - 2) + 4] = False  # an uneven slot, so the padded SlotVocab is exercised
    m[R - 1, 2] = True
    return m


def _model(n_features: int = NF, seed: int = 0, **kw) -> DayGPT:
    torch.manual_seed(seed)
    cfg = DayGPTConfig(vocab_size=VOCAB, row_len=R, n_features=n_features, context_rows=CTX, n_layer=2, n_head=2,
                       n_kv_head=1, n_embd=32, local_n_layer=2, local_n_head=2, local_n_embd=16, **kw)
    return DayGPT(cfg).eval()


def _rows(B: int, T: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = _mask()
    out = torch.empty(B, T, R, dtype=torch.long)
    for s in range(R):
        ids = torch.nonzero(mask[s]).flatten()
        out[:, :, s] = ids[torch.randint(len(ids), (B, T), generator=g)]
    return out


def _feats(B: int, T: int, seed: int = 2) -> torch.Tensor:
    return torch.randn(B, T, NF, generator=torch.Generator().manual_seed(seed))


def _next_features(rows: torch.Tensor) -> torch.Tensor:
    """A deterministic function of the rows so far: means of the last two rows' first slots."""
    last = rows[:, -2:, :NF].double()
    return ((last.mean(dim=1) - 10.0) / 5.0).float()


# -- model --------------------------------------------------------------------------------------
def test_shapes_loss_and_slot_vocab_loss_equals_masked_loss():
    m = _model()
    rows, feats = _rows(3, CTX + 1), _feats(3, CTX + 1)
    logits, loss = m(rows, feats)
    assert logits.shape == (3, CTX, R, VOCAB) and loss.ndim == 0 and torch.isfinite(loss)
    vocab = SlotVocab(_mask())
    lk, lossk = m(rows, feats, vocab=vocab)
    assert lk.shape == (3, CTX, R, vocab.ids.size(1))
    # the per-slot loss equals the full-vocabulary loss with invalid ids masked to -inf
    masked = logits.masked_fill(~_mask(), float("-inf"))
    ref = torch.nn.functional.cross_entropy(masked.reshape(-1, VOCAB), rows[:, 1:].reshape(-1))
    assert torch.allclose(lossk, ref, atol=1e-5)
    _, none = m(rows, feats, targets=False)
    assert none is None
    with pytest.raises(AssertionError, match="context_rows"):
        m(_rows(1, CTX + 2), _feats(1, CTX + 2))
    with pytest.raises(AssertionError, match="features"):
        m(rows)
    assert _model(n_features=0)(rows)[0].shape == (3, CTX, R, VOCAB)


@pytest.mark.parametrize("local_state", ["first", "every"])
def test_cached_global_and_local_equal_the_full_forward_at_every_position(local_state):
    m = _model(local_state=local_state)
    B, T = 2, CTX + 1
    rows, feats = _rows(B, T), _feats(B, T)
    full, _ = m(rows, feats, targets=False)                            # (B, T-1, R, V)
    gcache = m.global_cache(B)
    states = [m.global_hidden(rows[:, :2], feats[:, :2], gcache)]      # a 2-row prefill, then one row a step
    for t in range(2, T - 1):
        states.append(m.global_hidden(rows[:, t:t + 1], feats[:, t:t + 1], gcache))
    states = torch.cat(states, dim=1)                                  # (B, T-1, C)
    lcache = m.local_cache(B)
    for t in range(T - 1):
        lcache.reset()
        hs = [m.local_hidden(states[:, t], rows[:, t + 1, :0], lcache)]
        for s in range(R - 1):
            hs.append(m.local_hidden(states[:, t] if local_state == "every" else None, rows[:, t + 1, s:s + 1], lcache))
        logits = m.slot_logits(torch.cat(hs, dim=1))                   # (B, R, V)
        assert torch.allclose(logits, full[:, t], atol=1e-5), f"row {t + 1}"


def test_causal_at_both_levels():
    """Changing row j's slot s changes no logit of an earlier row, nor of row j's slots <= s."""
    m = _model()
    rows, feats = _rows(1, CTX + 1), _feats(1, CTX + 1)
    base, _ = m(rows, feats, targets=False)
    j, s = 3, 2
    changed = rows.clone()
    changed[0, j, s] = next(int(v) for v in torch.nonzero(_mask()[s]).flatten() if v != rows[0, j, s])
    feats2 = feats.clone()
    feats2[0, j] += 1.0                                                # row j's features are row-j inputs too
    for r2, f2 in ((changed, feats), (rows, feats2), (changed, feats2)):
        out, _ = m(r2, f2, targets=False)
        assert torch.equal(out[:, : j - 1], base[:, : j - 1]), "an earlier row saw a later one"
    out, _ = m(changed, feats, targets=False)
    assert torch.allclose(out[:, j - 1, : s + 1], base[:, j - 1, : s + 1], atol=1e-6), "a slot saw a later slot"
    assert not torch.allclose(out[:, j - 1, s + 1:], base[:, j - 1, s + 1:]), "later slots must see slot s"
    assert not torch.allclose(out[:, j:], base[:, j:]), "later rows must see row j"


# -- sampler ------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["first", "every"])
def sampler(request):
    torch.set_num_threads(1)
    return DaySampler(_model(local_state=request.param), _mask(), keep_rows=3, next_features=_next_features)


def _prompt(P: int):
    return _rows(1, P, seed=7)[0], _feats(1, P, seed=8)[0]


@pytest.mark.parametrize("P,n_rows", [(2, 1), (3, 4), (4, 13), (9, 9)])  # 13 and 9 rows slide the 6-row context
@pytest.mark.parametrize("cfg", [SamplingConfig(), SamplingConfig(temperature=0.7, top_k=3),
                                 SamplingConfig(top_p=0.8), SamplingConfig(temperature=0)])
def test_kv_sampler_equals_reference_token_for_token(sampler, P, n_rows, cfg):
    prompt, feats = _prompt(P)
    fast = sampler.sample(prompt, 6, n_rows, torch.Generator().manual_seed(42), cfg, features=feats)
    ref = sampler.sample_reference(prompt, 6, n_rows, torch.Generator().manual_seed(42), cfg, features=feats)
    assert fast.shape == (6, n_rows, R)
    assert torch.equal(fast, ref)


def test_a_256_row_context_slides_and_matches_the_reference():
    torch.manual_seed(0)
    m = DayGPT(DayGPTConfig(vocab_size=VOCAB, row_len=R, n_features=NF, context_rows=256, n_layer=1, n_head=2,
                            n_embd=16, local_n_layer=1, local_n_head=2, local_n_embd=16))
    s = DaySampler(m, _mask(), keep_rows=250, next_features=_next_features)
    prompt, feats = _prompt(300)  # cut to the last 256 rows; the second row slides, the 8th again
    fast = s.sample(prompt, 3, 9, torch.Generator().manual_seed(2), features=feats)
    ref = s.sample_reference(prompt, 3, 9, torch.Generator().manual_seed(2), features=feats)
    assert torch.equal(fast, ref)


def test_features_callback_sees_the_rows_so_far_and_is_used():
    seen = []

    def spy(rows):
        seen.append(tuple(rows.shape))
        return _next_features(rows)

    prompt, feats = _prompt(4)
    m = _model()
    out = DaySampler(m, _mask(), keep_rows=3, next_features=spy).sample(
        prompt, 5, 8, torch.Generator().manual_seed(1), features=feats)
    assert seen == [(5, 4 + k, R) for k in range(1, 8)]  # after every row but the last
    other = DaySampler(m, _mask(), keep_rows=3, next_features=lambda r: _next_features(r) + 3.0).sample(
        prompt, 5, 8, torch.Generator().manual_seed(1), features=feats)
    assert torch.equal(out[:, 0], other[:, 0]) and not torch.equal(out, other)


def test_step_mask_and_no_features_match_the_reference():
    m = _model(n_features=0, seed=3)
    mask = _mask()

    def step_mask(prefix):  # slot 1 may not take the id just above slot 0's (relative) id
        allowed = mask[prefix.size(1)].expand(prefix.size(0), -1).clone()
        if prefix.size(1) == 1:
            allowed[torch.arange(prefix.size(0)), prefix[:, 0] + 6] = False
        return allowed

    s = DaySampler(m, mask, keep_rows=2, step_mask=step_mask)
    prompt, _ = _prompt(5)
    fast = s.sample(prompt, 7, 10, torch.Generator().manual_seed(4))
    ref = s.sample_reference(prompt, 7, 10, torch.Generator().manual_seed(4))
    assert torch.equal(fast, ref)
    assert not (fast[:, :, 1] == fast[:, :, 0] + 6).any()


def test_forced_tokens_come_back_exactly(sampler):
    n_rows = 9
    forced = torch.full((4, n_rows, R), -1, dtype=torch.long)
    forced[:, :3, 1] = 9                     # slot 1 fixed on the first three rows
    forced[2, 5, 0] = 4                      # one path, one cell
    forced[:, 7] = _rows(1, 1, seed=11)[0, 0]  # a whole row
    prompt, feats = _prompt(4)
    out = sampler.sample(prompt, 4, n_rows, torch.Generator().manual_seed(9), forced=forced, features=feats)
    assert (out[forced >= 0] == forced[forced >= 0]).all()
    ref = sampler.sample_reference(prompt, 4, n_rows, torch.Generator().manual_seed(9), forced=forced, features=feats)
    assert torch.equal(out, ref)


def test_only_valid_ids_are_drawn_and_seeds_reproduce(sampler):
    prompt, feats = _prompt(3)
    a = sampler.sample(prompt, 64, 10, torch.Generator().manual_seed(3), features=feats)
    mask = _mask()
    for s in range(R):
        assert mask[s][a[:, :, s]].all()
    b = sampler.sample(prompt, 64, 10, torch.Generator().manual_seed(3), features=feats)
    c = sampler.sample(prompt, 64, 10, torch.Generator().manual_seed(4), features=feats)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(p.flatten().tolist()) for p in a}) == 64  # independent paths, not copies


# -- learning -----------------------------------------------------------------------------------
def _train(model: DayGPT, batches, steps: int, lr: float, vocab: SlotVocab | None = None) -> list[float]:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for step in range(steps):
        rows = batches(step)
        _, loss = model(rows, vocab=vocab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_loss_decreases_on_a_tiny_overfit():
    m = _model(n_features=0, seed=5)
    rows = _rows(2, CTX + 1, seed=12)
    losses = _train(m, lambda step: rows, 60, 1e-2, SlotVocab(_mask()))
    assert losses[-1] < 0.25 * losses[0], losses[::10]


def test_learns_the_within_row_dependence_corr_a_minus_b():
    """Rows [A, N, B = -A, delimiter], A uniform on 9 levels, N noise: nothing to learn across rows,
    everything within the row. Samples must keep corr(A, B) < -0.9."""
    L = 9
    V = 3 + 3 * L
    mask = torch.zeros(4, V, dtype=torch.bool)
    for s in range(3):
        mask[s, 3 + L * s: 3 + L * (s + 1)] = True
    mask[3, 2] = True

    def make(B: int, T: int, g: torch.Generator) -> torch.Tensor:
        a = torch.randint(L, (B, T), generator=g)
        n = torch.randint(L, (B, T), generator=g)
        return torch.stack([3 + a, 3 + L + n, 3 + 2 * L + (L - 1 - a), torch.full_like(a, 2)], dim=-1)

    torch.manual_seed(0)
    m = DayGPT(DayGPTConfig(vocab_size=V, row_len=4, context_rows=8, n_layer=1, n_head=2, n_embd=32,
                            local_n_layer=1, local_n_head=2, local_n_embd=32))
    g = torch.Generator().manual_seed(0)
    vocab = SlotVocab(mask)
    losses = _train(m, lambda step: make(16, 9, g), 300, 3e-3, vocab)
    # floor: log(9) for A and for N, 0 for B and the delimiter, over 4 slots
    assert sum(losses[-20:]) / 20 < (2 * torch.log(torch.tensor(9.0)).item()) / 4 + 0.1, losses[-20:]
    out = DaySampler(m, mask, keep_rows=4).sample(make(1, 5, g)[0], 200, 12, torch.Generator().manual_seed(1))
    a = (out[..., 0] - 3 - (L - 1) / 2).double().flatten()           # A's level, centred
    b = (out[..., 2] - 3 - 2 * L - (L - 1) / 2).double().flatten()  # B's level, centred (B = -A)
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    assert corr < -0.9, corr

    # conditioning on a forced slot drawn *after* the one it determines: force B = level 1 (so A
    # should be L - 2). Plain forcing cannot move A (drawn first); resampling by the forced
    # token's probability makes A follow it.
    forced = torch.full((12, 4), -1, dtype=torch.long)
    forced[:, 2] = 3 + 2 * L + 1
    prompt = make(1, 5, torch.Generator().manual_seed(5))[0]
    plain = DaySampler(m, mask, keep_rows=4).sample(prompt, 200, 12, torch.Generator().manual_seed(1), forced=forced)
    sampler = DaySampler(m, mask, keep_rows=4)
    cond = sampler.sample(prompt, 200, 12, torch.Generator().manual_seed(1), forced=forced, resample=True)
    assert (plain[..., 2] == forced[:, 2]).all() and (cond[..., 2] == forced[:, 2]).all()
    hit_plain = (plain[..., 0] == 3 + L - 2).double().mean().item()
    hit_cond = (cond[..., 0] == 3 + L - 2).double().mean().item()
    assert hit_plain < 0.3 and hit_cond > 0.9, (hit_plain, hit_cond)
    assert sampler.resampling["rows"] >= 1 and sampler.resampling["min_ess"] < 100
    again = DaySampler(m, mask, keep_rows=4).sample(prompt, 200, 12, torch.Generator().manual_seed(1), forced=forced,
                                                    resample=True)
    assert torch.equal(cond, again)  # seeded: the resampling draws come from the generator


def test_input_dropout_acts_in_training_only():
    """Dropping past rows' slot embeddings and features: random in training, none when sampling."""
    rows, feats = _rows(2, 5), _feats(2, 5)
    plain, dropped = _model(), _model(input_dropout=0.5)
    with torch.no_grad():
        a, _ = plain(rows, feats)
        b, _ = dropped(rows, feats)  # eval(): the same weights give the same logits
        torch.testing.assert_close(a, b)
        dropped.train()
        c, _ = dropped(rows, feats)
        d, _ = dropped(rows, feats)
    assert not torch.allclose(a, c) and not torch.allclose(c, d)
    # the state of a row depends on the slots kept: with every slot dropped, only position and features remain
    m = _model(input_dropout=0.999999).train()
    torch.manual_seed(0)
    with torch.no_grad():
        s1 = m.global_hidden(rows[:1, :3], feats[:1, :3] * 0)
        s2 = m.global_hidden(_rows(1, 3, seed=9), feats[:1, :3] * 0)
    torch.testing.assert_close(s1, s2)


def test_state_dropout_acts_in_training_only_and_leaves_the_row_to_its_own_slots():
    """A row whose global state is dropped is predicted from its earlier slots alone."""
    rows, feats = _rows(2, 5), _feats(2, 5)
    plain, dropped = _model(), _model(state_dropout=0.5)
    with torch.no_grad():
        a, _ = plain(rows, feats)
        b, _ = dropped(rows, feats)  # eval(): no state is dropped
        torch.testing.assert_close(a, b)
    # every state dropped (and no other dropout): logits do not depend on the history at all
    m = _model(state_dropout=0.999999).train()
    other = rows.clone()
    other[:, :1] = _rows(2, 1, seed=7)  # another first day (never a target) and other features: other states
    with torch.no_grad():
        c, _ = m(rows, feats)
        d, _ = m(other, feats * 0 + 1)
    torch.testing.assert_close(c, d)
    # and the local decoder still reads the row's own slots: the last slots' logits depend on the first
    changed = rows.clone()
    changed[:, 1:, 0] = 3 + (rows[:, 1:, 0] - 3 + 1) % 5  # another valid id of slot 0
    with torch.no_grad():
        e, _ = m(changed, feats)
    assert not torch.allclose(c[..., 1:, :], e[..., 1:, :])


# -- config -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [dict(vocab_size=1), dict(row_len=0), dict(n_features=-1), dict(context_rows=1),
                                 dict(n_layer=0), dict(n_embd=30, n_head=4), dict(n_kv_head=3),
                                 dict(local_n_embd=10, local_n_head=4), dict(local_n_layer=0), dict(dropout=1.0),
                                 dict(input_dropout=-0.1), dict(input_dropout=1.0), dict(state_dropout=1.0), dict(local_state="all"),
                                 dict(bias="yes"), dict(n_layer=2.5), dict(context_rows=True),
                                 dict(n_layer=512, n_embd=1 << 16, n_head=1)])
def test_config_bounds_are_user_errors(bad):
    with pytest.raises(UserError):
        DayGPTConfig(**bad)


def test_config_round_trip_and_unknown_keys():
    cfg = DayGPTConfig(vocab_size=100, row_len=22, n_features=4, context_rows=256, n_kv_head=2)
    assert DayGPTConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(UserError, match="unknown"):
        DayGPTConfig.from_dict({**cfg.to_dict(), "block_size": 4})
    with pytest.raises(UserError):
        DayGPTConfig.from_dict([1, 2])
    m = DayGPT(DayGPTConfig(vocab_size=100, row_len=22, n_features=4, context_rows=256))
    assert abs(m.num_params() - m.config.approx_params()) < 0.05 * m.num_params()
