"""Backtest: skill against baselines, interval coverage by horizon, PIT histograms, and one origin's fan vs what happened."""
from __future__ import annotations

import dash
import numpy as np
import pandas as pd
from dash import Input, Output, State, callback, dash_table, dcc, html

from dashboard import data
from dashboard.components import (keep_choice, card, control, demo_hint, dropdown, empty_state, guarded, run_options, runs_dir,
                                  safe_layout, series_options, table_style)
from dashboard.figures.backtest import coverage_chart, pit_histogram, realized_fan, skill_chart
from forecaster.market.backtest.scoring import FAN_QUANTILES
from forecaster.market.plots import empty_figure
from data_sources.calendar import business_days_after

dash.register_page(__name__, path="/backtest", name="Backtest", title="Backtest · Forecaster", order=3)


def backtest_hint(runs, run: str) -> html.Div:
    return empty_state(
        f"No backtest for run {run} yet",
        "A backtest forecasts from many past origins with only the data known then, and scores the paths against what "
        "happened (CRPS, interval coverage, PIT, regime Brier scores), next to random-walk, GARCH, VAR, climatology, HAR (log VIX) and Atkeson-Ohanian (YoY inflation) baselines.",
        command=f"forecaster backtest --run {runs}/{run} --out {runs}/{run}/backtests/main")


@safe_layout
def layout(**_query) -> html.Div:
    runs = runs_dir()
    run_opts = run_options(runs)
    header = [html.H2("Backtest", className="page-title"),
              html.P("How the model did in the past: scores at each origin against the realised path, averaged over origins.",
                     className="page-sub")]
    if not run_opts:
        return html.Div(header + [demo_hint(runs)])
    run = run_opts[0]["value"]
    bts = data.list_backtests(runs, run)
    return html.Div(header + [
        html.Div(className="controls", children=[
            control("Run", dropdown("bt-run", run_opts, run), "260px"),
            control("Backtest", dropdown("bt-name", [{"label": b, "value": b} for b in bts], bts[0] if bts else None), "180px"),
            control("Series", dropdown("bt-series", [], None), "320px"),
            control("Model", dropdown("bt-model", [], None), "150px"),
            control("Origin", dropdown("bt-origin", [], None), "150px"),
        ]),
        html.Div(id="bt-msg"),
        html.Div(id="bt-body", children=[
            html.Div(id="bt-head", className="meta"),
            html.Div(className="grid-2", children=[
                card(dcc.Graph(id="bt-skill", figure=empty_figure("…"), config={"displaylogo": False})),
                card(dcc.Graph(id="bt-coverage", figure=empty_figure("…"), config={"displaylogo": False})),
            ]),
            html.Div(className="grid-2", children=[
                card(dcc.Graph(id="bt-pit", figure=empty_figure("…"), config={"displaylogo": False})),
                card(dash_table.DataTable(id="bt-table", data=[], columns=[], sort_action="native", page_size=12,
                                          **table_style()), title="Mean scores by horizon (lower CRPS is better)"),
            ]),
            card(dcc.Loading(dcc.Graph(id="bt-fan", figure=empty_figure("…"), config={"displaylogo": False}),
                             type="dot", delay_show=300)),
        ]),
    ])


@callback(Output("bt-name", "options"), Output("bt-name", "value"), Output("bt-msg", "children", allow_duplicate=True),
          Input("bt-run", "value"), prevent_initial_call=True)
@guarded(3)
def pick_run(run):
    bts = data.list_backtests(runs_dir(), run)
    return [{"label": b, "value": b} for b in bts], bts[0] if bts else None, None


@callback(Output("bt-series", "options"), Output("bt-series", "value"), Output("bt-model", "options"),
          Output("bt-model", "value"), Output("bt-origin", "options"), Output("bt-origin", "value"),
          Output("bt-head", "children"), Output("bt-body", "style"), Output("bt-msg", "children"),
          Input("bt-name", "value"), State("bt-run", "value"), State("bt-series", "value"), State("bt-model", "value"))
@guarded(9)
def pick_backtest(name, run, series, model):
    runs = runs_dir()
    if not run:
        return [], None, [], None, [], None, "", {"display": "none"}, None
    if not name:
        return [], None, [], None, [], None, "", {"display": "none"}, backtest_hint(runs, run)
    bt = data.load_backtest(runs, run, name)
    s = bt.scores
    names = list(dict.fromkeys(s.loc[s["kind"] == "series", "name"]))
    models = bt.models
    origins = bt.origins
    cfg = bt.config.get("config", bt.config)
    head = (f"{len(origins)} origins {origins[0]} .. {origins[-1]} · models: {', '.join(models)} · "
            f"{cfg.get('n_paths', '?')} paths × {cfg.get('horizon', '?')} days · folder {bt.path}") if origins else ""
    opts = series_options(names)
    return (opts, keep_choice(opts, series),
            [{"label": m, "value": m} for m in models], model if model in models else ("gpt" if "gpt" in models else models[0]),
            [{"label": o, "value": o} for o in origins], origins[-1] if origins else None, head, {}, None)


def coverage_long(scores: pd.DataFrame, series: str, model: str) -> pd.DataFrame:
    """(horizon, nominal, coverage) of one model and series, averaged over origins."""
    s = scores[(scores["kind"] == "series") & (scores["name"] == series) & (scores["model"] == model)]
    rows = []
    for h, grp in s.groupby("horizon"):
        for col, nominal in (("cov50", 0.5), ("cov80", 0.8), ("cov90", 0.9)):
            if col in grp:
                rows.append({"horizon": int(h), "nominal": nominal, "coverage": float(np.nanmean(grp[col]))})
    return pd.DataFrame(rows, columns=["horizon", "nominal", "coverage"])


def skill_long(scores: pd.DataFrame, series: str, ref: str = "gpt") -> pd.DataFrame:
    """CRPS skill of ``ref`` over each other model for one series: (series=horizon label, model, skill)."""
    s = scores[(scores["kind"] == "series") & (scores["name"] == series)]
    if ref not in set(s["model"]):
        return pd.DataFrame(columns=["series", "model", "skill"])
    wide = s.pivot_table(index=["origin", "horizon"], columns="model", values="crps", aggfunc="first")
    rows = []
    for base in [m for m in wide.columns if m != ref]:
        ok = wide[[ref, base]].dropna()
        for h, grp in ok.groupby(level="horizon"):
            denom = grp[base].mean()
            rows.append({"series": f"{int(h)}d", "model": f"vs {base}", "skill": 1 - grp[ref].mean() / denom if denom else np.nan})
    return pd.DataFrame(rows, columns=["series", "model", "skill"])


def skill_for(bt, series: str) -> pd.DataFrame:
    """CRPS skill of the GPT over each baseline by horizon: from skill.csv (with its bootstrap interval) when the
    backtest wrote one, else computed from the scores."""
    sk = bt.skill
    if not sk.empty and {"kind", "name", "horizon", "baseline", "skill"} <= set(sk.columns):
        part = sk[(sk["kind"] == "series") & (sk["name"] == series)].sort_values(["baseline", "horizon"])
        if len(part):
            out = pd.DataFrame({"series": part["horizon"].map(lambda h: f"{int(h)}d"),
                                "model": "vs " + part["baseline"].astype(str), "skill": part["skill"]})
            if {"low", "high"} <= set(part.columns):
                out["low"], out["high"] = part["low"].to_numpy(), part["high"].to_numpy()
            return out
    return skill_long(bt.scores, series)


def score_rows(scores: pd.DataFrame, series: str) -> tuple[list[dict], list[dict]]:
    s = scores[(scores["kind"] == "series") & (scores["name"] == series)]
    t = s.groupby(["horizon", "model"]).agg(n=("crps", "size"), crps=("crps", "mean"), cov90=("cov90", "mean"),
                                            pit_mean=("pit", "mean")).reset_index()
    rows = [{"horizon": f"{int(r['horizon'])}d", "model": r["model"], "origins": int(r["n"]), "CRPS": round(float(r["crps"]), 4),
             "90% coverage": f"{100 * r['cov90']:.0f}%", "PIT mean": round(float(r["pit_mean"]), 2)} for _, r in t.iterrows()]
    cols = [{"name": c, "id": c} for c in ("horizon", "model", "origins", "CRPS", "90% coverage", "PIT mean")]
    return rows, cols


def origin_fan_figure(fan: pd.DataFrame, series: str, model: str, origin: str, panel: pd.DataFrame | None):
    """The fan of one model at one origin against the realised path (business days after the origin)."""
    part = fan[(fan["model"] == model) & (fan["series"] == series)].sort_values("step")
    if part.empty:
        return empty_figure(f"{model} has no fan for {series} at {origin}")
    dates = business_days_after(pd.Timestamp(origin), int(part["step"].max()))[part["step"].to_numpy() - 1]
    q = {p: part[f"q{int(round(p * 100)):02d}"].to_numpy() for p in FAN_QUANTILES}
    real = fan[(fan["model"] == "realised") & (fan["series"] == series)].sort_values("step")
    real_dates = business_days_after(pd.Timestamp(origin), int(real["step"].max()))[real["step"].to_numpy() - 1] if len(real) else []
    actual = pd.Series(real["q50"].to_numpy(), index=real_dates) if len(real) else None
    history = None
    if panel is not None and series in panel.columns:
        history = panel.loc[:pd.Timestamp(origin), series].dropna().iloc[-250:]
    return realized_fan(dates, q, actual, history, series, origin)


@callback(Output("bt-skill", "figure"), Output("bt-coverage", "figure"), Output("bt-pit", "figure"),
          Output("bt-table", "data"), Output("bt-table", "columns"), Output("bt-msg", "children", allow_duplicate=True),
          Input("bt-series", "value"), Input("bt-model", "value"), State("bt-run", "value"), State("bt-name", "value"),
          prevent_initial_call=True)
@guarded(6)
def draw_summary(series, model, run, name):
    if not (run and name and series and model):
        raise dash.exceptions.PreventUpdate
    bt = data.load_backtest(runs_dir(), run, name)
    s = bt.scores
    pit = s[(s["kind"] == "series") & (s["name"] == series) & (s["model"] == model)]["pit"].to_numpy()
    rows, cols = score_rows(s, series)
    return (skill_chart(skill_for(bt, series), value="skill", label="series", group="model"),
            coverage_chart(coverage_long(s, series, model)),
            pit_histogram(pit, title=f"PIT of {model} for {series} (all origins and horizons)"),
            rows, cols, None)


@callback(Output("bt-fan", "figure"), Output("bt-msg", "children", allow_duplicate=True),
          Input("bt-origin", "value"), Input("bt-series", "value"), Input("bt-model", "value"),
          State("bt-run", "value"), State("bt-name", "value"), prevent_initial_call=True)
@guarded(2)
def draw_origin(origin, series, model, run, name):
    if not (run and name and series and model and origin):
        raise dash.exceptions.PreventUpdate
    runs = runs_dir()
    bt = data.load_backtest(runs, run, name)
    try:
        panel = data.panel_for_run(data.run_info(runs, run), origin)
    except Exception:
        panel = None
    return origin_fan_figure(data.load_backtest_fan(bt, origin), series, model, origin, panel), None
