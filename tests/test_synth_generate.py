"""Row-constrained sampling: even an untrained model only writes rows that decode to valid transactions."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from forecaster.core.model import GPT
from forecaster.core.sampler import Sampler
from forecaster.synthesis.documents import MODEL_COLUMNS, fit_tokenizer, read_table
from forecaster.synthesis.generate import ConditionError, _row_constrained_sampler, parse_condition
from forecaster.core.tokenizer import DecodeError
from forecaster.core.training.config import model_config_for


@pytest.fixture(scope="module")
def tok_and_model(shared_data: Path):
    table = read_table(shared_data / "tabformer" / "User0_credit_card_transactions.csv").iloc[:3000]
    tok = fit_tokenizer(table)
    torch.manual_seed(0)
    model = GPT(model_config_for("tiny", tok.vocab_size, tok.tokens_per_row, 4)).eval()
    with torch.no_grad():  # flat logits: every valid id about equally likely, the worst case for validity
        model.lm_head.weight.mul_(0.0)
    prompt = torch.from_numpy(tok.encode(table[list(MODEL_COLUMNS)].iloc[:2]).reshape(-1))
    return tok, model, prompt


def test_untrained_model_rows_always_decode(tok_and_model):
    tok, model, prompt = tok_and_model
    ids = _row_constrained_sampler(model, tok).sample(prompt, 16, 25, torch.Generator().manual_seed(1))
    frame = tok.decode(ids.reshape(-1, tok.tokens_per_row).numpy())  # errors="raise"
    assert len(frame) == 16 * 25
    for col in ("card", "timestamp", "amount", "use_chip", "merchant_name", "merchant_city", "mcc", "is_fraud"):
        assert frame[col].notna().all(), col  # no "unknown" category, no missing where the data has none


def test_the_static_mask_alone_is_not_enough(tok_and_model):
    """The same draw without the per-prefix mask writes impossible rows: the test above can fail."""
    tok, model, prompt = tok_and_model
    ids = Sampler(model, torch.from_numpy(tok.valid_mask())).sample(prompt, 16, 25, torch.Generator().manual_seed(1))
    flat = ids.reshape(-1, tok.tokens_per_row).numpy()
    try:
        frame = tok.decode(flat)
    except DecodeError:
        return  # an impossible date or a half-missing value
    # decodable, but with "unknown" categories (missing values): just as invalid as a transaction
    assert frame[["merchant_name", "merchant_city", "mcc"]].isna().any().any()


def test_parse_condition():
    assert parse_condition("is_fraud=Yes") == ("is_fraud", True)
    assert parse_condition("merchant_state=") == ("merchant_state", None)
    assert parse_condition("mcc=5411") == ("mcc", 5411)
    for bad in ("is_fraud", "amount=3", "mcc=abc", "is_fraud=maybe"):
        with pytest.raises(ConditionError):
            parse_condition(bad)
