"""Figures of the Backtest page: interval coverage, PIT histogram, skill bars, a fan against what happened."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from forecaster.market.plots import (
    FALLBACK_COLORS, REGIME_PALETTE, add_fan, apply_layout, as_of_marker, empty_figure, series_color, series_label,
    value_format,
)

def coverage_chart(cov: pd.DataFrame) -> go.Figure:
    """Empirical coverage of central intervals by horizon, against the nominal level.

    ``cov`` columns: ``horizon`` (days), ``nominal`` (0..1), ``coverage`` (0..1), and optionally ``model``.
    """
    if cov.empty:
        return empty_figure("no coverage table in this backtest")
    fig = go.Figure()
    models = cov["model"].unique() if "model" in cov.columns else [None]
    dashes = ("solid", "dash", "dot", "dashdot")
    for i, model in enumerate(models):
        part = cov if model is None else cov[cov["model"] == model]
        for j, nominal in enumerate(sorted(part["nominal"].unique())):
            sub = part[part["nominal"] == nominal].sort_values("horizon")
            color = REGIME_PALETTE[j % len(REGIME_PALETTE)]
            name = f"{int(round(nominal * 100))}% interval" + (f" · {model}" if model is not None else "")
            fig.add_trace(go.Scatter(x=sub["horizon"], y=100 * sub["coverage"], mode="lines+markers", name=name,
                                     line=dict(color=color, dash=dashes[i % len(dashes)]),
                                     hovertemplate=f"{name}, day %{{x}}: %{{y:.0f}}%<extra></extra>"))
            if i == 0:
                fig.add_hline(y=100 * nominal, line=dict(color=color, width=1, dash="dot"), opacity=0.6)
    fig.update_yaxes(range=[0, 105], ticksuffix="%")
    fig.update_xaxes(title_text="horizon (business days)")
    fig = apply_layout(fig, "Interval coverage by horizon (dotted: nominal)", "share of outcomes inside", height=340)
    fig.update_layout(hovermode="closest")
    return fig


def pit_histogram(pit: np.ndarray, bins: int = 10, title: str = "PIT histogram") -> go.Figure:
    """Histogram of probability integral transform values in [0, 1]; flat means calibrated."""
    pit = np.asarray(pit, dtype=float)
    pit = pit[np.isfinite(pit)]
    if pit.size == 0:
        return empty_figure("no PIT values")
    counts, edges = np.histogram(pit, bins=bins, range=(0, 1))
    share = counts / counts.sum() * bins  # density: 1 = uniform
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=share, width=1 / bins * 0.95, marker_color="#52606d",
                           hovertemplate="PIT %{x:.2f}: density %{y:.2f}<extra></extra>"))
    fig.add_hline(y=1.0, line=dict(color="#c0392b", dash="dash", width=1))
    fig.update_xaxes(range=[0, 1], title_text="PIT")
    fig = apply_layout(fig, title, "density (1 = uniform)", height=280)
    fig.update_layout(hovermode="closest", showlegend=False)
    return fig


def skill_chart(skill: pd.DataFrame, value: str = "skill", label: str = "series", group: str | None = "model") -> go.Figure:
    """Bars of skill scores (1 - score/score_baseline; > 0 beats the baseline)."""
    if skill.empty or value not in skill.columns:
        return empty_figure("no skill scores in this backtest")
    fig = go.Figure()
    groups = skill[group].unique() if group and group in skill.columns else [None]
    for i, g in enumerate(groups):
        part = skill if g is None else skill[skill[group] == g]
        err = None
        if {"low", "high"} <= set(part.columns):  # bootstrap interval of the skill score
            err = dict(type="data", symmetric=False, array=(part["high"] - part[value]).to_numpy(),
                       arrayminus=(part[value] - part["low"]).to_numpy(), color="#3e4c59", thickness=1)
        fig.add_trace(go.Bar(x=part[label].astype(str), y=part[value], name=str(g) if g is not None else value,
                             marker_color=FALLBACK_COLORS[i % len(FALLBACK_COLORS)], error_y=err,
                             hovertemplate="%{x}: %{y:.3f}<extra>" + (str(g) if g is not None else "") + "</extra>"))
    fig.add_hline(y=0, line=dict(color="#3e4c59", width=1))
    fig = apply_layout(fig, "CRPS skill vs baseline by horizon (above 0: better; bars: bootstrap interval)", "skill", height=320)
    fig.update_layout(barmode="group", hovermode="closest", showlegend=True)
    return fig


def realized_fan(dates, q: dict[float, np.ndarray], actual: pd.Series | None, history: pd.Series | None,
                 series: str, origin) -> go.Figure:
    """A backtest origin: the forecast fan against what happened afterwards."""
    desc, unit = series_label(series)
    fmt = value_format(unit)
    fig = go.Figure()
    if history is not None and len(history):
        fig.add_trace(go.Scatter(x=history.index, y=history.to_numpy(), mode="lines", name="history",
                                 line=dict(color="#3e4c59", width=1.4),
                                 hovertemplate=f"observed: %{{y:{fmt}}} {unit}<extra></extra>"))
    add_fan(fig, dates, q, series_color(series), series, unit)
    if actual is not None and len(actual):
        fig.add_trace(go.Scatter(x=actual.index, y=actual.to_numpy(), mode="lines", name="realized",
                                 line=dict(color="#111111", width=2),
                                 hovertemplate=f"realized: %{{y:{fmt}}} {unit}<extra></extra>"))
    as_of_marker(fig, origin, "origin")
    return apply_layout(fig, f"{desc}: forecast from {pd.Timestamp(origin).date()} vs realized", f"{series} ({unit})")
