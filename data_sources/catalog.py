"""The series catalog: one declarative entry per series.

Each entry says what the series is (description, unit), how often it is observed
(native frequency), when a value for period P becomes public (the publication
rule, see ``publication``), how the model sees it (the modeling transform), and
where it comes from (a FRED id, a Stooq symbol, the CBOE file, the embedded
package data). Derived series (YoY inflation, the spliced commodity index) are
entries too, computed from their inputs point-in-time by ``panel``.

Modeling transforms (applied by the forecaster, inverted when paths are decoded):

- ``log_return``: 100 * log(x_t / x_{t-1}), in percent, for prices and stocks
  (index levels, ETFs, oil, M2, GDP, the Fed balance sheet).
- ``diff``: x_t - x_{t-1}, in the series' unit, for yields and spreads
  (percentage points).
- ``level``: the value itself, for VIX, inflation rates and unemployment, which
  are bounded and mean-reverting.

Series a user declares (``data_sources.user_catalog``: a YAML file given with
``--catalog`` or found beside the data file) extend the built-in entries in a
``Catalog`` object. The data layer carries that object (a source's ``catalog``,
the ``PanelBuilder``'s); the market code looks series up with ``get(name)``,
which answers from the catalog made active with ``using(cat)`` (a context
variable, restored on exit: nothing for a test to reset), else the built-in one.
``CATALOG`` is a read-only view of the active catalog.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from data_sources.errors import CatalogError
from data_sources.publication import ReleaseRule

FREQUENCIES = ("D", "W", "M", "Q")
TRANSFORMS = ("log_return", "diff", "level")


@dataclass(frozen=True)
class SeriesSpec:
    """One series of the panel.

    Attributes
    ----------
    name : panel column name (upper case, e.g. ``"UST10Y"``).
    description, unit : for people (tables, axis labels).
    frequency : native observation frequency, one of ``D W M Q``.
    release : when the value for a period becomes public (``ReleaseRule``).
    transform : modeling transform, one of ``log_return diff level``. Slow macro levels
        (inflation YoY, unemployment) are modeled as ``diff``: the daily panel carries
        each release forward, so the change is zero on all days but release days, which
        a model learns at once, while a level would have to be copied token for token
        every day, and a single mis-copy makes a path jump and jump back.
        VIX is modeled as its log change for the same reason (as a level, measured, its
        paths jittered: daily change std 5.5 points against 1.5 in history); its level is
        among the day-level model's inputs, so mean reversion can be learned from it.
    group : ``market`` or ``macro`` (how the panel and the dashboard group it).
    fred, stooq, cboe : identifiers at the online sources, where it has one.
    derived_from : input series of a derived series (computed in ``panel``).
    """

    name: str
    description: str
    unit: str
    frequency: str
    release: ReleaseRule
    transform: str
    group: str
    fred: str | None = None
    stooq: str | None = None
    cboe: bool = False
    derived_from: tuple[str, ...] = ()
    notes: str = ""
    positive: bool = False  # a level that cannot be zero or negative (VIX, unemployment): its codec is log
    stationary: bool = False  # a mean-reverting level: baselines model it in levels (climatology, the VAR)
    calendar: str = "XNYS"  # the exchange calendar of its business days
    revised: bool = False  # later estimates replace published values (GDP, payrolls): see ``vintages``
    user: str | None = None  # the catalog file that declared it (None: built in)

    def __post_init__(self) -> None:
        assert self.frequency in FREQUENCIES, f"{self.name}: frequency {self.frequency!r}"
        assert self.transform in TRANSFORMS, f"{self.name}: transform {self.transform!r}"
        assert self.group in ("market", "macro"), f"{self.name}: group {self.group!r}"

    @property
    def is_derived(self) -> bool:
        return bool(self.derived_from)


_CLOSE = ReleaseRule("same_day")
# CPI: BLS publishes month M's CPI around the 10th-15th of M+1. The 15th (rolled to
# the next business day) is never earlier than a real release in 1990-2025 except
# where an override below gives the real date; later-than-real costs a few days of
# freshness, earlier-than-real would be look-ahead.
_CPI = ReleaseRule(
    "monthly_day",
    day=15,
    overrides={
        "2025-09": "2025-10-24",  # delayed by the 2025 federal shutdown
        "2025-11": "2025-12-18",
    },
)
# Employment Situation: the first Friday of M+1 (the real rule moves it a week
# later when the first Friday falls on the 1st or 2nd; we take the later date in
# those months too, which is conservative).
_JOBS = ReleaseRule(
    "nth_weekday",
    n=1,
    weekday=4,
    min_day=3,
    overrides={"2025-09": "2025-11-20", "2025-11": "2025-12-16"},
)
# H.6 money stock: about four weeks after the month, on the fourth Tuesday of M+1.
_H6 = ReleaseRule("nth_weekday", n=4, weekday=1)
# GDP advance estimate: about 30 days after the quarter ends (late in month 1 of Q+1).
_GDP = ReleaseRule("quarter_end_plus", days=30, overrides={"2025-07": "2025-12-23"})
# H.4.1: the Wednesday level is published Thursday afternoon.
_H41 = ReleaseRule("days_after", days=1)


def _market(name, description, unit, transform, **kw) -> SeriesSpec:
    return SeriesSpec(name, description, unit, "D", _CLOSE, transform, "market", **kw)


BUILTIN_SPECS: dict[str, SeriesSpec] = {
    s.name: s
    for s in [
        _market("SPX", "S&P 500 index", "index points", "log_return", stooq="^spx", fred="SP500"),
        _market("VIX", "CBOE Volatility Index", "index points", "log_return", cboe=True, fred="VIXCLS", positive=True, stationary=True),
        _market("UST3M", "3-month Treasury constant maturity yield", "%", "diff", fred="DGS3MO"),
        _market("UST2Y", "2-year Treasury constant maturity yield", "%", "diff", fred="DGS2"),
        _market("UST5Y", "5-year Treasury constant maturity yield", "%", "diff", fred="DGS5"),
        _market("UST10Y", "10-year Treasury constant maturity yield", "%", "diff", fred="DGS10"),
        _market(
            "WTI",
            "WTI crude oil, Cushing spot",
            "$/bbl",
            "log_return",
            fred="DCOILWTICO",
            notes="Printed -36.98 on 2020-04-20; the panel keeps it, log returns treat non-positive prices as missing.",
        ),
        _market("SPGSCI", "S&P GSCI commodity index", "index points", "log_return", stooq="^spgsci"),
        _market("GSG", "iShares S&P GSCI Commodity-Indexed Trust (ETF)", "$", "log_return", stooq="gsg.us"),
        SeriesSpec(
            "GSCI",
            "Broad commodity index: S&P GSCI, extended with GSG returns after the index data ends",
            "index points",
            "D",
            _CLOSE,
            "log_return",
            "market",
            derived_from=("SPGSCI", "GSG"),
        ),
        _market("BAA_SPREAD", "Moody's Baa corporate yield minus 10-year Treasury", "%", "diff", fred="BAA10Y"),
        _market("XLK", "Technology Select Sector SPDR (IT sector)", "$", "log_return", stooq="xlk.us"),
        _market("XLF", "Financial Select Sector SPDR (Financials)", "$", "log_return", stooq="xlf.us"),
        _market("XLI", "Industrial Select Sector SPDR (Industrials)", "$", "log_return", stooq="xli.us"),
        _market("XLP", "Consumer Staples Select Sector SPDR", "$", "log_return", stooq="xlp.us"),
        _market("XLRE", "Real Estate Select Sector SPDR", "$", "log_return", stooq="xlre.us"),
        _market("XLU", "Utilities Select Sector SPDR", "$", "log_return", stooq="xlu.us"),
        SeriesSpec("CPI", "CPI-U all items, seasonally adjusted", "1982-84=100", "M", _CPI, "log_return", "macro", fred="CPIAUCSL", revised=True),
        SeriesSpec("CORE_CPI", "CPI-U less food and energy, SA", "1982-84=100", "M", _CPI, "log_return", "macro", fred="CPILFESL", revised=True),
        SeriesSpec("CPI_YOY", "CPI-U, year-over-year change", "%", "M", _CPI, "diff", "macro", derived_from=("CPI",), stationary=True, revised=True),
        SeriesSpec(
            "CORE_CPI_YOY", "Core CPI, year-over-year change", "%", "M", _CPI, "diff", "macro", derived_from=("CORE_CPI",), stationary=True,
            revised=True,
        ),
        SeriesSpec("UNRATE", "Civilian unemployment rate, SA", "%", "M", _JOBS, "diff", "macro", fred="UNRATE", positive=True, stationary=True,
                   revised=True),
        SeriesSpec("M2", "M2 money stock, SA", "$bn", "M", _H6, "log_return", "macro", fred="M2SL", revised=True),
        SeriesSpec("GDP", "Real GDP, chained 2017 dollars, SAAR", "$bn", "Q", _GDP, "log_return", "macro", fred="GDPC1", revised=True),
        SeriesSpec(
            "FED_BS", "Federal Reserve total assets (H.4.1, Wednesday level)", "$mn", "W", _H41, "log_return", "macro", fred="WALCL"
        ),
    ]
}

# Series of the reference Bloomberg export that the sources above do not carry (the Bloomberg
# source's ticker map, ``data_sources.sources.bloomberg``, names them).
_SECTOR = "S&P 500 {} sector index (Bloomberg {})"
_BLOOMBERG_ONLY = [
    _market("S5INFT", _SECTOR.format("Information Technology", "S5INFT"), "index points", "log_return"),
    _market("S5FINL", _SECTOR.format("Financials", "S5FINL"), "index points", "log_return"),
    _market("S5INDU", _SECTOR.format("Industrials", "S5INDU"), "index points", "log_return"),
    _market("S5CONS", _SECTOR.format("Consumer Staples", "S5CONS"), "index points", "log_return"),
    _market("S5RLST", _SECTOR.format("Real Estate", "S5RLST"), "index points", "log_return"),
    _market("S5UTIL", _SECTOR.format("Utilities", "S5UTIL"), "index points", "log_return"),
    _market("BCOM", "Bloomberg Commodity Index", "index points", "log_return"),
    _market("CDX_IG", "Markit CDX North America Investment Grade 5y spread (Bloomberg IBOXUMAE)", "bp", "diff"),
    # Bloomberg's monthly ratio of Fed assets (H.4.1) to nominal GDP; published with the month's
    # last H.4.1 and the latest GDP estimate: 10 business days after the month is a late bound.
    SeriesSpec("FED_BS_GDP", "Federal Reserve balance sheet, % of GDP (Bloomberg BSPGCPUS)", "% of GDP", "M",
               ReleaseRule("business_days_after_end", days=10), "log_return", "macro", revised=True),
]
BUILTIN_SPECS.update({s.name: s for s in _BLOOMBERG_ONLY})

# The reference panel: what `build_panel` returns by default, in this order.
REFERENCE_SERIES: tuple[str, ...] = (
    "SPX", "VIX", "UST3M", "UST2Y", "UST5Y", "UST10Y", "WTI", "GSCI", "BAA_SPREAD",
    "XLK", "XLF", "XLI", "XLP", "XLRE", "XLU",
    "CPI_YOY", "CORE_CPI_YOY", "UNRATE", "M2", "GDP", "FED_BS",
)  # fmt: skip


class Catalog(Mapping):
    """An immutable set of series entries: the built-in ones plus those of user catalog files.

    A ``Mapping`` of name -> ``SeriesSpec``; ``get`` raises a ``CatalogError`` naming the
    known series (and, for a user catalog, its file) instead of returning ``None``.
    """

    def __init__(self, specs: Mapping[str, SeriesSpec], files: tuple[str, ...] = ()) -> None:
        self._specs = dict(specs)
        self.files = tuple(files)  # the user catalog files merged in, in order

    def __getitem__(self, name: str) -> SeriesSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Catalog({len(self)} series{', files: ' + ', '.join(self.files) if self.files else ''})"

    def get(self, name: str, default=None) -> SeriesSpec:  # type: ignore[override]
        """The entry for ``name``; a ``CatalogError`` naming the known series otherwise."""
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            pass
        where = f" or in {', '.join(self.files)}" if self.files else ""
        raise CatalogError(
            f"unknown series {name!r}: not in the catalog{where} (known: {', '.join(sorted(self._specs))}); "
            "declare it in a catalog file (--catalog FILE, see docs/DATA.md)"
        )

    @property
    def user_series(self) -> list[str]:
        """Names declared by user catalog files (not built in)."""
        return [n for n, s in self._specs.items() if s.user is not None]

    def extended(self, specs: Mapping[str, SeriesSpec], file: str) -> "Catalog":
        """A new catalog with ``specs`` (declared in ``file``) added; a name may not be redefined differently
        (the same definition in two files, e.g. a run's copy and the original, is one series)."""
        same = lambda a, b: dataclasses.replace(a, user=None) == dataclasses.replace(b, user=None)  # noqa: E731
        clash = [n for n in specs if n in self._specs and (self._specs[n].user is None or not same(self._specs[n], specs[n]))]
        if clash:
            owner = self._specs[clash[0]].user or "the built-in catalog"
            raise CatalogError(f"{file}: series {clash[0]!r} is already defined by {owner}; choose another name")
        new = {n: s for n, s in specs.items() if n not in self._specs}
        return Catalog({**self._specs, **new}, self.files + ((file,) if file not in self.files else ()))

    def raw_inputs(self, names) -> list[str]:
        """The non-derived series needed to build ``names`` (derived ones expanded), in order."""
        out: list[str] = []
        for name in names:
            spec = self.get(name)
            for raw in (spec.derived_from if spec.is_derived else (name,)):
                if raw not in out:
                    out.append(raw)
        return out


BUILTIN = Catalog(BUILTIN_SPECS)
_ACTIVE: contextvars.ContextVar[Catalog] = contextvars.ContextVar("forecaster_catalog", default=BUILTIN)


def active() -> Catalog:
    """The catalog ``get`` answers from: the one of the innermost ``using``, else ``BUILTIN``."""
    return _ACTIVE.get()


@contextlib.contextmanager
def using(cat: Catalog | None) -> Iterator[Catalog]:
    """Make ``cat`` the active catalog inside the ``with`` block (``None``: keep the active one)."""
    if cat is None:
        yield active()
        return
    assert isinstance(cat, Catalog), f"using() takes a Catalog, got {type(cat).__name__}"
    token = _ACTIVE.set(cat)
    try:
        yield cat
    finally:
        _ACTIVE.reset(token)


class _ActiveView(Mapping):
    """``CATALOG``: the active catalog as a read-only mapping (built in, or in a ``using`` block, with user series)."""

    def __getitem__(self, name: str) -> SeriesSpec:
        return active()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(active())

    def __len__(self) -> int:
        return len(active())

    def __repr__(self) -> str:
        return f"CATALOG -> {active()!r}"


CATALOG: Mapping[str, SeriesSpec] = _ActiveView()


def get(name: str) -> SeriesSpec:
    """The active catalog's entry for ``name``; a ``CatalogError`` naming the known series otherwise."""
    return active().get(name)


def raw_inputs(names: list[str] | tuple[str, ...]) -> list[str]:
    """The non-derived series needed to build ``names`` (derived ones expanded), in order."""
    return active().raw_inputs(names)
