"""Fidelity, privacy and utility metrics of a synthetic credit-card table.

``evaluate(real, synthetic, train=None)`` compares a synthetic typed TabFormer
table with a real one. ``real`` is the *held-out* reference (transactions the
model never saw); ``train`` is the model's training data, against which copying
is measured (without it, ``real`` is used for both). Every score lies in [0, 1]
and, where it makes sense, comes with a *reference*: the same score of ``real``
against ``train`` (two real samples of the same population), which is what a
perfect synthesizer would reach.

The tiers of the reference evaluation, and where each is defined:

coarse (``privacy``)
    exact copies of training rows, flagged above ``COPY_FLAG_RATE``; duplicates
    within the synthetic table.
distance to closest record (``privacy``)
    ``dcr_closer_to_train_share``: ~0.5 for a model that generalises, ~1 for one that copies.
medium (``fidelity``)
    per column: KS complement for numbers, total-variation complement for categories.
fine (``fidelity``, ``privacy``)
    pairs of columns, (city, state)-style consistency and the big merchants
    (``fidelity``); copied merchant trajectories (``privacy``).
utility (``utility``)
    a fraud classifier trained on synthetic vs on real training rows, tested on
    held-out rows; ``utility_extra`` adds synthetic rows to the synthetic
    classifier's training rows only.

All of them compare the view built by ``features.features``; ``summarize``
gives the headline scores against ``TARGETS``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.synthesis.documents import check_table
from forecaster.synthesis.features import features
from forecaster.synthesis.fidelity import column_fidelity, consistency, entity_metrics, ks_complement, pairwise_fidelity
from forecaster.synthesis.privacy import (
    COPY_COLUMNS, COPY_FLAG_RATE, dcr_metrics, exact_copy_rate, self_duplicate_rate, trajectory_metrics,
)
from forecaster.synthesis.utility import utility_metrics

TARGETS = {"exact_copy_rate": ("<", 0.001), "column_fidelity": (">=", 0.90),
           "pairwise_fidelity": (">=", 0.85), "utility_ratio": (">=", 0.90)}


def evaluate(real: pd.DataFrame, synthetic: pd.DataFrame, train: pd.DataFrame | None = None, *,
             seed: int = 0, dcr_rows: int = 2000, utility: bool = True,
             utility_extra: pd.DataFrame | None = None) -> dict:
    """All metrics as a JSON-able dict: ``summary`` (headline scores, targets, pass/fail) and the details.

    Parameters
    ----------
    real : typed table, the held-out real reference.
    synthetic : typed table to judge.
    train : typed table the model was trained on; copies and DCR are measured
        against it (``real`` is used when it is None, and no real-vs-real reference is given).
    utility_extra : more synthetic rows, used only to train the synthetic fraud classifier.
    """
    for t in (real, synthetic) + ((train,) if train is not None else ()):
        check_table(t)
    has_train = train is not None
    train = train if has_train else real
    rf, sf, tf = features(real), features(synthetic), features(train)
    cols = column_fidelity(rf, sf)
    pairs = pairwise_fidelity(rf, sf)
    report: dict = {
        "rows": {"real": len(real), "synthetic": len(synthetic), "train": len(train) if has_train else None},
        "coarse": {"exact_copy_rate": exact_copy_rate(train, synthetic),
                   "exact_copy_flagged": exact_copy_rate(train, synthetic) > COPY_FLAG_RATE,
                   "content_copy_rate": exact_copy_rate(train, synthetic, [c for c in COPY_COLUMNS if c not in ("timestamp", "card")]),
                   "self_duplicate_rate": self_duplicate_rate(synthetic),
                   "real_self_duplicate_rate": self_duplicate_rate(real)},
        "columns": cols, "pairs": pairs, "consistency": consistency(tf if has_train else rf, sf),
        "date_ks_complement": ks_complement(rf["date"].to_numpy(), sf["date"].to_numpy()),
        "dcr": dcr_metrics(tf, rf, sf, max_rows=dcr_rows, seed=seed),
        "trajectories": trajectory_metrics(train, real, synthetic),
        "entities": entity_metrics(rf, sf),
        "utility": utility_metrics(tf, rf, sf if utility_extra is None else
                                   pd.concat([sf, features(utility_extra)], ignore_index=True), seed) if utility else {},
    }
    if utility and utility_extra is not None:
        check_table(utility_extra)
        report["utility"]["extra_rows"] = len(utility_extra)
        report["coarse"]["utility_extra_exact_copy_rate"] = exact_copy_rate(train, utility_extra)
    if has_train:
        report["coarse"]["holdout_exact_copy_rate"] = exact_copy_rate(train, real)
        report["coarse"]["holdout_content_copy_rate"] = exact_copy_rate(
            train, real, [c for c in COPY_COLUMNS if c not in ("timestamp", "card")])
        report["reference"] = {"columns": column_fidelity(rf, tf), "pairs": pairwise_fidelity(rf, tf),
                               "entities": entity_metrics(rf, tf)}
    report["summary"] = summarize(report)
    return report


def summarize(report: dict) -> dict:
    """Headline scores with their targets and the real-vs-real reference where there is one."""
    ref = report.get("reference", {})
    rows = {
        "exact_copy_rate": (report["coarse"]["exact_copy_rate"], report["coarse"].get("holdout_exact_copy_rate")),
        "self_duplicate_rate": (report["coarse"]["self_duplicate_rate"], report["coarse"]["real_self_duplicate_rate"]),
        "dcr_closer_to_train_share": (report["dcr"]["dcr_closer_to_train_share"], 0.5),
        "column_fidelity": (float(np.mean(list(report["columns"].values()))),
                            float(np.mean(list(ref["columns"].values()))) if ref else None),
        "pairwise_fidelity": (float(np.mean(list(report["pairs"].values()))),
                              float(np.mean(list(ref["pairs"].values()))) if ref else None),
        "city_state_consistency": (report["consistency"]["merchant_city|merchant_state"], 1.0),
        "longest_copied_merchant_run": (report["trajectories"]["merchant_run_synthetic_max"],
                                        report["trajectories"]["merchant_run_holdout_max"]),
        "longest_copied_merchant_amount_run": (report["trajectories"]["merchant_amount_run_synthetic_max"],
                                               report["trajectories"]["merchant_amount_run_holdout_max"]),
        "top10_merchant_overlap": (report["entities"]["top10_merchant_overlap"],
                                   ref["entities"]["top10_merchant_overlap"] if ref else None),
        "fraud_auc_synthetic": (report["utility"].get("auc_synthetic"), report["utility"].get("auc_real")),
        "utility_ratio": (report["utility"].get("utility_ratio"), 1.0),
    }
    out = {}
    for name, (value, reference) in rows.items():
        entry = {"value": _num(value), "reference": _num(reference)}
        if name in TARGETS:
            op, target = TARGETS[name]
            entry["target"] = f"{op} {target}"
            v = entry["value"]
            entry["pass"] = None if v is None else bool(v < target if op == "<" else v >= target)
        out[name] = entry
    return out


def _num(v):
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v
