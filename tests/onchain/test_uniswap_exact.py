"""Predicted swap output = what Uniswap's own deployed contracts pay, to the wei.

A real EVM (anvil) runs the npm packages' build artifacts: a v2 pair and v3 pools with
several overlapping positions. Every prediction is checked both against the node's own
answer to an `eth_call` of the swap (the dry run) and against the balance change of a real
transaction (the live swap), across tick crossings and in both directions.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from liquidroute.venues.pools.rpc import JsonRpc
from liquidroute.venues.pools.uniswap import Pool, V2State, read_pools, refresh_pools
from liquidroute.venues.pools.uniswap_math import (
    V3State,
    sqrt_ratio_at_tick,
    tick_at_sqrt_ratio,
    v2_amount_in,
    v2_amount_out,
    v3_swap,
)
from tests.onchain.chain import Chain, Uniswap

E18 = 10**18


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    c = Chain()
    yield c
    c.close()


@pytest.fixture(scope="module")
def uni(chain: Chain) -> Uniswap:
    return Uniswap(chain)


@pytest.fixture(scope="module")
def v3_pool(uni: Uniswap) -> str:
    """A 0.3 % pool at price ~2000 token1/token0 with five overlapping positions."""
    fee = 3000
    pool = uni.v3_pool(fee, sqrt_ratio_at_tick(76012))  # 1.0001^76012 ≈ 2000
    for lo, hi, a0, a1 in [
        (75000, 77040, 50 * E18, 100_000 * E18),
        (75960, 76080, 20 * E18, 40_000 * E18),
        (74040, 78000, 80 * E18, 160_000 * E18),
        (76020, 76500, 10 * E18, 1 * E18),  # above the price: token0 only
        (73020, 75960, 1 * E18, 30_000 * E18),  # below the price: token1 only
    ]:
        uni.add_position(fee, lo, hi, a0, a1)
    return pool


def test_tick_math_matches_its_own_inverse() -> None:
    rng = random.Random(7)
    for tick in [-887272, -1, 0, 1, 887271, *(rng.randint(-887272, 887271) for _ in range(200))]:
        p = sqrt_ratio_at_tick(tick)
        assert tick_at_sqrt_ratio(p) == tick
        assert tick_at_sqrt_ratio(sqrt_ratio_at_tick(tick + 1) - 1) == tick


def test_v2_prediction_is_exact(chain: Chain, uni: Uniswap) -> None:
    pair = uni.v2_pair(300 * E18, 600_000 * E18)
    rpc = JsonRpc(chain.url)
    pool = Pool("uniswap-v2", pair)
    read_pools(rpc, [pool])
    assert isinstance(pool.state, V2State)
    for amount_in in [10**6, 3 * E18 // 7, 25 * E18]:
        refresh_pools(rpc, [pool])
        state = pool.state
        assert isinstance(state, V2State)
        out = v2_amount_out(amount_in, state.reserve0, state.reserve1)
        chain.transact(uni.token0, "transfer(address,uint256)", pair, amount_in)
        with pytest.raises(RuntimeError, match="reverted"):  # one wei more breaks the invariant
            chain.transact(pair, "swap(uint256,uint256,address,bytes)", 0, out + 1, chain.me, b"")
        before = chain.balance(uni.token1, chain.me)
        chain.transact(pair, "swap(uint256,uint256,address,bytes)", 0, out, chain.me, b"")
        assert chain.balance(uni.token1, chain.me) - before == out
    refresh_pools(rpc, [pool])
    state = pool.state
    assert isinstance(state, V2State)
    want = 10 * E18
    need = v2_amount_in(want, state.reserve1, state.reserve0)  # token1 in, token0 out
    assert v2_amount_out(need, state.reserve1, state.reserve0) >= want
    chain.transact(uni.token1, "transfer(address,uint256)", pair, need)
    chain.transact(pair, "swap(uint256,uint256,address,bytes)", want, 0, chain.me, b"")
    rpc.close()


@pytest.mark.parametrize("zero_for_one", [True, False])
def test_v3_prediction_is_exact_across_ticks(
    chain: Chain, uni: Uniswap, v3_pool: str, zero_for_one: bool
) -> None:
    rpc = JsonRpc(chain.url)
    pool = Pool("uniswap-v3", v3_pool)
    read_pools(rpc, [pool])
    state = pool.state
    assert isinstance(state, V3State)
    assert len(state.ticks) == 9  # five positions, 75960 shared by two of them
    sizes = (
        [E18 // 1000, 5 * E18, 60 * E18] if zero_for_one else [10**9, 20_000 * E18, 150_000 * E18]
    )
    crossed = 0
    for amount in sizes:
        refresh_pools(rpc, [pool])
        state = pool.state
        assert isinstance(state, V3State)
        predicted = v3_swap(state, zero_for_one, amount)
        crossed += abs(predicted.state.tick - state.tick) > 60
        params = uni.exact_input_params(zero_for_one, 3000, amount, chain.me)
        dry = chain.call(uni.router, uni.EXACT_IN, params, ("uint256",))[0]
        assert dry == predicted.amount_out
        t_out = uni.token1 if zero_for_one else uni.token0
        before = chain.balance(t_out, chain.me)
        chain.transact(uni.router, uni.EXACT_IN, *params)
        assert chain.balance(t_out, chain.me) - before == predicted.amount_out
        refresh_pools(rpc, [pool])
        after = pool.state
        assert isinstance(after, V3State)
        assert (after.sqrt_price_x96, after.tick, after.liquidity) == (
            predicted.state.sqrt_price_x96,
            predicted.state.tick,
            predicted.state.liquidity,
        )
    assert crossed  # the large swaps moved through initialized ticks
    rpc.close()


def test_v3_exact_output_prediction(chain: Chain, uni: Uniswap, v3_pool: str) -> None:
    rpc = JsonRpc(chain.url)
    pool = Pool("uniswap-v3", v3_pool)
    read_pools(rpc, [pool])
    for zero_for_one, want in [(True, 30_000 * E18), (False, 12 * E18)]:
        refresh_pools(rpc, [pool])
        state = pool.state
        assert isinstance(state, V3State)
        predicted = v3_swap(state, zero_for_one, -want)
        assert predicted.amount_out == want
        t_in, t_out = (uni.token0, uni.token1) if zero_for_one else (uni.token1, uni.token0)
        params = ((t_in, t_out, 3000, chain.me, 2**40, want, 2**255, 0),)
        paid = chain.call(uni.router, uni.EXACT_OUT, params, ("uint256",))[0]
        assert paid == predicted.amount_in
    rpc.close()


def test_refresh_of_many_pools_is_one_round_trip(chain: Chain, uni: Uniswap, v3_pool: str) -> None:
    rpc = JsonRpc(chain.url)
    pools = [Pool("uniswap-v3", v3_pool) for _ in range(5)]
    read_pools(rpc, pools)
    assert rpc.round_trips == 3
    refresh_pools(rpc, pools)
    assert rpc.round_trips == 4
    rpc.close()


def test_v3_many_sizes_dry_run_batch(chain: Chain, uni: Uniswap) -> None:
    """A 0.05 % pool (spacing 10: a bitmap word spans 2,560 ticks) with a full-range and
    narrow positions: 120 random sizes in both directions, each predicted = the node's
    answer to the router's eth_call (one batched round trip)."""
    from liquidroute.venues.pools.rpc import Call

    fee = 500
    pool_address = uni.v3_pool(fee, sqrt_ratio_at_tick(-23028))  # ≈ 0.1 token1 per token0
    for lo, hi, a0, a1 in [
        (-887270, 887270, 5 * E18, E18 // 2),
        (-23100, -22950, 40 * E18, 4 * E18),
        (-26000, -20000, 100 * E18, 10 * E18),
        (-22000, -15000, 30 * E18, 0),
        (-30000, -24000, 0, 2 * E18),
    ]:
        uni.add_position(fee, lo, hi, a0, a1)
    rpc = JsonRpc(chain.url)
    pool = Pool("uniswap-v3", pool_address)
    read_pools(rpc, [pool])
    state = pool.state
    assert isinstance(state, V3State)
    rng = random.Random(11)
    cases = [(rng.random() < 0.5, int(10 ** rng.uniform(3, 20.5))) for _ in range(120)]
    calls = [
        Call(
            uni.router, uni.EXACT_IN, uni.exact_input_params(z, fee, amount, chain.me), ("uint256",)
        )
        for z, amount in cases
    ]
    answers = rpc.call_many(calls, sender=chain.me)
    moved = 0
    for (zero_for_one, amount), (paid_out,) in zip(cases, answers, strict=True):
        predicted = v3_swap(state, zero_for_one, amount)
        assert paid_out == predicted.amount_out, (zero_for_one, amount)
        moved = max(moved, abs(predicted.state.tick - state.tick))
    assert moved > 2 * 2560  # some swaps crossed bitmap-word boundaries
    rpc.close()


@pytest.mark.parametrize("base_is_token0", [True, False])
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_optimizer_curve_equals_integer_swaps(
    chain: Chain, uni: Uniswap, v3_pool: str, base_is_token0: bool, side: str
) -> None:
    """The float curve the optimizer sees (PoolCurve) prices every amount as the pool's
    integer math does, across tick crossings, in both orientations and directions."""
    import numpy as np

    from liquidroute.venues.pools.uniswap import PoolSide, read_decimals

    rpc = JsonRpc(chain.url)
    pool = Pool("uniswap-v3", v3_pool)
    read_pools(rpc, [pool])
    decimals = read_decimals(rpc, [pool.token0, pool.token1])
    venue = PoolSide(pool, base_is_token0, decimals[pool.token0], decimals[pool.token1])
    curve = venue.curve()
    lam_now = curve.marginal(side, np.array([curve.root]))[0]  # type: ignore[arg-type]
    factors = np.linspace(1.0005, 1.03, 12) if side == "buy" else np.linspace(0.9995, 0.97, 12)
    base, quote = curve.trade(side, lam_now * factors)  # type: ignore[arg-type]
    assert np.all(np.diff(base) > 0)
    for b, q in zip(base, quote, strict=True):
        base_wei, quote_wei = venue.exact_trade(side, float(b))
        assert base_wei / 10**venue.base_decimals == pytest.approx(b, rel=1e-12, abs=1e-18)
        assert quote_wei / 10**venue.quote_decimals == pytest.approx(q, rel=1e-9)
    rpc.close()
