"""The final refit (forecaster.market.refit, `forecaster refit`).

A tiny day-level run is trained with a validation window and calibrated; its refit
must train on every day to the as-of date (the base run's validation days included),
for the step of the base run's lowest validation loss, on the base run's learning-rate
schedule, keep its recipe (series, transforms, bins), inherit its calibration, and
forecast. What it cannot do (be calibrated on its own past, refit a run with no
validation record) is a one-line error.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest
from safetensors.torch import load_file

from forecaster.cli import main
from forecaster.core.training.config import ConfigError, TrainConfig
from forecaster.core.training.metrics import read_metrics
from forecaster.market.calibration import calibrate, load_calibration
from forecaster.market.refit import best_step

SERIES = ["SPX", "VIX", "UST3M", "UST10Y"]
AS_OF = "2014-12-31"


@pytest.fixture(scope="module")
def base(tmp_path_factory, shared_builder):
    folder = tmp_path_factory.mktemp("refit")
    data = folder / "panel.csv"
    shared_builder.build("2016-12-30")[SERIES].loc["2008-01-01":].rename_axis("date").to_csv(data, float_format="%.6g")
    run = folder / "base"
    assert main(["train", "--data", str(data), "--as-of", AS_OF, "--panel-start", "2008-01-01", "--out", str(run),
                 "--preset", "day-tiny", "--max-steps", "16", "--eval-every", "4", "--transform", "UST3M=shifted_log",
                 "--bins", "24", "--no-progress"]) == 0
    calibrate(run, str(data), temperatures=(0.5, 2.0), n_paths=4, every="3M", horizons=(5,))
    return run, data


def _info(run) -> dict:
    return json.loads((run / "run.json").read_text())


def test_a_refit_trains_the_base_recipe_on_every_day_for_its_best_step_count(base, tmp_path, capsys):
    run, data = base
    out = tmp_path / "refit"
    assert main(["refit", "--run", str(run), "--out", str(out), "--no-progress"]) == 0
    assert "no validation (a refit)" in capsys.readouterr().out

    b, r = _info(run), _info(out)
    assert pd.Timestamp(b["train_range"][1]) < pd.Timestamp(b["val_range"][0])  # the base held days out ...
    assert r["train_range"][1] == b["val_range"][1] == r["last_date"]             # ... the refit trains on them
    assert r["val_start"] is None and not r.get("val_range")
    assert r["refit_of"] == str(run.resolve())
    assert (r["series"], r["transforms"], r["bins"], r["as_of"]) == (b["series"], b["transforms"], b["bins"], b["as_of"])

    steps = best_step(run)
    vals = [m for m in read_metrics(run) if m["split"] == "val"]
    assert steps == min(vals, key=lambda m: m["loss"])["step"]
    cfg = json.loads((out / "train_config.json").read_text())
    assert (cfg["max_steps"], cfg["schedule_steps"], cfg["val_fraction"], cfg["patience"]) == (steps, 16, 0.0, 0)
    # the base run's learning-rate schedule, stopped at its best step; no validation loss logged
    base_lr = {m["step"]: m["lr"] for m in read_metrics(run) if m["split"] == "train"}
    refit = read_metrics(out)
    assert refit and all(m["split"] == "train" for m in refit)
    assert all(m["lr"] == pytest.approx(base_lr[m["step"]]) for m in refit if m["step"] in base_lr)
    assert max(m["step"] for m in refit) == steps

    # the best weights are the weights at the last step, and they differ from the base run's best
    latest = json.loads((out / "checkpoint" / "latest.json").read_text())
    last = latest["step"]
    final = load_file(out / "checkpoint" / latest["dir"] / "model.safetensors")
    best = load_file(out / "best.safetensors")
    assert last == steps and final.keys() == best.keys() and all((final[k] == best[k]).all() for k in final)
    assert any(not (best[k] == load_file(run / "best.safetensors")[k]).all() for k in best)

    cal, base_cal = load_calibration(out), load_calibration(run)
    assert cal.temperature == base_cal.temperature and cal.from_run == str(run.resolve())
    assert base_cal.from_run is None

    fc_out = tmp_path / "fc"
    assert main(["forecast", "--run", str(out), "--as-of", AS_OF, "--paths", "4", "--horizon", "10", "--out", str(fc_out),
                 "--no-progress"]) == 0


def test_a_refit_cannot_be_calibrated_on_its_own_past(base, tmp_path, capsys):
    run, data = base
    out = tmp_path / "refit"
    assert main(["refit", "--run", str(run), "--out", str(out), "--steps", "3", "--no-progress"]) == 0
    assert json.loads((out / "train_config.json").read_text())["max_steps"] == 3
    # stopped at step 3 of the base run's 16-step schedule, not at the end of a 3-step one
    base_cfg = TrainConfig.from_json((run / "train_config.json").read_text())
    (logged,) = [m for m in read_metrics(out) if m["step"] == 3]
    assert logged["lr"] == pytest.approx(base_cfg.lr_at(2)) and base_cfg.lr_at(2) > base_cfg.lr_at(15)
    capsys.readouterr()
    assert main(["calibrate", "--run", str(out), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a refit of" in err and "inherits" in err


def test_refit_refusals_are_one_line_errors(base, tmp_path, capsys):
    run, _ = base
    assert main(["refit", "--run", str(run), "--out", str(run), "--no-progress"]) == 2
    assert "is the run itself" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model_config.json", "train_config.json", "run.json"):
        (bare / name).write_text((run / name).read_text())
    assert main(["refit", "--run", str(bare), "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no validation loss" in err and "--steps" in err
    assert not (tmp_path / "x" / "run.json").exists()


def test_no_validation_means_a_fixed_step_count():
    with pytest.raises(ConfigError, match="patience"):
        TrainConfig(val_fraction=0.0, patience=3)
    cfg = TrainConfig(val_fraction=0.0, max_steps=5, schedule_steps=50, warmup_steps=1)
    assert cfg.lr_at(4) == pytest.approx(TrainConfig(max_steps=50, warmup_steps=1).lr_at(4))
    assert cfg.lr_at(4) > TrainConfig(max_steps=5, warmup_steps=1).lr_at(4)


def test_the_python_api_refits_and_returns_a_pipeline(base, tmp_path):
    import forecaster

    run, _ = base
    pipe = forecaster.refit(run, tmp_path / "api", steps=2)
    assert pipe.series == _info(run)["series"]
    assert json.loads((tmp_path / "api" / "run.json").read_text())["refit_steps"] == 2
