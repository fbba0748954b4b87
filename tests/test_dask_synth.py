"""Synthetic histories as Dask tasks on a real LocalCluster of 2 workers: the serial table, byte for byte.

A tiny day-level synthesis run is trained here (a few steps on 3,000 real TabFormer
rows); the blocks (``--batch-paths`` histories each) are seeded by (seed, block), so the
split output must equal the serial one whatever worker samples which block.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

distributed = pytest.importorskip("distributed", reason="the distributed extra (pip install 'forecaster[distributed]')")

from forecaster.cli import main  # noqa: E402
from forecaster.synthesis.documents import SynthesisInputError, read_table  # noqa: E402
from forecaster.synthesis.generate import Synthesizer, block_seed  # noqa: E402
from forecaster.synthesis.privacy import NearCopyIndex  # noqa: E402
from forecaster.synthesis.train import train_synthesizer  # noqa: E402


@pytest.fixture(scope="module")
def train_rows(tabformer_csv) -> pd.DataFrame:
    return read_table(tabformer_csv).iloc[:3000]


@pytest.fixture(scope="module")
def run_dir(train_rows, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("dasksynth") / "run"
    train_synthesizer(train_rows, run, "day-tiny", max_steps=5, eval_every=5, progress=False)
    return run


@pytest.fixture(scope="module")
def cluster():
    """A running scheduler with 2 single-thread workers, reached by its tcp:// address like a remote one."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_block_seeds_depend_on_seed_and_block_only():
    a, rng_a = block_seed(7, 3)
    b, rng_b = block_seed(7, 3)
    assert a == b and rng_a.random() == rng_b.random()
    assert len({block_seed(7, k)[0] for k in range(50)} | {block_seed(8, 0)[0]}) == 51


def test_cli_local_cluster_writes_the_serial_file_byte_for_byte(run_dir, tmp_path, capsys):
    # 9 histories of 20 rows in blocks of 2 (5 blocks, the last one short), one column fixed
    base = ["synth", "generate", "--run", str(run_dir), "--rows", "170", "--rows-per-history", "20",
            "--batch-paths", "2", "--seed", "11", "--condition", "merchant_state=CA", "--weights", "last",
            "--device", "cpu", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "serial.parquet")]) == 0
    serial_log = capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "dask.parquet"), "--scheduler", "local:2"]) == 0
    err = capsys.readouterr().err
    assert "5 blocks of up to 2 histories on 2 Dask workers (local:2)" in err, err
    assert "170 rows in 9 histories" in serial_log and "170 rows in 9 histories" in err
    assert (tmp_path / "dask.parquet").read_bytes() == (tmp_path / "serial.parquet").read_bytes()
    table = pd.read_parquet(tmp_path / "dask.parquet")
    assert len(table) == 170 and (table["merchant_state"] == "CA").all() and table["user"].nunique() == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dask.parquet", "serial.parquet"]  # nothing partial left


def test_running_scheduler_continuation_and_dedupe_give_the_serial_tables(run_dir, train_rows, cluster):
    synth = Synthesizer(run_dir, which="last")
    address = cluster.scheduler_address
    # continuation: 5 context histories (stretches of the real card's rows, as 5 users) in blocks of 2
    parts = [train_rows.iloc[i * 500:i * 500 + 30].assign(user=100 + i) for i in range(5)]
    context = pd.concat(parts, ignore_index=True).astype({"user": train_rows["user"].dtype})
    want, _ = synth.generate(6, context=context, seed=4, batch_paths=2)
    got, stats = synth.generate(6, context=context, seed=4, batch_paths=2, scheduler=address)
    pd.testing.assert_frame_equal(want, got)
    assert stats.histories == 5 and len(got) == 30 and stats.blocks == 3 and stats.device == "cpu"
    # new histories with near-copies of the training rows dropped on the workers
    index = NearCopyIndex(train_rows)
    seen = []
    want, wstats = synth.generate(90, rows_per_history=30, seed=5, batch_paths=1, dedupe=index, dedupe_tolerance=1.0)
    got, gstats = synth.generate(90, rows_per_history=30, seed=5, batch_paths=1, dedupe=index, dedupe_tolerance=1.0,
                                 scheduler=address, progress=seen.append)
    pd.testing.assert_frame_equal(want, got)
    assert gstats.near_copies_dropped == wstats.near_copies_dropped and gstats.blocks == 3
    assert seen and seen[-1] == len(got) and seen == sorted(seen)
    with distributed.Client(address) as client:  # a cluster not ours is left running
        assert len(client.scheduler_info()["workers"]) == 2


def test_a_worker_that_loads_other_weights_stops_the_command(run_dir, cluster):
    synth = Synthesizer(run_dir, which="last")
    with torch.no_grad():
        synth.model.lm_head.weight.add_(1.0)  # the client's weights are no longer the run folder's
    with pytest.raises(SynthesisInputError, match=r"other weights .* \(shared storage\)"):
        synth.generate(20, rows_per_history=10, seed=1, batch_paths=1, scheduler=cluster.scheduler_address)


def test_workers_add_the_clients_marginal_calibration_or_stop(run_dir, train_rows, cluster, tmp_path):
    import shutil

    from forecaster.synthesis.marginals import fit_marginals

    shutil.copytree(run_dir, tmp_path / "run")
    synth = Synthesizer(tmp_path / "run", which="last")
    fit_marginals(synth, train_rows, iterations=1, rows=200, rows_per_history=100)  # in memory, not saved
    with pytest.raises(SynthesisInputError, match="another marginal calibration"):
        synth.generate(20, rows_per_history=10, seed=1, batch_paths=5, scheduler=cluster.scheduler_address)
    synth.marginals.save(tmp_path / "run")  # saved: the workers read the client's biases, same table as serial
    serial, _ = synth.generate(20, rows_per_history=10, seed=1, batch_paths=5)
    dask, stats = synth.generate(20, rows_per_history=10, seed=1, batch_paths=5, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(dask, serial)
    assert stats.calibrated
    raw, _ = synth.generate(20, rows_per_history=10, seed=1, batch_paths=5, marginals=False)
    assert not raw.equals(serial)


def test_cli_scheduler_errors_are_one_line_before_the_model_loads(run_dir, tmp_path, capsys):
    base = ["synth", "generate", "--run", str(run_dir), "--rows", "10", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a.csv"), "--scheduler", "local:0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --scheduler local:0: a local cluster needs at least 1 worker (e.g. local:2)"
    assert main([*base, "--out", str(tmp_path / "b.csv"), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --scheduler tcp://127.0.0.1:1: cannot reach a Dask scheduler"), err
    assert not list(tmp_path.iterdir())
