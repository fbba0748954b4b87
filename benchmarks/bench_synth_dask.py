"""Rows/s of `forecaster synth generate`: serial against a Dask scheduler (default local:2), and whether the files match.

    OMP_NUM_THREADS=1 python benchmarks/bench_synth_dask.py --run RUN_DIR --rows 6400 --rows-per-history 100 \\
        --batch-paths 16 --scheduler local:2 --out /tmp/bench-synth-dask

Runs the same command twice, each in a fresh process, one after the other: once
without ``--scheduler`` (the blocks one after another, ``--threads 1``) and once with
``--scheduler`` (one task per block, one torch thread per worker). It prints, for each,
the command's wall time (start-up, loading the model, sampling, writing), the rows/s
the command reports (its sampling wall time; with Dask that includes starting the
cluster and every worker loading the run), and rows per wall second; then the ratio
of the two and whether the two output files are identical byte for byte (they must
be: a block's histories depend on the seed and the block's number only). It also
prints the serial CPU-seconds per row, the figure to size a cluster with
(docs/SCALING.md). Figures go into docs/PERFORMANCE.md.

``--device`` is passed to both commands (default cpu; ``cuda`` on a GPU machine gives
the GPU throughput of the serial command and a Dask run whose workers share that GPU).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORTED = re.compile(r"([\d,]+) rows in (\d+) histories -> .* \(([\d.]+) s, ([\d,]+) rows/s on ([^;]+);")


def run_generate(args, out: Path, scheduler: str | None) -> dict:
    """One `forecaster synth generate` in a fresh process; its wall time, CPU time and reported figures."""
    cmd = [sys.executable, "-m", "forecaster", "synth", "generate", "--run", str(args.run), "--rows", str(args.rows),
           "--rows-per-history", str(args.rows_per_history), "--batch-paths", str(args.batch_paths),
           "--seed", str(args.seed), "--weights", args.weights, "--device", args.device, "--threads", "1",
           "--out", str(out), "--no-progress"]
    if scheduler:
        cmd += ["--scheduler", scheduler]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    m = REPORTED.search(proc.stderr)
    assert m, f"no summary line in the command's output:\n{proc.stderr[-2000:]}"
    rows = int(m.group(1).replace(",", ""))
    return {"scheduler": scheduler or "serial", "command": " ".join(cmd[1:]), "wall_s": round(wall, 1),
            "rows": rows, "histories": int(m.group(2)), "sampling_s": float(m.group(3)),
            "reported_rows_per_s": int(m.group(4).replace(",", "")), "device": m.group(5),
            "rows_per_wall_s": round(rows / wall, 1),
            # CPU time of the command and of the processes it started and reaped (local:N workers included)
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "log": [line for line in proc.stderr.splitlines() if "Dask" in line or "rows in" in line]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a `forecaster synth train` run directory")
    ap.add_argument("--rows", type=int, default=6400)
    ap.add_argument("--rows-per-history", type=int, default=100)
    ap.add_argument("--batch-paths", type=int, default=16, help="histories per block (one Dask task each)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--weights", default="best")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scheduler", default="local:2")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-synth-dask"))
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    serial = run_generate(args, args.out / "serial.parquet", None)
    split = run_generate(args, args.out / "dask.parquet", args.scheduler)
    identical = (args.out / "serial.parquet").read_bytes() == (args.out / "dask.parquet").read_bytes()
    blocks = math.ceil(math.ceil(args.rows / args.rows_per_history) / args.batch_paths)
    result = {"run": str(args.run), "rows": args.rows, "rows_per_history": args.rows_per_history,
              "batch_paths": args.batch_paths, "blocks": blocks, "serial": serial, "dask": split,
              "ratio_rows_per_wall_s": round(split["rows_per_wall_s"] / serial["rows_per_wall_s"], 2),
              "ratio_reported_rows_per_s": round(split["reported_rows_per_s"] / max(serial["reported_rows_per_s"], 1), 2),
              "identical": identical, "serial_cpu_s_per_row": round(serial["cpu_s"] / serial["rows"], 4),
              "dask_cpu_s_per_row": round(split["cpu_s"] / split["rows"], 4),
              "load_before": [round(x, 2) for x in load], "load_after": [round(x, 2) for x in os.getloadavg()],
              "cores": os.cpu_count()}
    for part in (serial, split):
        print(f"{part['scheduler']:>12}: {part['rows']:,} rows in {part['wall_s']} s wall "
              f"({part['rows_per_wall_s']} rows/s), the command reports {part['reported_rows_per_s']} rows/s over "
              f"{part['sampling_s']} s of sampling on {part['device']}")
        for line in part["log"]:
            print(f"{'':>14}{line}")
    print(f"{blocks} blocks of {args.batch_paths} histories x {args.rows_per_history} rows; ratio {args.scheduler} / "
          f"serial: {result['ratio_rows_per_wall_s']} (wall), {result['ratio_reported_rows_per_s']} (reported)")
    print(f"outputs identical byte for byte: {identical}")
    print(f"CPU-ms per row (every process of the command, start-up included): serial "
          f"{result['serial_cpu_s_per_row'] * 1000:.1f}, {args.scheduler} {result['dask_cpu_s_per_row'] * 1000:.1f}")
    print(f"load average before {result['load_before']}, after {result['load_after']} ({result['cores']} cores)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
