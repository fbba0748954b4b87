"""Fidelity, privacy and utility metrics of a synthetic credit-card table.

``evaluate(real, synthetic, train)`` compares a synthetic typed TabFormer table
with real ones. ``real`` is the *held-out* reference (transactions the model never
saw); ``train`` is the model's training data, against which copying and the
privacy distances are measured, and against which the field's standard scores
(SDMetrics, ``sdm``) are taken. Privacy needs the training rows: without them
the report says loudly (``privacy_reference``: "held-out rows, NOT the training
rows") that it compares against something else, and no privacy target is
reported as met (``pass`` None). Every score comes, where it makes sense, with a
*reference*: the same score of the real held-out rows (how far genuinely new
real rows are from the training rows), or of real training rows.

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

field standard (``sdm``, SDMetrics)
    column shapes and column pair trends against the training rows (and the
    held-out rows); median DCR of synthetic and of held-out rows to the training rows.
histories (``histories``)
    order without sorting, time gaps, the days a 200-row stretch spans.

The project's own tiers compare the view built by ``features.features``;
``summarize`` gives the headline scores against their targets.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from forecaster.synthesis.documents import check_table
from forecaster.synthesis.features import features
from forecaster.synthesis.fidelity import column_fidelity, consistency, entity_metrics, ks_complement, pairwise_fidelity
from forecaster.synthesis import sdm
from forecaster.synthesis.histories import history_metrics
from forecaster.synthesis.privacy import (
    COPY_COLUMNS, COPY_FLAG_RATE, dcr_metrics, exact_copy_rate, near_copy_rate, self_duplicate_rate,
    trajectory_metrics,
)
from forecaster.synthesis.utility import use_chip_metrics, utility_metrics

#: fixed targets; "ref" compares with the row's reference (the real held-out rows' value)
TARGETS = {"exact_copy_rate": ("<", 0.001), "column_shapes": (">=", 0.97), "column_pair_trends": (">=", 0.90),
           "dcr_median": (">=", "ref"), "near_copy_rate": ("<=", "ref"), "ordered_histories": (">=", 1.0),
           "gap_ks_complement": (">=", 0.90), "span_ratio": ("within", 2.0), "use_chip_ratio": (">=", 0.90),
           "utility_ratio": (">=", 0.90)}
#: rows whose target is about privacy: never "met" without the training rows
PRIVACY_ROWS = ("exact_copy_rate", "dcr_median", "near_copy_rate", "dcr_closer_to_train_share")
NO_TRAIN = "held-out rows, NOT the training rows (no training rows given): privacy is not assessed"


def evaluate(real: pd.DataFrame, synthetic: pd.DataFrame, train: pd.DataFrame | None = None, *,
             seed: int = 0, dcr_rows: int = 2000, utility: bool = True,
             utility_extra: pd.DataFrame | None = None, field: bool = True) -> dict:
    """All metrics as a JSON-able dict: ``summary`` (headline scores, targets, pass/fail) and the details.

    Parameters
    ----------
    real : typed table, the held-out real reference.
    synthetic : typed table to judge.
    train : typed table the model was trained on; copies and DCR are measured
        against it. Without it ``real`` stands in, ``privacy_reference`` says so and the
        privacy rows of the summary have no verdict.
    utility_extra : more synthetic rows, used only to train the synthetic fraud classifier.
    field : also compute the SDMetrics scores (``sdm``; the DCR part takes ~10 s per 1,000 rows).
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
        "use_chip": use_chip_metrics(tf, rf, sf, seed) if utility else {},
        "histories": history_metrics(train, synthetic),
        "privacy_reference": "training rows" if has_train else NO_TRAIN,
    }
    report["coarse"]["near_copy_rate"] = near_copy_rate(train, synthetic)
    report["coarse"]["holdout_near_copy_rate"] = near_copy_rate(train, real) if has_train else None
    if field:
        tv, rv, sv = sdm.sdv_view(train), sdm.sdv_view(real), sdm.sdv_view(synthetic)
        report["sdmetrics"] = {"against_train": sdm.quality(tv, sv), "against_holdout": sdm.quality(rv, sv),
                               "dcr": sdm.dcr(tv, rv, sv, max_rows=dcr_rows, seed=seed)}
        if has_train:
            report["sdmetrics"]["holdout_against_train"] = sdm.quality(tv, rv)
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
    """Headline scores with their targets and references; privacy rows have no verdict without training rows."""
    ref = report.get("reference", {})
    field = report.get("sdmetrics")
    hist = report["histories"]
    chip = report.get("use_chip", {})
    rows = {
        "exact_copy_rate": (report["coarse"]["exact_copy_rate"], report["coarse"].get("holdout_exact_copy_rate")),
        "near_copy_rate": (report["coarse"]["near_copy_rate"], report["coarse"].get("holdout_near_copy_rate")),
        "self_duplicate_rate": (report["coarse"]["self_duplicate_rate"], report["coarse"]["real_self_duplicate_rate"]),
    }
    if field:
        holdout_q = field.get("holdout_against_train", {})
        rows.update({
            "dcr_median": (field["dcr"]["synthetic_median"], field["dcr"]["holdout_median"]),
            "column_shapes": (field["against_train"]["column_shapes"], holdout_q.get("column_shapes")),
            "column_pair_trends": (field["against_train"]["column_pair_trends"], holdout_q.get("column_pair_trends")),
        })
    rows.update({
        "dcr_closer_to_train_share": (report["dcr"]["dcr_closer_to_train_share"], 0.5),
        "ordered_histories": (hist["ordered_share"], 1.0),
        "gap_ks_complement": (hist["gap_ks_complement"], 1.0),
        "span_ratio": (hist["span_ratio"], 1.0),
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
        "use_chip_accuracy": (chip.get("accuracy_synthetic"), chip.get("accuracy_real")),
        "use_chip_ratio": (chip.get("use_chip_ratio"), 1.0),
        "fraud_auc_synthetic": (report["utility"].get("auc_synthetic"), report["utility"].get("auc_real")),
        "utility_ratio": (report["utility"].get("utility_ratio"), 1.0),
    })
    has_train = report["privacy_reference"] == "training rows"
    out = {}
    for name, (value, reference) in rows.items():
        entry = {"value": _num(value), "reference": _num(reference)}
        if name in TARGETS:
            op, target = TARGETS[name]
            entry["target"] = f"{op} {'reference' if target == 'ref' else target}"
            v, t = entry["value"], entry["reference"] if target == "ref" else target
            if v is None or t is None or (name in PRIVACY_ROWS and not has_train):
                entry["pass"] = None
            elif op == "within":
                entry["pass"] = bool(1.0 / t <= v <= t)
            else:
                entry["pass"] = bool(v < t if op == "<" else v <= t if op == "<=" else v >= t)
        if name in PRIVACY_ROWS and not has_train:
            entry["note"] = "against the held-out rows: no training rows given"
        out[name] = entry
    return out


def _num(v):
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v
