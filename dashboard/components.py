"""Small layout pieces shared by the pages, and the app context callbacks read (runs folder, job runner)."""
from __future__ import annotations

import functools
import logging
import traceback
from pathlib import Path

import dash
from dash import dcc, html
from dash.exceptions import MissingCallbackContextException, PreventUpdate

from dashboard import data
from forecaster.market.plots import series_label

log = logging.getLogger("dashboard")

RUNS_KEY = "FORECASTER_RUNS_DIR"
JOBS_KEY = "FORECASTER_JOBS"
SAMPLING_KEY = "FORECASTER_SAMPLING"  # {"temperature", "top_k", "top_p"} of the scenario jobs, or None: each base's


def sampling_settings() -> dict | None:
    """The sampling settings the dashboard was started with (``forecaster dashboard --temperature ...``), or None."""
    settings = dash.get_app().server.config.get(SAMPLING_KEY)
    return None if settings is None else dict(settings)


def runs_dir() -> Path:
    """The runs folder of the app serving this request (set by ``create_app``)."""
    return Path(dash.get_app().server.config[RUNS_KEY])


def jobs():
    """The app's background job runner (``dashboard.jobs.JobRunner``)."""
    return dash.get_app().server.config[JOBS_KEY]


def triggered_id():
    """The id of the input that fired the running callback; None when called directly (a unit test)."""
    try:
        return dash.ctx.triggered_id
    except MissingCallbackContextException:
        return None


def demo_hint(runs: Path | str) -> html.Div:
    """The empty state of a page without any run: what to type to make one."""
    runs = str(runs)
    return html.Div(className="empty-state", children=[
        html.H3("No trained run yet"),
        html.P(["The folder ", html.Code(runs), " holds no training run. The quickest way to see real forecasts "
                "is the demo, which trains a small model on the embedded data, forecasts, backtests and serves this dashboard:"]),
        html.Pre("forecaster demo", className="cmd"),
        html.P("Or step by step:"),
        html.Pre(f"forecaster train --data embedded --preset small --max-minutes 3 --out {runs}/demo\n"
                 f"forecaster forecast --run {runs}/demo --as-of 2018-12-31 --out {runs}/demo/forecasts/base\n"
                 f"forecaster dashboard --runs {runs}", className="cmd"),
    ])


def empty_state(title: str, *lines, command: str | None = None) -> html.Div:
    children = [html.H3(title)] + [html.P(line) for line in lines]
    if command:
        children.append(html.Pre(command, className="cmd"))
    return html.Div(className="empty-state", children=children)


def error_box(exc: BaseException | str) -> html.Div:
    """A visible message for a failed callback (never a blank page)."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return html.Div(className="alert alert-error", role="alert", children=[html.Strong("Could not update: "), text])


def info_box(text) -> html.Div:
    return html.Div(className="alert alert-info", children=text)


def guarded(n_outputs: int):
    """Decorator for callbacks whose LAST output is a message area: an exception becomes a message there.

    Other outputs are left as they were (``no_update``). ``PreventUpdate`` passes through.
    """

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except PreventUpdate:
                raise
            except Exception as exc:  # shown to the user, logged with the traceback
                log.warning("callback %s failed:\n%s", fn.__name__, traceback.format_exc())
                if n_outputs == 1:
                    return error_box(exc)
                return tuple([dash.no_update] * (n_outputs - 1) + [error_box(exc)])

        return wrapper

    return deco


def safe_layout(fn):
    """Decorator for a page's ``layout``: an exception becomes a message on the page, never a blank page."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            log.warning("layout %s failed:\n%s", fn.__module__, traceback.format_exc())
            return html.Div([html.H2("This page could not be built", className="page-title"), error_box(exc)])

    return wrapper


def control(label: str, component, width: str = "220px") -> html.Div:
    return html.Div(className="control", style={"minWidth": width}, children=[html.Label(label), component])


def dropdown(id_: str, options, value, clearable: bool = False, **kw) -> dcc.Dropdown:
    return dcc.Dropdown(id=id_, options=options, value=value, clearable=clearable, **kw)


def series_options(names) -> list[dict]:
    """Dropdown options 'SPX — S&P 500 index (index points)'."""
    out = []
    for name in names:
        desc, unit = series_label(name)
        out.append({"label": f"{name} — {desc}" + (f" ({unit})" if unit else ""), "value": name})
    return out


def card(*children, title: str | None = None, class_name: str = "") -> html.Div:
    head = [html.H4(title, className="card-title")] if title else []
    return html.Div(className=f"card {class_name}".strip(), children=head + list(children))


def table_style() -> dict:
    return dict(
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "Inter, Helvetica, Arial, sans-serif", "fontSize": 13, "padding": "4px 8px",
                    "textAlign": "right", "border": "none", "borderBottom": "1px solid #e4e7eb"},
        style_header={"fontWeight": 600, "backgroundColor": "#f5f7fa", "borderBottom": "2px solid #cbd2d9"},
        style_data_conditional=[{"if": {"row_index": "odd"}, "backgroundColor": "#fafbfc"}],
        style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"}
                                for c in ("series", "unit", "description", "published", "label", "regime", "metric", "freq")],
    )


def run_options(runs) -> list[dict]:
    """Dropdown options for the training runs in ``runs``, newest first."""
    return [{"label": f"{r.name}  ({', '.join(r.info.get('series', []))})", "value": r.name} for r in data.list_runs(runs)]


def forecast_options(runs, run: str | None, kind: str = "forecasts") -> list[dict]:
    """Dropdown options for the forecasts (or scenarios) of a run, newest first."""
    if not run:
        return []
    return [{"label": name, "value": name} for name in data.list_forecasts(runs, run, kind)]


def keep_choice(options: list[dict], current):
    """The current value when ``options`` still offer it, else the first option (None when empty)."""
    values = [o["value"] for o in options]
    return current if current in values else (values[0] if values else None)


def default_run(runs, run_opts: list[dict], kind: str = "forecasts") -> str:
    """The newest run that has a forecast (so a fresh, empty run does not hide the others), else the newest."""
    for opt in run_opts:
        if forecast_options(runs, opt["value"], kind):
            return opt["value"]
    return run_opts[0]["value"]
