"""`route()`: the public entry point, its Quote, and its input checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings

from liquidroute import DepthSnapshot, InvalidInputError, Market, route
from liquidroute.errors import MalformedBookError
from tests.strategies import books_and_order

A = DepthSnapshot("a", "BTC/USDT", [[99, 1], [98, 2]], [[101, 1], [102, 2], [103, 5]], 1_000)
B = DepthSnapshot("b", "BTC/USDT", [[99.5, 1], [98, 2]], [[100.5, 0.5], [101.5, 2], [104, 5]], 2)
MARKETS = {"a": Market("a", "BTC/USDT", 0.001), "b": Market("b", "BTC/USDT", 0.002)}


def test_buy_quote_by_hand():
    q = route([A, B], side="buy", amount=3, markets=MARKETS)
    # fee-adjusted asks: b 100.701, a 101.101, b 101.703, a 102.102 ... -> 0.5 b, 1 a, 1.5 b
    legs = {leg.venue: leg for leg in q.legs}
    assert legs["a"].amount == pytest.approx(1.0)
    assert legs["b"].amount == pytest.approx(2.0)
    assert legs["b"].avg_price == pytest.approx((0.5 * 100.5 + 1.5 * 101.5) / 2)
    assert legs["b"].worst_price == 101.5
    assert legs["a"].fee == pytest.approx(0.101)
    assert q.total_cost == pytest.approx(101 * 1.001 + (0.5 * 100.5 + 1.5 * 101.5) * 1.002)
    assert q.marginal_price == pytest.approx(101.5 * 1.002)
    assert q.mid == pytest.approx((99.5 + 100.5) / 2)
    assert q.avg_price == pytest.approx(q.total_cost / 3)
    assert q.slippage_bps == pytest.approx((q.avg_price / q.mid - 1) * 1e4)
    assert q.complete and q.unfilled == 0.0
    assert q.solver == "exact"
    assert q.timestamps == {"a": 1_000, "b": 2}
    assert sum(leg.share for leg in q.legs) == pytest.approx(1.0)


def test_sell_maximises_proceeds():
    q = route([A, B], side="sell", amount=2, markets=MARKETS)
    # fee-adjusted bids: b 99.3010, a 98.901, ... -> 1 b then 1 a
    assert {leg.venue: leg.amount for leg in q.legs} == pytest.approx({"a": 1.0, "b": 1.0})
    assert q.total_cost == pytest.approx(99.5 * 0.998 + 99 * 0.999)
    assert q.slippage_bps > 0  # selling below mid is a cost


def test_no_zero_legs_and_caps():
    q = route([A, B], side="buy", amount=1, markets=MARKETS, caps={"b": 0.25})
    assert [leg.venue for leg in q.legs] == ["a", "b"]
    assert q.legs[1].amount == pytest.approx(0.25)
    q2 = route([A, B], side="buy", amount=0.4, markets=MARKETS)
    assert [leg.venue for leg in q2.legs] == ["b"]


def test_spend_quote_amount():
    q = route([A, B], side="buy", amount=500, amount_in="quote", markets=MARKETS)
    assert q.total_cost == pytest.approx(500)
    assert q.complete
    base = route([A, B], side="buy", amount=q.filled, markets=MARKETS)
    assert base.total_cost == pytest.approx(500)


def test_insufficient_depth_fills_what_exists():
    q = route([A, B], side="buy", amount=100, markets=MARKETS)
    assert q.filled == pytest.approx(8 + 7.5)
    assert q.unfilled == pytest.approx(100 - 15.5)
    assert not q.complete
    assert q.baselines["best_venue"] is None  # no single venue holds 15.5


def test_baselines_and_savings_reported():
    q = route([A, B], side="buy", amount=3, markets=MARKETS)
    assert set(q.baselines) == {"best_venue", "equal_split", "pro_rata", "percent_grid"}
    for name, cost in q.baselines.items():
        assert cost is not None and cost >= q.total_cost - 1e-9
        assert q.savings_bps[name] == pytest.approx((cost - q.total_cost) / cost * 1e4)
    fast = route([A, B], side="buy", amount=3, markets=MARKETS, baselines=False)
    assert fast.baselines == {} and fast.total_cost == q.total_cost


def test_to_dict_is_json_round_trip():
    q = route([A, B], side="buy", amount=100, markets=MARKETS)
    d = json.loads(json.dumps(q.to_dict(), allow_nan=False))
    assert d["legs"][0]["venue"] in {"a", "b"}
    assert d["baselines"]["best_venue"] is None
    assert d["unfilled"] == pytest.approx(q.unfilled)


def test_missing_market_warns_zero_fee():
    q = route([A, B], side="buy", amount=1)
    assert any("fee assumed 0" in w for w in q.warnings)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -1}, "amount"),
        ({"amount": math.nan}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"side": "hold"}, "side"),
        ({"amount_in": "usd"}, "amount_in"),
        ({"caps": {"c": 1}}, "caps"),
        ({"caps": {"a": -1}}, "caps"),
    ],
)
def test_bad_input_names_the_field(kwargs, words):
    args = {"side": "buy", "amount": 1.0, **kwargs}
    with pytest.raises(InvalidInputError, match=words):
        route([A, B], **args)


def test_mixed_symbols_and_duplicates_refused():
    eth = DepthSnapshot("c", "ETH/USDT", [[9, 1]], [[10, 1]])
    with pytest.raises(InvalidInputError, match="different symbols"):
        route([A, eth], "buy", 1)
    with pytest.raises(InvalidInputError, match="twice"):
        route([A, A], "buy", 1)
    with pytest.raises(InvalidInputError, match="no snapshots"):
        route([], "buy", 1)


@pytest.mark.parametrize(
    ("bids", "asks", "words"),
    [
        ([[100, 1]], [[99, 1]], "crossed"),
        ([[100, 1], [100, 2]], [[101, 1]], "descending"),
        ([[99, 1], [100, 2]], [[101, 1]], "descending"),
        ([[100, 1]], [[101, 1], [100.5, 1]], "ascending"),
        ([[100, float("nan")]], [[101, 1]], "NaN"),
        ([[100, 1]], [[float("inf"), 1]], "NaN or infinite"),
        ([[100, 0]], [[101, 1]], "negative"),
        ([[-100, 1]], [[101, 1]], "negative"),
        ([[100]], [[101, 1]], "shape"),
    ],
)
def test_bad_books_are_refused_naming_the_venue(bids, asks, words):
    with pytest.raises(MalformedBookError, match=words) as info:
        DepthSnapshot("kraken", "BTC/USDT", bids, asks)
    assert "kraken" in str(info.value)


@settings(max_examples=100, deadline=None)
@given(books_and_order())
def test_route_invariants(case):
    markets = {
        s.venue: Market(s.venue, "BTC/USDT", f)
        for s, f in zip(case["snaps"], case["fees"], strict=True)
    }
    q = route(case["snaps"], case["side"], case["amount"], markets=markets)
    assert all(leg.amount > 0 for leg in q.legs)
    assert sum(leg.amount for leg in q.legs) == pytest.approx(q.filled, rel=1e-12)
    assert sum(leg.cost for leg in q.legs) == pytest.approx(q.total_cost, rel=1e-12)
    books = {s.venue: s for s in case["snaps"]}
    for leg in q.legs:
        lv = books[leg.venue].levels(case["side"])
        assert leg.amount <= lv[:, 1].sum() * (1 + 1e-12)
        # the average lies between the best level and the worst level touched
        lo, hi = sorted((lv[0, 0], leg.worst_price))
        assert lo * (1 - 1e-12) <= leg.avg_price <= hi * (1 + 1e-12)
        assert np.isclose(leg.worst_price, lv[leg.levels - 1, 0])
