"""The user-facing error type.

Every error a user can cause (a bad file, an unknown series, an unreachable URL,
a bad parameter) is a ``UserError`` whose message says what went wrong, where,
and what to do. The CLI prints it as one line and exits non-zero; internal
invariants use ``assert``. Each layer derives its own errors from it
(``data_sources.errors``, ``forecaster.core.tokenizer.errors``, ...).
"""
from __future__ import annotations


class UserError(Exception):
    """An error caused by input the user can fix. The message is one line."""

    exit_code = 2
