"""Helpers shared by the commands: error reporting, option parsing, consoles."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_VENUE_OR_DATA, EXIT_USAGE, EXIT_NOT_ROUTABLE = 0, 1, 2, 3


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise."""
    console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
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
