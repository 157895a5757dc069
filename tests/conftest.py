"""Shared fixtures: where the real recorded data lives (shared/ beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
