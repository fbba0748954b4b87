"""User catalog files: series the built-in catalog lacks, declared in YAML.

A catalog file is given with ``--catalog FILE`` or found beside the data file
(``<data stem>.catalog.yaml``, else ``catalog.yaml`` in the same folder)::

    series:
      MYSERIES:
        description: My strategy's NAV      # for people (tables, axis labels)
        unit: index points
        frequency: D                        # D W M Q (native observation frequency)
        transform: log_return               # log_return, diff or level (how the model sees it)
        positive: true                      # a level that is never <= 0: tokenized in logs
        stationary: false                   # mean-reverting: baselines model it in levels
        group: market                       # market or macro (default: market for D, else macro)
        calendar: XNYS                      # exchange calendar (default XNYS)
        revised: false                      # later estimates replace published values
        release: same_day                   # see below

``release`` is ``same_day`` or a mapping with ``kind`` and its parameters
(``data_sources.publication.ReleaseRule``)::

    release: {kind: business_days_after_end, days: 10}            # 10 NYSE days after the period ends
    release: {kind: nth_weekday, n: 1, weekday: Friday, min_day: 3}  # first Friday (from the 3rd) of M+1
    release: {kind: monthly_day, day: 15}                            # the 15th of M+1
    release: {kind: next_weekday, weekday: Thursday}                 # weekly: the Thursday after
    release: {kind: dates, dates: [2024-02-14, 2024-03-13]}          # each period: the first listed date after it ends

Every key is checked: an unknown one is a ``CatalogError`` naming the file and the key.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from data_sources import catalog
from data_sources.catalog import FREQUENCIES, TRANSFORMS, Catalog, SeriesSpec
from data_sources.errors import CatalogError
from data_sources.publication import KINDS, ReleaseRule

_SERIES_KEYS = {"description", "unit", "frequency", "transform", "positive", "stationary", "group", "calendar",
                "revised", "release", "notes"}
_REQUIRED = ("description", "unit", "frequency", "transform")
_RULE_KEYS = {  # the parameters each rule kind takes (besides kind and overrides)
    "same_day": set(),
    "days_after": {"days"},
    "monthly_day": {"day", "months_after"},
    "nth_weekday": {"n", "weekday", "min_day", "months_after"},
    "quarter_end_plus": {"days"},
    "business_days_after_end": {"days"},
    "next_weekday": {"weekday"},
    "dates": {"dates"},
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DEFAULT_RULE = {"D": "same_day"}  # other frequencies must say when they are published
assert set(_RULE_KEYS) == set(KINDS)


def catalog_beside(data: str | Path) -> Path | None:
    """The catalog file found beside a data file: ``<stem>.catalog.yaml``, else ``catalog.yaml``; or None."""
    path = Path(data)
    if not path.suffix or path.is_dir():
        return None
    for candidate in (path.with_name(f"{path.stem}.catalog.yaml"), path.with_name("catalog.yaml")):
        if candidate.is_file() and candidate.resolve() != path.resolve():
            return candidate
    return None


def catalog_for(data: str | Path | None = None, explicit: str | Path | None = None,
                base: Catalog | None = None) -> Catalog:
    """The catalog for a ``--data`` spec: ``base`` (default: the active one), plus ``explicit``
    (``--catalog``), plus the file found beside ``data``."""
    cat = base if base is not None else catalog.active()
    if explicit is not None:
        cat = load_catalog(explicit, cat)
    if data is not None and data not in ("embedded", "online", "store"):
        found = catalog_beside(data)
        if found is not None and (explicit is None or Path(found).resolve() != Path(explicit).resolve()):
            cat = load_catalog(found, cat)
    return cat


def load_catalog(path: str | Path, base: Catalog | None = None) -> Catalog:
    """``base`` (default: the built-in catalog) extended with the series declared in ``path``."""
    path = Path(path)
    where = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"--catalog {where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"--catalog {where}: cannot read it ({exc})") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{where}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("series"), dict) or not doc["series"]:
        raise CatalogError(f"{where}: expected a 'series:' mapping of series name -> entry (see docs/DATA.md)")
    unknown = set(doc) - {"series"}
    if unknown:
        raise CatalogError(f"{where}: unknown key {sorted(unknown)[0]!r} (a catalog file has only 'series:')")
    base = base if base is not None else catalog.BUILTIN
    specs = {}
    for name, entry in doc["series"].items():
        specs[str(name)] = parse_entry(str(name), entry, where)
    return base.extended(specs, where)


def parse_entry(name: str, entry, where: str) -> SeriesSpec:
    """One series entry of a catalog file (see module doc) as a ``SeriesSpec``."""
    at = f"{where}: series {name!r}"
    if not name or not name.replace("_", "").isalnum() or name != name.upper():
        raise CatalogError(f"{at}: a series name is upper-case letters, digits and '_' (e.g. MY_SERIES)")
    if not isinstance(entry, dict):
        raise CatalogError(f"{at}: expected a mapping with {', '.join(_REQUIRED)} (and optionally release, ...)")
    unknown = set(entry) - _SERIES_KEYS
    if unknown:
        raise CatalogError(f"{at}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(_SERIES_KEYS))})")
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        raise CatalogError(f"{at}: missing key {missing[0]!r}")
    freq = _choice(entry["frequency"], FREQUENCIES, f"{at}: frequency")
    transform = _choice(entry["transform"], TRANSFORMS, f"{at}: transform")
    group = _choice(entry.get("group", "market" if freq == "D" else "macro"), ("market", "macro"), f"{at}: group")
    if "release" not in entry and freq not in _DEFAULT_RULE:
        raise CatalogError(f"{at}: a {freq} series needs 'release:' (when each period's value is published)")
    calendar = entry.get("calendar", "XNYS")
    if not isinstance(calendar, str) or not calendar:
        raise CatalogError(f"{at}: calendar must be an exchange code such as XNYS")
    if calendar != "XNYS":
        _check_calendar(calendar, f"{at}: calendar")
    release = parse_release(entry.get("release", _DEFAULT_RULE.get(freq)), freq, f"{at}: release", calendar)
    flags = {k: _flag(entry.get(k, False), f"{at}: {k}") for k in ("positive", "stationary", "revised")}
    for key in ("description", "unit", "notes"):
        if key in entry and not isinstance(entry[key], str):
            raise CatalogError(f"{at}: {key} must be text")
    return SeriesSpec(name, entry["description"], entry["unit"], freq, release, transform, group,
                      notes=entry.get("notes", ""), calendar=calendar, user=where, **flags)


def parse_release(value, frequency: str, at: str, calendar: str = "XNYS") -> ReleaseRule:
    """A ``release:`` value (``same_day`` or ``{kind: ..., ...}``) as a ``ReleaseRule`` (business days on ``calendar``)."""
    if value == "same_day":
        return ReleaseRule("same_day", frequency=frequency, calendar=calendar)
    if not isinstance(value, dict) or "kind" not in value:
        raise CatalogError(f"{at}: write same_day or a mapping with 'kind' (one of {', '.join(KINDS)})")
    kind = _choice(value["kind"], KINDS, f"{at}: kind")
    allowed = _RULE_KEYS[kind] | {"kind", "overrides"}
    unknown = set(value) - allowed
    if unknown:
        raise CatalogError(f"{at}: unknown key {sorted(unknown)[0]!r} for kind {kind} (allowed: {', '.join(sorted(allowed))})")
    params: dict = {"frequency": frequency, "calendar": calendar}
    for key in ("days", "day", "n", "min_day", "months_after"):
        if key in value:
            v = value[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or (key in ("day", "n", "min_day") and v < 1):
                raise CatalogError(f"{at}: {key} must be a whole number{' >= 1' if key in ('day', 'n', 'min_day') else ' >= 0'}, got {v!r}")
            params[key] = v
    if "day" in params and params["day"] > 28:
        raise CatalogError(f"{at}: day {params['day']} does not exist in every month; use at most 28")
    if "weekday" in value:
        params["weekday"] = _weekday(value["weekday"], f"{at}: weekday")
    if kind == "dates":
        dates = value["dates"]
        if not isinstance(dates, list) or not dates:
            raise CatalogError(f"{at}: dates must be a non-empty list of YYYY-MM-DD dates")
        params["dates"] = tuple(sorted(_iso(d, f"{at}: dates") for d in dates))
    overrides = value.get("overrides", {})
    if not isinstance(overrides, dict):
        raise CatalogError(f"{at}: overrides must map YYYY-MM (the period) to YYYY-MM-DD (its real release)")
    params["overrides"] = {_period(k, f"{at}: overrides"): _iso(v, f"{at}: overrides") for k, v in overrides.items()}
    return ReleaseRule(kind, **params)


def to_yaml(specs) -> str:
    """A catalog file declaring ``specs`` (``SeriesSpec``s), which ``load_catalog`` reads back to equal specs
    (except ``user``, the file they are then read from). For a panel export or a run folder."""
    doc = {}
    for spec in specs:
        rule = spec.release
        if rule.kind == "same_day" and not rule.overrides:
            release: object = "same_day"
        else:
            release = {"kind": rule.kind}
            for key in _RULE_KEYS[rule.kind]:
                value = getattr(rule, key)
                release[key] = list(value) if key == "dates" else value
            if rule.overrides:
                release["overrides"] = dict(rule.overrides)
        entry = {"description": spec.description, "unit": spec.unit, "frequency": spec.frequency,
                 "transform": spec.transform, "positive": spec.positive, "stationary": spec.stationary,
                 "group": spec.group, "calendar": spec.calendar, "revised": spec.revised, "release": release}
        if spec.notes:
            entry["notes"] = spec.notes
        doc[spec.name] = entry
    return yaml.safe_dump({"series": doc}, sort_keys=False, allow_unicode=True)


def snippet(names, frequency: str = "D") -> str:
    """The catalog YAML to add for undeclared columns ``names``, on one line (YAML flow style, so a
    one-line error can carry it; edit the values, see docs/DATA.md)."""
    entry = (f"{{description: ..., unit: ..., frequency: {frequency}, transform: log_return, positive: true, "
             "release: same_day}")
    return "series: {" + ", ".join(f"{n}: {entry}" for n in names) + "}"


def _check_calendar(name: str, at: str) -> None:
    from data_sources.calendar import business_days_after
    from data_sources.errors import DataError

    try:
        business_days_after("2020-01-01", 1, name)
    except DataError as exc:
        raise CatalogError(f"{at}: {exc}") from None


def _choice(value, allowed, at: str) -> str:
    if value not in allowed:
        raise CatalogError(f"{at} {value!r}: use one of {', '.join(allowed)}")
    return value


def _flag(value, at: str) -> bool:
    if not isinstance(value, bool):
        raise CatalogError(f"{at} must be true or false, got {value!r}")
    return value


def _weekday(value, at: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    if isinstance(value, str) and value.lower() in _WEEKDAYS:
        return _WEEKDAYS.index(value.lower())
    raise CatalogError(f"{at} {value!r}: a day name (Monday .. Sunday) or 0-6 (0 = Monday)")


def _iso(value, at: str) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()[:10]
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise CatalogError(f"{at}: {value!r} is not a date (YYYY-MM-DD)") from None


def _period(value, at: str) -> str:
    text = str(value)
    try:
        dt.date.fromisoformat(text + "-01")
    except ValueError:
        raise CatalogError(f"{at}: {value!r} is not a period (YYYY-MM)") from None
    return text
