"""`liquidroute quote SYMBOL SIDE AMOUNT`: the optimal split, printed or as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from liquidroute.cli.common import (
    EXIT_NOT_ROUTABLE,
    EXIT_USAGE,
    console,
    fail,
    parse_pairs,
    parse_time_ms,
    parse_venue_list,
    reported_errors,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from liquidroute.router.router import Router
    from liquidroute.venues.base import Venue

SOURCES = "Sources (pick one)"
ROUTING = "Routing"
GUARD = "Guard"


def build_router(
    venues: str | None,
    sample: bool,
    books: list[Path] | None,
    at: str | None,
    *,
    guard: bool,
    max_age_s: float,
    max_deviation_bps: float,
    timeout_s: float,
    depth: int | None,
) -> Router:
    """A Router over exactly one source: live ccxt venues, the sample, or recorded files."""
    from liquidroute.router.router import Router

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

    def make(sources: Sequence[Venue], label: str) -> Router:
        return Router(
            sources,
            guard=guard,
            max_age_ms=max_age_s * 1e3,
            max_deviation_bps=max_deviation_bps,
            timeout_s=timeout_s,
            depth=depth,
            source=label,
        )

    if sample:
        from liquidroute.venues.sample import SAMPLE_NOTE, sample_venues

        return make(sample_venues(), SAMPLE_NOTE)
    if books:
        at_ms = parse_time_ms(at) if at is not None else None
        from liquidroute.venues.recorded import RecordedVenue

        recorded = [RecordedVenue(path, at=at_ms) for path in books]
        return make(recorded, "recorded books: " + ", ".join(p.name for p in books))
    names = parse_venue_list(venues)
    if not names:
        raise fail("--venues needs at least one venue id, e.g. --venues binance,okx", EXIT_USAGE)
    from liquidroute.venues.ccxt_venue import CcxtVenue

    live = [CcxtVenue(name, timeout_ms=int(timeout_s * 1e3)) for name in names]
    return make(live, "live order books (ccxt)")


def quote(
    symbol: Annotated[str, typer.Argument(help="Unified symbol, e.g. BTC/USDT.")],
    side: Annotated[str, typer.Argument(help="buy or sell.")],
    amount: Annotated[
        str, typer.Argument(help="Base amount (e.g. 2.5 BTC); quote amount with --spend.")
    ],
    venues: Annotated[
        str | None,
        typer.Option(
            help="Live venues, comma-separated ccxt ids: binance,okx,bybit.",
            rich_help_panel=SOURCES,
        ),
    ] = None,
    sample: Annotated[
        bool,
        typer.Option(
            "--sample",
            help="Route over the bundled real recorded books (offline).",
            rich_help_panel=SOURCES,
        ),
    ] = False,
    books: Annotated[
        list[Path] | None,
        typer.Option(
            "--books",
            help="A tardis incremental_book_L2 CSV(.gz); repeat per venue.",
            rich_help_panel=SOURCES,
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="With --books: replay each file to this time (ISO-8601 UTC or epoch "
            "ms, vs. arrival time). Default: the end of each file.",
            rich_help_panel=SOURCES,
        ),
    ] = None,
    spend: Annotated[
        bool,
        typer.Option(
            "--spend",
            help="AMOUNT is in quote currency: spend it (buy) or receive it (sell).",
            rich_help_panel=ROUTING,
        ),
    ] = False,
    fee: Annotated[
        list[str] | None,
        typer.Option(
            help="Override a taker fee: VENUE=RATE (0.001 = 10 bps); repeatable.",
            rich_help_panel=ROUTING,
        ),
    ] = None,
    cap: Annotated[
        list[str] | None,
        typer.Option(
            help="Max base amount on a venue: VENUE=AMOUNT; repeatable.", rich_help_panel=ROUTING
        ),
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Levels per side to fetch/use (default: all the venue gives).",
            rich_help_panel=ROUTING,
        ),
    ] = None,
    no_guard: Annotated[
        bool,
        typer.Option("--no-guard", help="Keep stale or outlying venues.", rich_help_panel=GUARD),
    ] = False,
    max_age: Annotated[
        float,
        typer.Option(
            min=0, help="Live books older than this (s) are left out.", rich_help_panel=GUARD
        ),
    ] = 10.0,
    max_deviation_bps: Annotated[
        float,
        typer.Option(
            min=0,
            help="Leave out a venue whose mid is this far from the median of the others' (bps).",
            rich_help_panel=GUARD,
        ),
    ] = 50.0,
    timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Per-venue timeout (s) for live data.", rich_help_panel=GUARD),
    ] = 10.0,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the quote as JSON on stdout (notes on stderr).")
    ] = False,
) -> None:
    """Quote the cheapest split of an order across venues, taker fees included.

    The split is exact: levels are taken across all venues in order of fee-adjusted price,
    so no other split costs less. Beside it: the best single venue, an equal split, a
    depth pro-rata split and a 5 % grid, with what the optimum saves against each.

    Exit codes: 0 ok; 1 venue/data error; 2 bad input; 3 not fully routable.

    Examples:

      liquidroute quote BTC/USDT buy 5 --sample

      liquidroute quote BTC/USDT sell 2 --venues binance,okx,bybit --json

      liquidroute quote BTC/USDT buy 250000 --spend --sample --fee okx=0.0008

      liquidroute quote BTC/USDT buy 1 --books binance.csv.gz --at 2024-08-08T23:58:00Z
    """
    with reported_errors():
        from liquidroute.model import check_amount, check_side, split_symbol

        split_symbol(symbol)
        side_ = check_side(side)
        value = check_amount(amount, "AMOUNT")
        fees = parse_pairs(fee, "--fee")
        caps = parse_pairs(cap, "--cap")
        router = build_router(
            venues,
            sample,
            books,
            at,
            guard=not no_guard,
            max_age_s=max_age,
            max_deviation_bps=max_deviation_bps,
            timeout_s=timeout,
            depth=depth,
        )
        result = router.quote_sync(
            symbol,
            side_,
            value,
            amount_in="quote" if spend else "base",
            caps=caps,
            fees=fees,
        )

    from liquidroute.cli.render import render_diagnostics, render_quote

    err = console(stderr=True)
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        render_quote(result, console())
    render_diagnostics(result, err)
    if not result.complete:
        unit = "quote" if spend else "base"
        raise fail(
            f"insufficient liquidity: the books fill {result.filled:.8g} base, "
            f"{result.unfilled:.8g} {unit} short of {value:.8g}; add venues or reduce AMOUNT",
            EXIT_NOT_ROUTABLE,
        )
