"""Options shared by the commands that read books, and the venues they select."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from liquidroute.cli.common import EXIT_USAGE, fail, parse_time_ms, parse_venue_list

if TYPE_CHECKING:
    from liquidroute.venues.base import Venue

SOURCES = "Sources (pick one)"
ROUTING = "Routing"
RULES = "Venue rules and limits"
GUARD = "Guard"


def _upper(value: str) -> str:
    return value.strip().upper()


def _lower(value: str) -> str:
    return value.strip().lower()


SymbolArg = Annotated[
    str,
    typer.Argument(
        metavar="SYMBOL",
        help="Unified symbol, any case: BTC/USDT (a perpetual: BTC/USDT:USDT).",
        callback=_upper,
    ),
]
SideArg = Annotated[str, typer.Argument(metavar="SIDE", help="buy or sell.", callback=_lower)]
VenuesOpt = Annotated[
    str | None,
    typer.Option(
        help="Live venues, comma-separated ccxt ids: binance,okx,bybit (NAME=ID for a second "
        "account: sub=binance).",
        rich_help_panel=SOURCES,
    ),
]
SampleOpt = Annotated[
    bool,
    typer.Option(
        "--sample",
        help="The bundled sample, offline: real recorded BTC/USDT books on binance, bybit "
        "and okx (and bybit's BTC/USDT:USDT perpetual) re-centred on one mid; ETH/USDT, "
        "ETH/BTC, USDC/USDT, BTC/USDC and ETH/USDC derived from them.",
        rich_help_panel=SOURCES,
    ),
]
BooksOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--books",
        help="A tardis incremental_book_L2 CSV(.gz); repeat per venue.",
        rich_help_panel=SOURCES,
    ),
]
AtOpt = Annotated[
    str | None,
    typer.Option(
        help="With --books: replay each file to this time (ISO-8601 UTC or epoch ms, vs. "
        "arrival time). Default: the end of each file.",
        rich_help_panel=SOURCES,
    ),
]
FeeOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="Override a taker fee: VENUE=RATE (0.001 = 10 bps); repeatable.",
        rich_help_panel=ROUTING,
    ),
]
DepthOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Levels per side to fetch/use (default: all the venue gives).",
        rich_help_panel=ROUTING,
    ),
]
NoGuardOpt = Annotated[
    bool,
    typer.Option("--no-guard", help="Keep stale or outlying venues.", rich_help_panel=GUARD),
]
MaxAgeOpt = Annotated[
    float,
    typer.Option(min=0, help="Live books older than this (s) are left out.", rich_help_panel=GUARD),
]
MaxDeviationOpt = Annotated[
    float,
    typer.Option(
        min=0,
        help="Leave out a venue whose mid is this far (bps) from the median mid of all venues.",
        rich_help_panel=GUARD,
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(min=0.1, help="Per-venue timeout (s) for live data.", rich_help_panel=GUARD),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout (notes on stderr).")
]


def select_venues(
    venues: str | None,
    sample: bool,
    books: list[Path] | None,
    at: str | None,
    *,
    timeout_s: float,
    symbol: str | None = None,
) -> tuple[list[Venue], str]:
    """Exactly one source -> its venues and a label saying where the books come from.

    With `symbol`, the sample gives only the venues that hold it (an error lists what it
    holds when none does).
    """
    chosen = [
        name for name, on in (("--venues", venues), ("--sample", sample), ("--books", books)) if on
    ]
    if len(chosen) != 1:
        got = f"; got {' and '.join(chosen)}" if chosen else ""
        raise fail(
            "choose exactly one source: --venues a,b,c (live), --sample (bundled recorded "
            f"books) or --books FILE (tardis CSV){got}",
            EXIT_USAGE,
        )
    if at is not None and not books:
        raise fail("--at applies to --books only", EXIT_USAGE)
    if sample:
        from liquidroute.errors import InvalidInputError
        from liquidroute.venues.sample import (
            SAMPLE_NOTE,
            sample_note,
            sample_symbols,
            sample_venues,
        )

        if symbol is None:
            return list(sample_venues()), SAMPLE_NOTE
        held: list[Venue] = list(sample_venues(symbol))
        if not held:
            raise InvalidInputError(
                f"SYMBOL: the sample holds {', '.join(sample_symbols())}, not {symbol}; "
                "pick one of those or use --venues for live books"
            )
        return held, sample_note(symbol)
    if books:
        at_ms = parse_time_ms(at) if at is not None else None
        from liquidroute.venues.recorded import RecordedVenue

        recorded: list[Venue] = [RecordedVenue(path, at=at_ms) for path in books]
        return recorded, "recorded books: " + ", ".join(p.name for p in books)
    names = parse_venue_list(venues)
    if not names:
        raise fail("--venues needs at least one venue id, e.g. --venues binance,okx", EXIT_USAGE)
    from liquidroute.venues.ccxt_venue import venue_from_spec

    live: list[Venue] = [venue_from_spec(spec, timeout_ms=int(timeout_s * 1e3)) for spec in names]
    return live, "live order books (ccxt)"
