"""Data: the aligned point-in-time panel a run was trained on: series, coverage, last update, a chart, publication rules."""
from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, callback, dash_table, dcc, html

from dashboard import data
from dashboard.components import (card, control, dropdown, guarded, info_box, run_options, runs_dir, safe_layout,
                                  series_options, table_style)
from forecaster.market.plots import empty_figure
from dashboard.figures.data import coverage_heatmap, series_chart
from data_sources.panel import summary

dash.register_page(__name__, path="/data", name="Data", title="Data · Forecaster", order=5)

EMBEDDED = "__embedded__"


@safe_layout
def layout(**_query) -> html.Div:
    runs = runs_dir()
    opts = run_options(runs) + [{"label": "embedded offline data (no run)", "value": EMBEDDED}]
    return html.Div([
        html.H2("Data", className="page-title"),
        html.P("The aligned daily panel: a value for a period enters on the first business day on or after its publication "
               "date and is carried forward; before that it is invisible (point in time).", className="page-sub"),
        html.Div(className="controls", children=[
            control("Panel of", dropdown("dt-run", opts, opts[0]["value"]), "300px"),
            control("Series", dropdown("dt-series", [], None), "360px"),
        ]),
        html.Div(id="dt-msg"),
        card(dcc.Loading(dcc.Graph(id="dt-chart", figure=empty_figure("…"), config={"displaylogo": False}),
                         type="dot", delay_show=300)),
        card(html.Div(id="dt-head", className="meta"),
             dash_table.DataTable(id="dt-table", data=[], columns=[{"name": c, "id": c} for c in (
                 "series", "description", "unit", "freq", "first", "last", "count", "missing", "last value")],
                 sort_action="native", **table_style()), title="Series and coverage"),
        card(dcc.Graph(id="dt-coverage", figure=empty_figure("…"), config={"displaylogo": False})),
        card(dash_table.DataTable(id="dt-rules", data=[], columns=[{"name": c, "id": c} for c in ("series", "freq", "published")],
                                  **table_style()), title="Publication-lag rules"),
    ])


def panel_tables(panel: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """(summary rows, publication-rule rows) for the panel's series."""
    s = summary(panel)
    rows, rules = [], []
    for rec in s.to_dict("records"):
        rows.append({"series": rec["series"], "description": rec["description"], "unit": rec["unit"], "freq": rec["freq"],
                     "first": "" if pd.isna(rec["first"]) else str(rec["first"].date()),
                     "last": "" if pd.isna(rec["last"]) else str(rec["last"].date()),
                     "count": f"{rec['count']:,}", "missing": f"{rec['missing']:,}",
                     "last value": "" if pd.isna(rec["last_value"]) else f"{rec['last_value']:.4g}"})
        rules.append({"series": rec["series"], "freq": rec["freq"], "published": rec["published"]})
    return rows, rules


def _panel(run):
    if run == EMBEDDED or not run:
        return data.panel_for_run(None), "embedded offline data"
    info = data.run_info(runs_dir(), run)
    return data.panel_for_run(info), f"run {run} (data: {info.get('data')})"


@callback(Output("dt-series", "options"), Output("dt-series", "value"), Output("dt-table", "data"),
          Output("dt-rules", "data"), Output("dt-coverage", "figure"), Output("dt-head", "children"),
          Output("dt-msg", "children"), Input("dt-run", "value"))
@guarded(7)
def pick_panel(run):
    panel, what = _panel(run)
    rows, rules = panel_tables(panel)
    head = (f"{what}: {len(panel):,} business days × {panel.shape[1]} series, {panel.index[0].date()} .. "
            f"{panel.index[-1].date()} (last update {panel.index[-1].date()})")
    return (series_options(panel.columns), panel.columns[0], rows, rules, coverage_heatmap(panel), head,
            None if len(panel) else info_box("the panel is empty"))


@callback(Output("dt-chart", "figure"), Output("dt-msg", "children", allow_duplicate=True),
          Input("dt-series", "value"), Input("dt-run", "value"), prevent_initial_call="initial_duplicate")
@guarded(2)
def draw(series, run):
    if not series:
        return empty_figure("choose a series"), None
    panel, _ = _panel(run)
    if series not in panel.columns:
        return empty_figure(f"{series} is not in this panel"), None
    return series_chart(panel, series), None
