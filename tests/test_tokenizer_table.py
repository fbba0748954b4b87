"""The row tokenizer: layout, constrained-decoding masks, flat sequences, decode errors and repair."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.core.tokenizer import ColumnSpec, DecodeError, EncodeError, SpecError, TableTokenizer


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "ret": np.where(rng.random(n) < 0.3, 0.0, rng.standard_t(3, n)),
            "level": rng.lognormal(3, 0.5, n),
            "count": pd.array(rng.integers(0, 50, n), dtype="Int64"),
            "kind": rng.choice(["buy", "sell", "hold"], n),
            "when": pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="min"),
        }
    )
    df.loc[::7, "level"] = np.nan
    df.loc[::11, "count"] = pd.NA
    df.loc[::13, "kind"] = None
    return df


@pytest.fixture(scope="module")
def tok(frame) -> TableTokenizer:
    return TableTokenizer.fit(frame, {"ret": ColumnSpec(transform="signed_log", digits=2, base=32), "level": ColumnSpec(transform="log")})


def test_layout(tok, frame):
    assert tok.columns == list(frame.columns)
    assert (tok.bos_id, tok.eos_id, tok.row_id) == (0, 1, 2)
    ids = tok.encode(frame)
    assert ids.shape == (len(frame), tok.tokens_per_row) and ids.dtype == np.int64
    assert np.all(ids[:, -1] == tok.row_id)
    assert tok.tokens_per_row == sum(tok.column_slots(c).stop - tok.column_slots(c).start for c in tok.columns) + 1
    assert tok.column_slots("ret") == slice(0, 2)
    # column vocabulary slices tile the id space after the specials, without overlap
    edges = [(tok.column_vocab(c).start, tok.column_vocab(c).stop) for c in tok.columns]
    assert edges[0][0] == 3 and edges[-1][1] == tok.vocab_size
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))


def test_round_trip_and_dtypes(tok, frame):
    back = tok.decode(tok.encode(frame))
    assert list(back.columns) == list(frame.columns)
    assert back["ret"].dtype == np.float64 and back["level"].dtype == np.float64
    assert str(back["count"].dtype) == "Int64" and str(back["when"].dtype) == "datetime64[ns]"
    pd.testing.assert_series_equal(back["count"], frame["count"].reset_index(drop=True))
    assert back["kind"].tolist() == [k if isinstance(k, str) else back["kind"][i] for i, k in enumerate(frame["kind"])]
    assert back["kind"].isna().tolist() == frame["kind"].isna().tolist()
    assert back["level"].isna().tolist() == frame["level"].isna().tolist()
    ok = frame["level"].notna()
    assert np.all(np.abs(back["level"][ok] - frame["level"][ok]) <= tok.codec("level").error_bound)
    assert np.all(back["ret"][frame["ret"] == 0] == 0.0)  # the anchor: zeros decode exactly


def test_valid_mask_matches_encoded_ids(tok, frame):
    mask = tok.valid_mask()
    assert mask.shape == (tok.tokens_per_row, tok.vocab_size) and mask.dtype == bool
    ids = tok.encode(frame)
    assert mask[np.arange(tok.tokens_per_row), ids].all()
    assert mask[-1].sum() == 1 and mask[-1, tok.row_id]
    assert not mask[:, [tok.bos_id, tok.eos_id]].any()
    # slots own disjoint id ranges
    assert (mask.sum(axis=0) <= 1).all()
    # every id a mask allows decodes: sample rows uniformly from the mask
    rng = np.random.default_rng(1)
    allowed = [np.flatnonzero(m) for m in mask]
    rows = np.stack([rng.choice(a, 200) for a in allowed], axis=1)
    frame2, info = tok.decode_with_report(rows, errors="drop")
    assert info["rows"] + info["dropped_rows"] == 200  # drops only rows whose missing tokens disagree / bad dates


def test_flat_sequence(tok, frame):
    seq = tok.encode_sequence(frame.head(10))
    assert seq[0] == tok.bos_id and seq[-1] == tok.eos_id and seq.size == 10 * tok.tokens_per_row + 2
    pd.testing.assert_frame_equal(tok.decode(seq), tok.decode(tok.encode(frame.head(10))))
    # anything after the first eos is not part of the document
    more = np.concatenate([seq, tok.encode(frame.head(3)).ravel()])
    assert len(tok.decode(more)) == 10


def test_misaligned_sequence_raises_or_resyncs(tok, frame):
    T = tok.tokens_per_row
    body = tok.encode(frame.head(6)).ravel()
    with pytest.raises(DecodeError, match="whole number"):
        tok.decode(body[3:])  # starts mid-row
    with pytest.raises(DecodeError, match="not aligned"):
        tok.decode(body[T - 3 : T - 3 + 4 * T])  # whole length, wrong phase
    back, info = tok.decode_with_report(body[3:], errors="drop")
    assert info["rows"] == 5 and info["dropped_tokens"] == T - 3
    pd.testing.assert_frame_equal(back, tok.decode(body[T:]))
    back, info = tok.decode_with_report(body[: 3 * T + 4], errors="drop")  # trailing partial row
    assert info["rows"] == 3 and info["dropped_tokens"] == 4


def test_invalid_ids_raise_or_drop(tok, frame):
    ids = tok.encode(frame.head(5))
    bad = ids.copy()
    bad[2, tok.column_slots("kind").start] = tok.column_vocab("ret").start  # a ret id in the kind slot
    with pytest.raises(DecodeError, match=r"row 2, position .*'kind'"):
        tok.decode(bad)
    bad[3, 0] = tok.vocab_size + 5
    back, info = tok.decode_with_report(bad, errors="drop")
    assert info == {"rows": 3, "dropped_rows": 2, "dropped_tokens": 0, "coerced_cells": 0}
    # coerce keeps every row and blanks only the cells that do not decode
    back, info = tok.decode_with_report(bad, errors="coerce")
    assert len(back) == 5 and info["coerced_cells"] == 2 and info["dropped_rows"] == 0
    assert pd.isna(back.loc[2, "kind"]) and np.isnan(back.loc[3, "ret"])
    good = tok.decode(ids)
    pd.testing.assert_frame_equal(back.drop(index=[2, 3]), good.drop(index=[2, 3]))
    with pytest.raises(DecodeError):
        tok.decode(ids[:, :-1])  # wrong width
    with pytest.raises(DecodeError):
        tok.decode(ids.astype(float))


def test_every_per_slot_combination_decodes(tok, frame):
    """The missing id lives in a column's first slot only: a sampler that knows just each
    slot's id range can never produce an undecodable value."""
    ids = tok.encode(frame.head(3))
    sl = tok.column_slots("level")
    codec = tok.codec("level")
    off = tok.column_vocab("level").start
    assert codec.slot_sizes()[0] == codec.layout.base + 1 and all(n == codec.layout.base for n in codec.slot_sizes()[1:])
    before = tok.decode(ids)
    ids[1, sl.start] = off + codec.slot_starts()[0] + codec.layout.base  # the missing id, later digits arbitrary
    back = tok.decode(ids)
    assert np.isnan(back.loc[1, "level"])
    pd.testing.assert_series_equal(back["level"].drop(1), before["level"].drop(1))
    # random ids drawn independently per slot from valid_mask always decode
    mask = tok.valid_mask()
    rng = np.random.default_rng(0)
    rows = np.stack([rng.choice(np.flatnonzero(m), size=500) for m in mask], axis=1)
    out, info = tok.decode_with_report(rows)
    assert info["dropped_rows"] == 0 and len(out) == 500


def test_clamp_report_and_unknown_categories(tok, frame):
    new = frame.head(4).copy()
    new.loc[0, "ret"] = 1e6  # a new all-time high
    new.loc[1, "level"] = -5.0  # outside log's domain
    new.loc[2, "kind"] = "short"  # unseen category
    ids, clamped = tok.encode_with_report(new)
    assert clamped == {"ret": 1, "level": 1, "count": 0, "kind": 1, "when": 0}
    back = tok.decode(ids)
    assert back.loc[0, "ret"] == tok.codec("ret").decoded_hi
    assert back.loc[1, "level"] == tok.codec("level").decoded_lo
    assert pd.isna(back.loc[2, "kind"])


def test_encode_errors_are_typed(tok, frame):
    with pytest.raises(EncodeError, match="lacks column"):
        tok.encode(frame.drop(columns=["kind"]))
    strict = TableTokenizer.fit(frame[["ret"]])
    with pytest.raises(EncodeError, match="missing"):
        strict.encode(pd.DataFrame({"ret": [np.nan]}))
    with pytest.raises(EncodeError, match="not integers"):
        tok.encode(frame.assign(count=2.5))
    with pytest.raises(SpecError, match="not in the frame"):
        TableTokenizer.fit(frame, {"nope": ColumnSpec()})
    with pytest.raises(SpecError, match="float columns only"):
        TableTokenizer.fit(frame, {"kind": ColumnSpec(transform="log")})
    with pytest.raises(SpecError, match="positive"):
        TableTokenizer.fit(frame, {"ret": ColumnSpec(transform="log")})


def test_empty_frame_round_trips(tok, frame):
    ids = tok.encode(frame.head(0))
    assert ids.shape == (0, tok.tokens_per_row)
    assert list(tok.decode(ids).columns) == tok.columns


def test_rows_sampled_under_the_constrained_mask_always_decode(tok, frame):
    rng = np.random.default_rng(7)
    rows = np.empty((300, 0), dtype=np.int64)
    for _ in range(tok.tokens_per_row):
        mask = tok.constrained_mask(rows)
        assert mask.shape == (300, tok.vocab_size)
        assert not (mask & ~tok.valid_mask()[rows.shape[1]]).any(), "stricter than valid_mask, never looser"
        choice = np.array([rng.choice(np.flatnonzero(m)) for m in mask])
        rows = np.concatenate([rows, choice[:, None]], axis=1)
    back = tok.decode(rows)  # raises on any inconsistent or impossible row
    assert len(back) == 300 and back["level"].isna().any() and back["level"].notna().any()
    # and the same masks admit every row of real data
    ids = tok.encode(frame)
    for k in range(tok.tokens_per_row):
        assert tok.constrained_mask(ids[:, :k])[np.arange(len(ids)), ids[:, k]].all()


def test_missing_id_is_the_last_id_of_the_first_slot(tok):
    for name in tok.columns:
        codec = tok.codec(name)
        if codec.nullable:
            expected = codec.slot_starts().copy()  # later slots: their first id (digit 0)
            expected[0] = codec.slot_starts()[0] + codec.slot_sizes()[0] - 1
            ids, _ = codec.encode(pd.Series([None], dtype=object if codec.kind == "category" else None).astype(
                {"float": "float64", "int": "Int64", "category": object, "datetime": "datetime64[ns]"}[codec.kind]))
            np.testing.assert_array_equal(ids[0], expected)


def test_fitted_mask_keeps_the_bins_of_the_fitted_range_and_drops_the_headroom():
    """A sampler draws only bins that hold fitted values; the headroom bins stay writable (forcing, later data)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ret": rng.standard_t(4, 3000), "chg": np.round(rng.normal(0, 0.05, 3000), 2),
                          "cat": rng.choice(["a", "b"], 3000)})
    frame.loc[::7, "chg"] = np.nan
    specs = {"ret": ColumnSpec(kind="float", transform="signed_log", base=64, digits=1, headroom=0.25),
             "chg": ColumnSpec(kind="float", base=64, digits=1), "cat": ColumnSpec(kind="category")}
    tok = TableTokenizer.fit(frame, specs)
    valid, fitted = tok.valid_mask(), tok.fitted_mask()
    assert not (fitted & ~valid).any()  # a subset of the valid ids
    ids = tok.encode(frame)
    for j in range(tok.tokens_per_row):  # every id the fitted data uses is kept
        assert fitted[j, np.unique(ids[:, j])].all()
    j = tok.column_slots("ret").start
    dropped = valid[j] & ~fitted[j]
    assert dropped.sum() >= 10  # signed-log headroom: a quarter of the span at each end, many bins
    big = tok.decode(np.where(np.arange(tok.tokens_per_row) == j, np.flatnonzero(dropped)[:1], ids[:1]))["ret"]
    assert abs(big.iloc[0]) > np.abs(frame["ret"]).max()  # a dropped bin is beyond every fitted value
    c = tok.column_slots("chg").start
    assert fitted[c, tok.missing_id("chg")]  # the missing id stays
    np.testing.assert_array_equal(fitted[tok.column_slots("cat").start], valid[tok.column_slots("cat").start])
