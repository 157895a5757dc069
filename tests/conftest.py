"""Shared fixtures: where the real recorded data lives (shared/ beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests on a fixed, reproducible set of examples
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BOOKS = SHARED_DATA / "books"
BOOK_FILES = {
    "binance": BOOKS / "binance_incremental_book_L2_BTCUSDT.csv.gz",
    "bybit-spot": BOOKS / "bybit-spot_incremental_book_L2_BTCUSDT.csv.gz",
    "bybit": BOOKS / "bybit_incremental_book_L2_BTCUSDT.csv.gz",
    "okex": BOOKS / "okex_incremental_book_L2_BTC-USDT.csv.gz",
}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"the real data must sit beside the repo: {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture
def loopback():
    """A Binance-dialect exchange on 127.0.0.1 (stopped after the test)."""
    from tests.loopback.binance_server import BinanceLoopback

    exchange = BinanceLoopback(hang_s=2.0).start()
    yield exchange
    exchange.stop()


def binance_client(base_url: str, *, keys: bool = True, timeout_ms: int = 1500):
    """A real ccxt async binance client pointed at a loopback exchange."""
    import ccxt.async_support as ccxt_async

    from liquidroute.venues.ccxt_venue import rewrite_urls
    from tests.loopback.binance_server import API_KEY, SECRET, client_options

    config = {"options": client_options(), "timeout": timeout_ms, "enableRateLimit": False}
    if keys:
        config |= {"apiKey": API_KEY, "secret": SECRET}
    client = ccxt_async.binance(config)
    client.urls["api"] = rewrite_urls(client.urls["api"], base_url)
    return client
