"""`/stream/route`: a websocket that pushes the route whenever it changes.

The URL is what ccxt's `OrderRouter.stream_url(from, to, params)` builds: /route's query
string (the same parameters, the same validation) on `ws://HOST:PORT/stream/route`.
Balances are refused, as the client refuses them (a socket outlives the holdings it was
opened with), and so is balanceMode.

Each frame is a RouteResult, the same JSON as GET /route answers (`books` included):
one at once, then one each time the route changes (its path, any leg's venue or amount,
the amounts in and out, the unroutable reason, or the set of books left out). The route
is recomputed, in the service's worker pool (never on the event loop), when a book of a
market the route trades changes or is withdrawn (every hop's symbol; with no hops, every
market holding `from` or `to`), when one of its books turns stale, and, on live books, at
least every `recheck_s` (a better path through other markets is found then). Updates
that arrive while a route is computed, or within `1 / max_rate` s of the last
computation, are coalesced into the next one: at most `max_rate` computations, hence
frames, per second.

A bad request gets one error frame `{"error": "..."}` and the socket is closed with code
1008 (policy violation) and the message as reason; a route stopped at --route-timeout
gets an error frame and 1013 (try again later); a server bug 1011. The client going away
ends the stream: its watcher is removed and its tasks end (a route already running in a
worker finishes there and is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from liquidroute.errors import InvalidInputError
from liquidroute.service.books import BookCache, Key, route_on, touched_symbols
from liquidroute.service.models import RouteParams
from liquidroute.service.pool import PoolBusy, RoutePool, RouteTimeout
from liquidroute.service.routing import RouteRequest, field_errors, parse_request, wire_json

log = logging.getLogger("liquidroute.service")
T = TypeVar("T")

CLOSE_BAD_INPUT = 1008  # policy violation: the request is refused
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013
MAX_RATE = 10.0  # frames per second, at most
RECHECK_S = 1.0
BUSY_RETRY_S = 0.2
REFUSED = ("balances", "balanceMode")


@dataclass
class StreamStats:
    """What the streams are doing (the tests and /health read it)."""

    open: int = 0
    computes: int = 0
    frames: int = 0
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)


def stream_request(query: Mapping[str, str], request_id: str = "") -> RouteRequest:
    """The stream's query string -> a RouteRequest (balances refused); bad input raises
    InvalidInputError with one line naming the field."""
    for name in REFUSED:
        if name in query:
            raise InvalidInputError(
                f"{name}: /stream/route does not accept balances or balanceMode (a stream "
                "outlives the holdings it was opened with); use GET or POST /route"
            )
    try:
        params = RouteParams.model_validate(dict(query))
    except ValidationError as exc:
        raise InvalidInputError(field_errors(exc.errors())) from None
    return parse_request(params, request_id)


def route_key(result: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two routes the same for a watcher: path, legs (venue and amounts),
    totals, unroutable reason and the books left out (not ages, timings or ids)."""
    hops = tuple(
        (
            hop["pair"],
            hop["side"],
            tuple(
                (leg["exchangeId"], leg["amount"], leg["amountIn"], leg["amountOut"])
                for leg in hop["legs"]
            ),
        )
        for hop in result["hops"]
    )
    left_out = tuple(
        sorted((b["exchangeId"], b["symbol"]) for b in result["books"] if b["excludedReason"])
    )
    return (
        tuple(result["path"]),
        hops,
        result["amountIn"],
        result["amountOut"],
        result["unroutableReason"],
        left_out,
    )


async def serve_stream(
    ws: WebSocket,
    cache: BookCache,
    pool: RoutePool,
    stats: StreamStats,
    *,
    max_rate: float = MAX_RATE,
    recheck_s: float = RECHECK_S,
) -> None:
    """Run one /stream/route connection until the client leaves or the stream is refused."""
    await ws.accept()
    stats.open += 1
    try:
        try:
            req = stream_request(ws.query_params, ws.headers.get("x-request-id", ""))
        except InvalidInputError as exc:
            await _refuse(ws, str(exc), CLOSE_BAD_INPUT)
            return
        stream = _Stream(ws, cache, pool, stats, req, 1.0 / max_rate, recheck_s)
        pump = asyncio.create_task(stream.pump(), name="stream-route:pump")
        listen = asyncio.create_task(_until_disconnect(ws), name="stream-route:listen")
        try:
            await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, listen):
                task.cancel()
            await asyncio.gather(pump, listen, return_exceptions=True)
        if pump.done() and not pump.cancelled():
            failure = pump.exception()
            if failure is not None and not isinstance(failure, WebSocketDisconnect | OSError):
                log.error("/stream/route failed", exc_info=failure)
                with contextlib.suppress(Exception):
                    why = f"internal error ({type(failure).__name__}); it is logged"
                    await _refuse(ws, why, CLOSE_SERVER_ERROR)
    finally:
        stats.open -= 1


class _Stream:
    """The pump of one connection: recompute on the route's books, send what changed."""

    def __init__(
        self,
        ws: WebSocket,
        cache: BookCache,
        pool: RoutePool,
        stats: StreamStats,
        req: RouteRequest,
        min_gap_s: float,
        recheck_s: float,
    ) -> None:
        self.ws, self.cache, self.pool, self.stats, self.req = ws, cache, pool, stats, req
        self.min_gap_s, self.recheck_s = min_gap_s, recheck_s
        self.touched: set[str] = set()
        self.changed = asyncio.Event()

    def _on_book(self, key: Key) -> None:
        if not self.touched or key[1] in self.touched:
            self.changed.set()

    async def pump(self) -> None:
        loop = asyncio.get_running_loop()
        remove = self.cache.subscribe(self._on_book)
        last_key: tuple[Any, ...] | None = None
        last_start = -float("inf")
        try:
            while True:
                pause = last_start + self.min_gap_s - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)  # updates meanwhile are coalesced
                self.changed.clear()
                last_start = loop.time()
                try:
                    result = await self._shielded(route_on(self.cache, self.pool, self.req))
                except PoolBusy:
                    self.changed.set()
                    await asyncio.sleep(BUSY_RETRY_S)
                    continue
                except InvalidInputError as exc:
                    await _refuse(self.ws, str(exc), CLOSE_BAD_INPUT)
                    return
                except RouteTimeout as exc:
                    await _refuse(self.ws, str(exc), CLOSE_TRY_AGAIN)
                    return
                self.stats.computes += 1
                self.touched = touched_symbols(result, self.cache.books)
                key = route_key(result)
                if key != last_key:
                    await self.ws.send_text(wire_json(result))
                    self.stats.frames += 1
                    last_key = key
                await self._wait(result)
        finally:
            remove()

    async def _wait(self, result: Mapping[str, Any]) -> None:
        """Until a book of the route changes, one turns stale, or recheck_s passes."""
        used = [(b["exchangeId"], b["symbol"]) for b in result["books"] if not b["excludedReason"]]
        if not self.cache.live:  # static books (--sample, --books) never change
            await self.changed.wait()
            return
        stale = self.cache.stale_in_s(used)
        timeout = self.recheck_s if stale is None else min(self.recheck_s, stale + 1e-3)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)

    async def _shielded(self, work: Awaitable[T]) -> T:
        """`work` in its own task: if the client leaves meanwhile, the route finishes in
        its worker (killing the worker would cost a respawn) and the answer is dropped."""
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self.stats.inflight.add(task)
        task.add_done_callback(_forget(self.stats))
        return await asyncio.shield(task)


def _forget(stats: StreamStats) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        stats.inflight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an answer nobody waits for is not an error

    return done


async def _until_disconnect(ws: WebSocket) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _refuse(ws: WebSocket, message: str, code: int) -> None:
    """One error frame, then close with `code` and the message cut to a close reason."""
    await ws.send_text(wire_json({"error": message}))
    reason = message.encode("ascii", "replace")[:120].decode("ascii")
    await ws.close(code, reason)


__all__ = ["StreamStats", "route_key", "serve_stream", "stream_request"]
