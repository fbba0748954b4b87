"""Stress scenarios: the user fixes the path of some series, the model samples the rest.

A scenario file (YAML or JSON)::

    name: oil-and-vol-shock
    constraints:
      - {series: VIX, level: 40, days: 1-20}          # hold VIX at 40 on days 1..20
      - {series: WTI, change_pct: 50, days: 1-60}     # WTI +50 % over days 1..60 (geometric ramp)
      - {series: UST10Y, change_bp: 100, days: 1-120} # 10-year yield +100 bp by day 120 (linear ramp)
      - {series: SPX, path: [4000, 3900, 3800], days: 1-3}  # explicit levels

The same constraints on the command line: ``--shock VIX:level=40:days=1-20``,
``--shock WTI:change_pct=50:days=1-60``, ``--shock UST10Y:change_bp=100:days=1-120``.

Validation. A series has at most one constraint on any day (two that overlap are an
error, whether or not they agree); ``days`` is ``N``, ``FIRST-LAST`` or ``[FIRST, LAST]``
of integers; values are finite numbers; ``name`` is a short safe name (it becomes part
of file names). A file is at most ``MAX_FILE_BYTES`` and YAML aliases are refused, so
a small file cannot expand into a huge document.

Semantics. ``days`` are business days after the as-of date (1-based, inclusive).
Ramps start from the last observed level when they start on day 1, and from the
path's own level on the day before otherwise (the constraint then fixes the
*change*, path by path). ``level``/``path`` fix absolute levels: for series modeled
as returns or differences they must start on day 1. The forced values are
converted to the series' modeling transform, tokenized, and forced into the
sampler; each day's step is chosen against the level the previous quantized steps
reached, so the forced levels match the request within one step of tokenizer
precision (no drift over long constraints). After its last day a series is free.
"""
from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

from data_sources import catalog
from foundation.errors import UserError
from foundation.names import is_safe_name, safe_name
from forecaster.market.transforms import Transform, transform_of

KINDS = ("level", "path", "change_pct", "change_bp", "change")
MAX_FILE_BYTES = 1 << 20  # a scenario is a few constraints; this leaves room for long explicit paths


class ScenarioError(UserError):
    """A scenario that cannot be applied (unknown series, bad days, value out of range)."""


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases: nested aliases (a "billion laughs" file) would
    expand a few hundred bytes into gigabytes once the document is used."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ScenarioError(f"line {mark.line + 1}: YAML aliases (*name) are not allowed in a scenario file; write the values out")
        return super().compose_node(parent, index)


@dataclass
class Constraint:
    """One series' forced path over ``days`` (first, last), 1-based inclusive."""

    series: str
    kind: str
    value: float | list[float]
    days: tuple[int, int]

    def to_dict(self) -> dict:
        return {"series": self.series, self.kind: self.value, "days": f"{self.days[0]}-{self.days[1]}"}


@dataclass
class Scenario:
    """A named list of constraints, at most one per series and day."""

    name: str = "base"
    constraints: list[Constraint] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            self.name = safe_name(self.name, "scenario name")
        except UserError as exc:
            raise ScenarioError(str(exc)) from None
        by_series: dict[str, list[Constraint]] = {}
        for c in self.constraints:
            by_series.setdefault(c.series, []).append(c)
        for series, cons in by_series.items():
            cons = sorted(cons, key=lambda c: c.days)
            for a, b in zip(cons, cons[1:]):
                if b.days[0] <= a.days[1]:
                    first, last = b.days[0], min(a.days[1], b.days[1])
                    raise ScenarioError(
                        f"{series} is constrained twice on days {first}-{last} ({_describe(a)} and {_describe(b)}); "
                        "give each day of a series one constraint")

    def to_dict(self) -> dict:
        return {"name": self.name, "constraints": [c.to_dict() for c in self.constraints]}


def _describe(c: Constraint) -> str:
    value = f"{len(c.value)} values" if c.kind == "path" else f"{c.value:g}"
    return f"{c.kind} {value} on days {c.days[0]}-{c.days[1]}"


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _days(value, where: str, key: str = "days") -> tuple[int, int]:
    """``N`` (days 1-N), ``"FIRST-LAST"`` or ``[FIRST, LAST]`` of integers; anything else is an error."""
    if _is_int(value):
        first, last = 1, int(value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        first, last = int(value[0]), int(value[1])
    elif isinstance(value, str) and (m := re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", value)):
        first, last = (int(m.group(1)), int(m.group(2))) if m.group(2) else (1, int(m.group(1)))
    else:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise ScenarioError(f"{where}: {key} {shown} must be N or FIRST-LAST with whole numbers, e.g. 1-20")
    if not 1 <= first <= last:
        raise ScenarioError(f"{where}: days {first}-{last} must satisfy 1 <= first <= last")
    return (first, last)


def constraint_from_dict(entry: dict, where: str) -> Constraint:
    """Validate one constraint entry (from a file or the command line)."""
    if not isinstance(entry, dict) or "series" not in entry:
        raise ScenarioError(f"{where}: each constraint needs 'series' and one of {', '.join(KINDS)}")
    name = entry["series"]
    if not isinstance(name, str) or name not in catalog.CATALOG:
        raise ScenarioError(f"{where}: unknown series {name!r} (known: {', '.join(sorted(catalog.CATALOG))})")
    kinds = [k for k in KINDS if k in entry]
    unknown = set(entry) - set(KINDS) - {"series", "days", "by_day"}
    if len(kinds) != 1 or unknown:
        raise ScenarioError(f"{where}: give exactly one of {', '.join(KINDS)} (and 'days'); got keys {sorted(entry)}")
    kind = kinds[0]
    raw = entry[kind]
    if kind == "path":
        if isinstance(raw, (str, bytes, dict)) or not isinstance(raw, (list, tuple)) or not raw:
            raise ScenarioError(f"{where}: path must be a non-empty list of numbers")
        value = [_number(v, kind, where) for v in raw]
    else:
        value = _number(raw, kind, where)
    if "days" in entry and "by_day" in entry:
        raise ScenarioError(f"{where}: give 'days' or 'by_day', not both")
    if "days" in entry:
        days = _days(entry["days"], where)
    elif "by_day" in entry:
        if not _is_int(entry["by_day"]) and not (isinstance(entry["by_day"], str) and entry["by_day"].strip().isdigit()):
            raise ScenarioError(f"{where}: by_day {entry['by_day']!r} must be a whole number of days")
        days = _days(int(entry["by_day"]), where, "by_day")
    elif kind == "path":
        days = (1, len(value))
    else:
        raise ScenarioError(f"{where}: say on which days with 'days: FIRST-LAST' (or 'by_day: N')")
    if kind == "path" and len(value) != days[1] - days[0] + 1:
        raise ScenarioError(f"{where}: path has {len(value)} values for days {days[0]}-{days[1]}")
    return Constraint(name, kind, value, days)


def _number(v, kind: str, where: str) -> float:
    """A finite float from a YAML/JSON number or a numeric string (the command line); booleans are refused."""
    x = None
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        x = float(v)
    elif isinstance(v, str):
        try:
            x = float(v)
        except ValueError:
            pass
    if x is None or not math.isfinite(x):
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:40] + "..."
        raise ScenarioError(f"{where}: {kind} {shown} is not a {'finite ' if x is not None else ''}number")
    return x


def _read_document(p: Path):
    """The parsed YAML or JSON document of scenario file ``p`` (size-bounded, without YAML aliases)."""
    if not p.exists():
        raise ScenarioError(f"scenario file not found: {p}")
    if not p.is_file():
        raise ScenarioError(f"scenario {p} is not a file (a directory?); give a .yaml or .json file")
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(f"scenario file {p} is too large ({size} bytes; at most {MAX_FILE_BYTES})")
        with open(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {p} ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:  # it grew after the stat (a pipe or a file being written)
        raise ScenarioError(f"scenario file {p} is too large (more than {MAX_FILE_BYTES} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{p}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    is_json = p.suffix.lower() == ".json"
    try:
        return json.loads(text) if is_json else yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a safe loader
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{p}: not valid {'JSON' if is_json else 'YAML'} ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ScenarioError(f"{p}: nested too deeply to be a scenario") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read a YAML or JSON scenario file (see the module doc); a ``ScenarioError`` for any problem."""
    p = Path(path)
    doc = _read_document(p)
    if not isinstance(doc, dict) or not isinstance(doc.get("constraints"), list) or not doc["constraints"]:
        raise ScenarioError(f"{p}: expected 'constraints:' with a list of constraints")
    cons = [constraint_from_dict(c, f"{p}, constraint {i + 1}") for i, c in enumerate(doc["constraints"])]
    if "name" in doc:
        name = doc["name"]
        if not isinstance(name, str):
            raise ScenarioError(f"{p}: scenario name must be a string, got {type(name).__name__}")
    else:  # the file's stem, when it makes a safe name
        stem = p.stem.strip().replace(" ", "-")
        name = stem if is_safe_name(stem) else "scenario"
    try:
        return Scenario(name, cons)
    except ScenarioError as exc:
        raise ScenarioError(f"{p}: {exc}") from None


def parse_shock(text: str) -> Constraint:
    """``SERIES:KIND=VALUE:days=A-B`` from the command line; a key given twice is an error."""
    parts = text.split(":")
    entry: dict = {"series": parts[0].strip()}
    for part in parts[1:]:
        if "=" not in part:
            raise ScenarioError(f"--shock {text!r}: expected SERIES:KIND=VALUE:days=A-B, e.g. VIX:level=40:days=1-20")
        key, value = part.split("=", 1)
        key = key.strip()
        if key in entry:
            raise ScenarioError(f"--shock {text!r}: {key} is given more than once")
        entry[key] = [v for v in value.split(",")] if key == "path" else value.strip()
    return constraint_from_dict(entry, f"--shock {text!r}")


def target_levels(c: Constraint, last_level: float) -> np.ndarray:
    """The requested levels on days ``c.days`` (relative ramps start from ``last_level``)."""
    n = c.days[1] - c.days[0] + 1
    frac = np.arange(1, n + 1) / n
    if c.kind == "level":
        return np.full(n, float(c.value))
    if c.kind == "path":
        return np.asarray(c.value, dtype=np.float64)
    if c.kind == "change_pct":
        return last_level * (1.0 + c.value / 100.0) ** frac
    if c.kind == "change_bp":
        return last_level + c.value / 100.0 * frac
    return last_level + c.value * frac  # "change", in the series' units


def forced_model_values(scenario: Scenario, last_levels: dict[str, float], horizon: int, roundtrip,
                        transforms: dict[str, Transform] | None = None,
                        release_days: dict[str, np.ndarray] | None = None,
                        at_release: dict[str, Callable[[int], Transform]] | None = None) -> pd.DataFrame:
    """Model-frame values to force: (horizon, constrained series), NaN where free.

    ``roundtrip(name, value) -> value`` quantizes one model-frame value through the
    tokenizer, so each day's step is chosen against the level actually reached.
    ``transforms``: {series: Transform} of the run (default: the catalog's).
    ``release_days``: {series: (horizon,) bool} for series that move on their release days
    only (``features.release_days``): a constraint on one moves it on the release days within
    its days, to that day's target (so a monthly series prints the path the scenario gives,
    release by release); its other days are left to the caller (the "no release" token).
    ``at_release``: {series: f(k) -> the Transform of its k-th release after the origin (1-based)},
    for a transform that differs release by release (``yoy_index``: the month leaving the window).
    """
    out = pd.DataFrame(np.nan, index=range(horizon), columns=sorted({c.series for c in scenario.constraints}))
    for c in scenario.constraints:
        where = f"constraint on {c.series} (days {c.days[0]}-{c.days[1]})"
        if c.days[1] > horizon:
            raise ScenarioError(f"{where}: ends after the horizon of {horizon} days")
        transform = (transforms or {}).get(c.series) or transform_of(c.series)
        relative = c.kind in ("change_pct", "change_bp", "change")
        starts_late = transform.models_changes and c.days[0] > 1
        if starts_late and not relative:
            raise ScenarioError(f"{where}: an absolute {c.kind} on a series modeled as {transform} must start on day 1; use a change_* constraint")
        base = last_levels.get(c.series, np.nan)
        if not np.isfinite(base) and (relative or transform.models_changes):
            raise ScenarioError(f"{where}: {c.series} has no value on the as-of date to start from")
        if starts_late:
            base = transform.neutral_level  # a relative ramp: only the changes matter
        targets = target_levels(c, base)
        reached = base
        on = (release_days or {}).get(c.series)
        per_release = (at_release or {}).get(c.series)
        for k, y in enumerate(targets):
            row = c.days[0] - 1 + k
            if on is not None and not on[row]:
                continue
            if per_release is not None:
                transform = per_release(int(on[:row + 1].sum()))
            if transform.positive_levels and y <= 0:
                raise ScenarioError(f"{where}: {c.series} level {y} must be positive")
            q = roundtrip(c.series, transform.value_for_level(reached, y))
            if not np.isfinite(q):
                raise ScenarioError(f"{where}: day {row + 1} value cannot be represented")
            out.at[row, c.series] = q
            reached = transform.step(reached, q)
    return out
