"""One day ahead, teacher-forced: is a day-level run's next-day distribution right where its paths go wrong? (issue 14)

    OMP_NUM_THREADS=2 python benchmarks/bench_onestep.py --run /tmp/runs/dayN --data tests/fixtures/shared_data.yaml
    python benchmarks/bench_onestep.py --run RUN --series SPX --series VIX --stride 2 --through 2019-12-31

For every business day ``d`` of the panel (every ``--stride``-th, from the first day with a
full context), the model reads the real rows and input features of the ``context_rows``
days before ``d`` and the real tokens of ``d``'s earlier slots, and gives the distribution
of each ``--series``' token on ``d`` (its slot's softmax over the slot's valid ids, each id
at the value it decodes to). The table compares, per period and per state of the day before,
what the model expects with what happened:

- mean: the mean over days of the predicted mean, against the mean of the real values;
- rms std: the root-mean-square of the predicted std, against the std of the real values
  (over days, the total variance is the mean conditional variance plus the variance of the
  conditional means, so the predicted figure is the lower one by that second term);
- tails: the mean predicted probability beyond a threshold (``--tail SERIES=THRESHOLD``;
  negative: below), against the share of real days beyond it.

Values are in the run's modeling terms (log returns in %, the run's transform for a series
it chose one for). A series later in the row is conditioned on the real values of the
series before it on the same day (the within-day decoder's order): VIX after SPX, so its
std is the part SPX does not explain. Periods: the run's training days, its validation
days, and the days after its data (read from the panel as of ``--through``; no weight saw
them). States: all days, and the day before's VIX below 13 or above 25.

A measurement: it exits 0 whatever it finds. A one-day distribution that is right while the
250-day paths drift says the error compounds along sampled paths, not in the fit.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from data_sources.panel import PanelBuilder
from forecaster.market.features import model_frame
from forecaster.market.inputs import features_for_history, yoy_index_levels
from forecaster.market.pipeline import ForecastPipeline

DEFAULT_TAILS = {"SPX": -2.0, "VIX": 10.0}
STATES = (("all", None), ("VIX<13 before", lambda v: v < 13), ("VIX>25 before", lambda v: v > 25))


def slot_values(tok, series: str) -> tuple[int, np.ndarray, np.ndarray]:
    """The slot of a one-slot ``series``, its valid ids and the value each decodes to."""
    sl = tok.column_slots(series)
    if sl.stop - sl.start != 1:
        raise SystemExit(f"--series {series}: it takes {sl.stop - sl.start} slots; this benchmark reads one-slot series")
    valid = tok.valid_mask()  # (R, V)
    ids = np.flatnonzero(valid[sl.start])
    rows = np.tile(valid.argmax(axis=1), (len(ids), 1)).astype(np.int64)  # any valid id elsewhere: a row decodes column by column
    rows[:, sl.start] = ids
    values = tok.decode(rows)[series].to_numpy(dtype=np.float64)
    keep = np.isfinite(values)  # the missing-value id has no value
    return sl.start, ids[keep], values[keep]


def one_step(pipe: ForecastPipeline, builder: PanelBuilder, through: pd.Timestamp, series: list[str],
             tails: dict[str, float], stride: int = 1, batch: int = 32) -> pd.DataFrame:
    """A row per day: each series' predicted mean, std and tail probability, and its real value."""
    model, tok = pipe.model.eval(), pipe.tokenizer
    levels = yoy_index_levels(builder)
    panel = builder.build(through)[pipe.series]
    frame = model_frame(panel, pipe.transforms, index_levels=levels).iloc[1:]
    ids = torch.from_numpy(tok.encode(frame))
    feats = torch.from_numpy(pipe.inputs[1].apply(features_for_history(panel, levels))[1:].astype(np.float32))
    ctx = model.config.context_rows
    slots = {s: slot_values(tok, s) for s in series}
    days = np.arange(ctx, len(frame), stride)
    out = []
    with torch.no_grad():
        for i in range(0, len(days), batch):
            ends = days[i:i + batch]
            win = torch.stack([torch.arange(e - ctx, e + 1) for e in ends])  # (B, ctx + 1) row indices
            logits, _ = model(ids[win], feats[win], targets=False)
            last = logits[:, -1].float()  # (B, R, V): the distribution of day e's tokens
            for k, e in enumerate(ends):
                row = {"date": frame.index[e]}
                for s, (slot, valid, values) in slots.items():
                    p = torch.softmax(last[k, slot, torch.from_numpy(valid)], -1).numpy().astype(np.float64)
                    p /= p.sum()
                    mean = float(p @ values)
                    t = tails[s]
                    row |= {f"{s}.mean": mean, f"{s}.std": float(np.sqrt(max(p @ values ** 2 - mean ** 2, 0.0))),
                            f"{s}.tail": float(p[values < t].sum() if t < 0 else p[values > t].sum()),
                            f"{s}.real": float(frame[s].iloc[e])}
                out.append(row)
    df = pd.DataFrame(out).set_index("date")
    df["VIX.before"] = panel["VIX"].shift(1).reindex(df.index).to_numpy() if "VIX" in panel else np.nan
    return df


def summary(df: pd.DataFrame, info: dict, series: list[str], tails: dict[str, float]) -> list[str]:
    """The markdown table (module docstring)."""
    val = pd.Timestamp(info["val_start"]) if info.get("val_start") else None
    end = pd.Timestamp(info["last_date"])
    periods = [("training days", df.index < val if val is not None else df.index <= end)]
    if val is not None:
        periods.append(("validation days", (df.index >= val) & (df.index <= end)))
    periods.append(("after the data", df.index > end))
    head = "| period | state | days | " + " | ".join(
        f"{s} mean | {s} rms std | {s} P({'<' if tails[s] < 0 else '>'} {tails[s]:g})" for s in series) + " |"
    lines = [head, "|" + "---|" * (3 + 3 * len(series))]
    for (pname, pmask), (sname, cond) in ((p, s) for p in periods for s in STATES):
        m = pmask & (cond(df["VIX.before"].to_numpy()) if cond is not None else True)
        d = df[m]
        if not len(d):
            continue
        cells = []
        for s in series:
            real = d[f"{s}.real"].dropna()
            t = tails[s]
            share = float((real < t).mean() if t < 0 else (real > t).mean())
            cells += [f"{d[f'{s}.mean'].mean():+.3f} / {real.mean():+.3f}",
                      f"{np.sqrt((d[f'{s}.std'] ** 2).mean()):.2f} / {real.std():.2f}",
                      f"{d[f'{s}.tail'].mean():.4f} / {share:.4f}"]
        lines.append(f"| {pname} | {sname} | {len(d):,} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="A day-level run folder.")
    parser.add_argument("--data", default="tests/fixtures/shared_data.yaml", help="Data spec of the panel.")
    parser.add_argument("--series", action="append", default=None, help="Series to read (default SPX and VIX).")
    parser.add_argument("--tail", action="append", default=[], help="SERIES=THRESHOLD (negative: the share below).")
    parser.add_argument("--through", default="2019-12-31", help="The panel's as-of date (days after the run's data: out of sample).")
    parser.add_argument("--stride", type=int, default=1, help="Every N-th day.")
    parser.add_argument("--csv", default=None, help="Also write the per-day table.")
    args = parser.parse_args()
    series = args.series or ["SPX", "VIX"]
    tails = dict(DEFAULT_TAILS)
    for item in args.tail:
        name, _, value = item.partition("=")
        tails[name] = float(value)
    missing = [s for s in series if s not in tails]
    if missing:
        raise SystemExit(f"--tail: give a threshold for {', '.join(missing)} (e.g. --tail {missing[0]}=-2)")
    t0 = time.perf_counter()
    pipe = ForecastPipeline.from_run(args.run)
    if pipe.inputs is None:
        raise SystemExit(f"--run {args.run}: not a day-level run (this benchmark reads the day model's inputs)")
    builder = PanelBuilder(args.data, series=pipe.series, start=pipe.info.get("start") or "1990-01-01")
    df = one_step(pipe, builder, pd.Timestamp(args.through), series, tails, stride=args.stride)
    if args.csv:
        df.to_csv(args.csv)
    print(f"run {args.run}: each cell is predicted / real, one day ahead, teacher-forced")
    print("\n".join(summary(df, pipe.info, series, tails)))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
