"""--device: parsing, the choice of a usable GPU by a real operation, one-line errors, same seed same paths.

The selection logic runs on the CPU: ``resolve_device`` takes the GPU count and the
probe as arguments, so a machine where ``torch.cuda.is_available()`` is true but the
first kernel fails is played by a probe that reports a failure (the real probe, run
here on a machine without a usable GPU, reports one too). The real GPU path is in
tests/test_gpu.py (marked ``gpu``).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from forecaster.cli import main
from forecaster.core.device import (CPU, DeviceError, as_device, cuda_count, parse_device, probe_cuda,
                                    resolve_device)
from forecaster.market.pipeline import ForecastPipeline

SERIES = "SPX,VIX,UST10Y,CORE_CPI_YOY"
AS_OF = "2018-12-31"
NO_GPU = cuda_count() == 0


@pytest.mark.parametrize("spec, parsed", [("auto", ("auto", None)), ("cpu", ("cpu", None)), ("cuda", ("cuda", None)),
                                          ("cuda:3", ("cuda", 3)), (" CUDA:0 ", ("cuda", 0)), (None, ("cpu", None))])
def test_device_names_parse(spec, parsed):
    assert parse_device(spec) == parsed


@pytest.mark.parametrize("spec", ["gpu", "cpu:1", "auto:0", "cuda:", "cuda:-1", "cuda0", "mps", ""])
def test_other_names_are_refused_with_the_choices(spec):
    with pytest.raises(DeviceError, match="is not a device; use auto, cpu, cuda or cuda:N"):
        parse_device(spec)


def _probe(results: dict[int, str | None]):
    """A probe with fixed answers per GPU index, recording which GPUs were tried."""
    tried = []

    def probe(i):
        tried.append(i)
        return results[i]

    probe.tried = tried
    return probe


def test_auto_skips_a_gpu_whose_first_operation_fails():
    # cuda:0 is visible (is_available() would be true) but its first kernel fails; cuda:1 works
    probe = _probe({0: "RuntimeError: CUDA error: no kernel image is available", 1: None})
    dev = resolve_device("auto", "fp32", probe=probe, count=lambda: 2)
    assert dev.torch == torch.device("cuda", 1) and not dev.bf16 and probe.tried == [0, 1]
    assert "cuda:1 passed a test operation" in dev.why


def test_auto_falls_back_to_the_cpu_and_says_why():
    probe = _probe({0: "RuntimeError: out of memory", 1: "RuntimeError: busy"})
    dev = resolve_device("auto", probe=probe, count=lambda: 2)
    assert dev.torch.type == "cpu" and not dev.bf16
    assert "out of memory" in dev.why and "busy" in dev.why
    assert resolve_device("auto", probe=_probe({}), count=lambda: 0).torch.type == "cpu"


def test_an_explicit_gpu_that_fails_is_an_error_not_a_cpu_run():
    with pytest.raises(DeviceError, match=r"--device cuda:0: a test operation failed on the GPU \(cuda:0: "
                                          r"RuntimeError: bad\); use --device cpu or auto"):
        resolve_device("cuda:0", probe=_probe({0: "RuntimeError: bad"}), count=lambda: 1)
    with pytest.raises(DeviceError, match="there is no GPU 3 .*shows 2: cuda:0, cuda:1"):
        resolve_device("cuda:3", probe=_probe({}), count=lambda: 2)
    probe = _probe({0: "RuntimeError: bad", 1: None})
    assert resolve_device("cuda", "fp32", probe=probe, count=lambda: 2).torch == torch.device("cuda", 1)
    # exactly the GPU asked for: no fallback to another one
    with pytest.raises(DeviceError):
        resolve_device("cuda:0", probe=_probe({0: "RuntimeError: bad", 1: None}), count=lambda: 2)


def test_cpu_is_never_probed():
    assert resolve_device("cpu", probe=_probe({}), count=lambda: 8) is CPU
    assert as_device(None) is CPU and as_device(torch.device("cpu")) is CPU


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU (tests/test_gpu.py covers it)")
def test_without_a_gpu_the_real_probe_reports_and_cuda_is_refused():
    why = probe_cuda(0)
    assert isinstance(why, str) and why  # it reports, it does not raise
    assert resolve_device("auto").torch.type == "cpu"
    with pytest.raises(DeviceError, match=r"^--device cuda: no usable GPU here \(torch .*\); use --device cpu or auto$"):
        resolve_device("cuda")


@pytest.fixture(scope="module", params=["tiny", "day-tiny"])
def run_dir(request, tmp_path_factory, shared_mapping):
    out = tmp_path_factory.mktemp("devrun") / request.param
    code = main(["train", "--data", str(shared_mapping), "--series", SERIES, "--panel-start", "2008-01-01",
                 "--as-of", "2017-12-29", "--out", str(out), "--preset", request.param, "--max-steps", "10",
                 "--no-progress"])
    assert code == 0
    return out


def test_same_seed_same_device_same_paths(run_dir, shared_mapping):
    from data_sources.panel import PanelBuilder

    builder = PanelBuilder(str(shared_mapping), series=SERIES.split(","), start="2008-01-01")
    a = ForecastPipeline.from_run(run_dir, device="cpu").predict(builder, AS_OF, n_paths=8, horizon=12, seed=5)
    pipe = ForecastPipeline.from_run(run_dir, device="auto")
    assert next(pipe.model.parameters()).device == pipe.device.torch
    b = ForecastPipeline.from_run(run_dir, device="cpu").predict(builder, AS_OF, n_paths=8, horizon=12, seed=5)
    c = ForecastPipeline.from_run(run_dir, device="cpu").predict(builder, AS_OF, n_paths=8, horizon=12, seed=6)
    np.testing.assert_array_equal(a.paths, b.paths)
    assert not np.allclose(a.paths, c.paths, equal_nan=True)  # the test can fail: another seed, other paths
    assert a.meta["device"] == "cpu" and a.meta["precision"] == "fp32"


def test_cli_forecast_records_the_device(run_dir, shared_mapping, tmp_path):
    import json

    out = tmp_path / "fc"
    assert main(["forecast", "--run", str(run_dir), "--as-of", AS_OF, "--paths", "4", "--horizon", "5",
                 "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    meta = json.loads((out / "forecast.json").read_text())["meta"]
    assert meta["device"] == "cpu" and meta["precision"] == "fp32"


def test_bf16_autocast_sampling_runs_on_the_cpu(run_dir, shared_mapping):
    """The bf16 path a GPU takes (autocast around sampling, an fp32 KV cache fed bf16 keys, float64 draws),
    exercised with the CPU's autocast: no dtype error, finite paths, same seed same paths."""
    from data_sources.panel import PanelBuilder
    from forecaster.core.device import Device
    from forecaster.market.scenario import Scenario, parse_shock

    builder = PanelBuilder(str(shared_mapping), series=SERIES.split(","), start="2008-01-01")
    pipe = ForecastPipeline.from_run(run_dir, device=Device(torch.device("cpu"), True, "test: CPU autocast"))
    shock = Scenario("vix", [parse_shock("VIX:level=40:days=1-3")])
    a = pipe.predict(builder, AS_OF, n_paths=8, horizon=12, seed=5, scenario=shock)
    b = pipe.predict(builder, AS_OF, n_paths=8, horizon=12, seed=5, scenario=shock)
    assert a.meta["precision"] == "bf16" and np.isfinite(a.paths).all()
    np.testing.assert_array_equal(a.paths, b.paths)


def test_cli_refuses_an_unusable_device_in_one_line(run_dir, tmp_path, capsys):
    base = ["--run", str(run_dir), "--as-of", AS_OF, "--out", str(tmp_path / "fc")]
    for spec, message in (("gpu", "is not a device"), ("cuda:99", "GPU")):
        assert main(["forecast", *base, "--device", spec]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --device") and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "fc").exists()
    bt = ["backtest", "--run", str(run_dir), "--window", "2018-2021", "--out", str(tmp_path / "bt")]
    assert main([*bt, "--device", "cuda:99"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device cuda:99") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "bt").exists()
