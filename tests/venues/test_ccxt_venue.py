"""CcxtVenue through a REAL ccxt binance client against a loopback Binance-dialect server."""

from __future__ import annotations

import asyncio
import json

import ccxt
import pytest
from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE

from liquidroute.errors import (
    MalformedBookError,
    OrderRejectedError,
    RateLimitedError,
    UnknownSymbolError,
    UnknownVenueError,
    VenueUnavailableError,
)
from liquidroute.model import ChildOrder
from liquidroute.venues.ccxt_venue import CcxtVenue, market_from_ccxt
from tests.conftest import SHARED_DATA, binance_client


def venue(loopback, **kw) -> CcxtVenue:
    return CcxtVenue("binance", exchange=binance_client(loopback.base_url, **kw))


async def _with(v: CcxtVenue, coro):
    try:
        return await coro
    finally:
        await v.close()


def run(v, coro):
    return asyncio.run(_with(v, coro))


def test_book_and_market_from_the_server(loopback):
    v = venue(loopback, keys=False)

    async def go():
        snap = await v.snapshot("BTC/USDT", 10)
        market = await v.market("BTC/USDT")
        again = await v.snapshot("BTC/USDT")
        return snap, market, again

    snap, market, again = run(v, go())
    assert snap.bids.tolist() == loopback.bids and snap.asks.tolist() == loopback.asks
    assert snap.venue == "binance" and again.best_ask == snap.best_ask
    assert market.amount_step == 1e-5 and market.price_tick == 0.01
    assert market.min_amount == 1e-5 and market.min_notional == 5.0
    assert market.taker_fee == 0.001
    assert loopback.count("/api/v3/exchangeInfo") == 1  # markets loaded once


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("429", RateLimitedError, "rate limited"),
        ("500", VenueUnavailableError, "unreachable"),
        ("hang", VenueUnavailableError, "RequestTimeout"),
        ("drop", VenueUnavailableError, "unreachable"),
        ("crossed", MalformedBookError, "crossed"),
        ("garbage", MalformedBookError, "empty or unreadable"),
    ],
)
def test_faults_become_liquidroute_errors(loopback, fault, error, words):
    loopback.fail("/api/v3/depth", fault, times=2)  # aiohttp retries a dropped GET once
    v = venue(loopback, keys=False, timeout_ms=800)

    async def go():
        await v.market("BTC/USDT")
        return await v.snapshot("BTC/USDT")

    with pytest.raises(error, match=words) as info:
        run(v, go())
    assert "binance" in str(info.value)


def test_unknown_symbol_and_venue(loopback):
    v = venue(loopback, keys=False)
    with pytest.raises(UnknownSymbolError, match="does not list ETH/USDT"):
        run(v, v.snapshot("ETH/USDT"))
    with pytest.raises(UnknownVenueError, match="liquidroute venues"):
        CcxtVenue("not-an-exchange")


def test_orders_by_client_id(loopback):
    v = venue(loopback)
    order = ChildOrder("p", "lr-test-1", "binance", "BTC/USDT", "buy", 1.5, 60020.0)

    async def go():
        placed = await v.place_order(order)
        found = await v.fetch_order(order)
        missing = await v.fetch_order(
            ChildOrder("p", "lr-never", "binance", "BTC/USDT", "buy", 1.0, 1.0)
        )
        with pytest.raises(OrderRejectedError, match="Duplicate"):
            await v.place_order(order)  # the venue recognises the retry
        return placed, found, missing

    placed, found, missing = run(v, go())
    assert placed.status == "filled" and placed.filled == 1.5
    assert placed.avg_price == pytest.approx((60010 * 1 + 60020 * 0.5) / 1.5)
    assert placed.fee == pytest.approx(placed.avg_price * 1.5 * 0.001)
    assert found.filled == placed.filled and found.venue_order_id == placed.venue_order_id
    assert missing is None
    assert loopback.orders["lr-test-1"]["timeInForce"] == "IOC"


@pytest.mark.parametrize(
    ("fault", "error"),
    [("insufficient_balance", OrderRejectedError), ("filter_failure", OrderRejectedError)],
)
def test_rejections(loopback, fault, error):
    loopback.fail("/api/v3/order", fault)
    v = venue(loopback)
    with pytest.raises(error, match="binance"):
        run(v, v.place_order(ChildOrder("p", "c", "binance", "BTC/USDT", "buy", 0.1, 60020.0)))


def test_market_from_ccxt_precision_modes():
    okx = ccxt.okx()
    record = json.loads((SHARED_DATA / "markets" / "okx.markets.jsonl").read_text().splitlines()[0])
    unified = okx.parse_market(record["items"][0])
    m = market_from_ccxt("okx", unified, okx.precisionMode)
    assert okx.precisionMode == TICK_SIZE
    assert (m.symbol, m.amount_step, m.price_tick, m.min_amount) == ("BTC/USDT", 1e-8, 0.1, 1e-5)
    raw = {
        "symbol": "BTC/USDT",
        "taker": 0.002,
        "precision": {"amount": 4, "price": 2},
        "limits": {"amount": {"min": 0.0001, "max": None}, "cost": {"min": 10}},
    }
    dp = market_from_ccxt("x", raw, DECIMAL_PLACES)
    assert dp.amount_step == pytest.approx(1e-4) and dp.price_tick == pytest.approx(0.01)
    assert dp.min_notional == 10 and dp.max_amount is None and dp.taker_fee == 0.002
    sd = market_from_ccxt("x", raw, SIGNIFICANT_DIGITS)
    assert sd.amount_step is None and sd.price_tick is None


def test_venue_without_ioc_gets_a_limit_order_cancelled_after_the_timeout(loopback):
    import copy

    client = binance_client(loopback.base_url)
    client.features = copy.deepcopy(client.features)
    client.features["spot"]["createOrder"]["timeInForce"]["IOC"] = False
    v = CcxtVenue("binance", exchange=client, ioc_timeout_s=0.2)
    assert not v.supports_ioc()
    order = ChildOrder("p", "lr-gtc-1", "binance", "BTC/USDT", "buy", 7.0, 60020.0)
    update = run(v, v.place_order(order))
    server = loopback.orders["lr-gtc-1"]
    assert server["timeInForce"] == "GTC" and server["status"] == "CANCELED"
    assert loopback.count("/api/v3/order", "DELETE") == 1
    assert update.status == "cancelled" and update.filled == pytest.approx(6.0)


def test_lookup_without_fetch_order_scans_open_and_closed_orders(loopback):
    client = binance_client(loopback.base_url)
    client.has = dict(client.has) | {"fetchOrder": False}
    v = CcxtVenue("binance", exchange=client)
    placed = ChildOrder("p", "lr-scan-1", "binance", "BTC/USDT", "buy", 0.5, 60020.0)
    never = ChildOrder("p", "lr-scan-2", "binance", "BTC/USDT", "buy", 0.5, 60020.0)

    async def go():
        await v.place_order(placed)
        return await v.fetch_order(placed), await v.fetch_order(never)

    found, missing = run(v, go())
    assert found is not None and found.filled == pytest.approx(0.5)
    assert missing is None
    assert loopback.count("/api/v3/allOrders") == 2
