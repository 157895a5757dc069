"""Routing on live books: quotes from memory, and a quote stream that follows the optimum."""

from __future__ import annotations

import asyncio
import select
import socket

import pytest

from liquidroute import Router
from liquidroute.model import DepthSnapshot
from liquidroute.router.route import route
from liquidroute.venues.live import catch_up, unread
from tests.loopback.binance_ws import BinanceWsLoopback
from tests.venues.test_live import ASKS, BIDS, SYMBOL, equal_to_server, live, on_server, until


@pytest.fixture
def pair():
    a = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()
    b = BinanceWsLoopback(bids=BIDS, asks=[[p + 2.0, s * 2] for p, s in ASKS]).start()
    yield a, b
    a.stop()
    b.stop()


def server_snapshot(name: str, ex: BinanceWsLoopback) -> DepthSnapshot:
    bids, asks = ex.book()
    return DepthSnapshot(name, SYMBOL, bids, asks)


def test_quote_answers_from_memory_and_equals_route_on_the_servers_books(pair, monkeypatch):
    a, b = pair

    async def go():
        venues = [live(monkeypatch, a, "a=binance"), live(monkeypatch, b, "b=binance")]
        async with Router(venues) as router:
            await router.start()
            await on_server(a.update, asks=[(60012.0, 0.7)])
            await equal_to_server(venues[0], a)
            await equal_to_server(venues[1], b)
            requests = len(a.requests), len(b.requests)
            for amount in (0.5, 3.0, 12.0):
                quote = await router.quote(SYMBOL, "buy", amount)
                markets = {v.name: await v.market(SYMBOL) for v in venues}
                oracle = route(
                    [server_snapshot("a", a), server_snapshot("b", b)],
                    "buy",
                    amount,
                    markets=markets,
                )
                assert quote.total_cost == pytest.approx(oracle.total_cost, rel=1e-12)
                assert {(leg.venue, leg.amount) for leg in quote.legs} == {
                    (leg.venue, leg.amount) for leg in oracle.legs
                }
            assert (len(a.requests), len(b.requests)) == requests  # no network on the hot path

    asyncio.run(go())


def test_watch_yields_when_the_optimum_changes_and_only_then(pair, monkeypatch):
    a, b = pair

    async def go():
        venues = [live(monkeypatch, a, "a=binance"), live(monkeypatch, b, "b=binance")]
        async with Router(venues) as router:
            await router.start()
            stream = router.watch(SYMBOL, "buy", 1.5, recheck_s=0.05).__aiter__()
            first = await asyncio.wait_for(stream.__anext__(), 5)
            # a level far beyond what 1.5 BTC reaches: the optimum is unchanged
            await on_server(a.update, asks=[(60090.0, 3.0)])
            await equal_to_server(venues[0], a)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(nxt := asyncio.ensure_future(stream.__anext__())), 0.3
                )
            # a cheaper ask on b: the split must move
            await on_server(b.update, asks=[(60005.0, 1.0)])
            second = await asyncio.wait_for(nxt, 5)
            assert second.total_cost < first.total_cost
            assert dict((leg.venue, leg.amount) for leg in second.legs)["b"] >= 1.0
            await stream.aclose()
            # the watch's wake-up is unsubscribed; the router's own (it drops the books it
            # keeps between quotes when one changes) stays until the router closes
            assert len(venues[0]._feed(SYMBOL).callbacks) == 1
        assert not venues[0]._feed(SYMBOL).callbacks

    asyncio.run(go())


def test_watch_min_interval_spaces_the_quotes(pair, monkeypatch):
    a, b = pair

    async def go():
        venues = [live(monkeypatch, a, "a=binance"), live(monkeypatch, b, "b=binance")]
        async with Router(venues) as router:
            await router.start()
            stream = router.watch(SYMBOL, "buy", 1.5, min_interval_s=0.4).__aiter__()
            await asyncio.wait_for(stream.__anext__(), 5)
            first_at = asyncio.get_running_loop().time()
            await on_server(b.update, asks=[(60005.0, 1.0)])
            await on_server(b.update, asks=[(60004.0, 1.0)])  # coalesced with the one above
            second = await asyncio.wait_for(stream.__anext__(), 5)
            assert asyncio.get_running_loop().time() - first_at >= 0.35
            # both updates are in it: 1.0 at 60004, 0.5 at 60005, all on b
            assert second.venues == ("b",)
            assert second.legs[0].avg_price == pytest.approx((60004.0 + 0.5 * 60005.0) / 1.5)
            await stream.aclose()

    asyncio.run(go())


def test_watch_yields_again_when_the_only_book_recovers(monkeypatch):
    ex = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()

    async def go():
        venue = live(monkeypatch, ex, max_age_s=0.3)
        async with Router([venue], max_age_ms=300) as router:
            await router.start()
            quotes = []

            async def consume() -> None:
                async for q in router.watch(SYMBOL, "buy", 1.0, recheck_s=0.05):
                    quotes.append(q)

            consumer = asyncio.create_task(consume())
            await until(lambda: len(quotes) == 1)
            ex.stall(True)
            await until(lambda: venue.status(SYMBOL).state == "stale")
            await asyncio.sleep(0.2)  # nothing routable: nothing yielded
            assert len(quotes) == 1
            ex.stall(False)
            await on_server(ex.update, bids=[(59000.0, 1.0)])  # fresh, same optimum
            await until(lambda: len(quotes) == 2)
            assert quotes[1].total_cost == quotes[0].total_cost
            consumer.cancel()

    try:
        asyncio.run(go())
    finally:
        ex.stop()


def test_watch_is_woken_by_the_book_update_itself_not_the_recheck_timer(pair, monkeypatch):
    """The feed's callback wakes the waiting watcher directly: with a 30 s recheck, a
    cheaper ask on one venue still yields the new optimum within a second or two."""
    a, b = pair

    async def go():
        venues = [live(monkeypatch, a, "a=binance"), live(monkeypatch, b, "b=binance")]
        async with Router(venues) as router:
            await router.start()
            stream = router.watch(SYMBOL, "buy", 1.5, recheck_s=30.0).__aiter__()
            first = await asyncio.wait_for(stream.__anext__(), 5)
            await on_server(b.update, asks=[(60005.0, 1.0)])
            second = await asyncio.wait_for(stream.__anext__(), 2)
            assert second.total_cost < first.total_cost
            await stream.aclose()
            assert len(venues[1]._feed(SYMBOL).callbacks) == 1  # the router's, see above
        assert not venues[1]._feed(SYMBOL).callbacks

    asyncio.run(go())


def test_a_re_quote_routes_on_the_updates_that_have_already_arrived(pair, monkeypatch):
    """Two venues' updates arrive together: a's wakes the waiting watch, and b's bytes are
    already in this process's socket, unread, when the watch resumes. The re-quote
    routes on both (b's cheaper ask takes the order), not on a's alone first."""
    a, b = pair

    async def go():
        venues = [live(monkeypatch, a, "a=binance"), live(monkeypatch, b, "b=binance")]
        async with Router(venues) as router:
            await router.start()
            stream = router.watch(SYMBOL, "buy", 1.0, recheck_s=30.0).__aiter__()
            first = await asyncio.wait_for(stream.__anext__(), 5)
            assert [(leg.venue, leg.amount) for leg in first.legs] == [("a", 1.0)]
            armed = True

            def then_b(event) -> None:  # in a's message handler, before the watch runs
                nonlocal armed
                if armed and event.venue == "a":
                    armed = False
                    b.update(asks=[(60001.0, 5.0)])  # returns once the server has sent it
                    assert select.select(venues[1].sockets(), [], [], 5)[0]  # here, unread

            venues[0].add_listener(then_b)
            pending = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0.05)  # the watch waits for an update
            a.update(asks=[(60005.0, 5.0)])  # sent; this loop reads it once we await
            quote = await asyncio.wait_for(pending, 5)
            assert not armed
            assert [(leg.venue, leg.amount) for leg in quote.legs] == [("b", 1.0)]
            await stream.aclose()

    asyncio.run(go())


def test_catch_up_reads_what_has_arrived_and_is_bounded_when_bytes_keep_coming():
    """`unread` sees bytes waiting in a venue's socket; `catch_up` gives the loop a few
    iterations for them and then returns even if they are never read."""

    class Pipe:  # a streaming venue's sockets: one end of a socket pair
        name = "pipe"

        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def fds(self) -> tuple[int, ...]:
            return (self.sock.fileno(),)

    left, right = socket.socketpair()
    try:
        venue = Pipe(left)
        assert not unread([venue])
        right.send(b"x")
        assert unread([venue])
        asyncio.run(asyncio.wait_for(catch_up([venue]), 2))  # type: ignore[list-item]
        assert unread([venue])  # nobody reads this pipe: catch_up gave up, as it must
        left.recv(1)
        assert not unread([venue])
    finally:
        left.close()
        right.close()


def test_the_polled_sockets_follow_a_reconnection(pair, monkeypatch):
    """`fds()` (what `unread` polls) is kept between calls and read again after the feed
    lost its connection: the new socket's descriptor, not the closed one's (its number is
    held here meanwhile, so the new socket cannot reuse it)."""
    import os

    a, _ = pair

    async def go():
        venue = live(monkeypatch, a, "a=binance", backoff_s=(0.5, 1.0))
        async with venue:
            await until(lambda: venue.status(SYMBOL).state == "live")
            before = venue.fds()
            assert before and before == tuple(s.fileno() for s in venue.sockets())
            await on_server(a.drop)
            await until(lambda: venue.status(SYMBOL).state == "reconnecting")
            await until(lambda: not venue.sockets())  # the old socket is closed
            held = os.pipe()  # the lowest free descriptors: the closed socket's among them
            try:
                await until(lambda: venue.status(SYMBOL).state == "live")
                now = tuple(s.fileno() for s in venue.sockets())
                assert now and not set(now) & set(before)
                assert venue.fds() == now
            finally:
                os.close(held[0])
                os.close(held[1])

    asyncio.run(go())
