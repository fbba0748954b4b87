"""Figures of the Scenarios page: a base forecast against a stress scenario."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from forecaster.market.plots import (
    BASE_COLOR, STRESS_COLOR, apply_layout, as_of_marker, fan_quantiles, rgba, series_label, value_format,
)

def compare_chart(base, stressed, series: str, history_days: int = 120) -> go.Figure:
    """Base forecast against a stress scenario for one series: both medians and 50/90% bands, history before."""
    desc, unit = series_label(series)
    fig = go.Figure()
    fmt = value_format(unit)
    if series in base.history.columns:
        hist = base.history[series].dropna().iloc[-history_days:]
        fig.add_trace(go.Scatter(x=hist.index, y=hist.to_numpy(), mode="lines", name="history",
                                 line=dict(color="#3e4c59", width=1.6),
                                 hovertemplate=f"observed: %{{y:{fmt}}} {unit}<extra></extra>"))
    for fc, color, label, dash in ((base, BASE_COLOR, "base", "solid"), (stressed, STRESS_COLOR, "stress", "solid")):
        q = fan_quantiles(fc.column(series))
        x = pd.DatetimeIndex(fc.dates)
        fig.add_trace(go.Scatter(x=x, y=q[0.95], mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=q[0.05], mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor=rgba(color, 0.15), name=f"{label} 90% band",
                                 customdata=np.stack([q[0.05], q[0.95]], axis=1),
                                 hovertemplate=f"{label} 90%: %{{customdata[0]:{fmt}}} – %{{customdata[1]:{fmt}}}<extra></extra>"))
        fig.add_trace(go.Scatter(x=x, y=q[0.5], mode="lines", line=dict(color=color, width=2.4, dash=dash),
                                 name=f"{label} median", hovertemplate=f"{label} median: %{{y:{fmt}}} {unit}<extra></extra>"))
    as_of_marker(fig, base.as_of)
    return apply_layout(fig, f"{desc}: base vs stress", f"{series} ({unit})" if unit else series, height=360)
