"""The one interface every source shares.

A source knows which catalog series it can provide (``available``) and reads one
of them as observations at its native frequency (``read``): a date-indexed frame
with one float64 column named after the series, sorted, without missing rows.
Alignment to the business-day panel and the publication lags happen later, in
``data_sources.panel``, the same way for every source.
"""
from __future__ import annotations

import abc

import pandas as pd

from data_sources import catalog
from data_sources.errors import DataError


class Source(abc.ABC):
    """Base class: subclasses implement ``available`` and ``_read``."""

    #: Short name shown in summaries and stored in metadata ("fred", "csv:mapping.yaml", ...).
    name: str = "source"
    #: The catalog its series are looked up in: the built-in one, or one with user series
    #: (``open_source`` sets it; ``data_sources.user_catalog``).
    catalog: catalog.Catalog = catalog.BUILTIN
    #: Lines for people about what the source did to the data (columns moved to their release
    #: dates, sentinels removed); ``forecaster data show`` prints them.
    notes: tuple[str, ...] = ()
    #: ``{series: data_sources.vintages.Vintages}``: real-time vintages of revised series.
    vintages: dict = {}

    def release_dates(self, series: str) -> "pd.Series | None":
        """Release date of each observation of ``series`` when the source knows it (by period date), else None
        (the catalog's rule applies)."""
        return None

    @abc.abstractmethod
    def available(self) -> list[str]:
        """Catalog names of the (non-derived) series this source can read."""

    @abc.abstractmethod
    def _read(self, series: str) -> pd.Series:
        """All observations of ``series`` (float64, ascending dates, no NaN)."""

    def describe(self, series: str) -> str:
        """Where ``series`` comes from (a file path or a URL), for metadata and errors."""
        return self.name

    def read(self, series: str, start=None, end=None) -> pd.DataFrame:
        """Observations of ``series`` between ``start`` and ``end`` (inclusive), as a one-column frame.

        Raises ``CatalogError`` for a name not in the catalog and ``DataError`` when this
        source has no such series.
        """
        self.catalog.get(series)
        if series not in self.available():
            raise DataError(
                f"series {series!r} is not available from {self.name} "
                f"(available: {', '.join(self.available()) or 'none'})"
            )
        values = self._read(series)
        assert values.index.is_monotonic_increasing, f"{self.name}: {series} not sorted"
        if start is not None:
            values = values[values.index >= pd.Timestamp(start)]
        if end is not None:
            values = values[values.index <= pd.Timestamp(end)]
        return values.rename(series).to_frame()
