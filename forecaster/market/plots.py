"""Plots of forecasts, and the house style every chart shares (the dashboard's too).

``fan_chart(fc, series)`` is what ``Forecast.plot`` draws. The rest is the style:
colours, the layout, the empty figure, fan bands.

Conventions: every series has one colour everywhere (``series_color``); regimes
are coloured from calm/low (green) to stress/high (red) (``regime_colors``);
axes carry units; dates are on the x axes; hovers show values with units.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from data_sources import catalog
from forecaster.market.forecast import DEFAULT_QUANTILES as FAN_QUANTILES

TEMPLATE = "plotly_white"
FONT = dict(family="Inter, -apple-system, Segoe UI, Helvetica, Arial, sans-serif", size=13, color="#1f2933")
BANDS = ((0.05, 0.95, "90%"), (0.10, 0.90, "80%"), (0.25, 0.75, "50%"))

SERIES_COLORS = {
    "SPX": "#1f5fa8", "VIX": "#c0392b", "WTI": "#7a4b2a", "GSCI": "#a0522d", "SPGSCI": "#a0522d", "GSG": "#b5651d",
    "UST3M": "#7fb77e", "UST2Y": "#4f9a4d", "UST5Y": "#2e7d32", "UST10Y": "#1b5e20", "BAA_SPREAD": "#e67e22",
    "CPI_YOY": "#8e44ad", "CORE_CPI_YOY": "#6c3483", "CPI": "#8e44ad", "CORE_CPI": "#6c3483",
    "UNRATE": "#16a085", "M2": "#2c3e50", "GDP": "#34495e", "FED_BS": "#5d6d7e",
    "XLK": "#2980b9", "XLF": "#27ae60", "XLI": "#d35400", "XLP": "#f1c40f", "XLRE": "#e84393", "XLU": "#00897b",
}  # fmt: skip
FALLBACK_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
REGIME_PALETTE = ("#2e7d32", "#9ccc65", "#f9a825", "#c62828", "#6a1b9a", "#37474f")
STRESS_COLOR = "#c0392b"
BASE_COLOR = "#1f5fa8"


def series_color(name: str) -> str:
    """The colour of a series, the same in every chart."""
    if name in SERIES_COLORS:
        return SERIES_COLORS[name]
    return FALLBACK_COLORS[sum(map(ord, name)) % len(FALLBACK_COLORS)]


def regime_colors(labels) -> dict[str, str]:
    """Label -> colour, from the first (calm/low) to the last (stress/high) regime."""
    labels = list(labels)
    return {lab: REGIME_PALETTE[min(i, len(REGIME_PALETTE) - 1)] for i, lab in enumerate(labels)}


def rgba(hex_color: str, alpha: float) -> str:
    """``"#rrggbb"`` with opacity ``alpha`` as a CSS ``rgba()`` colour."""
    h = hex_color.lstrip("#")
    r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    return f"rgba({r},{g},{b},{alpha})"


def series_label(name: str) -> tuple[str, str]:
    """(description, unit) of a series from the catalog; the name itself when it is not catalogued."""
    spec = catalog.CATALOG.get(name)
    return (spec.description, spec.unit) if spec else (name, "")


def value_format(unit: str) -> str:
    """The d3 format of a value in ``unit`` for hovers."""
    return ".2f" if unit in ("%", "index points", "$/bbl", "$") else ".4g"


def apply_layout(fig: go.Figure, title: str, ytitle: str = "", height: int = 420) -> go.Figure:
    """The house style: template, font, title line, legend line, grid and spikes."""
    fig.update_layout(
        # title on the first line, legend on the second: long titles never run under the legend
        template=TEMPLATE, font=FONT, height=height,
        title=dict(text=title, x=0.01, xanchor="left", yref="container", y=0.98, yanchor="top", font=dict(size=15)),
        margin=dict(l=60, r=20, t=78, b=40), hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="right", x=1.0, font=dict(size=11)),
    )
    fig.update_yaxes(title_text=ytitle, gridcolor="#e5e8eb", zeroline=False)
    fig.update_xaxes(gridcolor="#eef0f2", showspikes=True, spikemode="across", spikethickness=1)
    return fig


def empty_figure(message: str, height: int = 320) -> go.Figure:
    """A blank chart that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#52606d"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(template=TEMPLATE, font=FONT, height=height, margin=dict(l=20, r=20, t=20, b=20))
    return fig


def as_of_marker(fig: go.Figure, as_of: pd.Timestamp, label: str = "as of") -> None:
    """A dotted vertical line at ``as_of`` with its date."""
    x = pd.Timestamp(as_of).strftime("%Y-%m-%d")
    fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color="#7b8794", width=1, dash="dot"))
    fig.add_annotation(x=x, y=0, yref="paper", text=f" {label} {x}", showarrow=False, xanchor="left", yanchor="bottom",
                       font=dict(size=11, color="#52606d"))


def add_fan(fig: go.Figure, dates, q: dict[float, np.ndarray], color: str, name: str, unit: str,
            median_dash: str = "solid", band_alpha=(0.12, 0.18, 0.28)) -> None:
    """Add 90/80/50% bands and the median of quantile arrays ``q[p]`` (each (horizon,)) to ``fig``."""
    fmt = value_format(unit)
    x = pd.DatetimeIndex(dates)
    for (lo, hi, label), alpha in zip(BANDS, band_alpha):
        fig.add_trace(go.Scatter(x=x, y=q[hi], mode="lines", line=dict(width=0), showlegend=False, hoverinfo="skip",
                                 legendgroup=f"{name}{label}"))
        fig.add_trace(go.Scatter(x=x, y=q[lo], mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor=rgba(color, alpha), name=f"{name} {label} band",
                                 legendgroup=f"{name}{label}",
                                 customdata=np.stack([q[lo], q[hi]], axis=1),
                                 hovertemplate=f"{label}: %{{customdata[0]:{fmt}}} – %{{customdata[1]:{fmt}}} {unit}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=q[0.5], mode="lines", line=dict(color=color, width=2.2, dash=median_dash),
                             name=f"{name} median", hovertemplate=f"median: %{{y:{fmt}}} {unit}<extra></extra>"))


def fan_quantiles(paths: np.ndarray, quantiles=FAN_QUANTILES) -> dict[float, np.ndarray]:
    """``{p: (horizon,)}`` quantiles across paths of a (paths, horizon) array, ignoring NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(paths, list(quantiles), axis=0)
    return {p: q[i] for i, p in enumerate(quantiles)}


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
