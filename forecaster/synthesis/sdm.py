"""The field's standard scores, computed by SDMetrics (``sdmetrics``), not by project code.

- **column shapes**: SDMetrics' single-table ``QualityReport`` (KS complement for
  numbers and the timestamp, TV complement for categories);
- **column pair trends**: SDMetrics' pair metrics, averaged over the pairs as the
  report does: ``CorrelationSimilarity`` for two numbers (the timestamp as a number),
  ``ContingencySimilarity`` otherwise, with numbers cut into 10 bins of the
  *reference's* range, the ends open (``continuous_column_names``). The report of the
  version that installs beside pandas 3 (0.25) bins each table on its own range, so a
  real sample of the training rows would score only 0.90 against them (0.60 on every
  amount pair): its maintainers' stated method is the reference's bins, as here;
- **distance to closest record** (DCR): SDMetrics' ``calculate_dcr`` (per row, the
  Gower-style mean over columns of ``|a - b| / range`` for numbers, 0/1 for categories)
  of synthetic rows, and of real held-out rows, to the training rows; and
  ``DCROverfittingProtection`` (how many synthetic rows are closer to the training
  rows than to the held-out rows, scored 0..1, 1 = no sign of overfitting).

Every table is first put in one view (``sdv_view``): the typed TabFormer columns but
``user``, identifiers and missing values as text categories. DCR leaves out the
timestamp (``DCR_COLUMNS``): the held-out rows are a later period by construction,
which would make any in-period row look "close" to training and every held-out row
look "far"; a near-copy (``privacy.near_copy_rate``) is likewise "equal in every
column but the time".
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from forecaster.synthesis.features import MISSING

#: the compared columns and their SDMetrics types
SDV_COLUMNS: dict[str, str] = {
    "card": "categorical", "timestamp": "datetime", "amount": "numerical", "use_chip": "categorical",
    "merchant_name": "categorical", "merchant_city": "categorical", "merchant_state": "categorical",
    "zip": "categorical", "mcc": "categorical", "errors": "categorical", "is_fraud": "categorical",
}
#: DCR's columns: every compared column but the time (see the module doc)
DCR_COLUMNS: tuple[str, ...] = tuple(c for c in SDV_COLUMNS if c != "timestamp")
_IDENTIFIERS = ("card", "merchant_name", "zip", "mcc")


def metadata(columns=tuple(SDV_COLUMNS)) -> dict:
    """SDMetrics single-table metadata of ``columns`` (a dict, as ``sdmetrics`` takes it)."""
    cols = {}
    for c in columns:
        kind = SDV_COLUMNS[c]
        cols[c] = {"sdtype": kind, **({"datetime_format": "%Y-%m-%d %H:%M:%S"} if kind == "datetime" else {})}
    return {"columns": cols}


def sdv_view(table: pd.DataFrame) -> pd.DataFrame:
    """A typed TabFormer table as SDMetrics compares it: ``SDV_COLUMNS``, categories as text (missing -> ``MISSING``)."""
    out = {"timestamp": pd.to_datetime(table["timestamp"]).astype("datetime64[ns]").to_numpy(),
           "amount": table["amount"].astype(float).to_numpy()}
    for c, kind in SDV_COLUMNS.items():
        if kind != "categorical":
            continue
        s = table[c]
        if c in _IDENTIFIERS:  # "91750", never "91750.0"
            s = s.astype("Int64")
        s = s.astype(object)
        out[c] = np.where(pd.isna(s), MISSING, s.astype(str)).astype(object)
    return pd.DataFrame({c: out[c] for c in SDV_COLUMNS})


def quality(reference: pd.DataFrame, synthetic: pd.DataFrame) -> dict:
    """Column shapes and column pair trends of ``synthetic`` against ``reference`` (both ``sdv_view``), 0..1.

    Returns ``column_shapes``, ``column_pair_trends``, ``per_column`` {column: shape score}
    and ``per_pair`` {"a|b": trend score} (see the module doc).
    """
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(reference, synthetic, metadata(), verbose=False)
        shapes = report.get_details("Column Shapes")
        ref, syn = _numeric_time(reference), _numeric_time(synthetic)
        pairs = {}
        cols = list(SDV_COLUMNS)
        for i, a in enumerate(cols):
            for b in cols[i + 1:]:
                cont = [c for c in (a, b) if SDV_COLUMNS[c] != "categorical"]
                if len(cont) == 2:
                    score = CorrelationSimilarity.compute(ref[[a, b]], syn[[a, b]])
                else:
                    score = ContingencySimilarity.compute(ref[[a, b]], syn[[a, b]],
                                                          continuous_column_names=cont or None)
                pairs[f"{a}|{b}"] = float(score)
    per_column = {str(r["Column"]): float(r["Score"]) for _, r in shapes.iterrows()}
    return {"column_shapes": float(np.mean(list(per_column.values()))),
            "column_pair_trends": float(np.mean(list(pairs.values()))),
            "per_column": per_column, "per_pair": pairs}


def _numeric_time(view: pd.DataFrame) -> pd.DataFrame:
    """``view`` with the timestamp as float seconds (what SDMetrics' pair metrics compare)."""
    out = view.copy()
    out["timestamp"] = out["timestamp"].astype("datetime64[ns]").astype("int64").astype(float) / 1e9
    return out


def dcr(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, max_rows: int = 2000,
        seed: int = 0) -> dict:
    """Distance to closest record (``DCR_COLUMNS`` of ``sdv_view`` tables; see the module doc).

    ``synthetic_median`` / ``holdout_median``: median DCR of (up to ``max_rows``) synthetic
    and held-out rows to the training rows; ``synthetic_zero_share``: share at distance 0;
    ``overfitting_protection``: SDMetrics' ``DCROverfittingProtection`` score (1 = the
    synthetic rows are no closer to the training rows than to the held-out rows).
    """
    from sdmetrics.single_table import DCROverfittingProtection
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    rng = np.random.default_rng(seed)
    cols = list(DCR_COLUMNS)
    meta = metadata(cols)

    def sample(f: pd.DataFrame) -> pd.DataFrame:
        idx = np.sort(rng.choice(len(f), size=min(max_rows, len(f)), replace=False))
        return f.iloc[idx][cols].reset_index(drop=True)

    tr = train[cols].reset_index(drop=True)
    syn_q, ho_q = sample(synthetic), sample(holdout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        syn_d = np.asarray(calculate_dcr(syn_q, tr, meta), dtype=float)
        ho_d = np.asarray(calculate_dcr(ho_q, tr, meta), dtype=float)
        n = min(len(train), len(holdout), len(synthetic), max_rows)
        over = DCROverfittingProtection.compute_breakdown(tr, syn_q, holdout[cols].reset_index(drop=True), meta,
                                                          num_rows_subsample=n, num_iterations=1)
    return {"synthetic_median": float(np.median(syn_d)), "holdout_median": float(np.median(ho_d)),
            "synthetic_p05": float(np.quantile(syn_d, 0.05)), "holdout_p05": float(np.quantile(ho_d, 0.05)),
            "synthetic_zero_share": float((syn_d == 0).mean()), "holdout_zero_share": float((ho_d == 0).mean()),
            "overfitting_protection": float(over["score"]),
            "synthetic_closer_to_train_share": float(over.get("synthetic_data_percentages", {})
                                                     .get("closer_to_training", np.nan)),
            "rows": int(len(syn_q))}
