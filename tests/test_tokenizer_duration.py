"""The duration codec: minutes to months in log bins, exact small gaps, a missing token, saved and loaded."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.core.tokenizer import ColumnSpec, EncodeError, SpecError, TableTokenizer
from forecaster.core.tokenizer.duration_codec import DurationCodec, log_edges

DAY = 1440.0


def _gaps(n: int = 2000, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    x = np.round(np.exp(rng.uniform(0, np.log(90 * DAY), n)))  # 1 minute .. 3 months, log-uniform
    x[:20] = 0.0
    return pd.Series(x)


def test_edges_are_whole_minutes_consecutive_then_geometric():
    e = log_edges(64, 120 * DAY)
    assert len(e) == 65 and e[0] == 0 and e[1] == 1 and e[-1] == 120 * DAY
    assert np.all(np.diff(e) >= 1) and np.all(e == np.round(e))
    ratio = e[-10:] / e[-11:-1]
    assert np.allclose(ratio, ratio[0], rtol=1e-3)  # a fixed relative width at the top


def test_round_trip_minutes_to_months():
    x = _gaps()
    tok = TableTokenizer.fit(pd.DataFrame({"gap": x}), {"gap": ColumnSpec(kind="duration", bins=64)})
    codec = tok.codec("gap")
    assert isinstance(codec, DurationCodec) and tok.column_slots("gap") == slice(0, 1)
    ids = tok.encode(pd.DataFrame({"gap": x}))
    back = tok.decode(ids)["gap"].to_numpy()
    # exact where a bin is one minute wide, within the bin's relative width elsewhere
    small = x.to_numpy() < 8
    assert np.array_equal(back[small], x.to_numpy()[small])
    rel = np.abs(back - x.to_numpy()) / np.maximum(x.to_numpy(), 1)
    assert rel.max() <= codec.relative_error + 1e-9 and codec.relative_error < 0.25
    assert np.abs(back - x.to_numpy()).max() <= codec.error_bound
    # ids -> values -> the same ids (the round trip the sampler relies on)
    assert np.array_equal(tok.encode(pd.DataFrame({"gap": back})), ids)
    lo, hi = codec.bin_bounds(ids[:, 0] - tok.column_vocab("gap").start)
    assert np.all((lo <= x.to_numpy()) & (x.to_numpy() < hi))


def test_missing_token_and_clamping(tmp_path):
    x = pd.Series([np.nan, 0.0, 5.0, 3 * DAY, np.nan])
    tok = TableTokenizer.fit(pd.DataFrame({"gap": x}), {"gap": ColumnSpec(kind="duration", bins=16)})
    back = tok.decode(tok.encode(pd.DataFrame({"gap": x})))["gap"]
    assert back.isna().tolist() == [True, False, False, False, True]
    assert back[1] == 0.0 and abs(back[2] - 5.0) <= tok.codec("gap").error_bound
    _, report = tok.encode_with_report(pd.DataFrame({"gap": [1e9]}))
    assert report.get("gap") == 1  # clamped into the last bin, counted
    tok.save(tmp_path / "t.json")
    again = TableTokenizer.load(tmp_path / "t.json")
    assert again.fingerprint() == tok.fingerprint()
    assert np.array_equal(again.encode(pd.DataFrame({"gap": x})), tok.encode(pd.DataFrame({"gap": x})))


def test_timedeltas_are_minutes():
    x = pd.Series(pd.to_timedelta([0, 90, 3 * 1440], unit="m"))
    tok = TableTokenizer.fit(pd.DataFrame({"gap": x}), {"gap": ColumnSpec(kind="duration")})
    assert tok.decode(tok.encode(pd.DataFrame({"gap": x})))["gap"].tolist()[:1] == [0.0]


def test_bad_input_is_refused():
    with pytest.raises(EncodeError, match="negative"):
        TableTokenizer.fit(pd.DataFrame({"gap": [-1.0, 2.0]}), {"gap": ColumnSpec(kind="duration")})
    with pytest.raises(SpecError, match="bins"):
        ColumnSpec(kind="duration", bins=2)
    with pytest.raises(SpecError, match="duration columns only"):
        TableTokenizer.fit(pd.DataFrame({"x": [1.0, 2.0]}), {"x": ColumnSpec(kind="float", bins=8)})
