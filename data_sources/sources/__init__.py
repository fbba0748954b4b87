"""Sources of raw series, all behind ``Source.read(series, start, end)``.

``open_source(spec)`` turns the ``--data`` argument of the CLI into a source:
``embedded`` (offline data shipped with dependencies), ``online`` (FRED, Stooq,
CBOE), a YAML mapping file for a folder of CSV files, a wide panel file
(CSV or Parquet; a Bloomberg export is recognised by its tickers), or a YAML
description of a Bloomberg export (``bloomberg: FILE`` and its options).

Series outside the built-in catalog are declared in a catalog file
(``data_sources.user_catalog``): ``catalog=`` (``--catalog``) or a file found
beside the data file. The source is built with that catalog active and keeps it
as ``source.catalog``.
"""
from __future__ import annotations

from pathlib import Path

from data_sources import catalog as catalogs
from data_sources.errors import DataError
from data_sources.sources.base import Source
from data_sources.sources.embedded import EmbeddedSource
from data_sources.sources.files import CsvFolderSource, WidePanelSource
from data_sources.sources.online import OnlineSource

__all__ = ["Source", "open_source"]


def open_source(spec: str, catalog: str | Path | catalogs.Catalog | None = None, **settings) -> Source:
    """The source named by ``spec`` (see module doc). ``settings`` go to the source's constructor.

    ``catalog``: a user catalog file or ``Catalog`` (default: the active catalog), extended
    with the catalog file found beside a data file.
    """
    from data_sources.user_catalog import catalog_for

    from data_sources.vintages import Vintages, vintage_files_beside

    if isinstance(catalog, catalogs.Catalog):
        cat = catalog_for(spec, base=catalog)
    else:
        cat = catalog_for(spec, explicit=catalog)
    with catalogs.using(cat):
        source = _open(spec, **settings)
        source.catalog = cat
        files = vintage_files_beside(spec) if spec not in ("embedded", "online") else {}
        for name, file in files.items():
            if name not in source.available():
                raise DataError(f"{file}: vintages of {name!r}, a series {source.name} does not provide")
            source.vintages = {**source.vintages, name: Vintages.read(file)}
    return source


def _open(spec: str, **settings) -> Source:
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
        from data_sources.sources.bloomberg import BloombergSource, is_bloomberg_description

        if is_bloomberg_description(path):
            return BloombergSource.from_description(path, **settings)
        return CsvFolderSource(path, **settings)
    if suffix in (".csv", ".parquet", ".pq"):
        from data_sources.sources.bloomberg import BloombergSource, is_bloomberg_export

        if is_bloomberg_export(path):
            return BloombergSource(path, **settings)
        return WidePanelSource(path, **settings)
    raise DataError(
        f"--data {spec!r}: expected 'embedded', 'online', a mapping file (.yaml) "
        "or a wide panel file (.csv, .parquet)"
    )
