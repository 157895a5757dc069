"""`liquidroute serve`: the routing service for ccxt's OrderRouter clients."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from liquidroute.cli.common import console, fail, parse_venue_list, reported_errors

DEFAULT_SYMBOLS = "BTC/USDT,ETH/USDT,ETH/BTC,USDC/USDT,BTC/USDC,ETH/USDC"


def serve(
    venues: Annotated[
        str | None,
        typer.Option(
            help="Live venues (ccxt ids), comma-separated: books kept by websocket "
            "(polled where the venue has no stream)."
        ),
    ] = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Serve the bundled multi-market sample (offline).")
    ] = False,
    books: Annotated[
        list[Path] | None,
        typer.Option("--books", help="Recorded tardis files (each replayed to its end)."),
    ] = None,
    symbols: Annotated[
        str, typer.Option(help="Markets to keep fresh for --venues.")
    ] = DEFAULT_SYMBOLS,
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8765,
    refresh: Annotated[
        float, typer.Option(min=0.1, help="Seconds between polls of a venue with no websocket.")
    ] = 1.0,
    stale_ms: Annotated[
        float,
        typer.Option(min=1, help="A live book without an update for this long is left out."),
    ] = 10_000.0,
    workers: Annotated[
        int, typer.Option(min=0, help="Route worker processes (0 = one per core).")
    ] = 0,
    queue: Annotated[
        int | None,
        typer.Option(min=0, help="Routes that may wait for a worker before 503 (default 4 each)."),
    ] = None,
    route_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds before a route is stopped (504).")
    ] = 10.0,
) -> None:
    """Serve routes over HTTP in the API of ccxt's OrderRouter, so any ccxt client (Python,
    TypeScript, PHP, C#, Go, Rust) can point baseUrl here: self-hosted, private, no limits.

    Examples:

      liquidroute serve --sample

      liquidroute serve --venues binance,okx,bybit --port 8765

    Then, from Python: OrderRouter({'baseUrl': 'http://127.0.0.1:8765'}).fetch_route(
    'USDT', 'ETH', {'amountIn': 1000}); routes pushed as they change: the websocket at
    OrderRouter(...).stream_url('USDT', 'ETH', {'amountIn': 1000}).
    """
    with reported_errors():
        import asyncio

        import uvicorn

        from liquidroute.service.app import BookCache, create_app

        chosen = [
            n for n, on in (("--venues", venues), ("--sample", sample), ("--books", books)) if on
        ]
        if len(chosen) != 1:
            raise fail("choose exactly one source: --venues, --sample or --books")
        cache = BookCache(live=bool(venues), stale_ms=stale_ms)
        label = ""
        if sample:
            from liquidroute.venues.sample_graph import (
                SAMPLE_GRAPH_NOTE,
                sample_graph_markets,
                sample_graph_snapshots,
            )

            for snap, market in zip(sample_graph_snapshots(), sample_graph_markets(), strict=True):
                cache.put(snap, market)
            label = SAMPLE_GRAPH_NOTE
        elif books:
            from liquidroute.venues.recorded import RecordedVenue

            for path in books:
                rec = RecordedVenue(path)
                cache.put(
                    asyncio.run(rec.snapshot(rec.symbol)), asyncio.run(rec.market(rec.symbol))
                )
            label = "recorded books: " + ", ".join(p.name for p in books)
        feeds = None
        if venues:
            from liquidroute.service.feeds import LiveFeeds
            from liquidroute.venues.live import live_venue_from_spec

            wanted = [s.strip() for s in symbols.split(",") if s.strip()]
            listed = venue_symbols(parse_venue_list(venues), wanted)
            feeds = LiveFeeds(
                cache,
                [
                    live_venue_from_spec(
                        spec, names, max_age_s=stale_ms / 1e3, poll_interval_s=refresh
                    )
                    for spec, names in listed.items()
                ],
            )
            label = "live venues: " + ", ".join(
                f"{v.name} ({v.mode}, {len(v.symbols)} market{'s' * (len(v.symbols) > 1)})"
                for v in feeds.venues
            )
        app = create_app(
            cache, source=label, workers=workers or None, queue=queue, route_timeout=route_timeout
        )
        if feeds is not None:
            live_feeds = feeds

            async def start_feeds() -> None:
                live_feeds.start_soon()

            app.router.on_startup.append(start_feeds)
            app.router.on_shutdown.append(live_feeds.close)

        books_line = f"; {label}" if feeds is not None else ""
        console(stderr=True).print(
            f"serving on http://{host}:{port}  (OpenAPI: /docs, stream: ws://{host}:{port}"
            f"/stream/route){books_line}",
            markup=False,
        )
        # the heap built so far (ccxt's exchange classes, pandas, the app: ~240 k objects)
        # lives as long as the server, yet every full collection scans it, ~0.1 s during
        # which no request is answered: move it out of the collector's reach
        gc.collect()
        gc.freeze()
        uvicorn.run(app, host=host, port=port, log_level="warning")


def reachable_venues(specs: list[str], timeout_s: float = 15.0) -> list[str]:
    """The venue specs whose markets load; a warning on stderr names each other venue and
    its cause, and none reachable is an error (exit 1)."""
    return list(venue_symbols(specs, None, timeout_s))


def venue_symbols(
    specs: list[str], wanted: list[str] | None, timeout_s: float = 15.0
) -> dict[str, list[str]]:
    """spec -> the `wanted` symbols it lists (every listed one when None), for each venue
    whose markets load and that lists one; a warning on stderr names each other venue and
    its cause, and none left is an error (exit 1)."""
    import asyncio

    from liquidroute.errors import VenueError
    from liquidroute.venues.ccxt_venue import venue_from_spec

    async def probe(spec: str) -> tuple[str, list[str]]:
        venue = venue_from_spec(spec)
        try:
            listed = await asyncio.wait_for(venue.symbols(), timeout_s)
        except TimeoutError:
            return f"is unreachable: no answer within {timeout_s:g} s", []
        except Exception as exc:  # every cause is reported, none is fatal alone
            return f"is unreachable: {str(exc) or type(exc).__name__}", []
        finally:
            await venue.close()
        names = list(listed) if wanted is None else [s for s in wanted if s in set(listed)]
        none = f"lists none of --symbols ({','.join(wanted or [])}): not served"
        return ("" if names else none), names

    async def probe_all() -> list[tuple[str, list[str]]]:
        return list(await asyncio.gather(*(probe(s) for s in specs)))

    answers = asyncio.run(probe_all())
    err = console(stderr=True)
    for spec, (cause, _) in zip(specs, answers, strict=True):
        if cause:
            err.print(f"warning: venue {spec} {cause}", markup=False)
    up = {spec: names for spec, (cause, names) in zip(specs, answers, strict=True) if not cause}
    if not up:
        raise VenueError(
            ",".join(specs),
            "no venue is reachable; check the network, or serve offline with --sample or --books",
        )
    return up
