"""The one sanitiser for names that become file or folder names.

Scenario names, series names, run, forecast, backtest and synthesis folder names
reach the file system from user input, from files (a scenario's ``name:``) and
from the browser. Each goes through ``safe_name`` before it is joined to a path,
and ``inside`` checks that a joined path, symbolic links resolved, stays in its
root folder.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from foundation.errors import UserError

MAX_NAME = 64
_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}$")


class NameError_(UserError):  # noqa: N801 - the builtin NameError means something else
    """A name that cannot be used as a single file or folder name."""


def is_safe_name(name: object) -> bool:
    """True for 1-64 letters, digits, ``_ . -`` starting with a letter or digit (never ``..``, ``/`` or ``\\``)."""
    return isinstance(name, str) and bool(_NAME.match(name)) and ".." not in name


def safe_name(name: object, what: str = "name") -> str:
    """``name`` as a single safe file name, or a ``UserError`` naming ``what``; spaces become ``-``."""
    if isinstance(name, str):
        name = name.strip().replace(" ", "-")
    if not is_safe_name(name):
        shown = repr(name) if not isinstance(name, str) or len(name) <= 80 else repr(name[:80] + "...")
        raise NameError_(f"{what} {shown}: use 1-{MAX_NAME} letters, digits, '-', '_' or '.' "
                         "(starting with a letter or digit, no '..')")
    return name


def inside(root: str | os.PathLike, path: str | os.PathLike, what: str = "path") -> Path:
    """``path`` resolved (symbolic links followed); a ``UserError`` when it lies outside ``root``."""
    root_r = Path(root).resolve()
    p = Path(path).resolve()
    if p != root_r and root_r not in p.parents:
        raise NameError_(f"{what} {path} leads outside {root} (a symbolic link or '..'); refused")
    return p
