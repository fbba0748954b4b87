"""Forecast: fan charts of any series of a forecast, with the history before the as-of date, and a summary table."""
from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dash_table, dcc, html

from dashboard import data
from dashboard.components import (card, control, default_run, demo_hint, dropdown, empty_state, forecast_options, guarded,
                                  keep_choice, run_options, runs_dir, safe_layout,
                                  series_options, table_style)
from forecaster.market.plots import empty_figure
from dashboard.figures.forecast import fan_chart, learning_curve, summary_rows

dash.register_page(__name__, path="/", name="Forecast", title="Forecast · Forecaster", order=0)

SAMPLE_CHOICES = [{"label": "none", "value": 0}, {"label": "5", "value": 5}, {"label": "20", "value": 20},
                  {"label": "50", "value": 50}]
HISTORY_CHOICES = [{"label": "6m", "value": 125}, {"label": "1y", "value": 250}, {"label": "2y", "value": 500}]


@safe_layout
def layout(**_query) -> html.Div:
    runs = runs_dir()
    run_opts = run_options(runs)
    header = [html.H2("Forecast", className="page-title"),
              html.P("Median and 50/80/90% bands of the sampled joint paths; history up to the as-of date on the same axes.",
                     className="page-sub")]
    if not run_opts:
        return html.Div(header + [demo_hint(runs)])
    run = default_run(runs, run_opts)
    fc_opts = forecast_options(runs, run)
    return html.Div(header + [
        html.Div(className="controls", children=[
            control("Run", dropdown("fc-run", run_opts, run), "260px"),
            control("Forecast", dropdown("fc-name", fc_opts, fc_opts[0]["value"] if fc_opts else None), "200px"),
            control("Series", dropdown("fc-series", [], None), "340px"),
            control("Sample paths", dcc.RadioItems(id="fc-samples", options=SAMPLE_CHOICES, value=0, inline=True,
                                                   inputStyle={"marginRight": "4px", "marginLeft": "8px"}), "230px"),
            control("History", dcc.RadioItems(id="fc-history", options=HISTORY_CHOICES, value=250, inline=True,
                                              inputStyle={"marginRight": "4px", "marginLeft": "8px"}), "200px"),
        ]),
        html.Div(id="fc-msg"),
        card(dcc.Loading(dcc.Graph(id="fc-fan", figure=empty_figure("choose a forecast"),
                                   config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}),
                         type="dot", delay_show=300)),
        card(html.Div(id="fc-meta", className="meta"),
             dash_table.DataTable(id="fc-table", columns=[
                 {"name": "series", "id": "series"}, {"name": "unit", "id": "unit"}, {"name": "horizon", "id": "horizon"},
                 {"name": "date", "id": "date"}, {"name": "last", "id": "last"}, {"name": "5%", "id": "q05"},
                 {"name": "25%", "id": "q25"}, {"name": "median", "id": "q50"}, {"name": "75%", "id": "q75"},
                 {"name": "95%", "id": "q95"}], data=[], sort_action="native", page_size=40, **table_style()),
             title="Quantiles at 21, 63, 125 and 250 business days"),
        card(dcc.Graph(id="fc-curve", figure=empty_figure("…", height=260), config={"displaylogo": False}),
             html.Div(id="fc-run-info", className="meta"), html.Div(id="fc-run-msg"), title="The model behind it"),
    ])


@callback(Output("fc-name", "options"), Output("fc-name", "value"), Output("fc-msg", "children", allow_duplicate=True),
          Input("fc-run", "value"), State("fc-name", "value"), prevent_initial_call=True)
@guarded(3)
def pick_run(run, current):
    """Forecasts of the chosen run (keeps the current one when the new run has it too)."""
    opts = forecast_options(runs_dir(), run)
    msg = None if opts else demo_hint_for_run(run)
    return opts, keep_choice(opts, current), msg


def demo_hint_for_run(run: str) -> html.Div:
    runs = runs_dir()
    return empty_state(f"Run {run} has no forecast yet", "Make one (200 paths, one year ahead):",
                       command=f"forecaster forecast --run {runs / run} --as-of 2018-12-31 --out {runs / run}/forecasts/base")


@callback(Output("fc-series", "options"), Output("fc-series", "value"), Output("fc-msg", "children"),
          Input("fc-name", "value"), State("fc-run", "value"), State("fc-series", "value"))
@guarded(3)
def pick_forecast(name, run, current):
    """The series of the chosen forecast (keeps the current series when it has it)."""
    if not run or not name:
        return [], None, demo_hint_for_run(run) if run else None
    fc = data.load_forecast(runs_dir(), run, name)
    value = current if current in fc.series else fc.series[0]
    return series_options(fc.series), value, None


@callback(Output("fc-fan", "figure"), Output("fc-table", "data"), Output("fc-meta", "children"),
          Output("fc-msg", "children", allow_duplicate=True),
          Input("fc-series", "value"), Input("fc-samples", "value"), Input("fc-history", "value"),
          State("fc-run", "value"), State("fc-name", "value"), prevent_initial_call="initial_duplicate")
@guarded(4)
def draw(series, n_samples, history_days, run, name):
    """The fan chart of ``series`` and the summary table of the whole forecast."""
    if not run or not name or not series:
        return empty_figure("no forecast selected"), [], "", dash.no_update
    fc = data.load_forecast(runs_dir(), run, name)
    if series not in fc.series:
        return empty_figure(f"{series} is not in forecast {name}"), [], "", dash.no_update
    fig = fan_chart(fc, series, n_sample_paths=int(n_samples or 0), history_days=int(history_days or 250))
    meta = fc.meta
    text = (f"as of {fc.as_of.date()} · {fc.n_paths} paths × {fc.horizon} business days · seed {meta.get('seed')} · "
            f"data {meta.get('data')} · model {str(meta.get('model_sha256') or '')[:12]} · "
            f"decoded cells {100 * data.finite_fraction(fc.paths):.1f}% · created {meta.get('created_at', '?')}")
    return fig, summary_rows(fc), text, None


@callback(Output("fc-curve", "figure"), Output("fc-run-info", "children"),
          Output("fc-run-msg", "children"), Input("fc-run", "value"))
@guarded(3)
def draw_run(run):
    """The run's learning curve and what it was trained on."""
    if not run:
        return empty_figure("no run"), "", None
    runs = runs_dir()
    info = data.run_info(runs, run)
    text = (f"run {run} · data {info.get('data')} · series {', '.join(info.get('series', []))} · trained on "
            f"{' .. '.join(info.get('train_range', []) or ['?'])} · validation {' .. '.join(info.get('val_range', []) or ['?'])}")
    return learning_curve(data.read_metrics(runs, run)), text, None
