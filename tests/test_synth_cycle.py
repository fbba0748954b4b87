"""Tiny-model train -> generate -> evaluate cycle on the real TabFormer sample, through the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from data_sources.tabformer import TYPED_COLUMNS, TYPED_DTYPES
from forecaster.cli import main
from forecaster.synthesis.documents import SYNTHETIC_USER_BASE, read_table


@pytest.fixture(scope="module")
def cycle(shared_data: Path, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("synth")
    paths = {"train": d / "train.csv", "holdout": d / "holdout.parquet", "run": d / "run"}
    src = shared_data / "tabformer" / "User0_credit_card_transactions.csv"
    assert main(["synth", "split", "--data", str(src), "--train", str(paths["train"]),
                 "--holdout", str(paths["holdout"])]) == 0
    assert main(["synth", "train", "--data", str(paths["train"]), "--out", str(paths["run"]), "--preset", "tiny",
                 "--max-steps", "20", "--eval-every", "10", "--no-progress", "--model-option", "dropout=0.1"]) == 0
    return paths


def test_train_model_option_changes_the_shape(cycle, tmp_path, capsys):
    assert json.loads((cycle["run"] / "model_config.json").read_text())["dropout"] == 0.1
    assert main(["synth", "train", "--data", str(cycle["train"]), "--out", str(tmp_path / "r"), "--preset", "tiny",
                 "--max-steps", "1", "--no-progress", "--model-option", "no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err



def test_train_val_tail_is_checked(cycle, tmp_path, capsys):
    info = json.loads((cycle["run"] / "run.json").read_text())
    assert info["val_tail"] == 0.15  # the default cut: each card's latest rows train
    assert main(["synth", "train", "--data", str(cycle["train"]), "--out", str(tmp_path / "r"), "--preset", "tiny",
                 "--max-steps", "1", "--no-progress", "--val-tail", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "--val-tail" in err and len(err.strip().splitlines()) == 1
    assert main(["synth", "train", "--data", str(cycle["train"]), "--out", str(tmp_path / "r2"), "--refit-of",
                 str(cycle["run"]), "--val-tail", "0", "--no-progress"]) == 2
    assert "leave out --val-tail" in capsys.readouterr().err


def test_refit_trains_on_every_row_for_the_best_step(cycle, tmp_path, capsys):
    from forecaster.core.training.metrics import read_metrics
    from forecaster.synthesis.train import best_step

    vals = [r for r in read_metrics(cycle["run"] / "metrics.jsonl") if r.get("split") == "val"]
    best = min(vals, key=lambda r: (r["loss"], r["step"]))["step"]
    assert best_step(cycle["run"]) == best
    out = tmp_path / "refit"
    assert main(["synth", "train", "--data", str(cycle["train"]), "--out", str(out), "--refit-of", str(cycle["run"]),
                 "--no-progress"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["refit_of"] == str(cycle["run"].resolve()) and info["refit_steps"] == best
    base = json.loads((cycle["run"] / "run.json").read_text())
    # every row trains (the 21 rows of card 4 make no 33-row window, in either run)
    assert info["val_rows"] == 0 and info["train_rows"] == base["train_rows"] + base["val_rows"]
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["val_fraction"] == 0 and cfg["max_steps"] == best and cfg["schedule_steps"] == 20
    assert json.loads((out / "model_config.json").read_text())["dropout"] == 0.1  # the base run's model options
    assert not [r for r in read_metrics(out / "metrics.jsonl") if r.get("split") == "val"]
    assert main(["synth", "train", "--data", str(cycle["train"]), "--out", str(tmp_path / "r2"), "--refit-of",
                 str(cycle["run"]), "--max-steps", "5", "--no-progress"]) == 2
    assert "leave out --max-steps" in capsys.readouterr().err
    assert main(["synth", "train", "--data", str(cycle["train"]), "--out", str(tmp_path / "r3"), "--refit-of",
                 str(out), "--no-progress"]) == 2  # a refit records no validation loss to refit for
    assert "no validation loss" in capsys.readouterr().err


def _check_typed(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(TYPED_COLUMNS)
    for col in TYPED_COLUMNS:
        assert table[col].dtype == TYPED_DTYPES[col], col
    for col in ("user", "card", "timestamp", "amount", "use_chip", "merchant_name", "merchant_city", "mcc"):
        assert table[col].notna().all(), col  # every generated row is a whole, valid transaction


def test_generate_unconditional_csv(cycle, tmp_path):
    out = tmp_path / "syn.csv"
    assert main(["synth", "generate", "--run", str(cycle["run"]), "--rows", "45", "--rows-per-history", "20",
                 "--out", str(out), "--seed", "3"]) == 0
    table = read_table(out)  # the published format reads back
    _check_typed(table)
    assert len(table) == 45
    assert sorted(table["user"].unique()) == [SYNTHETIC_USER_BASE, SYNTHETIC_USER_BASE + 1, SYNTHETIC_USER_BASE + 2]
    assert table.groupby("user")["card"].nunique().max() == 1  # one card per synthetic history
    for _, h in table.groupby("user"):
        assert h["timestamp"].is_monotonic_increasing


def test_generate_conditioned_parquet(cycle, tmp_path):
    out = tmp_path / "fraud.parquet"
    assert main(["synth", "generate", "--run", str(cycle["run"]), "--histories", "2", "--rows-per-history", "15",
                 "--out", str(out),
                 "--condition", "is_fraud=Yes", "--condition", "merchant_state=CA"]) == 0
    table = read_table(out)
    _check_typed(table)
    assert len(table) == 30 and table["user"].nunique() == 2
    assert table["is_fraud"].all() and (table["merchant_state"] == "CA").all()
    online = tmp_path / "online.csv"  # an empty value conditions on "missing": online purchases have no state
    assert main(["synth", "generate", "--run", str(cycle["run"]), "--rows", "10", "--out", str(online),
                 "--condition", "merchant_state="]) == 0
    assert read_table(online)["merchant_state"].isna().all()


def test_generate_continues_given_cards(cycle, tmp_path):
    holdout = read_table(cycle["holdout"])
    ctx = tmp_path / "ctx.parquet"
    holdout[holdout["card"].isin([1, 3])].to_parquet(ctx)
    out = tmp_path / "cont.csv"
    assert main(["synth", "generate", "--run", str(cycle["run"]), "--rows", "6", "--out", str(out),
                 "--context", str(ctx)]) == 0
    table = read_table(out)
    _check_typed(table)
    assert table.groupby(["user", "card"]).size().to_dict() == {(0, 1): 6, (0, 3): 6}


def test_bad_conditions_and_outputs_are_one_line_errors(cycle, tmp_path, capsys):
    run = str(cycle["run"])
    for args, msg in ((["--condition", "is_fraud=Maybe"], "Yes or No"),
                      (["--condition", "merchant_state=Atlantis"], "never occurs"),
                      (["--condition", "amount=3"], "cannot condition"),
                      (["--out", str(tmp_path / "x.txt")], ".csv or .parquet"),
                      (["--histories", "2"], "either --rows or --histories"),
                      (["--amount-noise", "2"], "--amount-noise is a relative spread"),
                      (["--amount-noise", "0.03", "--context", str(cycle["train"])], "new histories")):
        argv = ["synth", "generate", "--run", run, "--rows", "5", "--out", str(tmp_path / "o.csv")] + args
        assert main(argv) == 2
        assert msg in capsys.readouterr().err
    assert main(["synth", "generate", "--run", str(tmp_path), "--rows", "5", "--out", str(tmp_path / "o.csv")]) == 2
    assert "not a synthesis run" in capsys.readouterr().err


def test_evaluate_writes_the_report_folder(cycle, tmp_path):
    syn = tmp_path / "syn.parquet"
    assert main(["synth", "generate", "--run", str(cycle["run"]), "--rows", "60", "--rows-per-history", "30",
                 "--out", str(syn)]) == 0
    out = tmp_path / "eval"
    assert main(["synth", "evaluate", "--real", str(cycle["holdout"]), "--synthetic", str(syn),
                 "--train", str(cycle["train"]), "--out", str(out), "--dcr-rows", "200"]) == 0
    for name in ("report.json", "report.html", "summary.csv", "real_sample.parquet", "synthetic_sample.parquet"):
        assert (out / name).stat().st_size > 0, name
    rep = json.loads((out / "report.json").read_text())
    assert rep["rows"]["synthetic"] == 60 and rep["inputs"]["train"] == str(cycle["train"])
    assert 0.0 <= rep["summary"]["column_fidelity"]["value"] <= 1.0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["metric", "value", "reference", "target", "pass"]
    assert "exact_copy_rate" in set(summary["metric"])
    html = (out / "report.html").read_text()
    assert "plotly" in html.lower() and "column_fidelity" in html
    _check_typed(pd.read_parquet(out / "synthetic_sample.parquet"))
