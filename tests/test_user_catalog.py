"""User catalogs: series the built-in catalog lacks, declared in YAML, through the whole product.

The end-to-end test builds a wide file from the shared data with a made-up daily series
``MYSERIES`` (2 x WTI + 50, a positive price) and a monthly ``MYMACRO`` (unemployment,
published 5 NYSE days after its month), declares them in ``catalog.yaml`` beside the file,
and runs train -> forecast -> backtest -> export -> the dashboard's forecast page on it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_sources import catalog
from data_sources.errors import CatalogError
from data_sources.panel import PanelBuilder
from data_sources.user_catalog import load_catalog
from forecaster.cli import main

CATALOG_YAML = """\
series:
  MYSERIES:
    description: My made-up price (2 x WTI + 50)
    unit: $
    frequency: D
    transform: log_return
    positive: true
  MYMACRO:
    description: A monthly rate of mine
    unit: "%"
    frequency: M
    transform: diff
    stationary: true
    positive: true
    release: {kind: business_days_after_end, days: 5}
"""


@pytest.fixture(scope="module")
def user_panel(shared_builder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    days = pd.bdate_range("2012-01-02", "2019-12-31")
    spx = shared_builder.raw["SPX"]
    spx = spx[(spx.index >= days[0]) & (spx.index <= days[-1])]
    wti = shared_builder.raw["WTI"].reindex(spx.index)
    unrate = shared_builder.raw["UNRATE"]
    # VIX too: the backtest summary's regime table needs it (summary.py fails without regime scores)
    frame = pd.DataFrame({"SPX": spx, "VIX": shared_builder.raw["VIX"].reindex(spx.index), "MYSERIES": 2 * wti + 50})
    monthly = unrate[(unrate.index >= "2012-01-01") & (unrate.index <= "2019-11-01")]
    both = frame.index.union(monthly.index)
    frame = frame.reindex(both)
    frame["MYMACRO"] = monthly.reindex(both)
    path = folder / "panel.csv"
    frame.to_csv(path, index_label="date", float_format="%.6f")
    (folder / "catalog.yaml").write_text(CATALOG_YAML)
    return path


def test_declared_series_build_a_panel_with_their_release_rule(user_panel, shared_builder):
    builder = PanelBuilder(str(user_panel))
    assert builder.series == ["SPX", "VIX", "MYSERIES", "MYMACRO"]
    assert builder.catalog["MYSERIES"].user.endswith("catalog.yaml") and builder.catalog["MYMACRO"].frequency == "M"
    panel = builder.build()
    # January 2018 (month ends Wed 31st) is published 5 NYSE days later: Wednesday 2018-02-07
    jan = shared_builder.raw["UNRATE"].loc["2018-01-01"]
    dec = shared_builder.raw["UNRATE"].loc["2017-12-01"]
    assert panel.loc["2018-02-06", "MYMACRO"] == dec and panel.loc["2018-02-07", "MYMACRO"] == jan
    assert "MYSERIES" not in catalog.CATALOG  # nothing leaked into the active catalog
    with catalog.using(builder.catalog):
        assert catalog.get("MYSERIES").positive and "MYSERIES" in catalog.CATALOG
    with pytest.raises(CatalogError, match="unknown series 'MYSERIES'"):
        catalog.get("MYSERIES")


def test_an_undeclared_column_is_refused_with_the_yaml_to_add(user_panel, tmp_path, capsys):
    bare = tmp_path / "panel.csv"
    bare.write_text(user_panel.read_text())
    assert main(["data", "show", "--data", str(bare)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "MYSERIES" in err and "not catalog series" in err
    assert "series: {MYSERIES: {description:" in err
    # the same file with --catalog FILE is read
    (tmp_path / "elsewhere.yaml").write_text(CATALOG_YAML)
    assert main(["data", "show", "--data", str(bare), "--catalog", str(tmp_path / "elsewhere.yaml")]) == 0
    out = capsys.readouterr().out
    assert "MYSERIES" in out and "5 business day(s) after the period ends" in out


@pytest.mark.parametrize("text, message", [
    ("series:\n  MYSERIES: {description: a, unit: b, frequency: D, transform: log_return, colour: red}\n",
     "series 'MYSERIES': unknown key 'colour'"),
    ("series:\n  MYSERIES: {description: a, unit: b, frequency: D, transform: log_change}\n",
     "transform 'log_change': use one of log_return, diff, level"),
    ("series:\n  MYSERIES: {description: a, unit: b, frequency: M, transform: diff}\n", "a M series needs 'release:'"),
    ("series:\n  MYSERIES: {description: a, unit: b, frequency: M, transform: diff, release: {kind: nth_weekday, "
     "weekday: Fryday}}\n", "weekday 'Fryday'"),
    ("series:\n  MYSERIES: {description: a, unit: b, frequency: M, transform: diff, release: {kind: dates, "
     "days: 3}}\n", "unknown key 'days' for kind dates"),
    ("series:\n  SPX: {description: a, unit: b, frequency: D, transform: diff}\n", "'SPX' is already defined"),
    ("serie:\n  X: {}\n", "expected a 'series:' mapping"),
])
def test_every_key_is_checked_and_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "cat.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=message) as err:
        load_catalog(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_listed_release_dates(tmp_path):
    path = tmp_path / "cat.yaml"
    path.write_text("series:\n  MYQ: {description: a, unit: b, frequency: Q, transform: diff, "
                    "release: {kind: dates, dates: [2024-04-25, 2024-07-30]}}\n")
    rule = load_catalog(path)["MYQ"].release
    periods = pd.DatetimeIndex(["2024-01-01", "2024-04-01", "2024-07-01"])
    assert list(rule.release_dates(periods)[:2]) == [pd.Timestamp("2024-04-25"), pd.Timestamp("2024-07-30")]
    assert rule.release_dates(periods)[2].year == 2200  # no listed date publishes Q3: never in the panel


def test_the_codec_is_the_series_declared_positivity():
    from forecaster.market.tokenizer import CodecError, market_specs

    vix = pd.DataFrame({"VIX": [12.0, 15.0, 30.0, 20.0]})
    assert market_specs(vix, {"VIX": "level"})["VIX"].transform == "log"
    with pytest.raises(CodecError, match="VIX is declared positive.*0 at 1"):
        market_specs(vix.assign(VIX=[12.0, 0.0, 30.0, 20.0]), {"VIX": "level"})
    # a positive series modeled by its changes is never tokenized in logs, even when every change is > 0
    assert market_specs(pd.DataFrame({"UNRATE": [0.1, 0.2, 0.3]}))["UNRATE"].transform != "log"


def test_a_user_series_goes_through_train_forecast_backtest_export_dashboard(user_panel, tmp_path, capsys):
    root = tmp_path / "runs"
    run = root / "mine"
    assert main(["train", "--data", str(user_panel), "--out", str(run), "--preset", "tiny", "--max-steps", "3",
                 "--as-of", "2018-12-31", "--no-progress"]) == 0
    assert main(["forecast", "--run", str(run), "--as-of", "2019-06-28", "--paths", "4", "--horizon", "10",
                 "--out", str(run / "forecasts" / "base"), "--no-progress"]) == 0
    assert main(["forecast", "--run", str(run), "--as-of", "2019-06-28", "--paths", "4", "--horizon", "10",
                 "--shock", "MYSERIES:change_pct=20:days=1-5", "--out", str(run / "scenarios" / "up"),
                 "--no-progress"]) == 0
    assert main(["backtest", "--run", str(run), "--first-origin", "2019-01-31", "--last-origin", "2019-02-28",
                 "--every", "1M", "--paths", "4", "--horizon", "5", "--baselines", "random_walk,climatology",
                 "--out", str(tmp_path / "bt"), "--no-progress"]) == 0
    scores = pd.read_csv(tmp_path / "bt" / "summary.csv")
    mine = scores[scores["series"] == "MYSERIES"]
    assert {"gpt", "random_walk"} <= set(mine["model"]) and np.isfinite(mine["crps"]).all()
    # MYMACRO is declared stationary: climatology scores it (in levels); MYSERIES is not
    assert "climatology" in set(scores[scores["series"] == "MYMACRO"]["model"]) and "climatology" not in set(mine["model"])
    assert main(["export", "--forecast", str(run / "forecasts" / "base"), "--out", str(tmp_path / "long.csv")]) == 0
    long = pd.read_csv(tmp_path / "long.csv")
    mine = long[long["series"] == "MYSERIES"]["value"]
    assert len(mine) == 4 * 10 and np.isfinite(mine).all() and (mine > 0).all()
    assert set(long["series"]) == {"SPX", "VIX", "MYSERIES", "MYMACRO"}

    # the run records its user series: the Python API forecasts from it outside any catalog scope, even
    # from a copy of the panel that has no catalog file beside it
    assert "MYSERIES" in (run / "catalog.yaml").read_text()
    import shutil

    from forecaster.market.pipeline import ForecastPipeline

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(user_panel, bare / user_panel.name)
    fc = ForecastPipeline.from_run(run).predict(str(bare / user_panel.name), "2019-06-28", n_paths=4, horizon=10)
    assert np.isfinite(fc.column("MYSERIES")).all()

    import dash._get_app as dash_context

    from dashboard.app import create_app

    app = create_app(root)
    from dashboard.pages import forecast  # pages register themselves once the app exists

    # the callbacks read the runs folder of the app in context: an earlier test's dispatch may have left its own
    token = dash_context.app_context.set(app)
    try:
        opts, value, msg = forecast.pick_forecast("base", "mine", None)
        assert "MYSERIES" in [o["value"] for o in opts] and msg is None
        fig, rows, meta, msg = forecast.draw("MYSERIES", 0, 250, "mine", "base")
        assert msg is None and any(t.name == "MYSERIES median" for t in fig.data)
    finally:
        dash_context.app_context.reset(token)


def test_catalog_yaml_round_trips_and_an_exported_panel_reads_back(user_panel, tmp_path, capsys):
    import dataclasses

    from data_sources.user_catalog import to_yaml

    cat = load_catalog(user_panel.with_name("catalog.yaml"))
    path = tmp_path / "again.yaml"
    path.write_text(to_yaml([cat["MYSERIES"], cat["MYMACRO"]]))
    again = load_catalog(path)
    for name in ("MYSERIES", "MYMACRO"):
        assert again[name] == dataclasses.replace(cat[name], user=str(path))
    out = tmp_path / "exported.parquet"
    assert main(["data", "export", "--data", str(user_panel), "--out", str(out)]) == 0
    assert "wrote the catalog of MYSERIES, MYMACRO" in capsys.readouterr().out
    back = PanelBuilder(str(out)).build()
    original = PanelBuilder(str(user_panel)).build()
    pd.testing.assert_frame_equal(back, original, check_freq=False)


def test_the_same_definition_in_two_files_is_one_series_a_different_one_is_refused(tmp_path):
    a, b, c = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    a.write_text(CATALOG_YAML)
    b.write_text(CATALOG_YAML)
    c.write_text(CATALOG_YAML.replace("transform: log_return", "transform: diff"))
    both = load_catalog(b, load_catalog(a))
    assert both["MYSERIES"].user == str(a) and both.files == (str(a), str(b))
    with pytest.raises(CatalogError, match=f"{c}: series 'MYSERIES' is already defined by {a}"):
        load_catalog(c, load_catalog(a))


def test_the_tokenizer_report_uses_the_declared_transform(user_panel, capsys):
    assert main(["tokenizer", "report", "--data", str(user_panel)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "MYSERIES" in line)
    assert "signed_log" in row  # a log_return series; undeclared it would be binned as a level


def test_business_days_count_on_the_series_calendar(tmp_path):
    path = tmp_path / "cat.yaml"
    path.write_text("series:\n"
                    "  NY: {description: a, unit: b, frequency: M, transform: diff, release: {kind: business_days_after_end, days: 1}}\n"
                    "  LDN: {description: a, unit: b, frequency: M, transform: diff, calendar: XLON,\n"
                    "        release: {kind: business_days_after_end, days: 1}}\n")
    cat = load_catalog(path)
    march = pd.DatetimeIndex(["2024-03-01"])  # ends Sunday 31st; London is closed on Easter Monday, New York is not
    assert cat["NY"].release.release_dates(march)[0] == pd.Timestamp("2024-04-01")
    assert cat["LDN"].release.release_dates(march)[0] == pd.Timestamp("2024-04-02")
    path.write_text("series:\n  NY: {description: a, unit: b, frequency: M, transform: diff, "
                    "release: {kind: business_days_after_end, days: 6}}\n")
    dec = pd.DatetimeIndex(["2024-12-01"])  # 6 NYSE days after Dec 31: Jan 2, 3, 6, 7, 8, (closed on the 9th) 10
    assert load_catalog(path)["NY"].release.release_dates(dec)[0] == pd.Timestamp("2025-01-10")
    path.write_text("series:\n  LDN: {description: a, unit: b, frequency: D, transform: diff, calendar: XXXX}\n")
    with pytest.raises(CatalogError, match="calendar: unknown exchange calendar 'XXXX'"):
        load_catalog(path)
