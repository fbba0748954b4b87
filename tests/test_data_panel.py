"""The point-in-time panel built from the real data in ../shared/data."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import yaml

from data_sources import catalog
from data_sources.panel import PanelBuilder, load_panel, summary, yoy_percent
from data_sources.parsing import read_series_csv


def test_full_panel_covers_1990_to_latest_date_in_files(shared_panel, shared_data):
    assert list(shared_panel.columns) == list(catalog.REFERENCE_SERIES)
    assert shared_panel.index[0] == pd.Timestamp("1990-01-02")
    # the latest date in any of the files: WTI's last print
    latest = max(
        read_series_csv(shared_data / f, "x", f).index[-1]
        for f in ["oil/wti-daily.csv", "vix/vix-daily.csv", "rates/DGS10.csv"]
    )
    assert shared_panel.index[-1] == latest == pd.Timestamp("2026-08-18")
    assert shared_panel.index.is_monotonic_increasing and shared_panel.index.is_unique
    assert (shared_panel.index.day_of_week < 5).all()
    assert shared_panel.dtypes.eq(np.float64).all()


def test_values_match_the_source_files(shared_panel, shared_data):
    spx = pd.read_csv(shared_data / "spx/spx_d.csv", index_col="Date", parse_dates=True)["Close"]
    for day in ["1990-01-02", "2008-10-10", "2020-03-16", "2025-03-05"]:
        assert shared_panel.at[pd.Timestamp(day), "SPX"] == pytest.approx(spx[day])
    # WTI's real negative print is kept in the level panel
    assert shared_panel.at[pd.Timestamp("2020-04-20"), "WTI"] == pytest.approx(-36.98)


def test_series_are_missing_before_they_exist_never_zero_or_backfilled(shared_panel):
    xlre = shared_panel["XLRE"]
    assert xlre[:"2015-10-07"].isna().all()
    assert xlre["2015-10-08"] > 0
    fed = shared_panel["FED_BS"]
    # the first H.4.1 level (Wednesday 2002-12-18) is published on Thursday 2002-12-19
    assert fed[:"2002-12-18"].isna().all() and fed["2002-12-19"] == pytest.approx(719542.0)
    assert not (shared_panel.fillna(1.0) == 0.0).all().any()


def test_discontinued_daily_series_go_missing_instead_of_flat(shared_panel):
    # BAA10Y ends 2024-08-13 and SPX 2025-03-05 in the files: a week later they are NaN, not carried on.
    assert shared_panel["BAA_SPREAD"]["2024-08-26":].isna().all()
    assert shared_panel["SPX"]["2025-03-17":].isna().all()


def test_gsci_is_spliced_with_gsg_returns_after_the_index_ends(shared_panel, shared_data):
    spgsci = read_series_csv(shared_data / "commodities/SPGSCI.csv", "SPGSCI", "spgsci")
    gsg = read_series_csv(shared_data / "commodities/GSG.csv", "GSG", "gsg", value_col="Close")
    last = spgsci.index[-1]
    assert shared_panel.at[last, "GSCI"] == pytest.approx(spgsci.iloc[-1])
    later = pd.Timestamp("2024-06-03")
    expected = spgsci.iloc[-1] * gsg[later] / gsg[last]
    assert shared_panel.at[later, "GSCI"] == pytest.approx(expected)


def test_yoy_inflation_is_computed_from_the_index_a_year_earlier(shared_data):
    cpi = read_series_csv(shared_data / "macro/CPIAUCSL.csv", "CPI", "cpi")
    yoy = yoy_percent(cpi)
    assert yoy["2022-06-01"] == pytest.approx(100 * (cpi["2022-06-01"] / cpi["2021-06-01"] - 1))
    # October 2025 is blank (no BLS release): no YoY for it, and none for October 2026's base either
    assert pd.Timestamp("2025-10-01") not in yoy.index


def test_summary_reports_first_last_count_missing(shared_panel):
    table = summary(shared_panel).set_index("series")
    assert table.at["XLRE", "first"] == pd.Timestamp("2015-10-08")
    assert table.at["VIX", "count"] == shared_panel["VIX"].notna().sum()
    assert (table["missing"] >= 0).all()
    assert "day 15" in table.at["CPI_YOY", "published"]


def test_unsorted_input_is_sorted(tmp_path, shared_data):
    """Files in descending or mixed order give the same series as sorted files."""
    rows = (shared_data / "rates/DGS10.csv").read_text().splitlines()
    header, body = rows[0], rows[1:]
    rng = np.random.default_rng(0)
    (tmp_path / "desc.csv").write_text("\n".join([header] + body[::-1]) + "\n")
    (tmp_path / "mixed.csv").write_text("\n".join([header] + list(rng.permutation(body))) + "\n")
    ref = read_series_csv(shared_data / "rates/DGS10.csv", "UST10Y", "ref")
    for name in ["desc.csv", "mixed.csv"]:
        got = read_series_csv(tmp_path / name, "UST10Y", name)
        pd.testing.assert_series_equal(got, ref)


def test_wide_panel_with_bloomberg_sentinel(tmp_path):
    days = pd.bdate_range("2020-01-02", periods=6)  # NYSE sessions (2020-01-01 is a holiday: no panel row)
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "SPX": [3200, 3210, -1e9, 3230, 3240, 3250], "VIX": [12.0, 13, 14, -1.0e9, 15, 16]})
    path = tmp_path / "bbg.csv"
    frame.iloc[::-1].to_csv(path, index=False)  # descending, as exports often are
    panel = load_panel(str(path), start=None)
    assert panel.index.is_monotonic_increasing
    # the sentinel is "not available": the previous close is carried for that day, not -1e9
    assert panel["SPX"].min() == 3200 and panel["VIX"].max() == 16
    assert panel.at[days[2], "SPX"] == 3210


def test_exported_panel_reads_back_as_aligned(tmp_path, shared_builder):
    from data_sources.store import Store

    panel = shared_builder.build("2019-12-31")
    path = Store(tmp_path).save_panel(panel)
    again = load_panel(str(path))
    pd.testing.assert_frame_equal(again, panel, check_freq=False)
    assert load_panel(str(path), as_of="2019-06-28").index[-1] == pd.Timestamp("2019-06-28")


def test_embedded_default_needs_no_files():
    panel = load_panel("embedded")
    assert {"SPX", "VIX", "WTI", "CORE_CPI_YOY"} <= set(panel.columns)
    assert panel.index[0] == pd.Timestamp("1999-01-04")
    assert panel["VIX"][:"2013-12-31"].isna().all() and panel["VIX"]["2014-01-03"] > 0
    assert panel["SPX"].notna().sum() > 5000


def test_mapping_with_unknown_series_is_refused(tmp_path):
    from data_sources.errors import CatalogError

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"folder": ".", "series": {"SPY": {"file": "x.csv"}}}))
    with pytest.raises(CatalogError, match="SPY"):
        PanelBuilder(str(path))


def test_the_panel_has_no_row_on_an_exchange_closure(shared_panel):
    """Cboe prints VIX on some NYSE holidays (2022-07-04); the panel's days are NYSE sessions, as the forecast's are."""
    from data_sources.calendar import is_business_day

    assert is_business_day(shared_panel.index).all()
    for closed in ("2004-06-11", "2018-12-05", "2022-07-04", "2025-01-09"):
        assert pd.Timestamp(closed) not in shared_panel.index
