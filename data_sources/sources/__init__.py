"""Sources of raw series, all behind ``Source.read(series, start, end)``.

``open_source(spec)`` turns the ``--data`` argument of the CLI into a source:
``embedded`` (offline data shipped with dependencies), ``online`` (FRED, Stooq,
CBOE), a YAML mapping file for a folder of CSV files, or a wide panel file
(CSV or Parquet).
"""
from __future__ import annotations

from pathlib import Path

from data_sources.errors import DataError
from data_sources.sources.base import Source
from data_sources.sources.embedded import EmbeddedSource
from data_sources.sources.files import CsvFolderSource, WidePanelSource
from data_sources.sources.online import OnlineSource

__all__ = ["Source", "open_source"]


def open_source(spec: str, **settings) -> Source:
    """The source named by ``spec`` (see module doc). ``settings`` go to the source's constructor."""
    if spec == "embedded":
        return EmbeddedSource(**settings)
    if spec == "online":
        return OnlineSource(**settings)
    path = Path(spec)
    if path.is_dir():
        raise DataError(
            f"--data {spec}: is a folder; give a mapping file (.yaml) that describes its CSV files, "
            "or a wide panel file (.csv, .parquet)"
        )
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return CsvFolderSource(path, **settings)
    if suffix in (".csv", ".parquet", ".pq"):
        return WidePanelSource(path, **settings)
    raise DataError(
        f"--data {spec!r}: expected 'embedded', 'online', a mapping file (.yaml) "
        "or a wide panel file (.csv, .parquet)"
    )
