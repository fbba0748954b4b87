"""Typed errors of the tabular tokenizer.

Every error a caller can cause (a bad spec, a value a column cannot hold, a
token sequence that does not decode, a tokenizer file of another version) is a
``TokenizerError``, a ``UserError`` whose one-line message says what to do. The
CLI prints it and exits non-zero. Internal invariants use ``assert`` instead.
"""
from __future__ import annotations

from foundation.errors import UserError


class TokenizerError(UserError):
    """Base class: the tokenizer cannot do what was asked with this input."""


class SpecError(TokenizerError):
    """A ``ColumnSpec`` is invalid, or does not fit the column it is applied to."""


class EncodeError(TokenizerError):
    """A frame cannot be encoded (missing column, missing value in a column without a missing token, non-integer in an int column)."""


class DecodeError(TokenizerError):
    """A token array or sequence does not decode to whole, valid rows."""


class FormatError(TokenizerError):
    """A saved tokenizer file is malformed, of an unknown version, or lacks a field."""
