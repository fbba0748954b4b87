"""forecaster: a generative transformer for US market and macro series, and tabular synthesis.

The Python API, in the style of a forecasting pipeline::

    from forecaster import ForecastPipeline
    pipe = ForecastPipeline.from_run("runs/demo")
    fc = pipe.predict(as_of="2018-12-31", n_paths=200, horizon=250)   # the run's own data by default
    fc.quantile(0.9)            # (horizon, series) DataFrame
    fc.plot("VIX")              # a plotly figure

    import forecaster
    forecaster.train("embedded", "runs/demo", as_of="2017-12-29", preset="small", max_minutes=2)
    forecaster.backtest("runs/demo", "runs/demo/backtests/h1", start="2018-01-01", end="2018-06-30")

The names are imported on first use, so ``import forecaster`` (and the command
line's ``--help``) stays fast and torch is loaded only when a model is.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "ForecastPipeline": "forecaster.market.pipeline",
    "PooledPipeline": "forecaster.market.pool",
    "Forecast": "forecaster.market.forecast",
    "Scenario": "forecaster.market.scenario",
    "SamplingConfig": "forecaster.core.sampler",
    "train": "forecaster.market.api",
    "refit": "forecaster.market.api",
    "backtest": "forecaster.market.api",
    "BacktestResult": "forecaster.market.api",
    "calibrate": "forecaster.market.calibration",
    "UserError": "foundation.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'forecaster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
