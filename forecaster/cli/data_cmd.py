"""`forecaster data ...`: fetch, show and export the point-in-time panel."""
from __future__ import annotations

from pathlib import Path

import typer

from foundation.errors import UserError
from forecaster.cli.options import (
    AcceptOutliersOpt,
    DateFormatOpt,
    DayfirstOpt,
    DecimalOpt,
    DelimiterOpt,
    ProgressOpt,
    WeekendRowsOpt,
    progress_bar,
    read_options,
)

app = typer.Typer(help="Fetch, inspect and export the point-in-time market/macro panel.", no_args_is_help=True)

DATA_HELP = (
    "Where the data comes from: 'embedded' (offline, ships with the install), 'online' (FRED, Stooq, CBOE), "
    "'store' (the panel saved by `data fetch`), a YAML mapping file for a folder of CSV files, "
    "or a wide panel file (.csv or .parquet)."
)
DataOpt = typer.Option("embedded", "--data", help=DATA_HELP)
AS_OF_HELP = "as it was known at the close of this date (YYYY-MM-DD): no later publication or revision is used."
AsOfOpt = typer.Option(None, "--as-of", help=f"Use the panel {AS_OF_HELP}")
PanelStartOpt = typer.Option("1990-01-01", "--panel-start", help="First date of the panel (YYYY-MM-DD).")
CatalogOpt = typer.Option(None, "--catalog", help="A catalog file (YAML) declaring series the built-in catalog lacks "
                          "(default: catalog.yaml or <data stem>.catalog.yaml beside the data file; see docs/DATA.md).")
SeriesOpt = typer.Option(None, "--series", help="Comma-separated series names (default: every reference series the source has).")
StoreOpt = typer.Option(None, "--store", help="Store folder (default ~/.cache/forecaster/store).")


def parse_date(value: str | None, option: str):
    """A date option, or a one-line error naming the option."""
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise UserError(f"{option} {value!r} is not a date (expected YYYY-MM-DD)") from None


def build(data: str, as_of: str | None, start: str | None, series: str | None, store: Path | None = None,
          progress: bool = False, read=None, catalog: Path | None = None):
    """The panel for the common data options (used by other commands too).

    ``start`` is ``--panel-start``; ``progress`` draws a bar over the series as the source reads them;
    ``read``: the reading flags' ``ReadOptions`` (``read_options``) for a mapping or panel file;
    ``catalog``: ``--catalog`` (the builder's ``catalog`` then holds its series; run the work that
    follows inside ``catalog_scope(builder)``).
    """
    from data_sources.panel import PanelBuilder
    from data_sources.sources import open_source
    from data_sources.store import DEFAULT_STORE, Store

    if data == "store":
        data = str(Store(store or DEFAULT_STORE).panel_path)
        if not Path(data).exists():
            raise UserError(f"no panel in the store ({data}); run `forecaster data fetch` first")
    names = [s.strip() for s in series.split(",") if s.strip()] if series else None
    first = parse_date(start, "--panel-start")
    if read is not None and data in ("embedded", "online", "store"):
        raise UserError(f"the reading options (--dayfirst, --decimal, ...) apply to data files, not --data {data}")
    source = open_source(data, catalog=catalog) if read is None else open_source(data, catalog=catalog, options=read)
    with progress_bar(progress, desc="reading series", unit="series") as bar:  # the reads happen here
        builder = PanelBuilder(_ReadProgress(source, bar), series=names, start=first)
    builder.source = source  # every read is done: the builder keeps the source itself
    return builder, builder.build(parse_date(as_of, "--as-of"))


def catalog_scope(builder_or_catalog):
    """``with catalog_scope(builder):`` the builder's catalog (with its user series) is the one
    ``data_sources.catalog.get`` answers from, for the model, forecasts and backtests that follow."""
    from data_sources import catalog

    cat = getattr(builder_or_catalog, "catalog", builder_or_catalog)
    return catalog.using(cat)


def catalog_for_run(catalog_file: Path | None, data: str | None = None, run: Path | None = None):
    """The catalog of a command that reads a run: the run folder's own ``catalog.yaml`` (where a run
    records its user series), ``--catalog``, and the one beside ``--data`` or the run's data file."""
    from data_sources.catalog import active
    from data_sources.user_catalog import catalog_for, load_catalog

    base = active()
    if run is not None and (Path(run) / "catalog.yaml").is_file():
        base = load_catalog(Path(run) / "catalog.yaml", base)
    if data is None and run is not None:
        from forecaster.market.run import PanelRun

        data = PanelRun(run).data
    return catalog_for(data, explicit=catalog_file, base=base)


class _ReadProgress:
    """A source whose every ``read`` advances ``bar``; anything else is the wrapped source's."""

    def __init__(self, source, bar) -> None:
        self.source, self._bar = source, bar

    def read(self, series: str, start=None, end=None):
        self._bar.set_postfix_str(series, refresh=False)
        frame = self.source.read(series, start, end)
        self._bar.update(1)
        return frame

    def __getattr__(self, name: str):
        return getattr(self.source, name)


@app.command()
def show(
    data: str = DataOpt,
    as_of: str = typer.Option(None, "--as-of", help=f"Show the panel {AS_OF_HELP}"),
    start: str = PanelStartOpt,
    series: str = SeriesOpt,
    dayfirst: bool = DayfirstOpt,
    date_format: str = DateFormatOpt,
    decimal: str = DecimalOpt,
    delimiter: str = DelimiterOpt,
    accept_outliers: bool = AcceptOutliersOpt,
    weekend_rows: str = WeekendRowsOpt,
    catalog: Path = CatalogOpt,
) -> None:
    """Print a summary of the panel: series, first/last date with a value, count, missing, publication rule.

    Then what the source did to the data (a Bloomberg export's columns moved to their release dates),
    the vintages in use, and the series whose values may include revisions published later.
    """
    from rich.console import Console
    from rich.table import Table

    from data_sources.panel import summary

    read = read_options(dayfirst, date_format, decimal, delimiter, accept_outliers, weekend_rows)
    builder, panel = build(data, as_of, start, series, read=read, catalog=catalog)
    table = Table(
        title=f"Panel from {builder.source.name}: {len(panel):,} business days, "
        f"{panel.index[0].date()} .. {panel.index[-1].date()}"
        + (f" (as of {panel.attrs['as_of']})" if panel.attrs.get("as_of") else "")
    )
    for col, justify in [("series", "left"), ("unit", "left"), ("freq", "center"), ("first", "left"), ("last", "left"),
                         ("count", "right"), ("missing", "right"), ("last value", "right"), ("published", "left")]:
        table.add_column(col, justify=justify)
    for row in summary(panel, builder.catalog).itertuples():
        table.add_row(
            row.series, row.unit, row.freq,
            str(row.first.date()) if row.first == row.first else "-",
            str(row.last.date()) if row.last == row.last else "-",
            f"{row.count:,}", f"{row.missing:,}", f"{row.last_value:,.2f}", row.published,
        )  # fmt: skip
    Console(width=160).print(table)
    for line in show_notes(builder):
        typer.echo(line)


def show_notes(builder) -> list[str]:
    """The lines `data show` prints under its table: source notes, user catalogs, vintages, revisions."""
    lines = [f"note: {n}" for n in getattr(builder.source, "notes", ())]
    if builder.catalog.files:
        user = [s for s in builder.series if builder.catalog[s].user is not None and builder.catalog[s].user in builder.catalog.files]
        lines.append(f"catalog: {', '.join(builder.catalog.files)}" + (f" (series {', '.join(user)})" if user else ""))
    for name, vint in builder.vintages.items():
        lines.append(f"vintages: {vint.note(name)}")
    revisable = builder.revisable()
    if revisable:
        lines.append(f"revisions: {', '.join(revisable)} may contain revisions published after the date shown "
                     "(no vintage file; latest estimates, not first releases; see docs/DATA.md)")
    return lines


@app.command()
def fetch(
    data: str = typer.Option("online", "--data", help=DATA_HELP),
    store: Path = StoreOpt,
    start: str = PanelStartOpt,
    series: str = SeriesOpt,
    progress: bool = ProgressOpt,
    dayfirst: bool = DayfirstOpt,
    date_format: str = DateFormatOpt,
    decimal: str = DecimalOpt,
    delimiter: str = DelimiterOpt,
    accept_outliers: bool = AcceptOutliersOpt,
    weekend_rows: str = WeekendRowsOpt,
) -> None:
    """Download (or read) every series, then save raw series and the aligned panel into the store.

    All reads happen before any write, and the new store is written beside the old one and swapped in whole, so a fetch that fails part-way (download or write) leaves the store as it was.
    """
    from data_sources.store import DEFAULT_STORE, Store

    target = Store(store or DEFAULT_STORE)
    target.check_writable()  # a --store that is not a store is refused before the downloads
    read = read_options(dayfirst, date_format, decimal, delimiter, accept_outliers, weekend_rows)
    builder, panel = build(data, None, start, series, store, progress=progress, read=read)
    path = target.save_fetch(builder.raw, panel, builder.source.name, builder.source.describe)
    typer.echo(f"saved {len(builder.raw)} raw series and the panel ({len(panel):,} rows x {panel.shape[1]} series) to {target.root}")
    typer.echo(f"use it with: --data {path}")


@app.command()
def export(
    out: Path = typer.Option(..., "--out", help="Output file: .parquet or .csv (an existing file is replaced atomically; "
                             "a folder or device is refused)."),
    data: str = DataOpt,
    as_of: str = AsOfOpt,
    start: str = PanelStartOpt,
    series: str = SeriesOpt,
    dayfirst: bool = DayfirstOpt,
    date_format: str = DateFormatOpt,
    decimal: str = DecimalOpt,
    delimiter: str = DelimiterOpt,
    accept_outliers: bool = AcceptOutliersOpt,
    weekend_rows: str = WeekendRowsOpt,
    catalog: Path = CatalogOpt,
) -> None:
    """Write the aligned panel to a Parquet or CSV file (atomically). The file can be read back with --data."""
    from foundation.atomic import atomic_path, check_file_target
    from data_sources.sources.files import ALIGNED_MARKER
    from data_sources.store import panel_meta, write_parquet

    check_file_target(out, "--out")  # before the panel is built; atomic_path checks again on writing
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise UserError(f"--out {out}: use a .parquet or .csv file name")
    read = read_options(dayfirst, date_format, decimal, delimiter, accept_outliers, weekend_rows)
    builder, panel = build(data, as_of, start, series, read=read, catalog=catalog)
    if suffix == ".parquet":
        write_parquet(panel, out, panel_meta(panel))
    else:
        with atomic_path(out, "--out") as tmp:
            with open(tmp, "w", newline="") as fh:
                fh.write(ALIGNED_MARKER + "\n")
                panel.to_csv(fh, index_label="date", float_format="%.10g")
    typer.echo(f"wrote {len(panel):,} rows x {panel.shape[1]} series to {out}")
    user = [builder.catalog[s] for s in panel.columns if builder.catalog[s].user is not None]
    if user:  # the file is read back with --data only with its series declared: beside it, found by name
        from foundation.atomic import write_text
        from data_sources.user_catalog import to_yaml

        beside = out.with_name(f"{out.stem}.catalog.yaml")
        write_text(beside, to_yaml(user))
        typer.echo(f"wrote the catalog of {', '.join(s.name for s in user)} to {beside}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
