"""A real HTTP server on 127.0.0.1 that answers like FRED, Stooq and CBOE.

Responses are built from the real files in ../shared/data in each service's exact
format: FRED's ``observation_date,<ID>`` CSV with ``.`` for blanks, Stooq's
``Date,Open,High,Low,Close,Volume`` (or ``No data`` for an unknown symbol), and
CBOE's ``DATE,OPEN,HIGH,LOW,CLOSE`` with MM/DD/YYYY dates. Failures can be
scripted per path (``fail_next``: a status, or a status and extra headers such as
``Retry-After``) to test retries. Hostile servers for the client's limits:
``/drip`` sends one byte every ``drip_interval`` seconds, ``/big`` streams
``big_size`` bytes without a Content-Length, ``/huge`` declares a 2 GB body.
"""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd

FRED_FILES = {
    "DGS10": "rates/DGS10.csv",
    "DGS2": "rates/DGS2.csv",
    "DGS3MO": "rates/DGS3MO.csv",
    "DGS5": "rates/DGS5.csv",
    "BAA10Y": "credit/BAA10Y.csv",
    "CPIAUCSL": "macro/CPIAUCSL.csv",
    "CPILFESL": "macro/CPILFESL.csv",
    "UNRATE": "macro/UNRATE.csv",
    "M2SL": "macro/M2SL.csv",
    "GDPC1": "macro/GDPC1.csv",
    "WALCL": "macro/WALCL.csv",
    "DCOILWTICO": "oil/wti-daily.csv",
}
STOOQ_FILES = {"^spx": "spx/spx_d.csv", "xlk.us": "sectors/XLK.csv"}


def fred_body(data: Path, fred_id: str) -> bytes:
    frame = pd.read_csv(data / FRED_FILES[fred_id], dtype=str, keep_default_na=False)
    frame.columns = ["observation_date", fred_id]
    frame[fred_id] = frame[fred_id].replace("", ".")
    return frame.to_csv(index=False).encode()


def stooq_body(data: Path, symbol: str) -> bytes:
    frame = pd.read_csv(data / STOOQ_FILES[symbol], dtype=str)
    if "Close" not in frame.columns:  # the ETF files are date,close: give them Stooq's full layout
        close = frame.iloc[:, 1]
        frame = pd.DataFrame({"Date": frame.iloc[:, 0], "Open": close, "High": close, "Low": close, "Close": close, "Volume": "1000"})
    return frame.to_csv(index=False).encode()


def cboe_body(data: Path) -> bytes:
    frame = pd.read_csv(data / "vix/vix-daily.csv", dtype=str)
    frame["DATE"] = pd.to_datetime(frame["DATE"]).dt.strftime("%m/%d/%Y")
    return frame.to_csv(index=False).encode()


class FakeMarketDataServer:
    """Serves /fred/graph/fredgraph.csv, /stooq/q/d/l/ and /cboe/VIX_History.csv on a free loopback port."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.requests: list[str] = []
        # path -> what to answer first: a status code, or (status, extra headers)
        self.fail_next: dict[str, list[int | tuple[int, dict[str, str]]]] = {}
        self.drip_interval = 0.2
        self.big_size = 4 * 2**20
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                server.requests.append(self.path)
                queue = server.fail_next.get(url.path)
                if queue:
                    item = queue.pop(0)
                    status, headers = item if isinstance(item, tuple) else (item, {})
                    self._send(status, b"temporarily unavailable", headers)
                    return
                if url.path == "/drip":
                    self._drip()
                elif url.path == "/big":
                    self._big()
                elif url.path == "/huge":
                    self.send_response(200)
                    self.send_header("Content-Length", str(2 * 2**30))
                    self.end_headers()
                    self._trickle(b"x" * 65536, 64)
                elif url.path == "/fred/graph/fredgraph.csv":
                    fred_id = query.get("id", "")
                    if fred_id not in FRED_FILES:
                        self._send(404, b"Series not found")
                        return
                    self._send(200, fred_body(server.data, fred_id))
                elif url.path == "/stooq/q/d/l/":
                    symbol = query.get("s", "")
                    body = stooq_body(server.data, symbol) if symbol in STOOQ_FILES else b"No data"
                    self._send(200, body)
                elif url.path == "/cboe/VIX_History.csv":
                    self._send(200, cboe_body(server.data))
                else:
                    self._send(404, b"not found")

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _trickle(self, piece: bytes, times: int, pause: float = 0.0) -> None:
                try:
                    for _ in range(times):
                        self.wfile.write(piece)
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:  # the client gave up and closed the connection
                    pass

            def _drip(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                self._trickle(b"1", int(30 / server.drip_interval), server.drip_interval)

            def _big(self) -> None:  # HTTP/1.0, no Content-Length: the body ends when the connection closes
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.end_headers()
                self._trickle(b"date,value\n" + b"0" * 65524 + b"\n", server.big_size // 65536 + 1)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        return {
            "fred_url": f"{self.base}/fred/graph/fredgraph.csv",
            "stooq_url": f"{self.base}/stooq/q/d/l/",
            "cboe_vix_url": f"{self.base}/cboe/VIX_History.csv",
        }

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
