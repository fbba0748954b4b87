"""The real GPU path: device choice, sampling on the GPU (model, KV caches, generator), cuDF ETL.

Marked ``gpu`` and skipped where no GPU passes ``probe_cuda`` (CI, the CPU development
machine). Run on a GPU machine with ``python -m pytest -m gpu tests/test_gpu.py``;
``benchmarks/gpu_suite.sh`` runs it before the GPU figures.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster.cli import main
from forecaster.core.device import cuda_count, probe_cuda, resolve_device

USABLE = cuda_count() > 0 and probe_cuda(0) is None
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not USABLE, reason="no usable CUDA GPU here")]

SERIES = "SPX,VIX,UST10Y,CORE_CPI_YOY"
AS_OF = "2018-12-31"


@pytest.fixture(scope="module", params=["tiny", "day-tiny"])
def run_dir(request, tmp_path_factory, shared_mapping):
    out = tmp_path_factory.mktemp("gpurun") / request.param
    code = main(["train", "--data", str(shared_mapping), "--series", SERIES, "--panel-start", "2008-01-01",
                 "--as-of", "2017-12-29", "--out", str(out), "--preset", request.param, "--max-steps", "10",
                 "--no-progress"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def builder(shared_mapping):
    from data_sources.panel import PanelBuilder

    return PanelBuilder(str(shared_mapping), series=SERIES.split(","), start="2008-01-01")


def test_auto_picks_the_gpu_after_a_real_operation():
    dev = resolve_device("auto")
    assert dev.type == "cuda" and "passed a test operation" in dev.why
    assert dev.bf16 == torch.cuda.is_bf16_supported()
    assert not resolve_device("cuda:0", "fp32").bf16


def test_sampling_on_the_gpu_same_seed_same_paths(run_dir, builder):
    from forecaster.core.model import KVCache
    from forecaster.market.pipeline import ForecastPipeline

    pipe = ForecastPipeline.from_run(run_dir, device="cuda")
    assert next(pipe.model.parameters()).device.type == "cuda"
    if not pipe.is_day:
        assert KVCache.for_model(pipe.model, batch_size=1).kv.device.type == "cuda"
    a = pipe.predict(builder, AS_OF, n_paths=16, horizon=20, seed=7)
    b = pipe.predict(builder, AS_OF, n_paths=16, horizon=20, seed=7)
    c = pipe.predict(builder, AS_OF, n_paths=16, horizon=20, seed=8)
    np.testing.assert_array_equal(a.paths, b.paths)
    assert not np.allclose(a.paths, c.paths, equal_nan=True)
    assert a.meta["device"].startswith("cuda") and a.meta["precision"] == ("bf16" if pipe.device.bf16 else "fp32")
    cpu = ForecastPipeline.from_run(run_dir, device="cpu").predict(builder, AS_OF, n_paths=16, horizon=20, seed=7)
    assert cpu.paths.shape == a.paths.shape  # the CPU draws other paths (other kernels): documented, not compared


def test_a_scenario_samples_on_the_gpu(run_dir, builder):
    """Forced tokens (the scenario and the release calendar) live on the host and are moved to the device."""
    from forecaster.market.pipeline import ForecastPipeline
    from forecaster.market.scenario import Scenario, parse_shock

    pipe = ForecastPipeline.from_run(run_dir, device="cuda")
    fc = pipe.predict(builder, AS_OF, n_paths=16, horizon=20, seed=1,
                      scenario=Scenario("vix", [parse_shock("VIX:level=40:days=1-5")]))
    assert np.allclose(fc.paths[:, :5, fc.series.index("VIX")], 40, rtol=0.05)


def test_cli_forecast_and_backtest_on_the_gpu(run_dir, tmp_path, shared_mapping):
    from data_sources.store import read_meta

    assert main(["forecast", "--run", str(run_dir), "--as-of", AS_OF, "--paths", "8", "--horizon", "10",
                 "--out", str(tmp_path / "fc"), "--device", "cuda:0", "--no-progress"]) == 0
    assert main(["backtest", "--run", str(run_dir), "--first-origin", "2018-01-01", "--last-origin", "2018-02-28",
                 "--paths", "8", "--horizon", "10", "--baselines", "random_walk", "--device", "cuda:0",
                 "--out", str(tmp_path / "bt"), "--no-progress"]) == 0
    metas = [read_meta(p) for p in sorted((tmp_path / "bt" / "origins").glob("*[0-9].parquet"))]
    assert len(metas) == 2 and all(m["device"] == "cuda:0" for m in metas)


def test_cudf_etl_equals_the_pandas_path(tabformer_csv: Path, tmp_path: Path):
    from data_sources.gpu import cudf_usable
    from data_sources.tabformer import read_tabformer, write_tabformer_csv

    if not cudf_usable():
        pytest.skip("cuDF is not installed (the gpu extra) or not usable")
    cpu = read_tabformer(tabformer_csv, engine="cpu", progress=False)
    gpu = read_tabformer(tabformer_csv, engine="cudf", progress=False)
    pd.testing.assert_frame_equal(gpu, cpu)
    pytest.importorskip("distributed")
    chunked = read_tabformer(tabformer_csv, engine="cudf", chunksize=3_000, scheduler="local:1")
    pd.testing.assert_frame_equal(chunked, cpu)
    assert write_tabformer_csv(chunked, tmp_path / "t.csv").read_bytes() == tabformer_csv.read_bytes()


def test_dask_cudf_partitions(tabformer_csv: Path):
    from data_sources.gpu import cudf_usable
    from data_sources.tabformer import tabformer_dataframe

    pytest.importorskip("dask_cudf")
    if not cudf_usable():
        pytest.skip("cuDF is not usable")
    frame = tabformer_dataframe(tabformer_csv, chunksize=5_000, engine="cudf", backend="cudf")
    assert int(frame["is_fraud"].sum().compute()) == 27
