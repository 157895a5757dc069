"""The executor with pool legs on a real EVM: a child order on a pool is a Uniswap swap.

anvil runs Uniswap's own contracts (v3 pool + SwapRouter, v2 pair + UniswapV2Router02);
the book legs go to a simulated venue (dry run) or a loopback Binance through the real
ccxt client (live). Every on-chain claim is checked against the chain itself: the node's
eth_call, the receipts' Swap events, token balances and the account's nonce.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from eth_utils.crypto import keccak

from liquidroute import DepthSnapshot, Market, Router
from liquidroute.model import ExecutionReport, OrderState
from liquidroute.router.executor import ExecutionPolicy, Executor
from liquidroute.router.journal import Journal
from liquidroute.router.pool_route import PoolQuoter
from liquidroute.venues.ccxt_venue import CcxtVenue
from liquidroute.venues.pools import trading
from liquidroute.venues.pools.rpc import JsonRpc, encode_call
from liquidroute.venues.pools.swap import SWAP_TOPIC, V2_SWAP_TOPIC, Signer
from liquidroute.venues.pools.trading import PoolTradingVenue
from liquidroute.venues.pools.uniswap import Pool, PoolSide, read_pools
from liquidroute.venues.pools.uniswap_math import sqrt_ratio_at_tick
from liquidroute.venues.simulated import SimulatedVenue
from tests.conftest import binance_client
from tests.loopback.binance_server import BinanceLoopback
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


def run(executor: Executor, job: str, *args: Any) -> ExecutionReport:
    async def go() -> ExecutionReport:
        try:
            if job == "execute":
                return await executor.execute(*args)
            return await executor.resume(*args)
        finally:
            await executor.quoter.close()

    return asyncio.run(go())


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


def test_v2_swap_topic_is_the_event_hash() -> None:
    text = "Swap(address,uint256,uint256,uint256,uint256,address)"
    assert "0x" + keccak(text=text).hex() == V2_SWAP_TOPIC


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_dry_run_pool_legs_are_the_nodes_eth_call_to_the_wei(world, tmp_path, side) -> None:
    w = world
    pools = pool_venues(w, live=False)
    books = Router([SimulatedVenue(Book())], max_age_ms=None)
    before = (nonce(w), w.chain.balance(w.uni.token0, w.v3), w.chain.balance(w.uni.token0, w.v2))
    report = run(
        Executor(PoolQuoter(books, pools), Journal(tmp_path / "j.sqlite3"), live=False),
        "execute",
        "BTC/USDT",
        side,
        4.0,
    )
    assert report.complete and not report.live
    by_venue = {c.venue for c in report.children}
    assert {"cex", *(p.name for p in pools)} <= by_venue  # the book and both pools shared it
    for p in pools:
        (child,) = [c for c in report.children if c.venue == p.name]
        base_wei = round(child.filled * E18)
        node = node_answer(w, p, side, base_wei)
        predicted = p.side.exact_trade(side, child.amount)[1]
        assert node == predicted  # the integer prediction is the node's answer, to the wei
        assert child.cost == pytest.approx(node / E18, rel=1e-12)  # the fill is that answer
        (note,) = [n for n in report.warnings if n.startswith(p.name)]
        assert f" {node} quote wei; predicted {predicted} (equal to the wei)" in note
    # a dry run sends nothing: same nonce, same pool balances
    after = (nonce(w), w.chain.balance(w.uni.token0, w.v3), w.chain.balance(w.uni.token0, w.v2))
    assert after == before


@pytest.fixture
def loopback() -> Iterator[BinanceLoopback]:
    ex = BinanceLoopback(asks=BOOK_ASKS, bids=BOOK_BIDS).start()
    yield ex
    ex.stop()


def live_books(ex: BinanceLoopback) -> Router:
    venue = CcxtVenue("binance", name="cex", exchange=binance_client(ex.base_url, timeout_ms=2000))
    return Router([venue], max_age_ms=None)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_live_book_and_pool_legs_fills_are_the_receipts(world, loopback, tmp_path, side) -> None:
    w = world
    pools = pool_venues(w, live=True)
    journal = Journal(tmp_path / "j.sqlite3")
    n0 = nonce(w)
    t0, t1 = w.chain.balance(w.uni.token0, w.chain.me), w.chain.balance(w.uni.token1, w.chain.me)
    report = run(
        Executor(PoolQuoter(live_books(loopback), pools), journal, live=True),
        "execute",
        "BTC/USDT",
        side,
        4.0,
    )
    print(
        report.stop_detail,
        *[repr(c) + str(c.error) for c in report.children],
        *report.warnings,
        sep="\n",
    )
    assert report.complete and report.live
    pool_children = [c for c in report.children if c.venue.startswith("uniswap")]
    assert {c.venue for c in pool_children} == {p.name for p in pools}
    assert nonce(w) == n0 + len(pool_children)  # one transaction per pool child, once
    events = journal.events(report.parent_id)
    base_total = quote_total = 0
    for child in pool_children:
        kinds = [k for _, cid, k, _ in events if cid == child.client_id]
        assert kinds[:3] == ["intent", "signed", "ack"]  # the hash journalled before the send
        (signed,) = [d for _, cid, k, d in events if cid == child.client_id and k == "signed"]
        assert child.venue_order_id == signed["tx_hash"]
        receipt = w.rpc.request("eth_getTransactionReceipt", [signed["tx_hash"]])
        assert int(receipt["status"], 16) == 1
        pool = w.v3 if "v3" in child.venue else w.v2
        (log,) = [g for g in swaps_by_me(w, pool) if g["transactionHash"] == signed["tx_hash"]]
        assert log["transactionHash"] == child.venue_order_id
        base_total += round(child.filled * E18)
        quote_total += round(child.cost * E18)
    journalled = {c.client_id: c for c in journal.children(report.parent_id)}
    assert all(journalled[c.client_id].state is OrderState.FILLED for c in pool_children)
    # the wallet's token balances moved by exactly the pool children's fills
    d0 = w.chain.balance(w.uni.token0, w.chain.me) - t0
    d1 = w.chain.balance(w.uni.token1, w.chain.me) - t1
    sign = 1 if side == "buy" else -1
    assert d0 == sign * base_total
    assert -sign * d1 == pytest.approx(quote_total, rel=1e-12)
    # the book legs are what the loopback exchange booked
    book_filled = sum(c.filled for c in report.children if c.venue == "cex")
    assert book_filled == pytest.approx(sum(o["executedQty"] for o in loopback.orders.values()))
    assert report.filled == pytest.approx(4.0, rel=1e-9)
    gas = sum(c.fees.get("ETH", 0.0) for c in pool_children)
    assert gas > 0 and report.fees_by_asset["ETH"] == pytest.approx(gas)


def test_front_run_swap_reverts_and_the_remainder_fills_elsewhere(
    world, loopback, tmp_path, monkeypatch
) -> None:
    """Another account's buy on the v3 pool is mined first (same block, higher tip): the
    executor's v3 swap reverts on amountInMaximum, and the fallback round fills the rest on
    the book and the v2 pair."""
    w = world
    pools = pool_venues(w, live=True)
    v3 = pools[0]
    v3.rpc = JsonRpc(w.chain.url)  # its own client: the broadcast below knows it by it
    real = trading.broadcast
    fronted: list[str] = []

    def broadcast(rpc: JsonRpc, signed: Any) -> str:
        if rpc is not v3.rpc or fronted:
            return real(rpc, signed)
        fronted.append(signed.tx_hash)
        rpc.request("evm_setAutomine", [False])
        try:
            got = real(rpc, signed)
            params = ((w.uni.token1, w.uni.token0, 3000, w.chain.accounts[1], 2**40,
                       int(1.5 * E18), 2**255, 0),)  # fmt: skip
            front = {
                "from": w.chain.accounts[1],
                "to": w.uni.router,
                "gas": hex(1_000_000),
                "maxPriorityFeePerGas": hex(10**11),
                "maxFeePerGas": hex(10**12),
                "data": encode_call(w.uni.EXACT_OUT, list(params)),
            }
            rpc.request("eth_sendTransaction", [front])
            rpc.request("evm_mine", [])
        finally:
            rpc.request("evm_setAutomine", [True])
        return got

    monkeypatch.setattr(trading, "broadcast", broadcast)
    journal = Journal(tmp_path / "j.sqlite3")
    policy = ExecutionPolicy(max_rounds=4)  # the book's lot leaves dust for a 4th round
    try:
        report = run(
            Executor(PoolQuoter(live_books(loopback), pools), journal, live=True, policy=policy),
            "execute",
            "BTC/USDT",
            "buy",
            4.0,
        )
    finally:
        v3.rpc.close()
    (reverted,) = [c for c in report.children if c.venue == v3.name]
    assert fronted == [reverted.venue_order_id]
    assert reverted.state is OrderState.REJECTED and "reverted" in (reverted.error or "")
    receipt = w.rpc.request("eth_getTransactionReceipt", [reverted.venue_order_id])
    assert int(receipt["status"], 16) == 0 and reverted.filled == 0  # mined, reverted
    assert swaps_by_me(w, w.v3) == []  # no swap of ours filled on the moved pool
    # the remainder went back through the fallback re-route: the book and the v2 pair
    assert report.complete and report.filled == pytest.approx(4.0, rel=1e-9)
    later = [c for c in report.children if c.round > reverted.round]
    assert later and {c.venue for c in later} <= {"cex", pools[1].name}
    first_round = [c for c in report.children if c.round == reverted.round]
    assert sum(c.filled for c in later) == pytest.approx(
        4.0 - sum(c.filled for c in first_round), rel=1e-9
    )


def test_the_notional_cap_counts_pool_legs(world, tmp_path) -> None:
    w = world
    pools = pool_venues(w, live=True, kinds=("v3",))
    n0 = nonce(w)
    quote_only = asyncio.run(PoolQuoter(None, pools).quote("BTC/USDT", "buy", 2.0))
    cap = quote_only.total_cost * 1.0005  # fits the quote, not the swap's 10 bps limit
    report = run(
        Executor(
            PoolQuoter(None, pools),
            Journal(tmp_path / "j.sqlite3"),
            live=True,
            policy=ExecutionPolicy(max_notional=cap),
        ),
        "execute",
        "BTC/USDT",
        "buy",
        2.0,
    )
    assert report.stop_reason == "risk_limit" and "--max-notional" in report.stop_detail
    assert report.filled == 0 and nonce(w) == n0  # nothing signed, nothing sent
    (child,) = report.children
    assert child.amount * child.limit_price > cap  # the swap's amountInMaximum
    assert child.amount * child.limit_price == pytest.approx(quote_only.total_cost * 1.001)


class Crash(BaseException):
    """The process dying right after the journal write (no handler runs)."""


def test_a_crash_before_the_broadcast_resumes_without_a_swap(world, tmp_path, monkeypatch) -> None:
    w = world
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)

    def crash(rpc, signed):
        # the hash is already journalled when the transaction would leave the process
        other = Journal(path)  # another connection: what a restarted process reads
        events = other.events(other.parents(1)[0].parent_id)
        assert [d["tx_hash"] for _, _, k, d in events if k == "signed"] == [signed.tx_hash]
        raise Crash

    monkeypatch.setattr(trading, "broadcast", crash)
    pools = pool_venues(w, live=True, kinds=("v3",))
    with pytest.raises(Crash):
        run(Executor(PoolQuoter(None, pools), journal, live=True), "execute", "BTC/USDT",
            "buy", 1.0)  # fmt: skip
    monkeypatch.undo()
    parent_id = journal.parents(1)[0].parent_id
    n0 = nonce(w)
    # before its deadline the signed swap could still be mined: its fate is unknown
    pools = pool_venues(w, live=True, kinds=("v3",))
    first = run(Executor(PoolQuoter(None, pools), Journal(path), live=True), "resume", parent_id)
    assert first.stop_reason == "unknown_fate" and first.filled == 0 and nonce(w) == n0
    # past its deadline (chain time), it can no longer fill: rejected, and re-routed
    w.rpc.request("evm_increaseTime", [3600])
    w.rpc.request("evm_mine", [])
    pools = pool_venues(w, live=True, kinds=("v3",))
    second = run(Executor(PoolQuoter(None, pools), Journal(path), live=True), "resume", parent_id)
    (dead,) = [c for c in second.children if c.round == 1]
    assert dead.state is OrderState.REJECTED and "deadline" in (dead.error or "")
    assert w.rpc.request("eth_getTransactionReceipt", [dead.venue_order_id]) is None
    assert second.complete  # the remainder re-routed: a new child, a new swap
    assert nonce(w) == n0 + 1 and len(swaps_by_me(w, w.v3)) == 1
