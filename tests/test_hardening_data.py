"""Issue 12, data layer: bounded downloads, an all-or-nothing store, one-line errors for bad paths and dates.

Online tests run against the real HTTP server of ``tests.http_fixtures`` on 127.0.0.1,
with short deadlines and tiny backoffs so they stay fast.
"""
from __future__ import annotations

import errno
import os
import time

import pytest
import yaml
from urllib3.util.retry import Retry

from data_sources.errors import DataError, SourceError
from data_sources.sources.online import FredSource, HttpClient
from forecaster.cli import main
from tests.http_fixtures import FakeMarketDataServer


@pytest.fixture(scope="module")
def server(shared_data):
    with FakeMarketDataServer(shared_data) as srv:
        yield srv


@pytest.fixture()
def srv(server):
    server.fail_next.clear()
    yield server
    server.fail_next.clear()


def _fred(srv, path: str = "/fred/graph/fredgraph.csv", **client) -> FredSource:
    settings = dict(retries=2, pause=0.01, timeout=5.0, deadline=10.0)
    settings.update(client)
    return FredSource(f"{srv.base}{path}", HttpClient(**settings))


def _one_line(message: str, *needles: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


# -- item 6: the HTTP client --------------------------------------------------------------------

def test_client_retries_through_urllib3_retry_on_a_mounted_adapter():
    client = HttpClient(retries=4, pause=0.25)
    retry = client.session.get_adapter("https://fred.stlouisfed.org/x").max_retries
    assert isinstance(retry, Retry)
    assert retry.total == 4 and retry.backoff_factor == 0.25
    assert {429, 500, 502, 503, 504} <= set(retry.status_forcelist) and 404 not in retry.status_forcelist
    assert retry.respect_retry_after_header
    assert client.session.get_adapter("http://127.0.0.1/x").max_retries.total == 4


def test_dripping_server_is_cut_off_at_the_deadline(srv):
    srv.drip_interval = 0.2  # the read timeout never fires: a byte arrives every 0.2 s
    fred = _fred(srv, "/drip", retries=0, deadline=2.0)
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        fred.read("UST10Y")
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 4.0, elapsed
    _one_line(str(err.value), "deadline", "2 s", "127.0.0.1", "/drip")


def test_body_over_the_size_cap_stops_streaming(srv):
    srv.big_size = 4 * 2**20
    fred = _fred(srv, "/big", max_bytes=2**20)
    with pytest.raises(SourceError) as err:
        fred.read("UST10Y")
    _one_line(str(err.value), "127.0.0.1", "/big", "1 MB", "FORECASTER_HTTP_MAX_MB")


def test_declared_huge_body_is_refused_before_reading(srv):
    fred = _fred(srv, "/huge", max_bytes=64 * 2**20)
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        fred.read("UST10Y")
    assert time.monotonic() - started < 2.0
    _one_line(str(err.value), "127.0.0.1", "/huge", "2048 MB", "64 MB")


def test_size_cap_and_deadline_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FORECASTER_HTTP_MAX_MB", "3")
    monkeypatch.setenv("FORECASTER_HTTP_DEADLINE", "7.5")
    client = HttpClient()
    assert client.max_bytes == 3 * 2**20 and client.deadline == 7.5
    monkeypatch.setenv("FORECASTER_HTTP_MAX_MB", "lots")
    with pytest.raises(DataError, match="FORECASTER_HTTP_MAX_MB"):
        HttpClient()


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(srv, status):
    srv.fail_next["/fred/graph/fredgraph.csv"] = [(status, {"Retry-After": "1"})]
    before = len(srv.requests)
    started = time.monotonic()
    values = _fred(srv).read("UST10Y")["UST10Y"]
    assert time.monotonic() - started >= 0.95  # the backoff alone would be 0.01 s
    assert len(values) > 10_000 and len(srv.requests) - before == 2


def test_retry_after_past_the_deadline_gives_up_at_once(srv):
    srv.fail_next["/fred/graph/fredgraph.csv"] = [(429, {"Retry-After": "3600"})]
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        _fred(srv, deadline=2.0).read("UST10Y")
    assert time.monotonic() - started < 1.5
    _one_line(str(err.value), "HTTP 429", "Retry-After", "3600", "DGS10", "127.0.0.1")


def test_retries_stop_at_the_deadline(srv):
    srv.fail_next["/fred/graph/fredgraph.csv"] = [500] * 20
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        _fred(srv, retries=10, pause=0.4, deadline=2.0).read("UST10Y")
    assert time.monotonic() - started < 3.0
    _one_line(str(err.value), "HTTP 500", "deadline")


# -- item 6: the store ----------------------------------------------------------------------------

@pytest.fixture()
def online_env(srv, monkeypatch):
    for key, url in srv.urls.items():
        monkeypatch.setenv(f"FORECASTER_{key[:-4].upper()}_URL", url)
    return srv


def _fetch(store, series: str) -> int:
    return main(["data", "fetch", "--data", "online", "--store", str(store), "--series", series])


def _snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_fetch_that_fails_while_writing_leaves_every_file_as_it_was(online_env, tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    assert _fetch(store, "SPX,VIX") == 0
    before = _snapshot(store)
    assert "raw/SPX.parquet" in before and "panel.parquet" in before

    from data_sources.store import Store

    def disk_full(self, panel):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Store, "save_panel", disk_full)
    capsys.readouterr()
    assert _fetch(store, "SPX,VIX,UST10Y") == 2  # new raw files were written before the panel failed
    err = capsys.readouterr().err.strip()
    _one_line(err, "error: ", str(store), "No space left on device")
    assert _snapshot(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no staging folder left behind


def test_fetch_keeps_the_raw_series_it_did_not_fetch_again(online_env, tmp_path):
    store = tmp_path / "store"
    assert _fetch(store, "SPX,VIX") == 0
    vix = (store / "raw" / "VIX.parquet").read_bytes()
    assert _fetch(store, "SPX,UST10Y") == 0
    assert sorted(p.name for p in (store / "raw").iterdir()) == ["SPX.parquet", "UST10Y.parquet", "VIX.parquet"]
    assert (store / "raw" / "VIX.parquet").read_bytes() == vix


def test_store_written_by_an_earlier_version_is_adopted(online_env, tmp_path, shared_builder):
    from data_sources.store import Store

    store = tmp_path / "store"
    Store(store).save_raw("SPX", shared_builder.raw["SPX"], "test", "here")  # no marker file: the old layout
    assert _fetch(store, "VIX") == 0
    assert sorted(p.name for p in (store / "raw").iterdir()) == ["SPX.parquet", "VIX.parquet"]


def test_store_option_on_a_foreign_folder_is_refused(online_env, tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert _fetch(home, "SPX") == 2
    _one_line(capsys.readouterr().err.strip(), "--store", str(home))
    assert _snapshot(home) == {"notes.txt": b"mine"}


# -- item 9: bad paths and dates through `forecaster data show` -----------------------------------

def _show(capsys, data) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["data", "show", "--data", str(data)])
    return code, capsys.readouterr().err.strip()


def _mapping(tmp_path, file: str) -> str:
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump({"folder": str(tmp_path), "series": {"UST10Y": {"file": file}}}))
    return str(path)


@pytest.mark.parametrize("name", ["folder.csv", "folder.parquet", "folder.yaml", "folder"])
def test_folder_given_as_data_file(tmp_path, capsys, name):
    folder = tmp_path / name
    folder.mkdir()
    code, err = _show(capsys, folder)
    assert code == 2
    _one_line(err, "error: ", str(folder), "is a folder")


def test_mapping_that_names_a_folder_as_csv(tmp_path, capsys):
    (tmp_path / "rates").mkdir()
    code, err = _show(capsys, _mapping(tmp_path, "rates"))
    assert code == 2
    _one_line(err, "error: ", str(tmp_path / "rates"), "is a folder")


def test_path_whose_parent_is_a_file(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("date,value\n2020-01-02,1\n")
    code, err = _show(capsys, _mapping(tmp_path, "x.csv/inner.csv"))
    assert code == 2
    _one_line(err, "error: ", "x.csv/inner.csv")


def test_fifo_as_data_file_does_not_hang(tmp_path, capsys):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    code, err = _show(capsys, fifo)
    assert code == 2
    _one_line(err, "error: ", str(fifo), "not a regular file")
    code, err = _show(capsys, _mapping(tmp_path, "pipe.csv"))
    assert code == 2
    _one_line(err, "error: ", str(fifo), "not a regular file")


def _refuse_open(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied", str(args[0]))


def test_permission_denied_is_one_line(tmp_path, capsys, monkeypatch):
    # Tests run as root, where chmod 000 does not stop reading: make `open` refuse instead.
    import pandas as pd

    from data_sources import parsing
    from data_sources.sources import files

    csv = tmp_path / "x.csv"
    csv.write_text("date,UST10Y\n2020-01-02,1\n")
    mapping = _mapping(tmp_path, "x.csv")
    monkeypatch.setattr(parsing, "open", _refuse_open, raising=False)
    monkeypatch.setattr(files, "open", _refuse_open, raising=False)
    monkeypatch.setattr(pd, "read_csv", _refuse_open)
    for data in (csv, mapping):
        code, err = _show(capsys, data)
        assert code == 2
        _one_line(err, "error: ", str(csv), "Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_as_a_normal_user(tmp_path, capsys):
    csv = tmp_path / "x.csv"
    csv.write_text("date,UST10Y\n2020-01-02,1\n")
    csv.chmod(0)
    code, err = _show(capsys, csv)
    assert code == 2
    _one_line(err, "error: ", str(csv), "Permission denied")


MIXED = "date,UST10Y\n2020-01-02T00:00:00+00:00,1.0\n2020-01-03T00:00:00-05:00,2.0\n"


def test_mixed_time_zones_in_a_panel_file(tmp_path, capsys):
    csv = tmp_path / "panel.csv"
    csv.write_text(MIXED)
    code, err = _show(capsys, csv)
    assert code == 2
    _one_line(err, "error: ", str(csv), "line 3", "time zone", "-05:00", "+00:00")


def test_mixed_time_zones_in_a_mapped_csv(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("observation_date,DGS10\n2020-01-02T00:00:00Z,1.0\n2020-01-03T00:00:00Z,1.1\n"
                                    "2020-01-06T00:00:00+01:00,1.2\n")
    code, err = _show(capsys, _mapping(tmp_path, "x.csv"))
    assert code == 2
    _one_line(err, "error: ", "x.csv", "line 4", "time zone")
