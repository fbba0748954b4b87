"""User-facing error types.

Every error a user can cause (a bad file, an unknown series, an unreachable URL)
is a ``UserError`` whose message says what went wrong, where, and what to do. The
CLI prints it as one line and exits non-zero; internal invariants use ``assert``.
This module sits in the lowest layer so every layer above can raise these.
"""
from __future__ import annotations


class UserError(Exception):
    """An error caused by input the user can fix. The message is one line."""

    exit_code = 2


class DataError(UserError):
    """A data file, URL or panel is missing, malformed, or inconsistent."""


class SourceError(DataError):
    """An online or file source could not be read (network, HTTP status, format)."""


class CatalogError(UserError):
    """A series name that is not in the catalog, or a bad catalog entry."""
