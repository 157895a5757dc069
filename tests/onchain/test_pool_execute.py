"""The executor with pool legs on a real EVM: a child order on a pool is a Uniswap swap.

anvil runs Uniswap's own contracts (v3 pool + SwapRouter, v2 pair + UniswapV2Router02);
the book legs go to a simulated venue (dry run) or a loopback Binance through the real
ccxt client (live). Every on-chain claim is checked against the chain itself: the node's
eth_call, the receipts' Swap events, token balances and the account's nonce.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils.crypto import keccak

from liquidroute import Router
from liquidroute.model import ExecutionReport, OrderState
from liquidroute.router.executor import ExecutionPolicy, Executor
from liquidroute.router.journal import Journal
from liquidroute.router.pool_route import PoolQuoter
from liquidroute.venues.ccxt_venue import CcxtVenue
from liquidroute.venues.pools import trading
from liquidroute.venues.pools.rpc import JsonRpc, encode_call
from liquidroute.venues.pools.swap import V2_SWAP_TOPIC
from liquidroute.venues.pools.trading import PoolTradingVenue
from liquidroute.venues.simulated import SimulatedVenue
from tests.conftest import binance_client
from tests.loopback.binance_server import BinanceLoopback
from tests.onchain.conftest import (
    BOOK_ASKS,
    BOOK_BIDS,
    E18,
    Book,
    World,
    node_answer,
    nonce,
    pool_venues,
    swaps_by_me,
)


def run(executor: Executor, job: str, *args: Any) -> ExecutionReport:
    async def go() -> ExecutionReport:
        try:
            if job == "execute":
                return await executor.execute(*args)
            return await executor.resume(*args)
        finally:
            await executor.quoter.close()

    return asyncio.run(go())


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


def front_run(w: World, venue: PoolTradingVenue, amount_btc: float) -> Any:
    """A broadcast that lets another account buy `amount_btc` on the v3 pool first, in the
    same block (higher tip), for the first swap sent to `venue` (known by its own client)."""
    real = trading.broadcast
    fronted: list[str] = []

    def broadcast(rpc: JsonRpc, signed: Any) -> str:
        if rpc is not venue.rpc or fronted:
            return real(rpc, signed)
        fronted.append(signed.tx_hash)
        rpc.request("evm_setAutomine", [False])
        try:
            got = real(rpc, signed)
            params = ((w.uni.token1, w.uni.token0, 3000, w.chain.accounts[1], 2**40,
                       int(amount_btc * E18), 2**255, 0),)  # fmt: skip
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

    broadcast.fronted = fronted  # type: ignore[attr-defined]
    return broadcast


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
    broadcast = front_run(w, v3, 1.5)
    fronted = broadcast.fronted
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


def test_each_quote_refreshes_every_pool_in_one_round_trip(world) -> None:
    w = world
    pools = pool_venues(w, live=False)
    quoter = PoolQuoter(None, pools)
    before = w.rpc.round_trips
    quote = asyncio.run(quoter.quote("BTC/USDT", "buy", 2.0))
    assert w.rpc.round_trips - before == 1  # both pools' state in one JSON-RPC batch
    assert {leg.venue for leg in quote.legs} == {p.name for p in pools}
    # a trade on the v2 pair between two quotes is seen by the next one
    w.chain.transact(
        w.v2_router,
        "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
        E18, 0, [w.uni.token0, w.uni.token1], w.chain.accounts[1], 2**40,
        sender=w.chain.accounts[1],
    )  # fmt: skip
    again = asyncio.run(quoter.quote("BTC/USDT", "buy", 2.0))
    assert again.total_cost != quote.total_cost


def test_a_sandwich_within_the_limit_fills_no_worse_than_the_limit(
    world, loopback, tmp_path, monkeypatch
) -> None:
    """A small front-run (within the 10 bps tolerance): the swap fills, worse than quoted,
    never worse than its amountInMaximum (the child's limit price)."""
    w = world
    pools = pool_venues(w, live=True, kinds=("v3",))
    v3 = pools[0]
    v3.rpc = JsonRpc(w.chain.url)
    broadcast = front_run(w, v3, 0.003)
    monkeypatch.setattr(trading, "broadcast", broadcast)
    predicted = {}
    real_plan = trading.plan_swap

    def plan(*args: Any, **kw: Any) -> Any:
        got = real_plan(*args, **kw)
        predicted[got.base_wei] = got.quote_wei
        return got

    monkeypatch.setattr(trading, "plan_swap", plan)
    try:
        report = run(
            Executor(PoolQuoter(None, pools), Journal(tmp_path / "j.sqlite3"), live=True),
            "execute",
            "BTC/USDT",
            "buy",
            0.5,
        )
    finally:
        v3.rpc.close()
    (child,) = report.children
    assert broadcast.fronted == [child.venue_order_id] and child.state is OrderState.FILLED
    paid = round(child.cost * E18)
    quoted = predicted[round(child.filled * E18)]
    assert paid > quoted  # the sandwich cost something
    assert paid <= child.amount * child.limit_price * E18 * (1 + 1e-12)  # bounded by the limit
    assert (paid - quoted) / quoted <= 10e-4


def test_pools_alone_when_no_book_venue_answers(world, tmp_path) -> None:
    w = world
    dead = CcxtVenue(
        "binance", name="cex", exchange=binance_client("http://127.0.0.1:9", timeout_ms=300)
    )
    quoter = PoolQuoter(Router([dead], max_age_ms=None), pool_venues(w, live=False))
    report = run(Executor(quoter, Journal(tmp_path / "j.sqlite3"), live=False), "execute",
                 "BTC/USDT", "buy", 1.0)  # fmt: skip
    assert report.complete and {c.venue for c in report.children} <= {p.name for p in quoter.pools}
