"""The column-codec interface and the positional-digit layout shared by numeric codecs.

A codec turns one column into a fixed number of tokens per row ("slots") and
back. Ids are *local*: slot ``j`` owns the contiguous ids
``slot_starts[j] : slot_starts[j] + slot_sizes[j]`` of the column's vocabulary
slice, which the table shifts by the column's offset. Every id a slot owns
decodes (no gaps), so a per-slot id range is exactly the constrained-decoding
mask.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd


class ColumnCodec:
    """Interface of a fitted column codec.

    Subclasses set ``kind`` and implement ``slot_sizes``, ``encode``, ``decode``,
    ``to_dict``/``from_dict``. ``error_bound`` is the worst-case absolute
    round-trip error over the fitted range, in the column's own units (seconds
    for datetimes); 0 for exact codecs.
    """

    kind: ClassVar[str] = ""
    error_bound: float = 0.0
    nullable: bool = False

    def slot_sizes(self) -> list[int]:
        """Number of ids each slot owns, in slot order."""
        raise NotImplementedError

    @property
    def n_slots(self) -> int:
        return len(self.slot_sizes())

    @property
    def vocab_size(self) -> int:
        return int(sum(self.slot_sizes()))

    def slot_starts(self) -> np.ndarray:
        """(n_slots,) int64: first local id of each slot."""
        sizes = np.asarray(self.slot_sizes(), dtype=np.int64)
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def slot_constraint(self, j: int, prev: np.ndarray) -> np.ndarray:
        """Which local ids of slot ``j`` may follow the column's earlier slots (constrained decoding).

        Parameters
        ----------
        j : slot index within the column.
        prev : (batch, j) local ids already chosen for slots ``0..j-1``.

        Returns
        -------
        (batch, slot_sizes[j]) bool. Every per-slot combination decodes (a nullable
        column's missing id exists only in its first slot, and later slots are then
        ignored), so this only narrows sampling to canonical encodings: after a missing
        first slot, the later slots take their first id (digit 0).
        """
        size = self.slot_sizes()[j]
        allowed = np.ones((prev.shape[0], size), dtype=bool)
        if self.nullable and j > 0:
            was_missing = prev[:, 0] == self.slot_starts()[0] + self.slot_sizes()[0] - 1
            allowed[was_missing, 1:] = False
        return allowed

    def encode(self, column: pd.Series, offset: int = 0) -> tuple[np.ndarray, int]:
        """Encode a column.

        Parameters
        ----------
        column : (rows,) values in the column's own units.
        offset : added to every id (the column's first id in the table vocabulary).

        Returns
        -------
        ids : (rows, n_slots) int64.
        n_clamped : how many values lay outside the representable range (or were
            unseen categories) and were clamped (mapped to the unknown token).
        """
        raise NotImplementedError

    def decode(self, ids: np.ndarray) -> tuple[pd.Series, np.ndarray]:
        """Decode local ids (rows, n_slots), each within its slot's range.

        Returns the values as a Series of the column's dtype, and a (rows,) bool mask
        of rows whose slots do not form a value (none for the built-in codecs: every
        per-slot combination decodes); those rows' values are missing.
        """
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """One short line for reports: transform, base and digits."""
        return self.kind


class DigitLayout:
    """Integers ``0 <= code < base**digits`` written as ``digits`` base-``base`` tokens.

    Most significant digit first. Each position owns ``base`` ids; when
    ``nullable``, the *first* position also owns a missing id. A missing value is
    the missing id in the first position (the later positions are written as digit
    0 and ignored on decode). So every combination of per-position ids decodes:
    a sampler that only knows each position's id range can never produce an
    inconsistent value.
    """

    def __init__(self, base: int, digits: int, nullable: bool) -> None:
        assert base >= 2 and digits >= 1, (base, digits)
        self.base, self.digits, self.nullable = int(base), int(digits), bool(nullable)
        self.n_codes = self.base**self.digits
        assert self.n_codes <= 2**62, "digit layout overflows int64"
        self._sizes = [self.base + int(self.nullable)] + [self.base] * (self.digits - 1)
        self.starts = np.concatenate([[0], np.cumsum(self._sizes)[:-1]]).astype(np.int64)
        self.missing_id = int(self.starts[0] + self.base)  # local id, first position only
        self.powers = self.base ** np.arange(self.digits - 1, -1, -1, dtype=np.int64)
        self._start_code = 0  # the code the slot offsets alone add up to (removed after Horner)
        for start in self.starts.tolist():
            self._start_code = self._start_code * self.base + start
        pow2 = self.base & (self.base - 1) == 0
        self.shifts = (np.arange(self.digits - 1, -1, -1) * (self.base.bit_length() - 1)).astype(np.int64) if pow2 else None

    def slot_sizes(self) -> list[int]:
        return list(self._sizes)

    def encode(self, codes: np.ndarray, missing: np.ndarray | None, offset: int) -> np.ndarray:
        """(rows,) int64 codes in range -> (rows, digits) int64 ids; ``missing`` rows get missing ids.

        The result is the transpose of a C-contiguous (digits, rows) array: every
        digit is computed by whole-column numpy operations (a (rows, digits) layout
        would make numpy loop over rows in inner loops of length ``digits``).
        """
        out = np.empty((self.digits, codes.size), dtype=np.int64)
        rest = codes
        for j in range(self.digits - 1, -1, -1):  # least significant digit first
            row = out[j]
            if self.shifts is not None:
                np.right_shift(codes, self.shifts[j], out=row)
                np.bitwise_and(row, self.base - 1, out=row)
            else:
                quot = rest // self.base  # a scalar divisor: numpy uses libdivide; divmod does not
                np.multiply(quot, -self.base, out=row)
                row += rest
                rest = quot
            row += self.starts[j] + offset
            if missing is not None:  # the missing id first, then digit 0
                np.copyto(row, (self.missing_id if j == 0 else self.starts[j]) + offset, where=missing)
        if missing is not None:
            assert self.nullable, "missing values reached a layout without a missing id"
        return out.T

    def decode(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(rows, digits) local ids -> codes (rows,), missing (rows,) or None, bad (rows,) or None.

        Fastest when ``ids`` columns are contiguous (the transpose of a (digits, rows) array).
        """
        codes = ids[:, 0].astype(np.int64, copy=True)
        for j in range(1, self.digits):  # Horner on the raw ids, offsets removed at the end
            codes *= self.base
            codes += ids[:, j]
        codes -= self._start_code
        missing = bad = None
        if self.nullable:
            missing = ids[:, 0] == self.missing_id
            bad = np.zeros(len(ids), dtype=bool)  # every id combination decodes
        return codes, missing, bad

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "digits": self.digits, "nullable": self.nullable}


def digits_for(n_values: int, base: int) -> int:
    """Fewest base-``base`` digits that can write ``n_values`` distinct codes."""
    digits, capacity = 1, base
    while capacity < n_values:
        digits, capacity = digits + 1, capacity * base
    return digits
