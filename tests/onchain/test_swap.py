"""A pool leg executed on a real EVM: dry run = live swap, slippage limits that hold under a
sandwich, a revert that fills nothing, and a fate resolved from the receipt (never resent).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_utils.crypto import keccak

from liquidroute.errors import OrderRejectedError
from liquidroute.venues.pools.rpc import JsonRpc
from liquidroute.venues.pools.swap import (
    SWAP_TOPIC,
    Signer,
    SwapPlan,
    dry_run,
    outcome,
    plan_swap,
    send,
    wait_outcome,
)
from liquidroute.venues.pools.uniswap import Pool, PoolSide, read_pools, refresh_pools
from liquidroute.venues.pools.uniswap_math import sqrt_ratio_at_tick
from tests.onchain.chain import Chain, Uniswap

E18 = 10**18
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil account 0


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Chain, Uniswap, PoolSide, JsonRpc]]:
    chain = Chain()
    uni = Uniswap(chain)
    pool = uni.v3_pool(3000, sqrt_ratio_at_tick(76012))
    for lo, hi, a0, a1 in [
        (75000, 77040, 50 * E18, 100_000 * E18),
        (75960, 76080, 20 * E18, 40_000 * E18),
    ]:
        uni.add_position(3000, lo, hi, a0, a1)
    rpc = JsonRpc(chain.url)
    p = Pool("uniswap-v3", pool)
    read_pools(rpc, [p])
    venue = PoolSide(p, True, 18, 18)
    adversary = chain.accounts[1]
    for token in (uni.token0, uni.token1):
        chain.transact(token, "transfer(address,uint256)", adversary, 10**30)
        chain.transact(token, "approve(address,uint256)", uni.router, 2**256 - 1, sender=adversary)
    yield chain, uni, venue, rpc
    rpc.close()
    chain.close()


def test_swap_topic_is_the_event_hash() -> None:
    assert (
        "0x" + keccak(text="Swap(address,address,int256,int256,uint160,uint128,int24)").hex()
        == SWAP_TOPIC
    )


def test_signer_never_shows_the_key() -> None:
    signer = Signer(DEV_KEY)
    for text in (
        repr(signer),
        str(signer),
        f"{signer}",
        str(vars(signer) if hasattr(signer, "__dict__") else ""),
    ):
        assert DEV_KEY[2:] not in text.lower()


@pytest.mark.parametrize(("side", "amount"), [("buy", 3.0), ("sell", 7.5)])
def test_dry_run_equals_the_live_swap(setup, side, amount) -> None:
    _, uni, venue, rpc = setup
    refresh_pools(rpc, [venue.pool])
    signer = Signer(DEV_KEY)
    plan = plan_swap(
        venue,
        side,
        amount,
        router=uni.router,
        recipient=signer.address,
        max_slippage_bps=10,
        now=_now(rpc),
    )
    assert dry_run(rpc, plan, signer.address) == plan.quote_wei  # node = integer prediction
    nonce = _nonce(rpc, signer.address)
    tx_hash = send(rpc, plan, signer)
    got = _mined(rpc, tx_hash, venue)
    assert got.filled and (got.base_wei, got.quote_wei) == (plan.base_wei, plan.quote_wei)
    assert _nonce(rpc, signer.address) == nonce + 1  # one transaction, once


def _sell_plan(setup, max_slippage_bps: float) -> tuple[Signer, SwapPlan]:
    """A fresh 5-base sell plan for the dev account, on the pool's current state."""
    _, uni, venue, rpc = setup
    refresh_pools(rpc, [venue.pool])
    signer = Signer(DEV_KEY)
    plan = plan_swap(venue, "sell", 5.0, router=uni.router, recipient=signer.address,
                     max_slippage_bps=max_slippage_bps, now=_now(rpc))  # fmt: skip
    return signer, plan


def _adversary_sells(chain: Chain, uni: Uniswap, amount: int) -> None:
    """Another account sells `amount` base first, moving the price down."""
    params = uni.exact_input_params(True, 3000, amount, chain.accounts[1])
    chain.transact(uni.router, uni.EXACT_IN, *params, sender=chain.accounts[1])


def test_sandwich_is_bounded_by_the_slippage_limit(setup) -> None:
    chain, uni, venue, rpc = setup
    signer, plan = _sell_plan(setup, max_slippage_bps=30)
    _adversary_sells(chain, uni, E18 // 5)  # a little: within 30 bps of our fill
    got = _mined(rpc, send(rpc, plan, signer), venue)
    assert got.filled and got.quote_wei >= plan.limit_wei
    assert got.quote_wei < plan.quote_wei  # it did cost something, but no more than the limit
    assert (plan.quote_wei - got.quote_wei) / plan.quote_wei <= 30e-4


def test_a_pool_that_moved_past_the_limit_fills_nothing(setup) -> None:
    chain, uni, _, rpc = setup
    signer, plan = _sell_plan(setup, max_slippage_bps=5)
    _adversary_sells(chain, uni, 20 * E18)
    nonce = _nonce(rpc, signer.address)
    before = chain.balance(uni.token0, signer.address)
    with pytest.raises(OrderRejectedError, match="would revert"):
        send(rpc, plan, signer)
    assert _nonce(rpc, signer.address) == nonce  # refused before anything was signed
    assert chain.balance(uni.token0, signer.address) == before
    with pytest.raises(OrderRejectedError, match="would revert"):
        dry_run(rpc, plan, signer.address)


def test_reverted_receipt_is_a_fill_of_nothing(setup) -> None:
    """A swap mined after the pool moved (the limit checked on chain) is status 0."""
    chain, uni, venue, rpc = setup
    signer, plan = _sell_plan(setup, max_slippage_bps=5)
    rpc.request("evm_setAutomine", [False])
    try:
        tx_hash = send(rpc, plan, signer)  # estimated fine, in the mempool
        assert outcome(rpc, tx_hash, venue) is None  # not mined: unknown, ask again later
        front = {
            "from": chain.accounts[1],
            "to": uni.router,
            "gas": hex(1_000_000),
            "maxPriorityFeePerGas": hex(10**11),
            "maxFeePerGas": hex(10**12),
            "data": _calldata(uni, 20 * E18, chain.accounts[1]),
        }
        rpc.request("eth_sendTransaction", [front])  # higher tip: mined first
        rpc.request("evm_mine", [])
    finally:
        rpc.request("evm_setAutomine", [True])
    got = _mined(rpc, tx_hash, venue)
    assert got is not None and not got.filled and "reverted" in got.reason


def _calldata(uni: Uniswap, amount: int, recipient: str) -> str:
    from liquidroute.venues.pools.rpc import encode_call

    return encode_call(uni.EXACT_IN, list(uni.exact_input_params(True, 3000, amount, recipient)))


def _mined(rpc: JsonRpc, tx_hash: str, venue: PoolSide):
    got = wait_outcome(rpc, tx_hash, venue, timeout_s=10)
    assert got is not None
    return got


def _nonce(rpc: JsonRpc, address: str) -> int:
    return int(rpc.request("eth_getTransactionCount", [address, "latest"]), 16)


def _now(rpc: JsonRpc) -> float:
    block = rpc.request("eth_getBlockByNumber", ["latest", False])
    return float(int(block["timestamp"], 16))
