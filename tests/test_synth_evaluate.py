"""Evaluation metrics on known cases: a copy of the real data, independent column shuffles, small exact cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.synthesis.documents import read_table, split_by_card
from forecaster.synthesis.evaluate import evaluate
from forecaster.synthesis.fidelity import ks_complement
from forecaster.synthesis.privacy import exact_copy_rate, longest_shared_runs, self_duplicate_rate


@pytest.fixture(scope="module")
def split(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = read_table(shared_data / "tabformer" / "User0_credit_card_transactions.csv")
    table = table.groupby("card").head(1500).reset_index(drop=True)  # ~5,800 rows keep the tests quick
    return split_by_card(table, 0.8)


@pytest.fixture(scope="module")
def full_split(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole sample: its fraud rows lie in 2008, 2015 and 2016, on both sides of the split."""
    return split_by_card(read_table(shared_data / "tabformer" / "User0_credit_card_transactions.csv"), 0.8)


def _shuffled(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Every column permuted on its own: marginals kept exactly, every dependence broken."""
    rng = np.random.default_rng(seed)
    out = table.reset_index(drop=True)
    for col in out.columns:
        if col != "user":
            out[col] = out[col].iloc[rng.permutation(len(out))].reset_index(drop=True)  # dtype kept
    return out


def test_a_copy_of_the_training_data_is_caught(split):
    train, holdout = split
    rep = evaluate(holdout, train.copy(), train, utility=False)
    assert rep["coarse"]["exact_copy_rate"] == 1.0
    assert rep["coarse"]["exact_copy_flagged"] and rep["summary"]["exact_copy_rate"]["pass"] is False
    assert rep["coarse"]["holdout_exact_copy_rate"] < 0.001  # real unseen rows are not copies
    assert rep["dcr"]["dcr_synthetic_zero_share"] == 1.0 > rep["dcr"]["dcr_holdout_zero_share"]
    assert rep["dcr"]["dcr_closer_to_train_share"] > 0.6
    # the copied histories are whole training cards
    assert rep["trajectories"]["merchant_amount_run_synthetic_max"] == train.groupby("card").size().max()
    assert rep["trajectories"]["merchant_amount_run_holdout_max"] < 10
    # a copy has exactly the reference fidelity (real train vs held out)
    assert rep["summary"]["column_fidelity"]["value"] == pytest.approx(rep["summary"]["column_fidelity"]["reference"])


def test_column_shuffles_keep_columns_but_lose_pairs(split):
    train, holdout = split
    copy = evaluate(holdout, train.copy(), train, utility=False)
    shuf = evaluate(holdout, _shuffled(train), train, utility=False)
    # marginals are untouched: per-column scores equal the copy's, except the derived weekday/time
    # of day, which come from the shuffled timestamp and so are also untouched
    for col, v in copy["columns"].items():
        assert shuf["columns"][col] == pytest.approx(v, abs=1e-12), col
    assert shuf["summary"]["pairwise_fidelity"]["value"] < copy["summary"]["pairwise_fidelity"]["value"] - 0.05
    assert shuf["pairs"]["merchant_city|merchant_state"] < copy["pairs"]["merchant_city|merchant_state"] - 0.1
    assert shuf["consistency"]["merchant_city|merchant_state"] < 0.9 < copy["consistency"]["merchant_city|merchant_state"]
    assert shuf["coarse"]["exact_copy_rate"] < 0.01
    assert shuf["trajectories"]["merchant_amount_run_synthetic_max"] < 10


def test_fraud_utility_of_real_data_and_of_noise(full_split):
    train, holdout = full_split
    rep = evaluate(holdout, _shuffled(train, 1), train, dcr_rows=200)
    u = rep["utility"]
    assert u["test_frauds"] > 0 and u["train_frauds"] > 0
    assert 0.0 <= u["auc_synthetic"] <= 1.0 and 0.0 <= u["auc_real"] <= 1.0
    assert u["utility_ratio"] == pytest.approx(u["auc_synthetic"] / u["auc_real"])
    assert u["auc_real"] > 0.8  # real rows carry signal: fraud is online / bursty in this sample
    assert u["auc_synthetic"] < u["auc_real"] - 0.1  # shuffled rows carry none


def test_small_exact_cases():
    assert ks_complement(np.arange(10.0), np.arange(10.0)) == 1.0
    assert ks_complement(np.zeros(5), np.ones(5)) == 0.0
    runs = longest_shared_runs([np.array([1, 2, 3, 9, 4, 5]), np.array([7, 7]), np.array([3, 4, 5, 6])],
                               [np.array([0, 1, 2, 3, 0]), np.array([4, 5, 6])])
    assert runs.tolist() == [3, 0, 3]
    t = pd.DataFrame({"user": [0, 0, 0], "card": [0, 0, 1], "timestamp": pd.to_datetime(["2020-01-01"] * 3),
                      "amount": [1.0, 1.0, 1.0]})
    assert self_duplicate_rate(t, ["card", "timestamp", "amount"]) == pytest.approx(1 / 3)
    assert exact_copy_rate(t.iloc[:1], t, ["card", "timestamp", "amount"]) == pytest.approx(2 / 3)
