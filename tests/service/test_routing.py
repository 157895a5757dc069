"""The service's route IS route() / route_graph() on the same books, rendered for the wire."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from liquidroute import route, route_graph
from liquidroute.errors import InvalidInputError
from liquidroute.service.models import RouteBody
from liquidroute.service.routing import compute_route, parse_balances, parse_request
from liquidroute.venues.sample_graph import sample_graph_markets, sample_graph_snapshots

SNAPS = sample_graph_snapshots()
MARKETS = {(m.venue, m.symbol): m for m in sample_graph_markets()}


def answer(books=SNAPS, **params: Any) -> dict[str, Any]:
    req = parse_request(RouteBody.model_validate(params))
    return compute_route(req, books, MARKETS)


def of(symbol: str, books=SNAPS):
    snaps = [s for s in books if s.symbol == symbol]
    return snaps, {s.venue: MARKETS[(s.venue, s.symbol)] for s in snaps}


def legs(result: dict[str, Any], hop: int = 0) -> dict[str, float]:
    return {leg["exchangeId"]: leg["amount"] for leg in result["hops"][hop]["legs"]}


@pytest.mark.parametrize(
    ("frm", "to", "exact", "amount", "side", "unit"),
    [
        ("USDT", "BTC", "amountIn", 1_300_000.0, "buy", "quote"),  # spend quote
        ("USDT", "BTC", "amountOut", 20.0, "buy", "base"),  # receive base
        ("BTC", "USDT", "amountIn", 20.0, "sell", "base"),  # sell base
        ("BTC", "USDT", "amountOut", 1_300_000.0, "sell", "quote"),  # receive quote
    ],
)
def test_one_hop_is_route_exact_merge(frm, to, exact, amount, side, unit):
    result = answer(**{"from": frm, "to": to, exact: amount, "bridges": []})
    snaps, markets = of("BTC/USDT")
    q = route(snaps, side, amount, amount_in=unit, markets=markets, rules=False)
    assert result["solver"] == "liquidroute route() (exact)"
    assert legs(result) == pytest.approx({leg.venue: leg.amount for leg in q.legs}, rel=1e-12)
    assert len(legs(result)) >= 2  # a real split, not one venue
    total_cost = sum(leg.cost for leg in q.legs)
    spent, got = (total_cost, q.filled) if side == "buy" else (q.filled, total_cost)
    assert (result["amountIn"], result["amountOut"]) == pytest.approx((spent, got), rel=1e-12)
    assert result[exact] == pytest.approx(amount, rel=1e-12) and result["fullyFillable"]
    assert result["savingVsBestSingleBps"] == pytest.approx(q.savings_bps["best_venue"])
    hop = result["hops"][0]
    assert (hop["from"], hop["to"], hop["side"]) == (frm, to, side)


@pytest.mark.parametrize(("strategy", "k"), [("split_capped", 2), ("best_single", 1)])
def test_venue_caps_are_route_max_venues(strategy, k):
    result = answer(
        **{"from": "USDT", "to": "BTC", "amountIn": 1_300_000, "bridges": []},
        strategy=strategy,
        maxVenues=k if strategy == "split_capped" else None,
    )
    snaps, markets = of("BTC/USDT")
    q = route(snaps, "buy", 1_300_000, amount_in="quote", markets=markets, max_venues=k)
    assert legs(result) == pytest.approx({leg.venue: leg.amount for leg in q.legs}, rel=1e-9)
    assert len(legs(result)) == k
    free = answer(**{"from": "USDT", "to": "BTC", "amountIn": 1_300_000, "bridges": []})
    assert free["amountOut"] >= result["amountOut"] * (1 - 1e-12)


def test_balances_and_min_leg_notional_are_route_rules():
    held = {"bybit": {"USDT": 50_000}, "binance": {"USDT": 1_300_000}}
    result = answer(
        **{"from": "USDT", "to": "BTC", "amountIn": 300_000, "bridges": []},
        balances=held,
        minLegNotional=60_000,
    )
    snaps, markets = of("BTC/USDT")
    ruled = {v: dataclasses.replace(m, min_notional=60_000) for v, m in markets.items()}
    q = route(
        snaps,
        "buy",
        300_000,
        amount_in="quote",
        markets=ruled,
        balances={"bybit": 50_000, "binance": 1_300_000, "okx": 0.0},
    )
    assert legs(result) == pytest.approx({leg.venue: leg.amount for leg in q.legs}, rel=1e-9)
    for leg in result["hops"][0]["legs"]:
        assert leg["amountIn"] >= 60_000 * (1 - 1e-9)
        assert leg["exchangeId"] != "okx"  # holds no USDT there
    bybit = [leg for leg in result["hops"][0]["legs"] if leg["exchangeId"] == "bybit"]
    assert not bybit or bybit[0]["amountIn"] <= 50_000 * (1 + 1e-9)


def test_multi_hop_single_chain_is_route_graph():
    books = [s for s in SNAPS if s.symbol in ("BTC/USDT", "ETH/BTC")]  # USDT->BTC->ETH only
    result = answer(books, **{"from": "USDT", "to": "ETH", "amountIn": 150_000})
    q = route_graph(
        books,
        "USDT",
        "ETH",
        amount_in=150_000,
        markets=[MARKETS[(s.venue, s.symbol)] for s in books],
    )
    assert result["path"] == ["USDT", "BTC", "ETH"] and "route_graph" in result["solver"]
    assert result["amountOut"] == pytest.approx(q.amount_out, rel=1e-12)
    for i, hop in enumerate(q.hops):
        assert legs(result, i) == pytest.approx(
            {leg.venue: leg.base_amount for leg in hop.legs}, rel=1e-12
        )
    # ccxt's chain contract: hop 1 spends exactly what hop 0 produced
    h0, h1 = result["hops"]
    assert h1["amountIn"] == pytest.approx(h0["amountOut"], rel=1e-9)
    assert (h0["side"], h0["to"], h1["from"]) == ("buy", "BTC", "BTC")


def test_multi_hop_split_over_chains_returns_the_best_chain_by_route_graph():
    result = answer(**{"from": "USDC", "to": "ETH", "amountIn": 3_000_000})
    markets = list(MARKETS.values())
    joint = route_graph(SNAPS, "USDC", "ETH", markets=markets, amount_in=3_000_000)
    assert result["amountOut"] <= joint.amount_out * (1 + 1e-9)  # never above the optimum
    chain = result["path"]
    pairs = {frozenset(p) for p in itertools.pairwise(chain)}
    on_chain = [s for s in SNAPS if frozenset(s.symbol.split("/")) in pairs]
    if len(chain) == 2:  # the direct chain: route() on it
        snaps, mk = of(on_chain[0].symbol)
        q = route(snaps, "buy", 3_000_000, amount_in="quote", markets=mk, rules=False)
        assert result["amountOut"] == pytest.approx(q.filled, rel=1e-12)
    else:
        alone = route_graph(
            on_chain,
            "USDC",
            "ETH",
            markets=markets,
            amount_in=3_000_000,
            bridges=chain[1:-1],
            max_hops=len(chain) - 1,
        )
        assert result["amountOut"] == pytest.approx(alone.amount_out, rel=1e-12)
    if any("asset chains" in w for w in result["warnings"]):
        assert joint.amount_out > result["amountOut"]


def test_include_quotes_are_route_on_each_venue_alone_and_no_false_warning():
    result = answer(
        **{"from": "USDT", "to": "BTC", "amountIn": 200_000, "bridges": []}, includeQuotes=True
    )
    assert not any("not provided" in w for w in result["warnings"])
    snaps, markets = of("BTC/USDT")
    for quote in result["quotes"]:
        snap = next(s for s in snaps if s.venue == quote["exchangeId"])
        alone = route([snap], "buy", 200_000, amount_in="quote", markets=markets, rules=False)
        assert quote["amountOut"] == pytest.approx(alone.filled, rel=1e-12)
        assert result["amountOut"] >= quote["amountOut"] * (1 - 1e-12)
    assert {q["exchangeId"] for q in result["quotes"]} == {s.venue for s in snaps}


def test_unroutable_answers():
    assert answer(**{"from": "USDT", "to": "DOGE", "amountIn": 1})["unroutableReason"].startswith(
        "unknown_asset"
    )
    same = answer(**{"from": "BTC", "to": "BTC", "amountIn": 1})
    assert same["unroutableReason"].startswith("same_asset")
    lonely = [s for s in SNAPS if s.symbol == "ETH/BTC"]
    assert answer(lonely, **{"from": "ETH", "to": "BTC", "amountIn": 1e9, "requireFullFill": True})[
        "unroutableReason"
    ].startswith("insufficient_liquidity")
    partial = answer(**{"from": "USDT", "to": "BTC", "amountIn": 1e12, "bridges": []})
    assert partial["fullyFillable"] is False and 0 < partial["fillRatio"] < 1


def test_balances_forms_parse_alike():
    text = parse_balances("binance.USDT:1000,okx.USDT:5,ETH:2")
    assert text == (("binance", "USDT", 1000.0), ("okx", "USDT", 5.0), ("", "ETH", 2.0))
    assert parse_balances({"binance": {"USDT": 1000}, "okx": {"USDT": 5}, "ETH": 2}) == text
    assert parse_balances(["binance.USDT:1000", "okx.USDT:5", "ETH:2"]) == text
    for bad in ("garbage", "binance.USDT:-1", "USDT:nan"):
        with pytest.raises(InvalidInputError, match="balances"):
            parse_balances(bad)


def test_a_profitable_cycle_in_the_books_never_reaches_the_answer():
    """Issue 10's example: a crossed A/B across venues and a triangle. Whatever the joint
    solver does with the cycle, the answer is one coherent chain spending exactly 1 S, or
    unroutable saying why: never flow around the cycle."""
    from liquidroute.model import Market
    from tests.optimizer.test_graph_paths import ISSUE_10_ITEM_5

    books = ISSUE_10_ITEM_5
    markets = {(s.venue, s.symbol): Market(s.venue, s.symbol, taker_fee=0.001) for s in books}
    for exact in ("amountIn", "amountOut"):
        req = parse_request(RouteBody.model_validate({"from": "S", "to": "T", exact: 1.0}))
        result = compute_route(req, books, markets)
        if result["unroutableReason"]:
            assert result["unroutableReason"].startswith(("cycle:", "no_path:")), result
            assert result["hops"] == []
            continue
        hops, path = result["hops"], result["path"]
        assert path[0] == "S" and path[-1] == "T" and len(hops) == len(path) - 1 <= 3
        for i, hop in enumerate(hops):
            assert (hop["from"], hop["to"]) == (path[i], path[i + 1])
            if i:
                assert hop["amountIn"] == pytest.approx(hops[i - 1]["amountOut"], rel=1e-9)
        assert result[exact] == pytest.approx(1.0, rel=1e-9)
        assert 0.9 < result["amountIn"] < 1.1 and 0.9 < result["amountOut"] < 1.1  # no pumping


def test_multi_hop_venue_caps_keep_the_busiest_venues_and_resolve_the_chain():
    books = [s for s in SNAPS if s.symbol in ("BTC/USDT", "ETH/BTC")]  # USDT->BTC->ETH only
    markets = [MARKETS[(s.venue, s.symbol)] for s in books]
    free = route_graph(books, "USDT", "ETH", amount_in=1_000_000, markets=markets)
    assert all(len(h.legs) >= 2 for h in free.hops)  # the cap binds on both hops
    single = answer(
        books, **{"from": "USDT", "to": "ETH", "amountIn": 1_000_000}, strategy="best_single"
    )
    kept = {(h.legs[0].symbol, max(h.legs, key=lambda leg: leg.amount_in).venue) for h in free.hops}
    assert {(h["pair"], h["legs"][0]["exchangeId"]) for h in single["hops"]} == kept
    alone = route_graph(
        [s for s in books if (s.symbol, s.venue) in kept],
        "USDT",
        "ETH",
        amount_in=1_000_000,
        markets=markets,
    )
    assert single["amountOut"] == pytest.approx(alone.amount_out, rel=1e-12)
    assert single["amountOut"] <= free.amount_out * (1 + 1e-12)
    capped = answer(
        books,
        **{"from": "USDT", "to": "ETH", "amountIn": 1_000_000},
        strategy="split_capped",
        maxVenues=2,
    )
    assert all(len(h["legs"]) <= 2 for h in capped["hops"])
    assert single["amountOut"] <= capped["amountOut"] * (1 + 1e-9)
    too_much = answer(
        books, **{"from": "USDT", "to": "ETH", "amountIn": 2_000_000}, strategy="best_single"
    )
    assert too_much["unroutableReason"].startswith("insufficient_liquidity")
