"""Day-level sampling of card histories: even an untrained model writes valid rows, in time order by construction."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from foundation.atomic import MARKER
from forecaster.synthesis.clock import next_times, window_minutes
from forecaster.synthesis.documents import SynthesisInputError, card_rows, read_table
from forecaster.synthesis.generate import ConditionError, Synthesizer, parse_condition
from forecaster.synthesis.privacy import NearCopyIndex, near_copy_keys
from forecaster.synthesis.train import train_synthesizer


@pytest.fixture(scope="module")
def first_rows(shared_data: Path) -> pd.DataFrame:
    """The first 3,000 rows of the shared sample (three cards, 2002-2005)."""
    return read_table(shared_data / "tabformer" / "User0_credit_card_transactions.csv").iloc[:3000]


@pytest.fixture(scope="module")
def untrained(first_rows, tmp_path_factory) -> Synthesizer:
    """A day-tiny run after one step, its output layer zeroed: every valid id about equally likely
    (the worst case for validity and order)."""
    table = first_rows
    run = tmp_path_factory.mktemp("synth") / "run"
    train_synthesizer(table, run, "day-tiny", max_steps=1, eval_every=1, progress=False)
    syn = Synthesizer(run, which="last")
    with torch.no_grad():
        syn.model.lm_head.weight.mul_(0.0)
    return syn


def test_untrained_model_histories_are_ordered_and_valid(untrained):
    table, stats = untrained.generate(300, rows_per_history=30, seed=1, batch_paths=4)
    assert len(table) == 300 and stats.histories == 10 and stats.out_of_order_rows == 0
    for _, h in table.groupby("user", sort=False):  # in the order sampled: nothing was sorted
        assert (h["timestamp"].diff().dropna() >= pd.Timedelta(0)).all()
        assert h["card"].nunique() == 1
    for col in ("card", "timestamp", "amount", "use_chip", "merchant_name", "merchant_city", "mcc", "is_fraud"):
        assert table[col].notna().all(), col  # no "unknown" category, no missing where the data has none
    # the gap drawn is the gap written: re-encoding each history gives back gap bins whose range holds it
    rows = card_rows(table)
    gaps = rows["gap"].to_numpy()
    assert np.isnan(gaps[0]) and np.nanmin(gaps) >= 0


def _pairs(table: pd.DataFrame) -> pd.Series:
    """(card, month) of every row, as "card|YYYY-MM" text."""
    return table["card"].astype(int).astype(str) + "|" + table["timestamp"].dt.to_period("M").astype(str)


def test_histories_start_in_a_month_their_card_was_used(untrained, first_rows):
    """Card and start month are drawn jointly: every pair drawn is a training (card, month), in proportion."""
    train = _pairs(first_rows).value_counts()
    n = 400
    a_cards, a_start = untrained.start_points(n, np.random.default_rng(7))
    b_cards, b_start = untrained.start_points(n, np.random.default_rng(7))
    assert np.array_equal(a_cards, b_cards) and np.array_equal(a_start, b_start)  # seeded: the same draw
    drawn = pd.Series(a_cards.astype(str)) + "|" + pd.Series(pd.to_datetime(a_start, unit="m")).dt.to_period("M").astype(str)
    assert drawn.isin(train.index).all()
    # systematic sampling: each pair's count is its training share of n, to within one
    counts = drawn.value_counts().reindex(train.index, fill_value=0)
    assert (counts - train / train.sum() * n).abs().max() <= 1.0
    # a card never starts before its first training month (the independent draw did not know cards' lives)
    first_month = first_rows.groupby(first_rows["card"].astype(int))["timestamp"].min().dt.to_period("M")
    months = pd.Series(pd.to_datetime(a_start, unit="m")).dt.to_period("M")
    assert all(m >= first_month[c] for c, m in zip(a_cards, months))
    # whole tables: the same seed gives the same histories, another seed others
    t1, _ = untrained.generate(60, rows_per_history=20, seed=11, burn_in=0)
    t2, _ = untrained.generate(60, rows_per_history=20, seed=11, burn_in=0)
    t3, _ = untrained.generate(60, rows_per_history=20, seed=12, burn_in=0)
    pd.testing.assert_frame_equal(t1, t2)
    assert not t1["timestamp"].equals(t3["timestamp"])


def test_burn_in_is_primed_with_the_cards_use_that_month(untrained, first_rows):
    """``start_use_chip``: each history's card's most common use_chip in its start month (the burn-in is forced to it)."""
    table = untrained.meta["seed"]["card_month_use_chip"]
    month = first_rows["timestamp"].dt.to_period("M").astype(str)
    want = first_rows.groupby([first_rows["card"].astype(int), month])["use_chip"].agg(lambda s: s.value_counts().index[0])
    assert {(c, m): v for c, m, v in table} == {k: str(v) for k, v in want.items()}
    cards, start = untrained.start_points(50, np.random.default_rng(3))
    prime = untrained.start_use_chip(cards, start)
    months = pd.Series(pd.to_datetime(start, unit="m")).dt.to_period("M").astype(str)
    assert list(prime) == [str(want[(c, m)]) for c, m in zip(cards, months)]
    assert untrained.start_use_chip(np.array([99]), start[:1])[0] == untrained.meta["seed"]["modes"]["use_chip"]


def test_a_run_without_the_joint_table_draws_independently_and_says_so(untrained, first_rows, tmp_path):
    """An older run (no ``card_months``) still generates, from the marginals, with a note; rerunning
    ``synth train`` on the same data adds the table without training further."""
    old = tmp_path / "old"
    shutil.copytree(untrained.run_dir, old)
    meta = json.loads((old / "synthesis.json").read_text())
    del meta["seed"]["card_months"], meta["seed"]["card_month_use_chip"]
    (old / "synthesis.json").write_text(json.dumps(meta))
    syn = Synthesizer(old, which="last")
    assert syn.start_note is not None and "independently" in syn.start_note and untrained.start_note is None
    cards, start = syn.start_points(300, np.random.default_rng(1))
    assert set(cards) <= set(first_rows["card"].astype(int))
    months = pd.Series(pd.to_datetime(start, unit="m")).dt.to_period("M").astype(str)
    assert months.isin(set(first_rows["timestamp"].dt.to_period("M").astype(str))).all()
    notes: list[str] = []
    table, stats = syn.generate(40, rows_per_history=20, seed=2, log=notes.append)
    assert len(table) == 40 and stats.out_of_order_rows == 0 and notes == [syn.start_note]
    res = train_synthesizer(first_rows, old, "day-tiny", max_steps=1, eval_every=1, progress=False)
    assert res.reason == "already_finished"
    assert json.loads((old / "synthesis.json").read_text())["seed"]["card_months"] == \
        untrained.meta["seed"]["card_months"]
    assert Synthesizer(old, which="last").start_note is None
    assert syn.start_use_chip(cards, start) is None  # no table: no priming


def test_day_small_trains_the_synthesis_shape(first_rows, tmp_path):
    """Synthesis pins its own model shape over the market-tuned preset (``SYNTHESIS_SHAPE``); an option overrides it."""
    from forecaster.synthesis.train import SYNTHESIS_SHAPE

    kw = dict(max_steps=1, eval_every=1, context_rows=8, batch_size=2, progress=False)
    train_synthesizer(first_rows, tmp_path / "a", "day-small", **kw)
    cfg = json.loads((tmp_path / "a" / "model_config.json").read_text())
    assert {k: cfg[k] for k in SYNTHESIS_SHAPE["day-small"]} == {"state_dropout": 0.0, "local_n_embd": 128}
    train_synthesizer(first_rows, tmp_path / "b", "day-small", model_options={"state_dropout": 0.3}, **kw)
    cfg = json.loads((tmp_path / "b" / "model_config.json").read_text())
    assert cfg["state_dropout"] == 0.3 and cfg["local_n_embd"] == 128
    res = train_synthesizer(first_rows, tmp_path / "b", "day-small", **kw)  # resumes with the shape it started with
    assert res.reason == "already_finished"



def test_the_validation_cut_is_recorded_and_kept_on_resume(first_rows, tmp_path):
    """New runs validate before each card's latest 15% (``VAL_TAIL``); the cut is in synthesis.json and
    run.json, a resumed run keeps it, another --val-tail for it is refused, a run without it resumes with 0."""
    from forecaster.synthesis.train import SynthesisInputError

    kw = dict(max_steps=1, eval_every=1, context_rows=8, progress=False)
    lines: list[str] = []
    res = train_synthesizer(first_rows, tmp_path / "a", "day-tiny", log=lines.append, **kw)
    assert res.val_tail == 0.15 and "10% of each card's rows just before its latest 15%, which train" in lines[0]
    meta = json.loads((tmp_path / "a" / "synthesis.json").read_text())
    assert meta["validation"] == {"fraction": 0.1, "tail_fraction": 0.15}
    assert json.loads((tmp_path / "a" / "run.json").read_text())["val_tail"] == 0.15
    # the latest rows train: the training range ends on the table's last day
    assert json.loads((tmp_path / "a" / "run.json").read_text())["train_range"][1] == \
        str(first_rows["timestamp"].max().date())
    with pytest.raises(SynthesisInputError, match="keeps its validation cut"):
        train_synthesizer(first_rows, tmp_path / "a", "day-tiny", val_tail=0.0, **kw)
    old = train_synthesizer(first_rows, tmp_path / "b", "day-tiny", val_tail=0.0, log=lines.append, **kw)
    assert old.val_tail == 0.0 and "(latest 10% of each card)" in lines[-1] and old.train_windows > res.train_windows
    meta = json.loads((tmp_path / "b" / "synthesis.json").read_text())
    del meta["validation"]  # a run trained before the cut was recorded
    (tmp_path / "b" / "synthesis.json").write_text(json.dumps(meta))
    again = train_synthesizer(first_rows, tmp_path / "b", "day-tiny", **kw)
    assert again.reason == "already_finished" and again.val_tail == 0.0
    assert json.loads((tmp_path / "b" / "synthesis.json").read_text())["validation"]["tail_fraction"] == 0.0
    with pytest.raises(SynthesisInputError, match="--val-tail"):
        train_synthesizer(first_rows, tmp_path / "c", "day-tiny", val_tail=0.95, **kw)


def test_time_of_day_stays_inside_the_gap_bin():
    prev = np.array([0, 1439, 600, 100])       # minutes since 1970: 00:00, 23:59, 10:00, 01:40
    lo, hi = np.array([5, 1, 1440, 0]), np.array([6, 3, 2880, 1])
    value = np.array([5.0, 2.0, 2000.0, 0.0])
    tod = np.array([5, 1, 9 * 60, 100])         # 00:05, 00:01 (next day), 09:00 (day 2: day 1 is before 10:00 + 1 d), same minute
    t = next_times(prev, lo, hi, value, tod)
    assert t.tolist() == [5, 1441, 2 * 1440 + 540, 100]
    assert np.all(t - prev >= lo) and np.all(t - prev < hi)
    win = window_minutes(prev, lo, hi)
    assert win[np.arange(4), t % 1440].all()
    assert win[0].sum() == 1 and win[2].all()  # a day-wide bin allows every time of day


def test_conditions_are_forced_in_every_row(untrained):
    table, _ = untrained.generate(40, rows_per_history=20, seed=2,
                                  conditions={"use_chip": "Online Transaction", "merchant_state": "CA"})
    assert (table["use_chip"] == "Online Transaction").all() and (table["merchant_state"] == "CA").all()
    with pytest.raises(ConditionError, match="never occurs"):  # the first 3,000 rows hold no fraud
        untrained.generate(5, conditions={"is_fraud": True})
    with pytest.raises(ConditionError, match="never occurs"):
        untrained.generate(5, conditions={"merchant_state": "Atlantis"})


def test_dedupe_drops_near_copies(untrained):
    first, _ = untrained.generate(120, rows_per_history=30, seed=3)
    fake_train = first.iloc[::6]  # pretend every sixth row is a training row
    index = NearCopyIndex(fake_train)
    table, stats = untrained.generate(120, rows_per_history=30, seed=3, dedupe=index)
    assert stats.near_copies_dropped > 0 and stats.out_of_order_rows == 0
    assert not np.isin(near_copy_keys(table), near_copy_keys(fake_train)).any()
    assert len(table) == 120 and table.groupby("user").size().eq(30).all()
    for _, h in table.groupby("user", sort=False):  # the later rows moved back by whole days: still in order
        assert (h["timestamp"].diff().dropna() >= pd.Timedelta(0)).all()
    # with a tolerance, rows whose amount is near a training row's (the rest equal) go too
    near = fake_train.assign(amount=fake_train["amount"] + 0.5)
    assert not NearCopyIndex(near).close(fake_train).any() and NearCopyIndex(near).close(fake_train, 0.5).all()
    loose, _ = untrained.generate(120, rows_per_history=30, seed=3, dedupe=NearCopyIndex(near), dedupe_tolerance=1.0)
    assert not NearCopyIndex(near).close(loose, 1.0).any()


def test_amount_noise_moves_amounts_only(untrained):
    """--amount-noise: the same histories (same seed), each amount times a log-normal factor, in cents."""
    plain, _ = untrained.generate(80, rows_per_history=40, seed=6)
    noisy, stats = untrained.generate(80, rows_per_history=40, seed=6, amount_noise=0.05)
    again, _ = untrained.generate(80, rows_per_history=40, seed=6, amount_noise=0.05)
    pd.testing.assert_frame_equal(noisy, again)
    pd.testing.assert_frame_equal(noisy.drop(columns="amount"), plain.drop(columns="amount"))
    a, b = plain["amount"].to_numpy(float), noisy["amount"].to_numpy(float)
    assert np.allclose(b, np.round(b, 2)) and (np.sign(a) == np.sign(b))[np.abs(a) > 0.5].all()
    big = np.abs(a) > 20  # cents rounding aside, |log factor| ~ N(0, 0.05): most rows move, none by 30%
    ratio = np.log(b[big] / a[big])
    assert (a != b).mean() > 0.8 and np.abs(ratio).max() < 0.3 and 0.02 < ratio.std() < 0.08
    assert stats.out_of_order_rows == 0
    with pytest.raises(SynthesisInputError, match="amount noise"):
        untrained.generate(10, amount_noise=-0.1)


def test_same_seed_same_rows(untrained):
    a, _ = untrained.generate(50, rows_per_history=25, seed=5)
    b, _ = untrained.generate(50, rows_per_history=25, seed=5)
    pd.testing.assert_frame_equal(a, b)


def test_parse_condition():
    assert parse_condition("is_fraud=Yes") == ("is_fraud", True)
    assert parse_condition("merchant_state=") == ("merchant_state", None)
    assert parse_condition("mcc=5411") == ("mcc", 5411)
    for bad in ("is_fraud", "amount=3", "mcc=abc", "is_fraud=maybe"):
        with pytest.raises(ConditionError):
            parse_condition(bad)


def test_export_model_holds_only_what_generation_needs(untrained, tmp_path, capsys):
    from forecaster.cli import main

    out = tmp_path / "model"
    assert main(["synth", "export-model", "--run", str(untrained.run_dir), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    files = {"best.safetensors", "model_config.json", "tokenizer.json", "run.json", "synthesis.json"}
    assert names == files | {"manifest.json", MARKER}  # no checkpoint, optimizer state or metrics
    meta = json.loads((out / "synthesis.json").read_text())
    assert set(meta) <= {"format", "version", "columns", "row_columns", "features", "seed", "exported"}
    assert set(meta["seed"]) == {"cards", "months", "card_months", "card_month_use_chip", "modes"}
    assert all(round(v / 0.05, 6) == round(v / 0.05) for v in meta["seed"]["cards"].values())  # coarse shares
    joint = meta["seed"]["card_months"]  # (card, month) shares of all rows, rounded to 0.001: no counts
    run_pairs = {(c, m) for c, m, _ in untrained.meta["seed"]["card_months"]}
    assert joint and all((c, m) in run_pairs and round(v / 0.001, 6) == round(v / 0.001) for c, m, v in joint)
    assert sum(v for _, _, v in joint) == pytest.approx(1.0, abs=0.05)
    assert set(json.loads((out / "run.json").read_text())) == {"model", "tokenizer_fingerprint"}  # no data path
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == files
    table, stats = Synthesizer(out).generate(60, rows_per_history=30, seed=4)
    assert len(table) == 60 and stats.out_of_order_rows == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    assert main(["synth", "export-model", "--run", str(untrained.run_dir), "--out", str(tmp_path / "mine")]) == 2
    assert "not a synth-model" in capsys.readouterr().err
