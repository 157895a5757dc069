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


MODES = {"DECIMAL_PLACES": DECIMAL_PLACES, "SIGNIFICANT_DIGITS": SIGNIFICANT_DIGITS,
         "TICK_SIZE": TICK_SIZE}  # fmt: skip
PRECISIONS = {
    DECIMAL_PLACES: [0, 2, 5, 8],
    SIGNIFICANT_DIGITS: [1, 3, 5, 8],
    TICK_SIZE: [1e-5, 0.01, 0.5, 5.0, 0.00025],
}


def ccxt_oracle(mode, precision):
    """A real ccxt exchange object whose one market has this precision (the oracle)."""
    ex = ccxt.binance()
    ex.precisionMode = mode
    ex.markets = {"X/Y": {"symbol": "X/Y", "precision": {"amount": precision, "price": precision}}}
    ex.markets_by_id = {}
    return ex


def values(seed=7, n=200):
    import random

    rng = random.Random(seed)
    return [round(rng.uniform(0.001, 2000) * 10 ** rng.randint(-3, 2), 10) for _ in range(n)]


@pytest.mark.parametrize("mode_name", list(MODES))
def test_to_precision_truncates_as_ccxt_amount_to_precision(mode_name):
    from ccxt.base.errors import InvalidOrder

    from liquidroute.venues.ccxt_venue import to_precision

    mode = MODES[mode_name]
    for precision in PRECISIONS[mode]:
        oracle = ccxt_oracle(mode, precision)
        for value in values():
            try:
                expected = float(oracle.amount_to_precision("X/Y", value))
            except InvalidOrder:  # below one unit: ccxt refuses, ours gives 0
                assert to_precision(value, precision, mode, up=False) == 0.0
                continue
            assert to_precision(value, precision, mode, up=False) == expected, (value, precision)


@pytest.mark.parametrize("mode_name", list(MODES))
def test_to_precision_up_is_the_smallest_grid_value_above(mode_name):
    from decimal import Decimal

    from ccxt.base.decimal_to_precision import NO_PADDING, TRUNCATE, decimal_to_precision

    from liquidroute.venues.ccxt_venue import to_precision

    mode = MODES[mode_name]
    for precision in PRECISIONS[mode]:
        p = repr(precision) if mode == TICK_SIZE else precision
        for value in values(seed=11):
            up = to_precision(value, precision, mode, up=True)
            down = to_precision(value, precision, mode, up=False)
            on_grid = decimal_to_precision(repr(up), TRUNCATE, p, mode, NO_PADDING)
            assert Decimal(on_grid) == Decimal(repr(up))  # on the grid
            assert up >= value * (1 - 1e-12) and down <= value * (1 + 1e-12)
            # the grid value just below `up` is below `value`: up is the smallest above it
            just_below = Decimal(repr(up)) * (1 - Decimal("1e-12"))
            prev = decimal_to_precision(str(just_below), TRUNCATE, p, mode, NO_PADDING)
            assert Decimal(prev) < Decimal(repr(value)) or up == down, (value, up, prev)
            if down:  # a value on the grid stays where it is, both ways
                assert to_precision(down, precision, mode, up=True) == down


def test_child_orders_on_a_significant_digits_market():
    from liquidroute.model import Leg, Quote
    from liquidroute.router.executor import plan_children

    market = market_from_ccxt(
        "sd",
        {"symbol": "BTC/USDT", "taker": 0.001, "precision": {"amount": 3, "price": 5}},
        SIGNIFICANT_DIGITS,
    )
    assert market.amount_step is None and market.precision_mode == SIGNIFICANT_DIGITS
    leg = Leg("sd", "buy", 1.23456, 60012.3, 60034.567, 0.0, 0.0, 1.0, 2)
    quote = Quote("BTC/USDT", "buy", "base", 1.23456, (leg,), 1.23456, 0.0, 0.0, 0.0, None,
                  None, None, None)  # fmt: skip
    (child,), _ = plan_children(
        quote, {"sd": market}, parent_id="p", round_no=1, slippage_bps=0.0, limit_price=None
    )
    assert child.amount == 1.23  # 3 significant digits, truncated
    assert child.limit_price == 60035.0  # 5 significant digits, up for a buy
    sell = Quote("BTC/USDT", "sell", "base", 1.23456, (Leg("sd", "sell", 1.23456, 60012.3,
                 60034.567, 0.0, 0.0, 1.0, 2),), 1.23456, 0.0, 0.0, 0.0, None, None, None,
                 None)  # fmt: skip
    (child,), _ = plan_children(
        sell, {"sd": market}, parent_id="p", round_no=1, slippage_bps=0.0, limit_price=60040.0
    )
    assert child.limit_price == 60040.0  # the user's limit, rounded inside (up for a sell)


def test_live_order_off_precision_is_refused_before_sending(loopback):
    v = venue(loopback)
    off = ChildOrder("p", "lr-off", "binance", "BTC/USDT", "buy", 0.123456789, 60020.0)
    with pytest.raises(OrderRejectedError, match="precision"):
        run(v, v.place_order(off))
    assert loopback.posted_ids == []


def test_translate_redacts_a_query_string_signature():
    from liquidroute.errors import register_secret
    from liquidroute.venues.ccxt_venue import translate

    register_secret("AKID-0123456789")
    message = (
        "htx GET https://api.huobi.pro/v1/order/orders/getClientOrder?AccessKeyId=AKID-0123"
        "456789&SignatureMethod=HmacSHA256&SignatureVersion=2&Timestamp=2026-12-01T18%3A00%3A00"
        "&clientOrderId=lr1&Signature=c2lnbmF0dXJl%3D 500 Internal Server Error "
        '{"status":"error","err-msg":"AccessKeyId=AKID-0123456789 Signature=c2lnbmF0dXJl"}'
    )
    for exc in (ccxt.ExchangeNotAvailable(message), ccxt.InvalidOrder(message)):
        text = str(translate("htx", exc))
        assert "AKID" not in text and "c2lnbmF0dXJl" not in text, text
        assert text.startswith("htx: ")
