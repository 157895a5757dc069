"""The live book cache against a loopback Binance diff-depth exchange, real ccxt.pro client.

The proof after every fault: each book version the cache published equals the server's
book at that version's update id (every level), and the cache ends equal to the server's
book now, or it said the book was withdrawn / stale in the meantime.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from liquidroute import Router
from liquidroute.errors import DataError, VenueUnavailableError
from liquidroute.venues.ccxt_venue import CcxtVenue
from liquidroute.venues.live import BookEvent, LiveVenue, live_venue_from_spec
from tests.conftest import binance_client
from tests.loopback.binance_server import client_options
from tests.loopback.binance_ws import BinanceWsLoopback

SYMBOL = "BTC/USDT"
BIDS = [[60000.0 - i * 5, 1.0 + i] for i in range(20)]
ASKS = [[60010.0 + i * 5, 1.0 + i] for i in range(20)]


@pytest.fixture
def exchange():
    ex = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()
    yield ex
    ex.stop()


def point_at(monkeypatch: pytest.MonkeyPatch, name: str, ex: BinanceWsLoopback) -> None:
    key = "LIQUIDROUTE_" + name.upper() + "_"
    monkeypatch.setenv(key + "URL", ex.base_url)
    monkeypatch.setenv(key + "WS_URL", ex.ws_base_url)
    monkeypatch.setenv(key + "OPTIONS", json.dumps(client_options()))


def live(monkeypatch: pytest.MonkeyPatch, ex: BinanceWsLoopback, spec: str = "binance", **kw: Any):
    point_at(monkeypatch, spec.split("=")[0], ex)
    kw.setdefault("backoff_s", (0.02, 0.2))
    kw.setdefault("limit", 100)  # Binance weighs depth by limit: 100 keeps resyncs quick
    return live_venue_from_spec(spec, [SYMBOL], **kw)


class Journal:
    """Every published book version, checked against the server's history."""

    def __init__(self, venue: LiveVenue) -> None:
        self.events: list[BookEvent] = []
        venue.add_listener(self.events.append)

    def check(self, ex: BinanceWsLoopback) -> None:
        history = {uid: (b, a) for uid, b, a in ex.history}
        assert self.events
        for event in self.events:
            assert event.nonce in history, f"version {event.version}: unknown id {event.nonce}"
            assert_levels(event.snapshot.bids, history[event.nonce][0])
            assert_levels(event.snapshot.asks, history[event.nonce][1])


def assert_levels(cached: np.ndarray, server: list[tuple[float, float]]) -> None:
    assert cached.tolist() == [list(level) for level in server]


async def equal_to_server(venue: LiveVenue, ex: BinanceWsLoopback, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = venue.status(SYMBOL)
        if status.state == "live" and status.nonce == ex.update_id:
            book = await venue.snapshot(SYMBOL)
            bids, asks = ex.book()
            assert_levels(book.bids, bids)
            assert_levels(book.asks, asks)
            return
        assert time.monotonic() < deadline, (
            f"cache never caught up: {status}, server {ex.update_id}"
        )
        await asyncio.sleep(0.01)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def on_server(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def test_keeps_the_servers_book_level_by_level(exchange, monkeypatch):
    async def go():
        venue = live(monkeypatch, exchange)
        journal = Journal(venue)
        async with venue:
            await equal_to_server(venue, exchange)
            changes = [
                {"bids": [(60001.0, 0.25)]},  # new best bid
                {"asks": [(60010.0, 0.0)]},  # best ask deleted
                {"bids": [(59995.0, 7.5)], "asks": [(60015.0, 3.0), (61000.0, 9.0)]},
                {"bids": [(60000.0, 0.0), (59000.0, 1.0)]},
            ]
            for change in changes:
                before, top = await venue.snapshot(SYMBOL), await venue.snapshot(SYMBOL, 3)
                assert await venue.snapshot(SYMBOL) is before  # one object per version
                assert await venue.snapshot(SYMBOL, 3) is top
                await on_server(exchange.update, **change)
                await equal_to_server(venue, exchange)
                assert await venue.snapshot(SYMBOL) is not before
                assert_levels((await venue.snapshot(SYMBOL, 3)).bids, exchange.book()[0][:3])
            status = venue.status(SYMBOL)
            assert status.mode == "websocket" and status.state == "live"
            assert status.updates == len(journal.events) >= 1 + len(changes) - 1
            assert status.resyncs == status.reconnects == 0
            assert venue._feed(SYMBOL).rebuilds == 1  # the snapshot; the diffs were applied
        journal.check(exchange)
        assert journal.events[0].fresh and not any(e.fresh for e in journal.events[1:])

    asyncio.run(go())


def test_every_diff_is_published_as_it_arrives_even_in_a_burst(exchange, monkeypatch):
    """Three diffs in one write: ccxt applies all three in one go, resolving its watch
    once. Each must still be its own book version (published from ccxt's handler, not
    when the feed's watch next returns), equal to the server's book at its update id."""

    async def go():
        venue = live(monkeypatch, exchange)
        journal = Journal(venue)
        async with venue:
            await equal_to_server(venue, exchange)
            for _ in range(3):
                before = len(journal.events)
                burst = [
                    {"bids": [(60001.0, 0.25)]},
                    {"asks": [(60010.0, 0.0), (60008.0, 2.0)]},
                    {"bids": [(60001.0, 0.0), (59990.0, 2.0)]},
                ]
                await on_server(exchange.burst, burst)
                await equal_to_server(venue, exchange)
                assert len(journal.events) == before + len(burst)  # none coalesced
                await on_server(exchange.update, asks=[(60010.0, 1.0), (60008.0, 0.0)])
                await equal_to_server(venue, exchange)
        journal.check(exchange)

    asyncio.run(go())


def test_diffs_do_not_wake_the_feeds_watch_which_still_hears_a_gap(exchange, monkeypatch):
    """A diff is published from ccxt's handler; ccxt's waiter is not resolved for it, so
    the feed's `watch_order_book` is armed once per subscription, not returned and
    re-armed per update (ccxt's subscription code on every diff). The armed watch still
    wakes for what ccxt rejects it with: a sequence gap resyncs, every diff before and
    after it published, equal to the server's book. The messages are received by one
    task per connection (ccxt's receive loop makes a task per message)."""
    from ccxt.async_support.base.ws.client import Client

    receivers: list[Any] = []  # the task asking for each message
    receive = Client.receive

    def noted(self: Any) -> Any:
        receivers.append(asyncio.current_task())
        return receive(self)

    monkeypatch.setattr(Client, "receive", noted)

    async def go():
        venue = live(monkeypatch, exchange)
        journal = Journal(venue)
        exchange_client = venue.venue.exchange
        watch = exchange_client.watch_order_book
        returns = 0

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal returns
            out = await watch(*args, **kwargs)
            returns += 1
            return out

        exchange_client.watch_order_book = counted
        async with venue:
            await equal_to_server(venue, exchange)
            first = returns
            receivers.clear()
            for i in range(20):
                await on_server(exchange.update, bids=[(60001.0, 0.25 + i)])
            await equal_to_server(venue, exchange)
            assert returns == first  # 20 diffs published, the watch never returned
            assert len(receivers) >= 20 and None not in receivers
            assert len(set(receivers)) == 1
            assert len(journal.events) >= 21
            exchange.gap()
            await on_server(exchange.update, asks=[(60011.0, 1.5)])
            await until(lambda: venue.status(SYMBOL).resyncs == 1)
            await on_server(exchange.update, asks=[(60012.0, 2.5)])
            await equal_to_server(venue, exchange)
            assert returns == first + 1  # the new subscription's first book
        journal.check(exchange)

    asyncio.run(go())


def test_a_book_kept_to_a_limit_stays_at_its_top_levels_as_diffs_add_deeper_ones(
    exchange, monkeypatch
):
    """`limit` levels are kept: ccxt trims its book to them when its watch returns
    (`orderbook.limit()`), and the feed's watch stays armed, so the feed trims it on
    every diff it publishes. Each version is the server's top `limit` levels, though
    the diffs keep adding levels below them."""

    async def go():
        venue = live(monkeypatch, exchange, limit=5)
        journal = Journal(venue)
        async with venue:
            await until(lambda: venue.status(SYMBOL).state == "live")
            for i in range(12):  # new levels below the 5th, then one at the top
                await on_server(
                    exchange.update, bids=[(59900.0 - i, 1.0)], asks=[(60200.0 + i, 1.0)]
                )
            await on_server(exchange.update, bids=[(60001.0, 2.0)])
            await until(lambda: venue.status(SYMBOL).nonce == exchange.update_id)
        assert len(journal.events) >= 13
        history = {uid: (b, a) for uid, b, a in exchange.history}
        for event in journal.events:
            bids, asks = history[event.nonce]
            assert_levels(event.snapshot.bids, bids[:5])
            assert_levels(event.snapshot.asks, asks[:5])

    asyncio.run(go())


def test_a_listener_failing_on_a_diff_stops_the_feed(exchange, monkeypatch):
    """A diff is published from ccxt's message handler: a listener that fails there (a
    recorder's disk) must still stop the feed, failed with the error kept, as when it
    fails on the first book."""

    async def go():
        venue = live(monkeypatch, exchange)
        async with venue:
            await equal_to_server(venue, exchange)

            def broken(event: BookEvent) -> None:
                raise OSError("No space left on device")

            venue.add_listener(broken)
            await on_server(exchange.update, bids=[(60001.0, 0.25)])
            feed = venue._feed(SYMBOL)
            await until(lambda: feed.task is not None and feed.task.done())
            assert isinstance(feed.crash, OSError)
            status = venue.status(SYMBOL)
            assert status.state == "failed" and "No space" in (status.error or "")
            with pytest.raises(VenueUnavailableError, match="failed"):
                await venue.snapshot(SYMBOL)

    asyncio.run(go())


def test_sequence_gap_resyncs_from_a_new_snapshot(exchange, monkeypatch):
    async def go():
        venue = live(monkeypatch, exchange)
        journal = Journal(venue)
        async with venue:
            await equal_to_server(venue, exchange)
            snapshots_before = exchange.count("/api/v3/depth")
            exchange.gap()
            await on_server(exchange.update, bids=[(60002.0, 1.5)])
            await until(lambda: venue.status(SYMBOL).resyncs == 1)
            await equal_to_server(venue, exchange)
            assert exchange.count("/api/v3/depth") == snapshots_before + 1
            await on_server(exchange.update, asks=[(60011.0, 2.0)])
            await equal_to_server(venue, exchange)
        journal.check(exchange)
        assert [e.fresh for e in journal.events].count(True) == 2  # start + the resync

    asyncio.run(go())


def test_dropped_connection_reconnects_and_catches_up(exchange, monkeypatch):
    async def go():
        venue = live(monkeypatch, exchange)
        journal = Journal(venue)
        async with venue:
            await equal_to_server(venue, exchange)
            await on_server(exchange.drop)
            await until(lambda: venue.status(SYMBOL).state != "live")
            with pytest.raises(VenueUnavailableError, match="binance"):
                await venue.snapshot(SYMBOL)  # withdrawn, never served while unknown
            await on_server(exchange.update, bids=[(60003.0, 0.5)])  # missed while down
            await until(lambda: exchange.connect_count >= 2)
            await equal_to_server(venue, exchange)
            await on_server(exchange.update, asks=[(60012.0, 0.5)])
            await equal_to_server(venue, exchange)
            assert venue.status(SYMBOL).reconnects >= 1
        journal.check(exchange)

    asyncio.run(go())


def test_snapshot_older_than_the_stream_is_replaced(exchange, monkeypatch):
    """The REST snapshot predates the buffered events: ccxt can serve it for at most one
    update, then the broken sequence forces a resync onto a current snapshot."""

    async def go():
        for i in range(5):
            await on_server(exchange.update, bids=[(59990.0, 2.0 + i)])
        exchange.stale_snapshot(3)
        venue = live(monkeypatch, exchange)
        journal = Journal(venue)
        stop = threading.Event()

        def trickle() -> None:
            i = 0
            while not stop.is_set():
                exchange.update(asks=[(60100.0, 1.0 + (i % 5))])
                i += 1
                time.sleep(0.02)

        thread = threading.Thread(target=trickle)
        thread.start()
        try:
            async with venue:
                await until(lambda: venue.status(SYMBOL).resyncs >= 1)
                stop.set()
                await asyncio.to_thread(thread.join)
                await equal_to_server(venue, exchange)
        finally:
            stop.set()
            thread.join()
        journal.check(exchange)
        # the old snapshot, 3 updates before the subscription ...
        assert journal.events[0].nonce == exchange.subscribed_ids[0] - 3
        assert journal.events[1].fresh  # ... served until the next update, then resynced

    asyncio.run(go())


def test_stalled_stream_is_stale_and_left_out_until_it_recovers(monkeypatch):
    a = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()
    b = BinanceWsLoopback(bids=BIDS, asks=[[p + 1, s] for p, s in ASKS]).start()

    async def go():
        venues = [
            live(monkeypatch, a, "a=binance", max_age_s=0.3),
            live(monkeypatch, b, "b=binance"),
        ]
        router = Router(venues, max_age_ms=300)
        async with router:
            await router.start()
            assert (await router.quote(SYMBOL, "buy", 1.0)).legs[0].venue == "a"
            a.stall(True)
            await on_server(a.update, asks=[(60009.0, 5.0)])  # changed, but not sent
            await on_server(b.update, bids=[(59999.0, 1.0)])
            await until(lambda: venues[0].status(SYMBOL).state == "stale", 3.0)
            for _ in range(3):  # b keeps its book fresh
                await on_server(b.update, bids=[(59998.0, 1.0)])
                await asyncio.sleep(0.05)
            quote = await router.quote(SYMBOL, "buy", 1.0)
            assert "stale book" in quote.excluded["a"]
            assert quote.venues == ("b",)
            a.stall(False)  # the held events arrive (stamped when they were made) ...
            await on_server(a.update, bids=[(59000.0, 1.0)])  # ... and a fresh one
            await equal_to_server(venues[0], a)
            quote = await router.quote(SYMBOL, "buy", 1.0)
            assert "a" not in quote.excluded and quote.legs[0].venue == "a"
            assert quote.legs[0].worst_price == 60009.0

    try:
        asyncio.run(go())
    finally:
        a.stop()
        b.stop()


def test_single_stale_venue_is_not_routed(exchange, monkeypatch):
    async def go():
        venue = live(monkeypatch, exchange, max_age_s=0.2)
        async with Router([venue], max_age_ms=200) as router:
            await router.start()
            await router.quote(SYMBOL, "buy", 1.0)
            exchange.stall(True)
            await asyncio.sleep(0.35)
            with pytest.raises(DataError, match="stale book"):
                await router.quote(SYMBOL, "buy", 1.0)

    asyncio.run(go())


def test_venue_without_websocket_falls_back_to_polling(exchange):
    async def go():
        client = binance_client(exchange.base_url, keys=False)  # ccxt.async_support: no watch
        venue = LiveVenue(CcxtVenue("binance", exchange=client), [SYMBOL], poll_interval_s=0.05)
        async with venue:
            assert venue.status(SYMBOL).mode == "polling"
            await on_server(exchange.update, bids=[(60004.0, 0.5)])
            await equal_to_server(venue, exchange)
        assert exchange.connect_count == 0

    asyncio.run(go())


def test_ws_url_override_is_read_from_the_environment(exchange, monkeypatch):
    venue = live(monkeypatch, exchange)
    ws_urls = venue.venue.exchange.urls["api"]["ws"]
    assert ws_urls["spot"] == exchange.ws_base_url + "/ws"
    assert venue.venue.exchange.urls["api"]["public"].startswith(exchange.base_url)
    asyncio.run(venue.close())


def test_unknown_symbol_is_a_clear_error(exchange, monkeypatch):
    from liquidroute.errors import UnknownSymbolError

    async def go():
        point_at(monkeypatch, "binance", exchange)
        venue = live_venue_from_spec("binance", ["DOGE/EUR"])
        try:
            with pytest.raises(UnknownSymbolError, match="DOGE/EUR"):
                await venue.start()
        finally:
            await venue.close()

    asyncio.run(go())


def test_incremental_sides_follow_ccxts_book_without_rebuilding():
    """Random diffs through a real ccxt.pro OrderBook (tracked as the feed tracks it):
    after each, the numpy sides equal ccxt's book level by level, with no rebuild."""
    import random

    import ccxt.pro

    from liquidroute.venues.live import _Feed, _track_changes

    rng = random.Random(11)
    client = ccxt.pro.binance()
    _track_changes(client)
    book = client.order_book({}, 50)  # ccxt trims to 50 levels per side
    book.reset(
        {
            "bids": [[100.0 - i, 1.0] for i in range(60)],
            "asks": [[101.0 + i, 1.0] for i in range(60)],
        }
    )
    book.limit()
    owner = type("Owner", (), {"name": "x", "depth": None, "listeners": []})()
    feed = _Feed(owner, SYMBOL)  # type: ignore[arg-type]
    feed.accept(book)
    for _ in range(300):
        for _ in range(rng.randint(1, 6)):
            side = rng.choice(["bids", "asks"])
            price = (100.0 - rng.randint(0, 80)) if side == "bids" else (101.0 + rng.randint(0, 80))
            book[side].store(price, 0.0 if rng.random() < 0.4 else rng.randint(1, 9) / 4)
        book.limit()
        feed.accept(book)
        assert feed.book is not None
        assert feed.book.bids.tolist() == [list(level) for level in book["bids"]]
        assert feed.book.asks.tolist() == [list(level) for level in book["asks"]]
    assert feed.rebuilds == 1
    asyncio.run(client.close())


def _tracked_feed(depth: int | None = None) -> tuple[Any, Any, Any]:
    """A real ccxt.pro OrderBook tracked as the feed tracks it, and a `_Feed` on it."""
    import ccxt.pro

    from liquidroute.venues.live import _Feed, _track_changes

    client = ccxt.pro.binance()
    _track_changes(client)
    book = client.order_book({}, 50)
    book.reset(
        {
            "bids": [[100.0 - i, 1.0] for i in range(20)],
            "asks": [[101.0 + i, 1.0] for i in range(20)],
        }
    )
    owner = type("Owner", (), {"name": "x", "depth": depth, "listeners": []})()
    feed = _Feed(owner, SYMBOL)  # type: ignore[arg-type]
    feed.accept(book)
    return client, book, feed


@pytest.mark.parametrize(
    ("side", "price", "size"),
    [
        ("bids", 99.5, float("nan")),
        ("asks", 101.5, float("inf")),
        ("bids", 99.5, -1.0),
        ("asks", float("nan"), 1.0),
        ("bids", 0.0, 1.0),
        ("asks", -3.0, 1.0),
        ("bids", 101.0, 1.0),  # crossed: a bid at the best ask
        ("asks", 99.0, 1.0),  # crossed: an ask below the best bid
    ],
)
def test_a_bad_level_in_a_diff_withdraws_the_book(side, price, size):
    """Only the touched levels are validated on an update: a NaN, infinite, zero or
    negative level, or one that crosses the book, still withdraws it (resyncing) and it
    stays withdrawn until ccxt's book is good again, then is rebuilt whole."""
    client, book, feed = _tracked_feed()
    assert feed.state == "live" and feed.version == 1
    book[side].store(price, size)
    feed.accept(book)
    assert feed.state == "resyncing" and feed.fresh, (feed.state, feed.error)
    assert "x" in (feed.error or "")
    book["bids"].store(99.0, 3.0)  # the bad level is still in ccxt's book: still out
    feed.accept(book)
    assert feed.state == "resyncing" and feed.version == 1
    book.reset({"bids": [[100.0, 1.0]], "asks": [[101.0, 2.0]]})  # a good snapshot
    feed.accept(book)
    assert feed.state == "live" and feed.version == 2
    assert feed.book.bids.tolist() == [[100.0, 1.0]]
    assert feed.book.asks.tolist() == [[101.0, 2.0]]
    asyncio.run(client.close())


def test_published_books_never_change_and_an_untouched_side_keeps_its_array():
    """The sides are updated copy-on-write: every published version still holds the
    book it was published with after later diffs; an update on one side publishes the
    other side's array itself (caches keyed by it stay valid); `depth` cuts both."""
    import random

    rng = random.Random(3)
    for depth in (None, 7):
        client, book, feed = _tracked_feed(depth)
        kept: list[tuple[Any, list[list[float]], list[list[float]]]] = []
        for _ in range(200):
            side = rng.choice(["bids", "asks"])
            price = (100.0 - rng.randint(0, 25)) if side == "bids" else (101.0 + rng.randint(0, 25))
            prev = feed.book
            book[side].store(price, 0.0 if rng.random() < 0.3 else rng.randint(1, 9) / 4)
            feed.accept(book)
            snap = feed.book
            other = "asks" if side == "bids" else "bids"
            assert getattr(snap, other) is getattr(prev, other)
            assert not snap.bids.flags.writeable and not snap.asks.flags.writeable
            assert snap.bids.flags.c_contiguous and snap.asks.flags.c_contiguous
            want_b = [list(level) for level in book["bids"]][:depth]
            want_a = [list(level) for level in book["asks"]][:depth]
            assert snap.bids.tolist() == want_b and snap.asks.tolist() == want_a
            kept.append((snap, want_b, want_a))
        for snap, want_b, want_a in kept:
            assert snap.bids.tolist() == want_b and snap.asks.tolist() == want_a
        assert feed.rebuilds == 1
        asyncio.run(client.close())


def test_book_now_with_a_depth_is_the_books_top_levels_cached_per_version():
    venue = LiveVenue(CcxtVenue("binance", name="m"), [SYMBOL])
    feed = venue._feed(SYMBOL)
    feed.accept({"bids": BIDS, "asks": ASKS, "timestamp": 5.0})
    version, top = venue.book_now(SYMBOL, 3)
    assert version == 1 and venue.book_now(SYMBOL, 3)[1] is top
    assert top.bids.tolist() == BIDS[:3] and top.asks.tolist() == ASKS[:3]
    assert (top.venue, top.symbol, top.timestamp) == ("m", SYMBOL, 5.0)
    assert not top.bids.flags.writeable and top.best_ask == ASKS[0][0]
    feed.accept({"bids": BIDS[1:], "asks": ASKS, "timestamp": 6.0})
    version, again = venue.book_now(SYMBOL, 3)
    assert version == 2 and again is not top and again.bids.tolist() == BIDS[1:4]
