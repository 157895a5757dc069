"""route() on the live hot path (a LadderCache, no rules, no baselines): the split is
merged in Python floats and never becomes numpy arrays. It must be route()'s uncached
answer bit for bit, across new book versions (a venue's side replaced while the others
keep their arrays and their cached rows), repeated orders and both order units."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import liquidroute.router.route as route_module
from liquidroute.errors import InfeasibleConstraintsError
from liquidroute.model import DepthSnapshot, Market
from liquidroute.optimizer.exact import LadderCache
from liquidroute.router.route import route
from tests.optimizer.test_rules_oracle import instances, obey
from tests.router.test_router_hot import key
from tests.strategies import books_and_order


@settings(max_examples=60, deadline=None)
@given(
    case=books_and_order(max_venues=6, max_levels=120),
    steps=st.lists(
        st.tuples(st.integers(0, 5), st.floats(0.2, 3.0), st.floats(0.01, 1.1)),
        min_size=1,
        max_size=8,
    ),
    amount_in=st.sampled_from(["base", "quote"]),
)
def test_the_rows_path_is_routes_uncached_answer_bit_for_bit(case, steps, amount_in):
    snaps: list[DepthSnapshot] = list(case["snaps"])
    side = case["side"]
    markets = {
        s.venue: Market(s.venue, s.symbol, taker_fee=f)
        for s, f in zip(snaps, case["fees"], strict=True)
    }
    cache = LadderCache(8)
    for venue, scale, frac in steps:
        v = venue % len(snaps)
        old = snaps[v]
        book = old.levels(side)
        grown = np.column_stack([book[:, 0], book[:, 1] * scale])  # a new version of v
        bids, asks = (old.bids, grown) if side == "buy" else (grown, old.asks)
        snaps[v] = DepthSnapshot(old.venue, old.symbol, bids, asks)
        depth = sum(float(s.levels(side)[:, 1].sum()) for s in snaps)
        amount = depth * frac
        if amount_in == "quote":
            amount *= float(snaps[0].levels(side)[0, 0])
        options = {"baselines": False, "rules": False, "amount_in": amount_in}
        expected = key(route(snaps, side, amount, markets=markets, **options))
        for _ in range(2):  # a new version, then the same books again (cached)
            got = route(snaps, side, amount, markets=markets, cache=cache, **options)
            assert key(got) == expected


def test_a_shallow_order_on_a_new_version_builds_no_ladder():
    """The rows path is taken: the cache entry's ladder is never built (no numpy merge)."""
    rng = np.random.default_rng(3)
    snaps = []
    for i in range(5):
        asks = np.column_stack([100.0 + np.arange(1, 1001) * 0.01, rng.uniform(0.5, 2, 1000)])
        bids = np.column_stack([100.0 - np.arange(1, 1001) * 0.01, rng.uniform(0.5, 2, 1000)])
        snaps.append(DepthSnapshot(f"v{i}", "X/USDT", bids, asks))
    markets = {s.venue: Market(s.venue, s.symbol, taker_fee=0.001) for s in snaps}
    cache = LadderCache(8)
    quote = route(snaps, "buy", 12.0, markets=markets, cache=cache, baselines=False, rules=False)
    assert key(quote) == key(route(snaps, "buy", 12.0, markets=markets, baselines=False))
    (entry,) = cache._entries.values()
    assert entry[1]._ladder is None  # merged in Python, from the rows


def _everything(quote: Any) -> tuple[Any, ...]:
    """`key` and what the rules add: gap, lower bound, reachable amounts, leg notes."""
    notes = tuple(leg.notes for leg in quote.legs)
    return (*key(quote), quote.gap, quote.lower_bound, quote.reachable, notes)


def _counting_rows_on_lots(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Spy on route()'s `rows_on_lots`: one entry per call, True when it answered."""
    calls: list[bool] = []
    real = route_module.rows_on_lots

    def spy(*args: Any) -> Any:
        got = real(*args)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(route_module, "rows_on_lots", spy)
    return calls


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(lots=(0.01, 0.01, 0.05), amount_lots=120, whole_lots=True))
def test_with_venue_rules_the_rows_path_is_routes_uncached_answer_bit_for_bit(inst):
    """Venue rules on the live hot path: where the exact split, as Python lists on the
    whole books, already obeys every rule (`constrained.rows_on_lots`), route() answers
    from it without the rules' cut, the merged ladder or `apply_rules`. Every figure of
    the quote, the rules' gap, lower bound and leg notes included, must be route()'s
    uncached answer (cut books, ladder + apply_rules) bit for bit, and each answer obeys
    the rules (the DP oracle of test_rules_oracle checks the uncached one)."""
    _same_as_uncached(inst)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(lots=(0.01, 0.01, 0.05), amount_lots=120, whole_lots=True, deep=300))
def test_on_deep_books_the_rows_path_is_the_answer_on_the_rules_cut(inst):
    """Books hundreds of levels deeper than the order: the split read from the whole
    books is the one route() finds on the rules' cut of them, bit for bit. (Where the
    rows do not answer, the cached and uncached rules pipelines work on cuts of different
    depths, which may move a MILP's proven gap by float noise: there the split and its
    cost are compared.)"""
    _same_as_uncached(inst)


def _same_as_uncached(inst) -> None:
    options = dict(
        markets=inst.markets,
        max_share=inst.max_share,
        max_venues=inst.max_venues,
        baselines=False,
    )
    try:
        expected = route(inst.books, inst.side, inst.amount, **options)
    except InfeasibleConstraintsError:
        with pytest.raises(InfeasibleConstraintsError):
            route(inst.books, inst.side, inst.amount, cache=LadderCache(4), **options)
        return
    cache = LadderCache(4)
    for _ in range(2):  # a first solve on the books, then the same books again (cached)
        got = route(inst.books, inst.side, inst.amount, cache=cache, **options)
        if _from_the_rows(cache):
            assert _everything(got) == _everything(expected)
        else:  # the rules pipeline on the cache's cut (a power of two deep): the same split
            assert [(g.venue, g.amount) for g in got.legs] == [
                (g.venue, g.amount) for g in expected.legs
            ]
            assert got.total_cost == pytest.approx(expected.total_cost, rel=1e-12)
    obey(got, inst)


def _from_the_rows(cache: LadderCache) -> bool:
    """True when the cache's quotes came from the rows: no merged ladder was built."""
    return all(entry[1]._ladder is None for entry in cache._entries.values())


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_on_real_books_with_real_lots_the_hot_path_builds_no_ladder(side, monkeypatch):
    """The real recorded books (Binance, Bybit, OKX) with the venues' real lots and
    minimums, through a LadderCache as a started Router quotes them: for most amounts the
    exact split sits on its lots and is the answer with no merged ladder built; every
    quote equals route()'s uncached one bit for bit."""
    from liquidroute.venues.sample import sample_markets, sample_snapshots

    snaps, markets = sample_snapshots(), sample_markets()
    calls = _counting_rows_on_lots(monkeypatch)
    ladderless = 0
    for amount in (0.003, 0.05, 0.7, 1.0, 4.0, 25.0, 60.0):
        cache = LadderCache(4)
        got = route(snaps, side, amount, markets=markets, baselines=False, cache=cache)
        expected = route(snaps, side, amount, markets=markets, baselines=False)
        assert _everything(got) == _everything(expected), amount
        ladderless += _from_the_rows(cache)
    assert ladderless == sum(calls) >= 4


def test_a_leg_a_hair_under_its_minimum_is_left_to_the_rules_pipeline(monkeypatch):
    """The exact split's partial leg can sit a float hair under the venue's minimum
    (0.7 − 0.4 = 0.29999999999999993 against a 0.3 minimum): on its lot it is the minimum,
    and apply_rules notes it "raised to minimum". The rows decline such a leg, so the
    hot path's quote says the same, note included."""
    asks_a = np.array([[100.0, 0.4], [101.0, 5.0]])
    asks_b = np.array([[100.5, 5.0]])
    bids = np.array([[99.0, 5.0]])
    snaps = [DepthSnapshot("a", "X/USDT", bids, asks_a), DepthSnapshot("b", "X/USDT", bids, asks_b)]
    markets = {
        "a": Market("a", "X/USDT", amount_step=0.1),
        "b": Market("b", "X/USDT", amount_step=0.1, min_amount=0.3),
    }
    calls = _counting_rows_on_lots(monkeypatch)
    got = route(snaps, "buy", 0.7, markets=markets, baselines=False, cache=LadderCache(4))
    expected = route(snaps, "buy", 0.7, markets=markets, baselines=False)
    assert calls == [False]
    assert _everything(got) == _everything(expected)
    assert [(g.venue, g.amount, g.notes) for g in got.legs] == [
        ("a", 0.4, ()),
        ("b", 0.3, ("raised to minimum",)),
    ]
