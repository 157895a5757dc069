"""Shared on-chain fixtures for the pool execution tests: one anvil chain per module with a
v3 pool, a v2 pair and both routers, reverted to its deployed state after each test."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from liquidroute import DepthSnapshot, Market
from liquidroute.venues.pools.rpc import JsonRpc
from liquidroute.venues.pools.swap import SWAP_TOPIC, V2_SWAP_TOPIC, Signer
from liquidroute.venues.pools.trading import PoolTradingVenue
from liquidroute.venues.pools.uniswap import Pool, PoolSide, read_pools
from liquidroute.venues.pools.uniswap_math import sqrt_ratio_at_tick
from tests.onchain.chain import MAX_UINT, Chain, Uniswap

E18 = 10**18
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil account 0
PRICE = 59_440.0  # the pools' price, USDT (token1) per BTC (token0), below the book's asks
BOOK_ASKS = [[60_000.0, 0.8], [60_150.0, 2.0], [60_400.0, 6.0]]
BOOK_BIDS = [[59_000.0, 0.8], [58_850.0, 2.0], [58_600.0, 6.0]]


@dataclass
class World:
    chain: Chain
    uni: Uniswap
    v3: str
    v2: str
    v2_router: str
    rpc: JsonRpc


@pytest.fixture(scope="module")
def world_module() -> Iterator[World]:
    chain = Chain()
    uni = Uniswap(chain)
    tick = round(math.log(PRICE) / math.log(1.0001) / 60) * 60
    v3 = uni.v3_pool(3000, sqrt_ratio_at_tick(tick))
    for width, btc in [(600, 2), (3000, 6)]:
        uni.add_position(3000, tick - width, tick + width, btc * E18, int(btc * PRICE) * E18)
    v2 = uni.v2_pair(3 * E18, int(3 * PRICE * 1.002) * E18)
    v2_router = uni.v2_router()
    adversary = chain.accounts[1]
    for token in (uni.token0, uni.token1):
        chain.transact(token, "transfer(address,uint256)", adversary, 10**30)
        for spender in (uni.router, v2_router):
            chain.transact(token, "approve(address,uint256)", spender, MAX_UINT, sender=adversary)
    rpc = JsonRpc(chain.url)
    yield World(chain, uni, v3, v2, v2_router, rpc)
    rpc.close()
    chain.close()


@pytest.fixture
def world(world_module: World) -> Iterator[World]:
    """The module's chain, reverted to its deployed state after each test."""
    rpc = world_module.rpc
    snap = rpc.request("evm_snapshot", [])
    yield world_module
    rpc.request("evm_setAutomine", [True])
    assert rpc.request("evm_revert", [snap]) is True


class Book:
    """A venue serving one fixed BTC/USDT book (dry runs match against it)."""

    live = False

    def __init__(self, name: str = "cex") -> None:
        self.name = name
        self._snap = DepthSnapshot(name, "BTC/USDT", np.array(BOOK_BIDS), np.array(BOOK_ASKS), 0)

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        return self._snap

    async def market(self, symbol: str) -> Market:
        return Market(self.name, "BTC/USDT", 0.001)

    async def close(self) -> None:
        pass


def pool_venues(w: World, *, live: bool, kinds: tuple[str, ...] = ("v3", "v2"), **kw: Any):
    venues = []
    signer = Signer(DEV_KEY) if live else None  # one account: one signer hands out nonces
    for kind in kinds:
        pool = Pool("uniswap-v3", w.v3) if kind == "v3" else Pool("uniswap-v2", w.v2)
        read_pools(w.rpc, [pool])
        venues.append(
            PoolTradingVenue(
                PoolSide(pool, True, 18, 18),
                w.rpc,
                router=w.uni.router if kind == "v3" else w.v2_router,
                wallet=w.chain.me,
                signer=signer,
                live=live,
                slippage_bps=kw.pop("slippage_bps", 10.0),
                receipt_timeout_s=kw.pop("receipt_timeout_s", 5.0),
            )
        )
    return venues


def nonce(w: World) -> int:
    return int(w.rpc.request("eth_getTransactionCount", [w.chain.me, "latest"]), 16)


def swaps_by_me(w: World, pool: str) -> list[dict[str, Any]]:
    """Every Swap event of `pool` whose recipient is the dev account (the executor's)."""
    v2 = pool == w.v2
    logs = w.rpc.request(
        "eth_getLogs",
        [{"address": pool, "fromBlock": "0x0", "toBlock": "latest",
          "topics": [V2_SWAP_TOPIC if v2 else SWAP_TOPIC]}],
    )  # fmt: skip
    me = "0x" + w.chain.me[2:].lower().rjust(64, "0")
    return [log for log in logs if log["topics"][2].lower() == me]


def node_answer(w: World, venue: PoolTradingVenue, side: str, base_wei: int) -> int:
    """The node's own answer for the swap, asked directly of the router contract."""
    uni = w.uni
    if venue.side.pool.kind == "uniswap-v3":
        if side == "buy":
            params = ((uni.token1, uni.token0, 3000, w.chain.me, 2**40, base_wei, 2**255, 0),)
            return int(w.chain.call(uni.router, uni.EXACT_OUT, params, ("uint256",))[0])
        params = ((uni.token0, uni.token1, 3000, w.chain.me, 2**40, base_wei, 0, 0),)
        return int(w.chain.call(uni.router, uni.EXACT_IN, params, ("uint256",))[0])
    fn = "getAmountsIn(uint256,address[])" if side == "buy" else "getAmountsOut(uint256,address[])"
    path = [uni.token1, uni.token0] if side == "buy" else [uni.token0, uni.token1]
    (amounts,) = w.chain.call(w.v2_router, fn, (base_wei, path), ("uint256[]",))
    return int(amounts[0] if side == "buy" else amounts[-1])
