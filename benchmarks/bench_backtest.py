"""Wall time of `forecaster backtest`, and where it goes (per model and origin).

    python benchmarks/bench_backtest.py --run runs/bt-small --window 2018-2021 --paths 100 --horizon 250 \\
        --out runs/bt-small/backtests/2018-2021
    python benchmarks/bench_backtest.py --from-out runs/bt-small/backtests/2018-2021   # timings of a finished run

Runs the command in a fresh process (a new --out, so nothing is resumed), prints
its wall time, then the median seconds per origin of each model read from the
per-origin files (GPT sampling, GARCH fits, VAR, ...). Figures and the machine's
load go into docs/BACKTEST.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def per_model_seconds(out: Path) -> None:
    import pandas as pd

    from forecaster.market.backtest.runner import load_scores

    scores = load_scores(out)
    sec = pd.DataFrame(scores.attrs["seconds"]).T  # origins x models
    print(f"{len(sec)} origins; seconds per origin by model (median / total):")
    for m in sec.columns:
        print(f"  {m:12s} {sec[m].median():8.2f} / {sec[m].sum():8.1f}")
    errors = scores.attrs.get("errors", {})
    print(f"origins with a failed model: {len(errors)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-out", type=Path, help="Only report the timings of a finished backtest folder.")
    parser.add_argument("--run", default=str(REPO / "runs/bt-small"))
    parser.add_argument("--data", default=None)
    parser.add_argument("--window", default="2018-2021")
    parser.add_argument("--paths", default="100")
    parser.add_argument("--horizon", default="250")
    parser.add_argument("--out", type=Path, default=REPO / "runs/bench-backtest")
    args = parser.parse_args()
    if args.from_out:
        per_model_seconds(args.from_out)
        return
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty: the benchmark needs a fresh --out (nothing resumed)")
    cmd = [sys.executable, "-m", "forecaster", "backtest", "--run", args.run, "--window", args.window,
           "--paths", args.paths, "--horizon", args.horizon, "--out", str(args.out), "--no-progress"]
    if args.data:
        cmd += ["--data", args.data]
    print(" ".join(cmd))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ})
    wall = time.perf_counter() - t0
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min); load average {os.getloadavg()[0]:.1f}")
    per_model_seconds(args.out)


if __name__ == "__main__":
    main()
