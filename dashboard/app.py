"""The Dash application: ``create_app(runs_dir)`` builds it; ``forecaster dashboard`` serves it.

Pages live in ``dashboard/pages/`` (one file each, registered with
``dash.register_page``); figures are pure functions in ``figures/`` (one module per page); loading is
in ``data.py`` and happens inside callbacks, never at import time.

Dash keeps its page registry and ``dash.callback`` list in module globals, so one
process serves one app: call ``create_app`` once per process.

Every request's Host header is checked (``host_check``) so that a web page on
another site cannot reach the dashboard through a DNS name that it points at
127.0.0.1 (DNS rebinding): only the bound host, localhost, 127.0.0.1 and ::1 on
the served port, and the names given with ``--allowed-host``, are answered.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import dash
import flask
from dash import Dash, Input, Output, dcc, html

from dashboard.components import JOBS_KEY, RUNS_KEY, SAMPLING_KEY
from dashboard.jobs import JobRunner
from foundation.errors import UserError
from forecaster.core.sampler import SamplingConfig

HERE = Path(__file__).resolve().parent
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header (``name``, ``name:port``, ``[v6]:port``) as (lower-case name, port); None when malformed."""
    value = (value or "").strip().lower()
    if not value:
        return None
    port = None
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:  # a bare IPv6 address
        name, port_text = value, None
    else:
        name, _, port_text = value.partition(":") if ":" in value else (value, "", None)
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    name = name.rstrip(".")
    return (name, port) if name else None


def host_check(host: str, port: int | None, allowed_hosts: Iterable[str] = ()) -> Callable[[], flask.Response | None]:
    """A Flask ``before_request`` hook that answers 403 (400 without a Host) to a request for another host.

    Answered: the bound ``host`` (unless it is a wildcard such as 0.0.0.0), localhost,
    127.0.0.1 and ::1, with no port or ``port`` (any port when ``port`` is None), and
    each name of ``allowed_hosts`` (``name`` for any port, ``name:port`` for one;
    ``*`` answers every host, which turns the protection off).
    """
    own = {name for name in (*LOCAL_NAMES, host.lower().strip("[]")) if name not in WILDCARD_BINDS}
    extra: set[tuple[str, int | None]] = set()
    allow_all = False
    for entry in allowed_hosts:
        if entry.strip() == "*":
            allow_all = True
            continue
        parsed = split_host(entry)
        if parsed is None:
            raise UserError(f"--allowed-host {entry!r}: give a host name or address, optionally with :port")
        extra.add(parsed)

    def allowed(name: str, req_port: int | None) -> bool:
        if name in own and (req_port is None or port is None or req_port == port):
            return True
        return (name, None) in extra or (name, req_port) in extra

    def check() -> flask.Response | None:
        if allow_all:
            return None
        raw = flask.request.environ.get("HTTP_HOST", "")
        parsed = split_host(raw)
        if parsed is None:
            return flask.Response("Bad request: missing or malformed Host header. Reach the dashboard at the URL it "
                                  "printed, or start it with --allowed-host NAME.\n", 400, mimetype="text/plain")
        if not allowed(*parsed):
            return flask.Response(f"Forbidden: this dashboard does not answer for host {raw!r} (protection against "
                                  "DNS rebinding). If you reach it under that name, start it with "
                                  f"--allowed-host {parsed[0]}.\n", 403, mimetype="text/plain")
        return None

    return check


def _navbar() -> html.Nav:
    links = [dcc.Link(page["name"], href=page["relative_path"], className="nav-link", id=f"nav-{page['module'].split('.')[-1]}")
             for page in dash.page_registry.values()]
    return html.Nav(className="navbar", children=[
        html.Div(className="brand", children=[html.Span("▲", className="brand-mark"), "Forecaster"]),
        html.Div(className="nav-links", children=links),
        html.Div(id="nav-runs", className="nav-runs"),
    ])


def create_app(runs_dir: str | Path, host: str = "127.0.0.1", port: int | None = None,
               allowed_hosts: Iterable[str] = (), sampling: SamplingConfig | None = None, device=None) -> Dash:
    """A Dash app over the runs folder ``runs_dir`` (layout in ``dashboard.data``); nothing is read yet.

    ``host``, ``port`` and ``allowed_hosts`` say which Host headers it answers (``host_check``);
    ``port=None`` accepts the local names on any port. ``sampling``: how the Scenarios page's
    jobs draw tokens (default: each scenario's base forecast's own settings). ``device`` (a resolved ``Device`` or a
    ``--device`` spec; None: the CPU): where the background jobs sample.
    """
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
    app.server.config[JOBS_KEY] = JobRunner(device=device)
    app.server.config[SAMPLING_KEY] = None if sampling is None else vars(sampling)
    app.server.before_request(host_check(host, port, allowed_hosts))
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
