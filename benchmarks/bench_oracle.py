"""Known-truth benchmark: how far the GPT is from the best possible forecast of a market whose truth we know.

    python benchmarks/bench_oracle.py --out runs/oracle            # full: ~12 min training + backtests
    python benchmarks/bench_oracle.py --quick --out runs/oracle-quick   # smoke test, about a minute
    python benchmarks/bench_oracle.py --out runs/oracle --every 5B --horizon 5 --name dense  # more origins, same run

1. Simulates the two-regime market of ``forecaster/market/backtest/oracle.py`` (SPX,
   VIX, UST10Y on NYSE trading days 1990-2024, seed ``--seed``) and writes it as a
   wide panel file (``OUT/panel.csv``), the format ``--data`` reads.
2. Trains the README's preset on it (``forecaster train --preset day-small``, data up to
   2017-12-29), unless ``OUT/run`` already holds a run.
3. Backtests the GPT and the baselines with ``forecaster backtest`` (2018-2021, monthly
   origins, 100 paths, 250 days) into ``OUT/backtest``.
4. Scores the oracle (the exact Hamilton filter plus Monte Carlo of the true dynamics)
   through the same backtest loop and scorer (``Backtest``, ``score_origin``) on the same
   origins, seeds and horizons, into ``OUT/oracle``.
5. Prints mean CRPS / oracle CRPS per series and horizon for the GPT and every baseline
   (origins both scored), and writes it to ``OUT/oracle_ratios.csv`` and ``.md``. The
   target is a GPT ratio of at most 1.10 at every horizon up to 63 days.

Every step resumes: a rerun with the same ``--out`` skips what is done.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from forecaster.market.backtest.oracle import SERIES, OracleBacktest, RegimeProcess, trading_days  # noqa: E402
from forecaster.market.backtest import summary  # noqa: E402
from forecaster.market.backtest.runner import BacktestConfig, load_scores  # noqa: E402

TARGET = 1.10
FULL = dict(start="1990-01-02", end="2024-12-31", as_of="2017-12-29", preset="day-small", train=["--max-minutes", "12"],
            first="2018-01-31", last="2021-12-31", every="1M", paths=100, horizon=250,
            baselines="random_walk,garch,climatology,har")
QUICK = dict(start="2000-01-03", end="2009-12-31", as_of="2007-12-31", preset="day-tiny", train=["--max-steps", "10"],
             first="2008-01-31", last="2008-03-31", every="1M", paths=20, horizon=21, baselines="random_walk")


def write_panel(path: Path, process: RegimeProcess, start: str, end: str, seed: int) -> pd.DataFrame:
    """Simulate and write the wide panel CSV (date + SPX, VIX, UST10Y); returns the panel with a ``regime`` column."""
    panel, regimes = process.simulate(trading_days(start, end), seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    panel.to_csv(tmp, float_format="%.6f", index_label="date")
    os.replace(tmp, path)
    return panel.assign(regime=regimes)


def forecaster_cmd(*args: str) -> None:
    cmd = [sys.executable, "-m", "forecaster", *args]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


def ratio_table(scores: pd.DataFrame, oracle: pd.DataFrame, horizons) -> pd.DataFrame:
    """Per series, horizon and model: origins, mean CRPS, oracle mean CRPS on the same origins, their ratio with its 90 %
    circular-block-bootstrap interval over origins (``summary.skill_ci``), 80 % coverage."""
    s = scores[(scores["kind"] == "series") & scores["name"].isin(SERIES) & scores["horizon"].isin(horizons)]
    o = oracle[(oracle["kind"] == "series") & (oracle["model"] == "oracle")][["origin", "name", "horizon", "crps", "cov80"]]
    m = s.merge(o, on=["origin", "name", "horizon"], suffixes=("", "_oracle"))
    m = m[np.isfinite(m["crps"]) & np.isfinite(m["crps_oracle"])]
    spacing = summary.origin_spacing(m["origin"])
    rows = []
    for (name, h, model), grp in m.groupby(["name", "horizon", "model"], sort=True):
        grp = grp.sort_values("origin")
        block = summary.block_length(int(h), spacing, len(grp))
        skill, lo, hi = summary.skill_ci(grp["crps"].to_numpy(), grp["crps_oracle"].to_numpy(), block)
        # ratio = mean(model) / mean(oracle) = 1 - skill over the oracle; its interval from the same block bootstrap
        rows.append({"series": name, "horizon": int(h), "model": model, "n": len(grp), "crps": grp["crps"].mean(),
                     "crps_oracle": grp["crps_oracle"].mean(), "ratio": 1.0 - skill, "ratio_low": 1.0 - hi,
                     "ratio_high": 1.0 - lo, "cov80": grp["cov80"].mean(), "cov80_oracle": grp["cov80_oracle"].mean()})
    return pd.DataFrame(rows)


def ratio_markdown(t: pd.DataFrame) -> str:
    models = ["gpt"] + sorted(set(t["model"]) - {"gpt"})
    models = [m for m in models if m in set(t["model"])]
    lines = ["| series | h | oracle CRPS (cov80) | " + " | ".join(f"{m} / oracle [90% CI]" for m in models) + " |",
             "|" + "---|" * (3 + len(models))]
    for (s, h), u in t.groupby(["series", "horizon"], sort=True):
        u = u.set_index("model")
        first = u.iloc[0]
        cells = [f"{u.loc[m, 'ratio']:.2f} [{u.loc[m, 'ratio_low']:.2f}, {u.loc[m, 'ratio_high']:.2f}]" if m in u.index else "–"
                 for m in models]
        lines.append(f"| {s} | {h} | {first['crps_oracle']:.3g} ({100 * first['cov80_oracle']:.0f}%) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs/oracle")
    parser.add_argument("--quick", action="store_true", help="Smoke test: 10 years, day-tiny for 10 steps, 3 origins.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the simulated history.")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--skip-gpt", action="store_true", help="Baselines and oracle only (no training).")
    parser.add_argument("--every", help="Origin schedule instead of the preset's (e.g. 5B); with --name.")
    parser.add_argument("--horizon", type=int, help="Business days ahead instead of the preset's; with --name.")
    parser.add_argument("--name", default="", help="Suffix of the backtest, oracle and ratio outputs (another schedule "
                        "on the same trained run: OUT/backtest-NAME, OUT/oracle-NAME).")
    args = parser.parse_args()
    p = dict(QUICK if args.quick else FULL)
    if (args.every or args.horizon) and not args.name:
        parser.error("--every/--horizon need --name (the preset's backtest folder keeps the preset's settings)")
    p.update({k: v for k, v in (("every", args.every), ("horizon", args.horizon)) if v})
    suffix = f"-{args.name}" if args.name else ""
    out: Path = args.out
    process = RegimeProcess()

    panel_file = out / "panel.csv"
    if not panel_file.exists():
        panel = write_panel(panel_file, process, p["start"], p["end"], args.seed)
        stress = panel["regime"].mean()
        print(f"simulated {len(panel)} days {panel.index[0].date()} .. {panel.index[-1].date()} "
              f"({100 * stress:.0f} % in the stress regime) -> {panel_file}", flush=True)
    run_dir = out / "run"
    series = ",".join(SERIES)
    common = ["--data", str(panel_file), "--panel-start", p["start"]]
    if not args.skip_gpt and not (run_dir / "run.json").exists():
        forecaster_cmd("train", *common, "--as-of", p["as_of"], "--series", series, "--out", str(run_dir),
                       "--preset", p["preset"], *p["train"], "--threads", args.threads, "--no-progress")
    bt_args = ["--data", str(panel_file), "--series", series, "--first-origin", p["first"], "--last-origin", p["last"],
               "--every", p["every"], "--paths", str(p["paths"]), "--horizon", str(p["horizon"]),
               "--baselines", p["baselines"], "--threads", args.threads, "--no-progress"]
    bt_out = out / f"backtest{suffix}"
    forecaster_cmd("backtest", *([] if args.skip_gpt else ["--run", str(run_dir)]), *bt_args, "--out", str(bt_out))

    # the oracle through the same loop, origins, seeds and horizons as the backtest just run
    import json

    cfg = BacktestConfig.from_dict(json.loads((bt_out / "backtest.json").read_text())["config"])
    cfg.run, cfg.baselines = None, []
    t0 = time.perf_counter()
    OracleBacktest(cfg, out / f"oracle{suffix}", process).run()
    print(f"oracle: {time.perf_counter() - t0:.0f} s", flush=True)

    table = ratio_table(load_scores(bt_out), load_scores(out / f"oracle{suffix}"), cfg.horizons)
    stem = out / f"oracle_ratios{suffix}"
    with open(f"{stem}.csv.tmp", "w") as fh:
        table.to_csv(fh, index=False, float_format="%.6g")
    os.replace(f"{stem}.csv.tmp", f"{stem}.csv")
    text = ratio_markdown(table)
    Path(f"{stem}.md").write_text(text)
    print(text)
    gpt = table[(table["model"] == "gpt") & (table["horizon"] <= 63)]
    if len(gpt):
        worst = gpt.loc[gpt["ratio"].idxmax()]
        verdict = "met" if worst["ratio"] <= TARGET else "missed"
        print(f"target GPT/oracle <= {TARGET:.2f} at every horizon up to 63 days: {verdict} "
              f"(worst {worst['ratio']:.2f}: {worst['series']} at {worst['horizon']} days)")


if __name__ == "__main__":
    main()
