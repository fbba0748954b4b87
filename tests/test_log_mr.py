"""The ``log_mr`` transform (VIX's log change with its mean reversion taken out): the round trip
on real VIX, the fit on the training days only, the refusals, and a forecast of a run that uses it."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecaster.market.transforms import LogMeanReverting, get, is_known, transforms_for


def test_round_trip_on_real_vix_and_stepwise_integrate_is_integrate(shared_panel):
    x = shared_panel["VIX"].dropna().to_numpy()
    t = LogMeanReverting.fit(x[:5000], "VIX")
    v = t.forward(x)
    assert np.isnan(v[0]) and np.isfinite(v[1:]).all()
    np.testing.assert_allclose(t.integrate(x[0], v[1:]), x[1:], rtol=1e-9)
    np.testing.assert_allclose(t.step(x[:-1], v[1:]), x[1:], rtol=1e-12)
    np.testing.assert_allclose(t.value_for_level(x[:-1], x[1:]), v[1:], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(t.change_from_origin(x[5], x[0]), 100 * np.log(x[5] / x[0]))
    # the model values of the fitted days are the AR(1)'s residuals: mean zero, no slope on the log level
    r, prev = v[1:5000], np.log(x[:4999])
    assert abs(r.mean()) < 1e-9 and abs(np.polyfit(prev, r, 1)[0]) < 1e-9
    # a (paths, horizon, series) array, stepped path by path, is the same as one path at a time
    steps = np.stack([v[1:40], v[41:80]])[:, :, None].repeat(2, axis=2)
    got = t.integrate(np.array([x[0], 30.0]), steps, axis=-2)
    np.testing.assert_array_equal(got[1, :, 1], t.integrate(30.0, steps[1, :, 1]))


def test_fit_recovers_a_simulated_ar1_and_zero_shocks_decay_to_the_mean():
    rng = np.random.default_rng(0)
    kappa, mu = 0.02, np.log(18.0)
    y = np.empty(20_000)
    y[0] = mu
    for t in range(1, len(y)):
        y[t] = y[t - 1] - kappa * (y[t - 1] - mu) + 0.05 * rng.standard_normal()
    fit = LogMeanReverting.fit(np.exp(y))
    assert fit.kappa == pytest.approx(kappa, rel=0.15) and np.exp(fit.mu) == pytest.approx(18.0, rel=0.05)
    path = fit.integrate(11.0, np.zeros(1000))
    assert path[0] > 11.0 and np.all(np.diff(path) > 0) and path[-1] == pytest.approx(np.exp(fit.mu), rel=1e-6)
    # a missing value leaves the level where it was
    np.testing.assert_array_equal(fit.integrate(11.0, np.array([np.nan, np.nan]))[-1], 11.0)


def test_the_fitted_form_is_a_name_that_reads_back_and_bad_forms_are_refused():
    t = LogMeanReverting(kappa=0.0163, mu=2.89)
    assert get(t.name) == t and str(t) == t.name == "log_mr(kappa=0.0163, mu=2.89)"
    assert transforms_for(["VIX"], {"VIX": t.name}) == [t]
    assert is_known("log_mr") and is_known(t.name) and not is_known("log_mrx")
    with pytest.raises(ValueError, match="fitted on a run's training days"):
        get("log_mr")
    with pytest.raises(ValueError, match="0 < kappa < 1"):
        get("log_mr(kappa=1.5, mu=2.9)")
    with pytest.raises(ValueError, match="does not revert"):  # the log level accelerates away
        LogMeanReverting.fit(np.exp(0.0001 * np.arange(400.0) ** 2))
    with pytest.raises(ValueError, match="needs a year"):
        LogMeanReverting.fit(np.full(100, 20.0))


def test_training_fits_it_on_the_days_before_the_validation_start_and_a_forecast_follows(tmp_path):
    """train --transform VIX=log_mr records the fit of the training days only; forecast and a VIX shock use it;
    a retraining from the recorded form fits its own days."""
    from data_sources.panel import PanelBuilder
    from forecaster.cli import main
    from forecaster.market.forecast import Forecast
    from forecaster.market.train import TrainInputError, _chosen_transforms, _fit_transforms

    run, out = tmp_path / "mr", tmp_path / "fc"
    assert main(["train", "--data", "embedded", "--as-of", "2017-12-29", "--out", str(run), "--preset", "day-tiny",
                 "--max-steps", "10", "--eval-every", "10", "--transform", "VIX=log_mr", "--no-progress"]) == 0
    info = json.loads((run / "run.json").read_text())
    t = get(info["transforms"]["VIX"])
    panel = PanelBuilder("embedded").build(pd.Timestamp("2017-12-29"))
    vix = panel["VIX"]
    split = pd.Timestamp(info["val_start"])
    assert t == LogMeanReverting.fit(vix[vix.index < split].to_numpy(), "VIX")
    assert t != LogMeanReverting.fit(vix.to_numpy(), "VIX")  # the validation days are not in the fit
    assert main(["forecast", "--run", str(run), "--as-of", "2018-12-31", "--paths", "8", "--horizon", "25",
                 "--shock", "VIX:level=40:days=1-5", "--out", str(out), "--no-progress"]) == 0
    fc = Forecast.load(out)
    assert np.isfinite(fc.paths).all() and fc.paths.min() > 0
    np.testing.assert_allclose(fc.column("VIX")[:, 2:5], 40.0, rtol=0.01)  # forced through value_for_level

    chosen = _chosen_transforms({"VIX": t.name}, panel.columns)
    assert chosen["VIX"] == "log_mr"  # a base run's fitted form is refitted on the retraining's own days
    later = _fit_transforms(chosen, panel, pd.Timestamp("2017-12-01"))
    assert get(later["VIX"]) == LogMeanReverting.fit(vix[vix.index < "2017-12-01"].to_numpy(), "VIX")
    runaway = pd.DataFrame({"X": np.exp(0.0001 * np.arange(400.0) ** 2)}, index=pd.bdate_range("2000-01-03", periods=400))
    with pytest.raises(TrainInputError, match="transforms: log_mr: X does not revert"):
        _fit_transforms({"X": "log_mr"}, runaway, pd.Timestamp("2002-01-01"))
