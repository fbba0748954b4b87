"""Calibration of the sampling temperature on a validation window (forecaster.market.calibration).

A tiny day-level run is trained on a wide panel file of real series; the calibration
must not see anything after its window (altering those values leaves the choice and
every score unchanged, while altering values inside the window changes the scores),
forecasts then sample at the chosen temperature, and a backtest that starts inside the
window is refused.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecaster.cli import main
from forecaster.market.calibration import (Calibration, CalibrationError, calibrate, check_test_origins, choose,
                                           load_calibration, origin_block, relative_scores, score_spread)

SERIES = ["SPX", "VIX", "UST10Y"]
AS_OF = "2014-12-31"
KW = dict(temperatures=(0.5, 2.0), n_paths=8, every="3M", horizons=(5, 21))


def _write(panel: pd.DataFrame, path) -> str:
    panel.rename_axis("date").to_csv(path, float_format="%.6g")
    return str(path)


@pytest.fixture(scope="module")
def frame(shared_builder) -> pd.DataFrame:
    return shared_builder.build("2016-12-30")[SERIES].loc["2008-01-01":]


@pytest.fixture(scope="module")
def run(tmp_path_factory, frame):
    folder = tmp_path_factory.mktemp("calib")
    data = _write(frame, folder / "panel.csv")
    run = folder / "run"
    assert main(["train", "--data", data, "--as-of", AS_OF, "--panel-start", "2008-01-01", "--out", str(run),
                 "--preset", "day-tiny", "--max-steps", "12", "--eval-every", "6", "--no-progress"]) == 0
    return run, data


def test_the_choice_cannot_see_past_the_validation_window(run, frame, tmp_path):
    run_dir, data = run
    info = json.loads((run_dir / "run.json").read_text())
    start, end = pd.Timestamp(info["val_range"][0]), pd.Timestamp(info["val_range"][1])
    assert pd.Timestamp(info["train_range"][1]) < start <= end <= pd.Timestamp(AS_OF)
    base = calibrate(run_dir, data, save=False, **KW)
    assert (base.validation_start, base.validation_end) == (str(start.date()), str(end.date()))
    assert len(base.origins) >= 2 and all(start <= pd.Timestamp(o) <= end for o in base.origins)

    after = frame.copy()
    later = after.index > end
    # every value after the window, far from what happened (a smooth ramp: no jump for the outlier check)
    after.loc[later] = after.loc[later].mul(np.linspace(1.0, 1.8, int(later.sum())), axis=0)
    moved = calibrate(run_dir, _write(after, tmp_path / "after.csv"), save=False, **KW)
    assert moved.temperature == base.temperature
    assert moved.scores == base.scores and moved.by_series == base.by_series
    assert moved.score_se == base.score_se and set(base.score_se) == set(base.scores) and base.tie_se == 1.0

    inside = frame.copy()
    days = inside.index[(inside.index > pd.Timestamp(base.origins[0])) & (inside.index <= end)]
    inside.loc[days, "SPX"] = inside.loc[days, "SPX"] * np.linspace(1.0, 1.3, len(days))
    changed = calibrate(run_dir, _write(inside, tmp_path / "inside.csv"), save=False, **KW)
    assert changed.scores != base.scores  # the check above could fail: the scores do read the window


def test_forecasts_sample_at_the_recorded_temperature_and_backtests_start_after_it(run, tmp_path):
    from forecaster.market.pipeline import ForecastPipeline

    run_dir, data = run
    assert main(["calibrate", "--run", str(run_dir), "--data", data, "--temperatures", "0.5,2", "--paths", "8",
                 "--every", "3M", "--horizons", "5,21", "--no-progress"]) == 0
    cal = load_calibration(run_dir)
    assert cal is not None and cal.temperature in (0.5, 1.0, 2.0)
    assert set(cal.scores) == {"0.5", "1", "2"} and cal.scores["1"] == pytest.approx(1.0)
    pipe = ForecastPipeline.from_run(run_dir)
    fc = pipe.predict(data, "2016-06-30", n_paths=4, horizon=5, seed=1)
    assert fc.meta["sampling"]["temperature"] == cal.temperature
    assert fc.meta["calibration"]["validation"] == [cal.validation_start, cal.validation_end]
    given = pipe.predict(data, "2016-06-30", n_paths=4, horizon=5, seed=1, temperature=1.0)
    assert given.meta["sampling"]["temperature"] == 1.0 and given.meta["calibration"] is None

    with pytest.raises(CalibrationError, match="look-ahead"):
        check_test_origins(run_dir, cal.validation_end)
    check_test_origins(run_dir, pd.Timestamp(cal.validation_end) + pd.offsets.BDay(1))

    # a backtest of the run samples at the calibrated temperature, and may not start inside the window
    out = tmp_path / "bt"
    assert main(["backtest", "--run", str(run_dir), "--data", data, "--first-origin", "2016-01-29",
                 "--last-origin", "2016-01-29", "--paths", "4", "--horizon", "5", "--baselines", "random_walk",
                 "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "backtest.json").read_text())["config"]["temperature"] == cal.temperature
    assert main(["backtest", "--run", str(run_dir), "--data", data, "--first-origin", cal.origins[-1],
                 "--last-origin", "2016-01-29", "--paths", "4", "--horizon", "5", "--baselines", "random_walk",
                 "--out", str(tmp_path / "bt2"), "--no-progress"]) == 2
    # a temperature given by hand does not use the calibration, so its window does not bind a backtest
    # that retrains (the long window at temperature 1)
    retrain = ["backtest", "--run", str(run_dir), "--data", data, "--first-origin", cal.origins[-1],
               "--last-origin", cal.origins[-1], "--paths", "4", "--horizon", "5", "--baselines", "random_walk",
               "--retrain-every", "12", "--retrain-steps", "2", "--no-progress"]
    assert main(retrain + ["--out", str(tmp_path / "bt3")]) == 2  # at the calibrated temperature: refused
    assert main(retrain + ["--temperature", "1", "--out", str(tmp_path / "bt4")]) == 0


def test_bad_calibration_requests_are_one_line_errors(run, capsys):
    run_dir, data = run
    assert main(["calibrate", "--run", str(run_dir), "--data", data, "--temperatures", "hot", "--no-progress"]) == 2
    assert main(["calibrate", "--run", str(run_dir), "--data", data, "--validation-start", "2010-01-04",
                 "--no-progress"]) == 2
    assert main(["calibrate", "--run", str(run_dir), "--data", data, "--tie-se", "-1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--temperatures 'hot'" in err[0] and "not after the run's training data" in err[1]
    assert "--tie-se must be a number of standard errors, 0 or more, got -1" in err[2]


def test_relative_scores_and_the_tie_rule():
    idx = pd.MultiIndex.from_product([["2015-01-30", "2015-03-31"], ["A", "B"], [5]],
                                     names=["origin", "series", "horizon"])
    ref = pd.Series([1.0, 10.0, 3.0, 30.0], index=idx)
    scores, by_series = relative_scores({1.0: ref, 0.9: ref * 0.5, 1.1: ref * np.array([2.0, 0.5, 2.0, 0.5])})
    assert scores[1.0] == 1.0 and scores[0.9] == 0.5
    assert scores[1.1] == pytest.approx((2.0 + 0.5) / 2)  # each series weighs alike whatever its units
    assert by_series[1.1] == {"A": 2.0, "B": 0.5}
    assert choose({0.9: 0.7, 1.0: 0.8, 1.25: 0.7}) == 0.9
    assert choose({0.8: 0.5, 1.2: 0.5}) == 0.8
    # the one-standard-error rule: a candidate nearer 1 within tie_se errors of the best wins
    scores = {0.8: 0.97, 0.9: 0.98, 1.0: 1.0}
    assert choose(scores) == 0.8 and choose(scores, {0.8: 0.0, 0.9: 0.005, 1.0: 0.02}, tie_se=0.0) == 0.8
    assert choose(scores, {0.8: 0.0, 0.9: 0.015, 1.0: 0.02}) == 0.9
    assert choose(scores, {0.8: 0.0, 0.9: 0.015, 1.0: 0.04}) == 1.0
    assert choose(scores, {0.8: 0.0, 0.9: 0.025, 1.0: 0.04}, tie_se=0.5) == 0.9


def _crps(ratios: np.ndarray, seed: int = 0) -> dict[float, pd.Series]:
    """Reference CRPS values for 16 origins x 2 series x 2 horizons, and a candidate ``ratios`` (per origin) of them."""
    idx = pd.MultiIndex.from_product([pd.bdate_range("2015-01-30", periods=16, freq="42B"), ["A", "B"], [21, 250]],
                                     names=["origin", "series", "horizon"])
    ref = pd.Series(np.random.default_rng(seed).uniform(1.0, 3.0, len(idx)), index=idx)
    return {1.0: ref, 0.9: ref * np.repeat(ratios, 4)}


def test_the_score_spread_is_a_block_bootstrap_over_the_origins():
    steady = score_spread(_crps(np.full(16, 0.98)), block=6)
    assert steady[0.9] == 0.0 and steady[1.0] == pytest.approx(0.0, abs=1e-12)   # 2 % better at every origin: no doubt
    swings = np.random.default_rng(5).uniform(0.7, 1.3, 16)                       # better or worse, origin by origin
    noisy = score_spread(_crps(swings * 0.99), block=6)
    scores, _ = relative_scores(_crps(swings * 0.99))
    best = min(scores, key=scores.get)
    assert noisy[best] == 0.0 and noisy[1.0 if best == 0.9 else 0.9] > abs(scores[0.9] - 1.0)
    assert score_spread(_crps(swings * 0.99), block=6) == noisy                     # seeded: the same every time
    # a calendar of business days, origins every 2 months, a 250-day horizon: 6 origins share outcome days
    calendar = pd.bdate_range("2015-01-01", "2018-12-31")
    origins = pd.bdate_range("2015-03-31", periods=16, freq="42B")
    assert origin_block(origins, calendar, 250) == 6 and origin_block(origins[:1], calendar, 250) == 1


def test_a_damaged_calibration_file_is_refused(tmp_path):
    (tmp_path / "calibration.json").write_text("{not json")
    with pytest.raises(CalibrationError, match="not a calibration file"):
        load_calibration(tmp_path)
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": 1.0, "surprise": 1}))
    with pytest.raises(CalibrationError):
        load_calibration(tmp_path)
    assert Calibration.from_dict(Calibration(1.0, "a", "b", [], 2, 0, [5], {}).to_dict()).temperature == 1.0
