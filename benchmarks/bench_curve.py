"""The yield curve's co-movement and moves from one origin: paths with and without the run's tilts, against history.

    python benchmarks/bench_curve.py --run RUN --data tests/fixtures/shared_data.yaml --temperature 0.9
    python benchmarks/bench_curve.py --run RUN --origin 2019-12-31 --series UST2Y,UST5Y,UST10Y --near 0.25

Samples ``--paths`` x ``--horizon`` days from ``--origin`` with the run, once without its
drift tilts (``drift.json``) and once with them, and prints, for the daily changes (in
points) of ``--series``: the correlation of every pair and each series' standard deviation.
The history rows are every day to ``--history-end`` (default: the run's as-of date), and
the days after one on which the first series stood within ``--near`` of its level at the
origin (history from the origin's state). A measurement: it exits 0 whatever it finds.
docs/PERFORMANCE.md ("the last levers") has the figures for the README's run.
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd


def changes(levels: np.ndarray, origin: float) -> np.ndarray:
    """Daily changes of ``(paths, days)`` level paths from the origin's level, pooled over paths."""
    full = np.concatenate([np.full((levels.shape[0], 1), origin), levels], axis=1)
    return np.diff(full, axis=1).ravel()


def row(label: str, moves: dict[str, np.ndarray]) -> str:
    names = list(moves)
    ok = np.all(np.isfinite(np.stack([moves[n] for n in names])), axis=0)
    corr = [np.corrcoef(moves[a][ok], moves[b][ok])[0, 1] for a, b in itertools.combinations(names, 2)]
    return f"| {label} | " + " | ".join(f"{c:.2f}" for c in corr) + " | " + " | ".join(
        f"{moves[n][ok].std():.4f}" for n in names) + " |"


def main(argv=None) -> int:
    from forecaster.core.sampler import SamplingConfig
    from forecaster.market.pipeline import ForecastPipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="Trained run folder.")
    parser.add_argument("--data", default=None, help="Data spec (default: the run's own).")
    parser.add_argument("--origin", default="2021-12-31")
    parser.add_argument("--series", default="UST2Y,UST5Y,UST10Y", help="Comma-separated; the first sets --near.")
    parser.add_argument("--near", type=float, default=0.25, help="History from the origin's state: the first "
                        "series within this of its origin level.")
    parser.add_argument("--history-end", default=None, help="Last day of history (default: the run's as-of date).")
    parser.add_argument("--paths", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=None, help="Default: the run's calibrated one.")
    args = parser.parse_args(argv)

    pipe = ForecastPipeline.from_run(args.run)
    names = [s.strip() for s in args.series.split(",") if s.strip()]
    unknown = [n for n in names if n not in pipe.series]
    if len(names) < 2 or unknown:
        parser.error(f"--series needs two or more of the run's series ({', '.join(pipe.series)}); "
                     f"not modeled: {', '.join(unknown) or '-'}")
    temperature = args.temperature if args.temperature is not None else (
        pipe.calibration.temperature if pipe.calibration is not None else 1.0)
    builder = pipe.panel_builder(args.data)
    panel = builder.build(args.origin)[pipe.series]
    origin = panel.index[-1]
    pairs = [f"{a} × {b}" for a, b in itertools.combinations(names, 2)]
    print(f"{args.run} from {origin.date()}: {args.paths} paths x {args.horizon} days at temperature {temperature:g}; "
          "daily changes in points")
    print("| | " + " | ".join(f"corr {p}" for p in pairs) + " | " + " | ".join(f"std {n}" for n in names) + " |")
    print("|---" * (1 + len(pairs) + len(names)) + "|")
    end = pd.Timestamp(args.history_end or pipe.info["last_date"])
    hist = builder.build(end)[names].dropna()
    moves = hist.diff().iloc[1:]
    print(row(f"history to {end.date()}", {n: moves[n].to_numpy() for n in names}))
    level = float(panel[names[0]].iloc[-1])
    near = (hist[names[0]].shift(1).iloc[1:] - level).abs() <= args.near
    print(row(f"history, days after {names[0]} within {args.near:g} of {level:.2f}",
              {n: moves[n].to_numpy()[near.to_numpy()] for n in names}))
    for drift in (False, True):
        if drift and pipe.drift is None:
            print("| paths, with tilts | (the run has no drift.json) |")
            continue
        fc = pipe.predict(panel, as_of=origin, n_paths=args.paths, horizon=args.horizon, seed=args.seed,
                          sampling=SamplingConfig(temperature), drift=drift)
        label = "paths, with the run's tilts" if drift else "paths, without tilts"
        print(row(label, {n: changes(fc.paths[:, :, fc.series.index(n)], float(panel[n].iloc[-1])) for n in names}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
