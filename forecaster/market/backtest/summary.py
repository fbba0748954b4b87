"""Averages over origins, skill scores and their block-bootstrap confidence intervals.

Skill of the GPT over a baseline, for a negatively oriented score S (CRPS, energy,
Brier, RPS), on the origins where both were scored::

    skill = 1 - mean(S_gpt) / mean(S_baseline)

(0.10 = 10 % lower average score than the baseline). Forecasts from monthly
origins over 250 business days overlap, so their scores are serially correlated;
the confidence interval resamples origins in circular blocks
(``arch.bootstrap.CircularBlockBootstrap``) whose length is the number of origins
a forecast of that horizon overlaps (``ceil(h / spacing)``, at least 1). The
percentile interval is reported at ``CI_LEVEL``. With few origins per block (48
monthly origins, 12-origin blocks at 250 days) the intervals are wide: that is
the honest answer of four years of data.

Calibration (``pit_table``, ``coverage_table``, ``calibration_markdown``), per model,
series and horizon:

- PIT histograms in ``PIT_BINS`` equal bins with the band a calibrated forecast's
  bins fall in with probability ``CI_LEVEL`` each (binomial quantiles of ``n`` draws
  with probability ``1/bins``), a chi-square test of uniformity and a
  Kolmogorov-Smirnov test. Origins closer than the horizon overlap, so their PITs are
  correlated and the tests' nominal p-values overstate the evidence; ``p_chi2_adj``
  divides the statistic by the block length (the variance inflation of the bin
  counts when ``block`` consecutive origins share most of their path), which is the
  p-value the markdown shows.
- Interval coverage (50/80/90 %) with its ``CI_LEVEL`` interval from the same
  circular block bootstrap over origins as the skill.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from arch.bootstrap import CircularBlockBootstrap
from scipy import stats

from foundation.atomic import atomic_path, write_text

CI_LEVEL = 0.90
REPS = 999
SCORE_OF_KIND = {"series": "crps", "energy": "es", "regime": "rps"}
PIT_BINS = 10
CALIBRATION_HORIZONS = (21, 63, 250)


def origin_spacing(origins) -> float:
    """Median business days between consecutive origins (1 for a single origin)."""
    o = pd.DatetimeIndex(sorted(set(pd.to_datetime(origins))))
    if len(o) < 2:
        return 1.0
    gaps = np.busday_count(o[:-1].values.astype("datetime64[D]"), o[1:].values.astype("datetime64[D]"))
    return float(max(1, np.median(gaps)))


def block_length(horizon: int, spacing: float, n: int) -> int:
    """Origins per bootstrap block for forecasts ``horizon`` days long made every ``spacing`` days."""
    return int(max(1, min(n, math.ceil(horizon / spacing))))


@functools.lru_cache(maxsize=64)
def bootstrap_indices(n: int, block: int, seed: int = 0) -> np.ndarray:
    """(REPS, n) circular-block resamples of ``n`` origins (``arch``'s draws; they depend on ``n``, ``block``, ``seed`` only,
    so every table of one backtest reuses them). Read-only."""
    bs = CircularBlockBootstrap(max(1, block), np.zeros(n), seed=np.random.default_rng(seed))
    idx = np.stack([bs.update_indices() for _ in range(REPS)])
    idx.setflags(write=False)
    return idx


def skill_ci(model: np.ndarray, base: np.ndarray, block: int, seed: int = 0) -> tuple[float, float, float]:
    """(skill, low, high): ``1 - mean(model)/mean(base)`` and its circular-block-bootstrap percentile interval."""
    ok = np.isfinite(model) & np.isfinite(base)
    a, b = model[ok], base[ok]
    if len(a) == 0 or b.mean() <= 0:
        return np.nan, np.nan, np.nan
    skill = 1.0 - a.mean() / b.mean()
    if len(a) < 3:
        return skill, np.nan, np.nan

    # arch draws the circular-block resamples; the ratio of means is evaluated for all of them at once
    # (the same numbers as ``bs.conf_int(..., method="percentile")``, without a Python call per draw)
    idx = bootstrap_indices(len(a), block, seed)  # (reps, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = 1.0 - a[idx].mean(axis=1) / b[idx].mean(axis=1)
    draws = draws[np.isfinite(draws)]
    tail = 100 * (1 - CI_LEVEL) / 2
    ci = np.percentile(draws, [tail, 100 - tail]).reshape(2, 1)
    return float(skill), float(ci[0, 0]), float(ci[1, 0])


def score_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model, series and horizon: origins scored, mean CRPS, coverage 50/80/90, PIT mean/sd, median bias."""
    s = scores[scores["kind"] == "series"].copy()
    s["bias"] = s["median"] - s["obs"]
    s = s[np.isfinite(s["crps"])]
    g = s.groupby(["name", "horizon", "model"], sort=False)
    out = g.agg(n=("crps", "size"), crps=("crps", "mean"), cov50=("cov50", "mean"), cov80=("cov80", "mean"),
                cov90=("cov90", "mean"), pit_mean=("pit", "mean"), pit_sd=("pit", "std"), bias=("bias", "mean"))
    return out.reset_index().rename(columns={"name": "series"}).sort_values(["series", "horizon", "model"], kind="stable")


def regime_score_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model, regime set and horizon: mean Brier score, RPS and probability given to what happened."""
    if "rps" not in scores.columns:  # no regime series (VIX, core CPI YoY) among the scored ones
        return pd.DataFrame(columns=["regime", "horizon", "model", "n", "brier", "rps", "p_obs"])
    s = scores[(scores["kind"] == "regime") & np.isfinite(scores["rps"])]
    out = s.groupby(["name", "horizon", "model"], sort=False).agg(
        n=("rps", "size"), brier=("brier", "mean"), rps=("rps", "mean"), p_obs=("p_obs", "mean"))
    return out.reset_index().rename(columns={"name": "regime"}).sort_values(["regime", "horizon", "model"], kind="stable")


def energy_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per series group, horizon and model: mean energy score (standardized changes)."""
    if "es" not in scores.columns:  # one series: no group to score jointly
        return pd.DataFrame(columns=["group", "horizon", "model", "n", "es"])
    s = scores[(scores["kind"] == "energy") & np.isfinite(scores["es"])]
    out = s.groupby(["name", "horizon", "model"], sort=False).agg(n=("es", "size"), es=("es", "mean"))
    return out.reset_index().rename(columns={"name": "group"}).sort_values(["group", "horizon", "model"], kind="stable")


def skill_table(scores: pd.DataFrame, ref: str = "gpt", seed: int = 0) -> pd.DataFrame:
    """Skill of ``ref`` over every other model, per kind, name and horizon, with bootstrap intervals.

    Columns: kind, name, horizon, baseline, n (origins both scored), score_ref,
    score_base, skill, low, high, best (the baseline with the lowest mean score on
    those origins among the ones scored for this name and horizon).
    """
    spacing = origin_spacing(scores["origin"])
    rows = []
    for kind, col in SCORE_OF_KIND.items():
        s = scores[scores["kind"] == kind]
        if s.empty:
            continue
        for (name, h), grp in s.groupby(["name", "horizon"], sort=True):
            wide = grp.pivot_table(index="origin", columns="model", values=col, aggfunc="first")
            if ref not in wide.columns:
                continue
            block = block_length(int(h), spacing, len(wide))
            cand = []
            for base in [m for m in wide.columns if m != ref]:
                a, b = wide[ref].to_numpy(), wide[base].to_numpy()
                skill, lo, hi = skill_ci(a, b, block, seed)
                ok = np.isfinite(a) & np.isfinite(b)
                cand.append({"kind": kind, "name": name, "horizon": int(h), "baseline": base, "n": int(ok.sum()),
                             "score_ref": float(a[ok].mean()) if ok.any() else np.nan,
                             "score_base": float(b[ok].mean()) if ok.any() else np.nan,
                             "skill": skill, "low": lo, "high": hi, "block": block})
            if cand:
                best = min(cand, key=lambda r: (np.inf if np.isnan(r["score_base"]) else r["score_base"]))["baseline"]
                for r in cand:
                    r["best"] = r["baseline"] == best
                rows += cand
    return pd.DataFrame(rows)


def mean_ci(x: np.ndarray, block: int, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of ``x`` (NaN left out) with the circular-block-bootstrap percentile interval at ``CI_LEVEL``."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    if len(x) < 3:
        return float(x.mean()), np.nan, np.nan
    idx = bootstrap_indices(len(x), block, seed)  # (reps, n)
    tail = 100 * (1 - CI_LEVEL) / 2
    lo, hi = np.percentile(x[idx].mean(axis=1), [tail, 100 - tail])
    return float(x.mean()), float(lo), float(hi)


def pit_band(n: int, bins: int = PIT_BINS, level: float = CI_LEVEL) -> tuple[float, float]:
    """(low, high) density (1 = uniform) that one bin of a calibrated forecast's PIT histogram of ``n`` values stays in
    with probability ``level`` (binomial quantiles of ``n`` draws with probability ``1 / bins``)."""
    if n <= 0:
        return np.nan, np.nan
    tail = (1 - level) / 2
    lo, hi = stats.binom.ppf([tail, 1 - tail], n, 1.0 / bins)
    return float(lo * bins / n), float(hi * bins / n)


def pit_histogram(pit: np.ndarray, bins: int = PIT_BINS, block: int = 1) -> dict:
    """Histogram and uniformity tests of PIT values in [0, 1] (NaN left out).

    Returns ``n``, ``density`` ((bins,), 1 = uniform), ``chi2`` and ``p_chi2`` (Pearson's test
    of equal bin counts), ``p_chi2_adj`` (the statistic divided by ``block``, for overlapping
    forecasts), ``ks`` and ``p_ks`` (Kolmogorov-Smirnov against the uniform), ``band_lo``,
    ``band_hi`` (``pit_band``) and ``outside`` (bins whose density is outside the band).
    """
    p = np.asarray(pit, dtype=np.float64)
    p = p[np.isfinite(p)]
    n = len(p)
    out = {"n": n, "density": np.full(bins, np.nan), "chi2": np.nan, "p_chi2": np.nan, "p_chi2_adj": np.nan,
           "ks": np.nan, "p_ks": np.nan, "band_lo": np.nan, "band_hi": np.nan, "outside": np.nan}
    if n < 2:
        return out
    counts, _ = np.histogram(p, np.linspace(0.0, 1.0, bins + 1))
    expected = n / bins
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    ks = stats.kstest(p, "uniform")
    lo, hi = pit_band(n, bins)
    density = counts * bins / n
    out.update(density=density, chi2=chi2, p_chi2=float(stats.chi2.sf(chi2, bins - 1)),
               p_chi2_adj=float(stats.chi2.sf(chi2 / max(1, block), bins - 1)), ks=float(ks.statistic),
               p_ks=float(ks.pvalue), band_lo=lo, band_hi=hi, outside=int(((density < lo) | (density > hi)).sum()))
    return out


def _series_cells(scores: pd.DataFrame):
    """Each (series, horizon, model) of the series scores, sorted: ``(name, horizon, model, rows by origin,
    block length)``, the block length that of the bootstrap and the overlap adjustment (``block_length``)."""
    s = scores[scores["kind"] == "series"]
    if s.empty:
        return
    spacing = origin_spacing(s["origin"])
    for (name, h, model), grp in s.groupby(["name", "horizon", "model"], sort=True):
        yield name, int(h), model, grp.sort_values("origin"), block_length(int(h), spacing, grp["origin"].nunique())


def pit_table(scores: pd.DataFrame, bins: int = PIT_BINS) -> pd.DataFrame:
    """Per model, series and horizon: the PIT histogram (columns ``b01..`` densities) and its tests (``pit_histogram``)."""
    rows = []
    for name, h, model, grp, block in _series_cells(scores):
        r = pit_histogram(grp["pit"].to_numpy(dtype=np.float64), bins, block)
        density = r.pop("density")
        rows.append({"series": name, "horizon": h, "model": model, "block": block, **r,
                     **{f"b{k + 1:02d}": density[k] for k in range(bins)}})
    return pd.DataFrame(rows)


def coverage_table(scores: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per model, series and horizon: coverage of the 50/80/90 % intervals with ``CI_LEVEL`` block-bootstrap intervals.

    Columns: series, horizon, model, n, block, and for each level ``covLL``, ``covLL_low``, ``covLL_high``.
    """
    rows = []
    for name, h, model, grp, block in _series_cells(scores):
        row = {"series": name, "horizon": h, "model": model, "block": block,
               "n": int(np.isfinite(grp["cov80"]).sum())}
        for lv in (50, 80, 90):
            m, lo, hi = mean_ci(grp[f"cov{lv}"].to_numpy(dtype=np.float64), block, seed)
            row.update({f"cov{lv}": m, f"cov{lv}_low": lo, f"cov{lv}_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


KEY_SERIES = ("SPX", "VIX", "CORE_CPI_YOY", "UST10Y")


def _fmt(x, pct=False, digits=3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{100 * x:.0f}%" if pct else f"{x:.{digits}g}"


def _pct(x) -> str:
    return f"{x:+.0%}" if np.isfinite(x) else "–"


def markdown_summary(scores: pd.DataFrame, key_series=KEY_SERIES, horizons=(21, 63, 250), ref: str = "gpt",
                     skills: pd.DataFrame | None = None) -> str:
    """The README table: CRPS and 80 % coverage per key series and model; skill over the best baseline (90 % CI)."""
    table = score_table(scores)
    skills = skill_table(scores, ref=ref) if skills is None else skills
    models = list(dict.fromkeys(m for m in [ref, "random_walk", "garch", "var", "climatology", "har", "atkeson_ohanian"] if m in set(table["model"])))
    models += sorted(set(table["model"]) - set(models))
    lines = []
    hz = [h for h in horizons if h in set(table["horizon"])]
    head = "| series | h | " + " | ".join(f"{m} CRPS (cov80)" for m in models) + " | skill vs best baseline [90% CI] |"
    lines += [head, "|" + "---|" * (3 + len(models))]
    for s in [k for k in key_series if k in set(table["series"])]:
        for h in hz:
            t = table[(table["series"] == s) & (table["horizon"] == h)].set_index("model")
            cells = [f"{_fmt(t.loc[m, 'crps'])} ({_fmt(t.loc[m, 'cov80'], pct=True)})" if m in t.index else "–"
                     for m in models]
            sk = skills[(skills["kind"] == "series") & (skills["name"] == s) & (skills["horizon"] == h) & skills["best"]] \
                if len(skills) else skills
            best = (f"{_pct(sk.iloc[0]['skill'])} [{_pct(sk.iloc[0]['low'])}, {_pct(sk.iloc[0]['high'])}] "
                    f"vs {sk.iloc[0]['baseline']}" if len(sk) else "–")
            lines.append(f"| {s} | {h} | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines) + "\n"


def skill_markdown(scores: pd.DataFrame, key_series=KEY_SERIES, horizons=(21, 63, 250), ref: str = "gpt",
                   skills: pd.DataFrame | None = None) -> str:
    """GPT CRPS skill over every baseline (point and 90 % CI) for the key series, plus regime RPS skill."""
    skills = skill_table(scores, ref=ref) if skills is None else skills
    if skills.empty:
        return ""
    lines = ["| series / regime | h | baseline | n | skill | 90% CI |", "|---|---|---|---|---|---|"]
    keep = skills[((skills["kind"] == "series") & skills["name"].isin(key_series)) | (skills["kind"] == "regime")]
    keep = keep[keep["horizon"].isin(horizons)]
    for r in keep.itertuples():
        lines.append(f"| {r.name}{' (RPS)' if r.kind == 'regime' else ''} | {r.horizon} | {r.baseline} | {r.n} | "
                     f"{_pct(r.skill)} | [{_pct(r.low)}, {_pct(r.high)}] |")
    return "\n".join(lines) + "\n"


def _models_in(models, ref: str) -> list[str]:
    order = [ref, "oracle", "random_walk", "garch", "var", "climatology", "har", "atkeson_ohanian"]
    present = set(models)
    return [m for m in order if m in present] + sorted(present - set(order))


def _horizons_in(present, horizons) -> list[int]:
    """The wanted ``horizons`` that were scored; all scored horizons if none of them was (a short backtest)."""
    present = sorted(set(int(h) for h in present))
    return [h for h in horizons if h in present] or present


def calibration_markdown(scores: pd.DataFrame, key_series=KEY_SERIES, horizons=CALIBRATION_HORIZONS, ref: str = "gpt",
                         coverage: pd.DataFrame | None = None, pits: pd.DataFrame | None = None) -> str:
    """Per key series, horizon and model: 50 % and 80 % coverage (80 % with its 90 % CI), the PIT test, bins outside the band."""
    coverage = coverage_table(scores) if coverage is None else coverage
    pits = pit_table(scores) if pits is None else pits
    if coverage.empty:
        return ""
    lines = ["| series | h | model | n | 50% cov | 80% cov [90% CI] | PIT chi2 p (overlap-adj.) | PIT KS p | "
             f"PIT bins outside the {CI_LEVEL:.0%} band (of {PIT_BINS}) |", "|---|---|---|---|---|---|---|---|---|"]
    c = coverage.set_index(["series", "horizon", "model"])
    p = pits.set_index(["series", "horizon", "model"]) if len(pits) else None
    hz = _horizons_in(coverage["horizon"], horizons)
    for s in [k for k in key_series if k in set(coverage["series"])]:
        for h in hz:
            for m in _models_in(coverage[(coverage["series"] == s) & (coverage["horizon"] == h)]["model"], ref):
                r = c.loc[(s, h, m)]
                q = p.loc[(s, h, m)] if p is not None and (s, h, m) in p.index else None
                pit_cells = (f"{q['p_chi2_adj']:.2g} | {q['p_ks']:.2g} | {_fmt(q['outside'], digits=2)}"
                             if q is not None and np.isfinite(q["chi2"]) else "– | – | –")
                lines.append(f"| {s} | {h} | {m} | {int(r['n'])} | {_fmt(r['cov50'], pct=True)} | "
                             f"{_fmt(r['cov80'], pct=True)} [{_fmt(r['cov80_low'], pct=True)}, {_fmt(r['cov80_high'], pct=True)}] | "
                             + pit_cells + " |")
    return "\n".join(lines) + "\n"


def regime_markdown(scores: pd.DataFrame, horizons=CALIBRATION_HORIZONS, ref: str = "gpt",
                    table: pd.DataFrame | None = None) -> str:
    """Per regime set and horizon: every model's mean Brier score and RPS against the realised regime (lower is better)."""
    table = regime_score_table(scores) if table is None else table
    if table.empty:
        return ""
    models = _models_in(table["model"], ref)
    lines = ["| regime | h | " + " | ".join(f"{m} Brier / RPS" for m in models) + " |", "|" + "---|" * (2 + len(models))]
    hz = _horizons_in(table["horizon"], horizons)
    for (regime, h), grp in table.groupby(["regime", "horizon"], sort=True):
        if h not in hz:
            continue
        g = grp.set_index("model")
        cells = [f"{g.loc[m, 'brier']:.3f} / {g.loc[m, 'rps']:.3f}" if m in g.index else "–" for m in models]
        lines.append(f"| {regime} | {h} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(out, scores: pd.DataFrame, ref: str = "gpt") -> dict[str, pd.DataFrame]:
    """Write ``summary.csv`` (scores), ``skill.csv``, ``regimes.csv``, ``energy.csv``, ``coverage.csv``, ``pit.csv`` and
    ``summary.md`` into ``out``."""
    out = Path(out)
    tables = {"summary": score_table(scores), "skill": skill_table(scores, ref=ref),
              "regimes": regime_score_table(scores), "energy": energy_table(scores),
              "coverage": coverage_table(scores), "pit": pit_table(scores)}
    for name, t in tables.items():
        with atomic_path(out / f"{name}.csv") as tmp:
            t.to_csv(tmp, index=False, float_format="%.6g")
    text = "## CRPS (80% coverage) per key series\n\n" + markdown_summary(scores, ref=ref, skills=tables["skill"])
    text += "\n## GPT skill over each baseline\n\n" + skill_markdown(scores, ref=ref, skills=tables["skill"])
    text += ("\n## Calibration: interval coverage and PIT by horizon\n\n"
             + calibration_markdown(scores, ref=ref, coverage=tables["coverage"], pits=tables["pit"]))
    regimes = regime_markdown(scores, ref=ref, table=tables["regimes"])
    if regimes:
        text += "\n## Regimes: Brier score and RPS against the realised regime\n\n" + regimes
    errors = scores.attrs.get("errors", {})
    if errors:
        text += f"\n{len(errors)} origin(s) had a model fail; it is left out of that model's scores there.\n"
    write_text(out / "summary.md", text)
    return tables
