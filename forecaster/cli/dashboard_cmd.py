"""`forecaster dashboard`: serve the Dash app over a runs folder (loopback unless told otherwise)."""
from __future__ import annotations

from pathlib import Path

import typer

from foundation.errors import UserError
from forecaster.cli.options import DEVICE_HELP, TopKOpt, TopPOpt, set_threads, threads_option

DEFAULT_RUNS = Path("runs")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve(runs: Path, host: str, port: int, debug: bool = False, announce=None, allowed_hosts=(), sampling=None,
          device=None) -> None:
    """Build the app over ``runs`` and serve it until interrupted (blocking).

    Requests are answered only for ``host``, localhost and 127.0.0.1 on ``port``, and for ``allowed_hosts``.
    ``device`` (a resolved ``Device`` or a spec; None: the CPU): where the background jobs sample.
    """
    import logging

    from dashboard.app import create_app

    if not 0 < port < 65536:
        raise UserError(f"--port must be in 1..65535, got {port}")
    allowed_hosts = list(allowed_hosts)
    app = create_app(runs, host=host, port=port, allowed_hosts=allowed_hosts, sampling=sampling, device=device)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise for users
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    if host not in LOOPBACK:
        typer.echo(f"warning: serving on {host}, reachable from other machines; the dashboard has no login.", err=True)
        if host in ("0.0.0.0", "::") and not allowed_hosts:
            typer.echo("note: only requests for localhost/127.0.0.1 are answered; add --allowed-host NAME for each "
                       "name or address others use to reach this machine.", err=True)
    if debug:
        typer.echo("warning: --dash-debug turns on Werkzeug's debugger console: anyone who can open the page can run "
                   "code on this machine with your permissions. Use it on loopback only, for development.", err=True)
    (announce or (lambda u: typer.echo(f"Dashboard: {u}  (Ctrl-C to stop)")))(url)
    try:
        app.run(host=host, port=port, debug=debug, use_reloader=False, threaded=True)
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port} ({exc}); pick another --port") from None


def dashboard(
    runs: Path = typer.Option(DEFAULT_RUNS, "--runs", help="Runs folder: DIR/<run>/ training runs with forecasts/, backtests/, scenarios/; DIR/synth/<name>/."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on. Loopback by default; 0.0.0.0 exposes it to the network."),
    port: int = typer.Option(8050, "--port", help="TCP port."),
    debug: bool = typer.Option(False, "--dash-debug", help="Dash's debug mode (dev tools, error pop-ups, and Werkzeug's debugger console, which runs code from the browser: development only)."),
    allowed_host: list[str] = typer.Option([], "--allowed-host", help="Also answer requests for this host name (NAME or NAME:PORT; repeatable). Hosts other than the bound host, localhost and 127.0.0.1 get 403 (DNS rebinding protection); '*' answers every host."),
    threads: int = threads_option(None, "used when the Scenarios page samples; default: torch's own choice"),
    temperature: float = typer.Option(None, "--temperature", help="Sampling temperature of the Scenarios page's jobs "
                                      "(default: each scenario samples as its base forecast was sampled, e.g. at the "
                                      "run's calibrated temperature; 1 = the model's distribution; with only --top-k or --top-p, 1)."),
    top_k: int = TopKOpt,
    top_p: float = TopPOpt,
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP + " Used by the jobs that sample (Scenarios)."),
) -> None:
    """Serve the dashboard: forecasts, regimes, stress scenarios, backtests, synthesis and data pages."""
    from forecaster.core.device import resolve_device
    from forecaster.core.sampler import SamplingConfig

    sampling = None  # each scenario samples as its base forecast did
    if (temperature, top_k, top_p) != (None, None, None):  # refused before serving
        sampling = SamplingConfig(1.0 if temperature is None else temperature, top_k, top_p)
    dev = resolve_device(device)  # an unusable GPU is refused before serving
    if not runs.exists():
        typer.echo(f"note: {runs} does not exist yet; the pages explain how to make a run (or run `forecaster demo`).", err=True)
    set_threads(threads)
    if dev.type != "cpu":
        typer.echo(f"jobs sample on {dev.describe()}", err=True)
    serve(runs, host, port, debug, allowed_hosts=allowed_host, sampling=sampling, device=dev)


def register(root: typer.Typer) -> None:
    root.command("dashboard")(dashboard)
