"""How long does building the full point-in-time panel from the local CSV folder take?

    python benchmarks/bench_panel.py [--mapping tests/fixtures/shared_data.yaml] [--repeat 7]

Reports, for the real data in ../shared/data (22 CSV files, 1950-2026):
- cold build: read and parse every file, align, derive (what `forecaster data show` does);
- as-of rebuild: a new as-of date from already-read raw series (what a backtest does per origin).
Target (issue 2): cold build under 1 second on the 2-core CI machine.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from data_sources.panel import PanelBuilder

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mapping", default=str(REPO / "tests/fixtures/shared_data.yaml"))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    PanelBuilder(args.mapping).build()  # warm imports and the page cache
    cold, rebuild = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        builder = PanelBuilder(args.mapping)
        panel = builder.build()
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        builder.build("2019-06-28")
        rebuild.append(time.perf_counter() - t0)
    print(f"panel: {panel.shape[0]:,} business days x {panel.shape[1]} series, {panel.index[0].date()} .. {panel.index[-1].date()}")
    print(f"cold build (read+parse+align): median {statistics.median(cold):.3f} s, min {min(cold):.3f} s over {args.repeat} runs")
    print(f"as-of rebuild (raw cached):    median {statistics.median(rebuild):.3f} s, min {min(rebuild):.3f} s")
    print(f"target < 1 s: {'met' if statistics.median(cold) < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
