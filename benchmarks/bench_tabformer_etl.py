"""TabFormer ETL throughput (rows/s) and peak RSS on a large replicated file.

Builds, in a temporary folder, a file of the published format by replicating
the real User 0 sample (19,963 rows) with distinct user ids 0, 1, 2, ... until
it has at least ``--rows`` rows (default 2 million: 101 copies, 2,016,263
rows, ~190 MB), then runs each phase in its own Python process so each peak
RSS is that phase's alone:

- stream : ``iter_tabformer`` over the whole file, chunks dropped as they come
  (the bounded-memory path for the 24-million-row file);
- read   : ``read_tabformer`` into one typed table (memory grows with the file);
- write  : ``write_tabformer_csv`` of that table, timed alone, then checked
  byte for byte against the input;
- copy   : the whole ETL round trip streamed with bounded memory:
  ``write_tabformer_csv(chunk.table for chunk in iter_tabformer(...))``, checked
  byte for byte.

- dask   : (``--scheduler local:N`` or ``tcp://...``) ``read_tabformer(scheduler=...)``, the
  chunks as Dask tasks on the CPU, checked equal to the serial read;
- cudf   : (``--gpu``) ``read_tabformer(engine="cudf")`` on the GPU, checked equal to the CPU
  read; it fails loudly where cuDF is not usable (``benchmarks/gpu_suite.sh`` runs it).

Run:  python3 benchmarks/bench_tabformer_etl.py [--rows 2000000] [--chunksize 200000] [--scheduler local:2] [--gpu]
The CPU phases run with FORECASTER_USE_CUDF=0.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "tabformer" / "User0_credit_card_transactions.csv"


def build_file(sample: Path, target: Path, min_rows: int) -> int:
    """Replicate the sample with user ids 0..k-1 until >= min_rows rows; return the row count."""
    header, body = sample.read_bytes().split(b"\n", 1)
    assert body.startswith(b"0,") and body.endswith(b"\n"), "sample rows all belong to user 0"
    rows = body.count(b"\n")
    copies = -(-min_rows // rows)
    with open(target, "wb") as fh:
        fh.write(header + b"\n")
        for user in range(copies):
            fh.write((b"\n" + body).replace(b"\n0,", b"\n%d," % user)[1:])
    return copies * rows


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def phase(name: str, path: Path, chunksize: int, scheduler: str | None = None) -> dict:
    """Run one phase in this process; return its figures (wall and CPU seconds, peak RSS)."""
    from data_sources.tabformer import iter_tabformer, read_tabformer, write_tabformer_csv

    start_rss = peak_rss_mb()
    extra: dict = {}
    if name == "write":  # read first (untimed), then time the write alone
        table = read_tabformer(path, chunksize=chunksize, progress=False, engine="cpu")
    t0, c0 = time.perf_counter(), time.process_time()
    if name == "stream":
        rows = sum(len(c.table) for c in iter_tabformer(path, chunksize=chunksize, progress=False))
    elif name == "read":
        rows = len(read_tabformer(path, chunksize=chunksize, progress=False, engine="cpu"))
    elif name == "write":
        out = write_tabformer_csv(table, path.with_name("written.csv"))
        rows = len(table)
    elif name == "dask":
        got = read_tabformer(path, chunksize=chunksize, engine="cpu", scheduler=scheduler)  # with local:N, the
        rows = len(got)  # cluster's start is part of the time (a tcp:// scheduler is already running)
    elif name == "cudf":
        from data_sources.gpu import cudf_usable

        if not cudf_usable():
            raise SystemExit("cudf phase: cuDF is not usable here (the gpu extra and a working GPU are needed)")
        t0, c0 = time.perf_counter(), time.process_time()  # the probe (CUDA context creation) is not timed
        got = read_tabformer(path, engine="cudf", progress=False)
        rows = len(got)
    elif name == "copy":  # streaming read -> write, chunk by chunk
        rows = 0

        def tables():
            nonlocal rows
            for chunk in iter_tabformer(path, chunksize=chunksize, progress=False):
                rows += len(chunk.table)
                yield chunk.table

        out = write_tabformer_csv(tables(), path.with_name("written.csv"))
    else:
        raise SystemExit(f"unknown phase {name!r}")
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    if name in ("write", "copy"):
        extra["byte_identical"] = subprocess.run(["cmp", "-s", str(path), str(out)]).returncode == 0
        out.unlink()
    if name in ("dask", "cudf"):  # against the serial CPU read (untimed)
        extra["equal_to_cpu"] = bool(got.equals(read_tabformer(path, chunksize=chunksize, progress=False,
                                                               engine="cpu")))
    return {"phase": name, "rows": rows, "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu_seconds, 2), "rows_per_s": round(rows / seconds),
            "rows_per_cpu_s": round(rows / cpu_seconds), "peak_rss_mb": round(peak_rss_mb()),
            "rss_before_mb": round(start_rss), **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--chunksize", type=int, default=200_000)  # the reader's default
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--scheduler", help="Also time the read as Dask tasks on this scheduler (local:N, tcp://...).")
    parser.add_argument("--gpu", action="store_true", help="Also time the cuDF read (fails without a usable cuDF).")
    parser.add_argument("--phases", default="stream,read,write,copy", help="CPU phases to run (comma-separated).")
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # child process
        print(json.dumps(phase(args.phase, args.file, args.chunksize, args.scheduler)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_tabformer_") as tmp:
        path = Path(tmp) / "card_transaction.replicated.csv"
        t0 = time.perf_counter()
        rows = build_file(SAMPLE, path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {rows:,} rows, {size_mb:.0f} MB, built in {time.perf_counter() - t0:.1f} s")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"cpu: {os.cpu_count()} cores visible, load average {load} (shared machine: compare "
              f"rows per CPU-second across runs), chunksize {args.chunksize:,}")
        env = {**os.environ, "FORECASTER_USE_CUDF": "0", "PYTHONPATH": str(REPO)}
        phases = [p for p in args.phases.split(",") if p] + (["dask"] if args.scheduler else []) + \
            (["cudf"] if args.gpu else [])
        for name in phases:
            cmd = [sys.executable, __file__, "--phase", name, "--file", str(path), "--chunksize", str(args.chunksize)]
            if args.scheduler:
                cmd += ["--scheduler", args.scheduler]
            proc = subprocess.run(cmd, env={**env, "FORECASTER_USE_CUDF": "1"} if name == "cudf" else env,
                                  capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"phase {name} failed:\n{proc.stderr[-2000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            extra = f", byte-identical: {r['byte_identical']}" if "byte_identical" in r else ""
            extra += f", equal to the CPU read: {r['equal_to_cpu']}" if "equal_to_cpu" in r else ""
            print(f"{name:6s}: {r['rows']:,} rows in {r['seconds']} s wall = {r['rows_per_s']:,} rows/s "
                  f"({size_mb / r['seconds']:.0f} MB/s); {r['cpu_seconds']} s CPU = "
                  f"{r['rows_per_cpu_s']:,} rows per CPU-second; peak RSS {r['peak_rss_mb']:,} MB "
                  f"(interpreter + imports {r['rss_before_mb']:,} MB){extra}")
        if not args.gpu:
            print("gpu (cuDF): not measured in this run (--gpu; benchmarks/gpu_suite.sh)")


if __name__ == "__main__":
    main()
