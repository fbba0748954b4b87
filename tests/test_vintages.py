"""Vintages (ALFRED layout): as of D the panel uses the estimates published by D, not later revisions.

The vintage file is built here from the shared GDP series: three vintages in which the
latest quarter appears, then is revised up twice.
"""
from __future__ import annotations

import pandas as pd
import pytest

from data_sources.errors import DataError
from data_sources.panel import PanelBuilder
from data_sources.vintages import Vintages
from forecaster.cli import main


@pytest.fixture(scope="module")
def files(shared_builder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vint")
    gdp = shared_builder.raw["GDP"]
    gdp = gdp[(gdp.index >= "2015-01-01") & (gdp.index <= "2019-07-01")]
    spx = shared_builder.raw["SPX"]
    spx = spx[(spx.index >= "2016-01-04") & (spx.index <= "2019-12-31")]
    pd.DataFrame({"SPX": spx, "GDP": gdp.reindex(spx.index.union(gdp.index))}).to_csv(folder / "panel.csv", index_label="date")
    # 2019Q2 (2019-04-01) first published 2019-07-26 at 100 below the final figure, revised 2019-08-29 and 2019-09-26
    q2 = pd.Timestamp("2019-04-01")
    first = gdp.drop(index=[pd.Timestamp("2019-07-01")])
    v1 = first.copy()
    v1[q2] -= 100
    v2 = first.copy()
    v2[q2] -= 40
    table = pd.DataFrame({"GDPC1_20190726": v1, "GDPC1_20190829": v2, "GDPC1_20190926": first,
                          "GDPC1_20191030": gdp}, index=gdp.index)
    table.to_csv(folder / "GDPC1_vintages.csv", index_label="observation_date")
    (folder / "vintages.yaml").write_text("GDP: GDPC1_vintages.csv\n")
    return folder, gdp


def test_as_of_queries_return_the_vintage_of_that_date(files):
    folder, gdp = files
    v = Vintages.read(folder / "GDPC1_vintages.csv")
    q2 = pd.Timestamp("2019-04-01")
    assert v.vintage_at(pd.Timestamp("2019-08-28")) == pd.Timestamp("2019-07-26")
    assert v.as_of(pd.Timestamp("2019-08-28"))[q2] == pytest.approx(gdp[q2] - 100)
    assert v.as_of(pd.Timestamp("2019-08-29"))[q2] == pytest.approx(gdp[q2] - 40)
    assert v.as_of(pd.Timestamp("2019-12-31"))[q2] == pytest.approx(gdp[q2])
    assert pd.Timestamp("2019-07-01") not in v.as_of(pd.Timestamp("2019-10-29")).index


def test_the_panel_as_of_d_uses_the_vintage_of_d(files):
    folder, gdp = files
    builder = PanelBuilder(str(folder / "panel.csv"))
    assert "GDP" in builder.vintages and builder.revisable() == []
    q2 = pd.Timestamp("2019-04-01")
    as_of_aug = builder.build(as_of="2019-08-28")
    assert as_of_aug["GDP"].iloc[-1] == pytest.approx(gdp[q2] - 100)
    assert as_of_aug.loc["2019-07-25", "GDP"] == pytest.approx(gdp[pd.Timestamp("2019-01-01")])  # before its first release
    assert builder.build(as_of="2019-09-03")["GDP"].iloc[-1] == pytest.approx(gdp[q2] - 40)
    full = builder.build()
    # the full panel holds the latest vintage; Q3 enters on its first vintage, 2019-10-30
    assert full.loc["2019-10-29", "GDP"] == pytest.approx(gdp[q2])
    assert full.loc["2019-10-30", "GDP"] == pytest.approx(gdp[pd.Timestamp("2019-07-01")])


def test_data_show_says_which_series_may_hold_later_revisions(files, tmp_path, capsys):
    folder, _ = files
    plain = tmp_path / "panel.csv"
    plain.write_text((folder / "panel.csv").read_text())
    assert main(["data", "show", "--data", str(plain)]) == 0
    out = capsys.readouterr().out
    assert "revisions: GDP may contain revisions published after the date shown" in out
    assert main(["data", "show", "--data", str(folder / "panel.csv")]) == 0
    out = capsys.readouterr().out
    assert "revisions:" not in out and "vintages: GDP: 4 vintages 2019-07-26 .. 2019-10-30" in out


def test_a_vintage_column_without_a_date_is_refused(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("observation_date,GDPC1_20190726,latest\n2019-01-01,1,2\n")
    with pytest.raises(DataError, match="column 'latest' does not end in a vintage date"):
        Vintages.read(path)
