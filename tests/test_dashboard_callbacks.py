"""Dashboard callbacks and loaders, called directly (no browser) on a runs folder made in the test.

The forecasts here are hand-made ``Forecast`` objects saved in the real file format,
so these tests need no model; the browser tests drive a real trained run.
One Dash app per process (Dash keeps pages and callbacks in module globals), so
the app is created once for this module.
"""
from __future__ import annotations

import json

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import figures

from tests.test_dashboard_figures import make_forecast


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run = root / "alpha"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": "embedded", "series": ["SPX", "VIX", "WTI", "CORE_CPI_YOY"],
                                              "start": "1990-01-01"}))
    (run / "metrics.jsonl").write_text('{"step": 10, "loss": 3.0, "split": "train"}\n{"step": 10, "loss": 3.2, "split": "val"}\n')
    make_forecast(seed=1).save(run / "forecasts" / "base")
    stressed = make_forecast(seed=2)
    stressed.paths[:, :20, 1] = 40.0
    stressed.meta["scenario"] = {"name": "vix40", "constraints": []}
    stressed.save(run / "scenarios" / "vix40")
    synth = root / "synth" / "cards"
    synth.mkdir(parents=True)
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"Amount": rng.lognormal(3, 1, 500), "Use Chip": rng.choice(["Swipe", "Chip", "Online"], 500)})
    real.to_parquet(synth / "real.parquet")
    real.assign(Amount=real["Amount"] * 1.1).to_parquet(synth / "synthetic.parquet")
    (synth / "report.json").write_text(json.dumps({"fidelity": {"ks": {"Amount": 0.04}}, "privacy": {"dcr_p05": 0.31}}))
    # the layout of `forecaster synth evaluate --out` (typed samples, a headline summary, per-column scores)
    ev = root / "synth" / "evaluated"
    ev.mkdir(parents=True)
    real.rename(columns={"Amount": "amount", "Use Chip": "use_chip"}).to_parquet(ev / "real_sample.parquet")
    real.rename(columns={"Amount": "amount", "Use Chip": "use_chip"}).to_parquet(ev / "synthetic_sample.parquet")
    (ev / "report.json").write_text(json.dumps({
        "summary": {"exact_copy_rate": {"value": 0.0, "reference": 0.0, "target": "< 0.001", "pass": True},
                    "column_fidelity": {"value": 0.93, "reference": 0.97, "target": ">= 0.9", "pass": True}},
        "columns": {"amount": 0.95, "use_chip": 0.91}, "reference": {"columns": {"amount": 0.97, "use_chip": 0.98}},
        "inputs": {"real": "holdout.parquet", "synthetic": "synthetic.parquet", "train": None, "seed": 0}}))
    return root


@pytest.fixture(scope="module")
def app(runs):
    import dash._get_app

    from dashboard.app import create_app

    app = create_app(runs)
    # callbacks called directly read dash.get_app(): make this module's app the current one (a request
    # served by another module's app leaves that app current in this thread)
    token = dash._get_app.app_context.set(app)
    yield app
    dash._get_app.app_context.reset(token)


def _text(component) -> str:
    """All text inside a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def test_loaders_list_the_layout(runs):
    from dashboard import data

    assert [r.name for r in data.list_runs(runs)] == ["alpha"]
    assert data.list_forecasts(runs, "alpha") == ["base"]
    assert data.list_forecasts(runs, "alpha", "scenarios") == ["vix40"]
    assert data.list_backtests(runs, "alpha") == []
    assert sorted(data.list_synth(runs)) == ["cards", "evaluated"]
    fc = data.load_forecast(runs, "alpha", "base")
    assert data.load_forecast(runs, "alpha", "base") is fc  # cached until the file changes
    assert [r.name for r in data.list_runs(runs / "alpha")] == ["alpha"]  # a single run folder works too
    with pytest.raises(data.DashboardDataError, match="no run named"):
        data.run_path(runs, "../etc")
    for bad in ("../../alpha/forecasts/base", "..", "a/b"):  # names come from the browser
        with pytest.raises(data.DashboardDataError, match="bad forecast name"):
            data.load_forecast(runs, "alpha", bad)
    with pytest.raises(data.DashboardDataError, match="bad synthesis name"):
        data.load_synth(runs, "../synth/cards")


def test_forecast_callbacks_change_with_the_series(app):
    from dashboard.pages import forecast

    opts, value, msg = forecast.pick_forecast("base", "alpha", None)
    assert value == "SPX" and [o["value"] for o in opts] == ["SPX", "VIX", "WTI", "CORE_CPI_YOY"] and msg is None
    fig_spx, rows, meta, msg = forecast.draw("SPX", 0, 250, "alpha", "base")
    fig_vix, *_ = forecast.draw("VIX", 5, 250, "alpha", "base")
    median = lambda fig, s: np.asarray(next(t for t in fig.data if t.name == f"{s} median").y, float)  # noqa: E731
    assert not np.allclose(median(fig_spx, "SPX"), median(fig_vix, "VIX"))
    assert sum(t.name == "sample paths" for t in fig_vix.data) == 1
    assert len(rows) == 4 * 1 and "64 paths" in meta and msg is None  # horizon 30: only the 21-day row per series


def test_a_corrupt_forecast_file_is_a_message(app, runs):
    from dashboard.pages import forecast

    bad = runs / "broken"
    bad.mkdir()
    (bad / "run.json").write_text("{}")
    (bad / "forecasts" / "x").mkdir(parents=True)
    (bad / "forecasts" / "x" / "forecast.json").write_text("not json")
    try:
        out = forecast.pick_forecast("x", "broken", None)
        assert "corrupt" in _text(out[-1])
    finally:
        import shutil

        shutil.rmtree(bad)


def test_layout_errors_become_messages():
    from dashboard.components import safe_layout

    @safe_layout
    def layout():
        raise OSError("disk gone")

    assert "OSError: disk gone" in _text(layout())


def test_callback_errors_become_messages(app):
    from dashboard.pages import forecast

    out = forecast.draw("SPX", 0, 250, "alpha", "missing")
    assert out[:3] == (forecast.dash.no_update,) * 3
    assert "no forecast 'missing'" in _text(out[3]) and out[3].className == "alert alert-error"


def test_empty_states_explain_what_to_run(tmp_path):
    from dashboard import components

    hint = _text(components.demo_hint(tmp_path))
    assert "forecaster demo" in hint and "forecaster train" in hint
    from dashboard.pages import backtest, synthesis

    assert "forecaster backtest --run" in _text(backtest.backtest_hint(tmp_path, "alpha"))
    hint = _text(synthesis.synth_hint(tmp_path))
    assert "synthetic_sample.parquet" in hint and "forecaster synth evaluate" in hint and str(tmp_path) in hint


def test_layouts_render(app):
    from dashboard.pages import backtest, data_page, forecast, regimes, scenarios, synthesis

    for page in (forecast, regimes, scenarios, backtest, synthesis, data_page):
        assert page.layout() is not None
    out = backtest.pick_backtest(None, "alpha", None, None)
    assert "No backtest for run alpha" in _text(out[-1])


def test_regime_views(app):
    from dashboard.pages import regimes

    out = regimes.draw("base", 10, 5, "alpha")
    assert len(out) == 10 and out[-2] == 30
    stack = out[0]
    np.testing.assert_allclose(sum(np.asarray(t.y, float) for t in stack.data), 100.0)
    assert len(out[6]) == 8 and "rising" in out[7]


def test_scenario_builder_validates_and_replaces(app):
    from dashboard.pages import scenarios

    store, chips, msg = scenarios.edit_constraints(1, None, [], "VIX", "level", 40, 1, 20)
    assert store == [{"series": "VIX", "level": 40.0, "days": "1-20"}] and msg is None
    store, _, _ = scenarios.edit_constraints(2, None, store, "VIX", "change_pct", 50, 1, 10)
    assert store == [{"series": "VIX", "change_pct": 50.0, "days": "1-10"}]
    out = scenarios.edit_constraints(3, None, store, "NOT_A_SERIES", "level", 1, 1, 5)
    assert "unknown series" in _text(out[-1])
    out = scenarios.start(1, "alpha", "base", [], "x", 10, 0)
    assert "add at least one shock" in _text(out[-1])
    out = scenarios.start(1, "alpha", "base", store, "../escape", 10, 0)
    assert "scenario name" in _text(out[-1])


def test_scenario_compare_and_download_round_trip(app, tmp_path):
    from dashboard.pages import scenarios
    from forecaster.market.export import read_export

    fig, rows, msg = scenarios.compare("vix40", "VIX", "base", "alpha")
    assert rows[0]["stress median"] == 40.0 and msg is None
    assert {t.name for t in fig.data} >= {"base median", "stress median"}
    for fmt, kind in (("long", "parquet"), ("quantiles", "csv"), ("wide", "csv")):
        sent, info = scenarios.download(1, "scenario", fmt, kind, "alpha", "base", "vix40")
        path = tmp_path / sent["filename"]
        import base64

        path.write_bytes(base64.b64decode(sent["content"]) if sent.get("base64") else sent["content"].encode())
        table, meta = read_export(path)
        if fmt == "long":
            assert len(table) == 64 * 30 * 4 and set(table["series"]) == {"SPX", "VIX", "WTI", "CORE_CPI_YOY"}
            assert meta["scenario"]["name"] == "vix40"
        elif fmt == "quantiles":
            assert set(table["quantile"]) == {0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95}
        else:
            assert list(table.columns[:2]) == ["path_id", "date"]
        assert sent["filename"].startswith("vix40_2018-12-31")
        assert "MB" in _text(info)
    out = scenarios.download(1, "scenario", "long", "parquet", "alpha", "base", None)
    assert "no scenario yet" in _text(out[-1])


def test_job_runner_reports_progress_and_errors():
    from dashboard.jobs import JobRunner

    runner = JobRunner()

    def work(progress):
        for i in range(1, 6):
            progress(i)
        return "done-name"

    st = runner.wait(runner.submit("ok", 5, work), timeout=10)
    assert st["state"] == "done" and st["done"] == 5 and st["result"] == "done-name"

    def boom(progress):
        raise ValueError("bad shock")

    st = runner.wait(runner.submit("bad", 5, boom), timeout=10)
    assert st["state"] == "error" and "bad shock" in st["message"]
    assert runner.status("nope") is None


def test_synthesis_page(app):
    from dashboard.pages import synthesis

    out = synthesis.pick_synth("cards", None)
    assert out[1] == "Amount" and {"metric": "ks · Amount", "value": "0.04"} in out[2]
    assert out[3] == [{"metric": "dcr_p05", "value": "0.31"}] and len(out[4]) == 25
    fig, msg = synthesis.draw("Use Chip", "cards")
    assert set(fig.data[0].x) == {"Swipe", "Chip", "Online"}
    out = synthesis.generate(1, "cards", 10, 0)
    assert "no model" in _text(out[-1])
    out = synthesis.pick_synth("evaluated", None)
    assert out[1] == "amount" and out[2] == [{"metric": "column fidelity", "value": "0.93", "reference": "0.97",
                                             "target": ">= 0.9", "pass": "yes"}]
    assert out[3][0]["metric"] == "exact copy rate" and "holdout.parquet" in out[6]
    assert list(out[7].data[0].y) == [0.95, 0.91] and list(out[7].data[1].y) == [0.97, 0.98]


def test_backtest_helpers():
    from dashboard.pages import backtest

    scores = pd.DataFrame({
        "origin": pd.to_datetime(["2018-01-31"] * 4 + ["2018-02-28"] * 4), "kind": "series", "name": "VIX",
        "model": ["gpt", "random_walk"] * 4, "horizon": [1, 1, 21, 21] * 2,
        "crps": [1.0, 2.0, 3.0, 3.0, 1.0, 2.0, 3.0, 6.0], "cov50": 0.5, "cov80": 1.0, "cov90": 1.0, "pit": 0.3})
    cov = backtest.coverage_long(scores, "VIX", "gpt")
    assert set(cov["nominal"]) == {0.5, 0.8, 0.9} and cov["coverage"].max() == 1.0
    skill = backtest.skill_long(scores, "VIX")
    np.testing.assert_allclose(skill.set_index("series")["skill"].to_numpy(), [0.5, 1 - 6 / 9])
    rows, cols = backtest.score_rows(scores, "VIX")
    assert len(rows) == 4 and cols[0]["id"] == "horizon"
    from dashboard.data import BacktestView as Backtest

    bt = Backtest(Path("."), {}, scores, pd.DataFrame({
        "kind": ["series", "series", "regime"], "name": ["VIX", "VIX", "volatility"], "horizon": [1, 21, 1],
        "baseline": "random_walk", "skill": [0.2, 0.1, 0.5], "low": [0.1, -0.1, 0.4], "high": [0.3, 0.2, 0.6]}))
    sk = backtest.skill_for(bt, "VIX")  # the backtest's own skill table wins, with its interval
    assert list(sk["skill"]) == [0.2, 0.1] and list(sk["low"]) == [0.1, -0.1] and list(sk["model"]) == ["vs random_walk"] * 2
    fig = figures.skill_chart(sk)
    assert list(fig.data[0].error_y.array) == pytest.approx([0.1, 0.1])
    assert backtest.skill_for(Backtest(Path("."), {}, scores, pd.DataFrame()), "VIX")["skill"].iloc[0] == 0.5
    fan = pd.DataFrame({"model": ["gpt"] * 3 + ["realised"] * 3, "series": "VIX", "step": [1, 2, 3] * 2,
                        **{f"q{p:02d}": [20.0, 21.0, 22.0] * 2 for p in (5, 10, 25, 50, 75, 90, 95)}})
    fig = backtest.origin_fan_figure(fan, "VIX", "gpt", "2018-01-31", None)
    assert any(t.name == "realized" for t in fig.data)
    assert pd.Timestamp(fig.data[-1].x[0]) == pd.Timestamp("2018-02-01")


def test_data_page_tables_on_the_embedded_panel(app):
    from dashboard.pages import data_page

    out = data_page.pick_panel(data_page.EMBEDDED)
    options, value, rows, rules = out[:4]
    assert value == "SPX" and {r["series"] for r in rows} == {"SPX", "VIX", "WTI", "CORE_CPI_YOY"}
    assert any("day 15 of month M+1" in r["published"] for r in rules)
    fig, msg = data_page.draw("WTI", data_page.EMBEDDED)
    assert fig.data[0].name == "WTI" and pd.Timestamp(fig.data[0].x[-1]).year == 2019


def test_every_page_explains_an_empty_runs_folder(app, tmp_path):
    """No run yet: each page says which command makes what it would show (and none is blank)."""
    from dashboard.components import RUNS_KEY
    from dashboard.pages import backtest, data_page, forecast, regimes, scenarios, synthesis

    saved = app.server.config[RUNS_KEY]
    app.server.config[RUNS_KEY] = str(tmp_path)
    try:
        for page in (forecast, regimes, scenarios, backtest):
            text = _text(page.layout())
            assert "No trained run yet" in text and "forecaster demo" in text, page.__name__
        assert "forecaster synth evaluate" in _text(synthesis.layout())
        assert "embedded offline data" in str(data_page.layout())  # the Data page falls back to the embedded panel
    finally:
        app.server.config[RUNS_KEY] = saved
