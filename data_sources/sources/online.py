"""Online sources: FRED's public graph CSV, Stooq's daily CSV, CBOE's VIX history.

No API keys. Base URLs are constructor settings (so tests point them at a local
HTTP server) and the ``requests.Session`` is injectable (so a caller can add a
cache or a proxy). Every request is bounded: a connect/read timeout, a total
wall-clock deadline (retries, pauses and the body included: a server that drips
one byte at a time is cut off) and a size cap on the body, which is streamed.
Retries are urllib3's ``Retry`` on a mounted ``HTTPAdapter``: connection errors,
5xx and 429 are retried with a growing pause, ``Retry-After`` is honoured when
it fits in the deadline, a 404 is not retried. A failure names the series, the
URL and what came back.
"""
from __future__ import annotations

import contextvars
import os
import time

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from data_sources import catalog
from data_sources.errors import DataError, SourceError
from data_sources.parsing import ReadOptions, read_series_csv
from data_sources.sources.base import Source

FRED_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv"
STOOQ_URL = "https://stooq.com/q/d/l/"
CBOE_VIX_URL = "https://cdn.cboe.com/api/global/us_indices/daily_prices/VIX_History.csv"

DEFAULT_DEADLINE_S = 120.0
DEFAULT_MAX_MB = 64.0
RETRY_STATUSES = (429, 500, 502, 503, 504)
_CHUNK = 64 * 1024

# The monotonic time by which the request in progress must be done; set by
# HttpClient.get around each request (a context variable: safe across threads).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("forecaster_http_deadline", default=None)


class _OutOfTime(Exception):
    """Raised from inside urllib3's retry loop when the next try would end past the deadline."""


class DeadlineRetry(Retry):
    """urllib3's ``Retry`` that never waits (backoff or ``Retry-After``) past the request's deadline."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        deadline = _DEADLINE.get()
        if deadline is not None and time.monotonic() >= deadline:
            raise _OutOfTime(_last(response, error))
        return new

    def sleep(self, response=None) -> None:
        wait, why = self.get_backoff_time(), ""
        if self.respect_retry_after_header and response is not None:
            try:
                asked = self.get_retry_after(response)
            except Urllib3Error:  # a malformed Retry-After: fall back to the backoff
                asked = None
            if asked:
                header = response.headers.get("Retry-After", "").strip()
                wait, why = asked, f"Retry-After: {header}"
        deadline = _DEADLINE.get()
        if deadline is not None and time.monotonic() + wait >= deadline:
            raise _OutOfTime(_last(response, None) + (f", {why}" if why else ""))
        time.sleep(wait)


def _last(response, error) -> str:
    if response is not None:
        return f"HTTP {response.status}"
    return _reason(error) if error is not None else "no answer"


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, as ``Type: message`` (one short line)."""
    while True:
        inner = getattr(exc, "reason", None) if isinstance(exc, MaxRetryError) else None
        if inner is None and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if inner is None or inner is exc:
            break
        exc = inner
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise DataError(f"{name}={raw!r} is not a positive number")
    return value


class HttpClient:
    """GET with timeouts, a deadline, a size cap and urllib3 retries; returns the body bytes.

    Parameters
    ----------
    session : the ``requests.Session`` to use (a retrying adapter is mounted on it for http:// and https://).
    retries : retries after the first try (connection errors, 429 and 5xx; never 404 or other 4xx).
    pause : backoff factor in seconds: the pauses are 0, 2*pause, 4*pause, ... (urllib3's rule).
    timeout : connect and read timeout in seconds, per socket operation.
    deadline : total seconds for one ``get`` (tries, pauses, body); default ``FORECASTER_HTTP_DEADLINE`` or 120.
    max_bytes : largest body accepted; default ``FORECASTER_HTTP_MAX_MB`` (in MB) or 64 MB.
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        retries: int = 3,
        pause: float = 0.5,
        timeout: float = 30.0,
        deadline: float | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.deadline = float(deadline) if deadline is not None else _env_number("FORECASTER_HTTP_DEADLINE", DEFAULT_DEADLINE_S)
        self.max_bytes = int(max_bytes) if max_bytes is not None else int(_env_number("FORECASTER_HTTP_MAX_MB", DEFAULT_MAX_MB) * 2**20)
        self.retries = retries
        self.pause = pause
        self.timeout = timeout
        self.session = session or requests.Session()
        retry = DeadlineRetry(
            total=retries,
            backoff_factor=pause,
            backoff_max=self.deadline,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,  # the last error response comes back, so its status can be reported
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def get(self, url: str, params: dict | None, what: str) -> bytes:
        shown = requests.Request("GET", url, params=params).prepare().url
        token = _DEADLINE.set(time.monotonic() + self.deadline)
        try:
            return self._get(url, params, what, shown)
        finally:
            _DEADLINE.reset(token)

    def _fail(self, what: str, shown: str, attempts: int | None, detail: str) -> SourceError:
        tries = f" after {attempts} attempt(s)" if attempts else ""
        return SourceError(
            f"{what}: could not download {shown}{tries} ({detail}); check the network or use --data with a local folder"
        )

    def _get(self, url: str, params: dict | None, what: str, shown: str) -> bytes:
        step = min(self.timeout, self.deadline)
        try:
            resp = self.session.get(url, params=params, timeout=(step, step), stream=True)
        except _OutOfTime as exc:
            raise self._fail(what, shown, None, f"{exc}; the next try would end past the {self.deadline:g} s deadline") from None
        except requests.RequestException as exc:
            raise self._fail(what, shown, self.retries + 1, _reason(exc)) from None
        with resp:
            history = getattr(getattr(resp.raw, "retries", None), "history", ())
            if resp.status_code != 200:
                try:
                    snippet = resp.raw.read1(120).decode("utf-8", "replace").strip()
                except (Urllib3Error, OSError):
                    snippet = ""
                raise self._fail(what, shown, len(history) + 1, f"HTTP {resp.status_code}: {snippet!r}")
            return self._body(resp, what, shown)

    def _body(self, resp: requests.Response, what: str, shown: str) -> bytes:
        """Stream the body, stopping at the deadline or the size cap."""
        cap_mb = f"{self.max_bytes / 2**20:g} MB"
        hint = "set FORECASTER_HTTP_MAX_MB to allow more"
        declared = resp.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise SourceError(f"{what}: {shown} announces {int(declared) / 2**20:.0f} MB, "
                              f"over the {cap_mb} limit; {hint}")
        deadline = _DEADLINE.get()
        assert deadline is not None, "_body runs inside get()"
        chunks, size = [], 0
        while True:
            if time.monotonic() >= deadline:
                raise SourceError(f"{what}: {shown} did not finish within the {self.deadline:g} s deadline "
                                  f"({size:,} bytes received); set FORECASTER_HTTP_DEADLINE to wait longer")
            try:
                chunk = resp.raw.read1(_CHUNK, decode_content=True)  # what has arrived, not a full chunk
            except (Urllib3Error, OSError) as exc:
                raise SourceError(f"{what}: the download of {shown} broke off after {size:,} bytes "
                                  f"({_reason(exc)})") from None
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise SourceError(f"{what}: {shown} is larger than the {cap_mb} limit; {hint}")
            chunks.append(chunk)


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
        # CBOE writes US dates (MM/DD/YYYY): a short download with no day above 12 is not ambiguous to us
        return read_series_csv(body, series, f"{series} from {self.vix_url}", value_col="CLOSE",
                               options=ReadOptions(dayfirst=False))


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
