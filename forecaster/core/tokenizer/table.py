"""``TableTokenizer``: a frame's rows <-> fixed-width rows of token ids.

Vocabulary layout: ids 0, 1, 2 are ``bos``, ``eos`` and the row delimiter; then
each column owns one contiguous slice, and within it each slot (digit position,
category, date part) its own sub-range. A row is every column's slots in column
order followed by the row delimiter, so ``tokens_per_row`` is fixed and the set
of valid ids at each position is known (``valid_mask``) for constrained sampling.

A document (what a GPT reads) is ``bos, row, row, ..., eos`` (``encode_sequence``).

Decoding policy (``errors=``): ``"raise"`` (default) raises a ``DecodeError``
naming the first problem: a sequence that is not whole rows (it does not start
on a row boundary, or ends mid-row), or an id that is not valid at its position.
Any per-slot-valid row decodes (the missing id lives in a column's first slot
only; 30 February decodes as 28/29 February). ``"drop"`` repairs instead: it re-synchronises on the row delimiters,
keeps only complete well-formed rows and reports what it dropped. ``"coerce"``
keeps every whole row (a forecast path keeps its length) and makes each cell
whose tokens do not form a value missing (NaN/NA/NaT), re-synchronising a flat
sequence like ``"drop"``. No mode returns a misaligned table. Sampling under
``constrained_mask`` produces rows that always decode.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from forecaster.core.tokenizer import serialize
from forecaster.core.tokenizer.codec_base import ColumnCodec
from forecaster.core.tokenizer.codecs import fit_codec
from forecaster.core.tokenizer.errors import DecodeError, EncodeError, SpecError, TokenizerError
from forecaster.core.tokenizer.report import precision_report
from forecaster.core.tokenizer.spec import ColumnSpec

N_SPECIAL = 3
BOS_ID, EOS_ID, ROW_ID = 0, 1, 2


class TableTokenizer:
    """An ordered list of fitted column codecs plus the special tokens.

    Build with ``TableTokenizer.fit(frame, specs)`` or ``TableTokenizer.load(path)``.
    """

    row_id, bos_id, eos_id = ROW_ID, BOS_ID, EOS_ID

    def __init__(self, columns: list[str], codecs: list[ColumnCodec], specs: dict[str, ColumnSpec] | None = None) -> None:
        assert len(columns) == len(codecs), "one codec per column"
        if len(set(columns)) != len(columns):
            raise SpecError(f"duplicate column names in {columns}")
        self.columns, self.codecs = list(columns), list(codecs)
        self.specs = dict(specs or {})
        self.offsets: list[int] = []
        self._slots: dict[str, slice] = {}
        offset, position = N_SPECIAL, 0
        for name, codec in zip(self.columns, self.codecs):
            codec.name = name
            self.offsets.append(offset)
            self._slots[name] = slice(position, position + codec.n_slots)
            offset += codec.vocab_size
            position += codec.n_slots
        self.vocab_size = offset
        self.tokens_per_row = position + 1
        lo = [np.array([], dtype=np.int64)]
        hi = [np.array([], dtype=np.int64)]
        for codec, off in zip(self.codecs, self.offsets):
            starts = codec.slot_starts() + off
            lo.append(starts)
            hi.append(starts + np.asarray(codec.slot_sizes(), dtype=np.int64))
        # (tokens_per_row,) first valid id and one past the last valid id at each position
        self.slot_lo = np.concatenate(lo + [np.array([ROW_ID])])
        self.slot_hi = np.concatenate(hi + [np.array([ROW_ID + 1])])

    # -- construction ----------------------------------------------------------
    @classmethod
    def fit(cls, frame: pd.DataFrame, specs: dict[str, ColumnSpec] | None = None) -> "TableTokenizer":
        """Fit one codec per column of ``frame`` (in frame order).

        Parameters
        ----------
        frame : (rows, columns) the training table; missing values as NaN/None/NaT.
        specs : optional per-column ``ColumnSpec``; a name not in ``frame`` is an error.
        """
        specs = dict(specs or {})
        unknown = sorted(set(specs) - set(map(str, frame.columns)))
        if unknown:
            raise SpecError(f"specs name column(s) {unknown} that are not in the frame (columns: {list(frame.columns)})")
        if frame.columns.has_duplicates:
            raise SpecError("the frame has duplicate column names")
        if not all(isinstance(c, str) for c in frame.columns):
            raise SpecError(f"column names must be strings (they are saved in JSON), got {list(frame.columns)}")
        columns = [str(c) for c in frame.columns]
        codecs = [fit_codec(name, frame[col], specs.get(name)) for name, col in zip(columns, frame.columns)]
        return cls(columns, codecs, specs)

    # -- layout ------------------------------------------------------------------
    def column_slots(self, name: str) -> slice:
        """Positions of column ``name``'s tokens within a row."""
        if name not in self._slots:
            raise TokenizerError(f"unknown column {name!r}; columns are {self.columns}")
        return self._slots[name]

    def column_vocab(self, name: str) -> range:
        """The ids column ``name`` owns (its vocabulary slice)."""
        self.column_slots(name)
        i = self.columns.index(name)
        return range(self.offsets[i], self.offsets[i] + self.codecs[i].vocab_size)

    def codec(self, name: str) -> ColumnCodec:
        self.column_slots(name)
        return self.codecs[self.columns.index(name)]

    def missing_id(self, name: str) -> int | None:
        """The id that writes "missing" in column ``name``'s first slot, or None for a column without one."""
        codec = self.codec(name)
        if not codec.nullable:
            return None
        ids, _ = codec.encode(pd.Series([None], dtype=object), self.offsets[self.columns.index(name)])
        return int(ids[0, 0])

    def valid_mask(self) -> np.ndarray:
        """(tokens_per_row, vocab_size) bool: ``mask[j, i]`` is True when id ``i`` may appear at position ``j`` of a row.

        Every id of a slot decodes (including a category's unknown id and the missing
        ids of nullable columns); the last position admits only the row delimiter.
        """
        ids = np.arange(self.vocab_size)
        return (ids >= self.slot_lo[:, None]) & (ids < self.slot_hi[:, None])

    def fitted_mask(self) -> np.ndarray:
        """``valid_mask`` without the headroom bins of the one-token float columns: the ids a sampler draws.

        A float column's codec covers its fitted range plus headroom at each end (for later
        data and forced values); in signed-log space that headroom reaches daily moves many
        times the largest fitted one (an S&P 500 day of -36 %), and a model has never seen a
        token there. Here each such column keeps only the bins of its fitted range (and its
        missing id). Columns of several tokens and other kinds keep every id.
        """
        mask = self.valid_mask()
        for name, codec, offset in zip(self.columns, self.codecs, self.offsets):
            fitted = getattr(codec, "fitted_codes", None)
            if fitted is None or codec.n_slots != 1:
                continue
            lo, hi = fitted()
            j = self._slots[name].start
            keep = np.zeros(self.vocab_size, dtype=bool)
            keep[offset + lo: offset + hi + 1] = True
            missing = self.missing_id(name)
            if missing is not None:
                keep[missing] = True
            mask[j] &= keep
        return mask

    def constrained_mask(self, prefix: np.ndarray) -> np.ndarray:
        """Valid ids for the next position of each row, given the row so far.

        Stricter than ``valid_mask``: after a missing first slot it allows only the
        canonical digit 0 in the column's later slots, and it keeps dates real (no 30
        February). Rows sampled under either mask decode.

        Parameters
        ----------
        prefix : (batch, k) ids of the first ``k`` positions of the current rows,
            ``0 <= k < tokens_per_row`` (``k = 0``: a new row).

        Returns
        -------
        (batch, vocab_size) bool.
        """
        prefix = np.asarray(prefix, dtype=np.int64)
        assert prefix.ndim == 2 and prefix.shape[1] < self.tokens_per_row, f"prefix of shape {prefix.shape}"
        k = prefix.shape[1]
        mask = np.zeros((prefix.shape[0], self.vocab_size), dtype=bool)
        if k == self.tokens_per_row - 1:
            mask[:, ROW_ID] = True
            return mask
        i = next(i for i, name in enumerate(self.columns) if self._slots[name].start <= k < self._slots[name].stop)
        sl, off = self._slots[self.columns[i]], self.offsets[i]
        allowed = self.codecs[i].slot_constraint(k - sl.start, prefix[:, sl.start : k] - off)
        mask[:, self.slot_lo[k] : self.slot_hi[k]] = allowed
        return mask

    # -- encoding ---------------------------------------------------------------
    def encode_with_report(self, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
        """Encode ``frame`` (rows, columns; extra columns ignored).

        Returns
        -------
        ids : (rows, tokens_per_row) int64, the row delimiter last.
        clamped : per column, how many values lay beyond the representable range (or
            were unseen categories) and were clamped (mapped to the unknown token).
        """
        absent = [c for c in self.columns if c not in frame.columns]
        if absent:
            raise EncodeError(f"the frame lacks column(s) {absent} that the tokenizer was fitted on")
        # built position-major (tokens_per_row, rows) so every copy is contiguous, then transposed once
        out_t = np.empty((self.tokens_per_row, len(frame)), dtype=np.int64)
        clamped: dict[str, int] = {}
        for name, codec, off in zip(self.columns, self.codecs, self.offsets):
            ids, clamped[name] = codec.encode(frame[name], off)
            out_t[self._slots[name]] = ids.T
        out_t[-1] = ROW_ID
        return np.ascontiguousarray(out_t.T), clamped

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, tokens_per_row) int64 ids of ``frame``; see ``encode_with_report``."""
        return self.encode_with_report(frame)[0]

    def encode_sequence(self, frame: pd.DataFrame, bos: bool = True, eos: bool = True) -> np.ndarray:
        """The flat document a GPT reads: ``[bos] row_1 ... row_n [eos]``, (length,) int64."""
        body = self.encode(frame).ravel()
        return np.concatenate([[BOS_ID]] * bos + [body] + [[EOS_ID]] * eos).astype(np.int64)

    # -- decoding ---------------------------------------------------------------
    def decode(self, ids: np.ndarray, errors: str = "raise") -> pd.DataFrame:
        """Decode ids back to a frame with the fitted columns and dtypes.

        Parameters
        ----------
        ids : (rows, tokens_per_row) ids, or a flat (length,) sequence of whole rows,
            optionally starting with ``bos`` and ending at the first ``eos``.
        errors : ``"raise"``, ``"drop"`` or ``"coerce"`` (see the module docstring).
        """
        return self.decode_with_report(ids, errors)[0]

    def decode_with_report(self, ids: np.ndarray, errors: str = "raise") -> tuple[pd.DataFrame, dict[str, int]]:
        """``decode`` plus counts: ``rows`` decoded, ``dropped_rows``, ``dropped_tokens`` (misaligned),
        ``coerced_cells`` (made missing by ``errors="coerce"``)."""
        if errors not in ("raise", "drop", "coerce"):
            raise TokenizerError(f"errors must be 'raise', 'drop' or 'coerce', got {errors!r}")
        arr = np.asarray(ids)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise DecodeError(f"token ids must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
        dropped_tokens = 0
        if arr.ndim == 1:
            arr, dropped_tokens = self._rows_from_sequence(arr, errors)
        elif arr.ndim != 2 or arr.shape[1] != self.tokens_per_row:
            raise DecodeError(f"ids of shape {arr.shape}: expected (rows, {self.tokens_per_row}) or a flat sequence")
        ids_t = np.ascontiguousarray(arr.T)  # (tokens_per_row, rows): whole-column numpy from here on
        ok = (ids_t >= self.slot_lo[:, None]) & (ids_t < self.slot_hi[:, None])
        bad_rows = ~ok.all(axis=0)
        if bad_rows.any():
            if errors == "raise":
                r = int(np.argmax(bad_rows))
                j = int(np.argmax(~ok[:, r]))
                raise DecodeError(
                    f"row {r}, position {j} ({self._position_name(j)}): id {arr[r, j]} is not valid there "
                    f"(allowed {self.slot_lo[j]}..{self.slot_hi[j] - 1})"
                )
            # invalid rows are dropped (or their cells coerced) below; give them harmless ids so they decode
            np.copyto(ids_t, np.broadcast_to(self.slot_lo[:, None], ids_t.shape), where=~ok)
        data: dict[str, Any] = {}
        coerced = 0
        for name, codec, off in zip(self.columns, self.codecs, self.offsets):
            sl = self._slots[name]
            values, bad = codec.decode((ids_t[sl] - off).T)
            if bad.any() and errors == "raise":
                r = int(np.argmax(bad))
                raise DecodeError(f"row {r}, column {name!r}: its tokens do not form a value")
            if errors == "coerce":
                cell_bad = bad | ~ok[sl].all(axis=0)
                if cell_bad.any():
                    if values.dtype == np.int64:
                        values = values.astype("Int64")
                    values = values.mask(cell_bad)  # codecs already made `bad` cells missing
                    coerced += int(cell_bad.sum())
            else:
                bad_rows |= bad
            data[name] = values
        frame = pd.DataFrame(data)
        dropped = 0
        if errors != "coerce" and bad_rows.any():
            dropped = int(bad_rows.sum())
            frame = frame.loc[~bad_rows].reset_index(drop=True)
        info = {"rows": len(frame), "dropped_rows": dropped, "dropped_tokens": dropped_tokens, "coerced_cells": coerced}
        return frame, info

    def _rows_from_sequence(self, seq: np.ndarray, errors: str) -> tuple[np.ndarray, int]:
        """(length,) -> (rows, tokens_per_row), and the count of tokens dropped to re-synchronise."""
        T = self.tokens_per_row
        if seq.size and seq[0] == BOS_ID:
            seq = seq[1:]
        ends = np.flatnonzero(seq == EOS_ID)
        if ends.size:
            seq = seq[: ends[0]]
        delim = np.flatnonzero(seq == ROW_ID)
        expected = np.arange(T - 1, seq.size, T)
        if seq.size % T == 0 and np.array_equal(delim, expected):
            return seq.reshape(-1, T), 0
        if errors == "raise":
            if seq.size % T:
                raise DecodeError(f"the sequence has {seq.size} tokens, not a whole number of {T}-token rows (it ends mid-row or starts off a row boundary); use errors='drop' to keep the whole rows")
            first = int(np.flatnonzero(~np.isin(expected, delim))[0]) if not np.isin(expected, delim).all() else None
            where = expected[first] if first is not None else int(np.setdiff1d(delim, expected)[0])
            raise DecodeError(f"the sequence is not aligned on rows: token {where} should {'be' if first is not None else 'not be'} a row delimiter; use errors='drop' to re-synchronise")
        # re-synchronise: a row is the T-1 tokens before a delimiter, after the previous one
        prev = np.r_[-1, delim[:-1]]
        whole = delim - prev == T
        starts = delim[whole] - (T - 1)
        rows = seq[starts[:, None] + np.arange(T)] if starts.size else np.empty((0, T), np.int64)
        return rows, int(seq.size - rows.size)

    def _position_name(self, j: int) -> str:
        if j == self.tokens_per_row - 1:
            return "row delimiter"
        for name, sl in self._slots.items():
            if sl.start <= j < sl.stop:
                return f"column {name!r} slot {j - sl.start}"
        raise AssertionError(j)

    # -- persistence, fingerprint, report (implemented in serialize.py / report.py) ---
    def to_dict(self) -> dict[str, Any]:
        return serialize.tokenizer_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TableTokenizer":
        return serialize.tokenizer_from_dict(data, cls)

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as versioned, human-readable JSON (atomically)."""
        serialize.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TableTokenizer":
        """Read a tokenizer saved by ``save``; a ``FormatError`` for an unknown version or a missing field."""
        return serialize.load(path, cls)

    def fingerprint(self) -> str:
        """sha256 hex digest of the canonical JSON; equal fingerprints encode and decode identically."""
        return serialize.fingerprint(self)

    def report(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-column precision report on ``frame`` (see ``report.precision_report``)."""
        return precision_report(self, frame)

    def __repr__(self) -> str:
        return f"TableTokenizer({len(self.columns)} columns, {self.tokens_per_row} tokens/row, vocab {self.vocab_size})"
