"""`liquidroute convert FROM TO AMOUNT`: multi-hop conversion, solved jointly."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from liquidroute.cli.common import (
    console,
    echo_json,
    fail,
    note,
    parse_venue_list,
    reported_errors,
)
from liquidroute.cli.sources import JsonOpt, SampleOpt, TimeoutOpt

if TYPE_CHECKING:
    from rich.console import Console

    from liquidroute.model import DepthSnapshot, GraphQuote, Market

DEFAULT_BRIDGES = "BTC,ETH,USDT,USDC"


async def live_books(
    specs: list[str], assets: set[str], timeout_s: float
) -> tuple[list[DepthSnapshot], list[Market], list[str]]:
    """Books of every market whose base and quote are both in `assets`, on each venue.

    A venue that fails is left out (a note says why); when every venue fails, the error
    names each one and its cause (exit 1), so an offline machine is never told that the
    assets are unknown.
    """
    from liquidroute.errors import LiquidrouteError, NoVenueAnsweredError
    from liquidroute.venues.ccxt_venue import venue_from_spec

    venues = [venue_from_spec(s, timeout_ms=int(timeout_s * 1e3)) for s in specs]
    snaps: list[DepthSnapshot] = []
    markets: list[Market] = []
    notes: list[str] = []
    failed: dict[str, LiquidrouteError] = {}
    try:
        for venue in venues:
            try:
                symbols = await venue.symbols()
                wanted = [
                    s for s in symbols if set(s.split(":")[0].split("/")) <= assets and ":" not in s
                ]
                fetched = await asyncio.gather(
                    *(asyncio.gather(venue.snapshot(s), venue.market(s)) for s in wanted),
                    return_exceptions=True,
                )
                for symbol, result in zip(wanted, fetched, strict=True):
                    if isinstance(result, BaseException):
                        notes.append(f"{venue.name} {symbol} left out: {result}")
                        continue
                    snaps.append(result[0])
                    markets.append(result[1])
            except LiquidrouteError as exc:
                failed[venue.name] = exc
                notes.append(f"{venue.name} left out: {exc}")
    finally:
        await asyncio.gather(*(v.close() for v in venues), return_exceptions=True)
    if not snaps and failed:
        if len(failed) == 1:
            raise next(iter(failed.values()))
        raise NoVenueAnsweredError(list(failed.values()), list(failed))
    return snaps, markets, notes


def render(q: GraphQuote, out: Console) -> None:
    from liquidroute.cli.render import Col, amount, fixed, print_table, quote_currency

    title = (
        f"{amount(q.amount_in)} {q.source} -> {amount(q.amount_out)} {q.target} (exact {q.exact})"
    )
    rows = [
        [
            f"{hop.asset_in}->{hop.asset_out}",
            leg.venue,
            leg.symbol,
            leg.side,
            f"{amount(leg.amount_in)} {leg.asset_in}",
            f"{amount(leg.amount_out)} {leg.asset_out}",
            f"{leg.avg_price:,.8g}",
            f"{fixed(leg.fee, 6)} {quote_currency(leg.symbol)}",
        ]
        for hop in q.hops
        for leg in hop.legs
    ]
    columns = [Col("Hop"), Col("Venue"), Col("Market"), Col("Side")]
    columns += [Col(c, right=True) for c in ("In", "Out", "Avg price", "Fee")]
    print_table(out, title, columns, rows)
    if q.direct_out is not None and q.exact == "in":
        gain = (q.amount_out / q.direct_out - 1) * 1e4
        out.print(
            f"Direct markets only: {amount(q.direct_out)} {q.target}; joint route gains "
            f"{fixed(gain)} bps ({amount(q.amount_out - q.direct_out)} {q.target})"
        )
    elif q.direct_in is not None:
        gain = (1 - q.amount_in / q.direct_in) * 1e4
        out.print(
            f"Direct markets only: {amount(q.direct_in)} {q.source}; joint route saves "
            f"{fixed(gain)} bps ({amount(q.direct_in - q.amount_in)} {q.source})"
        )
    else:
        out.print("Direct markets only: cannot fill this amount")
    out.print(
        f"Paths used: {len(q.paths)}; LP {q.lp_variables} variables, "
        f"{q.lp_constraints} constraints; {q.compute_ms:.0f} ms"
    )


def convert(
    source: Annotated[
        str, typer.Argument(metavar="FROM", help="Asset to convert from, e.g. USDT.")
    ],
    target: Annotated[str, typer.Argument(metavar="TO", help="Asset to convert to, e.g. ETH.")],
    amount: Annotated[str, typer.Argument(help="Amount of FROM to spend (of TO with --out).")],
    out_: Annotated[
        bool, typer.Option("--out", help="AMOUNT is what to receive in TO, not what to spend.")
    ] = False,
    venues: Annotated[
        str | None, typer.Option(help="Live venues (ccxt ids), comma-separated.")
    ] = None,
    sample: SampleOpt = False,
    bridges: Annotated[
        str,
        typer.Option(help="Assets a route may pass through (comma-separated; 'any' for all)."),
    ] = DEFAULT_BRIDGES,
    max_hops: Annotated[int, typer.Option(min=1, max=6, help="Longest path, in hops.")] = 3,
    hop_penalty_bps: Annotated[
        float, typer.Option(min=0, help="A multi-hop route must beat direct by this per extra hop.")
    ] = 0.0,
    timeout: TimeoutOpt = 10.0,
    json_out: JsonOpt = False,
) -> None:
    """Convert one asset into another over every market and path, solved as ONE LP.

    All hops are optimised jointly (a book shared by two paths counted once), so the
    answer is provably optimal — not hop by hop. Stablecoins are different assets, met
    only through their own books. Exit 3 when no path within --max-hops can fill it.

    Examples:

      liquidroute convert USDT ETH 500000 --sample

      liquidroute convert USDC ETH 25 --out --sample --bridges BTC --max-hops 2

      liquidroute convert USDT ETH 10000 --venues binance,okx --hop-penalty-bps 2
    """
    with reported_errors():
        from liquidroute.model import check_amount
        from liquidroute.router.graph_route import route_graph

        value = check_amount(amount, "AMOUNT")
        src, dst = source.upper(), target.upper()
        bridge_list = (
            None
            if bridges.lower() == "any"
            else [b.strip().upper() for b in bridges.split(",") if b.strip()]
        )
        notes: list[str] = []
        if sample == bool(venues):
            raise fail("choose exactly one source: --venues a,b,c or --sample")
        if sample:
            from liquidroute.venues.sample import sample_spot
            from liquidroute.venues.sample_graph import SAMPLE_GRAPH_NOTE

            snaps, markets = sample_spot()
            notes.append(SAMPLE_GRAPH_NOTE)
        else:
            assets = {src, dst, *(bridge_list or [])}
            if bridge_list is None:
                assets |= set(DEFAULT_BRIDGES.split(","))
            snaps, markets, fetched_notes = asyncio.run(
                live_books(parse_venue_list(venues), assets, timeout)
            )
            notes += fetched_notes
        if bridge_list is not None:
            held = {a for snap in snaps for a in snap.symbol.split(":")[0].split("/")}
            default = bridges == DEFAULT_BRIDGES  # the defaults only where books hold them
            bridge_list = [
                b for b in bridge_list if b not in (src, dst) and (not default or b in held)
            ]
        quote = route_graph(
            snaps,
            src,
            dst,
            markets=markets,
            amount_in=None if out_ else value,
            amount_out=value if out_ else None,
            bridges=bridge_list,
            max_hops=max_hops,
            hop_penalty_bps=hop_penalty_bps,
        )
    if json_out:
        echo_json(quote.to_dict())
    else:
        render(quote, console())
    err = console(stderr=True)
    for message in [*notes, *quote.warnings]:
        note(err, message)
