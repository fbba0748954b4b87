"""Configuration dataclasses rebuilt from saved JSON: an unknown key is an error, not ignored."""
from __future__ import annotations

import dataclasses
import json
from typing import ClassVar


def dataclass_from_dict(cls, data: dict, error: type[Exception], what: str):
    """``cls(**data)``, refusing keys that ``cls`` does not have (missing keys take their defaults).

    ``error`` is the exception type raised, with a one-line message naming ``what``
    (e.g. "model config") and the known keys.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise error(f"unknown {what} key(s) {unknown}; known keys are {sorted(names)}")
    return cls(**data)


class JsonConfig:
    """``to_dict`` / ``to_json`` / ``from_dict`` / ``from_json`` for a strict configuration dataclass.

    A subclass (a ``@dataclass``) sets ``_error`` (the exception type of a bad file) and
    ``_what`` (how messages name it, e.g. "model config").
    """

    _error: ClassVar[type[Exception]] = ValueError
    _what: ClassVar[str] = "config"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict):
        """Rebuild from a dict; an unknown key is an error, not ignored."""
        if not isinstance(d, dict):
            raise cls._error(f"{cls._what} must be a JSON object, got {type(d).__name__}")
        return dataclass_from_dict(cls, d, cls._error, cls._what)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    # -- checks of user-editable fields, as one-line errors (never asserts: they vanish under -O) --
    def check_whole(self, name: str, lo: int, hi: int) -> None:
        """Field ``name`` is an int (not a bool) in ``[lo, hi]``."""
        v = getattr(self, name)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self._error(f"{self._what}: {name} must be a whole number in [{lo:,}, {hi:,}], got {v!r}")

    def check_fraction(self, name: str) -> None:
        """Field ``name`` is a number in ``[0, 1)`` (a dropout rate)."""
        v = getattr(self, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise self._error(f"{self._what}: {name} must be in [0, 1), got {v!r}")

    def check_flag(self, name: str) -> None:
        """Field ``name`` is true or false."""
        if not isinstance(getattr(self, name), bool):
            raise self._error(f"{self._what}: {name} must be true or false, got {getattr(self, name)!r}")
