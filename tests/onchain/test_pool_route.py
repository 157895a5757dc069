"""Routing across a book, a Uniswap v2 pair and a v3 pool on a real EVM.

The quote's pool legs must equal what the node answers for the same swap (`eth_call` of
the v3 SwapRouter / the v2 library formula the pair enforces), and the joint split must
beat each source alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from liquidroute.model import DepthSnapshot, Market
from liquidroute.router.pool_route import route_with_pools
from liquidroute.venues.pools.rpc import JsonRpc
from liquidroute.venues.pools.uniswap import Pool, PoolSide, read_decimals, read_pools
from liquidroute.venues.pools.uniswap_math import sqrt_ratio_at_tick
from tests.onchain.chain import Chain, Uniswap

E18 = 10**18


@pytest.fixture(scope="module")
def market() -> Iterator[tuple[Chain, Uniswap, list[PoolSide]]]:
    chain = Chain()
    uni = Uniswap(chain)
    pair = uni.v2_pair(400 * E18, 800_000 * E18)  # 2000 token1 per token0
    pool = uni.v3_pool(3000, sqrt_ratio_at_tick(76012))
    for lo, hi, a0, a1 in [
        (75000, 77040, 50 * E18, 100_000 * E18),
        (75960, 76080, 20 * E18, 40_000 * E18),
        (74040, 78000, 80 * E18, 160_000 * E18),
    ]:
        uni.add_position(3000, lo, hi, a0, a1)
    rpc = JsonRpc(chain.url)
    pools = [Pool("uniswap-v2", pair), Pool("uniswap-v3", pool)]
    read_pools(rpc, pools)
    dec = read_decimals(rpc, [uni.token0, uni.token1])
    sides = [PoolSide(p, True, dec[uni.token0], dec[uni.token1]) for p in pools]
    rpc.close()
    yield chain, uni, sides
    chain.close()


def _book(mid: float) -> DepthSnapshot:
    steps = np.arange(1, 41) * mid * 2e-4
    return DepthSnapshot(
        "cex",
        "ETH/USD",
        np.column_stack([mid - steps, np.full(40, 1.5)]),
        np.column_stack([mid + steps, np.full(40, 1.5)]),
    )


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_joint_route_legs_equal_the_node_and_beat_each_source(market, side: str) -> None:
    chain, uni, pools = market
    book = _book(2000.0)
    markets = {"cex": Market("cex", "ETH/USD", taker_fee=0.001)}
    quote = route_with_pools([book], pools, side, 25.0, markets=markets)
    assert quote.complete and quote.filled == pytest.approx(25.0, rel=1e-9)
    venues = {leg.venue for leg in quote.legs}
    assert {"cex", pools[0].name, pools[1].name} <= venues  # all three share the order
    for leg in quote.legs:
        if leg.venue == "cex":
            continue
        venue = next(p for p in pools if p.name == leg.venue)
        base_wei, quote_wei = venue.exact_trade(side, leg.amount + 1e-18)
        assert quote_wei / E18 == pytest.approx(leg.cost, rel=1e-15)
        if venue.pool.kind == "uniswap-v3":  # the node's own answer for the same swap
            if side == "buy":
                params = ((uni.token1, uni.token0, 3000, chain.me, 2**40, base_wei, 2**255, 0),)
                paid = chain.call(uni.router, uni.EXACT_OUT, params, ("uint256",))[0]
                assert paid == quote_wei
            else:
                params = ((uni.token0, uni.token1, 3000, chain.me, 2**40, base_wei, 0, 0),)
                got = chain.call(uni.router, uni.EXACT_IN, params, ("uint256",))[0]
                assert got == quote_wei
    alone = [
        route_with_pools([book], [], side, 25.0, markets=markets),
        route_with_pools([], pools[:1], side, 25.0),
        route_with_pools([], pools[1:], side, 25.0),
    ]
    for other in alone:
        if side == "buy":
            assert quote.total_cost < other.total_cost
        else:
            assert quote.total_cost > other.total_cost


def test_gas_keeps_small_orders_off_the_pools(market) -> None:
    _, _, pools = market
    book = _book(2000.0)
    markets = {"cex": Market("cex", "ETH/USD", taker_fee=0.001)}
    costly = [PoolSide(p.pool, True, 18, 18, gas_quote=50.0) for p in pools]
    small = route_with_pools([book], costly, "buy", 0.5, markets=markets)
    assert [leg.venue for leg in small.legs] == ["cex"]  # 50 of gas outweighs the saving
    large = route_with_pools([book], costly, "buy", 60.0, markets=markets)
    used = {leg.venue for leg in large.legs} - {"cex"}
    assert used and set(large.fixed_costs) == used
    assert large.total_cost == pytest.approx(
        sum(leg.cost for leg in large.legs) + 50.0 * len(used), rel=1e-12
    )
