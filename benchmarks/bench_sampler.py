"""Sampling throughput: the KV-cache sampler against the full-recompute reference, and a full forecast.

    python benchmarks/bench_sampler.py [--run RUN_DIR | --preset small|day-small] [--paths 200] [--horizon 250] \
        [--ref-paths 8,64] [--ref-horizon 30]

1. Ratio (issue 5 target: >= 20x at a 250-day horizon): the same paths sampled with the
   KV-cache sampler and with the reference generator (one full forward pass of the current
   window per token), same seed, same output (checked), reported as tokens/s of each.
   Both samplers slide the window the same way (fill to ``window`` rows, keep half, refill),
   so from the first slide on the cost per token is periodic and the ratio over
   ``--ref-horizon`` days (several slides) is the ratio at 250 days; a 250-day reference run
   of 200 paths would take hours on this CPU.
2. Wall time of a full forecast: ``--paths`` paths x ``--horizon`` days of the full reference
   panel (../shared/data, 21 series) with the `small` preset: prompt, sampling, decoding,
   integration into levels (target: under 2 minutes for 200 x 250 on this 2-core CPU).

``--ref-paths 0`` skips part 1 and ``--paths 0`` part 2. Without --run the model has the
shape of ``--preset`` (``small``: the flat GPT; ``day-small``: the day-level GPT with its
within-day decoder and per-row input features) and random weights (the speed does not
depend on the weights); with --run, the trained run is used, whichever kind it is.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def build_pipeline(run: str | None, preset: str = "small"):
    from data_sources.panel import PanelBuilder
    from forecaster.core.daymodel import DayGPT
    from forecaster.core.model import GPT
    from forecaster.core.tokenizer import TableTokenizer
    from forecaster.core.training.config import PRESETS, model_config_for, model_kind
    from forecaster.market.features import model_frame
    from forecaster.market.inputs import InputNormalization, feature_names, features_for_history, yoy_index_levels
    from forecaster.market.pipeline import ForecastPipeline
    from forecaster.market.tokenizer import market_specs

    builder = PanelBuilder(str(REPO / "tests/fixtures/shared_data.yaml"))
    if run:
        return ForecastPipeline.from_run(run), builder
    panel = builder.build()
    frame = model_frame(panel)
    tok = TableTokenizer.fit(frame, market_specs(frame))
    torch.manual_seed(0)
    rows = PRESETS[preset]["context_rows"]
    if model_kind(preset) == "flat":
        return ForecastPipeline(GPT(model_config_for(preset, tok.vocab_size, tok.tokens_per_row, rows)), tok), builder
    names = feature_names(list(tok.columns))
    feats = features_for_history(panel[list(tok.columns)], yoy_index_levels(builder))
    norm = InputNormalization.fit(feats, panel.index, names, panel.index[-1])
    cfg = model_config_for(preset, tok.vocab_size, tok.tokens_per_row, rows, n_features=len(names))
    return ForecastPipeline(DayGPT(cfg), tok, inputs=(names, norm)), builder


def ratio_inputs(pipe, builder, panel, n_paths: int, horizon: int):
    """(sampler, prompt ids, prompt features or None) for the KV/reference ratio, as ``predict`` builds them."""
    from data_sources.calendar import business_days_after
    from forecaster.market.features import model_frame
    from forecaster.market.inputs import yoy_index_levels

    need = pipe.prompt_rows(len(panel))
    prompt = torch.from_numpy(pipe.tokenizer.encode(model_frame(panel[pipe.series]).iloc[-need:]))
    if not pipe.is_day:
        return pipe.sampler, prompt.reshape(-1), None
    last = {c: float(panel[c].iloc[-1]) for c in pipe.series}
    dates = business_days_after(panel.index[-1], horizon)
    sampler, feats, _ = pipe.day_sampling(panel[pipe.series], yoy_index_levels(builder), last, n_paths, dates, need)
    return sampler, prompt, None if feats is None else torch.from_numpy(feats)


def agreement(fast: torch.Tensor, ref: torch.Tensor) -> str:
    """How many paths are token-for-token identical, and where the others first differ.

    The two samplers compute the same logits in a different order (cached attention over
    one new token against a full causal pass), so they agree to about 1e-6; a draw whose
    uniform falls that close to a bin edge can differ, and that path then diverges."""
    fast, ref = fast.reshape(fast.size(0), -1), ref.reshape(ref.size(0), -1)
    same = (fast == ref).all(dim=1)
    text = f"identical paths {int(same.sum())}/{fast.size(0)}"
    if not bool(same.all()):
        first = [int(torch.nonzero(fast[i] != ref[i])[0]) for i in torch.nonzero(~same).flatten().tolist()]
        text += f" (the others first differ at token {min(first):,} to {max(first):,} of {fast.size(1):,})"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None)
    parser.add_argument("--preset", default="small", help="model shape without --run: small (flat) or day-small")
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--horizon", type=int, default=250)
    parser.add_argument("--ref-paths", default="8,64", help="comma-separated batch sizes for the ratio")
    parser.add_argument("--ref-horizon", type=int, default=30)
    parser.add_argument("--as-of", default="2019-12-31")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))

    pipe, builder = build_pipeline(args.run, args.preset)
    panel = builder.build(args.as_of)
    R = pipe.tokenizer.tokens_per_row
    window = pipe.model.config.context_rows if pipe.is_day else pipe.sampler.window_rows
    print(f"model: {'day-level' if pipe.is_day else 'flat'}, {pipe.model.num_params():,} parameters, {R} tokens/row, "
          f"context {window} rows, vocabulary {pipe.model.config.vocab_size:,}; torch threads {torch.get_num_threads()}")

    # 1. KV cache vs reference on the same paths
    h = args.ref_horizon
    for n in [int(x) for x in args.ref_paths.split(",") if int(x) > 0]:  # --ref-paths 0 skips the ratio
        sampler, prompt, feats = ratio_inputs(pipe, builder, panel, n, h)
        kw = {} if feats is None else {"features": feats}
        t0 = time.perf_counter()
        fast = sampler.sample(prompt, n, h, torch.Generator().manual_seed(0), **kw)
        t_fast = time.perf_counter() - t0
        sampler, prompt, feats = ratio_inputs(pipe, builder, panel, n, h)  # a fresh feature state for the reference
        kw = {} if feats is None else {"features": feats}
        t0 = time.perf_counter()
        ref = sampler.sample_reference(prompt, n, h, torch.Generator().manual_seed(0), **kw)
        t_ref = time.perf_counter() - t0
        tokens = n * h * R
        print(f"{n} paths x {h} days ({tokens:,} tokens): KV cache {t_fast:.2f} s ({tokens / t_fast:,.0f} tok/s), "
              f"reference {t_ref:.2f} s ({tokens / t_ref:,.0f} tok/s); ratio {t_ref / t_fast:.1f}x; "
              f"{agreement(fast, ref)}", flush=True)

    # 2. a full forecast (--paths 0 skips it)
    if args.paths <= 0:
        return
    t0 = time.perf_counter()
    fc = pipe.predict(builder, args.as_of, n_paths=args.paths, horizon=args.horizon, seed=0)
    wall = time.perf_counter() - t0
    print(f"forecast {args.paths} paths x {args.horizon} days x {len(fc.series)} series: {wall:.1f} s "
          f"({args.paths * args.horizon * R / wall:,.0f} tok/s); finite values {np.isfinite(fc.paths).mean():.3f}")


if __name__ == "__main__":
    main()
