"""Online sources: FRED's public graph CSV, Stooq's daily CSV, CBOE's VIX history.

No API keys. Base URLs are constructor settings (so tests point them at a local
HTTP server) and the ``requests.Session`` is injectable (so a caller can add a
cache or a proxy). Every request has a timeout and is retried with a growing
pause; a failure names the series, the URL and what came back.
"""
from __future__ import annotations

import os
import time

import pandas as pd
import requests

from data_sources import catalog
from data_sources.errors import SourceError
from data_sources.parsing import read_series_csv
from data_sources.sources.base import Source

FRED_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv"
STOOQ_URL = "https://stooq.com/q/d/l/"
CBOE_VIX_URL = "https://cdn.cboe.com/api/global/us_indices/daily_prices/VIX_History.csv"


class HttpClient:
    """GET with a timeout and retries (pause doubles each time); returns the body bytes."""

    def __init__(
        self,
        session: requests.Session | None = None,
        retries: int = 3,
        pause: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        self.session = session or requests.Session()
        self.retries = retries
        self.pause = pause
        self.timeout = timeout

    def get(self, url: str, params: dict | None, what: str) -> bytes:
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.pause * 2 ** (attempt - 1))
            try:
                resp = self.session.get(url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {str(exc)[:200]}"
                continue
            if resp.status_code == 200:
                return resp.content
            last = f"HTTP {resp.status_code}: {resp.text[:120].strip()!r}"
            if resp.status_code < 500 and resp.status_code != 429:
                break  # a client error will not go away by retrying
        shown = requests.Request("GET", url, params=params).prepare().url
        raise SourceError(
            f"{what}: could not download {shown} after {attempt + 1} attempt(s) ({last}); "
            "check the network or use --data with a local folder"
        )


class FredSource(Source):
    """FRED series through the public ``fredgraph.csv`` endpoint (no API key)."""

    name = "fred"

    def __init__(self, base_url: str = FRED_URL, client: HttpClient | None = None) -> None:
        self.base_url = base_url
        self.client = client or HttpClient()

    def available(self) -> list[str]:
        return [s.name for s in catalog.CATALOG.values() if s.fred and not s.is_derived]

    def describe(self, series: str) -> str:
        return f"{self.base_url}?id={catalog.get(series).fred}"

    def _read(self, series: str) -> pd.Series:
        fred_id = catalog.get(series).fred
        body = self.client.get(self.base_url, {"id": fred_id}, f"{series} (FRED {fred_id})")
        return read_series_csv(body, series, f"{series} from {self.describe(series)}", series_id=fred_id)


class StooqSource(Source):
    """Stooq daily history (``Date,Open,High,Low,Close,Volume``); the close is taken."""

    name = "stooq"

    def __init__(self, base_url: str = STOOQ_URL, client: HttpClient | None = None) -> None:
        self.base_url = base_url
        self.client = client or HttpClient()

    def available(self) -> list[str]:
        return [s.name for s in catalog.CATALOG.values() if s.stooq]

    def describe(self, series: str) -> str:
        return f"{self.base_url}?s={catalog.get(series).stooq}&i=d"

    def _read(self, series: str) -> pd.Series:
        symbol = catalog.get(series).stooq
        what = f"{series} (Stooq {symbol})"
        body = self.client.get(self.base_url, {"s": symbol, "i": "d"}, what)
        if body.strip().lower().startswith(b"no data") or not body.strip():
            raise SourceError(f"{what}: {self.describe(series)} returned no data; check the symbol")
        return read_series_csv(body, series, f"{series} from {self.describe(series)}", value_col="Close")


class CboeSource(Source):
    """CBOE's VIX history file (``DATE,OPEN,HIGH,LOW,CLOSE``, dates as MM/DD/YYYY)."""

    name = "cboe"

    def __init__(self, vix_url: str = CBOE_VIX_URL, client: HttpClient | None = None) -> None:
        self.vix_url = vix_url
        self.client = client or HttpClient()

    def available(self) -> list[str]:
        return ["VIX"]

    def describe(self, series: str) -> str:
        return self.vix_url

    def _read(self, series: str) -> pd.Series:
        body = self.client.get(self.vix_url, None, f"{series} (CBOE)")
        return read_series_csv(body, series, f"{series} from {self.vix_url}", value_col="CLOSE")


class OnlineSource(Source):
    """All online sources together: CBOE for VIX, Stooq for index and ETF levels, FRED for the rest.

    Base URLs default to the environment variables ``FORECASTER_FRED_URL``,
    ``FORECASTER_STOOQ_URL`` and ``FORECASTER_CBOE_VIX_URL`` where set (a mirror,
    a proxy, or a local test server), else to the public endpoints.
    """

    name = "online"

    def __init__(
        self,
        fred_url: str | None = None,
        stooq_url: str | None = None,
        cboe_vix_url: str | None = None,
        client: HttpClient | None = None,
    ) -> None:
        fred_url = fred_url or os.environ.get("FORECASTER_FRED_URL", FRED_URL)
        stooq_url = stooq_url or os.environ.get("FORECASTER_STOOQ_URL", STOOQ_URL)
        cboe_vix_url = cboe_vix_url or os.environ.get("FORECASTER_CBOE_VIX_URL", CBOE_VIX_URL)
        client = client or HttpClient()
        self.sources: list[Source] = [
            CboeSource(cboe_vix_url, client),
            StooqSource(stooq_url, client),
            FredSource(fred_url, client),
        ]

    def _route(self, series: str) -> Source:
        for source in self.sources:
            if series in source.available():
                return source
        raise AssertionError(f"no online route for {series}")  # guarded by read()

    def available(self) -> list[str]:
        names: list[str] = []
        for source in self.sources:
            names += [n for n in source.available() if n not in names]
        return names

    def describe(self, series: str) -> str:
        return self._route(series).describe(series)

    def _read(self, series: str) -> pd.Series:
        return self._route(series)._read(series)
