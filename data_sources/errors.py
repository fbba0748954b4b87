"""The data layer's error types: bad files, unreachable sources, unknown series.

All derive from ``foundation.errors.UserError``, so the CLI prints them as one
line and exits non-zero.
"""
from __future__ import annotations

from foundation.errors import UserError


class DataError(UserError):
    """A data file, URL or panel is missing, malformed, or inconsistent."""


class SourceError(DataError):
    """An online or file source could not be read (network, HTTP status, format)."""


class CatalogError(UserError):
    """A series name that is not in the catalog, or a bad catalog entry."""
