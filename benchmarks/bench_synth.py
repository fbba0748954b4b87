"""Generation throughput of the credit-card synthesizer (rows/s), CPU.

Measures ``Synthesizer.generate`` (the day-level model's ``DaySampler``: one global
step and one short local pass per transaction for all histories of a batch; the
row and clock constraints, decoding, typing; no sorting) for several numbers of
histories sampled together (``--batch-paths``). Rows/s counts the rows kept (burn-in rows are
sampled but not counted). With ``--run`` it times that run's model; without, it
trains a throw-away model of ``--preset`` for ``--steps`` steps on the real
sample first (the speed depends on the model shape, not on its quality).

Run:  python3 benchmarks/bench_synth.py [--run RUN_DIR | --preset day-small] [--rows 4000]
          [--batch-paths 20,64,256] [--threads 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "tabformer" / "User0_credit_card_transactions.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a `forecaster synth train` run directory")
    ap.add_argument("--preset", default="day-small", help="preset of the throw-away model (without --run)")
    ap.add_argument("--steps", type=int, default=5, help="training steps of the throw-away model")
    ap.add_argument("--rows", type=int, default=4000, help="rows generated per measurement")
    ap.add_argument("--rows-per-history", type=int, default=200)
    ap.add_argument("--batch-paths", default="20,64,256", help="comma-separated histories sampled together")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from forecaster.synthesis.documents import read_table
    from forecaster.synthesis.generate import Synthesizer
    from forecaster.synthesis.train import train_synthesizer

    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            train_synthesizer(read_table(SAMPLE), run, args.preset, max_steps=args.steps, context_rows=64,
                              progress=False)
        synth = Synthesizer(run)
        cfg = synth.model.config
        results = []
        synth.generate(min(20, args.rows), rows_per_history=10, seed=99)  # warm-up
        for bp in (int(b) for b in args.batch_paths.split(",")):
            t0 = time.perf_counter()
            table, stats = synth.generate(args.rows, rows_per_history=args.rows_per_history, batch_paths=bp, seed=1)
            wall = time.perf_counter() - t0
            r = {"batch_paths": bp, "rows": len(table), "histories": stats.histories, "seconds": round(wall, 2),
                 "rows_per_s": round(len(table) / wall, 1),
                 "sampled_rows_per_s": round(stats.sampled_rows / wall, 1),
                 "tokens_per_s": round(stats.sampled_rows * synth.row_len / wall, 0)}
            results.append(r)
            print(json.dumps(r), flush=True)
        meta = {"model": {"n_layer": cfg.n_layer, "n_embd": cfg.n_embd, "local_n_layer": cfg.local_n_layer,
                          "local_n_embd": cfg.local_n_embd, "context_rows": cfg.context_rows,
                          "row_len": cfg.row_len, "vocab_size": cfg.vocab_size},
                "run": str(args.run) if args.run else f"throw-away {args.preset}", "threads": args.threads,
                "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "torch": torch.__version__}
        print(json.dumps(meta))
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
