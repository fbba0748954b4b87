"""The public Python API: ``from forecaster import ForecastPipeline``, train -> predict -> quantile/plot -> backtest."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import forecaster
from forecaster import ForecastPipeline, UserError

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2018-12-31"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("api") / "tiny"
    pipe = forecaster.train("embedded", out, as_of="2017-12-29", preset="tiny", max_steps=40)
    assert isinstance(pipe, ForecastPipeline) and pipe.series == ["SPX", "VIX", "WTI", "CORE_CPI_YOY"]
    return out


@pytest.fixture(scope="module")
def pipe(run) -> ForecastPipeline:
    return ForecastPipeline.from_run(run)


def test_importing_the_package_loads_no_torch():
    code = "import sys, forecaster; assert 'torch' not in sys.modules; print(forecaster.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == forecaster.__version__


def test_predict_uses_the_runs_own_data_by_default(pipe):
    default = pipe.predict(as_of=AS_OF, n_paths=8, horizon=10, seed=3)
    explicit = pipe.predict(pipe.panel_builder(), AS_OF, n_paths=8, horizon=10, seed=3)
    assert default.paths.shape == (8, 10, 4)
    np.testing.assert_array_equal(default.paths, explicit.paths)
    assert default.meta["source"] == "embedded" and default.as_of == pd.Timestamp(AS_OF)


def test_sampling_settings_by_keyword(pipe):
    hot = pipe.predict(as_of=AS_OF, n_paths=8, horizon=5, seed=1, temperature=1.5, top_k=20)
    assert hot.meta["sampling"] == {"temperature": 1.5, "top_k": 20, "top_p": None}
    with pytest.raises(UserError, match="sampling or temperature"):
        pipe.predict(as_of=AS_OF, n_paths=2, horizon=2, sampling=forecaster.SamplingConfig(), top_k=3)


def test_quantile_is_a_horizon_by_series_frame(pipe):
    fc = pipe.predict(as_of=AS_OF, n_paths=16, horizon=12, seed=0)
    q = fc.quantile(0.9)
    assert list(q.columns) == fc.series and q.index.equals(fc.dates) and q.shape == (12, 4)
    np.testing.assert_allclose(q["VIX"].to_numpy(), np.quantile(fc.column("VIX"), 0.9, axis=0))
    assert (fc.quantile(0.1) <= q).all().all()
    assert fc.median().equals(fc.quantile(0.5))
    for bad in (0, 1, 1.5, "0.9", True):
        with pytest.raises(UserError, match="^q must be"):
            fc.quantile(bad)


def test_plot_is_a_plotly_fan_chart(pipe):
    fc = pipe.predict(as_of=AS_OF, n_paths=16, horizon=12, seed=0)
    fig = fc.plot("VIX", n_sample_paths=3)
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert "VIX history" in names and "VIX median" in names and "sample paths" in names
    median = next(t for t in fig.data if t.name == "VIX median")
    np.testing.assert_allclose(np.asarray(median.y, dtype=float), fc.median()["VIX"].to_numpy())
    with pytest.raises(UserError, match="not in this forecast"):
        fc.plot("GDP")


@pytest.mark.parametrize("kwargs, param", [
    (dict(n_paths=0), "n_paths"), (dict(horizon=0), "horizon"), (dict(horizon=10**6), "horizon"),
    (dict(as_of="not a date"), "as_of"), (dict(seed=-1), "seed"), (dict(top_k=0), "top_k"),
])
def test_library_errors_name_parameters_not_flags(pipe, kwargs, param):
    args = {"as_of": AS_OF, "n_paths": 2, "horizon": 2, **kwargs}
    with pytest.raises(UserError) as err:
        pipe.predict(**args)
    message = str(err.value)
    assert message.startswith(param) and "--" not in message


def test_backtest_from_python_resumes(run, tmp_path):
    kw = dict(start="2018-01-01", end="2018-02-28", n_paths=8, horizon=5, baselines=["random_walk"])
    result = forecaster.backtest(run, tmp_path / "bt", **kw)
    assert [str(o.date()) for o in result.origins] == ["2018-01-31", "2018-02-28"]
    assert {"gpt", "random_walk"} <= set(result.scores["model"]) and not result.errors
    assert result.report.exists() and set(result.skill["baseline"]) == {"random_walk"}
    seen = []
    again = forecaster.backtest(run, tmp_path / "bt", on_origin=lambda o, info: seen.append(info.get("skipped")), **kw)
    assert seen == [True, True]
    pd.testing.assert_frame_equal(again.scores, result.scores)


def test_the_example_runs(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "P(VIX > 30" in out.stdout and "backtest of 2 origins" in out.stdout
    assert (tmp_path / "spx_fan.html").stat().st_size > 1000


def test_the_stress_example_prints_the_responses(run, tmp_path):
    """examples/stress_scenario.py (the README's stress example) on a tiny run: VIX pinned at 40, the rest respond."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(REPO / "examples" / "stress_scenario.py"), "--run", str(run),
                          "--as-of", AS_OF, "--paths", "8", "--horizon", "60", "--png", str(tmp_path / "s.png")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in out.stdout.splitlines() if line.startswith("| ")}
    assert {"VIX", "SPX", "WTI", "CORE_CPI_YOY"} <= set(rows)
    vix_day20 = rows["VIX"].split("|")[4]  # "base / VIX 40 / response" at day 20
    stressed = float(vix_day20.split("/")[1])
    origin = float(ForecastPipeline.from_run(run).panel_builder().build(pd.Timestamp(AS_OF))["VIX"].iloc[-1])
    assert abs(stressed - (40 - origin)) < 0.5  # VIX held at 40: its median change is 40 minus the origin's level
    assert (tmp_path / "s.png").stat().st_size > 10_000
