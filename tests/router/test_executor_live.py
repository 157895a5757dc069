"""The executor with real ccxt clients against loopback Binance-dialect exchanges.

Two exchange instances act as two venues. Every fault is injected on one leg while the
other succeeds; the parent must end filled or with an exactly reported remainder, the
servers' fills must equal the report, and no client order id may reach a server twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from liquidroute import Router
from liquidroute.router.executor import ExecutionPolicy, Executor
from liquidroute.router.journal import Journal
from liquidroute.venues.ccxt_venue import CcxtVenue
from tests.conftest import binance_client
from tests.loopback.binance_server import BinanceLoopback

BOOK_A = {"bids": [[59990.0, 2.0]], "asks": [[60000.0, 1.0], [60030.0, 4.0]]}
BOOK_B = {"bids": [[59985.0, 2.0]], "asks": [[60005.0, 1.0], [60040.0, 4.0]]}


@pytest.fixture
def pair():
    a = BinanceLoopback(hang_s=2.0, **BOOK_A).start()
    b = BinanceLoopback(hang_s=2.0, **BOOK_B).start()
    yield a, b
    a.stop()
    b.stop()


def execute(pair, amount, tmp_path, **policy):
    a, b = pair
    venues = [
        CcxtVenue("binance", name="a", exchange=binance_client(a.base_url, timeout_ms=1000)),
        CcxtVenue("binance", name="b", exchange=binance_client(b.base_url, timeout_ms=1000)),
    ]
    journal = Journal(tmp_path / "journal.sqlite3")
    executor = Executor(
        Router(venues, max_age_ms=None), journal, live=True, policy=ExecutionPolicy(**policy)
    )

    async def go():
        try:
            return await executor.execute("BTC/USDT", "buy", amount)
        finally:
            await executor.router.close()

    return asyncio.run(go()), journal


def server_fills(pair):
    return sum(o["executedQty"] for ex in pair for o in ex.orders.values())


def assert_no_duplicate_posts(pair, report):
    posted = Counter(cid for ex in pair for cid in ex.posted_ids)
    assert posted and all(n == 1 for n in posted.values()), posted
    assert set(posted) == {c.client_id for c in report.children}


def test_split_across_two_live_venues(pair, tmp_path):
    report, journal = execute(pair, 2.5, tmp_path)
    assert report.complete and report.stop_reason == "filled"
    assert {c.venue for c in report.children} == {"a", "b"}
    assert report.filled == pytest.approx(server_fills(pair))
    assert report.total_fees == pytest.approx(
        sum(o["cummulativeQuoteQty"] for ex in pair for o in ex.orders.values()) * 0.001
    )
    assert_no_duplicate_posts(pair, report)
    assert journal.parent(report.parent_id).state == "filled"


@pytest.mark.parametrize(
    "fault",
    [
        "insufficient_balance",
        "filter_failure",
        "429",
        "500",
        "drop",
        "accept_then_hang",
        "partial:0.5",
    ],
)
def test_fault_on_one_leg(pair, tmp_path, fault):
    a, _ = pair
    a.fail("/api/v3/order", fault)
    report, journal = execute(pair, 2.5, tmp_path)
    assert report.filled == pytest.approx(server_fills(pair), abs=1e-12)
    assert report.filled + report.unfilled == pytest.approx(2.5)
    assert_no_duplicate_posts(pair, report)
    first_a = next(c for c in report.children if c.venue == "a")
    if fault == "accept_then_hang":  # sent, no answer: resolved by lookup, never resent
        assert first_a.state == "filled"
        events = [
            k for _, cid, k, _ in journal.events(report.parent_id) if cid == first_a.client_id
        ]
        assert "unknown" in events and "resolved" in events
    if fault in ("drop", "500"):  # never placed: the lookup says so, the rest is re-routed
        assert first_a.state == "failed"
    assert report.complete, report.stop_reason


def test_remainder_reported_exactly_when_books_run_out(pair, tmp_path):
    report, _ = execute(pair, 20.0, tmp_path, max_rounds=2)
    assert report.filled == pytest.approx(10.0)
    assert report.unfilled == pytest.approx(10.0)
    assert report.filled == pytest.approx(server_fills(pair))


def test_limit_price_stops_before_breaching(pair, tmp_path):
    report, _ = execute(pair, 4.0, tmp_path, limit_price=60010.0)
    assert report.filled == pytest.approx(2.0)  # only the levels at or under 60010
    for ex in pair:
        for o in ex.orders.values():
            assert o["price"] <= 60010.0
