"""The service on live websocket books: loopback Binance diff-depth exchanges, the real
ccxt.pro client (pointed at them by LIQUIDROUTE_<NAME>_URL / _WS_URL), LiveFeeds into the
BookCache, an in-process uvicorn server, and a websocket client for /stream/route."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ccxt.base.order_router import OrderRouter
from websockets.sync.client import ClientConnection, connect

from liquidroute.model import DepthSnapshot
from liquidroute.router.route import route
from liquidroute.service.app import BookCache, create_app
from liquidroute.service.feeds import LiveFeeds
from liquidroute.venues.ccxt_venue import venue_from_spec
from liquidroute.venues.live import LiveVenue, live_venue_from_spec
from tests.loopback.binance_ws import BinanceWsLoopback
from tests.service.live import serving
from tests.venues.test_live import ASKS, BIDS, SYMBOL, point_at

__all__ = ["ASKS", "BIDS", "SYMBOL", "LiveService", "oracle", "running", "until"]


@dataclass
class LiveService:
    url: str
    app: Any
    cache: BookCache
    venues: list[LiveVenue]
    exchanges: dict[str, BinanceWsLoopback]

    @property
    def client(self) -> OrderRouter:
        return OrderRouter({"baseUrl": self.url, "timeoutMs": 20000})

    @property
    def stats(self) -> Any:
        return self.app.state.streams

    def stream(self, frm: str, to: str, params: dict[str, Any], extra: str = "") -> Any:
        """A websocket client on the url the real OrderRouter.stream_url builds."""
        return connect(self.client.stream_url(frm, to, params) + extra, open_timeout=10)

    def caught_up(self, name: str) -> None:
        """Wait until the cache holds exchange `name`'s book as the server has it now."""
        ex = self.exchanges[name]

        def same() -> bool:
            book = self.cache.books.get((name, SYMBOL))
            bids, asks = ex.book()
            return (
                book is not None
                and book.asks.tolist() == [list(a) for a in asks]
                and book.bids.tolist() == [list(b) for b in bids]
            )

        until(same, 10, f"the cache never caught up with {name}")


def until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what or "condition not reached"
        time.sleep(0.01)


def frame(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return data


def oracle(
    service: LiveService, side: str, amount: float, unit: str, names: Sequence[str] | None = None
) -> Any:
    """route() computed here on the loopback servers' own books (not the cache's)."""
    snaps = []
    for name in names or service.exchanges:
        bids, asks = service.exchanges[name].book()
        snaps.append(DepthSnapshot(name, SYMBOL, bids, asks))
    markets = {s.venue: service.cache.markets[(s.venue, SYMBOL)] for s in snaps}
    return route(snaps, side, amount, amount_in=unit, markets=markets, rules=False)  # type: ignore[arg-type]


@contextlib.contextmanager
def running(
    monkeypatch: pytest.MonkeyPatch,
    exchanges: dict[str, BinanceWsLoopback],
    *,
    stale_ms: float = 10_000.0,
    polled: Sequence[str] = (),
    workers: int = 1,
) -> Iterator[LiveService]:
    """The app on live books of `exchanges` (name -> loopback); `polled` venues get a
    client without watchOrderBook (the polling fallback)."""
    venues = []
    for name, ex in exchanges.items():
        point_at(monkeypatch, name, ex)
        options: dict[str, Any] = {"max_age_s": stale_ms / 1e3, "limit": 100}
        if name in polled:
            ccxt_venue = venue_from_spec(f"{name}=binance", websocket=True)
            ccxt_venue.exchange.has = {**ccxt_venue.exchange.has, "watchOrderBook": False}
            venues.append(LiveVenue(ccxt_venue, [SYMBOL], poll_interval_s=0.1, **options))
        else:
            spec = f"{name}=binance"
            venues.append(live_venue_from_spec(spec, [SYMBOL], backoff_s=(0.02, 0.2), **options))
    cache = BookCache(live=True, stale_ms=stale_ms)
    feeds = LiveFeeds(cache, venues)
    # no periodic recheck within a test: every frame comes from an update or a stale timer
    app = create_app(cache, workers=workers, route_timeout=30, stream_recheck_s=60)

    async def start() -> None:
        feeds.start_soon()

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(feeds.close)
    with serving(app) as url:
        service = LiveService(url, app, cache, venues, exchanges)
        until(
            lambda: httpx.get(url + "/ready").json()["freshCount"] == len(exchanges),
            15,
            "the live books never arrived",
        )
        yield service
