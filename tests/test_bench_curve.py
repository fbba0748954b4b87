"""``benchmarks/bench_curve.py``: path changes start at the origin's level, the table's figures are
the pooled correlations and spreads, and it runs on a real tiny run (one without tilts says so)."""
from __future__ import annotations

import numpy as np
import pytest

from forecaster.cli import main as cli
from tests.conftest import load_benchmark

SERIES = ["SPX", "VIX", "UST10Y"]


@pytest.fixture(scope="module")
def bc():
    yield from load_benchmark("bench_curve")


def test_changes_start_at_the_origin_and_the_row_is_pooled_corr_and_std(bc):
    paths = np.array([[1.0, 1.5, 1.25], [2.0, 1.0, 1.0]])
    np.testing.assert_array_equal(bc.changes(paths, 1.0), [0.0, 0.5, -0.25, 1.0, -1.0, 0.0])
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    b = 0.5 * a + rng.normal(size=500)
    b[3] = np.nan                                                 # a missing day drops from every column
    line = bc.row("x", {"A": a, "B": b})
    ok = np.isfinite(b)
    assert line == f"| x | {np.corrcoef(a[ok], b[ok])[0, 1]:.2f} | {a[ok].std():.4f} | {b[ok].std():.4f} |"


def test_it_runs_on_a_real_run(bc, shared_builder, tmp_path, capsys):
    frame = shared_builder.build("2016-12-30")[SERIES].loc["2008-01-01":]
    data = tmp_path / "panel.csv"
    frame.rename_axis("date").to_csv(data, float_format="%.6g")
    run = tmp_path / "run"
    assert cli(["train", "--data", str(data), "--as-of", "2014-12-31", "--panel-start", "2008-01-01", "--out", str(run),
                "--preset", "day-tiny", "--max-steps", "6", "--eval-every", "6", "--no-progress"]) == 0
    assert bc.main(["--run", str(run), "--data", str(data), "--origin", "2016-06-30", "--series", "UST10Y,SPX",
                    "--near", "0.5", "--paths", "4", "--horizon", "10", "--temperature", "1"]) == 0
    out = capsys.readouterr().out
    hist = frame.loc[:"2014-12-31", ["UST10Y", "SPX"]].dropna().diff().iloc[1:]
    assert f"| history to 2014-12-31 | {hist.corr().iloc[0, 1]:.2f} | {hist['UST10Y'].std():.4f} |" in out
    assert "| paths, without tilts |" in out and "(the run has no drift.json)" in out
    with pytest.raises(SystemExit):
        bc.main(["--run", str(run), "--data", str(data), "--series", "UST10Y,GDP"])
