"""The typer application: one module per command (group), registered here."""

from __future__ import annotations

import typer

from liquidroute.cli import backtest, convert, execute, quote, serve, venues

app = typer.Typer(
    name="liquidroute",
    help=(
        "Provably optimal smart order routing across crypto venues.\n\n"
        "Splits an order over several venues' order books so that the total cost, taker "
        "fees included, is the least possible, and shows what it saves against simple "
        "strategies. Try: liquidroute quote BTC/USDT sell 50 --sample"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.command(name="quote")(quote.quote)
app.command(name="convert")(convert.convert)
app.command(name="execute")(execute.execute)
app.command(name="resume")(execute.resume)
app.command(name="orders")(execute.orders)
app.command(name="venues")(venues.venues)
app.command(name="backtest")(backtest.backtest)
app.command(name="record")(backtest.record)
app.command(name="serve")(serve.serve)
app.add_typer(backtest.data_app, name="data")
