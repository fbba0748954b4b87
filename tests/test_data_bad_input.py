"""Bad input: one clear line naming what and where, a non-zero exit code, no traceback."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from forecaster.cli import main


def _mapping(tmp_path, csv_text: str | None, name: str = "UST10Y", **entry) -> str:
    path = tmp_path / "x.csv"
    if csv_text is not None:
        path.write_text(csv_text)
    mapping = tmp_path / "map.yaml"
    mapping.write_text(yaml.safe_dump({"folder": str(tmp_path), "series": {name: {"file": "x.csv", **entry}}}))
    return str(mapping)


def _run(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["data", "show", *args])
    err = capsys.readouterr().err.strip()
    return code, err


def _assert_one_line(code: int, err: str, *needles: str) -> None:
    assert code != 0
    assert err.startswith("error: "), err
    assert "\n" not in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


CASES = {
    "missing file": (None, ["file not found", "x.csv"]),
    "empty file": ("", ["empty", "x.csv"]),
    "no date column": ("when,DGS10\nyesterday,1.0\ntoday,2.0\n", ["no recognisable date column", "x.csv"]),
    "text in numeric column": ("observation_date,DGS10\n2020-01-02,1.88\n2020-01-03,abc\n", ["line 3", "'abc' is not a number"]),
    "duplicated date": ("observation_date,DGS10\n2020-01-02,1.88\n2020-01-03,1.80\n2020-01-02,1.90\n", ["2020-01-02 appears more than once"]),
    "date in the future": ("observation_date,DGS10\n2020-01-02,1.88\n2099-01-03,1.80\n", ["2099-01-03 is in the future"]),
    "bad date": ("observation_date,DGS10\n2020-01-02,1.88\n2020-13-45,1.80\n", ["line 3", "is not a date"]),
    "header only": ("observation_date,DGS10\n", ["no data rows"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_csv_input(case, tmp_path, capsys):
    text, needles = CASES[case]
    code, err = _run(capsys, "--data", _mapping(tmp_path, text))
    _assert_one_line(code, err, *needles)


def test_series_not_in_catalog(tmp_path, capsys):
    code, err = _run(capsys, "--data", _mapping(tmp_path, "date,value\n2020-01-02,1\n", name="DGS10"))
    _assert_one_line(code, err, "'DGS10'", "not in the catalog")
    code, err = _run(capsys, "--series", "SPX,NOPE")
    _assert_one_line(code, err, "'NOPE'")


def test_wide_file_with_unknown_column_and_missing_panel_file(tmp_path, capsys):
    path = tmp_path / "wide.csv"
    path.write_text("date,SPX,SPY\n2020-01-02,3200,320\n")
    code, err = _run(capsys, "--data", str(path))
    _assert_one_line(code, err, "SPY", "not catalog series")
    code, err = _run(capsys, "--data", str(tmp_path / "missing.parquet"))
    _assert_one_line(code, err, "not found", "missing.parquet")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    code, err = _run(capsys, "--data", str(corrupt))
    _assert_one_line(code, err, "not a readable Parquet file")


def test_bad_dates_on_the_command_line(capsys):
    code, err = _run(capsys, "--as-of", "yesterday-ish")
    _assert_one_line(code, err, "--as-of", "not a date")
    code, err = _run(capsys, "--as-of", "1980-01-01")
    _assert_one_line(code, err, "no rows")
    code, err = _run(capsys, "--as-of", "1900-01-01")  # before any series was published at all
    _assert_one_line(code, err, "no rows")


def test_console_script_prints_one_line_and_exits_nonzero(tmp_path):
    """The installed `forecaster` entry point, as a user runs it; --debug shows the traceback."""
    mapping = _mapping(tmp_path, "observation_date,DGS10\n2020-01-02,oops\n")
    proc = subprocess.run([sys.executable, "-m", "forecaster", "data", "show", "--data", mapping], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "'oops' is not a number" in proc.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "forecaster", "--debug", "data", "show", "--data", mapping], capture_output=True, text=True
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_export_refuses_unknown_format_and_writes_atomically(tmp_path, capsys):
    capsys.readouterr()
    assert main(["data", "export", "--out", str(tmp_path / "p.xlsx")]) != 0
    assert "use a .parquet or .csv" in capsys.readouterr().err
    out = tmp_path / "p.parquet"
    assert main(["data", "export", "--out", str(out)]) == 0
    before = out.read_bytes()
    # a failing export (bad --as-of) leaves the previous file intact
    assert main(["data", "export", "--out", str(out), "--as-of", "1980-01-01"]) != 0
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.parquet"]
    assert pd.read_parquet(out).shape[0] > 5000
