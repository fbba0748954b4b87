"""Fidelity, privacy and utility metrics of a synthetic credit-card table.

``evaluate(real, synthetic, train=None)`` compares a synthetic typed TabFormer
table with a real one. ``real`` is the *held-out* reference (transactions the
model never saw); ``train`` is the model's training data, against which copying
is measured (without it, ``real`` is used for both). Every score lies in [0, 1]
and, where it makes sense, comes with a *reference*: the same score of ``real``
against ``train`` (two real samples of the same population), which is what a
perfect synthesizer would reach. Tiers of the reference evaluation:

coarse
    ``exact_copy_rate``: share of synthetic rows equal, in every column but the
    user id, to a training row (flagged above ``COPY_FLAG_RATE``);
    ``self_duplicate_rate``: share of synthetic rows equal to an earlier synthetic row.
privacy (distance to closest record, DCR)
    Gower distance over amount, time of day and the categorical columns (the
    date is left out: the held-out period is later by construction, so it would
    make every synthetic row look closer to the training data than real rows
    are). ``dcr_closer_to_train_share``: share of synthetic rows nearer to a
    training row than to a held-out row, with equally many of each: ~0.5 for a
    model that generalises, ~1 for one that copies.
medium (per column)
    KS complement ``1 - KS`` for numbers (amount, time of day), total-variation
    complement ``1 - TV`` for categories (missing is a category).
fine
    pairs: correlation similarity ``1 - |r_real - r_syn| / 2`` for two numbers,
    contingency similarity ``1 - TV`` of the joint distribution otherwise
    (numbers cut into real-data deciles); consistency: share of synthetic rows
    whose (city, state), (zip, city), (merchant, city) pair occurs in real data;
    copied trajectories: the longest run of identical merchants (and of identical
    merchant *and* amount) shared by a synthetic history and a training card;
    entities: overlap of the top-10 merchants and the rank correlation of the
    top-20 merchants' frequencies.
utility
    a fraud classifier (histogram gradient boosting) trained on the synthetic
    rows and on the training rows, both tested on the held-out rows: ROC AUC and
    average precision; ``utility_ratio = AUC(synthetic) / AUC(real)``. Frauds
    are rare (0.1% of the sample), so a synthetic sample of realistic size may
    hold none; ``utility_extra`` adds synthetic rows (e.g. generated with the
    condition ``is_fraud=Yes``) to the synthetic classifier's training rows only.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd

from data_sources.tabformer import TYPED_COLUMNS
from forecaster.synthesis.documents import check_table, document_keys

#: an exact-copy rate above this is flagged (the target of the reference evaluation)
COPY_FLAG_RATE = 0.001
TARGETS = {"exact_copy_rate": ("<", 0.001), "column_fidelity": (">=", 0.90),
           "pairwise_fidelity": (">=", 0.85), "utility_ratio": (">=", 0.90)}
#: columns compared one by one: name -> "num" or "cat" (derived from the typed table by ``features``)
FIDELITY_COLUMNS: dict[str, str] = {
    "amount": "num", "time_of_day": "num", "weekday": "cat", "card": "cat", "use_chip": "cat",
    "merchant_name": "cat", "merchant_city": "cat", "merchant_state": "cat", "zip": "cat", "mcc": "cat",
    "errors": "cat", "is_fraud": "cat",
}
#: every typed column except the user id: what an exact copy must match
COPY_COLUMNS: tuple[str, ...] = tuple(c for c in TYPED_COLUMNS if c != "user")
_NA = "<NA>"


# -- features ------------------------------------------------------------------------------------
def features(table: pd.DataFrame) -> pd.DataFrame:
    """The compared view of a typed table: numbers as float, categories as text (missing -> "<NA>").

    ``time_of_day`` is minutes after midnight, ``weekday`` 0 = Monday, ``date`` days since 1970.
    """
    ts = table["timestamp"]
    out = {"amount": table["amount"].astype(float).to_numpy(),
           "time_of_day": (ts.dt.hour * 60 + ts.dt.minute).astype(float).to_numpy(),
           "date": (ts.to_numpy().astype("datetime64[D]").astype(np.int64)).astype(float)}
    out["weekday"] = ts.dt.day_of_week.astype(str).to_numpy()
    for col in ("card", "use_chip", "merchant_name", "merchant_city", "merchant_state", "zip", "mcc", "errors",
                "is_fraud"):
        s = table[col]
        if col in ("card", "merchant_name", "zip", "mcc"):  # identifiers: "91750", never "91750.0"
            s = s.astype("Int64")
        s = s.astype(object)
        out[col] = np.where(pd.isna(s), _NA, s.astype(str)).astype(object)
    return pd.DataFrame(out)


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
    from scipy.stats import ks_2samp

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


# -- coarse tier and distance to closest record -----------------------------------------------------
def _row_keys(table: pd.DataFrame, columns) -> pd.Series:
    """One hashable key per row over ``columns`` (missing values compare equal)."""
    return pd.util.hash_pandas_object(table[list(columns)].astype(object).fillna(_NA).astype(str), index=False)


def exact_copy_rate(train: pd.DataFrame, synthetic: pd.DataFrame, columns=COPY_COLUMNS) -> float:
    """Share of ``synthetic`` rows equal to some ``train`` row in every one of ``columns``."""
    if len(synthetic) == 0:
        return 0.0
    return float(np.isin(_row_keys(synthetic, columns).to_numpy(), _row_keys(train, columns).to_numpy()).mean())


def self_duplicate_rate(table: pd.DataFrame, columns=COPY_COLUMNS) -> float:
    """Share of rows equal to an earlier row of the same table (in every one of ``columns``)."""
    if len(table) == 0:
        return 0.0
    return float(_row_keys(table, columns).duplicated().mean())


_DCR_NUM = ("amount", "time_of_day")
_DCR_CAT = ("card", "use_chip", "merchant_name", "merchant_city", "merchant_state", "zip", "mcc", "errors",
            "is_fraud", "weekday")


def _dcr_matrix(frames: list[pd.DataFrame]) -> list[np.ndarray]:
    """Each frame as a float matrix: scaled numbers (signed log amount, day fraction), then category codes."""
    allf = pd.concat(frames, ignore_index=True)
    amount = np.sign(allf["amount"].to_numpy()) * np.log1p(np.abs(allf["amount"].to_numpy()))
    span = max(float(amount.max() - amount.min()), 1e-9)
    cols = [amount / span, allf["time_of_day"].to_numpy() / 1440.0]
    for c in _DCR_CAT:
        cols.append(pd.factorize(allf[c])[0].astype(float))
    m = np.stack(cols, axis=1)
    out, start = [], 0
    for f in frames:
        out.append(m[start:start + len(f)])
        start += len(f)
    return out


def closest_distances(query: np.ndarray, ref: np.ndarray, chunk: int = 512) -> np.ndarray:
    """(len(query),) Gower distance of each query row to its closest ``ref`` row (rows from ``_dcr_matrix``)."""
    n_num = len(_DCR_NUM)
    n_feat = query.shape[1]
    query, ref = query.astype(np.float32), ref.astype(np.float32)
    out = np.empty(len(query))
    for i in range(0, len(query), chunk):
        q = query[i:i + chunk]
        d = np.zeros((len(q), len(ref)), dtype=np.float32)  # (chunk, n_ref), one feature at a time
        for j in range(n_feat):
            if j < n_num:
                d += np.abs(q[:, j, None] - ref[None, :, j])
            else:
                d += q[:, j, None] != ref[None, :, j]
        out[i:i + chunk] = d.min(axis=1) / n_feat
    return out


def dcr_metrics(train_f: pd.DataFrame, real_f: pd.DataFrame, syn_f: pd.DataFrame, max_rows: int = 2000,
                seed: int = 0) -> dict:
    """Distance-to-closest-record statistics (see the module docstring)."""
    rng = np.random.default_rng(seed)

    def sample(f: pd.DataFrame, n: int) -> pd.DataFrame:
        return f.iloc[np.sort(rng.choice(len(f), size=min(n, len(f)), replace=False))]

    n_ref = min(len(train_f), len(real_f), 4 * max_rows)
    tr_all = sample(train_f, 8 * max_rows)  # the whole training set up to a cap: a copied row finds itself
    tr, ho = sample(train_f, n_ref), sample(real_f, n_ref)
    syn_q = sample(syn_f, max_rows)
    # held-out queries against the training rows only: against themselves they would be at distance 0
    ho_q = sample(real_f, max_rows)
    m_all, m_tr, m_ho, m_sq, m_hq = _dcr_matrix([tr_all, tr, ho, syn_q, ho_q])
    syn_all = closest_distances(m_sq, m_all)
    real_all = closest_distances(m_hq, m_all)
    syn_tr = closest_distances(m_sq, m_tr)
    syn_ho = closest_distances(m_sq, m_ho)
    return {"dcr_synthetic_to_train_median": float(np.median(syn_all)),
            "dcr_holdout_to_train_median": float(np.median(real_all)),
            "dcr_synthetic_to_train_p05": float(np.quantile(syn_all, 0.05)),
            "dcr_holdout_to_train_p05": float(np.quantile(real_all, 0.05)),
            "dcr_synthetic_zero_share": float((syn_all == 0).mean()),
            "dcr_holdout_zero_share": float((real_all == 0).mean()),
            "dcr_closer_to_train_share": float((syn_tr < syn_ho).mean() + 0.5 * (syn_tr == syn_ho).mean()),
            "dcr_rows": int(len(syn_q)), "dcr_train_rows": int(len(tr_all)), "dcr_split_rows": int(n_ref)}


# -- trajectories and entities -------------------------------------------------------------------
_B = np.uint64(1_000_003)


def _prefix_hashes(seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polynomial prefix hashes mod 2**64 (``P[i]`` hashes ``seq[:i]``) and the powers of the base."""
    with np.errstate(over="ignore"):
        s = seq.astype(np.uint64) + np.uint64(1)
        pw = np.ones(len(s) + 1, dtype=np.uint64)
        p = np.zeros(len(s) + 1, dtype=np.uint64)
        for i in range(len(s)):  # sequential, but over short int arrays; see _grams for the vector part
            pw[i + 1] = pw[i] * _B
            p[i + 1] = p[i] * _B + s[i]
    return p, pw


def _grams(ph: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
    p, pw = ph
    if len(p) - 1 < n:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return p[n:] - p[:-n] * pw[n]


def longest_shared_runs(histories: list[np.ndarray], references: list[np.ndarray]) -> np.ndarray:
    """For each history (int codes), the longest contiguous run also found in some reference sequence."""
    ref_h = [_prefix_hashes(r) for r in references]
    cache: dict[int, np.ndarray] = {}

    def ref_set(n: int) -> np.ndarray:
        if n not in cache:
            cache[n] = np.unique(np.concatenate([_grams(h, n) for h in ref_h] + [np.zeros(0, np.uint64)]))
        return cache[n]

    out = np.zeros(len(histories), dtype=np.int64)
    for i, seq in enumerate(histories):
        h = _prefix_hashes(seq)
        lo, hi = 0, len(seq)  # invariant: a run of lo exists; none longer than hi
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if np.isin(_grams(h, mid), ref_set(mid)).any():
                lo = mid
            else:
                hi = mid - 1
        out[i] = lo
    return out


def _sequences(table: pd.DataFrame, values: np.ndarray, cut: int | None = None) -> list[np.ndarray]:
    """Per (user, card), the codes ``values`` in time order; cut into pieces of ``cut`` rows if given."""
    keys = document_keys(table)
    order = np.lexsort((table["timestamp"].to_numpy(), keys))
    keys, values = keys[order], values[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    seqs = np.split(values, bounds)
    if cut:
        seqs = [s[i:i + cut] for s in seqs for i in range(0, len(s), cut)]
    return [s for s in seqs if len(s)]


def trajectory_metrics(train: pd.DataFrame, real: pd.DataFrame, synthetic: pd.DataFrame) -> dict:
    """Longest merchant (and merchant+amount) runs shared with a training card; held-out pieces as reference."""
    out: dict = {}
    syn_len = int(np.median(synthetic.groupby(["user", "card"]).size())) if len(synthetic) else 0
    for name, cols in (("merchant", ["merchant_name"]), ("merchant_amount", ["merchant_name", "amount"])):
        both = pd.concat([t[cols] for t in (train, real, synthetic)], ignore_index=True)
        codes = both.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()
        n_tr, n_re = len(train), len(real)
        tr_seq = _sequences(train, codes[:n_tr])
        syn_runs = longest_shared_runs(_sequences(synthetic, codes[n_tr + n_re:]), tr_seq)
        ref_runs = longest_shared_runs(_sequences(real, codes[n_tr:n_tr + n_re], cut=max(syn_len, 1)), tr_seq)
        for label, runs in (("synthetic", syn_runs), ("holdout", ref_runs)):
            out[f"{name}_run_{label}_max"] = int(runs.max()) if len(runs) else 0
            out[f"{name}_run_{label}_median"] = float(np.median(runs)) if len(runs) else 0.0
    out["history_rows_median"] = syn_len
    return out


def entity_metrics(real_f: pd.DataFrame, syn_f: pd.DataFrame) -> dict:
    """Do the big merchants stay big? Top-10 overlap and Spearman correlation over the real top 20."""
    from scipy.stats import spearmanr

    rc = real_f["merchant_name"].value_counts()
    sc = syn_f["merchant_name"].value_counts()
    top10 = set(rc.index[:10])
    overlap = len(top10 & set(sc.index[:10])) / max(len(top10), 1)
    top20 = rc.index[:20]
    rho = spearmanr(rc.reindex(top20).to_numpy(), sc.reindex(top20).fillna(0).to_numpy()).statistic if len(top20) > 2 else math.nan
    return {"top10_merchant_overlap": float(overlap), "top20_merchant_spearman": float(np.nan_to_num(rho))}


# -- machine-learning utility ----------------------------------------------------------------------
def _fraud_xy(f: pd.DataFrame, cats: dict[str, pd.Index]) -> tuple[np.ndarray, np.ndarray]:
    x = [f["amount"].to_numpy(), f["time_of_day"].to_numpy()]
    for c in cats:
        x.append(cats[c].get_indexer(f[c]).astype(float))
    x = np.stack(x, axis=1)
    x[x == -1] = np.nan  # a value unseen in training is "missing"
    return x, (f["is_fraud"] == "True").to_numpy().astype(int)


def utility_metrics(train_f: pd.DataFrame, real_f: pd.DataFrame, syn_f: pd.DataFrame, seed: int = 0) -> dict:
    """Fraud classifier trained on synthetic vs on real training rows, tested on the held-out rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, roc_auc_score
    from threadpoolctl import threadpool_limits

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


# -- everything --------------------------------------------------------------------------------
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
