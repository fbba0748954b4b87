"""Are synthetic card histories histories? Order, time gaps and the time a stretch of rows spans.

Every measure reads a table *in its row order* (never sorted here): a history is the
rows of one (user, card) as they come.

``ordered_share``
    share of histories whose timestamps never go back (1 by construction for the
    day-level synthesizer: it samples the gap to the previous row);
``out_of_order_rows``
    rows earlier than the row before them in their history;
``gap_ks_complement``
    1 - KS between the gaps (minutes from a card's row to its next) of the synthetic
    histories and of the real cards;
``span_days_median``
    median days covered by a stretch of ``span_rows`` consecutive rows (histories cut
    into such stretches), synthetic and real, and their ratio (``span_ratio``, 1 ideal).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.synthesis.documents import document_keys, order_cards
from forecaster.synthesis.fidelity import ks_complement


def _runs(table: pd.DataFrame) -> list[np.ndarray]:
    """Per (user, card) in row order: its timestamps as int64 minutes (rows of a card need not be adjacent)."""
    keys = document_keys(table)
    ts = table["timestamp"].to_numpy().astype("datetime64[m]").astype(np.int64)
    order = np.argsort(keys, kind="stable")  # groups the cards, keeps each card's row order
    k, t = keys[order], ts[order]
    cuts = np.flatnonzero(np.diff(k)) + 1
    return np.split(t, cuts)


def _spans(runs: list[np.ndarray], span_rows: int) -> np.ndarray:
    out = [r[i + span_rows - 1] - r[i] for r in runs for i in range(0, len(r) - span_rows + 1, span_rows)]
    return np.asarray(out, dtype=np.float64) / 1440.0


def history_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, span_rows: int = 200) -> dict:
    """The measures of the module doc for ``synthetic`` (in its row order) against ``real`` (ordered by time)."""
    syn_runs = _runs(synthetic)
    real_runs = _runs(order_cards(real))
    back = [int((np.diff(r) < 0).sum()) for r in syn_runs]
    syn_gaps = np.concatenate([np.diff(r) for r in syn_runs] + [np.zeros(0)]).astype(np.float64)
    real_gaps = np.concatenate([np.diff(r) for r in real_runs] + [np.zeros(0)]).astype(np.float64)
    syn_span, real_span = _spans(syn_runs, span_rows), _spans(real_runs, span_rows)
    out = {"histories": len(syn_runs), "ordered_share": float(np.mean([b == 0 for b in back])) if back else 0.0,
           "out_of_order_rows": int(sum(back)),
           "gap_ks_complement": ks_complement(real_gaps, syn_gaps),
           "gap_days_max_synthetic": float(syn_gaps.max() / 1440) if len(syn_gaps) else 0.0,
           "gap_days_max_real": float(real_gaps.max() / 1440) if len(real_gaps) else 0.0,
           "span_rows": span_rows,
           "span_days_median_synthetic": float(np.median(syn_span)) if len(syn_span) else None,
           "span_days_median_real": float(np.median(real_span)) if len(real_span) else None}
    s, r = out["span_days_median_synthetic"], out["span_days_median_real"]
    out["span_ratio"] = float(s / r) if s is not None and r else None
    return out
