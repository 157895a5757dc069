"""`serve` on live websocket books and `/stream/route`, end to end without a network.

Two loopback exchanges speak Binance's diff-depth dialect; the real ccxt.pro client keeps
their books (LIQUIDROUTE_<NAME>_URL / _WS_URL), LiveFeeds put them into the service's
BookCache, uvicorn serves the app on 127.0.0.1, and a websocket client connects to the
url ccxt's own `OrderRouter.stream_url` builds. Every frame is checked against `route()`
computed here on the loopback servers' books, and fed to the client's
`build_execution_plan` (what the client does with a fetch_route answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time

import httpx
import pytest
from ccxt.base.errors import BadRequest
from ccxt.base.order_router import OrderRouter
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from liquidroute import route_graph
from liquidroute.model import DepthSnapshot
from liquidroute.service.app import create_app
from liquidroute.service.models import RouteResult
from tests.loopback.binance_ws import BinanceWsLoopback
from tests.service.live import sample_cache, serving
from tests.service.live_books import ASKS, BIDS, LiveService, frame, oracle, running, until

SPEND = {"amountIn": 200_000}  # about 3.3 BTC: the first levels of both books


@pytest.fixture
def pair():
    a = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()
    b = BinanceWsLoopback(bids=BIDS, asks=[[p + 2.0, s * 2] for p, s in ASKS]).start()
    yield {"a": a, "b": b}
    a.stop()
    b.stop()


def assert_is_oracle(service: LiveService, result: dict, names=None) -> None:
    """The frame's amounts are route()'s on the servers' books, and the client takes it."""
    q = oracle(service, "buy", SPEND["amountIn"], "quote", names)
    assert result["amountOut"] == pytest.approx(q.filled, rel=1e-12)
    assert result["amountIn"] == pytest.approx(q.total_cost, rel=1e-12)
    legs = {leg["exchangeId"]: leg["amount"] for leg in result["hops"][0]["legs"]}
    assert legs == pytest.approx({leg.venue: leg.amount for leg in q.legs}, rel=1e-12)
    RouteResult.model_validate(result)
    plan = service.client.build_execution_plan(result)
    assert plan["stepCount"] == len(legs)


def test_stream_pushes_the_route_then_a_new_one_when_the_book_changes(pair, monkeypatch):
    with running(monkeypatch, pair) as service, service.stream("USDT", "BTC", SPEND) as ws:
        first = frame(ws)
        assert_is_oracle(service, first)
        assert {(b["exchangeId"], b["feed"], b["excludedReason"]) for b in first["books"]} == {
            ("a", "websocket", ""),
            ("b", "websocket", ""),
        }
        assert all(0 <= b["ageMs"] < 10_000 for b in first["books"])
        pair["a"].update(asks=[(60011.0, 2.0)])  # a cheaper second level on a: the split moves
        second = frame(ws)
        assert second["amountOut"] > first["amountOut"]
        service.caught_up("a")
        assert_is_oracle(service, second)
        pair["b"].update(asks=[(60012.0, 0.0)])  # b's best level is gone
        third = frame(ws)
        service.caught_up("b")
        assert_is_oracle(service, third)
        # GET /route answers what the stream pushed, with the same books
        now = service.client.fetch_route("USDT", "BTC", SPEND)
        assert now["amountOut"] == third["amountOut"] and now["hops"] == third["hops"]


def test_no_frame_when_an_update_leaves_the_route_unchanged(pair, monkeypatch):
    with running(monkeypatch, pair) as service, service.stream("USDT", "BTC", SPEND) as ws:
        first = frame(ws)
        computes, frames = service.stats.computes, service.stats.frames
        pair["a"].update(asks=[(60090.0, 3.0)])  # far beyond what 200k USDT reaches
        service.caught_up("a")
        until(lambda: service.stats.computes > computes, 5, "no recompute on the update")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
        assert service.stats.frames == frames
        pair["a"].update(asks=[(60010.0, 0.5)])  # the best level shrinks: a frame
        changed = frame(ws)
        assert changed["amountOut"] < first["amountOut"]
        service.caught_up("a")
        assert_is_oracle(service, changed)


def test_at_most_10_frames_per_second_under_a_burst_of_200_updates(pair, monkeypatch):
    with running(monkeypatch, pair) as service, service.stream("USDT", "BTC", SPEND) as ws:
        frame(ws)
        received: list[float] = []
        last: dict = {}
        done = threading.Event()

        def burst() -> None:
            for i in range(200):  # every update changes the route: a's best ask size
                pair["a"].update(asks=[(60010.0, 1.0 + 0.01 * (i + 1))])
                time.sleep(0.01)
            done.set()

        thread = threading.Thread(target=burst)
        started = time.monotonic()
        thread.start()
        ended = None
        try:
            while ended is None or time.monotonic() < ended + 1.0:  # 1 s to settle
                if done.is_set() and ended is None:
                    ended = time.monotonic()
                try:
                    last = frame(ws, timeout=0.2)
                except TimeoutError:
                    continue
                received.append(time.monotonic())
        finally:
            thread.join()
        assert ended is not None
        duration = ended - started
        assert len(received) >= 5, received  # it streamed during the burst
        windows = [sum(1 for t in received if s <= t < s + 1.0) for s in received]
        assert max(windows) <= 11, (max(windows), len(received))  # 10/s, one of jitter
        assert len(received) <= 10 * (duration + 1.0) + 2, (len(received), duration)
        service.caught_up("a")  # the last frame is the route on the final book
        assert_is_oracle(service, last)


def test_balances_are_refused_and_bad_params_close_with_a_reason(pair, monkeypatch):
    with running(monkeypatch, pair) as service:
        client = service.client
        with pytest.raises(BadRequest, match="balances"):  # the client refuses them itself
            client.stream_url("USDT", "BTC", SPEND | {"balances": "a.USDT:100"})
        cases = [
            ("&balances=a.USDT%3A100", "balances"),
            ("&balanceMode=cap", "balanceMode"),
            ("&amountOut=1", "exactly one of amountIn or amountOut"),
            ("&maxVenues=0", "maxVenues"),
            ("&colour=blue", "colour: unknown parameter"),
        ]
        for extra, named in cases:
            with service.stream("USDT", "BTC", SPEND, extra) as ws:
                error = frame(ws)
                assert named in error["error"], error
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
                assert named.split(":")[0] in closed.value.rcvd.reason
        assert httpx.get(service.url + "/health").json()["status"] == "ok"  # no crash
        until(lambda: service.stats.open == 0, 5)
        # a client holding venues streams routes on those only (its `exchanges` filter)
        scoped = OrderRouter({"baseUrl": service.url, "venues": {"a": object()}})
        with connect(scoped.stream_url("USDT", "BTC", SPEND)) as ws:
            only_a = frame(ws)
        assert {leg["exchangeId"] for leg in only_a["hops"][0]["legs"]} == {"a"}
        assert [b["exchangeId"] for b in only_a["books"]] == ["a"]
        assert_is_oracle(service, only_a, names=["a"])


def test_a_stale_book_drops_out_of_route_and_the_stream_with_the_reason(pair, monkeypatch):
    stop = threading.Event()

    def keep_a_fresh() -> None:  # a far level toggles: a stays fresh, its route the same
        i = 0
        while not stop.is_set():
            pair["a"].update(bids=[(59000.0, 1.0 + i % 2)])
            i += 1
            time.sleep(0.1)

    with running(monkeypatch, pair, stale_ms=800) as service:
        ticker = threading.Thread(target=keep_a_fresh)
        ticker.start()
        try:
            with service.stream("USDT", "BTC", SPEND) as ws:
                first = frame(ws)
                assert {leg["exchangeId"] for leg in first["hops"][0]["legs"]} == {"a", "b"}
                pair["b"].stall(True)  # b's stream stops: no update, no notification
                stale = frame(ws, timeout=5)  # pushed when b turns stale, without an update
                books = {b["exchangeId"]: b for b in stale["books"]}
                assert books["b"]["excludedReason"].startswith("stale: no update within 800 ms")
                assert books["b"]["ageMs"] > 800 and books["a"]["excludedReason"] == ""
                assert {leg["exchangeId"] for leg in stale["hops"][0]["legs"]} == {"a"}
                assert_is_oracle(service, stale, names=["a"])
                routed = service.client.fetch_route("USDT", "BTC", SPEND)
                assert {b["exchangeId"]: b["excludedReason"] for b in routed["books"]}["b"]
                assert any(w.startswith("b BTC/USDT left out: stale") for w in routed["warnings"])
                status = {e["exchangeId"]: e for e in service.client.fetch_exchanges_status()}
                assert status["b"]["freshBooks"] == 0 and status["a"]["freshBooks"] == 1
                pair["b"].stall(False)
                pair["b"].update(bids=[(59001.0, 1.0)])
                back = frame(ws, timeout=5)  # b is routed on again
                assert {leg["exchangeId"] for leg in back["hops"][0]["legs"]} == {"a", "b"}
        finally:
            stop.set()
            ticker.join()


def test_books_going_stale_without_any_update_are_pushed(pair, monkeypatch):
    with (
        running(monkeypatch, pair, stale_ms=600) as service,
        service.stream("USDT", "BTC", SPEND) as ws,
    ):
        assert frame(ws)["fullyFillable"]
        for ex in pair.values():
            ex.stall(True)
        t0 = time.monotonic()
        gone = frame(ws, timeout=5)  # no update reached the server: the stale timer
        if gone["hops"]:  # the two books turn stale a moment apart
            assert {b["exchangeId"] for b in gone["books"] if b["excludedReason"]}
            gone = frame(ws, timeout=5)
        assert time.monotonic() - t0 < 3
        assert gone["hops"] == [] and gone["unroutableReason"].startswith("no_fresh_book")
        assert "stale" in gone["unroutableReason"]
        assert {b["exchangeId"] for b in gone["books"] if b["excludedReason"]} == {"a", "b"}
        ready = httpx.get(service.url + "/ready")
        assert ready.status_code == 503 and ready.json()["freshCount"] == 0


def test_streams_clean_up_on_disconnect_and_health_stays_fast(pair, monkeypatch):
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            pair["a"].update(asks=[(60010.0, 1.0 + 0.01 * (i % 50))])
            i += 1
            time.sleep(0.005)

    with running(monkeypatch, pair, workers=2) as service, contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(service.stream("USDT", "BTC", SPEND | {"amountIn": 1e5 + i}))
            for i in range(6)
        ]
        for ws in sockets:
            frame(ws)
        assert httpx.get(service.url + "/health").json()["openStreams"] == 6
        thread = threading.Thread(target=churn)
        thread.start()
        health = []
        try:
            with httpx.Client(base_url=service.url, timeout=10) as http:
                for _ in range(60):
                    t0 = time.perf_counter()
                    assert http.get("/health").status_code == 200
                    health.append(time.perf_counter() - t0)
                    time.sleep(0.02)
        finally:
            stop.set()
            thread.join()
        assert statistics.quantiles(health, n=100)[98] < 0.25, max(health)
        assert service.stats.frames > 6  # the streams were pushing meanwhile
        for ws in sockets:
            ws.close()
        until(lambda: service.stats.open == 0, 10, "a stream outlived its client")
        until(lambda: not service.stats.inflight, 10, "a route task outlived its stream")
        assert service.cache.watchers == []
        assert httpx.get(service.url + "/health").json()["openStreams"] == 0


def test_a_venue_without_websocket_is_polled_and_says_so(pair, monkeypatch):
    with running(monkeypatch, pair, polled=["b"]) as service:
        status = {e["exchangeId"]: e for e in service.client.fetch_exchanges_status()}
        assert (status["a"]["feed"], status["b"]["feed"]) == ("websocket", "polling")
        polls = pair["b"].count("/api/v3/depth")
        until(lambda: pair["b"].count("/api/v3/depth") > polls + 2, 5, "b is not polled")
        result = service.client.fetch_route("USDT", "BTC", SPEND)
        assert {b["exchangeId"]: b["feed"] for b in result["books"]} == {
            "a": "websocket",
            "b": "polling",
        }
        with service.stream("USDT", "BTC", SPEND) as ws:
            frame(ws)
            pair["b"].update(asks=[(60011.0, 5.0)])  # seen at the next poll
            changed = frame(ws)
            service.caught_up("b")
            assert_is_oracle(service, changed)


def test_a_sequence_gap_withdraws_the_book_until_the_resync(pair, monkeypatch):
    with running(monkeypatch, pair) as service:
        seen: list[tuple[str, str]] = []  # (venue, why withdrawn or '') at each change
        service.cache.subscribe(lambda key: seen.append((key[0], service.cache.exclusion(key))))
        pair["a"].gap()
        pair["a"].update(asks=[(60011.0, 2.0)])  # U skips an id: ccxt.pro raises InvalidNonce
        until(lambda: service.venues[0].status("BTC/USDT").resyncs >= 1, 10, "no resync")
        service.caught_up("a")
        reasons = [why for venue, why in seen if venue == "a"]
        assert any(why.startswith("withdrawn: resyncing") for why in reasons), reasons
        assert reasons[-1] == ""  # back, equal to the server's book
        result = service.client.fetch_route("USDT", "BTC", SPEND)
        assert all(b["excludedReason"] == "" for b in result["books"])
        assert_is_oracle(service, result)


def test_a_multi_hop_stream_recomputes_on_every_hop_market_and_only_those():
    """A static cache without ETH/USDT: USDT -> ETH goes through BTC. Books are put on
    the server's event loop, as a feed puts them."""
    cache = sample_cache()
    for key in [k for k in cache.books if k[1] == "ETH/USDT"]:
        del cache.books[key], cache.markets[key], cache.fetched_ms[key]
    app = create_app(cache, workers=1, route_timeout=30, stream_recheck_s=60)
    loops: list[asyncio.AbstractEventLoop] = []

    async def keep_loop() -> None:
        loops.append(asyncio.get_running_loop())

    app.router.on_startup.append(keep_loop)

    def put(symbol: str, scale: float) -> None:
        old = cache.books[("binance", symbol)]
        new = DepthSnapshot("binance", symbol, old.bids * [scale, 1], old.asks * [scale, 1])
        market = cache.markets[("binance", symbol)]
        loops[0].call_soon_threadsafe(cache.put, new, market)

    def oracle_out() -> float:
        snaps = [b for (_, s), b in cache.books.items() if s in ("BTC/USDT", "ETH/BTC")]
        markets = [cache.markets[(b.venue, b.symbol)] for b in snaps]
        q = route_graph(
            snaps, "USDT", "ETH", markets=markets, amount_in=50_000, bridges=["BTC"], max_hops=2
        )
        return float(q.amount_out)

    params = {"amountIn": 50_000, "bridges": "BTC"}
    with (
        serving(app) as url,
        connect(OrderRouter({"baseUrl": url}).stream_url("USDT", "ETH", params)) as ws,
    ):
        stats = app.state.streams
        first = frame(ws)
        assert first["path"] == ["USDT", "BTC", "ETH"]
        assert [h["pair"] for h in first["hops"]] == ["BTC/USDT", "ETH/BTC"]
        assert {b["symbol"] for b in first["books"]} == {"BTC/USDT", "ETH/BTC"}
        assert first["amountOut"] == pytest.approx(oracle_out(), rel=1e-9)
        put("ETH/BTC", 0.998)  # the second hop's book gets cheaper: more ETH
        second = frame(ws)
        assert second["amountOut"] > first["amountOut"]
        assert second["amountOut"] == pytest.approx(oracle_out(), rel=1e-9)
        computes = stats.computes
        put("USDC/USDT", 1.001)  # a market the route does not trade: no recompute
        time.sleep(0.4)
        assert stats.computes == computes
        put("BTC/USDT", 0.999)  # the first hop's book: recomputed, a new route
        third = frame(ws)
        assert stats.computes == computes + 1
        assert third["amountOut"] == pytest.approx(oracle_out(), rel=1e-9)
