"""The Dash application: ``create_app(runs_dir)`` builds it; ``forecaster dashboard`` serves it.

Pages live in ``dashboard/pages/`` (one file each, registered with
``dash.register_page``); figures are pure functions in ``figures.py``; loading is
in ``data.py`` and happens inside callbacks, never at import time.

Dash keeps its page registry and ``dash.callback`` list in module globals, so one
process serves one app: call ``create_app`` once per process.
"""
from __future__ import annotations

from pathlib import Path

import dash
from dash import Dash, Input, Output, dcc, html

from dashboard.components import JOBS_KEY, RUNS_KEY
from dashboard.jobs import JobRunner

HERE = Path(__file__).resolve().parent


def _navbar() -> html.Nav:
    links = [dcc.Link(page["name"], href=page["relative_path"], className="nav-link", id=f"nav-{page['module'].split('.')[-1]}")
             for page in dash.page_registry.values()]
    return html.Nav(className="navbar", children=[
        html.Div(className="brand", children=[html.Span("▲", className="brand-mark"), "Forecaster"]),
        html.Div(className="nav-links", children=links),
        html.Div(id="nav-runs", className="nav-runs"),
    ])


def create_app(runs_dir: str | Path) -> Dash:
    """A Dash app over the runs folder ``runs_dir`` (layout in ``dashboard.data``); nothing is read yet."""
    app = Dash(
        "dashboard",  # a package name, so pages import as dashboard.pages.<name>
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="Forecaster",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.server.config[RUNS_KEY] = str(Path(runs_dir).resolve())
    app.server.config[JOBS_KEY] = JobRunner()
    app.layout = html.Div(className="shell", children=[
        dcc.Location(id="url", refresh=False),
        _navbar(),
        html.Main(className="content", children=[dash.page_container]),
        html.Footer(className="footer", children=[
            "Runs folder: ", html.Code(str(Path(runs_dir).resolve())),
            " · forecasts are samples from a generative model; bands are quantiles across paths, not guarantees."]),
    ])
    links = [f"nav-{page['module'].split('.')[-1]}" for page in dash.page_registry.values()]
    paths = [page["relative_path"] for page in dash.page_registry.values()]
    # Highlight the current page's link in the browser (no server round trip).
    app.clientside_callback(
        f"""function(pathname) {{
            const paths = {paths!r};
            return paths.map(p => 'nav-link' + (p === pathname ? ' active' : ''));
        }}""",
        [Output(link, "className") for link in links],
        Input("url", "pathname"),
    )
    return app
