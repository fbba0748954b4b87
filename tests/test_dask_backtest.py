"""Backtest origins as Dask tasks on a real LocalCluster of 2 workers: the serial run's results, resume, errors."""
from __future__ import annotations

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed", reason="the distributed extra (pip install 'forecaster[distributed]')")

from forecaster.cli import main  # noqa: E402
from forecaster.market.backtest.runner import Backtest, BacktestConfig, load_fan  # noqa: E402
from forecaster.market.backtest.windows import BacktestError  # noqa: E402
from foundation.cluster import SchedulerError, parse_scheduler  # noqa: E402

SERIES = "SPX,VIX,UST10Y,CORE_CPI_YOY"
COLS = ["origin", "model", "kind", "name", "horizon"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, shared_mapping):
    out = tmp_path_factory.mktemp("daskrun") / "day-tiny"
    code = main(["train", "--data", str(shared_mapping), "--series", SERIES, "--panel-start", "2005-01-01", "--as-of",
                 "2017-12-29", "--out", str(out), "--preset", "day-tiny", "--max-steps", "20", "--no-progress"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def cluster():
    """A running scheduler with 2 single-thread workers, reached by its tcp:// address like a remote one."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def _cfg(run_dir, shared_mapping, **kw):
    base = dict(start="2018-01-01", end="2018-04-30", run=str(run_dir), data=str(shared_mapping), n_paths=8,
                horizon=10, baselines=["random_walk", "climatology"], panel_start="2005-01-01", seed=3)
    base.update(kw)
    return BacktestConfig(**base)


@pytest.fixture(scope="module")
def serial(run_dir, shared_mapping, tmp_path_factory):
    bt = Backtest(_cfg(run_dir, shared_mapping), tmp_path_factory.mktemp("serial") / "bt")
    return bt, bt.run()


def _sorted(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.sort_values(COLS).reset_index(drop=True)


@pytest.mark.slow
def test_local_cluster_gives_the_serial_results(serial, run_dir, shared_mapping, tmp_path):
    bt0, expected = serial
    seen = []
    bt = Backtest(_cfg(run_dir, shared_mapping), tmp_path / "dask", scheduler="local:2")
    got = bt.run(on_origin=lambda o, info: seen.append((o, info["skipped"])))
    assert len(bt.origins) == 4 and sorted(seen) == [(o, False) for o in bt.origins]
    assert "gpt" in set(got["model"])
    pd.testing.assert_frame_equal(_sorted(expected), _sorted(got))
    for origin in bt.origins:  # the fans too: every quantile of every model, and the realised path
        pd.testing.assert_frame_equal(load_fan(bt0.out, origin), load_fan(bt.out, origin))


@pytest.mark.slow
def test_a_running_scheduler_resumes_only_the_missing_origins(serial, run_dir, shared_mapping, cluster, tmp_path):
    _, expected = serial
    address = cluster.scheduler_address
    assert address.startswith("tcp://")
    out = tmp_path / "remote"
    Backtest(_cfg(run_dir, shared_mapping), out, scheduler=address).run()
    bt = Backtest(_cfg(run_dir, shared_mapping), out, scheduler=address)
    missing = bt.origins[2]
    bt.origin_path(missing).unlink()
    seen = []
    got = bt.run(on_origin=lambda o, info: seen.append((o, info["skipped"])))
    assert sorted(seen) == sorted((o, o != missing) for o in bt.origins)
    pd.testing.assert_frame_equal(_sorted(expected), _sorted(got))
    with distributed.Client(address) as client:  # a cluster not ours is left running
        assert len(client.scheduler_info()["workers"]) == 2


def test_look_ahead_is_refused_before_any_task(run_dir, shared_mapping, tmp_path):
    bt = Backtest(_cfg(run_dir, shared_mapping, start="2017-06-01", end="2017-07-31"), tmp_path / "x",
                  scheduler="local:2")
    with pytest.raises(BacktestError, match="look-ahead"):
        bt.run()


@pytest.mark.parametrize("spec, message", [("local:0", "at least 1 worker"), ("local", "is not a scheduler"),
                                           ("tcp://host", "is not a scheduler"), ("127.0.0.1:8786", "is not a scheduler"),
                                           ("tcp://127.0.0.1:70000", "not in 1..65535")])
def test_malformed_schedulers_are_refused(spec, message):
    with pytest.raises(SchedulerError, match=message):
        parse_scheduler(spec)


def test_cli_scheduler_errors_are_one_line(run_dir, tmp_path, capsys):
    base = ["backtest", "--run", str(run_dir), "--first-origin", "2018-01-01", "--last-origin", "2018-02-28",
            "--paths", "4", "--horizon", "5", "--baselines", "random_walk", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a"), "--scheduler", "local:zero"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --scheduler 'local:zero' is not a scheduler") and len(err.splitlines()) == 1
    assert not (tmp_path / "a").exists()
    # nothing listens on port 1: connection refused, reported as one line naming the address
    assert main([*base, "--out", str(tmp_path / "b"), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --scheduler tcp://127.0.0.1:1: cannot reach a Dask scheduler"), err
    assert not list((tmp_path / "b" / "origins").glob("*.parquet")) if (tmp_path / "b").exists() else True
