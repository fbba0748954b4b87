"""Figures of the Data page: one panel series over time and the panel's coverage by year."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from forecaster.market.plots import apply_layout, empty_figure, series_color, series_label, value_format

def series_chart(panel: pd.DataFrame, series: str) -> go.Figure:
    """One panel series over time, with a range slider."""
    desc, unit = series_label(series)
    col = panel[series].dropna()
    if col.empty:
        return empty_figure(f"{series} has no values in this panel")
    fmt = value_format(unit)
    fig = go.Figure(go.Scatter(x=col.index, y=col.to_numpy(), mode="lines", name=series,
                               line=dict(color=series_color(series), width=1.4),
                               hovertemplate=f"%{{y:{fmt}}} {unit}<extra>{series}</extra>"))
    fig = apply_layout(fig, f"{desc} ({series}), point-in-time daily panel", f"{series} ({unit})" if unit else series)
    fig.update_xaxes(rangeslider=dict(visible=True, thickness=0.06),
                     rangeselector=dict(buttons=[dict(count=1, label="1y", step="year", stepmode="backward"),
                                                 dict(count=5, label="5y", step="year", stepmode="backward"),
                                                 dict(step="all", label="all")]))
    return fig


def coverage_heatmap(panel: pd.DataFrame) -> go.Figure:
    """Share of business days with a value, per series and year."""
    avail = panel.notna().groupby(panel.index.year).mean().T  # (series, years)
    fig = go.Figure(go.Heatmap(z=100 * avail.to_numpy(), x=[str(y) for y in avail.columns], y=list(avail.index),
                               colorscale=[[0, "#f5f7fa"], [0.5, "#9fb3c8"], [1, "#243b53"]], zmin=0, zmax=100,
                               colorbar=dict(title="% days", ticksuffix="%"),
                               hovertemplate="%{y} %{x}: %{z:.0f}% of days<extra></extra>"))
    fig = apply_layout(fig, "Coverage: share of business days with a value", "", height=max(220, 40 + 26 * len(avail)))
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(autorange="reversed")
    return fig
