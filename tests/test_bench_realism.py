"""The statistics of benchmarks/bench_realism.py (issue 14) on constructed paths with known answers.

Fast and offline: no model is sampled. One test reads the real panel in ../shared/data
for the history column's well-known facts (stocks move together, VIX against them,
CPI changes 12 times a year).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def br():
    yield from load_benchmark("bench_realism")


SERIES = ["SPX", "XLK", "VIX", "UST3M", "UST2Y", "UST10Y", "CPI_YOY", "GDP"]
P, H = 20, 250


def _alternating(period: int, n: int) -> np.ndarray:
    """+1/-1 in runs of ``period`` days: patterns of different periods are exactly orthogonal."""
    return np.where((np.arange(n) // period) % 2 == 0, 1.0, -1.0)


def _release_changes(n_days: int, every: int, rng) -> np.ndarray:
    """(P, n_days) changes that are nonzero on exactly the days ``every - 1, 2 * every - 1, ...``."""
    out = np.zeros((P, n_days))
    out[:, every - 1::every] = rng.choice([-0.2, 0.1, 0.3], size=(P, len(range(every - 1, n_days, every))))
    return out


def constructed_paths(rng=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Level paths (P, H, series) and origin levels (series,) with known facts.

    SPX and XLK have the same log returns (corr 1); VIX changes are minus the SPX
    returns (corr -1); UST2Y/UST10Y differences are proportional (corr 1), and orthogonal
    to the stock returns (corr 0); CPI_YOY changes on exactly 12 days, GDP on exactly 4.
    """
    rng = rng or np.random.default_rng(0)
    stock = np.tile(0.5 * _alternating(1, H), (P, 1))  # % log returns, +0.5/-0.5
    rates = np.tile(0.01 * _alternating(2, H), (P, 1))  # percentage points
    origin = np.array([3000.0, 600.0, 20.0, 1.0, 2.0, 3.0, 2.5, 18000.0])
    levels = np.empty((P, H, len(SERIES)))
    levels[:, :, 0] = origin[0] * np.exp(np.cumsum(stock, axis=1) / 100)
    levels[:, :, 1] = origin[1] * np.exp(np.cumsum(stock, axis=1) / 100)
    levels[:, :, 2] = origin[2] + np.cumsum(-stock, axis=1)
    levels[:, :, 3] = origin[3] + np.cumsum(rates, axis=1)
    levels[:, :, 4] = origin[4] + np.cumsum(rates, axis=1)
    levels[:, :, 5] = origin[5] + np.cumsum(2 * rates, axis=1)
    levels[:, :, 6] = origin[6] + np.cumsum(_release_changes(H, 20, rng), axis=1)  # 250 // 20 = 12 releases
    levels[:, :, 7] = origin[7] * np.exp(np.cumsum(_release_changes(H, 60, rng), axis=1) / 100)  # 4 releases
    return levels, SERIES, origin


def test_path_changes_start_from_the_origin_and_are_in_the_facts_units(br):
    paths = np.array([[[110.0, 22.0, 1.5], [121.0, 19.0, 1.25]]])  # (1 path, 2 days, SPX/VIX/UST2Y)
    ch = br.path_changes(paths, ["SPX", "VIX", "UST2Y"], np.array([100.0, 20.0, 1.0]))
    assert ch.shape == paths.shape
    np.testing.assert_allclose(ch[0, :, 0], 100 * np.log(1.1) * np.ones(2))  # log return in %
    np.testing.assert_allclose(ch[0, :, 1], [2.0, -3.0])  # VIX (mean-reverting): its daily change in points
    np.testing.assert_allclose(ch[0, :, 2], [0.5, -0.25])  # yield: difference


def test_correlations_of_constructed_paths_are_exact(br):
    facts = br.realism_facts(*constructed_paths())
    assert facts["corr:SPX:XLK"] == pytest.approx(1.0)
    assert facts["corr:SPX:VIX"] == pytest.approx(-1.0)
    assert facts["corr:UST2Y:UST10Y"] == pytest.approx(1.0)
    assert facts["corr:SPX:UST10Y"] == pytest.approx(0.0, abs=1e-12)
    # market series SPX, XLK, VIX, UST3M, UST2Y, UST10Y: 15 pairs; |corr| 1 within the stock
    # group (3 pairs) and within the rates group (3 pairs), 0 across them (9 pairs)
    assert facts["mean_abs_corr"] == pytest.approx(6 / 15)


def test_release_days_drift_floors_and_nan_cells(br):
    levels, series, origin = constructed_paths()
    levels[:3, 100, 3] = -1.0  # three paths take UST3M through the floor for one day
    facts = br.realism_facts(levels, series, origin)
    assert facts["change_days:CPI_YOY"] == 12
    assert facts["change_days:GDP"] == 4
    assert "release_days:CPI_YOY" not in facts  # the calendar's facts need the paths' dates
    half = br.realism_facts(levels[:, :125], series, origin)  # 6 changes in 125 days: 12 per 250
    assert half["change_days:CPI_YOY"] == 12
    assert facts["floor:UST3M"] == pytest.approx(15.0)  # 3 of 20 paths
    assert facts["floor:UST2Y"] == 0.0
    assert facts["nan_cells"] == 0
    assert facts["spx_drift_median"] == pytest.approx(0.0, abs=1e-9)  # +0.5/-0.5 returns: back to the origin

    growth = np.tile(np.arange(1, H + 1) * 0.04, (P, 1))  # constant 0.04 % a day
    levels[:, :, 0] = origin[0] * np.exp(growth / 100)
    levels[0, 5, 6] = np.nan
    facts = br.realism_facts(levels, series, origin)
    assert facts["spx_drift_median"] == pytest.approx(0.04 * 252)
    assert facts["spx_drift_mean"] == pytest.approx(0.04 * 252)
    assert facts["nan_cells"] == 1


def test_vix_range_counts_paths_beyond_the_high_and_low(br):
    levels, series, origin = constructed_paths()
    j = series.index("VIX")
    levels[:, :, j] = 20.0
    levels[:4, 50, j] = 75.0   # four of 20 paths spike above 60
    levels[4, 10, j] = 8.0     # one dips below 9
    levels[5:, 30, j] = np.linspace(21.0, 40.0, P - 5)
    facts = br.realism_facts(levels, series, origin)
    assert facts["vix_above_high"] == pytest.approx(20.0)
    assert facts["vix_below_low"] == pytest.approx(5.0)
    highs = np.r_[np.full(4, 75.0), 20.0, np.linspace(21.0, 40.0, P - 5)]
    assert facts["vix_max_median"] == pytest.approx(np.median(highs))
    assert facts["vix_max_p90"] == pytest.approx(np.quantile(highs, 0.9))


def test_vix_change_std_and_lag1_autocorrelation(br):
    levels, series, origin = constructed_paths()
    facts = br.realism_facts(levels, series, origin)
    assert facts["vix_change_std"] == pytest.approx(0.5, rel=1e-3)  # changes are +-0.5
    assert facts["vix_lag1_autocorr"] == pytest.approx(-1.0)  # they alternate every day
    # lag pairs are taken inside each path, never from the end of one path to the start of the next
    within = np.corrcoef([1, 2, 3, 2], [2, 3, 2, 1])[0, 1]
    assert br.pooled_lag1_autocorr(np.array([[1.0, 2, 3], [3, 2, 1]])) == pytest.approx(within)
    # i.i.d. changes: autocorrelation near 0
    rng = np.random.default_rng(1)
    levels[:, :, 2] = origin[2] + np.cumsum(rng.standard_normal((P, H)), axis=1)
    assert abs(br.realism_facts(levels, series, origin)["vix_lag1_autocorr"]) < 0.05
    assert np.isnan(br.pooled_lag1_autocorr(np.ones((P, H))))  # constant changes: no autocorrelation to speak of


def test_history_facts_on_a_constructed_panel(br):
    n = 4 * 250 + 1  # 4 full blocks of changes
    index = pd.bdate_range("1995-01-02", periods=n)
    rng = np.random.default_rng(2)
    cpi = np.zeros(n)
    cpi[1:] = _release_changes(n - 1, 25, rng)[0]  # a change every 25 days: 10 per block
    ust3m = np.full(n, 1.0)
    ust3m[300] = -1.0  # in the second block only
    panel = pd.DataFrame({"SPX": 1000 * np.exp(np.arange(n) * 0.04 / 100), "UST3M": ust3m,
                          "CPI_YOY": 2 + np.cumsum(cpi)}, index=index)
    early = pd.DataFrame({"SPX": [1.0], "UST3M": [-5.0], "CPI_YOY": [9.0]}, index=[pd.Timestamp("1980-01-02")])
    facts = br.history_facts(pd.concat([early, panel]))  # days before 1990 are not history
    assert facts["spx_drift_median"] == pytest.approx(0.04 * 252)
    assert facts["change_days:CPI_YOY"] == 10
    assert facts["floor:UST3M"] == pytest.approx(25.0)


def test_history_facts_of_the_real_panel(br, shared_mapping):
    from data_sources.panel import PanelBuilder

    names = ["SPX", "VIX", "UST3M", "UST2Y", "UST10Y", "XLK", "CPI_YOY", "GDP"]
    facts = br.history_facts(PanelBuilder(str(shared_mapping), series=names, start="1990-01-01").build())
    assert facts["corr:SPX:XLK"] > 0.8
    assert facts["corr:SPX:VIX"] < -0.6
    assert facts["corr:UST2Y:UST10Y"] > 0.7
    assert facts["change_days:CPI_YOY"] == 12
    assert facts["change_days:GDP"] == 4
    # the calendar's release days: 12 a year for a monthly series, 4 for GDP; unemployment
    # is released 12 times a year but unchanged in about a quarter of months
    assert facts["release_days:CPI_YOY"] == 12
    assert facts["release_days:GDP"] == 4
    assert facts["floor:UST3M"] == 0.0
    assert 1.0 < facts["vix_change_std"] < 2.5
    # 250-day blocks since 1990: VIX closed above 60 only in 2008-09 and 2020, never below 9
    # (the closing low is 9.14, 2017-11-03)
    assert 0.0 < facts["vix_above_high"] < 10.0 and facts["vix_below_low"] == 0.0
    assert 15.0 < facts["vix_max_median"] < 40.0
    assert 3.0 < facts["spx_drift_median"] < 12.0


def test_table_has_a_verdict_per_target_and_history_alongside(br):
    facts = br.realism_facts(*constructed_paths())
    history = dict(facts, mean_abs_corr=0.2, vix_change_std=2.0)
    rows = br.facts_table(SERIES)
    keys = [r.key for r in rows]
    assert keys[:2] == ["mean_abs_corr", "corr:SPX:XLK"] and keys[-1] == "nan_cells"
    assert "release_days:CPI_YOY" in keys and "release_days:GDP" in keys and "change_days:GDP" in keys
    assert "off_release_changes" in keys
    by_key = {r.key: r for r in rows}
    assert br.verdict(by_key["mean_abs_corr"], facts["mean_abs_corr"], 0.2) == "PASS"  # 0.4 >= 0.75 x 0.2
    assert br.verdict(by_key["vix_change_std"], 0.5, 2.0) == "FAIL"  # 0.25 x history
    assert br.verdict(by_key["corr:SPX:VIX"], -1.0, -0.8) == "PASS"
    assert br.verdict(by_key["corr:SPX:UST10Y"], 0.0, 0.2) == ""  # no target
    assert br.verdict(by_key["spx_drift_median"], 15.6, 7.1) == "FAIL"
    assert br.verdict(by_key["floor:UST3M"], 15.0, 0.0) == "FAIL"
    assert br.verdict(by_key["change_days:CPI_YOY"], 8.0, 9.0) == "PASS"  # within 1 of history
    assert br.verdict(by_key["change_days:CPI_YOY"], 12.0, 9.0) == "FAIL"
    assert br.verdict(by_key["release_days:CPI_YOY"], 12.0, 12.0) == "PASS"
    assert br.verdict(by_key["off_release_changes"], 1.0, None) == "FAIL"

    text = br.markdown(rows, history, {"run @ 2019-12-31": facts})
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows)
    assert "| mean \\|corr\\| of market changes | 0.20 | >= 0.75 x history | 0.40 (2.00x) PASS |" in lines
    recs = br.records(rows, history, {"a": facts, "b": facts})
    assert len(recs) == 2 * len(rows) and {r["verdict"] for r in recs} >= {"PASS", "FAIL", ""}


def test_release_days_come_from_the_calendar_and_changes_off_them_are_counted(br):
    from forecaster.market.features import release_days

    levels, series, origin = constructed_paths()
    dates = pd.bdate_range("2019-01-02", periods=H)
    on = release_days(["CPI_YOY", "GDP"], dates)
    for j, name in ((6, "CPI_YOY"), (7, "GDP")):  # changes on the calendar's release days only
        steps = np.where(on[name], 0.1, 0.0)
        levels[:, :, j] = origin[j] + np.cumsum(np.tile(steps, (P, 1)), axis=1)
    facts = br.realism_facts(levels, series, origin, dates)
    assert facts["release_days:CPI_YOY"] == pytest.approx(on["CPI_YOY"].sum())
    assert 11 <= facts["release_days:CPI_YOY"] <= 13 and 3 <= facts["release_days:GDP"] <= 5
    assert facts["off_release_changes"] == 0
    assert facts["change_days:CPI_YOY"] == facts["release_days:CPI_YOY"]
    off = int(np.flatnonzero(~on["CPI_YOY"])[3])
    levels[:2, off:, 6] += 0.05  # two paths move CPI on a day without a release
    assert br.realism_facts(levels, series, origin, dates)["off_release_changes"] == 2



def test_history_from_the_origins_state_reads_only_its_analogue_blocks(br):
    # VIX calm (10, changes of +-0.5) for 600 days, then nervous (30, changes of +-3) for 600;
    # the 2-year yield at 0.1 moves against the 10-year, at 3 with it
    n = 1200
    idx = pd.bdate_range("1995-01-02", periods=n)
    step = _alternating(1, n)
    vix = np.where(np.arange(n) < 600, 10 + 0.5 * (step > 0), 30 + 3 * (step > 0))
    u10 = 2 + 0.01 * np.cumsum(step)
    u2 = np.where(np.arange(n) < 600, 0.1 - 0.005 * np.cumsum(step) / 10, 3 + 0.01 * np.cumsum(step))
    panel = pd.DataFrame({"VIX": vix, "UST2Y": u2, "UST10Y": u10}, index=idx)
    calm = br.analogue_facts(panel, idx[100])
    nervous = br.analogue_facts(panel, idx[700])
    # a calm origin's blocks are the 600 that start calm, and those from day 350 on run into the
    # nervous days (history from a calm state includes its storms); a nervous one's stay nervous
    assert calm["blocks:vix_change_std"] == 600 and nervous["blocks:vix_change_std"] == n - 250 - 600
    assert nervous["vix_change_std"] == pytest.approx(3.0, rel=0.01)
    assert 0.5 < calm["vix_change_std"] < nervous["vix_change_std"]
    assert nervous["corr:UST2Y:UST10Y"] == pytest.approx(1.0, abs=1e-6)
    assert calm["corr:UST2Y:UST10Y"] < 0.5
    early = br.analogue_facts(panel.iloc[:600], idx[100])   # the calm half alone: its own std and sign
    assert early["vix_change_std"] == pytest.approx(0.5, rel=0.01)
    assert early["corr:UST2Y:UST10Y"] == pytest.approx(-1.0, abs=1e-6)
    calm = early
    table = br.analogue_table({"vix_change_std": 1.0, "corr:UST2Y:UST10Y": 0.5}, {"a": calm, "b": nervous})
    assert "0.50 (0.50x), 350 blocks" in table and "3.00 (3.00x)" in table


def test_the_seed_summary_counts_each_seeds_missed_cells(br):
    facts = br.realism_facts(*constructed_paths())
    history = dict(facts, mean_abs_corr=0.2, vix_change_std=2.0)
    rows = br.facts_table(SERIES)
    good = dict(facts, vix_change_std=2.0, spx_drift_median=history["spx_drift_median"])
    bad = dict(good, vix_change_std=0.5, spx_drift_median=history["spx_drift_median"] + 10)   # two cells miss
    by_seed = {0: {"a @ 2017-12-29": good, "a @ 2019-12-31": bad, "b @ 2017-12-29": good, "b @ 2019-12-31": good},
               3: {"a @ 2017-12-29": bad, "a @ 2019-12-31": bad, "b @ 2017-12-29": good, "b @ 2019-12-31": good}}
    base = sum(br.verdict(f, good.get(f.key), history.get(f.key)) == "FAIL" for f in rows)  # the constructed paths' own
    lines = br.seed_summary(rows, history, by_seed).splitlines()
    assert lines[0] == "| column | seed 0 | seed 3 |"
    assert lines[2] == f"| a | {2 * base + 2} | {2 * base + 4} |" and lines[3] == f"| b | {2 * base} | {2 * base} |"
    assert "| VIX daily change std @ a @ 2019-12-31 | 2 of 2 | 0.50 (0.25x), 0.50 (0.25x) |" in lines
    assert "| VIX daily change std @ a @ 2017-12-29 | 1 of 2 | 2.00 (1.00x), 0.50 (0.25x) |" in lines
    assert not any("@ b @" in line and "VIX daily change std" in line for line in lines)
