"""Machine-learning utility of a synthetic table: does a fraud classifier trained on it work on real rows?

A fraud classifier (histogram gradient boosting) is trained on the synthetic rows
and on the training rows, both tested on the held-out rows: ROC AUC and average
precision; ``utility_ratio = AUC(synthetic) / AUC(real)``. Frauds are rare (0.1% of
the sample), so a synthetic sample of realistic size may hold none; the caller may
add synthetic rows (e.g. generated with the condition ``is_fraud=Yes``) to the
synthetic classifier's training rows only (``evaluate(utility_extra=...)``).

``use_chip_metrics``: a second, balanced task: predict how the card was used (chip,
swipe, online) from the rest of the row (amount, time, date, merchant, place, MCC,
errors, card); accuracy on the held-out rows of a classifier trained on synthetic
rows, against one trained on the real training rows (``use_chip_ratio``).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from threadpoolctl import threadpool_limits


def _fraud_xy(f: pd.DataFrame, cats: dict[str, pd.Index]) -> tuple[np.ndarray, np.ndarray]:
    x = [f["amount"].to_numpy(), f["time_of_day"].to_numpy()]
    for c in cats:
        x.append(cats[c].get_indexer(f[c]).astype(float))
    x = np.stack(x, axis=1)
    x[x == -1] = np.nan  # a value unseen in training is "missing"
    return x, (f["is_fraud"] == "True").to_numpy().astype(int)


def utility_metrics(train_f: pd.DataFrame, real_f: pd.DataFrame, syn_f: pd.DataFrame, seed: int = 0) -> dict:
    """Fraud classifier trained on synthetic vs on real training rows, tested on the held-out rows."""
    cat_cols = ["use_chip", "merchant_state", "mcc", "errors", "weekday", "merchant_city"]
    out: dict = {"test_rows": int(len(real_f)), "test_frauds": int((real_f["is_fraud"] == "True").sum()),
                 "train_frauds": int((train_f["is_fraud"] == "True").sum()),
                 "synthetic_frauds": int((syn_f["is_fraud"] == "True").sum())}
    if out["test_frauds"] == 0 or out["test_frauds"] == len(real_f):
        out["note"] = "the held-out rows have one class only; no AUC"
        return out
    for name, f in (("real", train_f), ("synthetic", syn_f)):
        cats = {c: pd.Index(pd.unique(f[c])[:250]) for c in cat_cols}
        x, y = _fraud_xy(f, cats)
        xt, yt = _fraud_xy(real_f, cats)
        if y.min() == y.max():
            out[f"auc_{name}"] = 0.5  # one class: the classifier can only guess
            out[f"ap_{name}"] = float(yt.mean())
            out[f"note_{name}"] = "training rows have one class only; scored as a random guess"
            continue
        clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, class_weight="balanced",
                                             categorical_features=list(range(2, 2 + len(cat_cols))),
                                             random_state=seed)
        with threadpool_limits(1):  # OpenMP threads on a shared, loaded CPU are many times slower
            clf.fit(x, y)
            p = clf.predict_proba(xt)[:, 1]
        out[f"auc_{name}"] = float(roc_auc_score(yt, p))
        out[f"ap_{name}"] = float(average_precision_score(yt, p))
    out["utility_ratio"] = float(out["auc_synthetic"] / out["auc_real"]) if out.get("auc_real") else math.nan
    return out


_CHIP_CATS = ["card", "merchant_name", "merchant_city", "merchant_state", "zip", "mcc", "errors", "weekday"]


def _chip_xy(f: pd.DataFrame, cats: dict[str, pd.Index], classes: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    x = [f["amount"].to_numpy(), f["time_of_day"].to_numpy(), f["date"].to_numpy()]
    for c in _CHIP_CATS:
        x.append(cats[c].get_indexer(f[c]).astype(float))
    x = np.stack(x, axis=1)
    x[:, 3:][x[:, 3:] == -1] = np.nan  # a value unseen in training is "missing"
    return x, classes.get_indexer(f["use_chip"])


def use_chip_metrics(train_f: pd.DataFrame, real_f: pd.DataFrame, syn_f: pd.DataFrame, seed: int = 0) -> dict:
    """Accuracy on the held-out rows of a use-chip classifier trained on synthetic vs on real training rows."""
    classes = pd.Index(sorted(set(real_f["use_chip"]) | set(train_f["use_chip"]) | set(syn_f["use_chip"])))
    out: dict = {"test_rows": int(len(real_f))}
    for name, f in (("real", train_f), ("synthetic", syn_f)):
        cats = {c: pd.Index(pd.unique(f[c])[:250]) for c in _CHIP_CATS}
        x, y = _chip_xy(f, cats, classes)
        xt, yt = _chip_xy(real_f, cats, classes)
        if len(np.unique(y)) < 2:
            out[f"accuracy_{name}"] = float((yt == y[0]).mean()) if len(y) else 0.0
            continue
        clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1,
                                             categorical_features=list(range(3, 3 + len(_CHIP_CATS))),
                                             random_state=seed)
        with threadpool_limits(1):
            clf.fit(x, y)
            out[f"accuracy_{name}"] = float((clf.predict(xt) == yt).mean())
    out["majority_class_accuracy"] = float(pd.Series(real_f["use_chip"]).value_counts(normalize=True).iloc[0])
    out["use_chip_ratio"] = float(out["accuracy_synthetic"] / out["accuracy_real"]) if out["accuracy_real"] else math.nan
    return out
