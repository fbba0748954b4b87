"""Calibration in the backtest report: PIT histograms with their band and tests, coverage by horizon with intervals,
regime Brier/RPS tables; known inputs (calibrated, too narrow, too wide forecasts) give the known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecaster.market.backtest import metrics, summary
from forecaster.market.backtest.report import coverage_figure, pit_horizon_figure

N_ORIGINS = 300
MEMBERS = 200


def _scores(spread: dict[str, float], horizons=(1, 21), seed: int = 0) -> pd.DataFrame:
    """Long score table of models whose ensembles are N(0, spread^2) against outcomes from N(0, 1), through the product's
    scorer (``metrics.score_series``); origins 21 business days apart, so a 21-day forecast overlaps no other."""
    rng = np.random.default_rng(seed)
    origins = pd.bdate_range("1990-01-01", periods=N_ORIGINS, freq="21B")
    rows = []
    for o in origins:
        obs = rng.standard_normal(max(horizons))
        for model, sd in spread.items():
            paths = sd * rng.standard_normal((MEMBERS, max(horizons)))
            res = metrics.score_series(paths, obs, list(horizons), rng)
            for i, h in enumerate(horizons):
                rows.append({"origin": o, "model": model, "kind": "series", "name": "VIX", "horizon": h,
                             **{k: float(v[i]) for k, v in res.items()}})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return _scores({"gpt": 1.0, "narrow": 0.5, "wide": 2.0})


def test_pit_band_is_the_binomial_range_of_a_calibrated_bin():
    lo, hi = summary.pit_band(1000, 10)
    # 1000 PITs, 100 expected per bin, sd sqrt(90) ~ 9.5: the 90 % range is about 100 +- 15.6
    assert lo == pytest.approx(0.84, abs=0.02) and hi == pytest.approx(1.16, abs=0.02)
    draws = stats.binom.rvs(1000, 0.1, size=20_000, random_state=1) * 10 / 1000
    assert np.mean((draws >= lo) & (draws <= hi)) == pytest.approx(0.90, abs=0.02)


def test_a_calibrated_forecast_has_a_flat_pit_and_nominal_coverage(scores):
    pits = summary.pit_table(scores).set_index(["model", "horizon"])
    cov = summary.coverage_table(scores).set_index(["model", "horizon"])
    for h in (1, 21):
        good = pits.loc[("gpt", h)]
        assert good["n"] == N_ORIGINS and good["p_chi2_adj"] > 0.01 and good["p_ks"] > 0.01
        assert good["outside"] <= 3  # about one of ten bins outside a 90 % band by chance
        c = cov.loc[("gpt", h)]
        assert c["cov80"] == pytest.approx(0.80, abs=0.06) and c["cov50"] == pytest.approx(0.50, abs=0.07)
        assert c["cov80_low"] <= 0.80 <= c["cov80_high"] and c["cov80_high"] - c["cov80_low"] < 0.1


def test_a_too_narrow_forecast_fails_with_a_u_shaped_pit(scores):
    pits = summary.pit_table(scores).set_index(["model", "horizon"])
    cov = summary.coverage_table(scores).set_index(["model", "horizon"])
    narrow = pits.loc[("narrow", 21)]
    assert narrow["p_chi2_adj"] < 1e-6 and narrow["p_ks"] < 1e-6
    assert narrow["b01"] > narrow["band_hi"] and narrow["b10"] > narrow["band_hi"] and narrow["b05"] < narrow["band_lo"]
    # N(0, 0.25) 80 % interval is +-0.64 sd of the truth: it covers about 48 %, and the interval says it is not 80 %
    c = cov.loc[("narrow", 21)]
    assert c["cov80"] == pytest.approx(2 * stats.norm.cdf(0.5 * 1.2816) - 1, abs=0.07) and c["cov80_high"] < 0.75
    wide = pits.loc[("wide", 21)]  # too wide: a hump, coverage far above nominal
    assert wide["p_chi2_adj"] < 1e-6 and wide["b01"] < wide["band_lo"] and wide["b05"] > wide["band_hi"]
    assert cov.loc[("wide", 21)]["cov80_low"] > 0.9


def test_overlap_weakens_the_pit_test_and_widens_the_coverage_interval():
    s = _scores({"gpt": 0.8}, horizons=(21, 250), seed=2)
    pits = summary.pit_table(s).set_index("horizon")
    cov = summary.coverage_table(s).set_index("horizon")
    assert pits.loc[21, "block"] == 1 and pits.loc[250, "block"] == 12  # ceil(250 / 21) origins per block
    r = pits.loc[250]
    assert r["p_chi2_adj"] == pytest.approx(stats.chi2.sf(r["chi2"] / 12, 9)) and r["p_chi2_adj"] > r["p_chi2"]
    w21 = cov.loc[21, "cov80_high"] - cov.loc[21, "cov80_low"]
    w250 = cov.loc[250, "cov80_high"] - cov.loc[250, "cov80_low"]
    assert w250 > w21 * 0.8  # same independent data: block resampling does not make the interval narrower


def test_markdown_tables_and_files(scores, tmp_path):
    text = summary.calibration_markdown(scores, key_series=("VIX",), horizons=(21,))
    lines = [x for x in text.splitlines() if x.startswith("| VIX | 21 |")]
    assert [x.split(" | ")[2] for x in lines] == ["gpt", "narrow", "wide"]
    assert "80% cov [90% CI]" in text and lines[0].split(" | ")[3] == str(N_ORIGINS)
    regime_rows = []
    for o in scores["origin"].unique()[:5]:
        for model, (b, r) in {"gpt": (0.2, 0.1), "climatology": (0.4, 0.3)}.items():
            regime_rows.append({"origin": o, "model": model, "kind": "regime", "name": "volatility", "horizon": 21,
                                "brier": b, "rps": r, "p_obs": 0.5})
    both = pd.concat([scores, pd.DataFrame(regime_rows)], ignore_index=True).assign(es=np.nan)  # no energy rows
    reg = summary.regime_markdown(both)
    assert "| volatility | 21 | 0.200 / 0.100 | 0.400 / 0.300 |" in reg and reg.splitlines()[0].startswith("| regime | h | gpt")
    tables = summary.write_summary(tmp_path, both)
    for name in ("coverage", "pit"):
        back = pd.read_csv(tmp_path / f"{name}.csv")
        assert len(back) == len(tables[name]) == 6  # 3 models x 2 horizons
    md = (tmp_path / "summary.md").read_text()
    assert "## Calibration" in md and "## Regimes: Brier score and RPS" in md


def test_pit_horizon_figure_draws_the_table(scores):
    pits = summary.pit_table(scores)
    fig = pit_horizon_figure(pits, ["VIX"], model="narrow", horizons=(1, 21))
    bars = [t for t in fig.data if t.type == "bar"]
    bands = [t for t in fig.data if t.type == "scatter"]
    assert len(bars) == 2 and len(bands) == 2
    row = pits[(pits["model"] == "narrow") & (pits["horizon"] == 21)].iloc[0]
    np.testing.assert_allclose(bars[1].y, [row[f"b{k:02d}"] for k in range(1, 11)])
    assert max(bands[1].y) == pytest.approx(row["band_hi"])
    assert "chi2 p" in fig.layout.annotations[1].text


def test_coverage_figure_shows_the_bootstrap_intervals(scores):
    cov = summary.coverage_table(scores)
    fig = coverage_figure(cov, ["VIX"])
    narrow80 = [t for t in fig.data if t.name == "narrow" and t.yaxis == "y2"][0]  # row 2: the 80 % intervals
    row = cov[(cov["model"] == "narrow")].sort_values("horizon")
    np.testing.assert_allclose(narrow80.y, row["cov80"])
    np.testing.assert_allclose(np.asarray(narrow80.y) + np.asarray(narrow80.error_y.array), row["cov80_high"])
    np.testing.assert_allclose(np.asarray(narrow80.y) - np.asarray(narrow80.error_y.arrayminus), row["cov80_low"])


def test_a_backtest_without_regime_or_energy_scores_still_writes_its_summary(scores, tmp_path):
    """One user series (no VIX, no core CPI, no group): the score table has no brier/rps/es columns at all."""
    tables = summary.write_summary(tmp_path, scores.assign(name="MYSERIES"))
    assert tables["regimes"].empty and tables["energy"].empty
    assert len(tables["coverage"]) == 6 and (tmp_path / "summary.md").exists()
