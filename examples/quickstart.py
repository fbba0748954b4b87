"""The whole cycle from Python: train a run, forecast joint paths, read quantiles and probabilities,
stress a scenario, plot, and backtest against the baselines.

    python examples/quickstart.py [WORKDIR]

It uses the embedded offline data and a tiny model so it runs in well under a minute
on a laptop CPU (CI runs it). For a real model use ``preset="small"`` and a
``max_minutes`` budget; see the README.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import forecaster
from forecaster import ForecastPipeline, Scenario
from forecaster.market.scenario import constraint_from_dict


def main(workdir: Path) -> None:
    run = workdir / "runs" / "tiny"

    # 1. Train on data published up to the end of 2017 (resumes if run again).
    forecaster.train("embedded", run, as_of="2017-12-29", preset="tiny", max_steps=150, log=print)

    # 2. Forecast 64 joint paths of 63 business days from the end of 2018, from the run's own data.
    pipe = ForecastPipeline.from_run(run)
    fc = pipe.predict(as_of="2018-12-31", n_paths=64, horizon=63, seed=0)
    print(f"{fc.n_paths} paths x {fc.horizon} days of {', '.join(fc.series)} after {fc.as_of.date()}")
    print("90% quantile at 21 and 63 days:\n", fc.quantile(0.9).iloc[[20, 62]].round(2).to_string())
    print(f"P(VIX > 30 at any time in 63 days) = {fc.probability('VIX', '>', 30, anytime=True):.2f}")

    # 3. A stress scenario: VIX fixed at 40 for the first 10 days; the other series respond.
    shock = Scenario("vix-40", [constraint_from_dict({"series": "VIX", "level": 40, "days": "1-10"}, "example")])
    stressed = pipe.predict(as_of="2018-12-31", n_paths=64, horizon=63, seed=0, scenario=shock)
    for name in ("SPX", "VIX"):
        print(f"{name} median at 10 days: base {fc.median()[name].iloc[9]:.1f}, "
              f"VIX-40 {stressed.median()[name].iloc[9]:.1f}")

    # 4. A plotly figure (fig.show() in a notebook, or write it to a file).
    fig = fc.plot("SPX", n_sample_paths=5)
    fig.write_html(workdir / "spx_fan.html", include_plotlyjs="cdn")

    # 5. Backtest: two monthly origins in 2018, the GPT against a random walk.
    result = forecaster.backtest(run, workdir / "backtests" / "2018", start="2018-01-01", end="2018-02-28",
                                 n_paths=16, horizon=21, baselines=["random_walk"])
    print(f"backtest of {len(result.origins)} origins -> {result.report}")
    print(result.skill[["name", "horizon", "baseline", "skill"]].head().to_string(index=False))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
