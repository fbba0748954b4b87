"""Scenarios: build a stress scenario, sample it in the background, compare it with the base forecast, download it."""
from __future__ import annotations

import tempfile
from pathlib import Path

import dash
import numpy as np
from dash import Input, Output, State, callback, dash_table, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import data, jobs as jobs_mod
from dashboard.components import (card, control, default_run, demo_hint, dropdown, error_box, forecast_options,
                                  guarded, info_box, jobs, run_options, runs_dir, sampling_settings,
                                  safe_layout, series_options, table_style,
                                  triggered_id)
from forecaster.market.plots import empty_figure, fan_quantiles
from dashboard.figures.scenarios import compare_chart
from foundation.names import MAX_NAME, is_safe_name, safe_name
from forecaster.core.sampler import SamplingConfig
from forecaster.market.export import export
from forecaster.market.scenario import constraint_from_dict

dash.register_page(__name__, path="/scenarios", name="Scenarios", title="Scenarios · Forecaster", order=2)

KIND_OPTIONS = [
    {"label": "hold at level (series units)", "value": "level"},
    {"label": "change, % (geometric ramp)", "value": "change_pct"},
    {"label": "change, basis points (linear)", "value": "change_bp"},
    {"label": "change, series units (linear)", "value": "change"},
]
EXPORT_OPTIONS = [{"label": "paths (long)", "value": "long"}, {"label": "quantiles", "value": "quantiles"},
                  {"label": "paths (wide)", "value": "wide"}]
FILE_OPTIONS = [{"label": "Parquet", "value": "parquet"}, {"label": "CSV", "value": "csv"}]
RADIO = {"inputStyle": {"marginRight": "4px", "marginLeft": "8px"}, "inline": True}


@safe_layout
def layout(**_query) -> html.Div:
    runs = runs_dir()
    run_opts = run_options(runs)
    header = [html.H2("Stress scenarios", className="page-title"),
              html.P("Fix the path of some series (a shock of a given size over a given number of days); the model samples "
                     "every other series conditionally on it, from the same origin and horizon as the base forecast.",
                     className="page-sub")]
    if not run_opts:
        return html.Div(header + [demo_hint(runs)])
    run = default_run(runs, run_opts)
    fc_opts = forecast_options(runs, run)
    saved = forecast_options(runs, run, "scenarios")
    return html.Div(header + [
        dcc.Store(id="sc-constraints", data=[]),
        dcc.Store(id="sc-job", data=None),
        dcc.Interval(id="sc-poll", interval=400, disabled=True),
        html.Div(className="controls", children=[
            control("Run", dropdown("sc-run", run_opts, run), "260px"),
            control("Base forecast", dropdown("sc-base", fc_opts, fc_opts[0]["value"] if fc_opts else None), "200px"),
        ]),
        html.Div(className="grid-3-1", children=[
            card(html.Div(className="controls", style={"border": "none", "padding": 0}, children=[
                control("Series", dropdown("sc-series", [], None), "300px"),
                control("Shock", dropdown("sc-kind", KIND_OPTIONS, "change_pct"), "230px"),
                control("Size", dcc.Input(id="sc-value", type="number", value=50, debounce=True), "90px"),
                control("From day", dcc.Input(id="sc-first", type="number", value=1, min=1, step=1), "80px"),
                control("Duration (days)", dcc.Input(id="sc-days", type="number", value=20, min=1, step=1), "110px"),
                html.Button("Add shock", id="sc-add", className="btn btn-secondary"),
                html.Button("Clear", id="sc-clear", className="btn btn-secondary"),
            ]), html.Div(id="sc-list"), html.Div(id="sc-msg-build"), title="1. Build the scenario"),
            card(html.Div(className="controls", style={"border": "none", "padding": 0}, children=[
                control("Name", dcc.Input(id="sc-name", type="text", value="stress-1"), "140px"),
                control("Paths", dcc.Input(id="sc-paths", type="number", value=100, min=1, max=2000, step=1), "80px"),
                control("Seed", dcc.Input(id="sc-seed", type="number", value=0, min=0, step=1), "70px"),
                html.Button("Run scenario", id="sc-run-btn", className="btn"),
            ]), html.Div(className="progress-outer", children=html.Div(id="sc-progress", className="progress-inner",
                                                                        style={"width": "0%"})),
                html.Div(id="sc-status", className="meta"), html.Div(id="sc-msg-run"), title="2. Run it"),
        ]),
        card(html.Div(className="controls", style={"border": "none", "padding": 0}, children=[
            control("Scenario", dropdown("sc-saved", saved, saved[0]["value"] if saved else None), "220px"),
            control("Series", dropdown("sc-cmp-series", [], None), "320px"),
        ]), html.Div(id="sc-msg-cmp"),
            dcc.Loading(dcc.Graph(id="sc-cmp", figure=empty_figure("run a scenario to compare it with the base"),
                                  config={"displaylogo": False}), type="dot", delay_show=300),
            dash_table.DataTable(id="sc-delta", data=[], columns=[{"name": c, "id": c} for c in (
                "series", "horizon", "base median", "stress median", "difference", "base 90% band", "stress 90% band")],
                **table_style()),
            title="3. Compare with the base forecast"),
        card(html.Div(className="controls", style={"border": "none", "padding": 0}, children=[
            control("Forecast", dcc.RadioItems(id="sc-dl-which", options=[{"label": "scenario", "value": "scenario"},
                                                                          {"label": "base", "value": "base"}],
                                               value="scenario", **RADIO), "200px"),
            control("Table", dcc.RadioItems(id="sc-dl-fmt", options=EXPORT_OPTIONS, value="long", **RADIO), "330px"),
            control("File", dcc.RadioItems(id="sc-dl-type", options=FILE_OPTIONS, value="parquet", **RADIO), "170px"),
            html.Button("Download", id="sc-dl-btn", className="btn"),
        ]), html.Div(id="sc-msg-dl"), dcc.Download(id="sc-download"),
            html.P("Files carry the forecast's metadata (as-of date, model hash, seed, scenario): in the Parquet schema, "
                   "or for CSV in the `forecaster export` sidecar (use the CLI for it).", className="meta"),
            title="4. Download paths and quantiles"),
    ])


@callback(Output("sc-base", "options"), Output("sc-base", "value"), Output("sc-saved", "options"),
          Output("sc-saved", "value"), Output("sc-msg-run", "children", allow_duplicate=True),
          Input("sc-run", "value"), prevent_initial_call=True)
@guarded(5)
def pick_run(run):
    runs = runs_dir()
    base = forecast_options(runs, run)
    saved = forecast_options(runs, run, "scenarios")
    msg = None if base else info_box(f"Run {run} has no base forecast yet; make one with `forecaster forecast` first.")
    return base, base[0]["value"] if base else None, saved, saved[0]["value"] if saved else None, msg


@callback(Output("sc-series", "options"), Output("sc-series", "value"), Output("sc-cmp-series", "options"),
          Output("sc-cmp-series", "value"), Output("sc-msg-build", "children", allow_duplicate=True),
          Input("sc-base", "value"), State("sc-run", "value"), State("sc-series", "value"),
          State("sc-cmp-series", "value"), prevent_initial_call="initial_duplicate")
@guarded(5)
def pick_base(base, run, shock_series, cmp_series):
    if not run or not base:
        return [], None, [], None, None
    fc = data.load_forecast(runs_dir(), run, base)
    opts = series_options(fc.series)
    first = "VIX" if "VIX" in fc.series else fc.series[0]
    return (opts, shock_series if shock_series in fc.series else first, opts,
            cmp_series if cmp_series in fc.series else fc.series[0], None)


def constraint_dict(series, kind, value, first, duration) -> dict:
    """A scenario-file constraint from the builder's fields, validated (raises ``ScenarioError``)."""
    if series is None or value is None or first is None or duration is None:
        raise ValueError("fill in the series, the size, the first day and the duration")
    first, duration = int(first), int(duration)
    entry = {"series": series, kind: float(value), "days": f"{first}-{first + duration - 1}"}
    constraint_from_dict(entry, "shock")
    return entry


def describe(c: dict) -> str:
    kind = next(k for k in ("level", "change_pct", "change_bp", "change") if k in c)
    size = {"level": f"at {c[kind]:g}", "change_pct": f"{c[kind]:+g}%", "change_bp": f"{c[kind]:+g} bp",
            "change": f"{c[kind]:+g}"}[kind]
    return f"{c['series']} {size}, days {c['days']}"


@callback(Output("sc-constraints", "data"), Output("sc-list", "children"), Output("sc-msg-build", "children"),
          Input("sc-add", "n_clicks"), Input("sc-clear", "n_clicks"),
          State("sc-constraints", "data"), State("sc-series", "value"), State("sc-kind", "value"),
          State("sc-value", "value"), State("sc-first", "value"), State("sc-days", "value"), prevent_initial_call=True)
@guarded(3)
def edit_constraints(_add, _clear, current, series, kind, value, first, duration):
    """Add the builder's shock to the list (a later shock on the same series replaces it), or clear the list."""
    current = list(current or [])
    if triggered_id() == "sc-clear" or (_clear and not _add):
        current = []
    else:
        entry = constraint_dict(series, kind, value, first, duration)
        current = [c for c in current if c["series"] != entry["series"]] + [entry]
    chips = [html.Span(describe(c), className="chip") for c in current] or [html.Span("no shocks yet", className="meta")]
    return current, chips, None


@callback(Output("sc-job", "data"), Output("sc-poll", "disabled"), Output("sc-run-btn", "disabled"),
          Output("sc-msg-run", "children"),
          Input("sc-run-btn", "n_clicks"), State("sc-run", "value"), State("sc-base", "value"),
          State("sc-constraints", "data"), State("sc-name", "value"), State("sc-paths", "value"),
          State("sc-seed", "value"), prevent_initial_call=True)
@guarded(4)
def start(_clicks, run, base, constraints, name, n_paths, seed):
    """Start sampling the scenario in the background; the interval then polls its progress."""
    if not run or not base:
        return None, True, False, error_box("choose a run with a base forecast first")
    if not constraints:
        return None, True, False, error_box("add at least one shock (step 1) before running")
    name = safe_name(name, "scenario name")
    n_paths = int(n_paths or 100)
    if not 1 <= n_paths <= 2000:
        raise ValueError("paths must be between 1 and 2000")
    runs = runs_dir()
    fc = data.load_forecast(runs, run, base)
    settings = sampling_settings()   # None: the base forecast's own (jobs.run_scenario)
    sampling = None if settings is None else SamplingConfig(**settings)
    job_id = jobs().submit(f"scenario {name}", fc.horizon,
                           lambda progress: jobs_mod.run_scenario(runs, run, base, constraints, name, n_paths,
                                                                  int(seed or 0), progress, sampling))
    return {"id": job_id, "run": run}, False, True, info_box(f"sampling scenario {name}: {n_paths} paths × {fc.horizon} days …")


@callback(Output("sc-progress", "style"), Output("sc-status", "children"), Output("sc-poll", "disabled", allow_duplicate=True),
          Output("sc-run-btn", "disabled", allow_duplicate=True), Output("sc-saved", "options", allow_duplicate=True),
          Output("sc-saved", "value", allow_duplicate=True), Output("sc-msg-run", "children", allow_duplicate=True),
          Input("sc-poll", "n_intervals"), State("sc-job", "data"), prevent_initial_call=True)
@guarded(7)
def poll(_n, job):
    """Progress of the running scenario; when it is done, select it for the comparison."""
    if not job:
        raise PreventUpdate
    st = jobs().status(job["id"])
    if st is None:
        return {"width": "0%"}, "", True, False, dash.no_update, dash.no_update, error_box(
            "the job is no longer known (the server restarted, or it finished long ago); run it again")
    pct = 100.0 * st["done"] / max(st["total"], 1)
    text = f"{st['label']}: {st['state']}, day {st['done']} of {st['total']} ({st['elapsed']:.0f} s)"
    if st["state"] in ("queued", "running"):
        return {"width": f"{pct:.0f}%"}, text, False, True, dash.no_update, dash.no_update, dash.no_update
    if st["state"] == "error":
        return {"width": "0%"}, text, True, False, dash.no_update, dash.no_update, error_box(st["message"])
    saved = forecast_options(runs_dir(), job["run"], "scenarios")
    return ({"width": "100%"}, text, True, False, saved, st["result"],
            info_box(f"scenario {st['result']} done in {st['elapsed']:.1f} s"))


def delta_rows(base, stressed, series: str, days=(1, 5, 21, 63, 125, 250)) -> list[dict]:
    """Base vs stress median and 90% band at a few horizons."""
    qb, qs = fan_quantiles(base.column(series)), fan_quantiles(stressed.column(series))
    rows = []
    for d in days:
        if d > min(base.horizon, stressed.horizon):
            continue
        i = d - 1
        rows.append({"series": series, "horizon": f"{d}d", "base median": round(float(qb[0.5][i]), 2),
                     "stress median": round(float(qs[0.5][i]), 2), "difference": round(float(qs[0.5][i] - qb[0.5][i]), 2),
                     "base 90% band": f"{qb[0.05][i]:.2f} – {qb[0.95][i]:.2f}",
                     "stress 90% band": f"{qs[0.05][i]:.2f} – {qs[0.95][i]:.2f}"})
    return rows


@callback(Output("sc-cmp", "figure"), Output("sc-delta", "data"), Output("sc-msg-cmp", "children"),
          Input("sc-saved", "value"), Input("sc-cmp-series", "value"), Input("sc-base", "value"), State("sc-run", "value"))
@guarded(3)
def compare(scenario, series, base, run):
    if not run or not base or not scenario or not series:
        return empty_figure("run a scenario to compare it with the base"), [], None
    runs = runs_dir()
    fc_base = data.load_forecast(runs, run, base)
    fc_scen = data.load_forecast(runs, run, scenario, "scenarios")
    note = None
    if fc_scen.as_of != fc_base.as_of:
        note = info_box(f"scenario {scenario} starts on {fc_scen.as_of.date()}, the base on {fc_base.as_of.date()}")
    return compare_chart(fc_base, fc_scen, series), delta_rows(fc_base, fc_scen, series), note


def download_name(stem, fc, fmt: str, kind: str, fallback: str = "forecast") -> str:
    """The download's file name: ``stem`` (a scenario name from forecast.json, so data) only when it is safe."""
    if kind not in ("parquet", "csv") or fmt not in [o["value"] for o in EXPORT_OPTIONS]:
        raise ValueError(f"export: table {fmt!r}, file {kind!r}: choose one of the options shown")
    stem = stem if is_safe_name(stem) else (fallback if is_safe_name(fallback) else "forecast")
    suffix = f"_{fc.as_of.date()}_{'paths_' + fmt if fmt != 'quantiles' else 'quantiles'}.{kind}"
    return safe_name(stem[:MAX_NAME - len(suffix)] + suffix, "download file name")


def export_bytes(fc, fmt: str, kind: str, fallback: str = "base") -> tuple[bytes, str]:
    """The export of ``fc`` in ``fmt`` (long/quantiles/wide) as a .parquet or .csv file's bytes, and a file name.

    The file is written under a fixed name in a private temporary folder; only the name
    offered to the browser carries the forecast's scenario name (when safe, else ``fallback``).
    """
    stem = (fc.meta.get("scenario") or {}).get("name") or fallback
    fname = download_name(stem, fc, fmt, kind, fallback)
    with tempfile.TemporaryDirectory() as tmp:
        path = export(fc, Path(tmp) / f"export.{kind}", fmt)
        return path.read_bytes(), fname


@callback(Output("sc-download", "data"), Output("sc-msg-dl", "children"),
          Input("sc-dl-btn", "n_clicks"), State("sc-dl-which", "value"), State("sc-dl-fmt", "value"),
          State("sc-dl-type", "value"), State("sc-run", "value"), State("sc-base", "value"), State("sc-saved", "value"),
          prevent_initial_call=True)
@guarded(2)
def download(_clicks, which, fmt, kind, run, base, scenario):
    runs = runs_dir()
    if which == "scenario":
        if not scenario:
            return dash.no_update, error_box("no scenario yet: run one, or download the base forecast")
        fc = data.load_forecast(runs, run, scenario, "scenarios")
    else:
        fc = data.load_forecast(runs, run, base)
    content, fname = export_bytes(fc, fmt, kind, scenario if which == "scenario" else "base")
    size = len(content) / 1e6
    return dcc.send_bytes(content, fname), info_box(f"{fname}: {size:.2f} MB, {fc.n_paths} paths × {fc.horizon} days"
                                                    f" × {len(fc.series)} series ({int(np.isfinite(fc.paths).sum()):,} values)")
