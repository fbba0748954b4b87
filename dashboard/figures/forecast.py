"""Figures of the Forecast page: the fan chart, the summary table rows and the learning curve."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.common import (
    add_fan, apply_layout, as_of_marker, empty_figure, fan_quantiles, rgba, series_color, series_label, value_format,
)

def fan_chart(fc, series: str, n_sample_paths: int = 0, history_days: int = 250, seed: int = 0) -> go.Figure:
    """Fan chart of one series of a ``Forecast``: history up to the as-of date, then median and 50/80/90% bands.

    ``n_sample_paths`` thin sample paths (chosen with ``seed``) are drawn on top when > 0.
    """
    desc, unit = series_label(series)
    color = series_color(series)
    fmt = value_format(unit)
    paths = fc.column(series)  # (paths, horizon)
    fig = go.Figure()
    if series in fc.history.columns and history_days > 0:
        hist = fc.history[series].dropna().iloc[-history_days:]
        fig.add_trace(go.Scatter(x=hist.index, y=hist.to_numpy(), mode="lines", name=f"{series} history",
                                 line=dict(color="#3e4c59", width=1.6),
                                 hovertemplate=f"observed: %{{y:{fmt}}} {unit}<extra></extra>"))
    add_fan(fig, fc.dates, fan_quantiles(paths), color, series, unit)
    if n_sample_paths > 0:
        rng = np.random.default_rng(seed)
        pick = rng.choice(paths.shape[0], size=min(n_sample_paths, paths.shape[0]), replace=False)
        for k, i in enumerate(sorted(pick)):
            fig.add_trace(go.Scatter(x=fc.dates, y=paths[i], mode="lines", line=dict(color=rgba(color, 0.55), width=0.9),
                                     name="sample paths" if k == 0 else f"path {i}", legendgroup="samples",
                                     showlegend=k == 0, hovertemplate=f"path {i}: %{{y:{fmt}}}<extra></extra>"))
    as_of_marker(fig, fc.as_of)
    scen = (fc.meta.get("scenario") or {}).get("name")
    title = f"{desc} — {fc.n_paths} paths, {fc.horizon} business days after {fc.as_of.date()}"
    if scen:
        title += f" · scenario {scen}"
    return apply_layout(fig, title, f"{series} ({unit})" if unit else series)


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
