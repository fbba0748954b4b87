"""Time from `forecaster demo` starting to the dashboard answering HTTP 200 (the new user's wait).

    python benchmarks/bench_demo.py                      # a fresh demo into a temporary runs folder
    python benchmarks/bench_demo.py --runs /tmp/r --keep # keep the folder (a second run measures the warm start)
    python benchmarks/bench_demo.py -- --max-minutes 1.5 # extra arguments after -- go to `forecaster demo`

It starts ``forecaster demo --runs DIR --port PORT --fresh`` as a subprocess (as a
user would), timestamps each step line the demo prints on stderr, polls the
dashboard's URL until it answers 200 and every page answers 200, then stops the
server. It prints one JSON line: total seconds, per-step seconds, the load average
before and after (the machine is shared: compare runs taken at similar load),
and the CPU count. Target: under 300 s on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PAGES = ("/", "/regimes", "/scenarios", "/backtest", "/synthesis", "/data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, default=None, help="runs folder (default: a temporary one, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the runs folder")
    ap.add_argument("--warm", action="store_true", help="do not pass --fresh (reuse what the folder holds)")
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args(argv)

    runs = args.runs or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    port = free_port()
    cmd = [sys.executable, "-m", "forecaster", "demo", "--runs", str(runs), "--port", str(port), "--no-progress",
           *([] if args.warm else ["--fresh"]), *extra]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    steps: list[tuple[float, str]] = []
    lines: list[str] = []

    def read(stream):
        for line in stream:
            lines.append(line.rstrip())
            if re.match(r"^\[\d/\d\]", line.strip()):
                steps.append((time.perf_counter() - t0, line.strip()))

    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=read, args=(stream,), daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    up = None
    try:
        while time.perf_counter() - t0 < args.timeout:
            if proc.poll() is not None:
                print("\n".join(lines[-30:]), file=sys.stderr)
                print(f"demo exited with code {proc.returncode} before serving", file=sys.stderr)
                return 1
            try:
                if urllib.request.urlopen(url + "/", timeout=2).status == 200:
                    up = time.perf_counter() - t0
                    break
            except OSError:
                time.sleep(0.5)
        if up is None:
            print(f"no answer within {args.timeout:.0f} s", file=sys.stderr)
            return 1
        pages = {}
        for page in PAGES:
            t = time.perf_counter()
            status = urllib.request.urlopen(url + page, timeout=30).status
            pages[page] = {"status": status, "seconds": round(time.perf_counter() - t, 3)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if args.runs is None and not args.keep:
            shutil.rmtree(runs, ignore_errors=True)
    marks = [s[0] for s in steps] + [up]
    result = {
        "dashboard_up_s": round(up, 1),
        "steps": [{"step": text, "started_s": round(start, 1), "took_s": round(end - start, 1)}
                  for (start, text), end in zip(steps, marks[1:])],
        "pages": pages,
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join(cmd[2:]),
        "target_s": 300,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
