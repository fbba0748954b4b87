"""A local store of fetched raw series and built panels, as Parquet with metadata.

Layout::

    STORE/raw/<SERIES>.parquet      observations at native frequency (date, value)
    STORE/panel.parquet             the aligned point-in-time panel (usable as --data)

Each file carries its metadata in the Parquet schema (key ``forecaster``): source,
origin (URL or file), fetch time, rows, first/last date. ``save_fetch`` writes a
whole new generation of the store (the previous files it does not replace are
carried over) into a staging folder beside it and swaps it in with
``foundation.atomic.publish_dir``: a fetch that fails while downloading or
while writing (a full disk, Ctrl-C) leaves every file of the store exactly as it
was. The store folder holds the marker file of ``publish_dir`` (kind ``store``),
so ``--store`` pointed at a folder that is not a store is refused.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from foundation.atomic import MARKER, OutputError, atomic_path, check_out_dir, output_kind, publish_dir, write_text
from data_sources.errors import DataError
from data_sources.sources.files import PARQUET_META_KEY

DEFAULT_STORE = Path.home() / ".cache" / "forecaster" / "store"
STORE_KIND = "store"


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

    def save_fetch(
        self,
        raw: Mapping[str, pd.Series],
        panel: pd.DataFrame,
        source: str,
        origin: Callable[[str], str],
    ) -> Path:
        """Replace the store, all or nothing, with ``raw`` series and ``panel``; returns the panel path.

        ``raw`` maps series name -> observations; ``origin(name)`` is where each came from.
        Raw files of other series already in the store are kept. On any failure the
        store is left byte-for-byte as it was and the error is a ``DataError``.
        """
        self.check_writable()
        try:
            with publish_dir(self.root, STORE_KIND, "--store") as staging:
                if self.root.is_dir():
                    shutil.copytree(self.root, staging, dirs_exist_ok=True, ignore=_not_carried)
                new = Store(staging)
                for name, values in raw.items():
                    new.save_raw(name, values, source, origin(name))
                new.save_panel(panel)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DataError(f"--store {self.root}: could not write the store ({reason}); it is unchanged") from None
        return self.panel_path

    def check_writable(self) -> None:
        """Refuse (``OutputError``) a store folder that holds something else, before any download."""
        self._adopt_earlier_layout()
        root = self.root
        if root.is_dir() and not root.is_symlink() and output_kind(root) is None and any(root.iterdir()):
            raise OutputError(f"--store {root}: the folder holds files that are not a forecaster store; "
                              "choose another folder or remove it")
        check_out_dir(root, STORE_KIND, "--store")

    def _adopt_earlier_layout(self) -> None:
        """Mark a store written before stores had a marker file (only raw/*.parquet and panel.parquet)."""
        if not self.root.is_dir() or output_kind(self.root) is not None:
            return
        names = {p.name for p in self.root.iterdir() if not _is_temp(p.name)}
        raw = self.root / "raw"
        if not names or not names <= {"raw", "panel.parquet"}:
            return  # empty (fine as it is) or not a store: publish_dir decides
        if raw.exists() and not (raw.is_dir() and all(p.suffix == ".parquet" or _is_temp(p.name) for p in raw.iterdir())):
            return
        write_text(self.root / MARKER, json.dumps({"kind": STORE_KIND}, indent=1) + "\n")

    def contents(self) -> pd.DataFrame:
        """One row per stored file with its metadata."""
        rows = []
        for path in sorted(self.root.glob("raw/*.parquet")) + ([self.panel_path] if self.panel_path.exists() else []):
            meta = read_meta(path)
            rows.append({"file": str(path.relative_to(self.root)), **{k: meta.get(k) for k in ("kind", "source", "rows", "first", "last", "fetched_at", "written_at")}})
        return pd.DataFrame(rows)


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")  # left by a killed atomic_path


def _not_carried(folder: str, names: list[str]) -> list[str]:
    """What ``save_fetch`` does not copy into the new generation: the marker (publish_dir writes it) and temp files."""
    return [n for n in names if n == MARKER or _is_temp(n)]
