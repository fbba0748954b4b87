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
"""
from __future__ import annotations

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
    positive: bool = False  # a level that cannot be zero or negative (VIX, unemployment)
    stationary: bool = False  # a mean-reverting level: baselines model it in levels (climatology, the VAR)

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


CATALOG: dict[str, SeriesSpec] = {
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
        SeriesSpec("CPI", "CPI-U all items, seasonally adjusted", "1982-84=100", "M", _CPI, "log_return", "macro", fred="CPIAUCSL"),
        SeriesSpec("CORE_CPI", "CPI-U less food and energy, SA", "1982-84=100", "M", _CPI, "log_return", "macro", fred="CPILFESL"),
        SeriesSpec("CPI_YOY", "CPI-U, year-over-year change", "%", "M", _CPI, "diff", "macro", derived_from=("CPI",), stationary=True),
        SeriesSpec(
            "CORE_CPI_YOY", "Core CPI, year-over-year change", "%", "M", _CPI, "diff", "macro", derived_from=("CORE_CPI",), stationary=True
        ),
        SeriesSpec("UNRATE", "Civilian unemployment rate, SA", "%", "M", _JOBS, "diff", "macro", fred="UNRATE", positive=True, stationary=True),
        SeriesSpec("M2", "M2 money stock, SA", "$bn", "M", _H6, "log_return", "macro", fred="M2SL"),
        SeriesSpec("GDP", "Real GDP, chained 2017 dollars, SAAR", "$bn", "Q", _GDP, "log_return", "macro", fred="GDPC1"),
        SeriesSpec(
            "FED_BS", "Federal Reserve total assets (H.4.1, Wednesday level)", "$mn", "W", _H41, "log_return", "macro", fred="WALCL"
        ),
    ]
}

# The reference panel: what `build_panel` returns by default, in this order.
REFERENCE_SERIES: tuple[str, ...] = (
    "SPX", "VIX", "UST3M", "UST2Y", "UST5Y", "UST10Y", "WTI", "GSCI", "BAA_SPREAD",
    "XLK", "XLF", "XLI", "XLP", "XLRE", "XLU",
    "CPI_YOY", "CORE_CPI_YOY", "UNRATE", "M2", "GDP", "FED_BS",
)  # fmt: skip


def get(name: str) -> SeriesSpec:
    """The catalog entry for ``name``; a ``CatalogError`` naming the known series otherwise."""
    try:
        return CATALOG[name]
    except KeyError:
        raise CatalogError(
            f"unknown series {name!r}: not in the catalog (known: {', '.join(sorted(CATALOG))})"
        ) from None


def raw_inputs(names: list[str] | tuple[str, ...]) -> list[str]:
    """The non-derived series needed to build ``names`` (derived ones expanded), in order."""
    out: list[str] = []
    for name in names:
        spec = get(name)
        for raw in (spec.derived_from if spec.is_derived else (name,)):
            if raw not in out:
                out.append(raw)
    return out
