"""Privacy of a synthetic table: does it copy its training rows or training cards?

exact copies
    ``exact_copy_rate``: share of synthetic rows equal, in every column but the
    user id, to a training row (flagged above ``COPY_FLAG_RATE``);
    ``near_copy_rate``: the same in every column but the user id and the time (the
    privacy target: no more frequent than among real held-out rows);
    ``self_duplicate_rate``: share of synthetic rows equal to an earlier synthetic row.
distance to closest record (DCR)
    Gower distance over amount, time of day and the categorical columns (the
    date is left out: the held-out period is later by construction, so it would
    make every synthetic row look closer to the training data than real rows
    are). ``dcr_closer_to_train_share``: share of synthetic rows nearer to a
    training row than to a held-out row, with equally many of each: ~0.5 for a
    model that generalises, ~1 for one that copies.
copied trajectories
    the longest run of identical merchants (and of identical merchant *and*
    amount) shared by a synthetic history and a training card, against held-out
    card pieces of the same length as the reference.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data_sources.tabformer import TYPED_COLUMNS
from forecaster.synthesis.documents import document_keys
from forecaster.synthesis.features import MISSING

#: an exact-copy rate above this is flagged (the target of the reference evaluation)
COPY_FLAG_RATE = 0.001
#: every typed column except the user id: what an exact copy must match
COPY_COLUMNS: tuple[str, ...] = tuple(c for c in TYPED_COLUMNS if c != "user")


#: what a near-copy must match: every column but the user id and the time
NEAR_COPY_COLUMNS: tuple[str, ...] = tuple(c for c in COPY_COLUMNS if c != "timestamp")


def _row_keys(table: pd.DataFrame, columns) -> pd.Series:
    """One hashable key per row over ``columns`` (missing values compare equal)."""
    return pd.util.hash_pandas_object(table[list(columns)].astype(object).fillna(MISSING).astype(str), index=False)


def exact_copy_rate(train: pd.DataFrame, synthetic: pd.DataFrame, columns=COPY_COLUMNS) -> float:
    """Share of ``synthetic`` rows equal to some ``train`` row in every one of ``columns``."""
    if len(synthetic) == 0:
        return 0.0
    return float(np.isin(_row_keys(synthetic, columns).to_numpy(), _row_keys(train, columns).to_numpy()).mean())


def near_copy_keys(table: pd.DataFrame) -> np.ndarray:
    """(rows,) uint64 hash of each row over ``NEAR_COPY_COLUMNS`` (what generation's ``dedupe`` compares)."""
    return _row_keys(table, NEAR_COPY_COLUMNS).to_numpy()


class NearCopyIndex:
    """The training rows, for "is this row (nearly) a training row?" at generation time.

    A row is *close* to the training rows when some training row equals it in every
    column but the user id, the time and the amount, with an amount within ``tolerance``
    dollars (``tolerance=0``: a near-copy, equal in every column but the time).
    """

    def __init__(self, train: pd.DataFrame) -> None:
        keys = _row_keys(train, [c for c in NEAR_COPY_COLUMNS if c != "amount"]).to_numpy()
        self.unique = np.unique(keys)
        # one sortable int64 per row: the key's rank, then the amount in cents (|amount| < $1M)
        self.comp = np.sort(self._composite(np.searchsorted(self.unique, keys), train["amount"].to_numpy()))

    @staticmethod
    def _composite(rank: np.ndarray, amount: np.ndarray) -> np.ndarray:
        cents = np.round((np.asarray(amount, dtype=np.float64) + 1e6) * 100).astype(np.int64)
        return rank.astype(np.int64) * 10**9 + cents

    def amount_distance(self, table: pd.DataFrame) -> np.ndarray:
        """(rows,) dollars to the nearest amount among training rows equal in every other column but the time
        (``inf`` where there is none)."""
        q = _row_keys(table, [c for c in NEAR_COPY_COLUMNS if c != "amount"]).to_numpy()
        rank = np.clip(np.searchsorted(self.unique, q), 0, max(len(self.unique) - 1, 0))
        seen = (self.unique[rank] == q) if len(self.unique) else np.zeros(len(q), bool)
        comp = self._composite(rank, table["amount"].to_numpy())
        j = np.searchsorted(self.comp, comp)
        out = np.full(len(q), np.inf)
        for nb in (np.clip(j - 1, 0, len(self.comp) - 1), np.clip(j, 0, len(self.comp) - 1)):
            other = self.comp[nb]
            same = seen & (other // 10**9 == rank)
            out = np.where(same, np.minimum(out, np.abs(other - comp) / 100.0), out)
        return out

    def close(self, table: pd.DataFrame, tolerance: float = 0.0) -> np.ndarray:
        """(rows,) bool: within ``tolerance`` dollars of a training row equal in every other column but the time."""
        return self.amount_distance(table) <= tolerance + 1e-9


def near_copy_rate(train: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Share of ``synthetic`` rows equal to a ``train`` row in every column but the user id and the time."""
    return exact_copy_rate(train, synthetic, NEAR_COPY_COLUMNS)


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


# -- trajectories ------------------------------------------------------------------------------
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
