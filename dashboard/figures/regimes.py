"""Figures of the Regimes page: regime probabilities by horizon, the regime series' history, one day's bars."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from forecaster.market.plots import (
    apply_layout, empty_figure, regime_colors, rgba, series_color, series_label, value_format,
)

def regime_stack(probs: pd.DataFrame, regime, as_of=None) -> go.Figure:
    """Stacked probability (%) of each regime by horizon date; ``probs`` is (horizon, labels) in [0, 1]."""
    colors = regime_colors(regime.labels)
    fig = go.Figure()
    for label in regime.labels:
        fig.add_trace(go.Scatter(x=probs.index, y=100 * probs[label].to_numpy(), mode="lines", stackgroup="one",
                                 name=label, line=dict(width=0.5, color=colors[label]), fillcolor=rgba(colors[label], 0.75),
                                 hovertemplate=f"{label}: %{{y:.0f}}%<extra></extra>"))
    fig.update_yaxes(range=[0, 100], ticksuffix="%")
    edges = ", ".join(f"{e:g}" for e in regime.edges)
    return apply_layout(fig, f"{regime.name.capitalize()} regime probability by horizon ({regime.series}; cuts at {edges} {regime.unit})",
                   "probability", height=340)


def regime_history(values: pd.Series, regime, history_years: float | None = None) -> go.Figure:
    """The regime series' history with the regime bands shaded behind it."""
    colors = regime_colors(regime.labels)
    values = values.dropna()
    if history_years:
        values = values[values.index >= values.index[-1] - pd.DateOffset(years=int(history_years))]
    if values.empty:
        return empty_figure(f"no history of {regime.series} in this panel")
    lo, hi = float(values.min()), float(values.max())
    pad = 0.05 * (hi - lo or 1.0)
    cuts = [lo - pad] + [e for e in regime.edges] + [hi + pad]
    fig = go.Figure()
    for label, y0, y1 in zip(regime.labels, cuts[:-1], cuts[1:]):
        y0c, y1c = max(y0, lo - pad), min(y1, hi + pad)
        if y1c <= y0c:
            continue
        fig.add_hrect(y0=y0c, y1=y1c, fillcolor=colors[label], opacity=0.14, line_width=0, layer="below")
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color=colors[label], size=10, symbol="square"),
                                 name=label, hoverinfo="skip"))
    desc, unit = series_label(regime.series)
    fmt = value_format(unit)
    current = np.asarray(regime.classify(values.to_numpy()))
    labels = np.array(list(regime.labels), dtype=object)[current.clip(0)]
    fig.add_trace(go.Scatter(x=values.index, y=values.to_numpy(), mode="lines", name=regime.series,
                             line=dict(color=series_color(regime.series), width=1.4), customdata=labels,
                             hovertemplate=f"%{{y:{fmt}}} {unit} (%{{customdata}})<extra></extra>"))
    fig.update_xaxes(type="date")  # the legend-only traces above carry no x values
    return apply_layout(fig, f"History: {desc} with {regime.name} regimes", f"{regime.series} ({unit})", height=340)


def regime_bars(probs_at_day: pd.Series, regime, day: int, date) -> go.Figure:
    """Horizontal bars: probability of each regime on horizon day ``day``."""
    colors = regime_colors(regime.labels)
    labels = list(regime.labels)
    vals = [100 * float(probs_at_day.get(lab, 0.0)) for lab in labels]
    fig = go.Figure(go.Bar(x=vals, y=labels, orientation="h", marker_color=[colors[lab] for lab in labels],
                           text=[f"{v:.0f}%" for v in vals], textposition="auto",
                           hovertemplate="%{y}: %{x:.1f}%<extra></extra>"))
    fig.update_xaxes(range=[0, 100], ticksuffix="%")
    fig.update_yaxes(autorange="reversed")
    fig = apply_layout(fig, f"{regime.name.capitalize()} regime on day {day} ({pd.Timestamp(date).date()})", "", height=260)
    fig.update_layout(hovermode="closest", showlegend=False)
    return fig
