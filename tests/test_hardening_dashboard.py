"""Issue 12, item 5: the dashboard writes nowhere but its own folders, and checks who it talks to.

Hand-made forecasts in the real file format (no model); the scenario job's
sampler is replaced by one that returns such a forecast, so saving is tested
for real. The Host check uses the Dash server's Flask test client.
"""
from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path

import pytest

from tests.test_dashboard_figures import make_forecast


def _text(component) -> str:
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run = root / "alpha"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": "embedded", "series": ["SPX", "VIX", "WTI", "CORE_CPI_YOY"]}))
    make_forecast(seed=1).save(run / "forecasts" / "base")
    return root


@pytest.fixture(scope="module")
def app(runs):
    import dash._get_app

    from dashboard.app import create_app

    app = create_app(runs, host="127.0.0.1", port=8050, allowed_hosts=["dash.example.org"])
    # callbacks called directly read dash.get_app(): make this module's app the current one (a request
    # served by another module's app leaves that app current in this thread)
    token = dash._get_app.app_context.set(app)
    yield app
    dash._get_app.app_context.reset(token)


# -- one sanitiser ------------------------------------------------------------------------------
def test_jobs_has_no_sanitiser_of_its_own():
    import dashboard.jobs as jobs
    import foundation.names as names

    src = Path(jobs.__file__).read_text()
    assert "re.compile" not in src, "file names go through foundation.names, not a regex copy"
    assert getattr(jobs, "safe_name", names.safe_name) is names.safe_name


@pytest.mark.parametrize("evil", ["ESCAPE", "../../escape", "sub/../../escape"])
def test_download_of_a_forecast_with_an_evil_scenario_name_writes_nothing_outside(app, runs, tmp_path, evil):
    """A scenario name in forecast.json becomes (part of) the download's file name: it must not pick the folder."""
    from dashboard.pages import scenarios
    from foundation.names import is_safe_name

    target = tmp_path / "escape"  # an absolute name: `Path(tmp) / "/abs/..."` is "/abs/..."
    name = str(target) if evil == "ESCAPE" else evil
    fc = make_forecast(seed=3)
    fc.meta["scenario"] = {"name": name, "constraints": []}
    folder = runs / "alpha" / "scenarios" / "evil"
    fc.save(folder)
    before = set(os.listdir(tmp_path))
    cwd = os.getcwd()
    os.chdir(tmp_path)  # a relative escape would land near here
    try:
        for fmt, kind in (("long", "parquet"), ("quantiles", "csv")):
            sent, info = scenarios.download(1, "scenario", fmt, kind, "alpha", "base", "evil")
            assert isinstance(sent, dict), _text(info)
            assert is_safe_name(sent["filename"]), sent["filename"]
            assert sent["filename"].endswith(f".{kind}")
            raw = base64.b64decode(sent["content"]) if sent.get("base64") else sent["content"].encode()
            assert len(raw) > 100
    finally:
        os.chdir(cwd)
    assert set(os.listdir(tmp_path)) == before, "the download wrote outside its temporary folder"
    assert not list(tmp_path.parent.glob("escape*"))


def test_names_from_the_browser_go_through_the_sanitiser(app, runs):
    from dashboard import data

    for bad in ("../alpha", "a/b", "..", "", " base", "base\0"):
        with pytest.raises(data.DashboardDataError):
            data.load_forecast(runs, "alpha", bad)
    with pytest.raises(ValueError, match="forecasts.*scenarios"):  # an exception, not an assert
        data.list_forecasts(runs, "alpha", "../x")


# -- symbolic links out of the runs folder ------------------------------------------------------
def test_symlinks_leading_outside_the_runs_folder_are_neither_listed_nor_read(app, runs, tmp_path):
    from dashboard import data

    outside = tmp_path / "elsewhere"
    (outside / "run").mkdir(parents=True)
    (outside / "run" / "run.json").write_text("{}")
    make_forecast(seed=4).save(outside / "fc")
    (outside / "synth" / "s").mkdir(parents=True)
    (outside / "synth" / "s" / "report.json").write_text("{}")
    links = [runs / "linked-run", runs / "alpha" / "forecasts" / "linked", runs / "synth"]
    links[0].symlink_to(outside / "run", target_is_directory=True)
    links[1].symlink_to(outside / "fc", target_is_directory=True)
    links[2].symlink_to(outside / "synth", target_is_directory=True)
    inner = runs / "alpha" / "forecasts" / "inner-link"  # a link that stays inside is fine
    inner.symlink_to(runs / "alpha" / "forecasts" / "base", target_is_directory=True)
    try:
        assert "linked-run" not in [r.name for r in data.list_runs(runs)]
        with pytest.raises(data.DashboardDataError):
            data.run_path(runs, "linked-run")
        listed = data.list_forecasts(runs, "alpha")
        assert "linked" not in listed and "inner-link" in listed
        with pytest.raises(data.DashboardDataError, match="outside"):
            data.load_forecast(runs, "alpha", "linked")
        assert data.list_synth(runs) == []
        with pytest.raises(data.DashboardDataError):
            data.load_synth(runs, "s")
    finally:
        for link in (*links, inner):
            link.unlink()


# -- the Host header ----------------------------------------------------------------------------
@pytest.mark.parametrize("host, ok", [
    ("127.0.0.1:8050", True), ("localhost:8050", True), ("localhost", True), ("[::1]:8050", True),
    ("dash.example.org:8050", True), ("DASH.example.org", True),
    ("evil.example.com:8050", False), ("evil.example.com", False), ("127.0.0.1:9999", False),
    ("127.0.0.1.evil.com:8050", False), ("", False),
])
def test_requests_for_another_host_are_refused(app, host, ok):
    client = app.server.test_client()
    resp = client.get("/_dash-layout", headers={"Host": host})
    if ok:
        assert resp.status_code == 200, (host, resp.status_code)
    else:
        assert resp.status_code in (400, 403), (host, resp.status_code)
        assert "--allowed-host" in resp.get_data(as_text=True)


def test_host_check_on_a_real_loopback_server(runs):
    """A real server: a DNS-rebound name reaches the port but is refused."""
    import http.client
    import socket

    from werkzeug.serving import make_server

    from dashboard.app import host_check

    import flask

    flask_app = flask.Flask("t")
    flask_app.route("/")(lambda: "ok")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flask_app.before_request(host_check("127.0.0.1", port, ()))
    srv = make_server("127.0.0.1", port, flask_app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        for host, code in ((f"127.0.0.1:{port}", 200), (f"attacker.example:{port}", 403)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/", headers={"Host": host})
            assert conn.getresponse().status == code, host
            conn.close()
    finally:
        srv.shutdown()


# -- the job queue ------------------------------------------------------------------------------
def test_job_queue_is_bounded_and_the_page_says_so():
    from dashboard.jobs import JobQueueFull, JobRunner

    runner = JobRunner(max_pending=2, keep_finished=3)
    gate = threading.Event()
    first = runner.submit("a", 1, lambda progress: gate.wait(10) and "a")
    runner.submit("b", 1, lambda progress: "b")
    with pytest.raises(JobQueueFull, match="2 jobs are already queued or running"):
        runner.submit("c", 1, lambda progress: "c")
    gate.set()
    assert runner.wait(first, timeout=10)["state"] == "done"
    ids = [runner.submit(f"n{i}", 1, lambda progress: "x") for i in range(2)]
    for job_id in ids:
        assert runner.wait(job_id, timeout=10)["state"] == "done"
    for i in range(6):  # finished jobs beyond the bound are forgotten
        runner.wait(runner.submit(f"m{i}", 1, lambda progress: "x"), timeout=10)
    assert len(runner) <= 3 + 2
    assert runner.status(first) is None


def test_a_full_queue_is_a_message_on_the_scenarios_page(app, monkeypatch):
    from dashboard.components import JOBS_KEY
    from dashboard.jobs import JobRunner
    from dashboard.pages import scenarios

    runner = JobRunner(max_pending=1)
    gate = threading.Event()
    runner.submit("busy", 1, lambda progress: gate.wait(10) and "x")
    monkeypatch.setitem(app.server.config, JOBS_KEY, runner)
    try:
        out = scenarios.start(1, "alpha", "base", [{"series": "VIX", "level": 40.0, "days": "1-5"}], "s1", 10, 0)
        assert "already queued or running" in _text(out[-1]) and out[-1].className == "alert alert-error"
    finally:
        gate.set()


# -- the scenario job publishes its folder --------------------------------------------------------
class _FakePipe:
    info = {}

    def predict(self, builder, as_of, **kw):
        fc = make_forecast(seed=5)
        fc.meta["scenario"] = {"name": kw["scenario"].name, "constraints": []}
        return fc


def test_run_scenario_publishes_with_a_marker_and_refuses_a_foreign_folder(runs, monkeypatch):
    from dashboard import data, jobs
    from foundation.atomic import MARKER, output_kind
    from foundation.errors import UserError

    monkeypatch.setattr(jobs, "pipeline_for", lambda run_dir: _FakePipe())
    monkeypatch.setattr(data, "builder_for_run", lambda info: None)
    constraints = [{"series": "VIX", "level": 40.0, "days": "1-5"}]
    name = jobs.run_scenario(runs, "alpha", "base", constraints, "published", 4, 0, lambda d: None)
    out = runs / "alpha" / "scenarios" / name
    assert output_kind(out) == "forecast" and (out / MARKER).exists() and (out / "forecast.json").exists()
    assert jobs.run_scenario(runs, "alpha", "base", constraints, "published", 4, 0, lambda d: None) == name  # rerun
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "staging folders left behind"

    foreign = runs / "alpha" / "scenarios" / "notes"
    foreign.mkdir(parents=True)
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not a forecast output"):
        jobs.run_scenario(runs, "alpha", "base", constraints, "notes", 4, 0, lambda d: None)
    assert sorted(os.listdir(foreign)) == ["keep.txt"]
    with pytest.raises(UserError, match="scenario name"):
        jobs.run_scenario(runs, "alpha", "base", constraints, "../../x", 4, 0, lambda d: None)


# -- the CLI --------------------------------------------------------------------------------------
class _FakeApp:
    def __init__(self, calls):
        self.calls = calls

    def run(self, **kw):
        self.calls.append(kw)


def _serve(monkeypatch, capsys, **kw):
    import dashboard.app
    from forecaster.cli import dashboard_cmd

    calls = []
    monkeypatch.setattr(dashboard.app, "create_app", lambda runs, **k: calls.append(k) or _FakeApp(calls))
    dashboard_cmd.serve(Path("runs"), kw.pop("host", "127.0.0.1"), 8050, announce=lambda url: None, **kw)
    return calls, capsys.readouterr().err


def test_dash_debug_warns_about_the_debugger_console(monkeypatch, capsys):
    calls, err = _serve(monkeypatch, capsys, debug=True)
    assert "debugger" in err and "code" in err
    assert calls[-1]["debug"] is True
    calls, err = _serve(monkeypatch, capsys)
    assert "debugger" not in err


def test_allowed_hosts_reach_the_app(monkeypatch, capsys):
    calls, _ = _serve(monkeypatch, capsys, allowed_hosts=["box.lan"])
    assert {k: calls[0][k] for k in ("host", "port", "allowed_hosts")} == {
        "host": "127.0.0.1", "port": 8050, "allowed_hosts": ["box.lan"]}


def test_cli_has_an_allowed_host_option(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from forecaster.cli import app as cli
    from forecaster.cli import dashboard_cmd

    seen = {}
    monkeypatch.setattr(dashboard_cmd, "serve", lambda runs, host, port, debug=False, announce=None, allowed_hosts=(), sampling=None, device=None:
                        seen.update(allowed_hosts=list(allowed_hosts), debug=debug))
    result = CliRunner().invoke(cli, ["dashboard", "--runs", str(tmp_path), "--allowed-host", "a.lan",
                                      "--allowed-host", "b.lan"])
    assert result.exit_code == 0, result.output
    assert seen == {"allowed_hosts": ["a.lan", "b.lan"], "debug": False}
