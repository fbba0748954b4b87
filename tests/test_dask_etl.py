"""The TabFormer ETL as Dask tasks on a real LocalCluster of 2 workers: byte-equal to the pandas path.

The sample is ../shared/data/tabformer/User0_credit_card_transactions.csv (19,963 rows);
chunks of 3,000 lines make 7 tasks. The cuDF chunk reader is run with pandas as its
dataframe library (the GPU itself: tests/test_gpu.py).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed", reason="the distributed extra (pip install 'forecaster[distributed]')")

from data_sources.errors import DataError  # noqa: E402
from data_sources.tabformer import iter_tabformer, read_tabformer, tabformer_dataframe, write_tabformer_csv  # noqa: E402
from data_sources.tabformer.cudf_reader import read_lines_cudf  # noqa: E402
from data_sources.tabformer.dask_reader import line_spans  # noqa: E402
from data_sources.tabformer.reader import read_chunk  # noqa: E402

CHUNK = 3_000


@pytest.fixture(scope="module")
def sample(tabformer_csv: Path) -> pd.DataFrame:
    return read_tabformer(tabformer_csv, progress=False, engine="cpu")


@pytest.fixture(scope="module")
def scheduler():
    """The tcp:// address of a running cluster of 2 single-thread worker processes."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.fixture
def bad_file(tabformer_csv: Path, tmp_path: Path) -> Path:
    """40 sample rows with a truncated row (line 5), a bad amount (line 27) and a bad fraud label (line 38),
    no final newline: in chunks of 10 lines, three chunks hold a bad line and the last is short."""
    with open(tabformer_csv, encoding="utf-8") as fh:
        lines = [next(fh).rstrip("\n") for _ in range(41)]
    lines[4] = lines[4][:17]
    lines[26] = lines[26].replace("$", "$x", 1)
    lines[37] = lines[37].rsplit(",", 1)[0] + ",Maybe"
    path = tmp_path / "bad.csv"
    path.write_bytes("\n".join(lines).encode())
    return path


def test_spans_are_the_serial_readers_chunks(tabformer_csv: Path, bad_file: Path):
    for path, size in ((tabformer_csv, CHUNK), (bad_file, 10), (bad_file, 1)):
        spans = line_spans(path, size)
        chunks = list(iter_tabformer(path, chunksize=size, on_error="skip", progress=False))
        assert [(s.first_line, s.n_lines) for s in spans] == [(c.first_line, c.n_lines) for c in chunks]
    assert line_spans(bad_file, 10)[-1].n_lines == 10  # the last line has no newline and still counts


@pytest.mark.slow
def test_chunked_etl_on_a_local_cluster_is_byte_equal_to_the_pandas_path(tabformer_csv, sample, tmp_path):
    table = read_tabformer(tabformer_csv, chunksize=CHUNK, engine="cpu", scheduler="local:2")
    pd.testing.assert_frame_equal(table, sample)  # dtypes, RangeIndex, every value
    out = write_tabformer_csv(table, tmp_path / "dask.csv")
    assert out.read_bytes() == write_tabformer_csv(sample, tmp_path / "pandas.csv").read_bytes()
    assert out.read_bytes() == tabformer_csv.read_bytes()  # and the published bytes


def test_bad_lines_raise_and_skip_as_the_serial_reader(bad_file: Path, scheduler: str):
    with pytest.raises(DataError) as serial:
        read_tabformer(bad_file, chunksize=10, progress=False, engine="cpu")
    with pytest.raises(DataError) as dask:
        read_tabformer(bad_file, chunksize=10, engine="cpu", scheduler=scheduler)
    assert str(dask.value) == str(serial.value) and "line 5" in str(dask.value)  # the file's first bad line
    want_table, want_bad = read_tabformer(bad_file, on_error="skip", chunksize=10, progress=False, engine="cpu")
    table, bad = read_tabformer(bad_file, on_error="skip", chunksize=10, engine="cpu", scheduler=scheduler)
    assert bad["line"].tolist() == [5, 27, 38]
    pd.testing.assert_frame_equal(bad, want_bad)
    pd.testing.assert_frame_equal(table, want_table)


def test_lazy_dataframe_has_one_partition_per_chunk(tabformer_csv: Path, sample: pd.DataFrame, scheduler: str):
    frame = tabformer_dataframe(tabformer_csv, chunksize=CHUNK, engine="cpu")
    assert frame.npartitions == len(line_spans(tabformer_csv, CHUNK)) == 7
    assert list(frame.columns) == list(sample.columns)
    with distributed.Client(scheduler):
        fraud = frame.groupby("card")["is_fraud"].sum().compute().sort_index()  # runs on the workers
        whole = frame.compute().reset_index(drop=True)
    pd.testing.assert_series_equal(fraud, sample.groupby("card")["is_fraud"].sum(), check_dtype=False)
    pd.testing.assert_frame_equal(whole, sample)


def test_the_gpu_chunk_reader_with_pandas_gives_the_cpu_chunks(tabformer_csv: Path, bad_file: Path):
    """What a worker with cuDF runs per chunk (pandas standing in): the CPU reader's table, or None for a report."""
    with open(tabformer_csv, "rb") as fh:
        for span in line_spans(tabformer_csv, 7_000):
            fh.seek(span.offset)
            data = fh.read(span.length)
            gpu = read_lines_cudf(data, span.n_lines, xd=pd)
            pd.testing.assert_frame_equal(gpu, read_chunk(data, span.first_line, span.n_lines, tabformer_csv).table)
    first = line_spans(bad_file, 10)[0]
    with open(bad_file, "rb") as fh:
        fh.seek(first.offset)
        assert read_lines_cudf(fh.read(first.length), first.n_lines, xd=pd) is None  # the CPU reports line 5


def test_malformed_scheduler_is_a_one_line_error(tabformer_csv: Path):
    from foundation.cluster import SchedulerError

    with pytest.raises(SchedulerError, match="is not a scheduler; use local:N"):
        read_tabformer(tabformer_csv, scheduler="dask://nowhere")
