"""`forecaster tokenizer ...`: fit the market tokenizer and show what it costs and loses."""
from __future__ import annotations

from pathlib import Path

import typer

from forecaster.cli.data_cmd import AsOfOpt, CatalogOpt, DataOpt, PanelStartOpt, SeriesOpt

app = typer.Typer(help="Fit and inspect the tabular tokenizer of the market panel.", no_args_is_help=True)


def _fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.3g}"


@app.command()
def report(
    data: str = DataOpt,
    as_of: str = AsOfOpt,
    start: str = PanelStartOpt,
    series: str = SeriesOpt,
    save: Path = typer.Option(None, "--save", help="Also write the fitted tokenizer here (JSON)."),
    catalog: Path = CatalogOpt,
) -> None:
    """Fit the market tokenizer on the model frame of the panel and print its precision report.

    Per series: codec, tokens, vocabulary slice, worst-case round-trip error over the fitted range (bound), max/median/mean-signed error on the panel, and clamped values.
    """
    from rich.console import Console
    from rich.table import Table

    from forecaster.cli.data_cmd import build, catalog_scope
    from forecaster.market.features import model_frame
    from forecaster.core.tokenizer import TableTokenizer
    from forecaster.market.tokenizer import market_specs

    builder, panel = build(data, as_of, start, series, catalog=catalog)
    with catalog_scope(builder):  # user series: their declared transforms and codecs
        frame = model_frame(panel)
        tok = TableTokenizer.fit(frame, market_specs(frame))
    rep = tok.report(frame)
    table = Table(
        title=f"Tokenizer for the model frame of {builder.source.name}: {len(frame):,} rows, "
        f"{tok.tokens_per_row} tokens/row, vocabulary {tok.vocab_size:,} (errors in each series' model units)"
    )
    for col, justify in [("series", "left"), ("codec", "left"), ("tokens", "right"), ("vocab", "left"), ("bound", "right"),
                         ("max err", "right"), ("median err", "right"), ("mean signed", "right"), ("values", "right"),
                         ("missing", "right"), ("clamped", "right")]:
        table.add_column(col, justify=justify)
    for name, row in rep.iterrows():
        table.add_row(
            str(name), row.codec, str(row.tokens), row.vocab, _fmt(row.bound), _fmt(row.max_error), _fmt(row.median_error),
            _fmt(row.mean_signed_error), f"{row['values']:,}", f"{row.missing:,}", f"{row.clamped:,}",
        )  # fmt: skip
    Console(width=170).print(table)
    if save is not None:
        tok.save(save)
        typer.echo(f"tokenizer saved to {save} (fingerprint {tok.fingerprint()[:16]})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="tokenizer")
