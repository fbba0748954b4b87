"""Pure figure builders of the dashboard, called directly on small hand-made inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import figures
from data_sources.calendar import business_days_after
from forecaster.market.forecast import Forecast
from forecaster.market.regimes import INFLATION, VOLATILITY, regime_probabilities

SERIES = ["SPX", "VIX", "WTI", "CORE_CPI_YOY"]


def make_forecast(n_paths=64, horizon=30, seed=0) -> Forecast:
    """A forecast object with random-walk paths around realistic levels (no model needed for figure tests)."""
    rng = np.random.default_rng(seed)
    hist_dates = pd.bdate_range("2018-01-01", "2018-12-31", name="date")
    last = np.array([2500.0, 25.0, 45.0, 2.2])
    history = pd.DataFrame(last * np.exp(rng.normal(0, 0.01, (len(hist_dates), 4)).cumsum(0)), index=hist_dates, columns=SERIES)
    history.iloc[-1] = last
    paths = last * np.exp(rng.normal(0, [0.01, 0.05, 0.02, 0.01], (n_paths, horizon, 4)).cumsum(1))
    as_of = hist_dates[-1]
    return Forecast(as_of, business_days_after(as_of, horizon), SERIES, paths, history, {"seed": seed})


@pytest.fixture(scope="module")
def fc():
    return make_forecast()


def _trace(fig: go.Figure, name: str):
    matches = [t for t in fig.data if t.name == name]
    assert matches, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return matches[0]


def test_fan_chart_median_bands_history_and_units(fc):
    fig = figures.fan_chart(fc, "VIX", history_days=100)
    median = _trace(fig, "VIX median")
    np.testing.assert_allclose(np.asarray(median.y, float), np.nanquantile(fc.column("VIX"), 0.5, axis=0))
    hist = _trace(fig, "VIX history")
    assert pd.Timestamp(hist.x[-1]) == fc.as_of and len(hist.x) == 100  # history ends at the as-of date
    assert pd.Timestamp(median.x[0]) == fc.dates[0]  # the fan starts the next business day
    for band in ("90%", "80%", "50%"):
        lo = _trace(fig, f"VIX {band} band")
        assert lo.fill == "tonexty"
    assert fig.layout.yaxis.title.text == "VIX (index points)"
    assert "CBOE Volatility Index" in fig.layout.title.text
    assert median.line.color == figures.series_color("VIX")
    assert median.hovertemplate and "index points" in median.hovertemplate


def test_fan_chart_bands_are_nested_and_sample_paths_optional(fc):
    fig = figures.fan_chart(fc, "SPX")
    q = figures.fan_quantiles(fc.column("SPX"))
    assert np.all(q[0.05] <= q[0.10]) and np.all(q[0.25] <= q[0.5]) and np.all(q[0.9] <= q[0.95])
    assert not any(t.name == "sample paths" for t in fig.data)
    with_paths = figures.fan_chart(fc, "SPX", n_sample_paths=5)
    assert len(with_paths.data) == len(fig.data) + 5
    other = figures.fan_chart(fc, "WTI")
    assert not np.allclose(np.asarray(_trace(other, "WTI median").y, float), np.asarray(_trace(fig, "SPX median").y, float))


def test_series_colours_are_stable_and_distinct():
    assert figures.series_color("SPX") == figures.series_color("SPX")
    assert len({figures.series_color(s) for s in SERIES}) == 4
    assert figures.series_color("SOMETHING_NEW").startswith("#")
    assert list(figures.regime_colors(VOLATILITY.labels)) == list(VOLATILITY.labels)


def test_regime_stack_sums_to_100_and_bars_show_one_day(fc):
    probs = regime_probabilities(fc, VOLATILITY)
    fig = figures.regime_stack(probs, VOLATILITY)
    total = sum(np.asarray(t.y, float) for t in fig.data)
    np.testing.assert_allclose(total, 100.0)
    assert [t.name for t in fig.data] == list(VOLATILITY.labels)
    bars = figures.regime_bars(probs.iloc[9], VOLATILITY, 10, fc.dates[9])
    np.testing.assert_allclose(sum(bars.data[0].x), 100.0)
    assert "day 10" in bars.layout.title.text


def test_regime_history_has_dates_and_labels(fc):
    fig = figures.regime_history(fc.history["CORE_CPI_YOY"], INFLATION)
    assert fig.layout.xaxis.type == "date"
    line = _trace(fig, "CORE_CPI_YOY")
    assert set(line.customdata) <= set(INFLATION.labels)
    assert figures.regime_history(pd.Series(dtype=float), INFLATION).layout.annotations  # explained empty state


def test_summary_rows_round_and_label(fc):
    rows = figures.summary_rows(fc, days=(21,))
    assert [r["series"] for r in rows] == SERIES
    assert rows[1]["unit"] == "index points" and rows[1]["horizon"] == "21d"
    assert rows[0]["q05"] <= rows[0]["q50"] <= rows[0]["q95"]


def test_compare_chart_shows_base_and_stress(fc):
    stressed = make_forecast(seed=3)
    stressed.paths[:, :, 1] += 20
    fig = figures.compare_chart(fc, stressed, "VIX")
    base, stress = _trace(fig, "base median"), _trace(fig, "stress median")
    assert np.all(np.asarray(stress.y, float) > np.asarray(base.y, float))


def test_backtest_figures():
    cov = pd.DataFrame({"horizon": [1, 21, 1, 21], "nominal": [0.5, 0.5, 0.9, 0.9], "coverage": [0.4, 0.5, 0.8, 0.95]})
    fig = figures.coverage_chart(cov)
    assert len(fig.data) == 2 and list(fig.data[1].y) == [80.0, 95.0]
    rng = np.random.default_rng(0)
    pit = figures.pit_histogram(rng.uniform(size=20000))
    np.testing.assert_allclose(pit.data[0].y, 1.0, atol=0.1)  # uniform PIT: flat at density 1
    assert figures.pit_histogram(np.array([np.nan])).layout.annotations
    skill = figures.skill_chart(pd.DataFrame({"series": ["1d", "21d"], "model": ["vs rw", "vs rw"], "skill": [0.1, -0.2]}))
    assert list(skill.data[0].y) == [0.1, -0.2]
    assert figures.coverage_chart(pd.DataFrame()).layout.annotations


def test_distribution_compare_numeric_and_categorical():
    rng = np.random.default_rng(0)
    real = pd.Series(rng.lognormal(3, 1, 5000))
    fig = figures.distribution_compare(real, real * 2, "Amount")
    assert [t.name.split(" ")[0] for t in fig.data] == ["real", "synthetic"]
    np.testing.assert_allclose(sum(fig.data[0].y), 100.0)
    cat = figures.distribution_compare(pd.Series(["a", "a", "b"]), pd.Series(["b", "b", "b"]), "Use Chip")
    assert list(cat.data[0].x) == ["a", "b"] and list(cat.data[1].y) == [0.0, 100.0]


def test_data_figures(fc):
    fig = figures.series_chart(fc.history, "WTI")
    assert fig.data[0].line.color == figures.series_color("WTI") and fig.layout.xaxis.rangeslider.visible
    panel = fc.history.copy()
    panel.loc[:"2018-06-30", "VIX"] = np.nan
    heat = figures.coverage_heatmap(panel)
    z = np.asarray(heat.data[0].z)
    assert z.shape == (4, 1) and 0 < z[1, 0] < 100 and z[0, 0] == 100
    metrics = pd.DataFrame({"step": [10, 20, 20], "loss": [3.0, 2.0, 2.5], "split": ["train", "train", "val"]})
    assert [t.name for t in figures.learning_curve(metrics).data] == ["train loss", "val loss"]
