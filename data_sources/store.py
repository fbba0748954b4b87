"""A local store of fetched raw series and built panels, as Parquet with metadata.

Layout::

    STORE/raw/<SERIES>.parquet      observations at native frequency (date, value)
    STORE/panel.parquet             the aligned point-in-time panel (usable as --data)

Each file carries its metadata in the Parquet schema (key ``forecaster``): source,
origin (URL or file), fetch time, rows, first/last date. Every write is atomic
(``data_sources.atomic``): a crash or Ctrl-C mid-fetch leaves every file either
as it was or completely replaced. ``fetch`` downloads everything first and writes
only after all reads succeeded, so a fetch that fails part-way changes nothing.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from data_sources.atomic import atomic_path
from data_sources.errors import DataError
from data_sources.sources.files import PARQUET_META_KEY

DEFAULT_STORE = Path.home() / ".cache" / "forecaster" / "store"


def write_parquet(frame: pd.DataFrame, path: str | Path, meta: dict) -> None:
    """Atomically write ``frame`` (its index kept) with ``meta`` as JSON in the schema metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=True)
    merged = dict(table.schema.metadata or {})
    merged[PARQUET_META_KEY] = json.dumps(meta, default=str).encode()
    table = table.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_meta(path: str | Path) -> dict:
    """The ``forecaster`` metadata of a Parquet file written by ``write_parquet``."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(PARQUET_META_KEY)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    return json.loads(raw) if raw else {}


def panel_meta(panel: pd.DataFrame, **extra) -> dict:
    """Metadata for an aligned panel file: marks it aligned so loaders use it as it is."""
    return {
        "kind": "panel",
        "aligned": True,
        "source": panel.attrs.get("source"),
        "as_of": panel.attrs.get("as_of"),
        "rows": len(panel),
        "first": str(panel.index[0].date()) if len(panel) else None,
        "last": str(panel.index[-1].date()) if len(panel) else None,
        "series": list(panel.columns),
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


class Store:
    """A folder of Parquet files (see module doc)."""

    def __init__(self, root: str | Path = DEFAULT_STORE) -> None:
        self.root = Path(root)

    def raw_path(self, series: str) -> Path:
        return self.root / "raw" / f"{series}.parquet"

    @property
    def panel_path(self) -> Path:
        return self.root / "panel.parquet"

    def save_raw(self, series: str, values: pd.Series, source: str, origin: str) -> None:
        frame = values.rename("value").to_frame()
        meta = {
            "kind": "raw",
            "series": series,
            "source": source,
            "origin": origin,
            "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows": len(values),
            "first": str(values.index[0].date()) if len(values) else None,
            "last": str(values.index[-1].date()) if len(values) else None,
        }
        write_parquet(frame, self.raw_path(series), meta)

    def save_panel(self, panel: pd.DataFrame) -> Path:
        write_parquet(panel, self.panel_path, panel_meta(panel))
        return self.panel_path

    def contents(self) -> pd.DataFrame:
        """One row per stored file with its metadata."""
        rows = []
        for path in sorted(self.root.glob("raw/*.parquet")) + ([self.panel_path] if self.panel_path.exists() else []):
            meta = read_meta(path)
            rows.append({"file": str(path.relative_to(self.root)), **{k: meta.get(k) for k in ("kind", "source", "rows", "first", "last", "fetched_at", "written_at")}})
        return pd.DataFrame(rows)
