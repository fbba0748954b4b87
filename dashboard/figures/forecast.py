"""Figures of the Forecast page: the fan chart (``forecaster.market.plots``), the summary rows, the learning curve."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from forecaster.market.plots import apply_layout, empty_figure, fan_chart, series_label

__all__ = ["fan_chart", "summary_rows", "learning_curve"]


def summary_rows(fc, days=(21, 63, 125, 250)) -> list[dict]:
    """Rows for the summary table: series, horizon, date, last level, 5/25/50/75/95% quantiles (rounded)."""
    table = fc.summary_table(days=days)
    rows = []
    for rec in table.to_dict("records"):
        _, unit = series_label(rec["series"])
        row = {"series": rec["series"], "unit": unit, "horizon": f"{rec['day']}d", "date": str(pd.Timestamp(rec["date"]).date())}
        for key in ("last", "q05", "q25", "q50", "q75", "q95"):
            v = rec.get(key)
            row[key] = None if v is None or not np.isfinite(v) else float(np.round(v, 2))
        rows.append(row)
    return rows


def learning_curve(metrics: pd.DataFrame) -> go.Figure:
    """Train and validation loss by optimizer step (from metrics.jsonl)."""
    if metrics.empty or "loss" not in metrics.columns:
        return empty_figure("no metrics.jsonl in this run")
    fig = go.Figure()
    for split, color in (("train", "#1f5fa8"), ("val", "#e67e22")):
        part = metrics[metrics.get("split") == split] if "split" in metrics.columns else metrics
        if len(part):
            fig.add_trace(go.Scatter(x=part["step"], y=part["loss"], mode="lines", name=f"{split} loss",
                                     line=dict(color=color), hovertemplate=f"{split}: %{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(title_text="optimizer step")
    return apply_layout(fig, "Learning curve", "cross-entropy (nats/token)", height=260)
