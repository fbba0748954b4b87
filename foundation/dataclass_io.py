"""Configuration dataclasses rebuilt from saved JSON: an unknown key is an error, not ignored."""
from __future__ import annotations

import dataclasses


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
