"""The typer application: one module per command (group), registered here.

`Group` makes the help read like the docs, for every command at once: real metavars
(`SYMBOL SIDE AMOUNT`, `FILES...`, `--depth N`), no type tags (`<bool>`, `<float range>
[x>=0]`), and a negative AMOUNT answered as bad input instead of `No such option: -1`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import typer

# the click that typer runs on (typer 0.29 vendors its own copy)
from typer._click.core import Command, Context, Parameter
from typer._click.exceptions import NoSuchOption, UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

from liquidroute.cli import backtest, convert, execute, quote, serve, venues

NEGATIVE_NUMBER = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
TYPE_METAVARS = {"int": "N", "float": "NUMBER", "Path": "PATH", "str": "TEXT"}


def _override(obj: object, name: str, method: Callable[..., Any]) -> None:
    """Replace one bound method of one object (the typer/click help hooks used here)."""
    setattr(obj, name, method)


def _argument(param: TyperArgument) -> None:
    metavar = param.metavar or (param.name or "arg").upper()
    if param.nargs != 1 and not metavar.endswith("..."):
        metavar += "..."
    param.metavar = metavar
    usage = metavar if param.required else f"[{metavar}]"
    _override(param, "_usage_display_name", lambda: usage)
    _override(param, "display_type_rich", lambda ctx: None)
    _override(param, "_get_number_range_help_str", lambda: None)


def _option(param: TyperOption) -> None:
    if param.is_flag or param.count:
        metavar = None
    elif param.metavar:
        metavar = param.metavar
    else:
        bare = param.type_descriptor.annotation
        inner = getattr(bare, "__args__", (bare,))[0]
        metavar = TYPE_METAVARS.get(getattr(inner, "__name__", ""), "TEXT")
    _override(param, "display_type_rich", lambda ctx: metavar)
    _override(param, "_get_number_range_help_str", lambda: None)
    default = param.default
    if isinstance(default, str) and "," in default and " " not in default:
        spaced = ", ".join(default.split(","))  # a long list wraps whole, never cut
        _override(param, "_extract_default_help_str", lambda *, ctx: spaced)


def _negative_amount_is_bad_input(command: Command) -> None:
    parse = command.parse_args

    def parse_args(ctx: Context, args: list[str]) -> list[str]:
        negative = [a for a in args if NEGATIVE_NUMBER.fullmatch(a)]  # before parsing eats args
        try:
            return parse(ctx, args)
        except NoSuchOption as exc:
            if negative and NEGATIVE_NUMBER.fullmatch(exc.option_name):
                raise UsageError(
                    f"AMOUNT must be a positive number, got {negative[0]}", ctx
                ) from None
            raise

    _override(command, "parse_args", parse_args)


def _polished_help_option(command: Command) -> None:
    make = command.get_help_option

    def get_help_option(ctx: Context) -> Parameter | None:
        option = make(ctx)
        if isinstance(option, TyperOption):
            _option(option)
        return option

    _override(command, "get_help_option", get_help_option)


def polish(command: Command) -> None:
    """Apply the help and input conventions above to `command` and its subcommands."""
    _polished_help_option(command)
    for param in command.params:
        if isinstance(param, TyperArgument):
            _argument(param)
        elif isinstance(param, TyperOption):
            _option(param)
    if any(isinstance(p, TyperArgument) for p in command.params):
        _negative_amount_is_bad_input(command)
    for sub in getattr(command, "commands", {}).values():
        polish(sub)


class Group(TyperGroup):
    """The root group: polishes every command's help once, when the app is built."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        polish(self)


app = typer.Typer(
    name="liquidroute",
    cls=Group,
    help=(
        "Provably optimal smart order routing across crypto venues.\n\n"
        "Splits an order over several venues' order books so that the total cost, taker "
        "fees included, is the least possible, and shows what it saves against simple "
        "strategies.\n\n"
        "Try: liquidroute quote BTC/USDT sell 50 --sample"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"liquidroute {version('liquidroute')}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Provably optimal smart order routing across crypto venues."""


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
