"""The HTTP API (FastAPI): the endpoints ccxt's `OrderRouter` client calls.

    GET  /route            query parameters (from, to, amountIn | amountOut, ...)
    POST /route            the same as a JSON body (the client's choice when it sends balances)
    GET  /health /ready /version /symbols /exchanges/status
    GET  /orderbook/{exchangeId}/{symbol}   the exact cached book routes are computed on
    GET  /docs             Swagger UI, served from the installed swagger-ui-bundle (offline)
    WS   /stream/route     the route as frames, pushed when it changes (`service.stream`)

Books live in a `BookCache` (`service.books`): static for --sample/--books, kept by
websocket (or polled, per venue) for live venues (`service.feeds`), staleness tracked per
book; /route says each book's age and feed, and which were left out and why. Routes run
in a `RoutePool` of worker processes, never on the event loop: /health and /ready answer
at once whatever the routes do. Statuses: 200 a RouteResult (an unroutable request is one, with
`unroutableReason`); 400 bad input (one line naming the field); 404 unknown book; 500 a bug
(logged with its traceback); 503 busy (Retry-After) or not ready; 504 a route stopped at the
time limit. Every error body is {"error": "..."}.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from liquidroute import __version__
from liquidroute.errors import LiquidrouteError
from liquidroute.service.books import BookCache, refresh_forever, route_on
from liquidroute.service.models import (
    ErrorBody,
    ExchangesStatus,
    Health,
    OrderBook,
    Readiness,
    RouteBody,
    RouteParams,
    RouteResult,
    Symbols,
    Version,
)
from liquidroute.service.pool import COMPUTE, WORKER_NICE, PoolBusy, RoutePool, RouteTimeout
from liquidroute.service.routing import field_errors, parse_request, wire_json
from liquidroute.service.stream import RECHECK_S, StreamStats, serve_stream

STARTED = time.time()
log = logging.getLogger("liquidroute.service")
RETRY_AFTER_S = 1


class SafeJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: a lone surrogate echoed from the input
    cannot break the encoding, and non-finite numbers are refused (never NaN on the wire)."""

    def render(self, content: Any) -> bytes:
        return wire_json(content).encode("ascii")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad input: the message names the field"},
    500: {"model": ErrorBody, "description": "A server bug (logged)"},
    503: {"model": ErrorBody, "description": "Every route worker is busy: retry (Retry-After)"},
    504: {"model": ErrorBody, "description": "The route was stopped at the time limit"},
}


def create_app(
    cache: BookCache,
    *,
    source: str = "",
    workers: int | None = None,
    queue: int | None = None,
    route_timeout: float = 10.0,
    compute: str | None = None,
    nice: int = WORKER_NICE,
    stream_recheck_s: float = RECHECK_S,
) -> FastAPI:
    """The app over `cache`; routes run in `workers` processes (default: one per core),
    at most `queue` more wait (default 4 per worker), each stopped after `route_timeout` s.
    `compute` replaces the worker's routing function (tests: a deliberately slow one).
    A /stream/route recomputes at least every `stream_recheck_s` without a book update."""
    size = workers or max(1, os.cpu_count() or 1)
    pool = RoutePool(
        cache.book_set,
        workers=size,
        queue=4 * size if queue is None else queue,
        time_limit=route_timeout,
        compute=compute or COMPUTE,
        nice=nice,
        changed=cache.changed_since,
    )
    app = FastAPI(
        title="liquidroute routing service",
        version=__version__,
        description="Provably optimal routes (jointly solved, fee-aware) over cached books, "
        "in the API of ccxt's OrderRouter client. " + source,
        docs_url=None,
        redoc_url=None,
        default_response_class=SafeJSONResponse,
    )
    app.state.pool = pool
    app.state.cache = cache
    app.state.streams = streams = StreamStats()
    app.router.on_startup.append(pool.start)  # workers ready before the first request
    app.router.on_shutdown.append(pool.close)

    @app.exception_handler(LiquidrouteError)
    async def bad_input(_: Request, exc: LiquidrouteError) -> JSONResponse:
        return SafeJSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path (GET and POST /route are two)
            methods = {
                m
                for r in app.routes
                if isinstance(r, APIRoute) and r.path_regex.match(request.url.path)
                for m in r.methods or ()
            }
            headers["Allow"] = ", ".join(sorted(methods))
        return SafeJSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def bad_shape(_: Request, exc: RequestValidationError) -> JSONResponse:
        return SafeJSONResponse({"error": field_errors(exc.errors())}, status_code=400)

    @app.exception_handler(PoolBusy)
    async def busy(_: Request, exc: PoolBusy) -> JSONResponse:
        return SafeJSONResponse(
            {"error": f"busy: {exc}; retry in {RETRY_AFTER_S} s"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(RouteTimeout)
    async def too_slow(_: Request, exc: RouteTimeout) -> JSONResponse:
        return SafeJSONResponse({"error": str(exc)}, status_code=504)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return SafeJSONResponse(
            {"error": f"internal error ({type(exc).__name__}); it is logged, please report it"},
            status_code=500,
        )

    async def answer(params: RouteParams | RouteBody, request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        req = parse_request(params, request.headers.get("x-request-id", ""))
        result = await route_on(cache, pool, req)
        server_ms = (time.perf_counter() - t0) * 1e3
        timing = f"route;dur={server_ms:.3f}, compute;dur={result.get('computeMs', 0.0):.3f}"
        return SafeJSONResponse(result, headers={"Server-Timing": timing})

    @app.get(
        "/route",
        summary="Route: query parameters",
        response_model=RouteResult,
        responses=ERRORS,
    )
    async def get_route(request: Request, params: Annotated[RouteParams, Query()]) -> JSONResponse:
        return await answer(params, request)

    @app.post(
        "/route",
        summary="Route: JSON body (used when balances are sent)",
        response_model=RouteResult,
        responses=ERRORS,
    )
    async def post_route(request: Request, params: Annotated[RouteBody, Body()]) -> JSONResponse:
        return await answer(params, request)

    @app.get("/health", response_model=Health)
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "uptimeSec": time.time() - STARTED,
            "busyWorkers": pool.busy,
            "workers": pool.size,
            "openStreams": streams.open,
        }

    @app.get(
        "/ready",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Too few fresh books"}},
    )
    async def ready() -> JSONResponse:
        fresh = len(cache.fresh_keys())
        body = {
            "status": "ready" if fresh >= cache.min_fresh else "not_ready",
            "bookCount": len(cache.books),
            "freshCount": fresh,
            "staleCount": len(cache.books) - fresh,
            "minFreshBooksForReady": cache.min_fresh,
            "staleBookMs": cache.stale_ms,
        }
        return SafeJSONResponse(body, status_code=200 if body["status"] == "ready" else 503)

    @app.get("/version", response_model=Version)
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

    @app.get("/symbols", response_model=Symbols)
    async def symbols() -> dict[str, Any]:
        return {"symbols": sorted({s for _, s in cache.books})}

    @app.get("/exchanges/status", response_model=ExchangesStatus)
    async def exchanges() -> dict[str, Any]:
        now = time.time() * 1e3
        venues = sorted({v for v, _ in cache.books} | set(cache.errors) | set(cache.feeds))
        out = []
        for v in venues:
            keys = [k for k in cache.books if k[0] == v]
            ages = [now - cache.fetched_ms[k] for k in keys]
            out.append(
                {
                    "exchangeId": v,
                    "connected": bool(keys) and v not in cache.errors,
                    "books": len(keys),
                    "freshBooks": sum(cache.fresh(k) for k in keys),
                    "lastUpdateAgeMs": min(ages) if ages and cache.live else 0.0,
                    "error": cache.errors.get(v, ""),
                    "feed": cache.feed(v),
                }
            )
        return {"exchanges": out}

    @app.get(
        "/orderbook/{exchange_id}/{symbol:path}",
        response_model=OrderBook,
        responses={404: {"model": ErrorBody, "description": "No cached book by that name"}},
    )
    async def orderbook(exchange_id: str, symbol: str) -> JSONResponse:
        book = cache.books.get((exchange_id, symbol))
        if book is None:
            return SafeJSONResponse(
                {"error": f"no cached book for {exchange_id!a} {symbol!a}; see /symbols"},
                status_code=404,
            )
        return SafeJSONResponse(
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

    @app.websocket("/stream/route")
    async def stream_route(websocket: WebSocket) -> None:
        """The route, pushed when it changes (see liquidroute.service.stream)."""
        await serve_stream(websocket, cache, pool, streams, recheck_s=stream_recheck_s)

    _offline_docs(app)
    _no_422(app)
    return app


def _no_422(app: FastAPI) -> None:
    """Validation errors are answered 400 (ccxt's BadRequest): drop FastAPI's default 422."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for item in schema.get("paths", {}).values():
                for op in item.values():
                    op.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's assets from the installed swagger-ui-bundle (no CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=app.title + " - docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


__all__ = ["BookCache", "SafeJSONResponse", "create_app", "refresh_forever"]
