"""Fidelity of a synthetic table: do its columns, pairs of columns and big merchants look like the real ones?

All functions take the compared view (``features.features``) of a real and a synthetic table.

per column
    KS complement ``1 - KS`` for numbers (amount, time of day), total-variation
    complement ``1 - TV`` for categories (missing is a category).
pairs
    correlation similarity ``1 - |r_real - r_syn| / 2`` for two numbers,
    contingency similarity ``1 - TV`` of the joint distribution otherwise
    (numbers cut into real-data deciles).
consistency
    share of synthetic rows whose (city, state), (zip, city), (merchant, city)
    pair occurs in real data.
entities
    overlap of the top-10 merchants and the rank correlation of the top-20
    merchants' frequencies.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp, spearmanr

#: columns compared one by one: name -> "num" or "cat" (derived from the typed table by ``features.features``)
FIDELITY_COLUMNS: dict[str, str] = {
    "amount": "num", "time_of_day": "num", "weekday": "cat", "card": "cat", "use_chip": "cat",
    "merchant_name": "cat", "merchant_city": "cat", "merchant_state": "cat", "zip": "cat", "mcc": "cat",
    "errors": "cat", "is_fraud": "cat",
}


def _codes(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes of two categorical series over their union of values."""
    cats = pd.Index(pd.unique(np.concatenate([a.to_numpy(), b.to_numpy()])))
    return cats.get_indexer(a.to_numpy()), cats.get_indexer(b.to_numpy()), len(cats)


def _tv_complement(ca: np.ndarray, cb: np.ndarray, k: int) -> float:
    """1 - total variation distance between the empirical distributions of two code arrays."""
    if len(ca) == 0 or len(cb) == 0:
        return 0.0
    pa = np.bincount(ca, minlength=k) / len(ca)
    pb = np.bincount(cb, minlength=k) / len(cb)
    return float(1.0 - 0.5 * np.abs(pa - pb).sum())


def ks_complement(a: np.ndarray, b: np.ndarray) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    return float(1.0 - ks_2samp(a, b).statistic)


def column_fidelity(real_f: pd.DataFrame, syn_f: pd.DataFrame) -> dict[str, float]:
    """Per column of ``FIDELITY_COLUMNS``: KS complement (numbers) or TV complement (categories)."""
    out = {}
    for col, kind in FIDELITY_COLUMNS.items():
        if kind == "num":
            out[col] = ks_complement(real_f[col].to_numpy(), syn_f[col].to_numpy())
        else:
            out[col] = _tv_complement(*_codes(real_f[col], syn_f[col]))
    return out


def _binned(real: np.ndarray, syn: np.ndarray, bins: int = 10) -> tuple[pd.Series, pd.Series]:
    edges = np.unique(np.quantile(real, np.linspace(0, 1, bins + 1)[1:-1]))
    return (pd.Series(np.searchsorted(edges, real, side="right").astype(str)),
            pd.Series(np.searchsorted(edges, syn, side="right").astype(str)))


def pairwise_fidelity(real_f: pd.DataFrame, syn_f: pd.DataFrame) -> dict[str, float]:
    """Per pair "a|b" of ``FIDELITY_COLUMNS``: correlation similarity or contingency similarity."""
    cols = list(FIDELITY_COLUMNS)
    cat_view_r, cat_view_s = {}, {}
    for col in cols:
        if FIDELITY_COLUMNS[col] == "num":
            cat_view_r[col], cat_view_s[col] = _binned(real_f[col].to_numpy(), syn_f[col].to_numpy())
        else:
            cat_view_r[col], cat_view_s[col] = real_f[col].reset_index(drop=True), syn_f[col].reset_index(drop=True)
    codes = {c: _codes(cat_view_r[c], cat_view_s[c]) for c in cols}
    out = {}
    for a, b in combinations(cols, 2):
        if FIDELITY_COLUMNS[a] == FIDELITY_COLUMNS[b] == "num":
            ra = _corr(real_f[a].to_numpy(), real_f[b].to_numpy())
            rs = _corr(syn_f[a].to_numpy(), syn_f[b].to_numpy())
            out[f"{a}|{b}"] = float(1.0 - abs(ra - rs) / 2.0)
            continue
        ar, as_, ka = codes[a]
        br, bs, kb = codes[b]
        out[f"{a}|{b}"] = _tv_complement(ar * kb + br, as_ * kb + bs, ka * kb)
    return out


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def consistency(real_f: pd.DataFrame, syn_f: pd.DataFrame) -> dict[str, float]:
    """Share of synthetic rows whose (city, state), (zip, city), (merchant, city) pair occurs in the real rows."""
    out = {}
    for a, b in (("merchant_city", "merchant_state"), ("zip", "merchant_city"), ("merchant_name", "merchant_city")):
        seen = set(zip(real_f[a], real_f[b]))
        pairs = list(zip(syn_f[a], syn_f[b]))
        out[f"{a}|{b}"] = float(np.mean([p in seen for p in pairs])) if pairs else 0.0
    return out


def entity_metrics(real_f: pd.DataFrame, syn_f: pd.DataFrame) -> dict:
    """Do the big merchants stay big? Top-10 overlap and Spearman correlation over the real top 20."""
    rc = real_f["merchant_name"].value_counts()
    sc = syn_f["merchant_name"].value_counts()
    top10 = set(rc.index[:10])
    overlap = len(top10 & set(sc.index[:10])) / max(len(top10), 1)
    top20 = rc.index[:20]
    rho = spearmanr(rc.reindex(top20).to_numpy(), sc.reindex(top20).fillna(0).to_numpy()).statistic if len(top20) > 2 else math.nan
    return {"top10_merchant_overlap": float(overlap), "top20_merchant_spearman": float(np.nan_to_num(rho))}
