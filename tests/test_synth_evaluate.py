"""Evaluation metrics on known cases: a copy of the real data, independent column shuffles, small exact cases;
the SDMetrics figures equal SDMetrics' own; privacy is never "met" without the training rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.synthesis.documents import read_table, split_by_card
from forecaster.synthesis import sdm
from forecaster.synthesis.evaluate import NO_TRAIN, PRIVACY_ROWS, evaluate
from forecaster.synthesis.histories import history_metrics
from forecaster.synthesis.fidelity import ks_complement
from forecaster.synthesis.privacy import exact_copy_rate, longest_shared_runs, near_copy_rate, self_duplicate_rate


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
    rep = evaluate(holdout, train.copy(), train, utility=False, field=False)
    assert rep["coarse"]["exact_copy_rate"] == 1.0 and rep["coarse"]["near_copy_rate"] == 1.0
    assert rep["summary"]["near_copy_rate"]["pass"] is False
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
    copy = evaluate(holdout, train.copy(), train, utility=False, field=False)
    shuf = evaluate(holdout, _shuffled(train), train, utility=False, field=False)
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
    rep = evaluate(holdout, _shuffled(train, 1), train, dcr_rows=200, field=False)
    chip = rep["use_chip"]
    assert chip["accuracy_real"] > 0.9 > chip["accuracy_synthetic"]  # how a card is used follows the row
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


def test_sdmetrics_figures_are_sdmetrics_own(split):
    """The report's column shapes, pair trends and DCR are what SDMetrics computes on the same view."""
    from sdmetrics.column_pairs import ContingencySimilarity
    from sdmetrics.reports.single_table import QualityReport
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    train, holdout = split
    syn = _shuffled(train.iloc[:600], 2)
    rep = evaluate(holdout, syn, train, utility=False, dcr_rows=150)
    tv, sv = sdm.sdv_view(train), sdm.sdv_view(syn)
    qr = QualityReport()
    qr.generate(tv, sv, sdm.metadata(), verbose=False)
    shapes = qr.get_properties().set_index("Property")["Score"]["Column Shapes"]
    assert rep["summary"]["column_shapes"]["value"] == pytest.approx(shapes, abs=1e-12)
    pair = ContingencySimilarity.compute(tv[["amount", "mcc"]], sv[["amount", "mcc"]],
                                         continuous_column_names=["amount"])
    assert rep["sdmetrics"]["against_train"]["per_pair"]["amount|mcc"] == pytest.approx(pair, abs=1e-12)
    # DCR of the same query rows (the report's subsample, seed 0) to the training rows
    rng = np.random.default_rng(0)
    cols = list(sdm.DCR_COLUMNS)
    syn_q = sv.iloc[np.sort(rng.choice(len(sv), 150, replace=False))][cols].reset_index(drop=True)
    d = calculate_dcr(syn_q, tv[cols], sdm.metadata(cols))
    assert rep["summary"]["dcr_median"]["value"] == pytest.approx(float(np.median(d)), abs=1e-12)
    assert rep["summary"]["column_shapes"]["reference"] < 0.95  # held-out rows are a later period
    # a shuffled copy is further from the training rows than held-out rows are: the DCR target holds
    assert rep["summary"]["dcr_median"]["pass"] is True


def test_privacy_is_not_met_without_training_rows(split):
    train, holdout = split
    rep = evaluate(holdout, train.copy(), None, utility=False, dcr_rows=100)
    assert rep["privacy_reference"] == NO_TRAIN
    for name in PRIVACY_ROWS:
        if name in rep["summary"]:
            assert rep["summary"][name].get("pass") is None, name
            assert "no training rows" in rep["summary"][name]["note"]
    # the same copy judged against its training rows fails loudly
    with_train = evaluate(holdout, train.copy(), train, utility=False, field=False)
    assert with_train["summary"]["exact_copy_rate"]["pass"] is False


def test_cli_evaluate_without_train_warns(split, tmp_path, capsys):
    from forecaster.cli import main
    from forecaster.synthesis.documents import write_table

    train, holdout = split
    write_table(holdout.iloc[:300], tmp_path / "h.parquet")
    write_table(train.iloc[:300], tmp_path / "s.parquet")
    assert main(["synth", "evaluate", "--real", str(tmp_path / "h.parquet"), "--synthetic", str(tmp_path / "s.parquet"),
                 "--out", str(tmp_path / "ev"), "--dcr-rows", "50", "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "NOT the training rows" in out.err and "privacy not assessed" in out.err
    assert "| near_copy_rate |" in out.out and "| yes |" not in out.out.split("near_copy_rate")[1].split("\n")[0]


def test_history_measures_read_row_order():
    ts = pd.to_datetime(["2020-01-01 10:00", "2020-01-02 10:00", "2020-01-01 12:00", "2020-01-05 00:00"])
    syn = pd.DataFrame({"user": [1, 1, 2, 2], "card": [0, 0, 0, 0], "timestamp": ts})
    real = pd.DataFrame({"user": [0, 0, 0], "card": [0, 0, 0], "timestamp": ts[[0, 1, 3]]})
    h = history_metrics(real, syn, span_rows=2)
    assert h["ordered_share"] == 1.0 and h["out_of_order_rows"] == 0
    back = history_metrics(real, syn.iloc[[1, 0, 2, 3]], span_rows=2)  # user 1 goes back a day
    assert back["ordered_share"] == 0.5 and back["out_of_order_rows"] == 1
    assert h["span_days_median_real"] == pytest.approx(1.0)  # one whole stretch of 2 rows: a day


def test_near_copies_ignore_only_the_time():
    t = pd.DataFrame({"user": [0, 0], "card": [0, 0], "timestamp": pd.to_datetime(["2020-01-01", "2021-06-01"]),
                      "amount": [5.0, 5.0], "use_chip": ["Chip Transaction"] * 2, "merchant_name": [1, 1],
                      "merchant_city": ["A", "A"], "merchant_state": [None, None], "zip": [None, None],
                      "mcc": [5411, 5411], "errors": [None, None], "is_fraud": [False, False]})
    assert near_copy_rate(t.iloc[:1], t.iloc[1:]) == 1.0 and exact_copy_rate(t.iloc[:1], t.iloc[1:]) == 0.0
    other = t.iloc[1:].assign(amount=5.01)
    assert near_copy_rate(t.iloc[:1], other) == 0.0
