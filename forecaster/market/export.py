"""Scenario export to the files risk systems read.

Formats (each as Parquet or CSV):

- ``long``: one row per (scenario_id, path_id, date, series) with its value;
- ``quantiles``: one row per (date, series, quantile) with its value;
- ``wide``: one row per (path_id, date), one column per series, in the style
  of supervisory stress-scenario tables (date down, variables across).

Every file carries the forecast's metadata (as-of date, run directory, model and
tokenizer hashes, seed, number of paths, scenario constraints): in the Parquet
schema under the key ``forecaster``, and for CSV in a sidecar ``<file>.meta.json``.
Writes are atomic: an existing file is replaced, a folder or device in its place is
refused (``check_export_target``, before any table is built).

A forecast folder (:func:`save_forecast_dir`) holds the forecast itself
(``Forecast.save``), every export above in both file kinds, ``summary.csv`` (the
quantile summary) and ``regimes.csv`` (regime probabilities), and is published
whole with ``foundation.atomic.publish_dir`` (kind ``forecast``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from foundation.atomic import atomic_path, check_file_target, publish_dir, write_text
from foundation.errors import UserError
from data_sources.store import read_meta, write_parquet
from forecaster.market.forecast import DEFAULT_QUANTILES, Forecast, is_legacy_forecast
from forecaster.market.regimes import regime_table

FORECAST_KIND = "forecast"  # the output marker of a forecast folder (foundation.atomic)

FORMATS = ("long", "quantiles", "wide")


def long_table(fc: Forecast, scenario_id: str | None = None) -> pd.DataFrame:
    """(scenario_id, path_id, date, series, value), paths x dates x series rows."""
    P, H, S = fc.paths.shape
    sid = scenario_id or (fc.meta.get("scenario") or {}).get("name") or "base"
    return pd.DataFrame(
        {
            "scenario_id": np.full(P * H * S, sid, dtype=object),
            "path_id": np.repeat(np.arange(P, dtype=np.int32), H * S),
            "date": np.tile(np.repeat(fc.dates.to_numpy(), S), P),
            "series": np.tile(np.array(fc.series, dtype=object), P * H),
            "value": fc.paths.reshape(-1),
        }
    )


def wide_table(fc: Forecast) -> pd.DataFrame:
    """(path_id, date, <one column per series>)."""
    P, H, S = fc.paths.shape
    frame = pd.DataFrame(fc.paths.reshape(P * H, S), columns=fc.series)
    frame.insert(0, "date", np.tile(fc.dates.to_numpy(), P))
    frame.insert(0, "path_id", np.repeat(np.arange(P, dtype=np.int32), H))
    return frame


def table(fc: Forecast, fmt: str, quantiles=DEFAULT_QUANTILES) -> pd.DataFrame:
    if fmt == "long":
        return long_table(fc)
    if fmt == "quantiles":
        return fc.quantiles(quantiles)
    if fmt == "wide":
        return wide_table(fc)
    raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _sidecar(out: Path) -> Path:
    return out.with_name(out.name + ".meta.json")


def check_export_target(out: str | Path, fmt: str = "long", option: str = "--out") -> Path:
    """Refuse an export path that is not .parquet/.csv, an unknown ``fmt``, or a folder/device in the way."""
    out = check_file_target(out, option)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise UserError(f"{option} {out}: use a .parquet or .csv file name")
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if out.suffix.lower() == ".csv":
        check_file_target(_sidecar(out), option)
    return out


def export(fc: Forecast, out: str | Path, fmt: str = "long") -> Path:
    """Write the forecast in ``fmt`` to ``out`` (.parquet or .csv), with its metadata."""
    out = check_export_target(out, fmt)
    suffix = out.suffix.lower()
    frame = table(fc, fmt)
    meta = {"kind": "forecast-export", "format": fmt, "series": fc.series, **fc.meta}
    if suffix == ".parquet":
        write_parquet(frame.set_index(frame.columns[0]), out, meta)
    else:
        with atomic_path(out, "--out") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.10g", date_format="%Y-%m-%d")
        write_text(_sidecar(out), json.dumps(meta, indent=2, default=str))
    return out


def read_export(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read an export back: the table and its metadata."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path).reset_index(), read_meta(path)
    frame = pd.read_csv(path, parse_dates=["date"])
    meta_path = _sidecar(path)
    return frame, json.loads(meta_path.read_text()) if meta_path.exists() else {}


def export_all(fc: Forecast, directory: str | Path, formats=FORMATS, kinds=("parquet", "csv")) -> list[Path]:
    """Every format in every file kind into ``directory`` (``paths_long.parquet``, ...)."""
    d = Path(directory)
    return [export(fc, d / f"paths_{fmt}.{kind}" if fmt != "quantiles" else d / f"quantiles.{kind}", fmt)
            for fmt in formats for kind in kinds]


def save_forecast_dir(fc: Forecast, out: str | Path, option: str = "--out") -> Path:
    """Write the forecast folder ``out``: the forecast, its exports, ``summary.csv`` and ``regimes.csv``.

    Published atomically (``publish_dir``, kind ``forecast``): ``out`` must be absent, empty,
    or a previous forecast (one from before the output marker included), which is then
    replaced whole; anything else is refused with an ``OutputError`` naming ``option``,
    and a failure part-way leaves ``out`` as it was. Returns ``out``.
    """
    with publish_dir(out, FORECAST_KIND, option=option, legacy=is_legacy_forecast) as staging:
        fc.save(staging)
        export_all(fc, staging)
        with atomic_path(staging / "summary.csv") as tmp:
            fc.summary_table().to_csv(tmp, index=False, float_format="%.6g")
        with atomic_path(staging / "regimes.csv") as tmp:
            regime_table(fc).to_csv(tmp, index=False, float_format="%.4f")
    return Path(out)
