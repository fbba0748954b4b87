"""Synthesis: real vs synthetic credit-card transactions, fidelity and privacy metrics, sample rows, generate more."""
from __future__ import annotations


import dash
import pandas as pd
from dash import Input, Output, State, callback, dash_table, dcc, html

from dashboard import data
from dashboard.components import (card, control, dropdown, empty_state, error_box, guarded, info_box, jobs,
                                  runs_dir, safe_layout, table_style)
from forecaster.market.plots import empty_figure
from dashboard.figures.synthesis import column_scores, distribution_compare

dash.register_page(__name__, path="/synthesis", name="Synthesis", title="Synthesis · Forecaster", order=4)

SAMPLE_ROWS = 25
METRIC_COLUMNS = [{"name": c, "id": c} for c in ("metric", "value", "reference", "target", "pass")]


def synth_hint(runs) -> html.Div:
    data_csv = "../shared/data/tabformer/User0_credit_card_transactions.csv"
    return empty_state(
        "No synthesis evaluation yet",
        "The synthesis mode trains the same transformer on credit-card transactions (TabFormer), generates new rows "
        "and evaluates them against held-out real rows. Make an evaluation folder for this page with:",
        command=(f"forecaster synth split --data {data_csv} --train train.parquet --holdout holdout.parquet\n"
                 f"forecaster synth train --data train.parquet --out {runs}/synth-work/cards --preset small --max-minutes 5\n"
                 f"forecaster synth generate --run {runs}/synth-work/cards --rows 5000 --out synthetic.parquet\n"
                 f"forecaster synth evaluate --real holdout.parquet --train train.parquet --synthetic synthetic.parquet "
                 f"--run {runs}/synth-work/cards --out {runs}/synth/cards\n\nThe page reads:\n" + data.SYNTH_LAYOUT.replace("DIR", str(runs))))


@safe_layout
def layout(**_query) -> html.Div:
    runs = runs_dir()
    names = data.list_synth(runs)
    header = [html.H2("Synthesis", className="page-title"),
              html.P("Real against synthetic transactions: the distribution of every column, and the fidelity and privacy "
                     "metrics of the evaluation report.", className="page-sub")]
    if not names:
        return html.Div(header + [synth_hint(runs)])
    return html.Div(header + [
        html.Div(className="controls", children=[
            control("Evaluation", dropdown("sy-name", [{"label": n, "value": n} for n in names], names[0]), "220px"),
            control("Column", dropdown("sy-column", [], None), "240px"),
        ]),
        html.Div(id="sy-msg"),
        html.Div(id="sy-head", className="meta"),
        html.Div(className="grid-3-1", children=[
            card(dcc.Graph(id="sy-dist", figure=empty_figure("…"), config={"displaylogo": False})),
            html.Div([
                card(dash_table.DataTable(id="sy-fidelity", data=[], columns=METRIC_COLUMNS, **table_style()),
                     title="Fidelity and utility"),
                card(dash_table.DataTable(id="sy-privacy", data=[], columns=METRIC_COLUMNS, **table_style()),
                     title="Privacy"),
            ]),
        ]),
        card(dcc.Graph(id="sy-columns", figure=empty_figure("…"), config={"displaylogo": False})),
        card(html.Div(className="controls", style={"border": "none", "padding": 0}, children=[
            control("Rows to generate", dcc.Input(id="sy-rows", type="number", value=200, min=1, max=100000, step=1), "140px"),
            control("Seed", dcc.Input(id="sy-seed", type="number", value=0, min=0, step=1), "80px"),
            html.Button("Generate", id="sy-generate", className="btn"),
        ]), html.Div(id="sy-gen-msg"),
            dcc.Loading(dash_table.DataTable(id="sy-sample", data=[], columns=[], page_size=SAMPLE_ROWS,
                                             **table_style()), type="dot", delay_show=300),
            title="Synthetic rows"),
    ])


def metric_rows(section) -> list[dict]:
    """Flatten a report section ({name: value or {sub: value}}) into (metric, value) rows."""
    rows = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix} · {k}" if prefix else str(k), v)
        elif isinstance(value, float):
            rows.append({"metric": prefix, "value": f"{value:.4g}"})
        else:
            rows.append({"metric": prefix, "value": str(value)})

    walk("", section or {})
    return rows


def summary_rows(report: dict) -> tuple[list[dict], list[dict]]:
    """(fidelity rows, privacy rows) of the report's headline table; older reports: their fidelity/privacy sections."""
    summary = report.get("summary")
    if not isinstance(summary, dict):
        return metric_rows(report.get("fidelity")), metric_rows(report.get("privacy"))

    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, bool):
            return "yes" if v else "no"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    fidelity, privacy = [], []
    for name, entry in summary.items():
        entry = entry if isinstance(entry, dict) else {"value": entry}
        row = {"metric": name.replace("_", " "), "value": fmt(entry.get("value")), "reference": fmt(entry.get("reference")),
               "target": entry.get("target") or "", "pass": fmt(entry.get("pass"))}
        (privacy if name in data.PRIVACY_METRICS else fidelity).append(row)
    return fidelity, privacy


def records(frame: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """DataTable data and columns of a frame (values as text, so dates and categories show as they are)."""
    shown = frame.astype(str)
    return shown.to_dict("records"), [{"name": c, "id": c} for c in shown.columns]


@callback(Output("sy-column", "options"), Output("sy-column", "value"), Output("sy-fidelity", "data"),
          Output("sy-privacy", "data"), Output("sy-sample", "data"), Output("sy-sample", "columns"),
          Output("sy-head", "children"), Output("sy-columns", "figure"), Output("sy-msg", "children"),
          Input("sy-name", "value"), State("sy-column", "value"))
@guarded(9)
def pick_synth(name, current):
    syn = data.load_synth(runs_dir(), name)
    cols = [c for c in syn.real.columns if c in syn.synthetic.columns] or list(syn.synthetic.columns)
    rows, columns = records(syn.synthetic.head(SAMPLE_ROWS))
    report = syn.report
    head = (f"{len(syn.real):,} real rows, {len(syn.synthetic):,} synthetic rows · {len(cols)} columns"
            + (f" · {report['created_at']}" if report.get("created_at") else "")
            + (f" · inputs: {', '.join(f'{k}={v}' for k, v in report['inputs'].items() if v is not None)}"
               if isinstance(report.get("inputs"), dict) else ""))
    msg = None if report else info_box("this folder has no report.json: distributions only")
    varied = [c for c in cols if syn.real[c].nunique() > 1]
    first = next((c for c in ("amount", "Amount") if c in cols), None) or (varied[0] if varied else (cols[0] if cols else None))
    return ([{"label": c, "value": c} for c in cols], current if current in cols else first,
            *summary_rows(report), rows, columns, head,
            column_scores(report.get("columns") or {}, (report.get("reference") or {}).get("columns")), msg)


@callback(Output("sy-dist", "figure"), Output("sy-msg", "children", allow_duplicate=True),
          Input("sy-column", "value"), State("sy-name", "value"), prevent_initial_call=True)
@guarded(2)
def draw(column, name):
    if not column:
        return empty_figure("choose a column"), None
    syn = data.load_synth(runs_dir(), name)
    if column not in syn.real.columns:
        return empty_figure(f"{column} is not in the real rows"), None
    return distribution_compare(syn.real[column], syn.synthetic[column], column), None


@callback(Output("sy-sample", "data", allow_duplicate=True), Output("sy-sample", "columns", allow_duplicate=True),
          Output("sy-gen-msg", "children"), Input("sy-generate", "n_clicks"), State("sy-name", "value"),
          State("sy-rows", "value"), State("sy-seed", "value"), prevent_initial_call=True)
@guarded(3)
def generate(_clicks, name, n_rows, seed):
    n_rows = int(n_rows or 0)
    if not 1 <= n_rows <= 100_000:
        return dash.no_update, dash.no_update, error_box("rows to generate: 1 to 100,000")
    model_dir = data.synth_model_dir(data.load_synth(runs_dir(), name))
    if model_dir is None:
        return dash.no_update, dash.no_update, error_box(
            "this evaluation names no model to sample from (put the `forecaster synth train` run in its model/ folder)")
    from dashboard.jobs import generate_rows  # the synthesis generator (torch) loads on the first click

    frame = generate_rows(model_dir, n_rows, int(seed or 0), device=jobs().device)  # the runner's --device
    rows, columns = records(frame)
    return rows, columns, info_box(f"generated {len(frame):,} rows (seed {seed})")
