"""`liquidroute serve` as a process, and live books kept fresh from a loopback exchange."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from ccxt.base.order_router import OrderRouter
from websockets.sync.client import connect

from liquidroute.model import DepthSnapshot, Market
from liquidroute.router.route import route
from liquidroute.service.app import BookCache, refresh_forever
from liquidroute.venues.ccxt_venue import CcxtVenue
from tests.conftest import binance_client
from tests.loopback.binance_server import client_options
from tests.loopback.binance_ws import BinanceWsLoopback
from tests.venues.test_live import ASKS, BIDS, SYMBOL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_sample_process_answers_the_ccxt_client():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "liquidroute", "serve", "--sample", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        client = OrderRouter({"baseUrl": f"http://127.0.0.1:{port}", "timeoutMs": 20000})
        deadline = time.monotonic() + 30
        while True:
            try:
                assert client.fetch_health()["status"] == "ok"
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        route = client.fetch_route("USDT", "ETH", {"amountIn": 10_000})
        assert route["fullyFillable"] and route["amountOut"] > 3
    finally:
        proc.terminate()
        proc.wait(10)


def test_live_books_refresh_and_go_stale(loopback):
    cache = BookCache(live=True, stale_ms=400)
    venue = CcxtVenue("binance", exchange=binance_client(loopback.base_url, keys=False))
    loop = asyncio.new_event_loop()
    task = loop.create_task(refresh_forever(cache, [venue], ["BTC/USDT", "ETH/USDT"], 0.1))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not cache.fresh_books() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [b.symbol for b in cache.fresh_books()] == ["BTC/USDT"]  # ETH/USDT not listed
        assert cache.books[("binance", "BTC/USDT")].asks.tolist() == loopback.asks
        polls = loopback.count("/api/v3/depth")
        time.sleep(0.5)
        assert loopback.count("/api/v3/depth") > polls  # kept fresh in the background
        loopback.fail("/api/v3/depth", "500", times=1000)  # the venue goes down
        time.sleep(1.0)
        assert cache.fresh_books() == []  # stale books are not routed on
        assert "binance" in cache.errors
    finally:
        loop.call_soon_threadsafe(task.cancel)
        time.sleep(0.1)
        asyncio.run_coroutine_threadsafe(venue.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_serve_venues_process_keeps_books_by_websocket_and_streams_routes():
    """`liquidroute serve --venues` as a process against a loopback websocket exchange:
    the start-up line names the feed, and a stream follows the server's book."""
    ex = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()
    port = free_port()
    env = os.environ.copy() | {
        "LIQUIDROUTE_A_URL": ex.base_url,
        "LIQUIDROUTE_A_WS_URL": ex.ws_base_url,
        "LIQUIDROUTE_A_OPTIONS": json.dumps(client_options()),
    }
    argv = ["serve", "--venues", "a=binance", "--symbols", "BTC/USDT,ETH/USDT"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "liquidroute", *argv, "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(url + "/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "serve never got ready"
            time.sleep(0.2)
        client = OrderRouter({"baseUrl": url, "timeoutMs": 20000})
        (status,) = client.fetch_exchanges_status()
        assert (status["exchangeId"], status["feed"], status["books"]) == ("a", "websocket", 1)
        assert ex.subscribe_count >= 1  # the book came by the stream ...
        depth_polls = ex.count("/api/v3/depth")
        with connect(client.stream_url("USDT", "BTC", {"amountIn": 200_000})) as ws:
            first = json.loads(ws.recv(timeout=10))
            ex.update(asks=[(60011.0, 2.0)])
            second = json.loads(ws.recv(timeout=10))
        assert ex.count("/api/v3/depth") == depth_polls  # ... and is kept without polling
        fee = second["hops"][0]["legs"][0]["takerFeeRate"]
        bids, asks = ex.book()
        q = route(
            [DepthSnapshot("a", SYMBOL, bids, asks)],
            "buy",
            200_000,
            amount_in="quote",
            markets={"a": Market("a", SYMBOL, taker_fee=fee)},
            rules=False,
        )
        assert second["amountOut"] == pytest.approx(q.filled, rel=1e-12)
        assert second["amountOut"] > first["amountOut"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
        ex.stop()
    assert "live venues: a (websocket, 1 market)" in err and "/stream/route" in err, err
    assert "Traceback" not in err, err
