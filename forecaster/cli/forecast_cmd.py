"""`forecaster forecast` and `forecaster export`: sample joint paths, write scenarios for risk systems.

``--out`` of `forecast` is written by ``forecaster.market.export.save_forecast_dir``
(published whole, kind ``forecast``): an existing folder is replaced only when it
holds a previous forecast.
"""
from __future__ import annotations

from pathlib import Path

import typer

from foundation.errors import UserError
from forecaster.cli.options import (DEVICE_HELP, PoolOpt, parse_pool, ProgressOpt, RunTemperatureOpt, TopKOpt, TopPOpt, progress_bar, set_threads,
                                    threads_option)
from forecaster.market.forecast import MAX_HORIZON, check_horizon, is_legacy_forecast

# the --device of every command that samples (resolved by forecaster.core.device)
def forecast(
    run: Path = typer.Option(..., "--run", help="Run directory made by `forecaster train`."),
    pool: str = PoolOpt,
    as_of: str = typer.Option(..., "--as-of", help="Forecast origin: the model sees only data published by this date."),
    paths: int = typer.Option(200, "--paths", help="Number of joint paths to sample."),
    horizon: int = typer.Option(250, "--horizon", help=f"Business days ahead (1 to {MAX_HORIZON}, i.e. 10 years)."),
    out: Path = typer.Option(..., "--out", help="Output folder: new, empty, or a previous forecast (replaced atomically); "
                             "any other existing folder or file is refused."),
    scenario: Path = typer.Option(None, "--scenario", help="Stress scenario file (YAML or JSON): fixed paths for some series."),
    shock: list[str] = typer.Option(None, "--shock", help="A constraint such as VIX:level=40:days=1-20 or WTI:change_pct=50:days=1-60 (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler: the same seed gives the same paths."),
    data: str = typer.Option(None, "--data", help="Data source (default: the one the run was trained on)."),
    catalog: Path = typer.Option(None, "--catalog", help="Catalog file of the run's user series (default: the one "
                                 "beside the data file)."),
    temperature: float = RunTemperatureOpt,
    top_k: int = TopKOpt,
    top_p: float = TopPOpt,
    threads: int = threads_option(None),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    progress: bool = ProgressOpt,
) -> None:
    """Sample joint paths after the as-of date; write the forecast, quantiles, regimes and exports to --out."""
    from foundation.atomic import check_out_dir
    from forecaster.cli.data_cmd import parse_date
    from forecaster.core.device import resolve_device
    from forecaster.core.sampler import SamplingConfig
    from forecaster.market.export import FORECAST_KIND, save_forecast_dir
    from forecaster.market.pipeline import ForecastPipeline
    from forecaster.market.regimes import regime_table
    from forecaster.market.scenario import Scenario, load_scenario, parse_shock

    origin = parse_date(as_of, "--as-of")
    pool_runs = parse_pool(pool, run)
    check_horizon(horizon)
    check_out_dir(out, FORECAST_KIND, legacy=is_legacy_forecast)  # before any work; checked again on publishing
    if paths < 1 + len(pool_runs):
        raise UserError(f"--paths must be at least {1 + len(pool_runs)} (one per pooled run), got {paths}")
    # refused before the model is loaded; without --temperature the pipeline takes the run's calibrated one
    SamplingConfig(1.0 if temperature is None else temperature, top_k, top_p)
    from forecaster.cli.data_cmd import catalog_for_run, catalog_scope

    user_catalog = catalog_for_run(catalog, data, run)  # the run's user series, if any
    with catalog_scope(user_catalog):  # a scenario may constrain them
        scen = load_scenario(scenario) if scenario else None
        if shock:
            extra = [parse_shock(s) for s in shock]
            scen = Scenario(scen.name if scen else "cli-shock", (scen.constraints if scen else []) + extra)
    dev = resolve_device(device)  # an unusable GPU is refused before the model loads
    set_threads(threads)
    with catalog_scope(user_catalog):
        pipe = ForecastPipeline.from_run(run, device=dev)
        if pool_runs:
            from forecaster.market.pool import PooledPipeline

            pipe = PooledPipeline([pipe, *(ForecastPipeline.from_run(r, device=dev) for r in pool_runs)])
        builder = pipe.panel_builder(data)

        with progress_bar(progress, total=horizon, desc=f"sampling {paths} paths", unit="day") as bar:
            fc = pipe.predict(builder, origin, paths, horizon, seed, scen, temperature=temperature, top_k=top_k,
                              top_p=top_p, progress=lambda done: bar.update(done - bar.n))
        for warning in fc.meta.get("warnings", []):
            typer.echo(f"warning: {warning}", err=True)
        save_forecast_dir(fc, out)
        typer.echo(f"{paths} paths x {horizon} days after {fc.as_of.date()} -> {out}")
        table = regime_table(fc)
        if len(table):
            typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


def export(
    forecast_dir: Path = typer.Option(..., "--forecast", help="A folder written by `forecaster forecast`."),
    out: Path = typer.Option(..., "--out", help="Output file (.parquet or .csv; an existing file is replaced atomically)."),
    fmt: str = typer.Option("long", "--format", help="long (scenario_id, path_id, date, series, value), quantiles, or wide (one column per series)."),
) -> None:
    """Re-export an existing forecast in another format or file type."""
    from forecaster.market.export import check_export_target, export as write
    from forecaster.market.forecast import Forecast, ForecastError

    check_export_target(out, fmt)
    try:
        fc = Forecast.load(forecast_dir)
    except ForecastError:
        raise
    except (OSError, ValueError, KeyError) as exc:  # a file of the folder missing or unreadable
        detail = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ForecastError(f"--forecast {forecast_dir}: cannot read the forecast ({detail})") from None
    write(fc, out, fmt)
    typer.echo(f"wrote {fmt} table of {fc.n_paths} paths x {fc.horizon} days to {out}")


def register(root: typer.Typer) -> None:
    root.command("forecast")(forecast)
    root.command("export")(export)
