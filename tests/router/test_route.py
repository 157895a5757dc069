"""`route()`: the public entry point, its Quote, and its input checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liquidroute import DepthSnapshot, InvalidInputError, LadderCache, Market, RouteOptions, route
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


# --- RouteOptions: the options object and the keywords ---------------------------------------


def test_options_object_equals_the_keywords():
    kwargs = {"caps": {"b": 0.75}, "baselines": False, "amount_in": "base"}
    by_keywords = route([A, B], "buy", 2, markets=MARKETS, **kwargs)
    by_options = route([A, B], "buy", 2, markets=MARKETS, options=RouteOptions(**kwargs))
    assert by_options.legs == by_keywords.legs
    assert by_options.total_cost == by_keywords.total_cost
    assert by_options.baselines == {} and by_options.legs[1].amount == pytest.approx(0.75)


def test_a_keyword_overrides_the_options_object():
    opts = RouteOptions(caps={"b": 0.25}, baselines=False)
    q = route([A, B], "buy", 1, markets=MARKETS, options=opts, caps={"b": 0.5})
    assert {leg.venue: leg.amount for leg in q.legs}["b"] == pytest.approx(0.5)
    assert q.baselines == {}  # the rest of the options still apply
    spend = route([A, B], "buy", 300, markets=MARKETS, options=opts, amount_in="quote")
    assert spend.amount_in == "quote" and spend.total_cost == pytest.approx(300)


def test_fee_override_replaces_the_market_fee():
    plain = route([A, B], "buy", 0.5, markets=MARKETS)
    assert plain.venues == ("b",)  # b's 100.5 x 1.002 beats a's 101 x 1.001
    dear_b = route([A, B], "buy", 0.5, markets=MARKETS, fees={"b": 0.009})
    assert dear_b.venues == ("a",)
    assert dear_b.total_cost == pytest.approx(0.5 * 101 * 1.001)
    no_market = route([A, B], "buy", 0.5, fees={"a": 0.0, "b": 0.0})
    assert not any("fee assumed 0" in w for w in no_market.warnings)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"amount_in": "usd"}, "amount_in"),
        ({"caps": {"a": math.nan}}, r"caps\['a'\]"),
        ({"balances": {"a": -1}}, r"balances\['a'\]"),
        ({"fixed_costs": {"a": "x"}}, r"fixed_costs\['a'\]"),
        ({"fees": {"a": 0.5}}, r"fees\['a'\]"),
        ({"fees": {"a": -0.001}}, r"fees\['a'\]"),
        ({"max_venues": 0}, "max_venues"),
        ({"max_venues": 1.5}, "max_venues"),
        ({"max_venues": math.inf}, "max_venues"),
        ({"max_venues": math.nan}, "max_venues"),
        ({"max_share": math.nan}, "max_share"),
        ({"max_share": 0}, "max_share"),
        ({"max_share": 1.5}, "max_share"),
        ({"time_limit": 0}, "time_limit"),
        ({"time_limit": math.inf}, "time_limit"),
        ({"mip_gap": -1e-9}, "mip_gap"),
        ({"rules": "yes"}, "rules"),
        ({"baselines": "no"}, "baselines"),
        ({"caps": [1.0]}, "caps"),
    ],
)
def test_bad_options_name_the_field(options, words):
    with pytest.raises(InvalidInputError, match=words):
        RouteOptions(**options)
    with pytest.raises(InvalidInputError, match=words):  # the same check through route()
        route([A, B], "buy", 1.0, **options)


@pytest.mark.parametrize("name", ["caps", "balances", "fixed_costs", "fees"])
def test_options_naming_unknown_venues_are_refused(name):
    with pytest.raises(InvalidInputError, match=f"{name} name venue.*'zz'"):
        route([A, B], "buy", 1.0, options=RouteOptions(**{name: {"zz": 0.001}}))


def test_options_are_immutable_and_replaceable():
    caps = {"a": 1.0}
    opts = RouteOptions(caps=caps)
    caps["a"] = 5.0  # the caller's dict changing later does not change the options
    assert opts.caps == {"a": 1.0}
    with pytest.raises(TypeError):
        opts.caps["a"] = 2.0  # type: ignore[index]
    assert opts.replace(max_venues=2).max_venues == 2 and opts.max_venues is None
    assert opts.only({"b"}).caps == {}
    with pytest.raises(InvalidInputError, match="options must be a RouteOptions"):
        route([A, B], "buy", 1.0, options={"caps": {}})  # type: ignore[arg-type]


# --- LadderCache through route() ---------------------------------------------------------------


def shifted(snap, seed):
    """The same venue's book, one ask and one bid size changed (a new book version)."""
    rng = np.random.default_rng(seed)
    asks, bids = snap.asks.copy(), snap.bids.copy()
    asks[rng.integers(len(asks)), 1] *= rng.uniform(0.2, 5)
    bids[rng.integers(len(bids)), 1] *= rng.uniform(0.2, 5)
    return DepthSnapshot(snap.venue, snap.symbol, bids, asks, snap.timestamp)


@settings(max_examples=60, deadline=None)
@given(books_and_order(max_levels=60), st.data())
def test_cached_route_equals_uncached_route_as_books_change(case, data):
    """A run of orders, some after a venue's book or its market (its fee) changed:
    route(cache=...) always equals a fresh route() on the current books and markets, mid
    and notes included, and an unchanged book is served from the cache."""
    snaps = list(case["snaps"])
    markets = {
        s.venue: Market(s.venue, "BTC/USDT", f) for s, f in zip(snaps, case["fees"], strict=True)
    }
    cache = LadderCache()
    venues = [s.venue for s in snaps]
    for step in range(data.draw(st.integers(2, 6))):
        if step and data.draw(st.booleans()):
            i = data.draw(st.integers(0, len(snaps) - 1))
            snaps[i] = shifted(snaps[i], step)
        if step and data.draw(st.booleans()):  # a new market object, same books
            v = data.draw(st.sampled_from(venues))
            markets[v] = Market(v, "BTC/USDT", data.draw(st.sampled_from([0.0, 0.0007, 0.003])))
        if step and data.draw(st.booleans()):  # a venue without market metadata
            markets.pop(data.draw(st.sampled_from(venues)), None)
        side = data.draw(st.sampled_from(["buy", "sell"]))
        unit = data.draw(st.sampled_from(["base", "quote"]))
        depth = sum(float(s.levels(side)[:, 1].sum()) for s in snaps)
        amount = depth * data.draw(st.floats(0.001, 1.1)) * (100.0 if unit == "quote" else 1.0)
        cached = route(snaps, side, amount, markets=markets, amount_in=unit, cache=cache)
        fresh = route(snaps, side, amount, markets=markets, amount_in=unit)
        assert cached.legs == fresh.legs
        assert (cached.total_cost, cached.filled, cached.unfilled) == (
            fresh.total_cost,
            fresh.filled,
            fresh.unfilled,
        )
        assert cached.baselines == fresh.baselines
        assert (cached.mid, cached.warnings, cached.timestamps) == (
            fresh.mid,
            fresh.warnings,
            fresh.timestamps,
        )
        hits = cache.hits
        again = route(snaps, side, amount, markets=markets, amount_in=unit, cache=cache)
        assert cache.hits == hits + 1  # the same books again: served from the cache
        assert again.legs == cached.legs
        limits = {  # caps (and balances) are part of the key: a change is a new ladder
            "caps": {v: data.draw(st.floats(0.0, 5.0)) for v in venues[:2]},
            "balances": {venues[-1]: data.draw(st.floats(1.0, 1e6))},
        }
        capped = route(snaps, side, amount, markets=markets, cache=cache, rules=False, **limits)
        fresh = route(snaps, side, amount, markets=markets, rules=False, **limits)
        assert capped.legs == fresh.legs and capped.total_cost == fresh.total_cost
        hits = cache.hits
        again = route(snaps, side, amount, markets=markets, cache=cache, rules=False, **limits)
        assert cache.hits == hits + 1
        assert again.legs == capped.legs
