"""Synthesis documents on the real TabFormer sample: split, segments, tokenizer round trip, files, bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_sources.errors import DataError
from foundation.errors import UserError
from data_sources.tabformer import PUBLISHED_COLUMNS, TYPED_COLUMNS
from forecaster.synthesis.clock import next_times
from forecaster.synthesis.documents import (
    FEATURE_NAMES, ROW_COLUMNS, VAL_TAIL, SynthesisInputError, card_rows, card_segments, describe_cut,
    fit_tokenizer, order_cards, read_table, row_features, split_by_card, split_segments, window_datasets, write_table,
)
from forecaster.core.training.windows import Segment


@pytest.fixture(scope="module")
def sample(shared_data: Path) -> pd.DataFrame:
    return read_table(shared_data / "tabformer" / "User0_credit_card_transactions.csv")


def test_split_by_card_keeps_every_row_once_and_cuts_each_card_by_time(sample):
    train, holdout = split_by_card(sample, 0.8)
    assert len(train) + len(holdout) == len(sample) == 19_963
    for card, rows in sample.groupby("card"):
        tr, ho = train[train.card == card], holdout[holdout.card == card]
        assert len(tr) == round(len(rows) * 0.8)
        assert tr.timestamp.max() <= ho.timestamp.min()  # every held-out row is later
    both = pd.concat([train, holdout]).sort_values(["card", "timestamp", "amount", "merchant_name"])
    ref = sample.sort_values(["card", "timestamp", "amount", "merchant_name"])
    pd.testing.assert_frame_equal(both.reset_index(drop=True), ref.reset_index(drop=True))


def test_split_fraction_out_of_range_is_a_user_error(sample):
    with pytest.raises(SynthesisInputError, match="fraction"):
        split_by_card(sample, 1.0)


def test_tokenizer_round_trip_on_the_real_sample(sample):
    tok = fit_tokenizer(sample)
    assert tok.columns == list(ROW_COLUMNS) and "user" not in tok.columns and "timestamp" not in tok.columns
    rows = card_rows(sample)
    ids = tok.encode(rows)
    back = tok.decode(ids)
    for col in ROW_COLUMNS:
        a, b = rows[col].reset_index(drop=True), back[col]
        if col == "amount":
            np.testing.assert_allclose(b.to_numpy(float), a.to_numpy(float), atol=1e-9)  # cent grid: exact
        elif col == "gap":  # log bins: the real gap lies in the bin its id names
            lo, hi = tok.codec("gap").bin_bounds(ids[:, tok.column_slots("gap").start] - tok.column_vocab("gap").start)
            first = a.isna().to_numpy()
            assert first.sum() == 5 and b.isna().to_numpy().tolist() == first.tolist()  # one first row per card
            assert np.all((lo[~first] <= a[~first]) & (a[~first] < hi[~first]))
        else:
            assert (a.astype(object).fillna("NA").astype(str) == b.astype(object).fillna("NA").astype(str)).all(), col
    # the clock rebuilds every timestamp from the previous one, the gap's bin and the time of day
    t = order_cards(sample)["timestamp"].to_numpy().astype("datetime64[m]").astype(np.int64)
    gap_ids = ids[:, tok.column_slots("gap").start] - tok.column_vocab("gap").start
    lo, hi = tok.codec("gap").bin_bounds(gap_ids)
    value = tok.codec("gap").values[np.minimum(gap_ids, tok.codec("gap").n_bins - 1)]
    nxt = ~rows["gap"].isna().to_numpy()
    rebuilt = next_times(t[:-1][nxt[1:]], lo[nxt], hi[nxt], value[nxt],
                         rows["hour"].to_numpy()[nxt] * 60 + rows["minute"].to_numpy()[nxt])
    err_days = np.abs(rebuilt - t[nxt]) / 1440
    assert (rebuilt >= t[:-1][nxt[1:]]).all() and (rebuilt % 1440 == t[nxt] % 1440).all()
    assert np.mean(err_days == 0) > 0.8 and err_days.max() <= 0.2 * (hi[nxt] / 1440).max()


def test_row_features(sample):
    ts = sample["timestamp"].to_numpy()[:50]
    f = row_features(ts, np.full(50, 1440.0))
    assert f.shape == (50, len(FEATURE_NAMES)) and f.dtype == np.float32
    assert (f[:, :7].argmax(axis=1) == sample["timestamp"].dt.day_of_week.to_numpy()[:50]).all()
    assert np.allclose(f[:, 9], np.log(2.0))  # one day since the previous transaction


def test_card_segments_are_per_card_and_time_ordered(sample):
    tok = fit_tokenizer(sample)
    segs = card_segments(tok, sample)
    assert sorted(len(s.tokens) for s in segs) == sorted(sample.groupby("card").size().tolist())
    for s in segs:
        assert (np.diff(s.times.astype("int64")) >= 0).all()
        assert s.tokens.shape[1] == tok.tokens_per_row and s.features.shape == (len(s.tokens), len(FEATURE_NAMES))
    tr, va = split_segments(segs, 0.1)
    assert sum(len(s.tokens) for s in tr) + sum(len(s.tokens) for s in va) == len(sample)


def _indexed(segs):
    """The segments with each row's token replaced by its row number within its card (row identity)."""
    return [Segment(np.arange(len(s.tokens), dtype=np.int64)[:, None], s.times, s.features) for s in segs]


@pytest.fixture(scope="module")
def train_part_segments(sample):
    """The cards of the reference evaluation's training part (the first 80% of each card), and that table."""
    train, _ = split_by_card(sample, 0.8)
    return card_segments(fit_tokenizer(train), train), order_cards(train)


def test_default_cut_keeps_each_cards_latest_rows_in_training(train_part_segments):
    """The validation block sits before each card's latest 15%: those rows, cards 0 and 2's only chip
    transactions among them, train (the old cut, VAL_TAIL 0, validated on them)."""
    segs, table = train_part_segments
    assert VAL_TAIL == 0.15
    for card, s in zip(sorted(table["card"].unique()), _indexed(segs)):
        n = len(s.tokens)
        tr, va = split_segments([s], 0.1)
        train_rows = np.concatenate([t.tokens[:, 0] for t in tr])
        (val_rows,) = [v.tokens[:, 0] for v in va]
        assert sorted(np.r_[train_rows, val_rows]) == list(range(n))  # every row once
        assert len(val_rows) == round(n * 0.1) and val_rows[-1] == n - round(n * 0.15) - 1
        assert set(range(n - round(n * 0.15), n)) <= set(train_rows)  # the latest rows train
        old_tr, old_va = split_segments([s], 0.1, val_tail=0.0)  # the old cut: the latest rows validate
        assert list(old_va[0].tokens[:, 0]) == list(range(round(n * 0.9), n)) and len(old_tr) == 1
        if card in (0, 2):  # their only chip transactions (2015) are their latest: the old cut hid them
            chip = np.flatnonzero(table[table.card == card]["use_chip"].to_numpy() == "Chip Transaction")
            assert len(chip) > 100 and set(chip) <= set(train_rows) and set(chip) <= set(old_va[0].tokens[:, 0])


def test_no_training_window_holds_a_validation_row_or_splices_across_the_block(train_part_segments):
    segs, _ = train_part_segments
    for s in _indexed(segs)[:4]:  # card 4 (17 rows) makes no 17-row window
        n = len(s.tokens)
        train_ds, val_ds = window_datasets([s], 16, 0.1)
        val_rows = set(split_segments([s], 0.1)[1][0].tokens[:, 0])
        windows = [train_ds.window(i)[:, 0] for i in range(len(train_ds))]
        assert all((np.diff(w) == 1).all() for w in windows), "a window splices rows that are not consecutive"
        assert not set(np.concatenate(windows)) & val_rows
        assert windows[-1][-1] == n - 1  # the card's last row is a training target
        assert {int(w[0]) for w in windows} == set(range(min(val_rows) - 16)) | set(range(max(val_rows) + 1, n - 16))
        assert set(np.concatenate([val_ds.window(i)[:, 0] for i in range(len(val_ds))])) <= val_rows


def test_the_cut_is_deterministic(train_part_segments):
    segs, _ = train_part_segments
    runs = [window_datasets(segs, 64, 0.1) for _ in range(2)]
    for a, b in zip(*runs):
        assert np.array_equal(a._starts, b._starts) and len(a) > 0
        assert all(np.array_equal(x.tokens, y.tokens) for x, y in zip(a.segments, b.segments))
    train_ds, val_ds = runs[0]
    old_train, old_val = window_datasets(segs, 64, 0.1, val_tail=0.0)
    assert len(val_ds) == len(old_val) and len(train_ds) < len(old_train)  # two pieces per card: 64 fewer windows each
    refit_train, refit_val = window_datasets(segs, 64, 0.0)
    assert len(refit_val) == 0 and len(refit_train) == sum(max(0, len(s.tokens) - 64) for s in segs)
    # a long context: the latest stretch grows to a window (card 1's 15% is 144 rows), a short card trains whole
    train_ds, val_ds = window_datasets(segs, 256, 0.1)
    for full in segs[:4]:
        n = len(full.tokens)
        tail = [t for t in train_ds.segments if t.times[-1] == full.times[-1] and len(t.tokens) < n]
        assert len(tail) == 1 and len(tail[0].tokens) == max(round(n * 0.15), 257)
    tr, va = split_segments(segs[4:], 0.1, min_tail_rows=65)  # card 4: 17 rows
    assert len(va) == 0 and len(tr) == 1 and len(tr[0].tokens) == len(segs[4].tokens)
    assert describe_cut(0.1, 0.15) == "10% of each card's rows just before its latest 15%, which train"
    assert describe_cut(0.1, 0.0) == "latest 10% of each card"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_read_round_trip(sample, tmp_path, suffix):
    part = sample.iloc[:500]
    back = read_table(write_table(part, tmp_path / f"t{suffix}"))
    pd.testing.assert_frame_equal(back, part.reset_index(drop=True), check_dtype=True)


def test_csv_output_is_the_published_format(sample, tmp_path):
    path = write_table(sample.iloc[:3], tmp_path / "t.csv")
    assert path.read_text().splitlines()[0] == ",".join(PUBLISHED_COLUMNS)


def _bad_file(tmp_path: Path, sample_path: Path, edit) -> Path:
    lines = sample_path.read_text().splitlines()[:20]
    lines[5] = edit(lines[5])
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("edit, what", [
    (lambda line: ",".join(line.split(",")[:6]), "truncated row"),
    (lambda line: line.replace("$", "$abc", 1), "non-numeric amount"),
    (lambda line: line.rsplit(",", 1)[0] + ",Maybe", "unknown fraud label"),
])
def test_bad_rows_stop_or_are_skipped(tmp_path, shared_data, edit, what):
    path = _bad_file(tmp_path, shared_data / "tabformer" / "User0_credit_card_transactions.csv", edit)
    with pytest.raises(DataError, match="line 6"):
        read_table(path)
    table = read_table(path, skip_bad_rows=True)
    assert len(table) == 18, what  # 19 data lines, the bad one left out
    assert list(table.columns) == list(TYPED_COLUMNS)


def test_empty_and_header_only_files_are_user_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError):
        read_table(empty)
    header = tmp_path / "header.csv"
    header.write_text(",".join(PUBLISHED_COLUMNS) + "\n")
    with pytest.raises(UserError, match="no"):
        read_table(header)
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(SynthesisInputError, match=r"\.csv"):
        read_table(tmp_path / "x.txt")
    with pytest.raises(SynthesisInputError, match="does not exist"):
        read_table(tmp_path / "missing.csv")


def test_cli_bad_input_is_one_line_and_skip_bad_rows_reads_on(tmp_path, shared_data, capsys):
    from forecaster.cli import main

    path = _bad_file(tmp_path, shared_data / "tabformer" / "User0_credit_card_transactions.csv",
                     lambda line: line.rsplit(",", 1)[0] + ",Maybe")
    args = ["synth", "split", "--data", str(path), "--train", str(tmp_path / "a.csv"), "--holdout", str(tmp_path / "b.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--skip-bad-rows" in err
    assert main(args + ["--skip-bad-rows"]) == 0
    assert len(read_table(tmp_path / "a.csv")) + len(read_table(tmp_path / "b.csv")) == 18
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["synth", "split", "--data", str(empty), "--train", str(tmp_path / "c.csv"),
                 "--holdout", str(tmp_path / "d.csv")]) == 2
