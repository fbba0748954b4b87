"""Online sources against a real HTTP server on 127.0.0.1 speaking FRED, Stooq and CBOE formats."""
from __future__ import annotations

import socket

import pandas as pd
import pytest

from data_sources.errors import SourceError
from data_sources.panel import PanelBuilder
from data_sources.sources.online import CboeSource, FredSource, HttpClient, OnlineSource, StooqSource
from forecaster.cli import main
from tests.http_fixtures import FakeMarketDataServer

FAST = dict(retries=2, pause=0.01, timeout=5.0)


@pytest.fixture(scope="module")
def server(shared_data):
    with FakeMarketDataServer(shared_data) as srv:
        yield srv


@pytest.fixture()
def online(server):
    server.fail_next.clear()
    return OnlineSource(**server.urls, client=HttpClient(**FAST))


def test_each_online_source_reads_what_the_files_hold(online, shared_builder):
    for name in ["UST10Y", "SPX", "VIX", "CPI", "FED_BS"]:
        got = online.read(name)[name]
        pd.testing.assert_series_equal(got, shared_builder.raw[name], check_names=False, check_freq=False)


def test_online_panel_equals_folder_panel(online, shared_mapping):
    names = ["SPX", "VIX", "UST10Y", "CPI_YOY", "UNRATE"]
    from_web = PanelBuilder(online, series=names).build("2021-12-31")
    from_files = PanelBuilder(str(shared_mapping), series=names).build("2021-12-31")
    # the folder source has more calendar series (ETFs); compare on the shared days
    common = from_web.index.intersection(from_files.index)
    assert len(common) > 7000
    pd.testing.assert_frame_equal(from_web.loc[common], from_files.loc[common], check_freq=False)


def test_read_filters_by_start_and_end(online):
    part = online.read("UST10Y", start="2020-01-01", end="2020-01-31")
    assert part.index[0] >= pd.Timestamp("2020-01-01") and part.index[-1] <= pd.Timestamp("2020-01-31")
    assert list(part.columns) == ["UST10Y"]


def test_server_errors_are_retried_with_a_growing_pause(server, online):
    server.fail_next["/fred/graph/fredgraph.csv"] = [500, 503]
    before = len(server.requests)
    values = online.read("UST2Y")["UST2Y"]
    assert len(values) > 10_000
    assert len(server.requests) - before == 3


def test_persistent_failure_names_series_url_and_status(server):
    server.fail_next["/fred/graph/fredgraph.csv"] = [500, 500, 500]
    fred = FredSource(server.urls["fred_url"], HttpClient(**FAST))
    with pytest.raises(SourceError) as err:
        fred.read("UST5Y")
    message = str(err.value)
    assert "UST5Y" in message and "DGS5" in message and "HTTP 500" in message and "127.0.0.1" in message
    assert "\n" not in message


def test_not_found_is_not_retried(server):
    fred = FredSource(server.urls["fred_url"].replace("fredgraph", "nothing"), HttpClient(**FAST))
    before = len(server.requests)
    with pytest.raises(SourceError, match="HTTP 404"):
        fred.read("UST10Y")
    assert len(server.requests) - before == 1


def test_stooq_no_data_and_cboe_dates(server):
    stooq = StooqSource(server.urls["stooq_url"], HttpClient(**FAST))
    with pytest.raises(SourceError, match="no data"):
        stooq.read("XLF")  # the test server knows no such symbol: Stooq answers 'No data'
    vix = CboeSource(server.urls["cboe_vix_url"], HttpClient(**FAST)).read("VIX")["VIX"]
    assert vix.index[0] == pd.Timestamp("1990-01-02") and vix.iloc[0] == pytest.approx(17.24)


def test_unreachable_url_is_a_clear_error():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fred = FredSource(f"http://127.0.0.1:{port}/fred", HttpClient(retries=1, pause=0.01, timeout=2))
    with pytest.raises(SourceError, match="could not download .*127.0.0.1"):
        fred.read("UST10Y")


def test_cli_fetch_into_store_and_failed_fetch_keeps_store(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FORECASTER_FRED_URL", server.urls["fred_url"])
    monkeypatch.setenv("FORECASTER_STOOQ_URL", server.urls["stooq_url"])
    monkeypatch.setenv("FORECASTER_CBOE_VIX_URL", server.urls["cboe_vix_url"])
    store = tmp_path / "store"
    args = ["data", "fetch", "--data", "online", "--store", str(store), "--series", "SPX,VIX,UST10Y,CPI_YOY"]
    assert main(args) == 0
    files = sorted(p.name for p in (store / "raw").iterdir())
    assert files == ["CPI.parquet", "SPX.parquet", "UST10Y.parquet", "VIX.parquet"]
    snapshot = {p: p.read_bytes() for p in store.rglob("*.parquet")}

    # the store panel is usable as --data
    assert main(["data", "show", "--data", str(store / "panel.parquet")]) == 0

    # FRED now fails for good: the fetch fails, and the store is byte-for-byte unchanged
    server.fail_next["/fred/graph/fredgraph.csv"] = [500] * 50
    capsys.readouterr()
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in store.rglob("*.parquet")} == snapshot
    assert not list(store.rglob("*.tmp"))
    server.fail_next.clear()


def test_a_short_cboe_download_reads_us_dates_without_a_day_above_12():
    """CBOE writes MM/DD/YYYY: two January days (no field above 12) are 2 and 3 January, never refused as ambiguous."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = b"DATE,OPEN,HIGH,LOW,CLOSE\n01/02/2024,13.2,14.2,13.0,13.2\n01/03/2024,13.5,14.4,13.3,14.0\n"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/VIX_History.csv"
        vix = CboeSource(url, HttpClient(**FAST)).read("VIX")["VIX"]
    finally:
        srv.shutdown()
    assert list(vix.index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    assert list(vix) == [13.2, 14.0]
