"""A VIX-40 stress scenario against the base forecast: what the other series do, in numbers and a picture.

The scenario: VIX climbs to 40 over the first 10 business days (a geometric ramp from its
level at the origin, as in February-March 2020) and stays at 40 for 10 more.

    python examples/stress_scenario.py --run runs/day-small --data tests/fixtures/shared_data.yaml \
        --as-of 2019-12-31 --paths 200 --png docs/images/stress-vix40.png

Samples the base forecast and the same forecast under the scenario (the same seed), then
prints, per series, the
median change from the origin at day 5, 20 and 60 in both, and their difference: the
response the model gives to the shock. With ``--png`` it also draws the median and the
10-90 % band of both for four series. This is the README's stress example.
"""
from __future__ import annotations

import argparse

import numpy as np

from forecaster import ForecastPipeline, Scenario
from forecaster.market.scenario import constraint_from_dict
from data_sources import catalog
from forecaster.market.transforms import transform_of

SHOWN = ("SPX", "XLK", "XLF", "VIX", "UST2Y", "UST10Y", "BAA_SPREAD", "WTI", "CORE_CPI_YOY")
PICTURE = ("SPX", "XLF", "UST2Y", "BAA_SPREAD")
DAYS = (5, 20, 60)


def in_percent(name: str) -> bool:
    """Prices (log returns) change in %; mean-reverting levels (VIX, the catalog's ``stationary``) and rates in points."""
    return transform_of(name).name == "log_return" and not catalog.get(name).stationary


def median_change(fc, name: str, day: int) -> float:
    """Median change of ``name`` from the origin to ``day``: % for prices, points (pp) otherwise."""
    x = fc.column(name)[:, day - 1]
    origin = float(fc.history[name].iloc[-1])
    if in_percent(name):
        return float(np.median(100 * (x / origin - 1)))
    return float(np.median(x - origin))


def table(base, stress) -> str:
    head = "| series | unit | " + " | ".join(f"day {d}: base / VIX 40 / response" for d in DAYS) + " |"
    lines = [head, "|" + "---|" * (2 + len(DAYS))]
    for name in [s for s in SHOWN if s in base.series]:
        unit = "%" if in_percent(name) else "pts"
        cells = []
        for d in DAYS:
            b, s = median_change(base, name, d), median_change(stress, name, d)
            cells.append(f"{b:+.2f} / {s:+.2f} / **{s - b:+.2f}**")
        lines.append(f"| {name} | {unit} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def picture(base, stress, path: str) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = [s for s in PICTURE if s in base.series]
    fig = make_subplots(rows=2, cols=2, subplot_titles=names, horizontal_spacing=0.08, vertical_spacing=0.14)
    for i, name in enumerate(names):
        r, c = i // 2 + 1, i % 2 + 1
        hist = base.history[name].iloc[-120:]
        fig.add_trace(go.Scatter(x=hist.index, y=hist.to_numpy(), line=dict(color="#444", width=1.2),
                                 name="history", showlegend=i == 0), row=r, col=c)
        for fc, color, label in ((base, "31,119,180", "base"), (stress, "214,39,40", "VIX to 40 in 10 days")):
            q10, q50, q90 = np.nanquantile(fc.column(name), [0.1, 0.5, 0.9], axis=0)
            fig.add_trace(go.Scatter(x=fc.dates, y=q90, line=dict(width=0), showlegend=False, hoverinfo="skip"),
                          row=r, col=c)
            fig.add_trace(go.Scatter(x=fc.dates, y=q10, fill="tonexty", fillcolor=f"rgba({color},0.18)",
                                     line=dict(width=0), showlegend=False, hoverinfo="skip"), row=r, col=c)
            fig.add_trace(go.Scatter(x=fc.dates, y=q50, line=dict(color=f"rgb({color})", width=2), name=label,
                                     showlegend=i == 0), row=r, col=c)
    fig.update_layout(template="plotly_white", height=620, width=1100, margin=dict(l=40, r=20, t=60, b=40),
                      title=f"Base forecast and VIX rising to 40 in 10 days from {base.as_of.date()} "
                            "(median, 10-90 % band)",
                      legend=dict(orientation="h", y=-0.08))
    fig.write_image(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--data", default=None, help="Data spec (default: the run's own).")
    p.add_argument("--as-of", default="2019-12-31")
    p.add_argument("--paths", type=int, default=200)
    p.add_argument("--horizon", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--png", default=None, help="Also write the picture here.")
    args = p.parse_args()

    pipe = ForecastPipeline.from_run(args.run)
    base = pipe.predict(args.data, args.as_of, n_paths=args.paths, horizon=args.horizon, seed=args.seed)
    vix0 = float(base.history["VIX"].iloc[-1])
    ramp = vix0 * (40 / vix0) ** (np.arange(1, 11) / 10)  # geometric: the same log change each day
    path = [round(float(v), 4) for v in ramp] + [40.0] * 10
    shock = Scenario("vix-40", [constraint_from_dict({"series": "VIX", "path": path, "days": "1-20"}, "--shock")])
    stress = pipe.predict(args.data, args.as_of, n_paths=args.paths, horizon=args.horizon, seed=args.seed,
                          scenario=shock)
    print(f"run {args.run}, origin {base.as_of.date()}, {args.paths} paths, seed {args.seed}; VIX {vix0:.1f} -> 40 "
          f"over days 1-10, held to day 20; median change from the origin (prices in %, others in points); "
          f"resampling: {stress.meta.get('scenario_resampling')}\n")
    print(table(base, stress))
    if args.png:
        picture(base, stress, args.png)
        print(f"\npicture written to {args.png}")


if __name__ == "__main__":
    main()
