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
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from data_sources import catalog
from data_sources.errors import UserError

KINDS = ("level", "path", "change_pct", "change_bp", "change")


class ScenarioError(UserError):
    """A scenario that cannot be applied (unknown series, bad days, value out of range)."""


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
    name: str = "base"
    constraints: list[Constraint] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "constraints": [c.to_dict() for c in self.constraints]}


def _days(value, where: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (1, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        first, last = int(value[0]), int(value[1])
    else:
        m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(value))
        if not m:
            raise ScenarioError(f"{where}: days {value!r} must look like 1-20")
        first, last = int(m.group(1)), int(m.group(2))
    if not 1 <= first <= last:
        raise ScenarioError(f"{where}: days {first}-{last} must satisfy 1 <= first <= last")
    return (first, last)


def constraint_from_dict(entry: dict, where: str) -> Constraint:
    """Validate one constraint entry (from a file or the command line)."""
    if not isinstance(entry, dict) or "series" not in entry:
        raise ScenarioError(f"{where}: each constraint needs 'series' and one of {', '.join(KINDS)}")
    name = entry["series"]
    if name not in catalog.CATALOG:
        raise ScenarioError(f"{where}: unknown series {name!r} (known: {', '.join(sorted(catalog.CATALOG))})")
    kinds = [k for k in KINDS if k in entry]
    unknown = set(entry) - set(KINDS) - {"series", "days", "by_day"}
    if len(kinds) != 1 or unknown:
        raise ScenarioError(f"{where}: give exactly one of {', '.join(KINDS)} (and 'days'); got keys {sorted(entry)}")
    kind = kinds[0]
    value = entry[kind]
    try:
        value = [float(v) for v in value] if kind == "path" else float(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: {kind} {value!r} is not a number{' list' if kind == 'path' else ''}") from None
    if "days" in entry:
        days = _days(entry["days"], where)
    elif "by_day" in entry:
        days = _days(int(entry["by_day"]), where)
    elif kind == "path":
        days = (1, len(value))
    else:
        raise ScenarioError(f"{where}: say on which days with 'days: FIRST-LAST' (or 'by_day: N')")
    if kind == "path" and len(value) != days[1] - days[0] + 1:
        raise ScenarioError(f"{where}: path has {len(value)} values for days {days[0]}-{days[1]}")
    return Constraint(name, kind, value, days)


def load_scenario(path: str | Path) -> Scenario:
    """Read a YAML or JSON scenario file."""
    p = Path(path)
    if not p.exists():
        raise ScenarioError(f"scenario file not found: {p}")
    try:
        doc = json.loads(p.read_text()) if p.suffix.lower() == ".json" else yaml.safe_load(p.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'} ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("constraints"), list) or not doc["constraints"]:
        raise ScenarioError(f"{p}: expected 'constraints:' with a list of constraints")
    cons = [constraint_from_dict(c, f"{p}, constraint {i + 1}") for i, c in enumerate(doc["constraints"])]
    return Scenario(str(doc.get("name", p.stem)), cons)


def parse_shock(text: str) -> Constraint:
    """``SERIES:KIND=VALUE:days=A-B`` from the command line."""
    parts = text.split(":")
    entry: dict = {"series": parts[0].strip()}
    for part in parts[1:]:
        if "=" not in part:
            raise ScenarioError(f"--shock {text!r}: expected SERIES:KIND=VALUE:days=A-B, e.g. VIX:level=40:days=1-20")
        key, value = part.split("=", 1)
        entry[key.strip()] = [v for v in value.split(",")] if key.strip() == "path" else value.strip()
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


def forced_model_values(scenario: Scenario, last_levels: dict[str, float], horizon: int, roundtrip) -> pd.DataFrame:
    """Model-frame values to force: (horizon, constrained series), NaN where free.

    ``roundtrip(name, value) -> value`` quantizes one model-frame value through the
    tokenizer, so each day's step is chosen against the level actually reached.
    """
    out = pd.DataFrame(np.nan, index=range(horizon), columns=sorted({c.series for c in scenario.constraints}))
    for c in scenario.constraints:
        where = f"constraint on {c.series} (days {c.days[0]}-{c.days[1]})"
        if c.days[1] > horizon:
            raise ScenarioError(f"{where}: ends after the horizon of {horizon} days")
        transform = catalog.get(c.series).transform
        relative = c.kind in ("change_pct", "change_bp", "change")
        if transform != "level" and c.days[0] > 1 and not relative:
            raise ScenarioError(f"{where}: an absolute {c.kind} on a series modeled as {transform} must start on day 1; use a change_* constraint")
        base = last_levels.get(c.series, np.nan)
        if not np.isfinite(base) and (relative or transform != "level"):
            raise ScenarioError(f"{where}: {c.series} has no value on the as-of date to start from")
        if transform != "level" and c.days[0] > 1:
            base = 100.0 if transform == "log_return" else 0.0  # a relative ramp: only the changes matter
        targets = target_levels(c, base)
        reached = base
        for k, y in enumerate(targets):
            row = c.days[0] - 1 + k
            if transform == "level":
                step = y
            elif transform == "diff":
                step = y - reached
            else:
                if y <= 0:
                    raise ScenarioError(f"{where}: {c.series} level {y} must be positive")
                step = 100.0 * np.log(y / reached)
            q = roundtrip(c.series, step)
            if not np.isfinite(q):
                raise ScenarioError(f"{where}: day {row + 1} value cannot be represented")
            out.at[row, c.series] = q
            reached = q if transform == "level" else (reached + q if transform == "diff" else reached * np.exp(q / 100.0))
    return out
