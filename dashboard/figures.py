"""Pure figure builders: data in, ``plotly.graph_objects.Figure`` out. No I/O, no Dash.

Conventions: every series has one colour everywhere (``series_color``); regimes
are coloured from calm/low (green) to stress/high (red) (``regime_colors``);
axes carry units; dates are on the x axes; hovers show values with units.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from data_sources import catalog

TEMPLATE = "plotly_white"
FONT = dict(family="Inter, -apple-system, Segoe UI, Helvetica, Arial, sans-serif", size=13, color="#1f2933")
BANDS = ((0.05, 0.95, "90%"), (0.10, 0.90, "80%"), (0.25, 0.75, "50%"))
FAN_QUANTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)

SERIES_COLORS = {
    "SPX": "#1f5fa8", "VIX": "#c0392b", "WTI": "#7a4b2a", "GSCI": "#a0522d", "SPGSCI": "#a0522d", "GSG": "#b5651d",
    "UST3M": "#7fb77e", "UST2Y": "#4f9a4d", "UST5Y": "#2e7d32", "UST10Y": "#1b5e20", "BAA_SPREAD": "#e67e22",
    "CPI_YOY": "#8e44ad", "CORE_CPI_YOY": "#6c3483", "CPI": "#8e44ad", "CORE_CPI": "#6c3483",
    "UNRATE": "#16a085", "M2": "#2c3e50", "GDP": "#34495e", "FED_BS": "#5d6d7e",
    "XLK": "#2980b9", "XLF": "#27ae60", "XLI": "#d35400", "XLP": "#f1c40f", "XLRE": "#e84393", "XLU": "#00897b",
}  # fmt: skip
_FALLBACK = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
REGIME_PALETTE = ("#2e7d32", "#9ccc65", "#f9a825", "#c62828", "#6a1b9a", "#37474f")
STRESS_COLOR = "#c0392b"
BASE_COLOR = "#1f5fa8"


def series_color(name: str) -> str:
    """The colour of a series, the same in every chart."""
    if name in SERIES_COLORS:
        return SERIES_COLORS[name]
    return _FALLBACK[sum(map(ord, name)) % len(_FALLBACK)]


def regime_colors(labels) -> dict[str, str]:
    """Label -> colour, from the first (calm/low) to the last (stress/high) regime."""
    labels = list(labels)
    return {lab: REGIME_PALETTE[min(i, len(REGIME_PALETTE) - 1)] for i, lab in enumerate(labels)}


def rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    return f"rgba({r},{g},{b},{alpha})"


def series_label(name: str) -> tuple[str, str]:
    """(description, unit) of a series from the catalog; the name itself when it is not catalogued."""
    spec = catalog.CATALOG.get(name)
    return (spec.description, spec.unit) if spec else (name, "")


def _value_format(unit: str) -> str:
    return ".2f" if unit in ("%", "index points", "$/bbl", "$") else ".4g"


def _layout(fig: go.Figure, title: str, ytitle: str = "", height: int = 420) -> go.Figure:
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


def _as_of_marker(fig: go.Figure, as_of: pd.Timestamp, label: str = "as of") -> None:
    x = pd.Timestamp(as_of).strftime("%Y-%m-%d")
    fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color="#7b8794", width=1, dash="dot"))
    fig.add_annotation(x=x, y=0, yref="paper", text=f" {label} {x}", showarrow=False, xanchor="left", yanchor="bottom",
                       font=dict(size=11, color="#52606d"))


def add_fan(fig: go.Figure, dates, q: dict[float, np.ndarray], color: str, name: str, unit: str,
            median_dash: str = "solid", band_alpha=(0.12, 0.18, 0.28)) -> None:
    """Add 90/80/50% bands and the median of quantile arrays ``q[p]`` (each (horizon,)) to ``fig``."""
    fmt = _value_format(unit)
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
    import warnings

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
    fmt = _value_format(unit)
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
    _as_of_marker(fig, fc.as_of)
    scen = (fc.meta.get("scenario") or {}).get("name")
    title = f"{desc} — {fc.n_paths} paths, {fc.horizon} business days after {fc.as_of.date()}"
    if scen:
        title += f" · scenario {scen}"
    return _layout(fig, title, f"{series} ({unit})" if unit else series)


def compare_chart(base, stressed, series: str, history_days: int = 120) -> go.Figure:
    """Base forecast against a stress scenario for one series: both medians and 50/90% bands, history before."""
    desc, unit = series_label(series)
    fig = go.Figure()
    fmt = _value_format(unit)
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
    _as_of_marker(fig, base.as_of)
    return _layout(fig, f"{desc}: base vs stress", f"{series} ({unit})" if unit else series, height=360)


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


# -- regimes ------------------------------------------------------------------------------------
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
    return _layout(fig, f"{regime.name.capitalize()} regime probability by horizon ({regime.series}; cuts at {edges} {regime.unit})",
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
    fmt = _value_format(unit)
    current = np.asarray(regime.classify(values.to_numpy()))
    labels = np.array(list(regime.labels), dtype=object)[current.clip(0)]
    fig.add_trace(go.Scatter(x=values.index, y=values.to_numpy(), mode="lines", name=regime.series,
                             line=dict(color=series_color(regime.series), width=1.4), customdata=labels,
                             hovertemplate=f"%{{y:{fmt}}} {unit} (%{{customdata}})<extra></extra>"))
    fig.update_xaxes(type="date")  # the legend-only traces above carry no x values
    return _layout(fig, f"History: {desc} with {regime.name} regimes", f"{regime.series} ({unit})", height=340)


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
    fig = _layout(fig, f"{regime.name.capitalize()} regime on day {day} ({pd.Timestamp(date).date()})", "", height=260)
    fig.update_layout(hovermode="closest", showlegend=False)
    return fig


# -- backtest -----------------------------------------------------------------------------------
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
    fig = _layout(fig, "Interval coverage by horizon (dotted: nominal)", "share of outcomes inside", height=340)
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
    fig = _layout(fig, title, "density (1 = uniform)", height=280)
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
                             marker_color=_FALLBACK[i % len(_FALLBACK)], error_y=err,
                             hovertemplate="%{x}: %{y:.3f}<extra>" + (str(g) if g is not None else "") + "</extra>"))
    fig.add_hline(y=0, line=dict(color="#3e4c59", width=1))
    fig = _layout(fig, "CRPS skill vs baseline by horizon (above 0: better; bars: bootstrap interval)", "skill", height=320)
    fig.update_layout(barmode="group", hovermode="closest", showlegend=True)
    return fig


def realized_fan(dates, q: dict[float, np.ndarray], actual: pd.Series | None, history: pd.Series | None,
                 series: str, origin) -> go.Figure:
    """A backtest origin: the forecast fan against what happened afterwards."""
    desc, unit = series_label(series)
    fmt = _value_format(unit)
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
    _as_of_marker(fig, origin, "origin")
    return _layout(fig, f"{desc}: forecast from {pd.Timestamp(origin).date()} vs realized", f"{series} ({unit})")


# -- synthesis ----------------------------------------------------------------------------------
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
    fig = _layout(fig, f"{column}: real vs synthetic", "share of rows", height=360)
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
    fig = _layout(fig, "Column fidelity (1 = same distribution as the real rows)", "score", height=300)
    fig.update_layout(hovermode="closest")
    return fig


# -- data ---------------------------------------------------------------------------------------
def series_chart(panel: pd.DataFrame, series: str) -> go.Figure:
    """One panel series over time, with a range slider."""
    desc, unit = series_label(series)
    col = panel[series].dropna()
    if col.empty:
        return empty_figure(f"{series} has no values in this panel")
    fmt = _value_format(unit)
    fig = go.Figure(go.Scatter(x=col.index, y=col.to_numpy(), mode="lines", name=series,
                               line=dict(color=series_color(series), width=1.4),
                               hovertemplate=f"%{{y:{fmt}}} {unit}<extra>{series}</extra>"))
    fig = _layout(fig, f"{desc} ({series}), point-in-time daily panel", f"{series} ({unit})" if unit else series)
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
    fig = _layout(fig, "Coverage: share of business days with a value", "", height=max(220, 40 + 26 * len(avail)))
    fig.update_layout(hovermode="closest")
    fig.update_yaxes(autorange="reversed")
    return fig


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
    return _layout(fig, "Learning curve", "cross-entropy (nats/token)", height=260)
