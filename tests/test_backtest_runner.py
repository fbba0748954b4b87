"""A short real backtest with a tiny model on ../shared/data: no look-ahead, resume, retraining, CLI outputs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecaster.market.backtest.runner import Backtest, BacktestConfig, load_fan, load_scores, realised_after
from forecaster.market.backtest.windows import BacktestError
from data_sources.panel import PanelBuilder
from forecaster.cli import main

SERIES = "SPX,VIX,UST10Y,CORE_CPI_YOY"
TRAIN_AS_OF = "2017-12-29"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_mapping):
    out = tmp_path_factory.mktemp("btrun") / "tiny"
    code = main(["train", "--data", str(shared_mapping), "--series", SERIES, "--panel-start", "2005-01-01", "--as-of",
                 TRAIN_AS_OF, "--out", str(out), "--preset", "tiny", "--max-steps", "60", "--no-progress"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def panels(tmp_path_factory, shared_builder):
    """The real panel as a wide file, and a copy whose rows after 2018-02-28 are altered."""
    folder = tmp_path_factory.mktemp("panels")
    full = shared_builder.build()[SERIES.split(",")]
    full = full[full.index >= "2005-01-01"]
    altered = full.copy()
    after = altered.index > pd.Timestamp("2018-02-28")
    rng = np.random.default_rng(0)
    altered.loc[after] = altered.loc[after].to_numpy() * rng.uniform(0.5, 1.5, size=(after.sum(), altered.shape[1]))
    full.to_parquet(folder / "real.parquet")
    altered.to_parquet(folder / "altered.parquet")
    return folder / "real.parquet", folder / "altered.parquet"


def _cfg(run_dir, data, **kw):
    base = dict(start="2018-01-01", end="2018-02-28", run=str(run_dir), data=str(data), n_paths=16, horizon=21,
                baselines=["random_walk", "garch", "var", "climatology"], panel_start="2005-01-01")
    base.update(kw)
    return BacktestConfig(**base)


def test_no_look_ahead_forecasts_ignore_data_after_the_origin(run_dir, panels, tmp_path):
    real, altered = panels
    a = Backtest(_cfg(run_dir, real), tmp_path / "a")
    b = Backtest(_cfg(run_dir, altered), tmp_path / "b")
    a.run()
    b.run()
    for origin in a.origins:  # 2018-01-31 and 2018-02-28: the second sits right on the edge of the change
        fa, fb = load_fan(a.out, origin), load_fan(b.out, origin)
        models = set(fa["model"]) - {"realised"}
        assert {"gpt", "random_walk", "garch", "var", "climatology"} <= models, models
        fa_m = fa[fa["model"] != "realised"].reset_index(drop=True)
        fb_m = fb[fb["model"] != "realised"].reset_index(drop=True)
        pd.testing.assert_frame_equal(fa_m, fb_m)
    # the test can fail: what happened after 2018-02-28 differs, so the outcomes and the scores do
    ra = load_fan(a.out, "2018-02-28")
    rb = load_fan(b.out, "2018-02-28")
    assert not np.allclose(ra[ra["model"] == "realised"]["q50"], rb[rb["model"] == "realised"]["q50"], equal_nan=True)
    sa, sb = load_scores(a.out), load_scores(b.out)
    assert not np.allclose(sa["crps"].fillna(0), sb["crps"].fillna(0))


def test_realised_values_are_the_panel_rows_after_the_origin(shared_panel):
    r = realised_after(shared_panel, "2018-03-29", 5)
    # Good Friday (2018-03-30) is no panel day; step 1 is the Monday
    assert list(r["date"].dt.date.astype(str)) == ["2018-04-02", "2018-04-03", "2018-04-04", "2018-04-05", "2018-04-06"]
    assert r.loc[1, "SPX"] == shared_panel.loc["2018-04-02", "SPX"]
    tail = realised_after(shared_panel, shared_panel.index[-2], 3)  # past the end of the data: NaN, NaT
    assert tail["date"].isna().sum() == 2 and tail.drop(columns="date").iloc[1:].isna().all().all()


def test_resume_skips_finished_origins_and_other_settings_are_refused(run_dir, panels, tmp_path):
    real, _ = panels
    cfg = _cfg(run_dir, real, end="2018-03-31", baselines=["random_walk", "climatology"])
    bt = Backtest(cfg, tmp_path / "bt")
    first = bt.run()
    assert len(bt.origins) == 3
    (bt.origin_path(bt.origins[1])).unlink()
    seen = []
    again = Backtest(_cfg(run_dir, real, end="2018-03-31", baselines=["random_walk", "climatology"]), tmp_path / "bt")
    second = again.run(on_origin=lambda o, info: seen.append((str(o.date()), info["skipped"])))
    assert seen == [("2018-01-31", True), ("2018-02-28", False), ("2018-03-29", True)]
    cols = ["origin", "model", "kind", "name", "horizon"]
    pd.testing.assert_frame_equal(first.sort_values(cols).reset_index(drop=True),
                                  second.sort_values(cols).reset_index(drop=True))
    with pytest.raises(BacktestError, match="other settings"):
        Backtest(_cfg(run_dir, real, end="2018-03-31", n_paths=8, baselines=["random_walk", "climatology"]),
                 tmp_path / "bt").run()


def test_a_run_trained_after_the_origin_is_refused(run_dir, panels, tmp_path):
    real, _ = panels
    with pytest.raises(BacktestError, match="look-ahead"):
        Backtest(_cfg(run_dir, real, start="2017-06-01", end="2017-07-31", baselines=["random_walk"]), tmp_path / "x").run()


def test_retraining_policy_trains_on_an_expanding_window(run_dir, panels, tmp_path):
    real, _ = panels
    cfg = _cfg(run_dir, real, start="2018-01-01", end="2018-03-31", baselines=["random_walk"], retrain_every=2,
               retrain_steps=5, horizon=5, n_paths=4)
    bt = Backtest(cfg, tmp_path / "rt")
    assert [str(d.date()) for d in bt.retrain_dates()] == ["2018-01-31", "2018-03-29"]
    bt.run()
    runs = sorted(p.name for p in (tmp_path / "rt" / "models").iterdir())
    assert runs == ["2018-01-31", "2018-03-29"]
    for name in runs:
        info = json.loads((tmp_path / "rt" / "models" / name / "run.json").read_text())
        info = info.get("info", info)
        assert info["last_date"] == name  # trained on data up to its own origin, not after
    meta_models = load_scores(tmp_path / "rt")
    assert "gpt" in set(meta_models["model"])


def test_cli_writes_tables_and_a_self_contained_report(run_dir, shared_mapping, tmp_path):
    out = tmp_path / "cli"
    code = main(["backtest", "--run", str(run_dir), "--data", str(shared_mapping), "--first-origin", "2018-01-01",
                 "--last-origin", "2018-03-31", "--paths", "8", "--horizon", "21", "--out", str(out), "--no-progress",
                 "--baselines", "random_walk,var,climatology"])
    assert code == 0
    assert len(list((out / "origins").glob("*.fan.parquet"))) == 3
    for name in ("summary.csv", "skill.csv", "regimes.csv", "energy.csv", "summary.md", "report.html"):
        assert (out / name).stat().st_size > 0, name
    summary = pd.read_csv(out / "summary.csv")
    assert {"gpt", "random_walk", "var", "climatology"} <= set(summary["model"])
    assert set(summary["horizon"]) == {1, 5, 21}
    skill = pd.read_csv(out / "skill.csv")
    assert skill["best"].sum() >= 4
    page = (out / "report.html").read_text()
    from plotly.offline import get_plotlyjs

    # plotly.js inlined exactly once, nothing fetched from the network
    assert page.count(get_plotlyjs()[:200]) == 1 and "<script src" not in page
    assert page.count("Plotly.newPlot") >= 4
    assert "| SPX | 21 |" in (out / "summary.md").read_text()
    # bad input is a one-line user error
    assert main(["backtest", "--run", str(run_dir), "--out", str(out), "--window", "1999"]) == 2
    assert main(["backtest", "--run", str(run_dir), "--out", str(tmp_path / "e"), "--first-origin", "2018-01-01",
                 "--last-origin", "2018-02-28", "--every", "monthly"]) == 2


def test_a_retrained_run_keeps_the_base_runs_transforms_bins_and_model_options(shared_mapping, tmp_path):
    from forecaster.market.backtest.retrain import train_as_of

    base = tmp_path / "base"
    assert main(["train", "--data", str(shared_mapping), "--series", SERIES, "--panel-start", "2005-01-01",
                 "--as-of", TRAIN_AS_OF, "--out", str(base), "--preset", "day-tiny", "--max-steps", "2",
                 "--transform", "UST10Y=shifted_log", "--bins", "24", "--model-option", "state_dropout=0.3",
                 "--no-progress"]) == 0
    builder = PanelBuilder(str(shared_mapping), series=SERIES.split(","), start="2005-01-01")
    out = train_as_of(builder, pd.Timestamp("2016-06-30"), base, tmp_path / "retrained", max_steps=2)
    info = json.loads((out / "run.json").read_text())
    info = info.get("info", info)
    assert info["transforms"]["UST10Y"] == "shifted_log" and info["bins"] == 24
    # a refit as of the retraining date: every day to it trains, none is held out to stop on
    assert info["last_date"] == info["train_range"][1] == "2016-06-30" and info["val_start"] is None
    assert info["retrained_from"] == str(base) and info["refit_steps"] == 2
    assert json.loads((out / "model_config.json").read_text())["state_dropout"] == 0.3


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory, shared_mapping):
    """The fixture run's recipe with another seed: the second member of a pool."""
    out = tmp_path_factory.mktemp("btrun") / "tiny-seed1"
    code = main(["train", "--data", str(shared_mapping), "--series", SERIES, "--panel-start", "2005-01-01", "--as-of",
                 TRAIN_AS_OF, "--out", str(out), "--preset", "tiny", "--max-steps", "60", "--seed", "1",
                 "--no-progress"])
    assert code == 0
    return out


def test_a_pool_splits_the_paths_over_its_runs_each_with_its_own_seed(run_dir, seed_run, panels, tmp_path):
    from forecaster.market.backtest.runner import origin_seed
    from forecaster.market.pool import POOL_SEED_STRIDE, pool_shares

    real, _ = panels
    assert pool_shares(5, 2) == [3, 2] and pool_shares(100, 3) == [34, 33, 33] and pool_shares(4, 4) == [1] * 4
    bt = Backtest(_cfg(run_dir, real, end="2018-01-31", n_paths=5, baselines=["random_walk"], pool=[str(seed_run)]),
                  tmp_path / "pool")
    origin = bt.origins[0]
    panel = bt.builder.build(origin)[bt.cfg.series]
    gpt = bt.models_for(origin)[0]
    seed = origin_seed(0, origin)
    fc = gpt.forecast(panel, 5, 21, seed)
    first, second = gpt.pipe.members
    kw = dict(sampling=gpt.sampling, index_levels=gpt.index_levels)
    own = first.predict(panel, origin, n_paths=3, horizon=21, seed=seed, **kw)
    other = second.predict(panel, origin, n_paths=2, horizon=21, seed=seed + POOL_SEED_STRIDE, **kw)
    np.testing.assert_array_equal(fc.paths[:3], own.paths)
    np.testing.assert_array_equal(fc.paths[3:], other.paths)
    assert not np.allclose(np.nan_to_num(own.paths[:2]), np.nan_to_num(other.paths))  # two models, two answers
    assert [m["paths"] for m in fc.meta["pool"]] == [3, 2]
    assert {m["run_dir"] for m in fc.meta["pool"]} == {str(run_dir), str(seed_run)}
    scores = bt.run()  # the pooled GPT is scored like any model; the pool is in the settings and the origin files
    assert "gpt" in set(scores["model"])
    saved = json.loads((tmp_path / "pool" / "backtest.json").read_text())["config"]
    assert saved["pool"] == [str(seed_run)]


def test_a_pool_is_refused_with_retraining_a_mismatched_run_or_look_ahead(run_dir, seed_run, panels, tmp_path,
                                                                           shared_mapping):
    real, _ = panels
    with pytest.raises(BacktestError, match="retrain-every"):
        _cfg(run_dir, real, pool=[str(seed_run)], retrain_every=12)
    with pytest.raises(BacktestError, match="twice"):
        _cfg(run_dir, real, pool=[str(run_dir)])
    with pytest.raises(BacktestError, match="at least one path"):
        _cfg(run_dir, real, pool=[str(seed_run), str(seed_run) + "-x"], n_paths=2)
    # a pooled run trained past the first origin is look-ahead, like the run itself
    with pytest.raises(BacktestError, match="look-ahead"):
        Backtest(_cfg(seed_run, real, start="2017-06-01", end="2017-07-31", baselines=["random_walk"],
                      pool=[str(run_dir)]), tmp_path / "la").run()
    # a run of other series cannot join the pool
    other = tmp_path / "other-series"
    assert main(["train", "--data", str(shared_mapping), "--series", "SPX,VIX,UST10Y", "--panel-start", "2005-01-01",
                 "--as-of", TRAIN_AS_OF, "--out", str(other), "--preset", "tiny", "--max-steps", "2",
                 "--no-progress"]) == 0
    with pytest.raises(BacktestError, match="pool runs of one recipe"):
        Backtest(_cfg(run_dir, real, baselines=["random_walk"], pool=[str(other)]), tmp_path / "mm")
    # the CLI: a --pool entry that is no run folder is one line and exit code 2, before any work
    out = tmp_path / "cli-pool"
    code = main(["backtest", "--run", str(run_dir), "--data", str(shared_mapping), "--window", "2018-2021",
                 "--pool", str(tmp_path / "nope"), "--out", str(out), "--no-progress"])
    assert code == 2 and not out.exists()
