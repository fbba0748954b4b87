"""Drift calibration of mean-reverting series (forecaster.market.drift).

A tiny day-level run of real series: the tilt moves VIX's sampled changes the way its
sign says and leaves the other series' draws to the model; the fast sampler still
equals its full-recompute reference with the tilt; the fit reads nothing after the
run's as-of date; a file fitted for other weights is refused; the CLI writes it and
forecasts record it.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster.cli import main
from forecaster.market.drift import (DRIFT_FILE, DriftCalibration, DriftError, PairDrift, SeriesDrift, default_series,
                                     fit_drift, history_abs_target, history_spike_target, history_target, load_drift,
                                     newton_step, parse_match, parse_pairs, parse_series)

SERIES = ["SPX", "VIX", "UST10Y"]
AS_OF = "2014-12-31"
FIT = dict(n_origins=3, n_paths=6, horizon=30, rounds=2, min_days=20, match=("mean", "spread", "spikes"),
           pairs=[("SPX", "UST10Y")])


def _write(panel: pd.DataFrame, path) -> str:
    panel.rename_axis("date").to_csv(path, float_format="%.6g")
    return str(path)


@pytest.fixture(scope="module")
def frame(shared_builder) -> pd.DataFrame:
    return shared_builder.build("2016-12-30")[SERIES].loc["2006-01-01":]


@pytest.fixture(scope="module")
def run(tmp_path_factory, frame):
    folder = tmp_path_factory.mktemp("drift")
    data = _write(frame, folder / "panel.csv")
    run = folder / "run"
    assert main(["train", "--data", data, "--as-of", AS_OF, "--panel-start", "2006-01-01", "--out", str(run),
                 "--preset", "day-tiny", "--max-steps", "12", "--eval-every", "6", "--no-progress"]) == 0
    return run, data


def _manual(pipe, lam: float, kappa: float = 0.0, eta: float = 0.0, gamma: float = 0.0,
            pair: tuple[str, str] = ("SPX", "UST10Y")) -> DriftCalibration:
    edges = [15.0, 25.0]
    d = SeriesDrift(edges, [lam] * 3, [0.0] * 3, [1] * 3, kappa=[kappa] * 3)
    if eta:
        d.spike, d.eta = 8.0, [eta] * 3
    pairs = [PairDrift(*pair, [2000.0], [gamma] * 2, [0.0] * 2, [1] * 2)] if gamma else []
    return DriftCalibration(pipe.model_hash, AS_OF, 1.0, {"VIX": d}, [], 0, 0, 0, pairs=pairs)


def _vix_changes(fc) -> np.ndarray:
    j = fc.series.index("VIX")
    full = np.concatenate([np.full((fc.paths.shape[0], 1), fc.history["VIX"].iloc[-1]), fc.paths[:, :, j]], axis=1)
    return 100 * np.diff(np.log(full), axis=1)


def test_the_tilt_moves_vix_the_way_its_sign_says(run):
    from forecaster.market.pipeline import ForecastPipeline

    run_dir, data = run
    pipe = ForecastPipeline.from_run(run_dir)
    assert default_series(pipe.series, pipe.transforms) == ["VIX"]  # daily, stationary, modeled by its changes
    means = {}
    for lam in (-0.1, 0.0, 0.1):
        pipe.drift = _manual(pipe, lam)
        fc = pipe.predict(data, "2016-06-30", n_paths=16, horizon=20, seed=3, temperature=1.0)
        means[lam] = float(_vix_changes(fc).mean())
        assert fc.meta["drift"] == {"series": ["VIX"], "as_of": AS_OF}
    assert means[-0.1] < means[0.0] - 0.5 < means[0.1] - 1.0
    # lambda 0 is the model's own distribution, to the bit: drift=False gives the same paths
    pipe.drift = _manual(pipe, 0.0)
    zero = pipe.predict(data, "2016-06-30", n_paths=16, horizon=20, seed=3, temperature=1.0)
    own = pipe.predict(data, "2016-06-30", n_paths=16, horizon=20, seed=3, temperature=1.0, drift=False)
    np.testing.assert_array_equal(zero.paths, own.paths)
    assert own.meta["drift"] is None


def test_the_spread_tilt_widens_or_narrows_vix_by_its_sign(run):
    from forecaster.market.pipeline import ForecastPipeline

    run_dir, data = run
    pipe = ForecastPipeline.from_run(run_dir)
    spread = {}
    for kappa in (-0.1, 0.0, 0.1):
        pipe.drift = _manual(pipe, 0.0, kappa)
        fc = pipe.predict(data, "2016-06-30", n_paths=16, horizon=20, seed=3, temperature=1.0)
        spread[kappa] = float(np.abs(_vix_changes(fc)).mean())
    assert spread[-0.1] < 0.85 * spread[0.0] and spread[0.1] > 1.15 * spread[0.0]
    spikes = {}
    for eta in (-1.5, 1e-12, 1.5):  # spike: a VIX log change above 8 %
        pipe.drift = _manual(pipe, 0.0, 0.0, eta)
        fc = pipe.predict(data, "2016-06-30", n_paths=16, horizon=20, seed=3, temperature=1.0)
        spikes[eta] = float((_vix_changes(fc) > 8.0).mean())
    assert spikes[-1.5] < 0.6 * spikes[1e-12] and spikes[1.5] > 1.5 * spikes[1e-12] > 0


def _sums(v, w, spike=None):
    """path_bucket_stats' sums for a "sample" of weights ``w`` over values ``v`` (a count of 1e6 days)."""
    f = [v, np.abs(v)] + ([(v > spike).astype(float)] if spike is not None else [])
    f = np.stack(f, axis=-1)
    n = 1e6
    return n * (w[:, None] * f).sum(0), n * (w[:, None, None] * f[:, :, None] * f[:, None, :]).sum(0), n


def test_a_pair_tilt_moves_the_co_movement_the_way_its_sign_says(run):
    from forecaster.market.pipeline import ForecastPipeline

    run_dir, data = run
    pipe = ForecastPipeline.from_run(run_dir)
    corr = {}
    for gamma in (-10.0, 1e-12, 10.0):
        pipe.drift = _manual(pipe, 0.0, gamma=gamma)
        fc = pipe.predict(data, "2016-06-30", n_paths=32, horizon=20, seed=3, temperature=1.0)
        full = np.concatenate([fc.history[fc.series].iloc[-1:].to_numpy()[None].repeat(32, 0), fc.paths], axis=1)
        spx = np.diff(np.log(full[:, :, fc.series.index("SPX")]), axis=1).ravel()
        ust = np.diff(full[:, :, fc.series.index("UST10Y")], axis=1).ravel()
        corr[gamma] = float(np.corrcoef(spx, ust)[0, 1])
    assert fc.meta["drift"]["pairs"] == ["SPX:UST10Y"]
    assert corr[-10.0] < corr[1e-12] - 0.1 and corr[10.0] > corr[1e-12] + 0.1
    pipe.drift = _manual(pipe, 0.0, gamma=1.0, pair=("UST10Y", "SPX"))   # the series drawn first cannot follow
    with pytest.raises(DriftError, match="drawn before"):
        pipe.predict(data, "2016-06-30", n_paths=2, horizon=2, seed=3, temperature=1.0)


def test_drift_pairs_parse_or_say_what_is_wrong():
    assert parse_pairs("UST2Y:UST10Y, SPX:XLK") == [("UST2Y", "UST10Y"), ("SPX", "XLK")]
    assert parse_pairs(None) == [] and parse_pairs(["A:B"]) == [("A", "B")]
    for bad in ("UST2Y", "UST2Y:UST2Y", "A:B:C", ":B"):
        with pytest.raises(DriftError, match="DRIVER:SERIES"):
            parse_pairs(bad)


def test_newton_steps_recover_a_tilt_of_the_mean_spread_and_spikes():
    rng = np.random.default_rng(0)
    v = np.linspace(-30, 30, 121)
    p = np.exp(-np.abs(v) / 5) * (1 + 0.2 * rng.random(len(v)))
    p /= p.sum()

    def tilted(theta, spike=None):
        f = [v, np.abs(v)] + ([(v > spike).astype(float)] if spike is not None else [])
        w = p * np.exp(sum(t * x for t, x in zip(theta, f)))
        return w / w.sum(), np.stack(f, axis=-1)

    for truth, spike in (([0.01, 0.02], None), ([0.01, 0.02, 0.4], 10.0)):
        q, f = tilted(truth, spike)
        target = (q[:, None] * f).sum(0)
        first = newton_step(*_sums(v, p, spike), target)
        assert first == pytest.approx(truth, rel=0.7)  # an indicator's tilt is far from linear
        fit = np.zeros(len(truth))
        for _ in range(5):  # Newton's steps, each from the tilted moments: the Jacobian is right if they converge
            fit += newton_step(*_sums(v, tilted(fit, spike)[0], spike), target)
        assert fit == pytest.approx(truth, rel=1e-4)
    # the mean only: the gap over the variance
    m = (p * v).sum()
    s1, s2, n = _sums(v, p)
    assert newton_step(s1[:1], s2[:1, :1], n, [0.5]) == pytest.approx([(0.5 - m) / ((p * v * v).sum() - m * m)])
    # a bucket without a spike: the spike's tilt stays, the others still move
    s1, s2, n = _sums(v, p, spike=100.0)
    step = newton_step(s1, s2, n, [0.5, 6.0, 0.01])
    assert step[2] == 0.0 and step[0] != 0.0 and step[1] != 0.0


def test_the_fast_sampler_equals_the_reference_with_the_tilt(run):
    from data_sources.calendar import business_days_after
    from forecaster.core.sampler import SamplingConfig, make_generator
    from forecaster.market.features import model_frame
    from forecaster.market.inputs import yoy_index_levels
    from forecaster.market.pipeline import ForecastPipeline

    run_dir, data = run
    pipe = ForecastPipeline.from_run(run_dir)
    pipe.drift = _manual(pipe, 0.15, 0.05, 0.8, gamma=4.0)   # every term of the tilt, and a pair
    builder = pipe.panel_builder(data)
    panel = builder.build("2016-06-30")[pipe.series]
    index_levels = yoy_index_levels(builder)
    need = pipe.prompt_rows(len(panel))
    frame = model_frame(panel, pipe.transforms, index_levels=index_levels)
    prompt = torch.from_numpy(pipe.tokenizer.encode(frame.iloc[-need:]))
    last = {c: float(panel[c].iloc[-1]) for c in pipe.series}
    horizon = pipe.model.config.context_rows + 6  # past the context: a slide
    dates = business_days_after(panel.index[-1], horizon)
    out = []
    for method in ("sample", "sample_reference"):
        sampler, feats, _ = pipe.day_sampling(panel, index_levels, last, 3, dates, need, drift_temperature=0.8)
        assert sampler.step_mask is not None
        out.append(getattr(sampler, method)(prompt, 3, horizon, make_generator(5), SamplingConfig(0.8),
                                            features=torch.from_numpy(feats)))
    assert torch.equal(out[0], out[1])


def test_the_fit_cannot_see_past_the_as_of_date(run, frame, tmp_path):
    run_dir, data = run
    base = fit_drift(run_dir, data, save=False, **FIT)
    assert base.as_of == AS_OF and all(pd.Timestamp(o) <= pd.Timestamp(AS_OF) for o in base.origins)
    vix = base.series["VIX"]
    assert len(vix.sampled) == FIT["rounds"] and len(vix.lam) == len(vix.edges) + 1
    assert any(v != 0 for v in vix.lam)  # the fit moved something (MIN_DAYS is met in some bucket)

    after = frame.copy()
    later = after.index > pd.Timestamp(AS_OF)
    after.loc[later] = after.loc[later].mul(np.linspace(1.0, 1.8, int(later.sum())), axis=0)
    moved = fit_drift(run_dir, _write(after, tmp_path / "after.csv"), save=False, **FIT)
    assert moved.series["VIX"].lam == vix.lam and moved.series["VIX"].target == vix.target
    assert moved.series["VIX"].kappa == vix.kappa and moved.series["VIX"].target_abs == vix.target_abs
    assert any(k != 0 for k in vix.kappa) and len(vix.sampled_abs) == FIT["rounds"]
    assert moved.series["VIX"].eta == vix.eta and moved.series["VIX"].spike == vix.spike
    assert len(vix.sampled_spike) == FIT["rounds"] and vix.match == ("mean", "spread", "spikes")
    (pair,) = base.pairs
    assert pair.name == "SPX:UST10Y" and len(pair.sampled) == FIT["rounds"] and any(g != 0 for g in pair.gamma)
    assert moved.pairs[0].gamma == pair.gamma and moved.pairs[0].target == pair.target

    inside = frame.copy()
    days = inside.index[inside.index <= pd.Timestamp(AS_OF)]
    inside.loc[days, "VIX"] = inside.loc[days, "VIX"] * np.linspace(1.0, 1.5, len(days))
    changed = fit_drift(run_dir, _write(inside, tmp_path / "inside.csv"), save=False, **FIT)
    assert changed.series["VIX"].target != vix.target  # the check above could fail: the fit reads the history


def test_a_series_can_match_its_spread_alone(run):
    """``VIX=spread``: the fit moves the spread tilt, and the mean tilt only to hold the untilted paths' mean."""
    run_dir, data = run
    fit = fit_drift(run_dir, data, {"VIX": ["spread"]}, save=False, **{**FIT, "pairs": []})
    vix = fit.series["VIX"]
    assert vix.match == ("spread",) and not vix.fit_mean and vix.eta == []
    assert any(k != 0 for k in vix.kappa) and len(vix.sampled) == len(vix.sampled_abs) == FIT["rounds"]
    assert len(vix.hold_mean) == len(vix.lam)   # held: the first (untilted) round's mean, where it had the days
    assert all(h is None or h == m for h, m in zip(vix.hold_mean, vix.sampled[0]))
    assert [vix.mean_target(b) for b in range(len(vix.lam))] == vix.hold_mean != vix.target
    held = [b for b, m in enumerate(vix.hold_mean) if m is not None]
    assert held and all(vix.lam[b] == 0 for b in range(len(vix.lam)) if b not in held)   # nothing to hold: no mean tilt
    assert DriftCalibration.from_dict(json.loads(json.dumps(fit.to_dict()))).series["VIX"].hold_mean == vix.hold_mean
    assert fit.options() == f"--drift-rounds {FIT['rounds']} --drift-series VIX=spread"
    assert parse_series(fit.options().split("--drift-series ")[1], []) == {"VIX": ["spread"]}
    history = fit_drift(run_dir, data, {"VIX": ["mean", "spread"]}, save=False, **{**FIT, "pairs": []}).series["VIX"]
    assert history.hold_mean == [] and [history.mean_target(b) for b in range(len(history.lam))] == history.target


def test_the_series_spec_gives_each_series_its_statistics():
    default = ["mean", "spread", "spikes"]
    assert parse_series(None, default) is None
    assert parse_series("VIX, UST2Y=spread", default) == {"VIX": default, "UST2Y": ["spread"]}
    assert parse_series("UST2Y=spikes+mean", default) == {"UST2Y": ["mean", "spikes"]}   # in MATCHES order
    for bad, says in (("UST2Y=", "SERIES=STATISTIC"), ("=spread", "SERIES=STATISTIC"),
                      ("UST2Y=tails", "unknown statistic tails for the drift fit (--drift-series UST2Y)")):
        with pytest.raises(DriftError, match=re.escape(says)):
            parse_series(bad, default)
    with pytest.raises(DriftError, match="no statistic"):
        parse_match(" , ")
    d = SeriesDrift([1.0], [0.0, 0.0], [0.5, 0.5], [1, 1], kappa=[0.0, 0.0], fit_mean=False, hold_mean=[0.1, None])
    assert d.match == ("spread",) and d.mean_target(0) == 0.1 and d.mean_target(1) is None


def test_history_target_is_the_mean_change_by_the_day_befores_level():
    from forecaster.market.transforms import get

    levels = pd.Series([10.0, 11.0, 12.0, 11.0, 30.0, 20.0] * 20, name="VIX")
    edges, target, days = history_target(levels, get("log_return"), quantiles=(0.5,))
    assert edges == [float(np.quantile(levels.to_numpy()[:-1], 0.5))]
    x = levels.to_numpy()
    change, prev = 100 * np.diff(np.log(x)), x[:-1]
    low = prev < edges[0]  # a bucket holds [its lower edge, its upper edge)
    assert target == pytest.approx([change[low].mean(), change[~low].mean()])
    assert days == [int(low.sum()), int((~low).sum())]
    assert history_abs_target(levels, get("log_return"), edges) == pytest.approx(
        [np.abs(change[low]).mean(), np.abs(change[~low]).mean()])
    spike, share = history_spike_target(levels, get("log_return"), edges, quantile=0.8)
    assert spike == pytest.approx(np.quantile(change, 0.8))
    assert share == pytest.approx([(change[low] > spike).mean(), (change[~low] > spike).mean()])


def test_a_mean_only_file_still_reads_and_a_bad_kappa_is_refused():
    doc = DriftCalibration("0" * 64, AS_OF, 1.0, {"VIX": SeriesDrift([15.0], [0.01, -0.02], [0.0, 0.0], [5, 5])},
                           [], 0, 0, 0).to_dict()
    for key in ("kappa", "target_abs", "sampled_abs"):  # a file written before the spread tilt
        del doc["series"]["VIX"][key]
    assert DriftCalibration.from_dict(doc).series["VIX"].kappa == []
    doc["series"]["VIX"]["kappa"] = [0.1]
    with pytest.raises(DriftError, match="one kappa"):
        DriftCalibration.from_dict(doc)


def test_the_cli_writes_it_and_a_file_for_other_weights_is_refused(run, capsys):
    from forecaster.market.pipeline import ForecastPipeline

    run_dir, data = run
    assert main(["calibrate", "--run", str(run_dir), "--keep-temperature"]) != 0
    assert "--keep-temperature only goes with --drift" in capsys.readouterr().err
    for bad, says in ((["--drift-pairs", "UST2Y"], "DRIVER:SERIES"), (["--drift-match", "mean,tails"], "unknown statistic"),
                      (["--drift-series", "VIX=tails"], "unknown statistic tails"),
                      (["--drift-pairs", "UST10Y:SPX", "--keep-temperature"], "SPX is drawn before UST10Y")):
        assert main(["calibrate", "--run", str(run_dir), "--drift", *bad]) != 0   # refused before any sampling
        assert says in capsys.readouterr().err
    assert main(["calibrate", "--run", str(run_dir), "--data", data, "--drift", "--keep-temperature",
                 "--drift-rounds", "1", "--no-progress"]) == 0
    assert "VIX drift" in capsys.readouterr().out
    cal = load_drift(run_dir)
    assert cal is not None and set(cal.series) == {"VIX"}
    assert ForecastPipeline.from_run(run_dir).drift is not None
    doc = json.loads((run_dir / DRIFT_FILE).read_text())
    doc["weights"] = "0" * 64
    (run_dir / DRIFT_FILE).write_text(json.dumps(doc))
    with pytest.raises(DriftError, match="fitted for other weights"):
        ForecastPipeline.from_run(run_dir)
    (run_dir / DRIFT_FILE).unlink()


def test_a_backtest_must_start_after_the_drift_fit(tmp_path):
    from forecaster.market.drift import check_drift_origins

    check_drift_origins(tmp_path, "2000-01-03")  # no drift.json: nothing to refuse
    (tmp_path / DRIFT_FILE).write_text(json.dumps({"as_of": "2017-12-29"}))
    check_drift_origins(tmp_path, "2018-01-02")
    with pytest.raises(DriftError, match="a test origin must come after it"):
        check_drift_origins(tmp_path, "2017-12-29")


def test_the_temperature_is_chosen_without_the_drift_tilts(run, capsys):
    """A drift fit reads history to the run's as-of date, past the validation window: the choice must not use it."""
    from forecaster.market.calibration import calibrate
    from forecaster.market.pipeline import ForecastPipeline

    run_dir, data = run
    kw = dict(temperatures=(0.5, 2.0), n_paths=8, every="3M", horizons=(5, 21))
    before = calibrate(run_dir, data, save=False, **kw)
    pipe = ForecastPipeline.from_run(run_dir)
    strong = _manual(pipe, 0.2)
    strong.temperature, strong.rounds = 0.5, 8
    (run_dir / DRIFT_FILE).write_text(json.dumps(strong.to_dict()))
    try:
        tilted = ForecastPipeline.from_run(run_dir)
        assert tilted.drift is not None   # forecasts of the run apply the file: it does move VIX
        on = tilted.predict(data, "2014-06-30", n_paths=8, horizon=10, seed=1, temperature=1.0)
        off = tilted.predict(data, "2014-06-30", n_paths=8, horizon=10, seed=1, temperature=1.0, drift=False)
        assert not np.array_equal(on.paths, off.paths)
        after = calibrate(run_dir, data, save=False, **kw)
        assert after.scores == before.scores and after.by_series == before.by_series
        assert main(["calibrate", "--run", str(run_dir), "--data", data, "--temperatures", "0.5,2", "--paths", "8",
                     "--every", "3M", "--horizons", "5,21"]) == 0
        chosen = json.loads((run_dir / "calibration.json").read_text())["temperature"]
        err = capsys.readouterr().err
        assert (f"drift tilts ({run_dir / DRIFT_FILE}) were fitted at temperature 0.5" in err) == (chosen != 0.5)
        assert ("--keep-temperature --drift-rounds 8 --drift-series VIX=mean+spread" in err) == (chosen != 0.5)
    finally:
        (run_dir / DRIFT_FILE).unlink()
        (run_dir / "calibration.json").unlink(missing_ok=True)
