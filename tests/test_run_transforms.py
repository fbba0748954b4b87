"""A run records the modeling transform of every series; forecasts use what the run records.

So a series can be modeled differently from the catalog in one run (``--transform
VIX=level``: VIX as a level, the catalog's choice before issue 14 made it a log change),
and a run keeps decoding right when the catalog's choice changes later. A run.json from
before the record is read with the rules of then (``LEGACY_FRAME``).
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from forecaster.cli import main
from forecaster.market.forecast import Forecast
from forecaster.market.pipeline import ForecastPipeline


def _names(pipe) -> dict[str, str]:
    return {c: t.name for c, t in zip(pipe.series, pipe.transforms)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("transforms")
    for name, extra in (("catalog", []), ("vixlevel", ["--transform", "VIX=level"])):
        assert main(["train", "--data", "embedded", "--as-of", "2017-12-29", "--out", str(root / name),
                     "--preset", "tiny", "--max-steps", "30", "--no-progress", *extra]) == 0
    return root


def test_run_json_records_every_series_transform(runs):
    rec = json.loads((runs / "catalog" / "run.json").read_text())["transforms"]
    assert rec == {"SPX": "log_return", "VIX": "log_return", "WTI": "log_return", "CORE_CPI_YOY": "yoy_index"}
    rec = json.loads((runs / "vixlevel" / "run.json").read_text())["transforms"]
    assert rec["VIX"] == "level" and rec["SPX"] == "log_return"
    assert json.loads((runs / "catalog" / "run.json").read_text())["release_frame"] is True


def test_vix_as_a_log_change_is_tokenized_and_forecast_as_one(runs, tmp_path):
    pipe = ForecastPipeline.from_run(runs / "catalog")
    assert _names(pipe) == {"SPX": "log_return", "VIX": "log_return", "WTI": "log_return", "CORE_CPI_YOY": "yoy_index"}
    assert pipe.tokenizer.specs["VIX"].transform == "signed_log"  # the returns' codec, not the level's log bins
    assert main(["forecast", "--run", str(runs / "catalog"), "--as-of", "2018-12-31", "--paths", "16", "--horizon", "20",
                 "--shock", "VIX:level=40:days=1-5", "--out", str(tmp_path / "fc"), "--no-progress"]) == 0
    fc = Forecast.load(tmp_path / "fc")
    vix = fc.column("VIX")
    assert (vix > 0).all() and np.isfinite(vix).all()  # integrated as log changes: never negative
    # a level constraint becomes log changes: day 1's jump is one token, within its bin's error
    # ((1 + |r|) * expm1(width / 2) percent of the move r), and each later day steps back to 40
    r = 100 * np.log(40.0 / float(fc.history["VIX"].iloc[-1]))
    width = pipe.tokenizer.codec("VIX").width
    np.testing.assert_allclose(vix[:, 0], 40.0, rtol=(1 + abs(r)) * np.expm1(width / 2) / 100 + 1e-9)
    np.testing.assert_allclose(vix[:, 1:5], 40.0, rtol=0.01)


def test_a_forecast_uses_the_runs_transforms_not_the_catalogs(runs, tmp_path):
    """Rewrite run.json as if the catalog had changed: the run's own record decides how it is decoded."""
    pipe = ForecastPipeline.from_run(runs / "vixlevel")
    assert _names(pipe)["VIX"] == "level" and pipe.tokenizer.specs["VIX"].transform == "log"
    info = json.loads((runs / "vixlevel" / "run.json").read_text())
    other = {**info, "transforms": {**info["transforms"], "VIX": "log_return"}}
    assert _names(ForecastPipeline(pipe.model, pipe.tokenizer, info=other))["VIX"] == "log_return"


def test_a_run_from_before_the_record_is_read_with_the_rules_of_then(runs, tmp_path):
    """No ``transforms`` and no ``release_frame`` in run.json: VIX as a level, zeros between releases."""
    old = tmp_path / "old"
    shutil.copytree(runs / "vixlevel", old)
    info = json.loads((old / "run.json").read_text())
    info.pop("transforms"), info.pop("release_frame")
    (old / "run.json").write_text(json.dumps(info))
    pipe = ForecastPipeline.from_run(old)
    assert _names(pipe) == {"SPX": "log_return", "VIX": "level", "WTI": "log_return", "CORE_CPI_YOY": "diff"}  # then
    assert pipe.release_frame is False
    fc = pipe.predict(None, "2018-12-31", n_paths=4, horizon=30, seed=0)
    assert fc.meta["no_release_days"]["CORE_CPI_YOY"] >= 27 and not np.isnan(fc.paths).any()


def test_bad_transform_options_are_one_line(runs, tmp_path, capsys):
    for arg, needle in (("VIX", "SERIES=TRANSFORM"), ("VIX=cube", "unknown transform 'cube'"),
                        ("GDP=diff", "GDP not among the series")):
        assert main(["train", "--data", "embedded", "--as-of", "2017-12-29", "--out", str(tmp_path / "x"),
                     "--preset", "tiny", "--max-steps", "1", "--no-progress", "--transform", arg]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
