"""Wall time of `forecaster backtest`, and where it goes (per model and origin).

    python benchmarks/bench_backtest.py --run runs/bt-small --window 2018-2021 --paths 100 --horizon 250 \\
        --out runs/bt-small/backtests/2018-2021
    python benchmarks/bench_backtest.py --from-out runs/bt-small/backtests/2018-2021   # timings of a finished run
    python benchmarks/bench_backtest.py --run runs/day-small --window 2018-2021 --every 2M \
        --scheduler local:2 --against local:1 --out runs/bench-dask          # Dask: 2 workers against 1

Runs the command in a fresh process (a new --out, so nothing is resumed), prints
its wall time, then the median seconds per origin of each model read from the
per-origin files (GPT sampling, GARCH fits, VAR, ...). Figures and the machine's
load go into docs/BACKTEST.md.

With ``--scheduler``, the same backtest runs once on ``--against`` (default
``local:1``) and once on ``--scheduler``, each into its own folder under ``--out``
(one torch thread per worker), and the script prints both wall times, their ratio
and whether the two give identical scores and fans (they must: per-origin seeds
depend on the date only). Figures go into docs/PERFORMANCE.md.
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
    parser.add_argument("--every", default=None, help="Origin schedule, e.g. 2M (default: the window's).")
    parser.add_argument("--out", type=Path, default=REPO / "runs/bench-backtest")
    parser.add_argument("--scheduler", help="Dask scheduler to measure (e.g. local:2); runs --against first.")
    parser.add_argument("--against", default="local:1", help="The scheduler it is compared with (default local:1).")
    args = parser.parse_args()
    if args.from_out:
        per_model_seconds(args.from_out)
        return
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{args.out} is not empty: the benchmark needs a fresh --out (nothing resumed)")
    if args.scheduler:
        compare(args)
        return
    wall = run_backtest(args, args.out)
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min); load average {os.getloadavg()[0]:.1f}")
    per_model_seconds(args.out)


def run_backtest(args, out: Path, scheduler: str | None = None) -> float:
    """``forecaster backtest`` in a fresh process into ``out``; its wall seconds."""
    cmd = [sys.executable, "-m", "forecaster", "backtest", "--run", args.run, "--window", args.window,
           "--paths", args.paths, "--horizon", args.horizon, "--out", str(out), "--no-progress"]
    if args.every:
        cmd += ["--every", args.every]
    if args.data:
        cmd += ["--data", args.data]
    if scheduler:
        cmd += ["--scheduler", scheduler, "--threads", "1"]
    print(" ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def identical(a: Path, b: Path) -> bool:
    """Whether two backtest folders hold the same scores and the same fans at every origin."""
    import pandas as pd

    from forecaster.market.backtest.runner import load_fan, load_scores

    sa, sb = load_scores(a), load_scores(b)
    if not sa.equals(sb):
        return False
    return all(load_fan(a, o).equals(load_fan(b, o)) for o in pd.unique(sa["origin"]))


def compare(args) -> None:
    """``--against`` then ``--scheduler`` on the same backtest: wall times, ratio, identical results."""
    walls = {}
    for name in (args.against, args.scheduler):
        walls[name] = run_backtest(args, args.out / name.replace(":", "-").replace("/", ""), name)
        print(f"{name}: wall {walls[name]:.0f} s; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}",
              flush=True)
    a, b = (args.out / n.replace(":", "-").replace("/", "") for n in (args.against, args.scheduler))
    same = identical(a, b)
    print(f"ratio {args.against} / {args.scheduler}: {walls[args.against] / walls[args.scheduler]:.2f}; "
          f"identical scores and fans: {same}")
    per_model_seconds(b)
    if not same:
        sys.exit("the two runs differ: a Dask run must give the serial results")


if __name__ == "__main__":
    main()
