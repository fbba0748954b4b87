"""The Bloomberg export as a source: tickers, the -1E+09 sentinel, period-stamped macro values.

The export is built here from the shared data the way a Bloomberg BDH daily panel looks:
ticker columns with yellow keys, every weekday a row, -1E+09 where there is no value, and
monthly/quarterly values stamped on the last day of their period and filled forward.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_sources import catalog
from data_sources.errors import CatalogError
from data_sources.panel import PanelBuilder, yoy_percent
from data_sources.sources.bloomberg import BloombergSource, is_bloomberg_export, ticker_key

SENTINEL = -1e9
DAYS = pd.bdate_range("2015-01-01", "2019-12-31", name="date")


def _daily(series: pd.Series) -> np.ndarray:
    return series.reindex(DAYS).to_numpy()


def _period_stamped(obs: pd.Series, freq: str) -> np.ndarray:
    """Monthly/quarterly values on their period's last weekday, filled forward (Bloomberg's daily panel)."""
    end = (obs.index.to_period(freq) + 1).to_timestamp() - pd.offsets.BDay(1)
    stamped = pd.Series(obs.to_numpy(), index=end)
    return stamped.reindex(DAYS.union(stamped.index)).ffill().reindex(DAYS).to_numpy()


@pytest.fixture(scope="module")
def raw(shared_builder):
    return {name: shared_builder.raw[name] for name in ("SPX", "VIX", "UST10Y", "CORE_CPI", "GDP", "XLK")}


def write_export(raw, path, cpi=None, sentinel_text="-1E+09"):
    core_yoy = yoy_percent(raw["CORE_CPI"])
    cols = {
        "SPX Index": _daily(raw["SPX"]),
        "VIX Index": _daily(raw["VIX"]),
        "USGG10YR Index": _daily(raw["UST10Y"]),
        "CPUPXYOY Index": cpi if cpi is not None else _period_stamped(core_yoy, "M"),
        "GDP CHWG Index": _period_stamped(raw["GDP"], "Q"),
        "S5INFT Index": _daily(raw["XLK"]) * 10,  # the ETF stands in for the sector index
    }
    frame = pd.DataFrame(cols, index=DAYS)
    text = frame.to_csv(index_label="Dates", float_format="%.6f", na_rep="NaN").replace("NaN", sentinel_text)
    path.write_text(text)
    return frame


@pytest.fixture(scope="module")
def export(raw, tmp_path_factory):
    path = tmp_path_factory.mktemp("bbg") / "bloomberg_export.csv"
    frame = write_export(raw, path)
    return path, frame


def test_tickers_are_recognised_and_mapped(export):
    path, _ = export
    assert is_bloomberg_export(path)
    assert ticker_key("GDP CHWG Index") == "GDP CHWG" and ticker_key(" cpupxyoy  index") == "CPUPXYOY"
    builder = PanelBuilder(str(path))
    assert isinstance(builder.source, BloombergSource)
    assert builder.series == ["SPX", "VIX", "UST10Y", "CORE_CPI_YOY", "GDP", "S5INFT"]
    assert catalog.BUILTIN["S5INFT"].transform == "log_return" and catalog.BUILTIN["CDX_IG"].unit == "bp"


def test_sentinel_cells_are_missing_not_minus_a_billion(export, raw):
    path, frame = export
    panel = PanelBuilder(str(path)).build()
    assert panel.min().min() > -100  # no -1e9 anywhere
    # VIX on a US holiday is the sentinel in the file; SPX's days define the calendar, VIX matches history
    assert (frame["VIX Index"].isna()).sum() > 0
    common = panel.index.intersection(raw["VIX"].index)
    np.testing.assert_allclose(panel.loc[common, "VIX"], raw["VIX"].loc[common])


def test_period_stamped_cpi_appears_on_its_release_dates_not_before(export, raw, shared_builder):
    path, frame = export
    builder = PanelBuilder(str(path))
    panel = builder.build()
    cpi = panel["CORE_CPI_YOY"]
    # The file shows January 2018's value from 2018-01-31; the panel from its release, 2018-02-15.
    jan = yoy_percent(raw["CORE_CPI"]).loc["2018-01-01"]
    assert frame.loc["2018-01-31", "CPUPXYOY Index"] == pytest.approx(jan, abs=1e-6)
    assert cpi.loc["2018-02-14"] != pytest.approx(jan, abs=1e-6)
    assert cpi.loc["2018-02-15"] == pytest.approx(jan, abs=1e-6)
    # Every change of the panel's CPI falls on a release date of the catalog's rule, rolled to a business day.
    changes = cpi.index[1:][np.abs(np.diff(cpi.to_numpy())) > 1e-9]
    periods = pd.date_range("2014-12-01", "2019-12-01", freq="MS")
    release = catalog.get("CORE_CPI_YOY").release.release_dates(periods)
    first_days = {panel.index[panel.index.searchsorted(d)] for d in release if d <= panel.index[-1]}
    assert len(changes) > 40 and set(changes) <= first_days
    # And it is the same series, on the same days, as the one built from the BLS index itself.
    reference = shared_builder.build()["CORE_CPI_YOY"].reindex(cpi.index)
    both = cpi.notna() & reference.notna()
    assert both.sum() > 1000
    np.testing.assert_allclose(cpi[both], reference[both], atol=1e-5)
    # as of a date: nothing released later is used
    as_of = builder.build(as_of="2018-02-14")
    assert as_of["CORE_CPI_YOY"].iloc[-1] == pytest.approx(cpi.loc["2018-02-14"])
    assert any("moved period-stamped values" in n and "CORE_CPI_YOY" in n for n in builder.source.notes)


def test_quarterly_gdp_is_moved_to_its_release(export, raw):
    path, _ = export
    gdp = PanelBuilder(str(path)).build()["GDP"]
    q1 = raw["GDP"].loc["2018-01-01"]  # 2018Q1, released about 30 days after the quarter ends
    assert gdp.loc["2018-04-27"] != pytest.approx(q1)
    assert gdp.loc["2018-05-01"] == pytest.approx(q1)


def test_description_file_sets_the_sentinel_and_release_stamping(raw, tmp_path):
    # Values already on their release dates (BLS's real day), and -999 as the fill.
    core_yoy = yoy_percent(raw["CORE_CPI"])
    real = pd.DatetimeIndex([d + pd.Timedelta(days=40) for d in core_yoy.index])  # ~ the 10th of M+1
    stamped = pd.Series(core_yoy.to_numpy(), index=real)
    cpi = stamped.reindex(DAYS.union(real)).ffill().reindex(DAYS).to_numpy()
    write_export(raw, tmp_path / "export.csv", cpi=cpi, sentinel_text="-999")
    (tmp_path / "export.yaml").write_text("bloomberg: export.csv\nsentinel: -999\nstamped: release\n")
    builder = PanelBuilder(str(tmp_path / "export.yaml"))
    panel = builder.build()
    assert panel.min().min() > -100
    jan = core_yoy.loc["2018-01-01"]  # stamped 2018-02-10 (a Saturday): in the panel from Monday 2018-02-12
    assert panel.loc["2018-02-09", "CORE_CPI_YOY"] != pytest.approx(jan)
    assert panel.loc["2018-02-12", "CORE_CPI_YOY"] == pytest.approx(jan)
    assert any("release-stamped" in n for n in builder.source.notes)
    (tmp_path / "bad.yaml").write_text("bloomberg: export.csv\nstamp: release\n")
    with pytest.raises(Exception, match="unknown key 'stamp'"):
        PanelBuilder(str(tmp_path / "bad.yaml"))


def test_an_unknown_ticker_is_refused_with_the_yaml_to_add(export, tmp_path):
    path, frame = export
    frame = frame.assign(**{"ZZTOP Index": 1.0})
    bad = tmp_path / "export.csv"
    bad.write_text(frame.to_csv(index_label="Dates", na_rep="-1E+09"))
    with pytest.raises(CatalogError) as err:
        PanelBuilder(str(bad))
    message = str(err.value)
    assert "\n" not in message and "ZZTOP Index" in message and "ticker map" in message
    assert "series: {ZZTOP: {description:" in message


def test_data_show_says_what_was_moved_and_what_may_be_revised(export, capsys):
    from forecaster.cli import main

    path, _ = export
    assert main(["data", "show", "--data", str(path), "--delimiter", ","]) == 0  # reading options reach the source
    out = capsys.readouterr().out
    assert "Panel from bloomberg:bloomberg_export.csv" in out
    assert "note: moved period-stamped values to their release dates: CORE_CPI_YOY (CPUPXYOY Index: day 15 of month M+1" in out
    assert "revisions: CORE_CPI_YOY, GDP may contain revisions" in out
