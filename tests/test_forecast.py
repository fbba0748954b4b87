"""Forecasts from a tiny model trained in the test on the real panel: paths, scenarios, regimes, export."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_sources.calendar import business_days_after
from forecaster.cli import main
from forecaster.market.export import FORMATS, export, read_export
from forecaster.market.forecast import Forecast
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.regimes import INFLATION, VOLATILITY, historical_regimes, regime_probabilities, trend_probabilities
from forecaster.market.scenario import Scenario, ScenarioError, constraint_from_dict, load_scenario, parse_shock

SERIES = "SPX,VIX,UST10Y,WTI,CORE_CPI_YOY"
AS_OF = "2019-12-31"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_mapping):
    out = tmp_path_factory.mktemp("run") / "tiny"
    code = main(["train", "--data", str(shared_mapping), "--series", SERIES, "--panel-start", "2000-01-01",
                 "--as-of", AS_OF, "--out", str(out), "--preset", "tiny", "--max-steps", "150", "--no-progress"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def pipe(run_dir):
    return ForecastPipeline.from_run(run_dir)


@pytest.fixture(scope="module")
def builder(shared_mapping):
    from data_sources.panel import PanelBuilder

    return PanelBuilder(str(shared_mapping), series=SERIES.split(","), start="2000-01-01")


@pytest.fixture(scope="module")
def base(pipe, builder):
    return pipe.predict(builder, AS_OF, n_paths=64, horizon=30, seed=1)


def test_paths_shape_dates_and_levels(base, builder):
    assert base.paths.shape == (64, 30, 5)
    assert base.series == SERIES.split(",")
    assert base.as_of == pd.Timestamp(AS_OF)
    assert list(base.dates) == list(business_days_after(AS_OF, 30))
    assert base.dates[0] == pd.Timestamp("2020-01-02")  # New Year's Day is not a business day
    # every sampled row decoded to values (no path is all-missing), levels near the last close
    assert np.isfinite(base.paths).mean() > 0.99
    last_spx = builder.build(AS_OF)["SPX"].iloc[-1]
    day1 = base.column("SPX")[:, 0]
    # integrated from the right base: most paths' first day is within a normal daily move
    # (a 150-step tiny model still samples the odd outlier, so not all of them)
    assert np.median(np.abs(day1 / last_spx - 1)) < 0.02 and np.mean(np.abs(day1 / last_spx - 1) < 0.05) > 0.8
    assert base.history.index[-1] == pd.Timestamp(AS_OF)


def test_quantiles_means_and_probabilities(base):
    q = base.quantile_array()
    assert q.shape == (7, 30, 5)
    assert np.all(np.diff(q, axis=0)[np.isfinite(np.diff(q, axis=0))] >= 0)  # ordered quantiles
    long = base.quantiles()
    assert set(long["quantile"]) == {0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95}
    assert len(long) == 7 * 30 * 5
    p = base.probability("VIX", ">", 0.0)
    assert p == 1.0 and base.probability("VIX", "<", 0.0) == 0.0
    assert 0.0 <= base.probability("SPX", "<", base.history["SPX"].iloc[-1], anytime=True) <= 1.0
    table = base.summary_table(days=(21,))
    assert list(table["series"]) == base.series


def test_same_seed_same_paths_other_seed_other_paths(pipe, builder, base):
    again = pipe.predict(builder, AS_OF, n_paths=64, horizon=30, seed=1)
    other = pipe.predict(builder, AS_OF, n_paths=64, horizon=30, seed=2)
    np.testing.assert_array_equal(again.paths, base.paths)
    assert not np.allclose(other.paths, base.paths, equal_nan=True)


def test_no_look_ahead_data_after_as_of_is_not_used(pipe, builder, base):
    panel = builder.build()
    tampered = panel.copy()
    tampered.loc[pd.Timestamp(AS_OF) + pd.Timedelta(days=1):] *= 3.0
    again = pipe.predict(tampered, AS_OF, n_paths=64, horizon=30, seed=1)
    np.testing.assert_array_equal(again.paths, base.paths)


def test_stress_scenario_forces_values_and_moves_the_rest(pipe, builder, base):
    scen = Scenario("vix-wti", [
        constraint_from_dict({"series": "VIX", "level": 40, "days": "1-20"}, "test"),
        constraint_from_dict({"series": "WTI", "change_pct": 50, "days": "1-25"}, "test"),
        constraint_from_dict({"series": "UST10Y", "change_bp": 100, "days": "1-30"}, "test"),
    ])
    fc = pipe.predict(builder, AS_OF, n_paths=64, horizon=30, seed=1, scenario=scen)
    last = builder.build(AS_OF).iloc[-1]
    # within one step of tokenizer precision: VIX is log-binned, WTI's last forced step is a
    # return of about 1.6 % whose error is at most (1 + |r|) * expm1(width / 2) percent
    vix_w, wti_w = pipe.tokenizer.codec("VIX").width, pipe.tokenizer.codec("WTI").width
    np.testing.assert_allclose(fc.column("VIX")[:, :20], 40.0, atol=40 * np.expm1(vix_w / 2) + 1e-9)
    np.testing.assert_allclose(fc.column("WTI")[:, 24], last["WTI"] * 1.5, rtol=3 * np.expm1(wti_w / 2) / 100 + 1e-9)
    np.testing.assert_allclose(fc.column("UST10Y")[:, 29], last["UST10Y"] + 1.0, atol=0.006)
    # the constrained days are the same on every path; the free series still vary across paths
    assert np.ptp(fc.column("VIX")[:, :20], axis=0).max() < 1e-9
    assert np.nanstd(fc.column("SPX")[:, -1]) > 0
    # after its last forced day VIX is free again
    assert np.nanstd(fc.column("VIX")[:, 25:]) > 0
    assert fc.meta["scenario"]["name"] == "vix-wti"
    # regimes: VIX pinned at 40 is 'stress' with probability 1 on days 1-20
    probs = regime_probabilities(fc, VOLATILITY)
    np.testing.assert_allclose(probs["stress"].iloc[:20], 1.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_regimes_history_and_trend(base, builder):
    panel = builder.build(AS_OF)
    hist = historical_regimes(panel, VOLATILITY)
    assert hist["2008-11-20"] == "stress" and hist["2017-06-01"] == "calm"
    infl = historical_regimes(panel, INFLATION)
    assert infl["2019-12-31"] == "2-3%"
    trend = trend_probabilities(base, INFLATION)
    assert trend["rising"] + trend["falling"] + trend["stable"] == pytest.approx(1.0)
    probs = regime_probabilities(base, INFLATION)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_export_round_trip(base, tmp_path, fmt, kind):
    path = export(base, tmp_path / f"x.{kind}", fmt)
    frame, meta = read_export(path)
    from forecaster.market.export import table

    expected = table(base, fmt)
    pd.testing.assert_frame_equal(frame[expected.columns].reset_index(drop=True), expected, check_dtype=False,
                                  check_exact=False, rtol=1e-9)
    assert meta["as_of"] == AS_OF and meta["seed"] == 1 and meta["n_paths"] == 64
    assert meta["tokenizer_fingerprint"] and meta["model_sha256"]


def test_forecast_save_load_round_trip(base, tmp_path):
    base.save(tmp_path / "fc")
    again = Forecast.load(tmp_path / "fc")
    np.testing.assert_array_equal(again.paths, base.paths)
    assert list(again.dates) == list(base.dates) and again.meta == json.loads(json.dumps(base.meta, default=str))


def test_scenario_files_and_flags(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: oil\nconstraints:\n  - {series: WTI, change_pct: 50, days: 1-60}\n  - {series: VIX, level: 40, days: 1-20}\n")
    scen = load_scenario(path)
    assert scen.name == "oil" and [c.series for c in scen.constraints] == ["WTI", "VIX"]
    (tmp_path / "s.json").write_text(json.dumps({"constraints": [{"series": "UST10Y", "change_bp": 100, "by_day": 120}]}))
    assert load_scenario(tmp_path / "s.json").constraints[0].days == (1, 120)
    c = parse_shock("VIX:level=40:days=1-20")
    assert (c.series, c.kind, c.value, c.days) == ("VIX", "level", 40.0, (1, 20))
    for bad, msg in [("NOPE:level=1:days=1-2", "unknown series"), ("VIX:level=abc:days=1-2", "not a number"),
                     ("VIX:level=40", "on which days"), ("VIX:days=3-1:level=4", "1 <= first <= last")]:
        with pytest.raises(ScenarioError, match=msg):
            parse_shock(bad)


def test_cli_forecast_writes_everything_and_bad_requests_write_nothing(run_dir, shared_mapping, tmp_path, capsys):
    out = tmp_path / "fc"
    args = ["forecast", "--run", str(run_dir), "--as-of", AS_OF, "--paths", "16", "--horizon", "12", "--no-progress"]
    assert main(args + ["--out", str(out), "--shock", "VIX:level=35:days=1-5"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"forecast.json", "paths.npy", "paths_long.parquet", "paths_long.csv", "quantiles.parquet",
            "paths_wide.csv", "summary.csv", "regimes.csv"} <= names
    assert main(["export", "--forecast", str(out), "--format", "wide", "--out", str(tmp_path / "w.parquet")]) == 0

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = [
        ["--as-of", "1985-01-01"],
        ["--horizon", "0"],
        ["--shock", "NOPE:level=3:days=1-2"],
        ["--shock", "VIX:level=1e9:days=1-2"],  # a log change beyond the tokenizer (VIX is modeled as log changes)
        ["--shock", "VIX:level=30:days=1-99"],
    ]
    for extra in bad:
        capsys.readouterr()
        code = main(args + ["--out", str(out)] + extra)
        err = capsys.readouterr().err.strip()
        assert code != 0 and err.startswith("error:") and "\n" not in err, (extra, err)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc", "w.parquet"]
