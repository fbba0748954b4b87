"""TabFormer credit-card ETL: the real User 0 sample round trip, bad input, writer, GPU dispatch.

The sample is ../shared/data/tabformer/User0_credit_card_transactions.csv, the
exact published format (19,963 rows). Small bad files are built from its first
lines in tmp_path. No test needs a GPU: the cuDF reader is run with pandas as
its dataframe library (it uses only operations the two share).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data_sources.tabformer as tabformer
from data_sources.errors import DataError
from data_sources.gpu import cudf_usable
from data_sources.tabformer import (
    KNOWN_ERROR_FLAGS, TYPED_COLUMNS, TYPED_DTYPES, USE_CHIP, empty_table, error_flag_columns,
    error_flags, iter_tabformer, read_tabformer, sort_transactions, write_tabformer_csv,
)
from data_sources.tabformer.cudf_reader import read_tabformer_cudf
from data_sources.tabformer.schema import HEADER_LINE

N_SAMPLE = 19_963


@pytest.fixture(scope="module")
def sample(tabformer_csv: Path) -> pd.DataFrame:
    return read_tabformer(tabformer_csv, progress=False, engine="cpu")


def sample_lines(tabformer_csv: Path, n: int) -> list[str]:
    """Header plus the first n data lines of the sample, without line ends."""
    with open(tabformer_csv, encoding="utf-8") as fh:
        return [next(fh).rstrip("\n") for _ in range(n + 1)]


def write_lines(path: Path, lines: list[str], final_newline: bool = True) -> Path:
    path.write_bytes(("\n".join(lines) + ("\n" if final_newline else "")).encode())
    return path


# --- the real sample ---------------------------------------------------------------------------

def test_sample_reads_typed(sample: pd.DataFrame):
    assert list(sample.columns) == list(TYPED_COLUMNS)
    assert sample.dtypes.to_dict() == TYPED_DTYPES
    assert len(sample) == N_SAMPLE
    assert (sample["user"] == 0).all() and sorted(sample["card"].unique()) == [0, 1, 2, 3, 4]
    assert int(sample["is_fraud"].sum()) == 27
    assert sample["timestamp"].min() == pd.Timestamp("2002-09-01 06:21")
    assert sample["timestamp"].max().normalize() == pd.Timestamp("2020-02-28")
    online = sample["merchant_city"] == "ONLINE"
    assert online.sum() == (sample["use_chip"] == "Online Transaction").sum() + 2  # 2 chip-less ONLINE rows
    assert sample.loc[online, "merchant_state"].isna().all()
    assert sample.loc[online, "zip"].isna().all()
    assert (sample["amount"] < 0).any(), "refunds are negative amounts"


def test_sample_known_rows(sample: pd.DataFrame):
    first = sample.iloc[0]
    assert first["timestamp"] == pd.Timestamp("2002-09-01 06:21")
    assert first["amount"] == 134.09
    assert first["use_chip"] == "Swipe Transaction"
    assert first["merchant_name"] == 3527213246127876953
    assert (first["merchant_city"], first["merchant_state"], first["zip"]) == ("La Verne", "CA", 91750)
    assert first["mcc"] == 5300 and pd.isna(first["errors"]) and not first["is_fraud"]
    assert sample["merchant_name"].min() < 0, "merchant ids are signed 64-bit"
    beijing = sample[sample["merchant_city"] == "Beijing"].iloc[0]
    assert beijing["merchant_state"] == "China" and pd.isna(beijing["zip"])
    two = sample[sample["errors"] == "Bad PIN,Insufficient Balance"]
    assert len(two) == 1 and two["timestamp"].iloc[0] == pd.Timestamp("2003-12-28 12:54")


def test_round_trip_is_byte_exact(sample: pd.DataFrame, tabformer_csv: Path, tmp_path: Path):
    out = write_tabformer_csv(sample, tmp_path / "out.csv")
    assert out.read_bytes() == tabformer_csv.read_bytes()
    assert list(tmp_path.iterdir()) == [out], "no temporary file left behind"


def test_chunked_read_equals_whole_read(sample: pd.DataFrame, tabformer_csv: Path):
    chunks = list(iter_tabformer(tabformer_csv, chunksize=5_000, progress=False))
    assert [c.first_line for c in chunks] == [2, 5_002, 10_002, 15_002]
    assert [c.n_lines for c in chunks] == [5_000, 5_000, 5_000, 4_963]
    pd.testing.assert_frame_equal(pd.concat([c.table for c in chunks], ignore_index=True), sample)
    odd = read_tabformer(tabformer_csv, chunksize=777, progress=False, engine="cpu")
    pd.testing.assert_frame_equal(odd, sample)


@settings(max_examples=60, deadline=None)
@given(text=st.binary(max_size=60).map(lambda b: b.replace(b"\x00", b"\n")),
       chunksize=st.integers(1, 5), block=st.integers(1, 9))
def test_line_chunks_cut_whole_lines(text: bytes, chunksize: int, block: int):
    import io

    from data_sources.tabformer import reader

    chunks = list(reader.line_chunks(io.BytesIO(text), chunksize, first_line=2, block_size=block))
    assert b"".join(data for _, _, data in chunks) == text
    assert all(data.count(b"\n") == n for _, n, data in chunks[:-1])
    assert all(n == chunksize for _, n, _ in chunks[:-1])
    expected_lines = text.count(b"\n") + (0 if text.endswith(b"\n") or not text else 1)
    assert sum(n for _, n, _ in chunks) == expected_lines
    assert [first for first, _, _ in chunks] == [2 + chunksize * i for i in range(len(chunks))]


def test_crlf_line_ends_read_the_same(sample: pd.DataFrame, tabformer_csv: Path, tmp_path: Path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(tabformer_csv.read_bytes().replace(b"\n", b"\r\n"))
    pd.testing.assert_frame_equal(read_tabformer(path, progress=False), sample)


def test_progress_bar_goes_to_stderr(tabformer_csv: Path, capsys):
    read_tabformer(tabformer_csv, progress=True, engine="cpu")
    captured = capsys.readouterr()
    assert captured.out == "" and "User0_credit_card_transactions.csv" in captured.err


def test_error_flags_split_the_raw_column(sample: pd.DataFrame):
    flags = error_flags(sample["errors"])
    assert flags.iloc[0] == frozenset()
    row = sample.index[sample["errors"] == "Bad PIN,Technical Glitch"][0]
    assert flags[row] == frozenset({"Bad PIN", "Technical Glitch"})
    columns = error_flag_columns(sample["errors"])
    assert list(columns.columns) == list(KNOWN_ERROR_FLAGS)
    assert columns["Insufficient Balance"].sum() == 470  # 469 alone + 1 with Bad PIN
    assert columns.sum(axis=1).max() == 2


def test_sort_transactions_is_stable(sample: pd.DataFrame):
    assert sort_transactions(sample).equals(sample), "the sample is ordered by card, then time"
    shuffled = sample.sample(frac=1.0, random_state=0).assign(order=np.arange(N_SAMPLE))
    out = sort_transactions(shuffled)
    keys = out[["user", "card", "timestamp"]]
    assert keys.equals(keys.sort_values(["user", "card", "timestamp"]).reset_index(drop=True))
    same_key = (keys == keys.shift()).all(axis=1).to_numpy()
    assert same_key.sum() > 50, "the sample has ties (transactions in the same minute)"
    assert (np.diff(out["order"].to_numpy())[same_key[1:]] > 0).all(), "ties keep their input order"
    assert list(out.index) == list(range(N_SAMPLE))


# --- bad input ---------------------------------------------------------------------------------

@pytest.fixture
def bad_file(tabformer_csv: Path, tmp_path: Path) -> Path:
    """20 sample rows with a truncated row (line 5), a bad amount (7), a bad fraud label (12)."""
    lines = sample_lines(tabformer_csv, 20)
    lines[4] = lines[4][:17]  # "0,0,2002,9,2,17:4"
    lines[6] = lines[6].replace("$", "$x", 1)
    lines[11] = lines[11].rsplit(",", 1)[0] + ",Maybe"
    return write_lines(tmp_path / "bad.csv", lines)


def test_bad_rows_raise_with_line_column_value(bad_file: Path):
    with pytest.raises(DataError) as info:
        read_tabformer(bad_file, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert str(bad_file) in message and "line 5" in message
    assert "expected 15 fields, found 6" in message and "0,0,2002,9,2,17:4" in message
    assert "on_error='skip'" in message and "--skip-bad-rows" in message


@pytest.mark.parametrize("chunksize", [3, 1_000])
def test_bad_rows_skipped_and_reported(bad_file: Path, tabformer_csv: Path, sample: pd.DataFrame,
                                       chunksize: int):
    table, bad = read_tabformer(bad_file, on_error="skip", chunksize=chunksize, progress=False)
    assert bad["line"].tolist() == [5, 7, 12]
    assert bad["column"].tolist() == ["", "Amount", "Is Fraud?"]
    assert bad["value"].iloc[1].startswith("$x") and bad["value"].iloc[2] == "Maybe"
    assert "not an amount" in bad["reason"].iloc[1]
    assert "unknown fraud label" in bad["reason"].iloc[2]
    kept = [i for i in range(20) if i + 2 not in (5, 7, 12)]  # data row i is on line i + 2
    pd.testing.assert_frame_equal(table, sample.iloc[kept].reset_index(drop=True))


def test_first_bad_value_raises_when_no_malformed_row(tabformer_csv: Path, tmp_path: Path):
    lines = sample_lines(tabformer_csv, 5)
    lines[3] = lines[3].replace(",No", ",Maybe")
    path = write_lines(tmp_path / "fraud.csv", lines)
    with pytest.raises(DataError, match=r"line 4, column 'Is Fraud\?': unknown fraud label.*'Maybe'"):
        read_tabformer(path, progress=False)


def test_truncated_file_last_line(tabformer_csv: Path, tmp_path: Path):
    text = tabformer_csv.read_bytes()[:5_000]  # cuts a row in the middle, no final newline
    path = tmp_path / "cut.csv"
    path.write_bytes(text)
    n_lines = text.count(b"\n")  # header + complete rows
    table, bad = read_tabformer(path, on_error="skip", progress=False)
    assert len(table) == n_lines - 1
    assert bad["line"].tolist() == [n_lines + 1]


@pytest.mark.parametrize("edit, column, reason", [
    (lambda ln: "", "", "empty line"),
    (lambda ln: ln + ",extra", "", "expected 15 fields, found 16"),
    (lambda ln: ln.replace("2002,9,1,", "2002,2,30,", 1), "Day", "no such day"),
    (lambda ln: ln.replace(",06:21,", ",25:00,"), "Time", "not a time"),
    (lambda ln: ln.replace("Swipe Transaction", "Tap"), "Use Chip", "unknown value"),
    (lambda ln: ln.replace("91750.0", "9175O"), "Zip", "not a zip code"),
    (lambda ln: ln.replace("0,0,2002", "0,x,2002", 1), "Card", "not an integer"),
    (lambda ln: ln.replace(",5300,", ",99999,"), "MCC", "out of range"),
    (lambda ln: ln.replace("3527213246127876953", "99999999999999999999"), "Merchant Name",
     "out of range"),
])
def test_each_field_rule(tabformer_csv: Path, tmp_path: Path, edit, column, reason):
    lines = sample_lines(tabformer_csv, 3)
    lines[1] = edit(lines[1])
    table, bad = read_tabformer(write_lines(tmp_path / "one.csv", lines), on_error="skip", progress=False)
    assert len(table) == 2
    assert bad["line"].tolist() == [2] and bad["column"].tolist() == [column]
    assert reason in bad["reason"].iloc[0]


def test_non_utf8_line_is_reported(tabformer_csv: Path, tmp_path: Path):
    lines = [ln.encode() for ln in sample_lines(tabformer_csv, 4)]
    lines[3] = lines[3].replace(b"Monterey", b"Monter\xe9y")
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    table, bad = read_tabformer(path, on_error="skip", progress=False)
    assert len(table) == 3 and bad["line"].tolist() == [4] and "UTF-8" in bad["reason"].iloc[0]


def test_empty_missing_and_wrong_header(tmp_path: Path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        read_tabformer(empty, progress=False)
    with pytest.raises(DataError, match="no such file"):
        read_tabformer(tmp_path / "nope.csv", progress=False)
    wrong = write_lines(tmp_path / "wrong.csv", [HEADER_LINE.replace("Is Fraud?", "Fraud")])
    with pytest.raises(DataError, match="line 1: wrong header"):
        read_tabformer(wrong, progress=False)
    header_only = write_lines(tmp_path / "header.csv", [HEADER_LINE])
    pd.testing.assert_frame_equal(read_tabformer(header_only, progress=False), empty_table())
    with pytest.raises(ValueError, match="on_error"):
        read_tabformer(header_only, on_error="ignore")


# --- writer ------------------------------------------------------------------------------------

def test_writer_refuses_missing_values_and_keeps_old_file(sample: pd.DataFrame, tmp_path: Path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    broken = sample.head(3).assign(amount=[1.0, np.nan, 2.0])
    with pytest.raises(DataError, match="amount"):
        write_tabformer_csv(broken, target)
    assert target.read_text() == "old"
    with pytest.raises(DataError, match="missing columns"):
        write_tabformer_csv(sample.drop(columns="mcc"), target)
    multiline = sample.head(3).astype({"merchant_city": str})
    multiline.loc[1, "merchant_city"] = "La\nVerne"
    with pytest.raises(DataError, match="'merchant_city' has a value with a line break"):
        write_tabformer_csv(multiline, target)
    assert target.read_text() == "old"


def test_writer_streams_chunks(sample: pd.DataFrame, tabformer_csv: Path, tmp_path: Path):
    chunks = (sample.iloc[i: i + 6_000] for i in range(0, len(sample), 6_000))
    assert write_tabformer_csv(chunks, tmp_path / "o.csv").read_bytes() == tabformer_csv.read_bytes()


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\n"),
                min_size=1, max_size=12)


@st.composite
def typed_tables(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 6))
    col = lambda strategy: draw(st.lists(strategy, min_size=n, max_size=n))  # noqa: E731
    minutes = col(st.integers(0, 60 * 24 * 365 * 150))
    return pd.DataFrame({
        "user": np.array(col(st.integers(0, 2**31 - 1)), dtype=np.int32),
        "card": np.array(col(st.integers(0, 2**15 - 1)), dtype=np.int16),
        "timestamp": (pd.Timestamp("1900-01-01") + pd.to_timedelta(minutes, unit="min")).astype(
            "datetime64[ns]"),
        "amount": np.array(col(st.integers(-10**9, 10**9)), dtype=np.float64) / 100,
        "use_chip": pd.Categorical(col(st.sampled_from(USE_CHIP)), categories=list(USE_CHIP)),
        "merchant_name": np.array(col(st.integers(-(2**63), 2**63 - 1)), dtype=np.int64),
        "merchant_city": pd.array(col(texts), dtype="string[pyarrow]"),
        "merchant_state": pd.array(col(st.none() | texts), dtype="string[pyarrow]"),
        "zip": pd.array(col(st.none() | st.integers(0, 99_999)), dtype="Int32"),
        "mcc": np.array(col(st.integers(0, 9_999)), dtype=np.int16),
        "errors": pd.array(col(st.none() | texts), dtype="string[pyarrow]"),
        "is_fraud": np.array(col(st.booleans()), dtype=bool),
    })


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=typed_tables())
def test_write_then_read_is_identity(table: pd.DataFrame, tmp_path: Path):
    """Any typed table (commas, quotes, unicode in the strings) survives write -> read."""
    path = write_tabformer_csv(table, tmp_path / "t.csv")
    back = read_tabformer(path, progress=False)
    pd.testing.assert_frame_equal(back, table.reset_index(drop=True))


# --- GPU probe and dispatch --------------------------------------------------------------------

def test_cudf_probe(monkeypatch):
    """False without cuDF, when the first device operation fails, or when disabled; cached."""
    import types

    def probe_with(module) -> bool:
        cudf_usable.cache_clear()
        monkeypatch.setitem(sys.modules, "cudf", module)
        return cudf_usable()

    def no_device(*args, **kwargs):
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    try:
        assert probe_with(None) is False  # "import cudf" fails, as without the gpu extra
        assert probe_with(types.SimpleNamespace(Series=no_device)) is False  # imports, then fails
        assert probe_with(pd) is True  # pandas stands in for a working cuDF
        monkeypatch.setitem(sys.modules, "cudf", None)
        assert cudf_usable() is True, "the answer is cached"
        monkeypatch.setenv("FORECASTER_USE_CUDF", "0")
        assert probe_with(pd) is False
    finally:
        cudf_usable.cache_clear()


def test_engine_cudf_without_gpu_is_a_clear_error(tabformer_csv: Path, monkeypatch):
    monkeypatch.setattr(tabformer, "cudf_usable", lambda: False)
    with pytest.raises(DataError, match="cuDF is not usable"):
        read_tabformer(tabformer_csv, engine="cudf", progress=False)


def test_cudf_reader_logic_with_pandas(sample: pd.DataFrame, tabformer_csv: Path, bad_file: Path):
    pd.testing.assert_frame_equal(read_tabformer_cudf(tabformer_csv, xd=pd), sample)
    assert read_tabformer_cudf(bad_file, xd=pd) is None, "a file needing a report goes to the CPU"


def test_gpu_dispatch_falls_back_to_cpu_report(sample: pd.DataFrame, tabformer_csv: Path,
                                              bad_file: Path, monkeypatch):
    """With 'cuDF' usable (pandas standing in), clean files take the GPU path, bad ones the CPU's."""
    calls = []
    real = tabformer.read_tabformer_cudf
    monkeypatch.setattr(tabformer, "cudf_usable", lambda: True)
    monkeypatch.setattr(tabformer, "read_tabformer_cudf",
                        lambda path: calls.append(path) or real(path, xd=pd))
    pd.testing.assert_frame_equal(read_tabformer(tabformer_csv, progress=False), sample)
    with pytest.raises(DataError, match="line 5"):
        read_tabformer(bad_file, progress=False)
    _, bad = read_tabformer(bad_file, on_error="skip", progress=False)
    assert bad["line"].tolist() == [5, 7, 12]
    assert calls == [tabformer_csv, bad_file, bad_file]
