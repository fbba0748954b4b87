"""The evaluation folder: metrics as JSON and CSV, a self-contained HTML page, typed samples.

Layout of ``OUT`` (read by the dashboard's Synthesis page)::

    OUT/.forecaster-output.json   the output marker (kind ``synth-evaluation``)
    OUT/report.json               every metric of ``evaluate.evaluate`` (+ "inputs": file names, seed, run)
    OUT/summary.csv               metric, value, reference, target, pass  (the headline table)
    OUT/report.html               summary table + real-vs-synthetic plots (plotly.js inlined, works offline)
    OUT/real_sample.parquet       up to ``sample_rows`` held-out real rows (typed TabFormer table)
    OUT/synthetic_sample.parquet  up to ``sample_rows`` synthetic rows (typed TabFormer table)

``real_sample.parquet`` holds *real* transactions: keep ``OUT`` where the real
data may be kept. The folder is published whole (``foundation.atomic.publish_dir``):
it is written beside ``OUT`` and swapped in when complete, and an existing ``OUT``
is replaced only when it is empty or a previous evaluation; a folder holding
anything else (a run, a user's files) is refused.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from foundation.atomic import atomic_path, check_out_dir, publish_dir, write_text
from forecaster.synthesis.features import features
from forecaster.synthesis.fidelity import FIDELITY_COLUMNS

SUMMARY_COLUMNS = ("metric", "value", "reference", "target", "pass")
EVALUATION_KIND = "synth-evaluation"


def check_report_dir(out_dir: str | Path, option: str = "--out") -> Path:
    """Refuse an evaluation folder that holds something else (``OutputError``) before any work; writes nothing."""
    return check_out_dir(out_dir, EVALUATION_KIND, option)


def summary_table(report: dict) -> pd.DataFrame:
    """The headline table: one row per metric of ``report["summary"]``."""
    rows = [{"metric": k, **{c: v.get(c) for c in SUMMARY_COLUMNS[1:]}} for k, v in report["summary"].items()]
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def markdown_table(report: dict) -> str:
    """The summary as a Markdown table (for docs and the README)."""
    def fmt(v):
        if v is None:
            return "n/a"
        if isinstance(v, bool):
            return "yes" if v else "**no**"
        if isinstance(v, float):
            if v != 0 and abs(v) < 0.001:
                return f"{v:.2e}"  # small distances keep their digits
            return f"{v:.4f}" if abs(v) < 10 else f"{v:,.0f}"
        return str(v)

    lines = ["| metric | synthetic | real reference | target | met |", "|---|---|---|---|---|"]
    for _, r in summary_table(report).iterrows():
        target = r["target"] if isinstance(r["target"], str) else ""
        met = fmt(r["pass"]) if target else ""
        lines.append(f"| {r['metric']} | {fmt(r['value'])} | {fmt(r['reference'])} | {target} | {met} |")
    return "\n".join(lines)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if math.isnan(o) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return str(o)


def _clean(o):
    """NaN -> None so the JSON is standard."""
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, float) and math.isnan(o):
        return None
    return o


# -- figures (pure functions) ------------------------------------------------------------------------
def distribution_figures(real: pd.DataFrame, synthetic: pd.DataFrame, top: int = 15) -> list:
    """Plotly figures: overlaid histograms of the numbers, top-category bars of the categories."""
    rf, sf = features(real), features(synthetic)
    figs = []
    for col, kind in FIDELITY_COLUMNS.items():
        fig = go.Figure()
        if kind == "num":
            lo, hi = np.quantile(rf[col], [0.005, 0.995]) if col == "amount" else (0, 1440)
            for name, f in (("real (held out)", rf), ("synthetic", sf)):
                fig.add_trace(go.Histogram(x=f[col].clip(lo, hi), name=name, opacity=0.6, histnorm="probability",
                                           xbins=dict(start=lo, end=hi, size=(hi - lo) / 60)))
            fig.update_layout(barmode="overlay")
        else:
            rp = rf[col].value_counts(normalize=True)
            sp = sf[col].value_counts(normalize=True)
            cats = list(rp.index[:top])
            for name, p in (("real (held out)", rp), ("synthetic", sp)):
                fig.add_trace(go.Bar(x=[str(c) for c in cats], y=p.reindex(cats).fillna(0).to_numpy(), name=name))
            fig.update_layout(barmode="group")
        fig.update_layout(title=f"{col}" + (f" (top {top} real values)" if kind == "cat" else ""),
                          height=320, margin=dict(l=40, r=10, t=40, b=40), yaxis_title="share")
        figs.append(fig)
    return figs


def score_figures(report: dict) -> list:
    """Per-column fidelity bars and the pairwise fidelity matrix."""
    cols = list(report["columns"])
    fig = go.Figure(go.Bar(x=cols, y=[report["columns"][c] for c in cols], name="synthetic"))
    if "reference" in report:
        fig.add_trace(go.Bar(x=cols, y=[report["reference"]["columns"][c] for c in cols], name="real train vs held out"))
    fig.update_layout(title="Per-column fidelity (1 - KS / 1 - TV)", yaxis_range=[0, 1], barmode="group", height=340)
    names = list(FIDELITY_COLUMNS)
    m = np.full((len(names), len(names)), np.nan)
    for key, v in report["pairs"].items():
        a, b = key.split("|")
        i, j = names.index(a), names.index(b)
        m[i, j] = m[j, i] = v
    heat = go.Figure(go.Heatmap(z=m, x=names, y=names, zmin=0, zmax=1, colorscale="Viridis"))
    heat.update_layout(title="Pairwise fidelity (correlation / contingency similarity)", height=480)
    return [fig, heat]


def render_html(report: dict, real: pd.DataFrame, synthetic: pd.DataFrame, title: str = "Synthetic transactions: evaluation") -> str:
    """One self-contained HTML page (plotly.js inlined once)."""
    figs = score_figures(report) + distribution_figures(real, synthetic)
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figs)]
    table = summary_table(report).to_html(index=False, na_rep="n/a", float_format=lambda v: f"{v:.4f}")
    details = html.escape(json.dumps(_clean(report), indent=1, default=_json_default))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1200px} table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right} .grid{display:grid;"
            "grid-template-columns:1fr 1fr;gap:8px}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Reference = the same score of the real training rows against the "
            "held-out real rows (what a perfect synthesizer reaches). See docs/SYNTHESIS.md.</p>"
            f"{table}<h2>Scores</h2>{parts[0]}{parts[1]}<h2>Distributions: held-out real vs synthetic</h2>"
            f"<div class='grid'>{''.join(f'<div>{p}</div>' for p in parts[2:])}</div>"
            f"<h2>All metrics</h2><pre>{details}</pre></body></html>")


def write_report(report: dict, real: pd.DataFrame, synthetic: pd.DataFrame, out_dir: str | Path,
                 sample_rows: int = 5000, seed: int = 0) -> Path:
    """Publish the evaluation folder (see the module docstring); returns ``out_dir``."""
    out = Path(out_dir)
    with publish_dir(out, EVALUATION_KIND) as staging:
        write_text(staging / "report.json", json.dumps(_clean(report), indent=2, default=_json_default))
        with atomic_path(staging / "summary.csv") as tmp:
            summary_table(report).to_csv(tmp, index=False)
        write_text(staging / "report.html", render_html(report, real, synthetic))
        rng = np.random.default_rng(seed)
        for name, table in (("real_sample", real), ("synthetic_sample", synthetic)):
            keep = np.sort(rng.choice(len(table), size=min(sample_rows, len(table)), replace=False))
            with atomic_path(staging / f"{name}.parquet") as tmp:
                table.iloc[keep].reset_index(drop=True).to_parquet(tmp, index=False)
    return out
