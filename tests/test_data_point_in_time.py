"""No look-ahead: a value is visible only from the day it was published."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import yaml

from data_sources import catalog
from data_sources.panel import PanelBuilder
from data_sources.publication import ReleaseRule


def test_cpi_appears_on_its_release_day_not_before(shared_builder):
    # March 2020 CPI (released by BLS on 2020-04-10) enters on our conservative 15th, never earlier.
    panel = shared_builder.build()
    yoy = panel["CPI_YOY"]
    march = shared_builder.observations("CPI_YOY")["2020-03-01"]
    february = shared_builder.observations("CPI_YOY")["2020-02-01"]
    assert yoy["2020-04-14"] == pytest.approx(february)
    assert yoy["2020-04-15"] == pytest.approx(march)
    # as of the 14th, March is not in the panel at all
    before = shared_builder.build("2020-04-14")
    assert before.index[-1] == pd.Timestamp("2020-04-14")
    assert not np.isclose(before["CPI_YOY"], march).any() or march == february


def test_release_override_for_delayed_2025_cpi(shared_builder):
    # September 2025 CPI was delayed by the shutdown to 2025-10-24.
    obs = shared_builder.observations("CORE_CPI_YOY")
    sept, aug = obs["2025-09-01"], obs["2025-08-01"]
    panel = shared_builder.build()
    assert panel.at[pd.Timestamp("2025-10-23"), "CORE_CPI_YOY"] == pytest.approx(aug)
    assert panel.at[pd.Timestamp("2025-10-24"), "CORE_CPI_YOY"] == pytest.approx(sept)


def test_unemployment_gdp_and_balance_sheet_lags(shared_builder):
    panel = shared_builder.build()
    # March 2020 unemployment (4.4) on Friday 2020-04-03; February's 3.5 the day before
    assert panel.at[pd.Timestamp("2020-04-02"), "UNRATE"] == pytest.approx(3.5)
    assert panel.at[pd.Timestamp("2020-04-03"), "UNRATE"] == pytest.approx(4.4)
    # 2020Q1 GDP: quarter ends 03-31, advance estimate on or after 30 days later (2020-04-30)
    gdp = shared_builder.observations("GDP")
    assert panel.at[pd.Timestamp("2020-04-29"), "GDP"] == pytest.approx(gdp["2019-10-01"])
    assert panel.at[pd.Timestamp("2020-04-30"), "GDP"] == pytest.approx(gdp["2020-01-01"])
    # Wednesday 2020-03-18 H.4.1 level visible Thursday 2020-03-19, not on Wednesday
    fed = shared_builder.observations("FED_BS")
    assert panel.at[pd.Timestamp("2020-03-18"), "FED_BS"] == pytest.approx(fed["2020-03-11"])
    assert panel.at[pd.Timestamp("2020-03-19"), "FED_BS"] == pytest.approx(fed["2020-03-18"])


@pytest.mark.parametrize("as_of", ["2008-09-15", "2020-04-14", "2021-12-31"])
def test_as_of_panel_has_nothing_published_after_the_date(shared_builder, as_of):
    d = pd.Timestamp(as_of)
    panel = shared_builder.build(as_of)
    assert panel.index[-1] <= d
    for name in panel.columns:
        spec = catalog.get(name)
        obs = shared_builder.observations(name)
        released = spec.release.release_dates(obs.index)
        unpublished = set(obs.to_numpy()[np.asarray(released > d)]) - set(obs.to_numpy()[np.asarray(released <= d)])
        assert not set(panel[name].dropna().to_numpy()) & unpublished, f"{name} shows a value published after {as_of}"
    # equals the full panel cut at the date: no revisions in the data, so nothing else may differ
    full = shared_builder.build()
    pd.testing.assert_frame_equal(panel, full.loc[:as_of], check_freq=False)


def test_changing_data_after_d_does_not_change_the_panel_as_of_d(tmp_path, shared_mapping, shared_data):
    """Rewrite every observation published after D with garbage: the panel as of D is identical."""
    d = pd.Timestamp("2019-06-14")
    doc = yaml.safe_load(shared_mapping.read_text())
    altered = tmp_path / "data"
    changed = 0
    for name, entry in doc["series"].items():
        src, dst = shared_data / entry["file"], altered / entry["file"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.read_csv(src, dtype=str, keep_default_na=False)
        periods = pd.DatetimeIndex(pd.to_datetime(frame.iloc[:, 0], format="mixed"))
        later = np.asarray(catalog.get(name).release.release_dates(periods) > d)
        for col in frame.columns[1:]:
            frame.loc[later, col] = "12345.0"
        changed += int(later.sum())
        frame.to_csv(dst, index=False)
    doc["folder"] = str(altered)
    doc["accept_outliers"] = True  # the garbage is deliberate (it would be refused as an outlier otherwise)
    mapping = tmp_path / "altered.yaml"
    mapping.write_text(yaml.safe_dump(doc))
    assert changed > 10_000

    original = PanelBuilder(str(shared_mapping)).build(d)
    altered_panel = PanelBuilder(str(mapping)).build(d)
    pd.testing.assert_frame_equal(altered_panel, original, check_freq=False)
    # the alteration is visible once D has passed (the test can fail)
    later_panel = PanelBuilder(str(mapping)).build("2019-12-31")
    assert (later_panel.loc["2019-06-17":] == 12345.0).any().any()


def test_release_rules_are_conservative_and_documented():
    periods = pd.DatetimeIndex(["2024-01-01", "2024-02-01"])
    assert list(ReleaseRule("monthly_day", day=15).release_dates(periods)) == [pd.Timestamp("2024-02-15"), pd.Timestamp("2024-03-15")]
    # first Friday on or after the 3rd: Feb 2024 -> 2024-02-09? no: Friday Feb 2 is before the 3rd -> Feb 9
    jobs = ReleaseRule("nth_weekday", n=1, weekday=4, min_day=3)
    assert list(jobs.release_dates(periods)) == [pd.Timestamp("2024-02-09"), pd.Timestamp("2024-03-08")]
    h6 = ReleaseRule("nth_weekday", n=4, weekday=1)
    assert h6.release_dates(periods)[0] == pd.Timestamp("2024-02-27")
    gdp = ReleaseRule("quarter_end_plus", days=30)
    assert gdp.release_dates(pd.DatetimeIndex(["2024-04-01"]))[0] == pd.Timestamp("2024-07-30")
    for spec in catalog.CATALOG.values():
        assert spec.release.describe()
