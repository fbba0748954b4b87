"""Figures of the Synthesis page: real vs synthetic distributions and per-column fidelity scores."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from forecaster.market.plots import apply_layout, empty_figure

def distribution_compare(real: pd.Series, synthetic: pd.Series, column: str, max_categories: int = 15) -> go.Figure:
    """Real vs synthetic distribution of one column: overlaid histograms (numbers) or category shares."""
    real_c = "#1f5fa8"
    syn_c = "#e67e22"
    numeric = pd.api.types.is_numeric_dtype(real) and not pd.api.types.is_bool_dtype(real) and real.nunique() > 12
    fig = go.Figure()
    if numeric:
        r = pd.to_numeric(real, errors="coerce").dropna()
        s = pd.to_numeric(synthetic, errors="coerce").dropna()
        both = pd.concat([r, s])
        lo, hi = both.quantile(0.005), both.quantile(0.995)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, 41)
        for data, name, color in ((r, "real", real_c), (s, "synthetic", syn_c)):
            counts, _ = np.histogram(data.clip(lo, hi), bins=edges)
            share = 100 * counts / max(counts.sum(), 1)
            fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=share, name=f"{name} (n={len(data):,})",
                                 marker_color=color, opacity=0.6, width=(edges[1] - edges[0]),
                                 hovertemplate=f"{name}: %{{y:.1f}}% near %{{x:.4g}}<extra></extra>"))
        fig.update_layout(barmode="overlay")
        fig.update_xaxes(title_text=column)
    else:
        r = real.astype(str).value_counts(normalize=True)
        s = synthetic.astype(str).value_counts(normalize=True)
        top = r.index[:max_categories].tolist()
        for data, name, color in ((r, "real", real_c), (s, "synthetic", syn_c)):
            fig.add_trace(go.Bar(x=top, y=[100 * data.get(c, 0.0) for c in top], name=name, marker_color=color,
                                 hovertemplate=f"{name} %{{x}}: %{{y:.1f}}%<extra></extra>"))
        fig.update_layout(barmode="group")
    fig.update_yaxes(ticksuffix="%")
    fig = apply_layout(fig, f"{column}: real vs synthetic", "share of rows", height=360)
    fig.update_layout(hovermode="closest")
    return fig


def column_scores(scores: dict, reference: dict | None = None) -> go.Figure:
    """Per-column fidelity (1 - KS or 1 - TV, 1 = identical distributions), with the real-vs-real reference."""
    if not scores:
        return empty_figure("no per-column scores in this report")
    names = list(scores)
    fig = go.Figure(go.Bar(x=names, y=[scores[n] for n in names], name="synthetic vs real", marker_color="#e67e22",
                           hovertemplate="%{x}: %{y:.3f}<extra>synthetic</extra>"))
    if reference:
        fig.add_trace(go.Scatter(x=names, y=[reference.get(n) for n in names], mode="markers", name="real vs real (reference)",
                                 marker=dict(color="#1f5fa8", symbol="line-ew-open", size=18, line=dict(width=3)),
                                 hovertemplate="%{x}: %{y:.3f}<extra>reference</extra>"))
    fig.update_yaxes(range=[0, 1.02])
    fig = apply_layout(fig, "Column fidelity (1 = same distribution as the real rows)", "score", height=300)
    fig.update_layout(hovermode="closest")
    return fig
