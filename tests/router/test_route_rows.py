"""route() on the live hot path (a LadderCache, no rules, no baselines): the split is
merged in Python floats and never becomes numpy arrays. It must be route()'s uncached
answer bit for bit, across new book versions (a venue's side replaced while the others
keep their arrays and their cached rows), repeated orders and both order units."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liquidroute.model import DepthSnapshot, Market
from liquidroute.optimizer.exact import LadderCache
from liquidroute.router.route import route
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
