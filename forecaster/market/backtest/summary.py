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
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from arch.bootstrap import CircularBlockBootstrap

from foundation.atomic import atomic_path, write_text

CI_LEVEL = 0.90
REPS = 999
SCORE_OF_KIND = {"series": "crps", "energy": "es", "regime": "rps"}


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
    bs = CircularBlockBootstrap(block, a, b, seed=np.random.default_rng(seed))
    idx = np.stack([bs.update_indices() for _ in range(REPS)])  # (reps, n)
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
    s = scores[(scores["kind"] == "regime") & np.isfinite(scores["rps"])]
    out = s.groupby(["name", "horizon", "model"], sort=False).agg(
        n=("rps", "size"), brier=("brier", "mean"), rps=("rps", "mean"), p_obs=("p_obs", "mean"))
    return out.reset_index().rename(columns={"name": "regime"}).sort_values(["regime", "horizon", "model"], kind="stable")


def energy_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per series group, horizon and model: mean energy score (standardized changes)."""
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


def write_summary(out, scores: pd.DataFrame, ref: str = "gpt") -> dict[str, pd.DataFrame]:
    """Write ``summary.csv`` (scores), ``skill.csv``, ``regimes.csv``, ``energy.csv`` and ``summary.md`` into ``out``."""
    out = Path(out)
    tables = {"summary": score_table(scores), "skill": skill_table(scores, ref=ref),
              "regimes": regime_score_table(scores), "energy": energy_table(scores)}
    for name, t in tables.items():
        with atomic_path(out / f"{name}.csv") as tmp:
            t.to_csv(tmp, index=False, float_format="%.6g")
    text = "## CRPS (80% coverage) per key series\n\n" + markdown_summary(scores, ref=ref, skills=tables["skill"])
    text += "\n## GPT skill over each baseline\n\n" + skill_markdown(scores, ref=ref, skills=tables["skill"])
    errors = scores.attrs.get("errors", {})
    if errors:
        text += f"\n{len(errors)} origin(s) had a model fail; it is left out of that model's scores there.\n"
    write_text(out / "summary.md", text)
    return tables
