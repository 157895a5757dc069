"""`liquidroute serve`: the routing service for ccxt's OrderRouter clients."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liquidroute.cli.common import console, fail, parse_venue_list, reported_errors

DEFAULT_SYMBOLS = "BTC/USDT,ETH/USDT,ETH/BTC,USDC/USDT,BTC/USDC,ETH/USDC"


def serve(
    venues: Annotated[
        str | None, typer.Option(help="Live venues (ccxt ids), comma-separated.")
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
    refresh: Annotated[float, typer.Option(min=0.1, help="Seconds between book refreshes.")] = 1.0,
    stale_ms: Annotated[
        float, typer.Option(min=1, help="A live book older than this is not routed on.")
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
    'USDT', 'ETH', {'amountIn': 1000})
    """
    with reported_errors():
        import asyncio

        import uvicorn

        from liquidroute.service.app import BookCache, create_app, refresh_forever

        chosen = [
            n for n, on in (("--venues", venues), ("--sample", sample), ("--books", books)) if on
        ]
        if len(chosen) != 1:
            raise fail("choose exactly one source: --venues, --sample or --books")
        cache = BookCache(live=bool(venues), stale_ms=stale_ms)
        label = ""
        tasks = []
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
        if venues:
            from liquidroute.venues.ccxt_venue import venue_from_spec

            specs = reachable_venues(parse_venue_list(venues))
            label = "live venues: " + ", ".join(specs)
        app = create_app(
            cache, source=label, workers=workers or None, queue=queue, route_timeout=route_timeout
        )
        if venues:
            live = [venue_from_spec(s) for s in specs]
            wanted = [s.strip() for s in symbols.split(",") if s.strip()]

            async def start_refresh() -> None:
                tasks.append(asyncio.create_task(refresh_forever(cache, live, wanted, refresh)))

            app.router.on_startup.append(start_refresh)

        console(stderr=True).print(f"serving on http://{host}:{port}  (OpenAPI: /docs)")
        uvicorn.run(app, host=host, port=port, log_level="warning")


def reachable_venues(specs: list[str], timeout_s: float = 15.0) -> list[str]:
    """The venue specs whose markets load; a warning on stderr names each other venue and
    its cause, and none reachable is an error (exit 1)."""
    import asyncio

    from liquidroute.errors import VenueError
    from liquidroute.venues.ccxt_venue import venue_from_spec

    async def probe(spec: str) -> str:
        venue = venue_from_spec(spec)
        try:
            await asyncio.wait_for(venue.symbols(), timeout_s)
            return ""
        except TimeoutError:
            return f"no answer within {timeout_s:g} s"
        except Exception as exc:  # every cause is reported, none is fatal alone
            return str(exc) or type(exc).__name__
        finally:
            await venue.close()

    async def probe_all() -> list[str]:
        return list(await asyncio.gather(*(probe(s) for s in specs)))

    causes = asyncio.run(probe_all())
    err = console(stderr=True)
    for spec, cause in zip(specs, causes, strict=True):
        if cause:
            err.print(f"warning: venue {spec} is unreachable: {cause}", markup=False)
    up = [s for s, cause in zip(specs, causes, strict=True) if not cause]
    if not up:
        raise VenueError(
            ",".join(specs),
            "no venue is reachable; check the network, or serve offline with --sample or --books",
        )
    return up
