"""Regimes: probability of each volatility and inflation regime by horizon, the historical regimes, one horizon in detail."""
from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, State, callback, dash_table, dcc, html

from dashboard import data
from dashboard.components import (card, control, default_run, demo_hint, dropdown, forecast_options, guarded, keep_choice,
                                  info_box, run_options, runs_dir, safe_layout,
                                  table_style)
from forecaster.market.plots import empty_figure
from dashboard.figures.regimes import regime_bars, regime_history, regime_stack
from forecaster.market.regimes import DEFAULT_REGIMES, historical_regimes, regime_probabilities, trend_probabilities

dash.register_page(__name__, path="/regimes", name="Regimes", title="Regimes · Forecaster", order=1)

GRAPH_CONFIG = {"displaylogo": False}


@safe_layout
def layout(**_query) -> html.Div:
    runs = runs_dir()
    run_opts = run_options(runs)
    header = [html.H2("Regimes", className="page-title"),
              html.P("Volatility regimes from VIX and inflation regimes from core CPI YoY: the share of sampled paths in each "
                     "regime on every horizon day, next to the regimes the data went through.", className="page-sub")]
    if not run_opts:
        return html.Div(header + [demo_hint(runs)])
    run = default_run(runs, run_opts)
    fc_opts = forecast_options(runs, run)
    blocks = []
    for regime in DEFAULT_REGIMES:
        key = regime.name
        blocks.append(html.Div(id=f"rg-block-{key}", children=[
            html.H3(f"{key.capitalize()} ({regime.series})", style={"margin": "10px 0 6px"}),
            html.Div(className="grid-2", children=[
                card(dcc.Graph(id=f"rg-stack-{key}", figure=empty_figure("…"), config=GRAPH_CONFIG)),
                card(dcc.Graph(id=f"rg-hist-{key}", figure=empty_figure("…"), config=GRAPH_CONFIG)),
            ]),
            card(dcc.Graph(id=f"rg-bars-{key}", figure=empty_figure("…"), config=GRAPH_CONFIG)),
        ]))
    return html.Div(header + [
        html.Div(className="controls", children=[
            control("Run", dropdown("rg-run", run_opts, run), "260px"),
            control("Forecast", dropdown("rg-name", fc_opts, fc_opts[0]["value"] if fc_opts else None), "200px"),
            control("Horizon (business days)", dcc.Slider(id="rg-day", min=1, max=250, step=1, value=63,
                                                          marks={d: f"{d}d" for d in (1, 21, 63, 125, 250)},
                                                          tooltip={"placement": "bottom"}), "420px"),
            control("History shown", dcc.RadioItems(id="rg-years", options=[{"label": "5y", "value": 5},
                                                                             {"label": "10y", "value": 10},
                                                                             {"label": "all", "value": 0}],
                                                    value=10, inline=True,
                                                    inputStyle={"marginRight": "4px", "marginLeft": "8px"}), "180px"),
        ]),
        html.Div(id="rg-msg"),
        *blocks,
        card(dash_table.DataTable(id="rg-table", data=[], columns=[{"name": c, "id": c} for c in ("regime", "label", "probability")],
                                  **table_style()), html.Div(id="rg-trend", className="meta"),
             title="Probabilities at the chosen horizon"),
    ])


@callback(Output("rg-name", "options"), Output("rg-name", "value"), Output("rg-msg", "children", allow_duplicate=True),
          Input("rg-run", "value"), State("rg-name", "value"), prevent_initial_call=True)
@guarded(3)
def pick_run(run, current):
    opts = forecast_options(runs_dir(), run)
    return opts, keep_choice(opts, current), None


def regime_views(fc, panel: pd.DataFrame | None, day: int, years: int) -> dict:
    """Every figure and table of the page for one forecast (pure: forecast and panel in, figures out)."""
    day = max(1, min(int(day), fc.horizon))
    out = {"rows": [], "trend": ""}
    for regime in DEFAULT_REGIMES:
        key = regime.name
        if regime.series not in fc.series:
            msg = f"this run does not model {regime.series}, so there is no {key} regime"
            out[key] = tuple(empty_figure(msg) for _ in range(3))
            continue
        probs = regime_probabilities(fc, regime)
        hist_values = panel[regime.series] if panel is not None and regime.series in panel.columns else fc.history[regime.series]
        out[key] = (regime_stack(probs, regime, fc.as_of),
                    regime_history(hist_values, regime, years or None),
                    regime_bars(probs.iloc[day - 1], regime, day, fc.dates[day - 1]))
        now = historical_regimes(fc.history[[regime.series]].dropna(), regime)
        current = now.iloc[-1] if len(now) else "?"
        for label in regime.labels:
            out["rows"].append({"regime": f"{key} (now: {current})", "label": label,
                                "probability": f"{100 * float(probs[label].iloc[day - 1]):.1f}%"})
        if regime.trend_band:
            t = trend_probabilities(fc, regime, day)
            out["trend"] = (f"{regime.series} from {float(fc.history[regime.series].iloc[-1]):.2f}{regime.unit} on "
                            f"{fc.as_of.date()} to day {day}: rising {100 * t['rising']:.0f}%, stable {100 * t['stable']:.0f}%, "
                            f"falling {100 * t['falling']:.0f}% (band ±{regime.trend_band}{regime.unit})")
    return out


@callback(Output("rg-stack-volatility", "figure"), Output("rg-hist-volatility", "figure"), Output("rg-bars-volatility", "figure"),
          Output("rg-stack-inflation", "figure"), Output("rg-hist-inflation", "figure"), Output("rg-bars-inflation", "figure"),
          Output("rg-table", "data"), Output("rg-trend", "children"), Output("rg-day", "max"), Output("rg-msg", "children"),
          Input("rg-name", "value"), Input("rg-day", "value"), Input("rg-years", "value"), State("rg-run", "value"))
@guarded(10)
def draw(name, day, years, run):
    if not run or not name:
        blank = empty_figure("no forecast in this run yet")
        return (blank,) * 6 + ([], "", 250, info_box(f"Run {run} has no forecast yet; see the Forecast page."))
    runs = runs_dir()
    fc = data.load_forecast(runs, run, name)
    try:
        panel = data.panel_for_run(data.run_info(runs, run), fc.as_of)
        note = None
    except Exception as exc:  # the data source may be gone; fall back to the forecast's own history
        panel, note = None, info_box(f"history from the forecast file only (the run's data source could not be read: {exc})")
    v = regime_views(fc, panel, day or 63, years)
    return (*v["volatility"], *v["inflation"], v["rows"], v["trend"], fc.horizon, note)
