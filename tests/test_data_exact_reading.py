"""Files are read exactly as meant, or refused with one line naming the file, the line and the option.

Every misread of issue 16 is here, end to end through `forecaster data show --data FILE`
(a mapping file or a wide panel file) where a user meets it: decimal commas, day-first
dates, ``inf``, impossible years, mixed time zones, a 1e308 spike in the real S&P 500
file, weekend rows, a VIX of 0. The valid European layouts read right.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from data_sources.parsing import OUTLIER_BOUND, ReadOptions, read_series_csv
from data_sources.sources.files import CsvFolderSource, WidePanelSource
from forecaster.cli import main


def _write(tmp_path, text: str, name: str = "x.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _mapping(tmp_path, text: str | None, series: str = "UST10Y", top: dict | None = None, **entry) -> str:
    if text is not None:
        _write(tmp_path, text)
    doc = {"folder": str(tmp_path), **(top or {}), "series": {series: {"file": "x.csv", **entry}}}
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _show(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["data", "show", *args])
    return code, capsys.readouterr().err.strip()


def _refused(capsys, args, *needles) -> str:
    code, err = _show(capsys, *args)
    assert code == 2, (code, err)
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


def _read(tmp_path, text: str, series: str = "UST10Y", **entry) -> pd.Series:
    source = CsvFolderSource(_mapping(tmp_path, text, series, **entry))
    return source.read(series)[series]


def _rates(dates, values) -> str:
    return "".join(f"{d}\t{v}\n" for d, v in zip(dates, values))


# -- delimiters and decimal commas -----------------------------------------------------------
def test_semicolon_file_with_decimal_commas_reads_the_decimals(tmp_path, capsys):
    text = "Datum;Schluss\n2020-01-02;2002,52\n2020-01-03;1.998,10\n2020-01-06;1999,5\n"
    series = _read(tmp_path, text, "SPX", value="Schluss")
    np.testing.assert_array_equal(series.to_numpy(), [2002.52, 1998.10, 1999.5])  # never 200252
    code, err = _show(capsys, "--data", _mapping(tmp_path, None, "SPX", value="Schluss"))
    assert code == 0, err


def test_comma_file_with_quoted_decimal_commas(tmp_path):
    text = 'date,value\n2020-01-02,"1,88"\n2020-01-03,"1,80"\n2020-01-06,"1,81"\n'
    np.testing.assert_array_equal(_read(tmp_path, text).to_numpy(), [1.88, 1.80, 1.81])


def test_comma_file_with_quoted_thousands_separators(tmp_path):
    text = 'date,value\n2020-01-02,"3,257.85"\n2020-01-03,"3,234.85"\n2020-01-06,999.5\n'
    np.testing.assert_array_equal(_read(tmp_path, text, "SPX").to_numpy(), [3257.85, 3234.85, 999.5])


def test_tab_separated_file(tmp_path):
    text = "date\tvalue\n" + _rates(["2020-01-02", "2020-01-03", "2020-01-06"], ["1.88", "1.80", "1.81"])
    series = _read(tmp_path, text)
    assert list(series.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-06"]
    np.testing.assert_array_equal(series.to_numpy(), [1.88, 1.80, 1.81])


def test_decimal_commas_and_points_in_one_file_are_refused(tmp_path, capsys):
    text = "date;value\n2020-01-02;1,88\n2020-01-03;1.80\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text)], "x.csv", "line 2", "'1,88'", "line 3", "'1.80'", "--decimal", "decimal:")


def test_a_comma_that_reads_both_ways_is_refused_then_settled_by_the_option(tmp_path, capsys):
    text = 'date,value\n2020-01-02,"1,234"\n2020-01-03,"1,240"\n'
    _refused(capsys, ["--data", _mapping(tmp_path, text, "SPX")], "x.csv", "line 2", "'1,234'", "decimal")
    assert _read(tmp_path, text, "SPX", decimal=".").tolist() == [1234.0, 1240.0]
    assert _read(tmp_path, text, "SPX", decimal=",").tolist() == [1.234, 1.24]
    code, err = _show(capsys, "--data", _mapping(tmp_path, None, "SPX"), "--decimal", ".")
    assert code == 0, err


def test_wide_panel_in_european_layout(tmp_path, capsys):
    text = "Datum;SPX;UST10Y\n02/01/2020;3257,85;1,88\n03/01/2020;3234,85;1,80\n13/01/2020;3288,13;1,85\n"
    source = WidePanelSource(_write(tmp_path, text, "panel.csv"))
    spx = source.read("SPX")["SPX"]
    assert list(spx.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-13"]
    np.testing.assert_array_equal(spx.to_numpy(), [3257.85, 3234.85, 3288.13])
    np.testing.assert_array_equal(source.read("UST10Y")["UST10Y"].to_numpy(), [1.88, 1.80, 1.85])
    code, err = _show(capsys, "--data", str(tmp_path / "panel.csv"))
    assert code == 0, err


# -- dates -----------------------------------------------------------------------------------
def test_day_first_dates_with_a_day_above_12_read_right_and_none_is_dropped(tmp_path):
    # 02/01/2020 is 2 January (a Thursday); read month first it would be 1 February, and
    # 04/01/2020 would be 1 April rather than the Saturday it is not: nothing may vanish.
    text = "date,value\n02/01/2020,1.88\n03/01/2020,1.80\n06/01/2020,1.81\n13/01/2020,1.85\n"
    series = _read(tmp_path, text)
    assert list(series.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-13"]


def test_month_first_dates_with_a_day_above_12_read_right(tmp_path):
    text = "DATE,CLOSE\n01/02/2020,13.78\n01/03/2020,14.02\n01/13/2020,12.32\n"
    series = _read(tmp_path, text, "VIX")
    assert list(series.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-13"]


def test_ambiguous_day_month_dates_are_refused_then_read_with_the_option(tmp_path, capsys):
    # 3 Feb, 4 Feb, 6 Feb 2020 day first; 2 March, 2 April, 2 June month first: all weekdays either way
    text = "date,value\n03/02/2020,1.88\n04/02/2020,1.80\n06/02/2020,1.81\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text)], "x.csv", "line 2", "'03/02/2020'", "--dayfirst", "date_format:")
    assert list(_read(tmp_path, text, dayfirst=True).index.day) == [3, 4, 6]
    assert list(_read(tmp_path, text, dayfirst=False).index.month) == [3, 4, 6]
    assert list(_read(tmp_path, text, date_format="%d/%m/%Y").index.day) == [3, 4, 6]
    code, err = _show(capsys, "--data", _mapping(tmp_path, None), "--dayfirst")
    assert code == 0, err
    # at the top of the mapping file, for every file
    assert CsvFolderSource(_mapping(tmp_path, None, top={"dayfirst": True})).read("UST10Y").index[0].day == 3
    # read the wrong way round, 02/01/2020 (2 January) lands on Saturday 1 February: refused, not dropped
    text = "date,value\n02/01/2020,1.88\n03/01/2020,1.80\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text, dayfirst=False)], "line 2", "2020-02-01", "Saturday")


def test_iso_dates_are_never_ambiguous(tmp_path):
    text = "date,value\n2020-02-01,1.5\n2020-03-02,1.6\n"
    assert list(_read(tmp_path, text, series="GDP").index.strftime("%Y-%m-%d")) == ["2020-02-01", "2020-03-02"]


def test_day_first_asked_but_the_file_is_month_first(tmp_path, capsys):
    text = "date,value\n01/02/2020,1.88\n01/13/2020,1.80\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text, dayfirst=True)], "x.csv", "line 3", "'01/13/2020'", "month first")


def test_dates_in_both_orders_are_refused(tmp_path, capsys):
    text = "date,value\n13/01/2020,1.88\n01/14/2020,1.80\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text)], "line 2", "line 3", "both day first")


def test_a_date_not_matching_date_format(tmp_path, capsys):
    text = "date,value\n02/01/2020,1.88\n2020-01-03,1.80\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text, date_format="%d/%m/%Y")], "line 3", "'2020-01-03'", "date_format")


def test_impossible_years_are_refused_with_the_line(tmp_path, capsys):
    text = "date,value\n2020-01-02,1.88\n1720-01-03,1.80\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text)], "x.csv", "line 3", "1720", "year")


def test_mixed_time_zones_are_refused_with_the_line(tmp_path, capsys):
    text = "date,value\n2020-01-02T16:00:00-05:00,1.88\n2020-01-03T16:00:00-05:00,1.80\n2020-01-06T21:00:00Z,1.81\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text)], "x.csv", "line 4", "+00:00", "-05:00", "time zone")


def test_line_numbers_count_comment_header_and_blank_lines(tmp_path, capsys):
    text = "# exported by a terminal\n# second note\ndate,value\n2020-01-02,1.88\n\n2020-01-03,abc\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text)], "line 6", "'abc' is not a number")


# -- values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "1e999"])
def test_infinite_values_are_refused_with_the_line(tmp_path, capsys, cell):
    text = f"date,value\n2020-01-02,1.88\n2020-01-03,1.80\n2020-01-06,{cell}\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text)], "x.csv", "line 4", repr(cell), "not a finite number")


def test_a_vix_of_zero_is_refused(tmp_path, capsys):
    text = "DATE,CLOSE\n2020-01-02,13.78\n2020-01-03,0\n2020-01-06,13.85\n"
    _refused(capsys, ["--data", _mapping(tmp_path, text, "VIX")], "x.csv", "line 3", "2020-01-03", "declared positive")


def _spx_with(tmp_path, shared_data, line: int, cell: str) -> str:
    rows = (shared_data / "spx" / "spx_d.csv").read_text().splitlines()
    fields = rows[line - 1].split(",")
    fields[4] = cell  # Close
    rows[line - 1] = ",".join(fields)
    _write(tmp_path, "\n".join(rows) + "\n")
    return rows[line - 1].split(",")[0]


def test_a_1e308_spike_in_the_real_spx_file_is_refused_naming_the_date(tmp_path, capsys, shared_data):
    day = _spx_with(tmp_path, shared_data, 15000, "1e308")
    mapping = _mapping(tmp_path, None, "SPX", value="Close")
    err = _refused(capsys, ["--data", mapping], "x.csv", "line 15000", day, "outlier", "--accept-outliers", "accept_outliers: true")
    assert f"bound {OUTLIER_BOUND:g}" in err
    # accepted on request (the user says it is real)
    spx = CsvFolderSource(_mapping(tmp_path, None, "SPX", value="Close", accept_outliers=True)).read("SPX")["SPX"]
    assert spx.max() == 1e308
    code, err = _show(capsys, "--data", mapping, "--accept-outliers", "--series", "SPX")
    assert code == 0, err


def test_a_tenfold_typo_in_the_real_spx_file_is_refused(tmp_path, capsys, shared_data):
    rows = (shared_data / "spx" / "spx_d.csv").read_text().splitlines()
    close = float(rows[17999].split(",")[4])
    day = _spx_with(tmp_path, shared_data, 18000, f"{close * 10:.2f}")
    _refused(capsys, ["--data", _mapping(tmp_path, None, "SPX", value="Close")], "line 18000", day, "outlier")


# -- weekend rows ----------------------------------------------------------------------------
WEEKEND = "Date,Close\n2020-01-02,3257.85\n2020-01-03,3234.85\n2020-01-04,3240.00\n2020-01-05,3241.00\n2020-01-07,3237.18\n"


def test_weekend_rows_of_a_daily_market_series_are_refused(tmp_path, capsys):
    _refused(capsys, ["--data", _mapping(tmp_path, WEEKEND, "SPX")], "x.csv", "line 4", "2020-01-04", "Saturday", "--weekend-rows", "weekend_rows:")


def test_weekend_rows_rolled_or_dropped_on_request(tmp_path, capsys):
    rolled = _read(tmp_path, WEEKEND, "SPX", weekend_rows="roll")
    # Saturday and Sunday roll to Monday 2020-01-06 (no Monday row of its own): Sunday's, the later, stays
    assert list(rolled.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]
    assert rolled["2020-01-06"] == 3241.00
    dropped = _read(tmp_path, WEEKEND, "SPX", weekend_rows="drop")
    assert list(dropped.index.strftime("%Y-%m-%d")) == ["2020-01-02", "2020-01-03", "2020-01-07"]
    with_monday = WEEKEND.replace("2020-01-07", "2020-01-06")
    assert _read(tmp_path, with_monday, "SPX", weekend_rows="roll")["2020-01-06"] == 3237.18  # Monday's own row wins
    code, err = _show(capsys, "--data", _mapping(tmp_path, WEEKEND, "SPX"), "--weekend-rows", "drop")
    assert code == 0, err


def test_weekend_dates_of_monthly_series_are_fine(tmp_path):
    # CPI is dated on the first of the month, 2020-02-01 a Saturday: not a weekend row
    assert len(_read(tmp_path, "date,value\n2020-01-01,258.8\n2020-02-01,259.2\n", "CPI")) == 2


def test_reading_options_are_checked(tmp_path, capsys):
    mapping = _mapping(tmp_path, "date,value\n2020-01-02,1.0\n", weekend_rows="sometimes")
    _refused(capsys, ["--data", mapping], "map.yaml", "weekend_rows must be one of error, roll, drop")
    _refused(capsys, ["--data", "embedded", "--dayfirst"], "apply to data files")
    _refused(capsys, ["--data", _mapping(tmp_path, None), "--decimal", ";"], "decimal must be")
    with pytest.raises(Exception, match="unknown read option"):
        ReadOptions().updated({"day_first": True})


# -- the real data is untouched --------------------------------------------------------------
def test_every_shared_file_reads_under_the_default_checks(shared_mapping, shared_builder):
    """The catalog's files in ../shared/data pass every check (no outlier, weekend or date refusal).

    The S&P 500's Saturday rows before June 1952 are real sessions (the NYSE traded six days
    a week until then) and are kept.
    """
    source = CsvFolderSource(shared_mapping)
    spx = source.read("SPX")["SPX"]
    saturdays = spx.index[spx.index.day_of_week == 5]
    assert len(saturdays) > 50 and saturdays[-1] < pd.Timestamp("1952-06-01")
    for name in source.available():
        assert len(source.read(name)) > 100, name
    assert shared_builder.build().shape[1] == 21


def test_vix_file_read_from_text_and_bytes_alike(shared_data):
    path = shared_data / "vix" / "vix-daily.csv"
    from_path = read_series_csv(path, "VIX", "vix")
    from_bytes = read_series_csv(path.read_bytes(), "VIX", "vix")
    pd.testing.assert_series_equal(from_path, from_bytes)
