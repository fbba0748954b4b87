"""Saving and loading the tokenizer: JSON, versioned, strict, and encoding identically."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecaster.core.tokenizer import VERSION, ColumnSpec, FormatError, TableTokenizer
from forecaster.core.tokenizer.transforms import TRANSFORMS


def mixed_frame(seed: int, n: int, transform: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_t(2, n) * 10.0 ** rng.uniform(-6, 6)
    if transform in ("log", "log1p"):
        x = np.abs(x) + 1e-3
    x[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "n": rng.integers(-1000, 1000, n),
            "c": rng.choice(["a", "b", "c", "d"], n),
            "t": pd.Timestamp("2001-03-04 05:06:07") + pd.to_timedelta(rng.integers(0, 10**8, n), unit="s"),
            "d": (pd.Timestamp("1999-12-31 23:00") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="min")).where(rng.random(n) > 0.1),
            "k": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 5, n)), dtype="Int64"),
        }
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), transform=st.sampled_from(sorted(TRANSFORMS)))
def test_saved_then_loaded_encodes_identically(tmp_path, seed, n, transform):
    frame = mixed_frame(seed, n, transform)
    specs = {"x": ColumnSpec(transform=transform, nullable=True), "t": ColumnSpec(parts=("timestamp",), unit="s"),
             "d": ColumnSpec(nullable=True), "k": ColumnSpec(kind="category", nullable=True)}
    tok = TableTokenizer.fit(frame, specs)
    path = tmp_path / f"tok-{seed}.json"
    tok.save(path)
    loaded = TableTokenizer.load(path)
    probe = mixed_frame(seed + 1, 50, transform)  # new data, some of it out of range
    a, ca = tok.encode_with_report(probe)
    b, cb = loaded.encode_with_report(probe)
    np.testing.assert_array_equal(a, b)
    assert ca == cb
    pd.testing.assert_frame_equal(tok.decode(a), loaded.decode(b))
    assert loaded.fingerprint() == tok.fingerprint()
    np.testing.assert_array_equal(loaded.valid_mask(), tok.valid_mask())


@pytest.fixture()
def saved(tmp_path):
    tok = TableTokenizer.fit(mixed_frame(0, 100, "quantile"), {"x": ColumnSpec(transform="quantile")})
    path = tmp_path / "tok.json"
    tok.save(path)
    return tok, path


def test_file_is_readable_json(saved):
    tok, path = saved
    doc = json.loads(path.read_text())
    assert doc["version"] == VERSION and doc["tokens_per_row"] == tok.tokens_per_row
    assert [c["name"] for c in doc["columns"]] == ["x", "n", "c", "t", "d", "k"]
    assert doc["columns"][0]["codec"]["transform"]["name"] == "quantile"
    assert doc["columns"][2]["codec"]["categories"] == ["a", "b", "c", "d"]
    assert not path.read_bytes().startswith(b"\x80"), "not a pickle"


def _rewrite(path, edit):
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(version=99), "version 99 is not supported"),
        (lambda d: d.pop("columns"), r"missing field\(s\) \['columns'\]"),
        (lambda d: d.update(extra=1), r"unknown field\(s\) \['extra'\]"),
        (lambda d: d["columns"][0]["codec"].pop("width"), "lacks field 'width'"),
        (lambda d: d["columns"][1]["codec"].update(color="red"), "unknown or missing"),
        (lambda d: d["columns"][2]["codec"]["categories"].append("e"), "do not match"),
        (lambda d: d.update(format="something else"), "not a table tokenizer"),
        (lambda d: d["columns"][0].update(spec={"kind": "float", "colour": 1}), "unknown ColumnSpec field"),
    ],
)
def test_bad_files_are_clear_errors(saved, edit, message):
    _, path = saved
    _rewrite(path, edit)
    with pytest.raises(FormatError, match=message):
        TableTokenizer.load(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FormatError, match="does not exist"):
        TableTokenizer.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        TableTokenizer.load(tmp_path / "bad.json")


def test_fingerprint_changes_with_the_fit():
    a = TableTokenizer.fit(mixed_frame(0, 100, "none"))
    b = TableTokenizer.fit(mixed_frame(1, 100, "none"))
    assert a.fingerprint() != b.fingerprint() and len(a.fingerprint()) == 64
    assert a.fingerprint() == TableTokenizer.from_dict(a.to_dict()).fingerprint()
