"""A pool of runs of one recipe (forecaster.market.pool): split, seeds, shared settings, refusals, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from forecaster.cli import main
from forecaster.market.calibration import Calibration
from forecaster.market.forecast import Forecast, ForecastError
from forecaster.market.pipeline import ForecastPipeline
from forecaster.market.pool import POOL_SEED_STRIDE, PooledPipeline, pool_shares

SERIES = "SPX,VIX,UST10Y,CORE_CPI_YOY"
AS_OF = "2017-12-29"


def _train(out, mapping, seed, series=SERIES):
    code = main(["train", "--data", str(mapping), "--series", series, "--panel-start", "2005-01-01", "--as-of", AS_OF,
                 "--out", str(out), "--preset", "tiny", "--max-steps", "40", "--seed", str(seed), "--no-progress"])
    assert code == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_mapping):
    root = tmp_path_factory.mktemp("pool")
    for seed in (0, 1):
        _train(root / f"s{seed}", shared_mapping, seed)
    return root / "s0", root / "s1"


def test_pool_shares_sum_to_the_paths_and_differ_by_at_most_one():
    for n, k in ((100, 3), (5, 2), (7, 7), (250, 4)):
        shares = pool_shares(n, k)
        assert sum(shares) == n and max(shares) - min(shares) <= 1 and shares == sorted(shares, reverse=True)


def test_a_pool_stacks_its_members_paths_each_with_its_own_seed(runs):
    a, b = (ForecastPipeline.from_run(r) for r in runs)
    builder = a.panel_builder()
    pool = PooledPipeline([a, b])
    fc = pool.predict(builder, "2018-06-29", n_paths=7, horizon=15, seed=3)
    own = a.predict(builder, "2018-06-29", n_paths=4, horizon=15, seed=3)
    other = b.predict(builder, "2018-06-29", n_paths=3, horizon=15, seed=3 + POOL_SEED_STRIDE)
    assert fc.paths.shape == (7, 15, 4)
    np.testing.assert_array_equal(fc.paths[:4], own.paths)
    np.testing.assert_array_equal(fc.paths[4:], other.paths)
    assert [m["paths"] for m in fc.meta["pool"]] == [4, 3] and fc.meta["n_paths"] == 7
    assert [m["seed"] for m in fc.meta["pool"]] == [3, 3 + POOL_SEED_STRIDE]
    assert fc.meta["pool"][0]["model_sha256"] != fc.meta["pool"][1]["model_sha256"]
    # a pool of one is its member
    alone = PooledPipeline([a]).predict(builder, "2018-06-29", n_paths=4, horizon=15, seed=3)
    np.testing.assert_array_equal(alone.paths, own.paths)


def test_every_member_samples_at_the_first_members_calibrated_temperature(runs):
    a, b = (ForecastPipeline.from_run(r) for r in runs)
    a.calibration = Calibration(temperature=0.5, validation_start="2015-01-02", validation_end=AS_OF, origins=[],
                                n_paths=2, seed=0, horizons=[21], scores={})
    builder = a.panel_builder()
    fc = PooledPipeline([a, b]).predict(builder, "2018-06-29", n_paths=6, horizon=10, seed=1)
    cold = b.predict(builder, "2018-06-29", n_paths=3, horizon=10, seed=1 + POOL_SEED_STRIDE, temperature=0.5)
    warm = b.predict(builder, "2018-06-29", n_paths=3, horizon=10, seed=1 + POOL_SEED_STRIDE)  # b's own default: 1
    np.testing.assert_array_equal(fc.paths[3:], cold.paths)
    assert not np.array_equal(np.nan_to_num(cold.paths), np.nan_to_num(warm.paths))
    assert fc.meta["sampling"]["temperature"] == 0.5 and fc.meta["calibration"]["temperature"] == 0.5


def test_a_pool_refuses_runs_of_other_series_and_too_few_paths(runs, shared_mapping, tmp_path):
    _train(tmp_path / "three", shared_mapping, 0, series="SPX,VIX,UST10Y")
    a = ForecastPipeline.from_run(runs[0])
    with pytest.raises(ForecastError, match="one recipe"):
        PooledPipeline([a, ForecastPipeline.from_run(tmp_path / "three")])
    with pytest.raises(ForecastError, match="at least the pool's 2 runs"):
        PooledPipeline([a, ForecastPipeline.from_run(runs[1])]).predict(None, "2018-06-29", n_paths=1, horizon=5)


def test_forecast_cli_with_a_pool(runs, tmp_path, capsys):
    out = tmp_path / "fc"
    code = main(["forecast", "--run", str(runs[0]), "--pool", str(runs[1]), "--as-of", "2018-06-29", "--paths", "6",
                 "--horizon", "10", "--out", str(out), "--no-progress"])
    assert code == 0
    fc = Forecast.load(out)
    assert fc.n_paths == 6 and [m["paths"] for m in fc.meta["pool"]] == [3, 3]
    assert json.loads((out / "forecast.json").read_text())  # the pool's record is plain JSON
    # a --pool entry that is no run folder: one line, exit 2, nothing written
    bad = tmp_path / "bad"
    code = main(["forecast", "--run", str(runs[0]), "--pool", str(tmp_path / "nope"), "--as-of", "2018-06-29",
                 "--out", str(bad), "--no-progress"])
    assert code == 2 and not bad.exists()
    assert "not a run folder" in capsys.readouterr().err
