"""The HTTP API (FastAPI): the endpoints ccxt's `OrderRouter` client calls.

    GET  /route            query parameters (from, to, amountIn | amountOut, ...)
    POST /route            the same as a JSON body (the client's choice when it sends balances)
    GET  /health /ready /version /symbols /exchanges/status
    GET  /orderbook/{exchangeId}/{symbol}   the exact cached book routes are computed on

Books live in a `BookCache`: static for --sample/--books, refreshed in the background for
live venues (polling through ccxt, staleness tracked per book). Bad requests get a 4xx
with {"error": ...} (what the client maps to BadRequest); an unroutable request is a
RouteResult with `unroutableReason`. The OpenAPI schema is at /openapi.json.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from liquidroute import __version__
from liquidroute.errors import LiquidrouteError
from liquidroute.model import DepthSnapshot, Market
from liquidroute.service.routing import STRATEGIES, RouteService, parse_request
from liquidroute.venues.base import Venue

STARTED = time.time()


@dataclass
class BookCache:
    """Books and markets by (venue, symbol), with when each book was fetched (ms)."""

    live: bool
    stale_ms: float = 10_000.0
    min_fresh: int = 1
    books: dict[tuple[str, str], DepthSnapshot] = field(default_factory=dict)
    markets: dict[tuple[str, str], Market] = field(default_factory=dict)
    fetched_ms: dict[tuple[str, str], float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def put(self, snap: DepthSnapshot, market: Market) -> None:
        key = (snap.venue, snap.symbol)
        self.books[key], self.markets[key] = snap, market
        self.fetched_ms[key] = time.time() * 1e3

    def fresh(self, key: tuple[str, str]) -> bool:
        return not self.live or time.time() * 1e3 - self.fetched_ms.get(key, 0) <= self.stale_ms

    def fresh_books(self) -> list[DepthSnapshot]:
        return [b for k, b in self.books.items() if self.fresh(k)]

    def market_list(self) -> list[Market]:
        return list(self.markets.values())


async def refresh_forever(
    cache: BookCache, venues: Sequence[Venue], symbols: Sequence[str], every_s: float
) -> None:
    """Poll every (venue, symbol) the venue lists; a failure is recorded, not fatal."""
    while True:
        started = time.monotonic()
        for venue in venues:
            try:
                listed = await venue.symbols() if hasattr(venue, "symbols") else list(symbols)
                wanted = [s for s in symbols if s in listed]
                results = await asyncio.gather(
                    *(asyncio.gather(venue.snapshot(s), venue.market(s)) for s in wanted),
                    return_exceptions=True,
                )
                for result in results:
                    if isinstance(result, BaseException):
                        cache.errors[venue.name] = str(result)
                    else:
                        cache.put(*result)
                        cache.errors.pop(venue.name, None)
            except LiquidrouteError as exc:
                cache.errors[venue.name] = str(exc)
        await asyncio.sleep(max(0.05, every_s - (time.monotonic() - started)))


def create_app(cache: BookCache, *, source: str = "") -> FastAPI:
    app = FastAPI(
        title="liquidroute routing service",
        version=__version__,
        description="Provably optimal routes (jointly solved, fee-aware) over cached books, "
        "in the API of ccxt's OrderRouter client. " + source,
    )
    service = RouteService(cache.fresh_books, cache.market_list)

    @app.exception_handler(LiquidrouteError)
    async def bad_input(_: Request, exc: LiquidrouteError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_shape(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {exc.errors()[:3]}"}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": f"cannot process this request ({type(exc).__name__}: {exc})"},
            status_code=422,
        )

    def answer(params: dict[str, Any], request: Request) -> JSONResponse:
        req = parse_request(params, request.headers.get("x-request-id", ""))
        return JSONResponse(service.route(req))  # no response-model pass: it is already JSON

    @app.get("/route", summary="Route: query parameters")
    async def get_route(
        request: Request,
        from_: Annotated[str | None, Query(alias="from", description="Asset spent")] = None,
        to: Annotated[str | None, Query(description="Asset acquired")] = None,
        amountIn: Annotated[str | None, Query(description="Exact amount of from")] = None,  # noqa: N803
        amountOut: Annotated[str | None, Query(description="Exact amount of to")] = None,  # noqa: N803
        strategy: Annotated[str | None, Query(description=", ".join(STRATEGIES))] = None,
        maxVenues: Annotated[str | None, Query()] = None,  # noqa: N803
        bridges: Annotated[str | None, Query(description="Comma-separated assets")] = None,
        exchanges: Annotated[str | None, Query(description="Comma-separated venues")] = None,
        balances: Annotated[str | None, Query(description="[exchangeId.]ASSET:amount,...")] = None,
        balanceMode: Annotated[str | None, Query(description="cap or require")] = None,  # noqa: N803
        includeQuotes: Annotated[str | None, Query()] = None,  # noqa: N803
        includeFees: Annotated[str | None, Query()] = None,  # noqa: N803
        certified: Annotated[str | None, Query()] = None,
        requireFullFill: Annotated[str | None, Query()] = None,  # noqa: N803
        hopPenaltyBps: Annotated[str | None, Query()] = None,  # noqa: N803
        minLegNotional: Annotated[str | None, Query()] = None,  # noqa: N803
    ) -> JSONResponse:
        return answer(dict(request.query_params), request)

    @app.post("/route", summary="Route: JSON body (used when balances are sent)")
    async def post_route(
        request: Request,
        body: Annotated[dict[str, Any], Body(description="The GET parameters, by the same names")],
    ) -> JSONResponse:
        return answer(body, request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "uptimeSec": time.time() - STARTED}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        fresh = sum(1 for k in cache.books if cache.fresh(k))
        body = {
            "status": "ready" if fresh >= cache.min_fresh else "not_ready",
            "bookCount": len(cache.books),
            "freshCount": fresh,
            "staleCount": len(cache.books) - fresh,
            "minFreshBooksForReady": cache.min_fresh,
            "staleBookMs": cache.stale_ms,
        }
        return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)

    @app.get("/version")
    async def version() -> dict[str, Any]:
        return {
            "version": __version__,
            "commit": "",
            "commitShort": "",
            "builtAt": "",
            "builtBy": "liquidroute",
            "startedAt": STARTED,
            "uptimeSec": time.time() - STARTED,
        }

    @app.get("/symbols")
    async def symbols() -> dict[str, Any]:
        return {"symbols": sorted({s for _, s in cache.books})}

    @app.get("/exchanges/status")
    async def exchanges() -> dict[str, Any]:
        now = time.time() * 1e3
        venues = sorted({v for v, _ in cache.books} | set(cache.errors))
        out = []
        for v in venues:
            keys = [k for k in cache.books if k[0] == v]
            ages = [now - cache.fetched_ms[k] for k in keys]
            out.append(
                {
                    "exchangeId": v,
                    "connected": v not in cache.errors,
                    "books": len(keys),
                    "freshBooks": sum(cache.fresh(k) for k in keys),
                    "lastUpdateAgeMs": min(ages) if ages and cache.live else 0.0,
                    "error": cache.errors.get(v, ""),
                }
            )
        return {"exchanges": out}

    @app.get("/orderbook/{exchange_id}/{symbol:path}")
    async def orderbook(exchange_id: str, symbol: str) -> JSONResponse:
        book = cache.books.get((exchange_id, symbol))
        if book is None:
            return JSONResponse(
                {"error": f"no cached book for {exchange_id} {symbol}; see /symbols"},
                status_code=404,
            )
        return JSONResponse(
            {
                "exchangeId": exchange_id,
                "symbol": symbol,
                "timestamp": book.timestamp,
                "fetchedAt": cache.fetched_ms.get((exchange_id, symbol)),
                "fresh": cache.fresh((exchange_id, symbol)),
                "bids": book.bids.tolist(),
                "asks": book.asks.tolist(),
            }
        )

    return app
