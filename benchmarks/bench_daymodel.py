"""Per-day sampling cost: DayGPT (day-level GPT + within-day decoder) against today's flat GPT.

    OMP_NUM_THREADS=1 python benchmarks/bench_daymodel.py [--paths 200] [--days 250] [--threads 1,2]

Both models have random weights (the speed does not depend on them) and the shape of the
market panel: 22 tokens a day (21 series + the row delimiter), ``--levels`` ids per series.

* flat: the `small` preset, 4 layers x 128 (4 heads, 1 key/value head), an 8-day context
  (176 tokens), sampled by ``forecaster.core.sampler.Sampler``: 22 full steps a day;
* day: ``DayGPT`` with a global 4 layers x 128 (4 heads, 1 key/value head) over a 256-row
  context and a local 2 layers x 64 (2 heads), ``--features`` row features from a callback,
  sampled by ``forecaster.core.daysampler.DaySampler``: one global step + 22 local steps a day.

Each is timed over ``--days`` days for ``--paths`` paths after a full prompt (prefill and the
window slides included, as in a forecast) and reported as ms per day, with the ratio, for
each thread count in one run.
"""
from __future__ import annotations

import argparse
import time

import torch

from forecaster.core.daymodel import DayGPT, DayGPTConfig
from forecaster.core.daysampler import DaySampler
from forecaster.core.model import GPT, GPTConfig
from forecaster.core.sampler import Sampler


def market_like_mask(series: int, levels: int) -> torch.Tensor:
    """(series + 1, vocab) bool: specials 0-2, one disjoint id range per series, the delimiter last."""
    vocab = 3 + series * levels
    mask = torch.zeros(series + 1, vocab, dtype=torch.bool)
    for s in range(series):
        mask[s, 3 + s * levels: 3 + (s + 1) * levels] = True
    mask[series, 2] = True
    return mask


def random_rows(mask: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    out = torch.empty(n, mask.size(0), dtype=torch.long)
    for s, row in enumerate(mask):
        ids = torch.nonzero(row).flatten()
        out[:, s] = ids[torch.randint(len(ids), (n,), generator=g)]
    return out


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--days", type=int, default=250)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--levels", type=int, default=257, help="ids per series (bins + missing)")
    parser.add_argument("--features", type=int, default=8)
    args = parser.parse_args()

    mask = market_like_mask(21, args.levels)
    R, V = mask.shape
    torch.manual_seed(0)
    flat = GPT(GPTConfig(vocab_size=V, row_len=R, block_size=8 * R, n_layer=4, n_head=4, n_kv_head=1, n_embd=128))
    day = DayGPT(DayGPTConfig(vocab_size=V, row_len=R, n_features=args.features, context_rows=256, n_layer=4,
                              n_head=4, n_kv_head=1, n_embd=128, local_n_layer=2, local_n_head=2, local_n_embd=64))
    feats_of = lambda rows: torch.zeros(rows.size(0), args.features)  # noqa: E731 (the domain's job; ~free here)
    flat_s = Sampler(flat, mask)
    day_s = DaySampler(day, mask, next_features=feats_of)
    g = torch.Generator().manual_seed(0)
    prompt_day = random_rows(mask, 256, g)
    prompt_flat = prompt_day[-7:].reshape(-1)
    prompt_feats = torch.zeros(256, args.features)
    print(f"vocabulary {V:,}, {R} tokens/day, {args.paths} paths x {args.days} days; "
          f"flat GPT {flat.num_params():,} parameters (8-day context), "
          f"DayGPT {day.num_params():,} parameters (256-day context)")
    for n in [int(x) for x in args.threads.split(",")]:
        torch.set_num_threads(n)
        t_flat = timed(lambda: flat_s.sample(prompt_flat, args.paths, args.days, torch.Generator().manual_seed(1)))
        t_day = timed(lambda: day_s.sample(prompt_day, args.paths, args.days, torch.Generator().manual_seed(1),
                                           features=prompt_feats))
        ms_flat, ms_day = 1e3 * t_flat / args.days, 1e3 * t_day / args.days
        print(f"threads {n}: flat GPT {ms_flat:.1f} ms/day, DayGPT {ms_day:.1f} ms/day; "
              f"DayGPT is {ms_flat / ms_day:.2f}x cheaper per day", flush=True)


if __name__ == "__main__":
    main()
