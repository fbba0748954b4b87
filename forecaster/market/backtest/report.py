"""The self-contained HTML report of a backtest folder (plotly.js inlined once; no network needed to view it).

Figures are built by pure functions of the score and fan tables so they can be
tested without writing a file: fan charts against the realised path at chosen
origins, interval coverage by horizon, PIT histograms (pooled, and per horizon with
the band a calibrated forecast stays in), and the GPT's CRPS skill by series with its
bootstrap interval.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from foundation.atomic import write_text
from forecaster.market.backtest import summary
from forecaster.market.backtest.runner import GPT_MODEL, load_fan, load_scores

COLORS = {"gpt": "#1f77b4", "random_walk": "#7f7f7f", "garch": "#d62728", "var": "#2ca02c", "climatology": "#9467bd",
          "har": "#ff7f0e", "atkeson_ohanian": "#8c564b"}


def _color(model: str) -> str:
    return COLORS.get(model, "#8c564b")


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def fan_figure(fan: pd.DataFrame, series: str, origin, models=None) -> go.Figure:
    """5-95 % and 25-75 % bands and median per model for one series at one origin, with the realised path."""
    fig = go.Figure()
    models = models or [m for m in fan["model"].unique() if m != "realised"]
    for m in models:
        f = fan[(fan["model"] == m) & (fan["series"] == series)].sort_values("step")
        if f.empty:
            continue
        c = _color(m)
        x = f["step"].to_numpy()
        for lo, hi, a in (("q05", "q95", 0.12), ("q25", "q75", 0.25)):
            fig.add_trace(go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[f[hi], f[lo][::-1]], fill="toself", line=dict(width=0),
                                     fillcolor=_rgba(c, a), name=f"{m} {lo[1:]}-{hi[1:]}%", legendgroup=m, showlegend=False,
                                     hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=f["q50"], line=dict(color=c, width=1.5), name=f"{m} median", legendgroup=m))
    r = fan[(fan["model"] == "realised") & (fan["series"] == series)].sort_values("step")
    fig.add_trace(go.Scatter(x=r["step"], y=r["q50"], line=dict(color="black", width=2), name="realised"))
    fig.update_layout(title=f"{series}, origin {pd.Timestamp(origin).date()}", xaxis_title="business days ahead",
                      height=330, margin=dict(l=40, r=10, t=40, b=30))
    return fig


def coverage_figure(table: pd.DataFrame, series: list[str]) -> go.Figure:
    """Coverage of the central 50/80/90 % intervals by horizon (rows: level; columns: series), nominal dashed.

    ``table``: ``summary.coverage_table`` (error bars: its 90 % block-bootstrap intervals) or ``summary.score_table``.
    """
    levels = (50, 80, 90)
    fig = make_subplots(rows=len(levels), cols=len(series), shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[f"{s}: {lv}%" for lv in levels for s in series])
    shown: set[str] = set()  # each model once in the legend, wherever it first appears
    for i, lv in enumerate(levels, start=1):
        for j, s in enumerate(series, start=1):
            t = table[table["series"] == s]
            for m in t["model"].unique():
                u = t[t["model"] == m].sort_values("horizon")
                err = (dict(type="data", symmetric=False, array=u[f"cov{lv}_high"] - u[f"cov{lv}"],
                            arrayminus=u[f"cov{lv}"] - u[f"cov{lv}_low"], thickness=1, width=2)
                       if f"cov{lv}_low" in u.columns else None)
                fig.add_trace(go.Scatter(x=u["horizon"], y=u[f"cov{lv}"], mode="lines+markers", line=dict(color=_color(m)),
                                         error_y=err, name=m, legendgroup=m, showlegend=m not in shown), row=i, col=j)
                shown.add(m)
            fig.add_hline(y=lv / 100, line=dict(dash="dash", color="black", width=1), row=i, col=j)
    fig.update_xaxes(type="log")
    fig.update_layout(title="Interval coverage by horizon (business days, log scale)", height=260 * len(levels),
                      margin=dict(l=40, r=10, t=60, b=30))
    return fig


def pit_figure(scores: pd.DataFrame, series: list[str], min_horizon: int = 21, bins: int = 10) -> go.Figure:
    """PIT histograms (all origins, horizons >= ``min_horizon`` pooled) per model (rows) and series (columns)."""
    s = scores[(scores["kind"] == "series") & (scores["horizon"] >= min_horizon) & scores["name"].isin(series)]
    models = [m for m in s["model"].unique()]
    fig = make_subplots(rows=max(1, len(models)), cols=len(series), shared_xaxes=True,
                        subplot_titles=[f"{m}: {x}" for m in models for x in series])
    edges = np.linspace(0, 1, bins + 1)
    for i, m in enumerate(models, start=1):
        for j, x in enumerate(series, start=1):
            p = s[(s["model"] == m) & (s["name"] == x)]["pit"].dropna().to_numpy()
            if p.size == 0:
                continue
            counts, _ = np.histogram(p, edges)
            fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts / p.size * bins, marker_color=_color(m),
                                 showlegend=False), row=i, col=j)
            fig.add_hline(y=1.0, line=dict(dash="dash", color="black", width=1), row=i, col=j)
    fig.update_layout(title=f"PIT histograms (density; uniform = 1), horizons >= {min_horizon} days",
                      height=200 * max(1, len(models)) + 60, margin=dict(l=40, r=10, t=60, b=30))
    return fig


def pit_horizon_figure(pits: pd.DataFrame, series: list[str], model: str = GPT_MODEL,
                       horizons=summary.CALIBRATION_HORIZONS) -> go.Figure:
    """One model's PIT histogram per horizon (rows) and series (columns), from ``summary.pit_table``.

    The grey band is where each bin of a calibrated forecast falls with probability 90 %
    (``summary.pit_band``); the title of each panel gives the overlap-adjusted chi-square p-value.
    """
    t = pits[pits["model"] == model] if len(pits) else pits
    hz = [h for h in horizons if len(t) and h in set(t["horizon"])]
    bins = sorted(c for c in pits.columns if c.startswith("b") and c[1:].isdigit()) if len(pits) else []
    titles = []
    for h in hz:
        for x in series:
            r = t[(t["series"] == x) & (t["horizon"] == h)]
            p = f", chi2 p {r.iloc[0]['p_chi2_adj']:.2g}" if len(r) and np.isfinite(r.iloc[0]["p_chi2_adj"]) else ""
            titles.append(f"{x}, {h} d{p}")
    fig = make_subplots(rows=max(1, len(hz)), cols=max(1, len(series)), shared_xaxes=True, subplot_titles=titles or None)
    centres = (np.arange(len(bins)) + 0.5) / max(1, len(bins))
    for i, h in enumerate(hz, start=1):
        for j, x in enumerate(series, start=1):
            r = t[(t["series"] == x) & (t["horizon"] == h)]
            if r.empty or not np.isfinite(r.iloc[0]["band_lo"]):
                continue
            r = r.iloc[0]
            fig.add_trace(go.Scatter(x=[0, 1, 1, 0], y=[r["band_lo"], r["band_lo"], r["band_hi"], r["band_hi"]],
                                     mode="lines", fill="toself", fillcolor="rgba(0,0,0,0.15)", line=dict(width=0), hoverinfo="skip",
                                     showlegend=False), row=i, col=j)
            fig.add_trace(go.Bar(x=centres, y=[r[b] for b in bins], width=1.0 / len(bins), marker_color=_color(model),
                                 opacity=0.75, showlegend=False, hovertext=f"n={int(r['n'])}"), row=i, col=j)
            fig.add_hline(y=1.0, line=dict(dash="dash", color="black", width=1), row=i, col=j)
    fig.update_layout(title=f"{model}: PIT by horizon (uniform = 1; grey: 90% band if calibrated)",
                      height=220 * max(1, len(hz)) + 60, margin=dict(l=40, r=10, t=70, b=30))
    return fig


def skill_figure(skills: pd.DataFrame) -> go.Figure:
    """GPT CRPS skill over the best baseline per series (bars per horizon) with the bootstrap interval."""
    s = skills[(skills["kind"] == "series") & skills["best"]] if len(skills) else skills
    fig = go.Figure()
    for h in sorted(s["horizon"].unique()) if len(s) else []:
        u = s[s["horizon"] == h]
        fig.add_trace(go.Bar(x=u["name"], y=u["skill"], name=f"h={h}",
                             error_y=dict(type="data", symmetric=False, array=u["high"] - u["skill"],
                                          arrayminus=u["skill"] - u["low"]),
                             hovertext=[f"vs {b}" for b in u["baseline"]]))
    fig.add_hline(y=0.0, line=dict(color="black", width=1))
    fig.add_hline(y=0.10, line=dict(dash="dash", color="green", width=1))
    fig.update_layout(title="GPT CRPS skill over the best baseline per series and horizon (90% block-bootstrap CI; "
                            "dashed: the 10% goal)", yaxis_tickformat=".0%", barmode="group", height=420,
                      margin=dict(l=40, r=10, t=60, b=30))
    return fig


def _div(fig: go.Figure) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False)


def fan_origins(origins: list, k: int = 4) -> list:
    """``k`` origins spread evenly over the backtest (first and last included)."""
    if len(origins) <= k:
        return list(origins)
    idx = np.unique(np.linspace(0, len(origins) - 1, k).round().astype(int))
    return [origins[i] for i in idx]


def build_report(out: str | Path, path: str | Path | None = None, key_series=summary.KEY_SERIES,
                 chosen_origins=None, wall_seconds: float | None = None, skills: pd.DataFrame | None = None) -> Path:
    """Write ``report.html`` (default ``OUT/report.html``) for the backtest folder ``out``; returns its path.

    ``skills``: the skill table when the caller has it (``summary.write_summary``), else it is computed.
    """
    out = Path(out)
    scores = load_scores(out)
    doc = json.loads((out / "backtest.json").read_text())
    cfg = doc["config"]
    table = summary.score_table(scores)
    skills = summary.skill_table(scores) if skills is None else skills
    series = [s for s in key_series if s in set(table["series"])] or list(table["series"].unique())[:4]
    origins = sorted(scores["origin"].unique())
    chosen = [pd.Timestamp(o) for o in (chosen_origins or fan_origins(origins))]
    errors = scores.attrs.get("errors", {})

    parts = [f"<h1>Backtest: {html.escape(cfg.get('window') or '')} {cfg['start']} .. {cfg['end']}</h1>",
             "<p>" + html.escape(
                 f"{len(origins)} origins every {cfg['every']}, {cfg['n_paths']} paths x {cfg['horizon']} business days; "
                 f"GPT run {cfg.get('run')}"
                 f"{' pooled with ' + ', '.join(cfg['pool']) if cfg.get('pool') else ''}; retrain every {cfg['retrain_every'] or 'never (trained once)'} months; "
                 f"baselines {', '.join(cfg['baselines'])}.") + "</p>"]
    if wall_seconds is not None:
        parts.append(f"<p>Wall time of this run: {wall_seconds:.0f} s.</p>")
    if errors:
        parts.append(f"<p><b>{len(errors)} origin(s) with a failed model</b> (left out of that model's scores): "
                     + html.escape("; ".join(f"{o}: {e}" for o, e in list(errors.items())[:5])) + "</p>")
    parts.append("<h2>Summary (CRPS, 80% coverage, skill over the best baseline)</h2>")
    parts.append(f"<pre>{html.escape(summary.markdown_summary(scores, series, skills=skills))}</pre>")
    parts.append(_div(skill_figure(skills)))
    parts.append("<h2>Fan charts against the realised path</h2>")
    for o in chosen:
        try:
            fan = load_fan(out, o)
        except FileNotFoundError:
            continue
        best = {}
        for s in series:
            sk = skills[(skills["kind"] == "series") & (skills["name"] == s) & skills["best"]] if len(skills) else skills
            best[s] = [GPT_MODEL] + ([sk.iloc[-1]["baseline"]] if len(sk) else [])
        for s in series:
            parts.append(_div(fan_figure(fan, s, o, models=[m for m in best[s] if m in set(fan["model"])] or None)))
    parts.append("<h2>Coverage by horizon (90% block-bootstrap intervals)</h2>"
                 + _div(coverage_figure(summary.coverage_table(scores), series)))
    parts.append("<h2>PIT histograms</h2>" + _div(pit_figure(scores, series)))
    pits = summary.pit_table(scores)
    if len(pits):
        for m in [GPT_MODEL] + sorted(set(pits["model"]) - {GPT_MODEL}):
            if m in set(pits["model"]):
                parts.append(_div(pit_horizon_figure(pits, series, m)))
    parts.append("<h2>Calibration by horizon (coverage with 90% block-bootstrap intervals, PIT tests)</h2>"
                 + f"<pre>{html.escape(summary.calibration_markdown(scores, series, pits=pits))}</pre>")
    parts.append("<h2>All scores</h2>" + table.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    reg = summary.regime_score_table(scores)
    if len(reg):
        parts.append("<h2>Regimes (Brier, RPS)</h2>" + f"<pre>{html.escape(summary.regime_markdown(scores, table=reg))}</pre>"
                     + reg.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    en = summary.energy_table(scores)
    if len(en):
        parts.append("<h2>Energy score (standardized changes)</h2>" + en.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(skills):
        parts.append("<h2>Skill of the GPT over each baseline</h2>"
                     + skills.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>forecaster backtest</title>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script>"
            "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>" + "\n".join(parts) + "</body></html>")
    path = Path(path) if path else out / "report.html"
    write_text(path, page)
    return path
