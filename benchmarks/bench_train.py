"""Training throughput: plain torch vs DeepSpeed (1 process) vs DeepSpeed (2 processes).

Every measurement runs the real training loop (``forecaster.core.training.engine.train``)
on windows of the real panel, in its own fresh process, and times the optimizer
steps after a warm-up (evaluation and checkpoints are kept out of the timed span).
Tokens per second count the input tokens of the global batch.

    python benchmarks/bench_train.py --data tests/fixtures/shared_data.yaml --preset small

Options: ``--steps`` timed steps, ``--warmup`` untimed steps, ``--rounds`` repeats
of the whole set (interleaved; the best round of each configuration is reported,
because the CPU is shared; tokens per CPU-second of all processes are reported
too, as they are less sensitive to other load), ``--zero-stage`` for the DeepSpeed runs, ``--json``
to also write the figures to a file. A GPU run uses the same command; with
``--precision auto`` it trains in bf16 where the GPU supports it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _datasets(data: str | None, context_rows: int, rows: int):
    """Windows of the real panel (or of a synthetic table when ``data`` is None)."""
    from forecaster.core.training.windows import make_datasets, panel_segment

    if data is None:
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(0)
        tokens = rng.integers(3, 2000, (rows, 42))
        tokens[:, -1] = 2
        seg = panel_segment(tokens, pd.bdate_range("1990-01-01", periods=rows))
        vocab = 2000
    else:
        from data_sources.panel import load_panel
        from forecaster.market.features import model_frame
        from forecaster.core.tokenizer import TableTokenizer
        from forecaster.market.tokenizer import market_specs

        frame = model_frame(load_panel(data))
        tok = TableTokenizer.fit(frame, market_specs(frame))
        seg = panel_segment(tok.encode(frame), frame.index)
        vocab = tok.vocab_size
    train_ds, val_ds, _ = make_datasets([seg], context_rows, 0.1)
    return train_ds, val_ds, vocab


def worker(args) -> None:
    """One measurement (one process, or one rank of several); rank 0 writes the result JSON."""
    from forecaster.core.training.config import TrainConfig, model_config_for
    from forecaster.core.training.engine import train

    overrides = dict(engine=args.engine, zero_stage=args.zero_stage, precision=args.precision,
                     max_steps=args.warmup + args.steps, eval_every=10**9, checkpoint_every=10**9,
                     log_every=10**9, eval_windows=1)
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    cfg = TrainConfig.from_preset(args.preset, **overrides)
    train_ds, val_ds, vocab = _datasets(args.data, cfg.context_rows, args.synthetic_rows)
    mcfg = model_config_for(args.preset, vocab, train_ds.row_len, cfg.context_rows)
    stamps: dict[int, tuple[float, float]] = {}

    def on_step(step: int, loss: float) -> None:
        stamps[step] = (time.perf_counter(), time.process_time())  # wall, CPU seconds of this process

    with tempfile.TemporaryDirectory() as tmp:
        train(mcfg, cfg, train_ds, val_ds, Path(tmp) / "run", progress=False, on_step=on_step)
    (w0, c0), (w1, c1) = stamps[args.warmup], stamps[args.warmup + args.steps]
    tokens = cfg.batch_size * (cfg.context_rows * train_ds.row_len - 1) * args.steps
    rank = int(os.environ.get("RANK", "0"))
    Path(args.result + (f".rank{rank}" if rank else "")).write_text(json.dumps({
        "tokens_per_s": tokens / (w1 - w0), "s_per_step": (w1 - w0) / args.steps, "tokens": tokens,
        "cpu_s": c1 - c0, "batch_size": cfg.batch_size, "tokens_per_window": cfg.context_rows * train_ds.row_len - 1,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")), "threads": __import__("torch").get_num_threads(),
    }))


def _run(label: str, cmd: list[str], env: dict, result: Path) -> dict | None:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{label}: FAILED\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    out = json.loads(result.read_text())
    cpu = out["cpu_s"] + sum(json.loads(p.read_text())["cpu_s"] for p in result.parent.glob(result.name + ".rank*"))
    out["tokens_per_cpu_s"] = out["tokens"] / cpu  # all ranks' CPU time: robust to other load on the machine
    print(f"  {label:<24} {out['tokens_per_s']:>8,.0f} tok/s wall  {out['tokens_per_cpu_s']:>8,.0f} tok/CPU-s  "
          f"{out['s_per_step'] * 1000:7.1f} ms/step  (process {time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "tests" / "fixtures" / "shared_data.yaml"),
                    help="panel source (default: the shared real data); 'synthetic' for random tokens")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--zero-stage", type=int, default=2)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--synthetic-rows", type=int, default=4000)
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="torch", help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.data == "synthetic":
        args.data = None
    if args.worker:
        worker(args)
        return

    import torch

    base = [sys.executable, str(Path(__file__).resolve()), "--worker", "--preset", args.preset,
            "--steps", str(args.steps), "--warmup", str(args.warmup), "--zero-stage", str(args.zero_stage),
            "--precision", args.precision, "--synthetic-rows", str(args.synthetic_rows),
            "--data", args.data or "synthetic"] + (["--batch-size", str(args.batch_size)] if args.batch_size else [])
    print(f"preset {args.preset}, {args.steps} timed steps after {args.warmup}, ZeRO-{args.zero_stage}, "
          f"{os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"{'GPU ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}", flush=True)
    configs = {
        "torch, 1 process": lambda res, port: (base + ["--engine", "torch", "--result", res], {}),
        "deepspeed, 1 process": lambda res, port: (base + ["--engine", "deepspeed", "--result", res], dict(
            RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))),
        "deepspeed, 2 processes": lambda res, port: (
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
            + base[1:] + ["--engine", "deepspeed", "--result", res], {}),
    }
    from forecaster.core.training.distributed import free_port

    best: dict[str, dict] = {}  # per configuration, the round with the highest wall-clock throughput
    ratios: list[float] = []  # deepspeed / torch on 1 process within each round (back to back, same load)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", flush=True)
            this_round = {}
            for label, make in configs.items():
                res = Path(tmp) / f"{label}-{r}.json".replace(" ", "_").replace(",", "")
                cmd, extra = make(str(res), free_port())
                out = _run(label, cmd, {**os.environ, **extra}, res)
                if out:
                    this_round[label] = out
                if out and (label not in best or out["tokens_per_s"] > best[label]["tokens_per_s"]):
                    best[label] = out
            if "torch, 1 process" in this_round and "deepspeed, 1 process" in this_round:
                ratios.append(this_round["deepspeed, 1 process"]["tokens_per_s"] / this_round["torch, 1 process"]["tokens_per_s"])
    print("\nbest of rounds (tokens per second of the global batch; per CPU-second of all processes):")
    for label, out in best.items():
        print(f"  {label:<24} {out['tokens_per_s']:>8,.0f} tok/s wall  {out['tokens_per_cpu_s']:>8,.0f} tok/CPU-s")
    if "torch, 1 process" in best and "deepspeed, 1 process" in best:
        t, d = best["torch, 1 process"], best["deepspeed, 1 process"]
        print(f"  deepspeed / torch on 1 process: {d['tokens_per_s'] / t['tokens_per_s']:.2f} wall, "
              f"{d['tokens_per_cpu_s'] / t['tokens_per_cpu_s']:.2f} per CPU-second (target >= 0.85)")
    if ratios:
        print(f"  deepspeed / torch within each round (wall): {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {sorted(ratios)[len(ratios) // 2]:.2f}")
    if not torch.cuda.is_available():
        print("  GPU bf16: not yet measured (no GPU here)")
    if args.json:
        Path(args.json).write_text(json.dumps(best, indent=2))


if __name__ == "__main__":
    main()
