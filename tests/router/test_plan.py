"""Execution plans pass ccxt's own safety check against ccxt's own markets."""

from __future__ import annotations

import asyncio
import json

import ccxt
import pytest
from ccxt.base.order_router import OrderRouter

from liquidroute import route
from liquidroute.router.plan import execution_plan
from liquidroute.venues.ccxt_venue import market_from_ccxt
from liquidroute.venues.sample import sample_snapshots
from tests.conftest import SHARED_DATA
from tests.loopback.binance_server import BinanceLoopback


def ccxt_markets() -> dict[str, dict]:
    okx = ccxt.okx()
    record = json.loads((SHARED_DATA / "markets" / "okx.markets.jsonl").read_text().splitlines()[0])
    binance = ccxt.binance({"options": {"crossMarginPairsData": [], "isolatedMarginPairsData": []}})
    info = asyncio.run(BinanceLoopback()._exchange_info({}, None))  # Binance's real shape
    return {
        "okx": okx.parse_market(record["items"][0]) | {"taker": 0.0015},
        "binance": binance.parse_market(info["symbols"][0]),
    }


@pytest.mark.parametrize(("side", "amount"), [("buy", 0.73219), ("buy", 15), ("sell", 9.87654)])
def test_plan_has_no_blocking_violation(side, amount):
    raw = ccxt_markets()
    markets = {v: market_from_ccxt(v, m, ccxt.okx().precisionMode) for v, m in raw.items()}
    snaps = [s for s in sample_snapshots() if s.venue in raw]
    quote = route(snaps, side, amount, markets=markets)
    for leg in quote.legs:
        lots = leg.amount / markets[leg.venue].amount_step
        assert abs(lots - round(lots)) < 1e-6
    plan = execution_plan(quote, markets)
    assert plan["stepCount"] == len(quote.legs) > 0
    violations = OrderRouter().check_execution_plan_safety(
        plan, {v: {m["symbol"]: m} for v, m in raw.items()}
    )
    assert [v for v in violations if v["blocking"]] == [], violations
    assert violations == []  # not even a precision warning
    for step, leg in zip(plan["steps"], quote.legs, strict=True):
        worse = (
            step["limitPrice"] >= leg.worst_price
            if side == "buy"
            else (step["limitPrice"] <= leg.worst_price)
        )
        assert worse


def test_unrounded_plan_is_caught_by_ccxt():
    """The check is real: a rule-free split breaks the venues' precision."""
    raw = ccxt_markets()
    markets = {v: market_from_ccxt(v, m, ccxt.okx().precisionMode) for v, m in raw.items()}
    snaps = [s for s in sample_snapshots() if s.venue in raw]
    quote = route(snaps, "buy", 15.123456789, markets=markets, rules=False)
    violations = OrderRouter().check_execution_plan_safety(
        execution_plan(quote), {v: {m["symbol"]: m} for v, m in raw.items()}
    )
    assert any(v["code"] == "amount_precision" for v in violations)
