"""Helpers shared by the commands: error reporting, option parsing, consoles."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

EXIT_OK, EXIT_VENUE_OR_DATA, EXIT_USAGE, EXIT_NOT_ROUTABLE = 0, 1, 2, 3


FULL_WIDTH = 10_000  # "no limit": lines of a pipe or a log are never wrapped or cut


def output_width(stream: TextIO) -> int | None:
    """The width to lay out for: the terminal's; $COLUMNS when set; else no limit.

    A pipe or a log file gets full-width lines (nothing is cut); a terminal, or an explicit
    COLUMNS, gets tables that fit (see render.print_table).
    """
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if stream.isatty():
        return None  # rich asks the terminal
    return FULL_WIDTH


def console(stderr: bool = False) -> Console:
    """THE console every command prints through.

    `markup=False`: text is printed as it is — a symbol `[/x]`, a venue `[binance]` or an
    error message is never read as rich markup (styles are applied with `styled`).
    """
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(
        stderr=stderr,
        highlight=False,
        soft_wrap=False,
        markup=False,
        emoji=False,
        width=output_width(stream),
    )


def styled(*parts: str | tuple[str, str]) -> Text:
    """Literal text with styles: `styled(("note:", "yellow"), " ", message)`; no markup."""
    from rich.text import Text

    return Text.assemble(*parts)


def note(err: Console, message: str, label: str = "note:") -> None:
    """`note: message` on the diagnostics console (label in yellow)."""
    err.print(styled((label, "yellow"), " ", message))


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise."""
    console(stderr=True).print(styled(("error:", "bold red"), " ", message))
    return typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn liquidroute errors (and interrupts) into one line on stderr and an exit code.

    Set LIQUIDROUTE_DEBUG=1 to see tracebacks of unexpected errors.
    """
    from liquidroute.errors import LiquidrouteError

    try:
        yield
    except LiquidrouteError as exc:
        raise fail(str(exc), exc.exit_code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if os.environ.get("LIQUIDROUTE_DEBUG"):
            raise
        from liquidroute.errors import redact

        raise fail(
            f"unexpected {type(exc).__name__}: {redact(exc)} (set LIQUIDROUTE_DEBUG=1 for details)",
            1,
        ) from None


def clean_floats(value: Any, digits: int = 15) -> Any:
    """Floats at `digits` significant digits, recursively: 999.9999999999999 -> 1000.0.

    Float noise from summing levels is below 1e-15 relative; no venue's lot or tick is that
    fine, so nothing meaningful is lost.
    """
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: clean_floats(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_floats(v, digits) for v in value]
    return value


def echo_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout, float noise removed (see `clean_floats`)."""
    import json

    typer.echo(json.dumps(clean_floats(value), indent=2))


def parse_pairs(values: list[str] | None, option: str) -> dict[str, float]:
    """`["okx=0.001", "binance=0.0008"]` -> {"okx": 0.001, ...}; clear errors otherwise."""
    from liquidroute.errors import InvalidInputError

    out: dict[str, float] = {}
    for item in values or []:
        for part in item.split(","):
            name, sep, raw = part.partition("=")
            name = name.strip()
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not sep or not name or not math.isfinite(value):
                raise InvalidInputError(
                    f"{option} takes VENUE=NUMBER (e.g. {option} okx=0.001), got {part!r}"
                )
            out[name] = value
    return out


def parse_venue_list(value: str | None) -> list[str]:
    return [v.strip().lower() for v in (value or "").split(",") if v.strip()]


def parse_time_ms(value: str, option: str = "--at") -> float:
    """ISO-8601 (UTC unless an offset is given) or epoch ms -> epoch ms (lazy import)."""
    from liquidroute.backtest.data import parse_time_ms as parse

    return parse(value, option)
