"""`liquidroute quote ... --watch`: the optimal split on live books, redrawn as it changes.

The venues keep their books by websocket (`venues.live.LiveVenue`; polled where ccxt.pro
cannot stream, said in the status table). The split is redrawn whenever the optimum
changes (a rich Live table) and the book status every second, until Ctrl-C (exit 0).
With --json, one JSON quote per line (NDJSON) each time the optimum changes.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import typer

from liquidroute.cli.common import EXIT_USAGE, fail, parse_venue_list

if TYPE_CHECKING:
    from rich.console import RenderableType

    from liquidroute.model import Quote
    from liquidroute.venues.live import BookStatus, LiveVenue


def status_table(statuses: Sequence[BookStatus]) -> RenderableType:
    """Per venue: how its book is kept (websocket / polling), state, age, sequence, counts."""
    from rich.table import Table

    table = Table(title="Live books", title_justify="left")
    for name in ("Venue", "Mode", "State", "Age (s)", "Nonce", "Updates", "Resyncs", "Reconn."):
        table.add_column(name, justify="left" if name in ("Venue", "Mode", "State") else "right")
    colour = {"live": "green", "stale": "yellow"}
    for s in statuses:
        state = f"[{colour.get(s.state, 'red')}]{s.state}[/]"
        table.add_row(
            s.venue,
            s.mode,
            state if not s.error or s.state == "live" else f"{state} {s.error[:60]}",
            "—" if s.age_s is None else f"{s.age_s:.1f}",
            "—" if s.nonce is None else str(s.nonce),
            str(s.updates),
            str(s.resyncs),
            str(s.reconnects),
        )
    return table


def screen(quote: Quote | None, statuses: Sequence[BookStatus]) -> RenderableType:
    """The quote (as `quote` prints it) above the live book status."""
    from rich.console import Console, Group
    from rich.text import Text

    from liquidroute.cli.render import render_diagnostics, render_quote

    if quote is None:
        body: RenderableType = Text("waiting for a routable book ...")
    else:
        buffer = io.StringIO()
        out = Console(file=buffer, force_terminal=True, width=110, highlight=False)
        render_quote(quote, out)
        render_diagnostics(quote, out)
        body = Text.from_ansi(buffer.getvalue())
    return Group(body, status_table(statuses))


async def run_watch(
    venues: Sequence[LiveVenue],
    symbol: str,
    side: str,
    amount: float,
    *,
    router: Mapping[str, Any],
    options: Mapping[str, Any],
    json_out: bool = False,
    max_updates: int | None = None,
) -> int:
    """Stream quotes until interrupted (or `max_updates` quotes); returns the count."""
    from liquidroute.router.router import Router

    def statuses() -> list[BookStatus]:
        return [s for v in venues for s in v.statuses()]

    count = 0
    async with Router(list(venues), **router) as live_router:
        await live_router.start()
        stream = live_router.watch(
            symbol, side, amount, min_interval_s=0.0 if json_out else 0.25, **options
        )
        if json_out:
            async for quote in stream:
                typer.echo(json.dumps(quote.to_dict()))
                count += 1
                if max_updates is not None and count >= max_updates:
                    break
            return count

        from rich.live import Live

        last: Quote | None = None
        with Live(screen(None, statuses()), refresh_per_second=4) as display:

            async def tick() -> None:
                while True:
                    await asyncio.sleep(1.0)
                    display.update(screen(last, statuses()))

            ticker = asyncio.create_task(tick())
            try:
                async for quote in stream:
                    last = quote
                    display.update(screen(last, statuses()))
                    count += 1
                    if max_updates is not None and count >= max_updates:
                        break
            finally:
                ticker.cancel()
    return count


def watch_quote(
    venues: str | None,
    symbol: str,
    side: str,
    amount: float,
    *,
    other_source: bool,
    router: Mapping[str, Any],
    options: Mapping[str, Any],
    max_age_s: float,
    json_out: bool = False,
) -> None:
    """The `--watch` branch of `quote`: live books for --venues, quotes until Ctrl-C."""
    from liquidroute.venues.live import live_venue_from_spec

    names = parse_venue_list(venues)
    if other_source or not names:
        raise fail(
            "--watch keeps live books by websocket: use it with --venues a,b,c "
            "(not --sample or --books)",
            EXIT_USAGE,
        )
    if not max_age_s > 0:
        raise fail("--watch needs --max-age > 0 (seconds a book may go without updates)")
    live = [live_venue_from_spec(spec, [symbol], max_age_s=max_age_s) for spec in names]
    try:
        asyncio.run(
            run_watch(live, symbol, side, amount, router=router, options=options, json_out=json_out)
        )
    except KeyboardInterrupt:
        return  # Ctrl-C is how a watch ends
