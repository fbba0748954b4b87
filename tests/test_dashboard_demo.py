"""`forecaster demo` writes the dashboard's runs layout and reuses it; `forecaster dashboard` refuses bad ports.

The demo's steps run here with the tiny preset and a few paths (the real demo uses
the small preset; its end-to-end timing is benchmarks/bench_demo.py).
"""
from __future__ import annotations

import json

import pytest

from forecaster.cli import main


def test_demo_steps_write_the_layout_and_skip_what_exists(tmp_path, capsys):
    from dashboard import data
    from forecaster.cli.demo_cmd import demo_steps

    runs = tmp_path / "runs"
    run = demo_steps(runs, "demo", minutes=0.5, paths=8, horizon=10, as_of="2018-12-31", train_as_of="2017-12-29",
                     backtest=False, fresh=False, preset="tiny", progress=False)
    assert run == runs / "demo"
    assert [r.name for r in data.list_runs(runs)] == ["demo"]
    assert data.list_forecasts(runs, "demo") == ["base"]
    fc = data.load_forecast(runs, "demo", "base")
    assert fc.paths.shape == (8, 10, 4) and str(fc.as_of.date()) == "2018-12-31"
    assert json.loads((run / "run.json").read_text())["last_date"] <= "2017-12-29"  # trained before the backtest
    err = capsys.readouterr().err
    assert "[1/3] Training" in err and "$ forecaster train --data embedded" in err and "[2/3] Forecasting" in err
    stamp = (run / "forecasts" / "base" / "forecast.json").stat().st_mtime_ns
    demo_steps(runs, "demo", 0.5, 8, 10, "2018-12-31", "2017-12-29", False, False, preset="tiny", progress=False)
    assert (run / "forecasts" / "base" / "forecast.json").stat().st_mtime_ns == stamp  # reused, not redone
    assert "is trained already" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "70000"])
def test_dashboard_refuses_a_bad_port(tmp_path, port, capsys):
    assert main(["dashboard", "--runs", str(tmp_path), "--port", port]) == 2
    assert "--port must be in 1..65535" in capsys.readouterr().err


def test_demo_threads_follow_the_load(monkeypatch):
    import os

    from forecaster.cli.demo_cmd import default_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert default_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 6.0, 6.0))
    assert default_threads() == 1
