"""Saving and loading a ``TableTokenizer`` as versioned, human-readable JSON (never pickle).

Schema, version 1::

    {
      "format": "forecaster.table_tokenizer",
      "version": 1,
      "special_tokens": {"bos": 0, "eos": 1, "row": 2},
      "tokens_per_row": 43, "vocab_size": 2841,
      "columns": [
        {"name": "SPX", "offset": 3, "n_slots": 2, "spec": {...ColumnSpec fields set...},
         "codec": {"kind": "float", "transform": {"name": "signed_log", "scale": 0.6},
                   "base": 64, "digits": 2, "nullable": true, "lo": ..., "width": ..., ...}},
        ...
      ]
    }

``tokens_per_row``, ``vocab_size``, ``offset`` and ``n_slots`` are derived, and
checked on load, so a hand-edited file that no longer lines up is refused. An
unknown version, a missing field or an unknown field is a ``FormatError``. The
fingerprint is the sha256 of the canonical (sorted, compact) JSON.

This module knows the file format, not the tokenizer: ``table`` imports it, and
the class to rebuild is passed in (``tokenizer_from_dict(data, TableTokenizer)``).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from foundation.atomic import write_text
from forecaster.core.tokenizer.codecs import codec_from_dict
from forecaster.core.tokenizer.errors import FormatError, SpecError
from forecaster.core.tokenizer.spec import ColumnSpec

if TYPE_CHECKING:  # annotations only: table imports this module
    from forecaster.core.tokenizer.table import TableTokenizer

FORMAT = "forecaster.table_tokenizer"
VERSION = 1
_TOP_KEYS = {"format", "version", "special_tokens", "tokens_per_row", "vocab_size", "columns"}
_COLUMN_KEYS = {"name", "offset", "n_slots", "spec", "codec"}


def _special_tokens(tok: TableTokenizer | type[TableTokenizer]) -> dict[str, int]:
    return {"bos": tok.bos_id, "eos": tok.eos_id, "row": tok.row_id}


def tokenizer_to_dict(tok: TableTokenizer) -> dict[str, Any]:
    """The JSON-able description of a fitted tokenizer (schema above)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "special_tokens": _special_tokens(tok),
        "tokens_per_row": tok.tokens_per_row,
        "vocab_size": tok.vocab_size,
        "columns": [
            {
                "name": name,
                "offset": off,
                "n_slots": codec.n_slots,
                "spec": tok.specs[name].to_dict() if name in tok.specs else {},
                "codec": codec.to_dict(),
            }
            for name, codec, off in zip(tok.columns, tok.codecs, tok.offsets)
        ],
    }


def _check_keys(d: Any, expected: set[str], where: str) -> None:
    if not isinstance(d, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(d).__name__}")
    missing, unknown = sorted(expected - set(d)), sorted(set(d) - expected)
    if missing:
        raise FormatError(f"{where}: missing field(s) {missing}")
    if unknown:
        raise FormatError(f"{where}: unknown field(s) {unknown}")


def tokenizer_from_dict(data: dict[str, Any], cls: type[TableTokenizer]) -> TableTokenizer:
    """Rebuild a ``cls`` tokenizer from ``tokenizer_to_dict``; ``FormatError`` on any mismatch."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FormatError(f"not a table tokenizer file (format {data.get('format') if isinstance(data, dict) else None!r}, expected {FORMAT!r})")
    if data.get("version") != VERSION:
        raise FormatError(f"tokenizer file version {data.get('version')!r} is not supported: this build reads version {VERSION}; refit the tokenizer or upgrade")
    _check_keys(data, _TOP_KEYS, "tokenizer file")
    if data["special_tokens"] != _special_tokens(cls):
        raise FormatError(f"tokenizer file: special tokens {data['special_tokens']} differ from this build's")
    columns, codecs, specs = [], [], {}
    for i, col in enumerate(data["columns"]):
        where = f"tokenizer file, column {i} ({col.get('name') if isinstance(col, dict) else '?'!r})"
        _check_keys(col, _COLUMN_KEYS, where)
        try:
            codec = codec_from_dict(col["codec"], col["name"])
        except KeyError as exc:
            raise FormatError(f"{where}: codec lacks field {exc}") from None
        except (TypeError, ValueError, AssertionError) as exc:
            raise FormatError(f"{where}: malformed codec ({exc})") from None
        stored, rebuilt = set(col["codec"]), set(codec.to_dict())
        if stored != rebuilt:
            raise FormatError(f"{where}: codec fields {sorted(stored ^ rebuilt)} are unknown or missing")
        try:
            if col["spec"]:
                specs[col["name"]] = ColumnSpec.from_dict(col["spec"])
        except SpecError as exc:
            raise FormatError(f"{where}: {exc}") from None
        columns.append(col["name"])
        codecs.append(codec)
    tok = cls(columns, codecs, specs)
    derived = ([c["offset"] for c in data["columns"]], [c["n_slots"] for c in data["columns"]], data["tokens_per_row"], data["vocab_size"])
    if derived != (tok.offsets, [c.n_slots for c in codecs], tok.tokens_per_row, tok.vocab_size):
        raise FormatError("tokenizer file: stored offsets, slot counts, tokens_per_row or vocab_size do not match its codecs (edited by hand?)")
    return tok


def to_json(tok: TableTokenizer) -> str:
    """Indented JSON (what ``save`` writes)."""
    return json.dumps(tokenizer_to_dict(tok), indent=1, allow_nan=False) + "\n"


def fingerprint(tok: TableTokenizer) -> str:
    """sha256 hex digest of the canonical JSON (columns, specs, fitted codecs, format version).

    Equal fingerprints mean identical encoding and decoding; a checkpoint stores it
    and refuses a tokenizer whose fingerprint differs.
    """
    canonical = json.dumps(tokenizer_to_dict(tok), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def save(tok: TableTokenizer, path: str | os.PathLike) -> None:
    """Atomically write ``tok`` to ``path`` as JSON."""
    write_text(path, to_json(tok))


def load(path: str | os.PathLike, cls: type[TableTokenizer]) -> TableTokenizer:
    """Read a ``cls`` tokenizer written by ``save``."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise FormatError(f"tokenizer file {os.fspath(path)!r} does not exist") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"tokenizer file {os.fspath(path)!r} is not valid JSON ({exc})") from None
    try:
        return tokenizer_from_dict(data, cls)
    except FormatError as exc:
        raise FormatError(f"{os.fspath(path)}: {exc}") from None
