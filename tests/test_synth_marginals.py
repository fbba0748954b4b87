"""Marginal calibration of a synthesis run (``synth calibrate``): per-card log-biases added to the logits."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from forecaster.cli import main
from forecaster.core.sampler import valid_logits
from forecaster.synthesis.documents import SynthesisInputError, read_table
from forecaster.synthesis.generate import Synthesizer
from forecaster.synthesis.marginals import (MARGINALS_FILE, Marginals, card_shares, fit_marginals, gap_shares,
                                            total_variation)
from forecaster.synthesis.train import train_synthesizer


@pytest.fixture(scope="module")
def rows(shared_data: Path) -> pd.DataFrame:
    """The first 3,000 rows of the shared sample (three cards, 2002-2005)."""
    return read_table(shared_data / "tabformer" / "User0_credit_card_transactions.csv").iloc[:3000]


@pytest.fixture(scope="module")
def run(rows, tmp_path_factory) -> Path:
    """A day-tiny run after one step: its merchants far from the data's shares."""
    out = tmp_path_factory.mktemp("marg") / "run"
    train_synthesizer(rows, out, "day-tiny", max_steps=1, eval_every=1, progress=False)
    return out


def test_a_float_step_mask_is_added_to_the_logits_and_minus_inf_forbids():
    hidden, head = torch.eye(4, dtype=torch.float32)[:2], torch.arange(24, dtype=torch.float32).reshape(6, 4)
    valid = torch.tensor([1, 3, 4])
    plain = valid_logits(hidden, head, valid)
    bias = torch.zeros(2, 6, dtype=torch.float64)
    bias[:, 3] = 2.5
    bias[1, 4] = float("-inf")
    got = valid_logits(hidden, head, valid, lambda p: bias, torch.zeros(2, 0, dtype=torch.long))
    assert torch.equal(got[:, 0], plain[:, 0]) and torch.allclose(got[:, 1], plain[:, 1] + 2.5)
    assert got[0, 2] == plain[0, 2] and got[1, 2] == float("-inf")
    allowed = torch.ones(2, 6, dtype=torch.bool)
    allowed[0, 1] = False  # a bool mask still forbids only
    got = valid_logits(hidden, head, valid, lambda p: allowed, torch.zeros(2, 0, dtype=torch.long))
    assert got[0, 0] == float("-inf") and torch.equal(got[1], plain[1])


def test_calibration_brings_the_merchant_shares_to_the_training_rows(run, rows, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    synth = Synthesizer(tmp_path / "run", which="last")
    assert synth.marginals is None
    m = fit_marginals(synth, rows, iterations=3, rows=3000, rows_per_history=100, seed=7)
    h = m.history
    assert len(h) == 4 and h[-1]["merchant_name"] < 0.6 * h[0]["merchant_name"], h
    assert m.bias["merchant_name"].shape == (len(synth.tok.codec("card").categories),
                                             len(synth.tok.codec("merchant_name").categories))
    ts = rows["timestamp"]
    assert m.bias["use_chip"].ndim == 3 and m.years == (ts.min().year, ts.max().year)
    assert m.bias["gap"].shape == (24, synth.tok.codec("gap").n_bins)  # the gap, by the previous row's hour
    assert h[-1]["gap"] < 0.8 * h[0]["gap"], h
    # saved, found by a new Synthesizer of the folder, added by default, left out on request
    m.save(tmp_path / "run")
    again = Synthesizer(tmp_path / "run", which="last")
    assert again.marginals is not None and np.allclose(again.marginals.bias["merchant_name"], m.bias["merchant_name"])
    cal, _ = again.generate(3000, rows_per_history=100, seed=3)
    own, _ = again.generate(3000, rows_per_history=100, seed=3, marginals=False)
    plain, _ = Synthesizer(run, which="last").generate(3000, rows_per_history=100, seed=3)
    pd.testing.assert_frame_equal(own, plain)  # --no-marginals: the model's own distribution
    want = card_shares(again.tok, rows, "merchant_name")
    assert total_variation(card_shares(again.tok, cal, "merchant_name"), want) < \
        0.7 * total_variation(card_shares(again.tok, own, "merchant_name"), want)
    want = gap_shares(again.tok, rows)  # the (previous hour, gap) joint, which makes the hours
    assert total_variation(gap_shares(again.tok, cal), want) < 0.8 * total_variation(gap_shares(again.tok, own), want)
    assert (cal.groupby("user", sort=False)["timestamp"].diff().dropna() >= pd.Timedelta(0)).all()  # still ordered


def test_a_year_keyed_bias_applies_in_its_year_only(run, rows, tmp_path):
    synth = Synthesizer(run, which="last")
    tok = synth.tok
    cards, chips = len(tok.codec("card").categories), list(tok.codec("use_chip").categories)
    online = chips.index("Online Transaction")
    years = (rows["timestamp"].min().year, rows["timestamp"].max().year)
    bias = np.zeros((cards, years[1] - years[0] + 1, len(chips)))
    bias[:, 2003 - years[0], online] = 30.0  # 2003 only: every row whose previous row is in 2003 is online
    synth.marginals = Marginals(tok.fingerprint(), synth.weights_digest(), {"use_chip": bias}, years)
    table, _ = synth.generate(2000, rows_per_history=100, seed=1)
    prev_year = table.groupby("user", sort=False)["timestamp"].shift(1).dt.year
    in_2003 = prev_year == 2003
    assert in_2003.sum() > 50 and (table.loc[in_2003, "use_chip"] == "Online Transaction").all()
    other = prev_year.notna() & (prev_year != 2003)
    assert (table.loc[other, "use_chip"] == "Online Transaction").mean() < 0.9


def test_stale_or_foreign_calibrations_are_refused(run, rows, tmp_path, capsys):
    shutil.copytree(run, tmp_path / "run")
    synth = Synthesizer(tmp_path / "run", which="last")
    m = fit_marginals(synth, rows, columns=("merchant_name",), iterations=1, rows=400, rows_per_history=100)
    m.save(tmp_path / "run")
    d = json.loads((tmp_path / "run" / MARGINALS_FILE).read_text())
    (tmp_path / "run" / MARGINALS_FILE).write_text(json.dumps({**d, "weights": "f" * 64}))  # fitted for other weights
    stale = Synthesizer(tmp_path / "run", which="last")
    with pytest.raises(SynthesisInputError, match="--no-marginals"):
        stale.generate(10, rows_per_history=10)
    assert len(stale.generate(10, rows_per_history=10, marginals=False)[0]) == 10
    assert main(["synth", "export-model", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "x")]) == 2
    assert "synth calibrate --weights best" in capsys.readouterr().err
    d["tokenizer_fingerprint"] = "0" * 64
    (tmp_path / "run" / MARGINALS_FILE).write_text(json.dumps(d))
    foreign = Synthesizer(tmp_path / "run", which="last")  # refused when used, so --no-marginals and calibrate still work
    with pytest.raises(SynthesisInputError, match="another tokenizer.*--no-marginals"):
        foreign.generate(10, rows_per_history=10)
    assert len(foreign.generate(10, rows_per_history=10, marginals=False)[0]) == 10
    (tmp_path / "run" / MARGINALS_FILE).write_text("{not json")
    broken = Synthesizer(tmp_path / "run", which="last")
    with pytest.raises(SynthesisInputError, match="synth calibrate"):
        broken.generate(10, rows_per_history=10)
    fit_marginals(broken, rows, columns=("merchant_name",), iterations=1, rows=200, rows_per_history=100).save(
        tmp_path / "run")  # recalibrating replaces the broken file
    assert Synthesizer(tmp_path / "run", which="last").marginals is not None


def test_calibrate_cli_reads_only_the_runs_training_rows_and_export_keeps_it(run, rows, tmp_path, capsys):
    shutil.copytree(run, tmp_path / "run")
    train = tmp_path / "train.parquet"
    rows.to_parquet(train)
    other = tmp_path / "other.parquet"
    rows.iloc[:2500].to_parquet(other)
    args = ["synth", "calibrate", "--run", str(tmp_path / "run"), "--rounds", "1", "--rows", "300", "--weights", "last"]
    assert main(args + ["--data", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the training table" in err[0] and "--data" in err[0] and "rows 2500" in err[0]
    assert not (tmp_path / "run" / MARGINALS_FILE).exists()
    assert main(args + ["--data", str(train)]) == 0
    assert "marginals.json" in capsys.readouterr().err
    gen = ["synth", "generate", "--run", str(tmp_path / "run"), "--rows", "20", "--rows-per-history", "10",
           "--weights", "last", "--out"]
    assert main(gen + [str(tmp_path / "a.csv")]) == 0
    assert "marginal calibration added" in capsys.readouterr().err
    assert main(gen + [str(tmp_path / "b.csv"), "--no-marginals"]) == 0
    assert "marginal calibration" not in capsys.readouterr().err
    saved = Marginals.load(tmp_path / "run", Synthesizer(tmp_path / "run", which="last").tok)
    # the export keeps the biases, rounded, for the weights they were fitted for
    assert main(["synth", "export-model", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "x"),
                 "--weights", "last"]) == 0
    exported = json.loads((tmp_path / "x" / MARGINALS_FILE).read_text())
    assert set(exported) >= {"bias", "weights", "years"} and not exported["history"] and not exported["settings"]
    b = np.asarray(exported["bias"]["merchant_name"])
    assert np.allclose(b, np.round(saved.bias["merchant_name"] / 0.05) * 0.05, atol=1e-6)
    assert "marginals.json" in json.loads((tmp_path / "x" / "manifest.json").read_text())["files"]
    table, _ = Synthesizer(tmp_path / "x").generate(20, rows_per_history=10)
    assert len(table) == 20


def test_gap_shares_count_each_gap_by_the_previous_rows_hour(run, rows):
    tok = Synthesizer(run, which="last").tok
    t = rows[rows["card"] == rows["card"].iloc[0]].iloc[:3].copy()
    t["timestamp"] = pd.to_datetime(["2003-05-01 06:00", "2003-05-01 06:30", "2003-05-02 13:00"])
    got = gap_shares(tok, t)
    k, _ = tok.codec("gap").bins_of(np.array([30.0, 1830.0]))
    assert got.sum() == 2 and got[6, k[0]] == 1 and got[6, k[1]] == 1  # the card's first row has no gap


def test_a_rows_year_is_its_previous_rows_as_the_sampler_keys_it(run, rows):
    tok = Synthesizer(run, which="last").tok
    t = rows[rows["card"] == rows["card"].iloc[0]].iloc[:3].copy()
    t["timestamp"] = pd.to_datetime(["2003-12-30 10:00", "2003-12-31 10:00", "2004-01-02 10:00"])
    y = card_shares(tok, t, "use_chip", (2002, 2005)).sum(axis=(0, 2))
    assert y.tolist() == [0, 3, 0, 0]  # the card's first row counts in its own year, the 2004 row in 2003's


def test_export_without_the_calibration(run, rows, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    synth = Synthesizer(tmp_path / "run", which="last")
    fit_marginals(synth, rows, iterations=1, rows=200, rows_per_history=100).save(tmp_path / "run")
    assert main(["synth", "export-model", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "x"),
                 "--weights", "last", "--no-marginals"]) == 0
    assert not (tmp_path / "x" / MARGINALS_FILE).exists()
    assert MARGINALS_FILE not in json.loads((tmp_path / "x" / "manifest.json").read_text())["files"]
