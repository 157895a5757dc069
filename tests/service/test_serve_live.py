"""`liquidroute serve` as a process, and live books kept fresh from a loopback exchange."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time

from ccxt.base.order_router import OrderRouter

from liquidroute.service.app import BookCache, refresh_forever
from liquidroute.venues.ccxt_venue import CcxtVenue
from tests.conftest import binance_client


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
