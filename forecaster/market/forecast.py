"""The forecast distribution: many joint level paths on the business-day calendar.

A ``Forecast`` holds ``paths`` of shape ``(paths, horizon, series)`` in each series'
own units (index points, %, $/bbl), the dates after the as-of date, the recent
history before it (for plots), and metadata (as-of date, run directory, model and
tokenizer hashes, seed, number of paths, scenario). Every statistic is computed
across paths, so joint questions ("VIX above 30 *and* SPX down 20 %") are answered
from the same scenarios.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from foundation.atomic import atomic_path, write_text
from foundation.errors import UserError

DEFAULT_QUANTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
FORMAT_VERSION = 1


class ForecastError(UserError):
    """A forecast request or file that cannot be used."""


MAX_HORIZON = 2520  # business days: 10 years, the longest horizon a forecast or a backtest accepts


def check_horizon(horizon: int) -> None:
    """A horizon between 1 and ``MAX_HORIZON`` business days, else a ``ForecastError`` naming it."""
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or not 1 <= horizon <= MAX_HORIZON:
        raise ForecastError(f"horizon must be a whole number of business days from 1 to {MAX_HORIZON} "
                            f"(10 years), got {horizon!r}")


def is_legacy_forecast(folder: str | Path) -> bool:
    """A forecast folder written before folders carried the output marker (recognised by its ``forecast.json``)."""
    try:
        return json.loads((Path(folder) / "forecast.json").read_text()).get("format") == "forecaster-forecast"
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class Forecast:
    """Sampled joint paths (see module doc).

    Attributes
    ----------
    as_of : the last day of data the forecast saw.
    dates : (horizon,) business days after ``as_of``.
    series : names of the series, in the order of the last axis of ``paths``.
    paths : (paths, horizon, series) float64 levels; NaN where a path sampled "missing".
    history : (days, series) levels up to and including ``as_of`` (the recent past, for plots).
    meta : provenance: run directory, model/tokenizer hashes, seed, scenario, sampling settings.
    """

    as_of: pd.Timestamp
    dates: pd.DatetimeIndex
    series: list[str]
    paths: np.ndarray
    history: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = np.shape(self.paths)
        if len(shape) != 3 or shape[1] != len(self.dates) or shape[2] != len(self.series):
            raise ForecastError(f"paths must be (paths, horizon={len(self.dates)}, series={len(self.series)}), got shape {shape}")

    @property
    def n_paths(self) -> int:
        return self.paths.shape[0]

    @property
    def horizon(self) -> int:
        return self.paths.shape[1]

    def column(self, name: str) -> np.ndarray:
        """(paths, horizon) levels of one series."""
        if name not in self.series:
            raise ForecastError(f"series {name!r} is not in this forecast (series: {', '.join(self.series)})")
        return self.paths[:, :, self.series.index(name)]

    # -- summaries ------------------------------------------------------------------------
    def quantile_array(self, quantiles=DEFAULT_QUANTILES) -> np.ndarray:
        """(quantiles, horizon, series) across paths, ignoring missing values."""
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices stay NaN
            return np.nanquantile(self.paths, list(quantiles), axis=0)

    def quantile(self, q: float) -> pd.DataFrame:
        """The ``q`` quantile across paths (0 < q < 1) as a (horizon, series) frame indexed by date."""
        if isinstance(q, bool) or not isinstance(q, (int, float, np.floating)) or not 0 < q < 1:
            raise ForecastError(f"q must be a number strictly between 0 and 1, got {q!r}")
        return pd.DataFrame(self.quantile_array([float(q)])[0], index=self.dates, columns=self.series)

    def median(self) -> pd.DataFrame:
        """(horizon, series) median across paths."""
        return self.quantile(0.5)

    def quantiles(self, quantiles=DEFAULT_QUANTILES) -> pd.DataFrame:
        """Long table: date, series, quantile, value."""
        q = self.quantile_array(quantiles)  # (Q, H, S)
        Q, H, S = q.shape
        return pd.DataFrame(
            {
                "date": np.tile(np.repeat(self.dates.to_numpy(), S), Q),
                "series": np.tile(np.array(self.series, dtype=object), Q * H),
                "quantile": np.repeat(np.asarray(quantiles, dtype=np.float64), H * S),
                "value": q.reshape(-1),
            }
        )

    def plot(self, series: str, n_sample_paths: int = 0, history_days: int = 250, seed: int = 0):
        """A plotly fan chart of ``series``: history, median and 50/80/90 % bands (``forecaster.market.plots``)."""
        from forecaster.market.plots import fan_chart  # deferred: plotly takes a second to import; only plots need it

        self.column(series)  # an unknown series is a ForecastError naming the ones there are
        return fan_chart(self, series, n_sample_paths=n_sample_paths, history_days=history_days, seed=seed)

    def mean(self) -> pd.DataFrame:
        """(horizon, series) mean across paths."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return pd.DataFrame(np.nanmean(self.paths, axis=0), index=self.dates, columns=self.series)

    def probability(self, series: str, op: str, threshold: float, day: int | None = None, anytime: bool = False) -> float:
        """P(series op threshold) across paths, at horizon ``day`` (1-based; default the last), or at any day up to it.

        ``op`` is one of ``> >= < <=``.
        """
        ops = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
        if op not in ops:
            raise ForecastError(f"op must be one of {', '.join(ops)}, got {op!r}")
        day = self.horizon if day is None else day
        if not 1 <= day <= self.horizon:
            raise ForecastError(f"day must be in 1..{self.horizon}, got {day}")
        x = self.column(series)[:, :day]
        hit = ops[op](x, threshold)
        event = hit.any(axis=1) if anytime else hit[:, -1]
        return float(event.mean())

    def summary_table(self, days=(21, 63, 125, 250), quantiles=(0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
        """Quantiles of each series at a few horizons (rows: series x horizon), with the last observed level."""
        q = self.quantile_array(quantiles)
        rows = []
        last = self.history.iloc[-1] if len(self.history) else pd.Series(dtype=float)
        for j, name in enumerate(self.series):
            for d in days:
                if d > self.horizon:
                    continue
                row = {"series": name, "day": d, "date": self.dates[d - 1], "last": last.get(name, np.nan)}
                row.update({f"q{int(round(p * 100)):02d}": q[i, d - 1, j] for i, p in enumerate(quantiles)})
                rows.append(row)
        return pd.DataFrame(rows)

    # -- files ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``paths.npy``, ``history.parquet`` and ``forecast.json`` (each atomically)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        with atomic_path(d / "paths.npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, self.paths.astype(np.float64), allow_pickle=False)
        with atomic_path(d / "history.parquet") as tmp:
            self.history.to_parquet(tmp)
        doc = {
            "format": "forecaster-forecast",
            "version": FORMAT_VERSION,
            "as_of": str(self.as_of.date()),
            "dates": [str(x.date()) for x in self.dates],
            "series": self.series,
            "meta": self.meta,
        }
        write_text(d / "forecast.json", json.dumps(doc, indent=2, default=str))  # last: the commit point
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "Forecast":
        """Read a folder written by ``save``; a ``ForecastError`` for anything missing, corrupt or inconsistent."""
        d = Path(directory)
        try:
            doc = json.loads((d / "forecast.json").read_text())
        except FileNotFoundError:
            raise ForecastError(f"{d} holds no forecast (no forecast.json); run `forecaster forecast` first") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ForecastError(f"{d / 'forecast.json'} cannot be read or is corrupt ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != "forecaster-forecast" or doc.get("version") != FORMAT_VERSION:
            got = f"{doc.get('format')}/{doc.get('version')}" if isinstance(doc, dict) else type(doc).__name__
            raise ForecastError(f"{d / 'forecast.json'}: unknown format/version {got}")
        for key, kind in (("as_of", str), ("dates", list), ("series", list), ("meta", dict)):
            if not isinstance(doc.get(key, {} if key == "meta" else None), kind):
                raise ForecastError(f"{d / 'forecast.json'}: '{key}' is missing or not a {kind.__name__}")
        try:
            dates = pd.DatetimeIndex(pd.to_datetime(doc["dates"]), name="date")
            as_of = pd.Timestamp(doc["as_of"])
        except (TypeError, ValueError) as exc:
            raise ForecastError(f"{d / 'forecast.json'}: bad dates ({exc})") from None
        try:
            paths = np.load(d / "paths.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ForecastError(f"{d / 'paths.npy'} is missing or corrupt ({exc})") from None
        if not np.issubdtype(paths.dtype, np.floating) or paths.shape != (*paths.shape[:1], len(dates), len(doc["series"])):
            raise ForecastError(f"{d}: paths.npy has shape {paths.shape} and dtype {paths.dtype}, which do not match "
                                f"forecast.json (float paths x {len(dates)} days x {len(doc['series'])} series)")
        try:
            history = pd.read_parquet(d / "history.parquet")
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise ForecastError(f"{d / 'history.parquet'} is missing or corrupt ({(str(exc) or type(exc).__name__).splitlines()[0]})") from None
        return cls(as_of, dates, [str(x) for x in doc["series"]], paths, history, doc.get("meta", {}))
