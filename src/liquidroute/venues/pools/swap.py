"""A pool leg as a swap: the exact calldata, a dry run (`eth_call`), a signed transaction,
and the receipt as the fill.

Uniswap v3 legs go through the SwapRouter: a buy of base is `exactOutputSingle` (exactly
the base amount out, at most `amountInMaximum` of quote in), a sell is `exactInputSingle`
(exactly the base in, at least `amountOutMinimum` of quote out). Uniswap v2 legs go through
UniswapV2Router02 the same way: `swapTokensForExactTokens` (buy) and
`swapExactTokensForTokens` (sell) along the path [quote, base] or [base, quote]. The limits
come from the quote and `max_slippage_bps`, in integers:

    buy:  amountInMaximum  = ⌊quote_wei · (1 + bps/1e4)⌋   (never below quote_wei)
    sell: amountOutMinimum = ⌈quote_wei · (1 − bps/1e4)⌉   (never above quote_wei)

and a `deadline` bounds when it may be mined. A pool that moved past the limit reverts the
whole swap: nothing is filled, and the caller re-routes.

A live swap is two steps so that a journal can record the transaction hash before anything
leaves the process: `sign` (gas estimated, nonce fixed, the hash known) then `broadcast`.
`fate` decides a journalled hash's outcome after a crash without sending anything.

Keys: `Signer` holds the private key (from eth-account) and never shows it: its repr and
str name only the address. The transaction hash is what a journal records; `outcome(hash)`
resolves an unknown fate from the receipt, so a swap is never sent twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from liquidroute.errors import OrderRejectedError
from liquidroute.venues.pools.rpc import JsonRpc, RpcError, encode_call
from liquidroute.venues.pools.uniswap import PoolSide

EXACT_IN = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
EXACT_OUT = "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
V2_EXACT_IN = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
V2_EXACT_OUT = "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)"
SWAP_TOPIC = "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
# keccak("Swap(address,address,int256,int256,uint160,uint128,int24)") — checked in the tests
V2_SWAP_TOPIC = "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"
# keccak("Swap(address,uint256,uint256,uint256,uint256,address)") — checked in the tests
_SCALE = 10**12  # slippage limits are integer: 1 bps = 10**8 parts of 10**12


class Signer:
    """An Ethereum account that signs transactions; the key never leaves this object.

    It also hands out nonces: swaps signed concurrently (one per pool leg of a round) get
    consecutive nonces, never the node's same "pending" count twice.
    """

    def __init__(self, private_key: str) -> None:
        import threading

        from eth_account import Account

        self._account = Account.from_key(private_key)
        self.address: str = self._account.address
        self._lock = threading.Lock()
        self._next: int | None = None

    def next_nonce(self, pending: int) -> int:
        """The nonce for the next transaction: the node's pending count, or past the last
        one this signer handed out when the node has not seen that one yet."""
        with self._lock:
            nonce = pending if self._next is None else max(pending, self._next)
            self._next = nonce + 1
            return nonce

    def forget_nonces(self) -> None:
        """After a refused broadcast: ask the node again next time."""
        with self._lock:
            self._next = None

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def sign(self, tx: dict[str, Any]) -> bytes:
        signed = self._account.sign_transaction(tx)
        return bytes(signed.raw_transaction)


@dataclass(frozen=True, slots=True)
class SwapPlan:
    """One pool leg ready to send: router calldata and the amounts it guarantees."""

    pool: str
    side: Literal["buy", "sell"]
    base_wei: int
    quote_wei: int  # what the quote expects: paid (buy) or received (sell)
    limit_wei: int  # amountInMaximum (buy) or amountOutMinimum (sell)
    router: str
    calldata: str
    kind: str = "uniswap-v3"
    deadline: int = 0  # unix seconds: mined later, the swap reverts (fills nothing)


def swap_limit(side: str, quote_wei: int, max_slippage_bps: float) -> int:
    """The swap's integer limit: most quote paid (buy) or least received (sell)."""
    tol = round(max_slippage_bps * 10**8)
    if side == "buy":
        return quote_wei * (_SCALE + tol) // _SCALE
    return -(-quote_wei * max(_SCALE - tol, 0) // _SCALE)


def plan_swap(
    venue: PoolSide,
    side: Literal["buy", "sell"],
    base_amount: float,
    *,
    router: str,
    recipient: str,
    max_slippage_bps: float,
    deadline_s: float = 120.0,
    now: float | None = None,
) -> SwapPlan:
    """The router call for a leg of `base_amount`, priced to the wei by the pool's integer
    math, with its slippage limit and deadline: the v3 SwapRouter for a v3 pool, the
    UniswapV2Router02 for a v2 pair (`router` is that contract's address)."""
    state = venue.pool.state
    if state is None:
        raise OrderRejectedError(venue.name, "the pool has not been read")
    base_wei, quote_wei = venue.exact_trade(side, base_amount)
    if base_wei <= 0:
        raise OrderRejectedError(venue.name, f"{base_amount} base is below one wei")
    base_token, quote_token = (
        (venue.pool.token0, venue.pool.token1)
        if venue.base_is_token0
        else (venue.pool.token1, venue.pool.token0)
    )
    deadline = int((now if now is not None else time.time()) + deadline_s)
    limit = swap_limit(side, quote_wei, max_slippage_bps)
    kind = venue.pool.kind
    if kind == "uniswap-v2":
        if side == "buy":
            args = [base_wei, limit, [quote_token, base_token], recipient, deadline]
            calldata = encode_call(V2_EXACT_OUT, args)
        else:
            args = [base_wei, limit, [base_token, quote_token], recipient, deadline]
            calldata = encode_call(V2_EXACT_IN, args)
    else:
        fee = getattr(state, "fee", 0)
        if side == "buy":
            params = (quote_token, base_token, fee, recipient, deadline, base_wei, limit, 0)
            calldata = encode_call(EXACT_OUT, [params])
        else:
            params = (base_token, quote_token, fee, recipient, deadline, base_wei, limit, 0)
            calldata = encode_call(EXACT_IN, [params])
    return SwapPlan(venue.name, side, base_wei, quote_wei, limit, router, calldata, kind, deadline)


@dataclass(frozen=True, slots=True)
class SwapOutcome:
    """What a mined swap did (from its receipt), or that it reverted (`filled` False)."""

    tx_hash: str
    filled: bool
    base_wei: int
    quote_wei: int
    gas_used: int
    reason: str = ""
    gas_cost_wei: int = 0  # gasUsed x effectiveGasPrice: what the sender paid in ETH


def dry_run(rpc: JsonRpc, plan: SwapPlan, sender: str) -> int:
    """The node's own answer for the swap: quote paid (buy) or received (sell), in wei.

    Raises OrderRejectedError when the swap would revert (limit, deadline, allowance).
    """
    from eth_abi.abi import decode

    call = {"from": sender, "to": plan.router, "data": plan.calldata}
    try:
        result = rpc.request("eth_call", [call, "latest"])
    except RpcError as exc:
        message = exc.error.get("message")
        raise OrderRejectedError(plan.pool, f"the swap would revert: {message}") from exc
    raw = bytes.fromhex(str(result).removeprefix("0x"))
    if plan.kind == "uniswap-v2":  # amounts along the path: [in, out]
        (amounts,) = decode(["uint256[]"], raw)
        return int(amounts[0] if plan.side == "buy" else amounts[-1])
    (answer,) = decode(["uint256"], raw)
    return int(answer)


@dataclass(frozen=True, slots=True)
class SignedSwap:
    """A signed swap not yet sent: its hash (to journal first), nonce and sender."""

    tx_hash: str
    raw: str = field(repr=False)
    nonce: int
    sender: str
    deadline: int


def sign(rpc: JsonRpc, plan: SwapPlan, signer: Signer) -> SignedSwap:
    """Estimate gas, fix the nonce and sign the swap (EIP-1559); nothing is sent.

    A swap the node already sees reverting (gas estimation fails) is refused before
    anything is signed: OrderRejectedError.
    """
    from eth_utils.crypto import keccak

    tx: dict[str, Any] = {"from": signer.address, "to": plan.router, "data": plan.calldata}
    try:
        gas = int(rpc.request("eth_estimateGas", [tx]), 16)
    except RpcError as exc:
        raise OrderRejectedError(
            plan.pool, f"the swap would revert: {exc.error.get('message')}"
        ) from exc
    chain_id, pending, base_fee, tip = rpc.batch(
        [
            ("eth_chainId", []),
            ("eth_getTransactionCount", [signer.address, "pending"]),
            ("eth_gasPrice", []),
            ("eth_maxPriorityFeePerGas", []),
        ]
    )
    raw = signer.sign(
        {
            "to": plan.router,
            "data": plan.calldata,
            "value": 0,
            "gas": gas * 12 // 10,
            "nonce": (nonce := signer.next_nonce(int(pending, 16))),
            "chainId": int(chain_id, 16),
            "maxPriorityFeePerGas": int(tip, 16),
            "maxFeePerGas": 2 * int(base_fee, 16) + int(tip, 16),
            "type": 2,
        }
    )
    return SignedSwap(
        "0x" + keccak(raw).hex(), "0x" + raw.hex(), nonce, signer.address, plan.deadline
    )


def broadcast(rpc: JsonRpc, signed: SignedSwap) -> str:
    """Send a signed swap; returns its hash. A node that refuses it (nonce, funds) raises
    OrderRejectedError: not in any mempool. A dropped connection raises
    VenueUnavailableError: the node may have it, only `fate` can say."""
    try:
        got = str(rpc.request("eth_sendRawTransaction", [signed.raw]))
    except RpcError as exc:
        raise OrderRejectedError(
            f"rpc {rpc.label}", f"the node refused the transaction: {exc.error.get('message')}"
        ) from exc
    if got.lower() != signed.tx_hash.lower():
        raise OrderRejectedError(f"rpc {rpc.label}", f"the node answered hash {got}")
    return signed.tx_hash


def send(rpc: JsonRpc, plan: SwapPlan, signer: Signer) -> str:
    """Sign and send the swap at once; returns the transaction hash (`sign` + `broadcast`)."""
    return broadcast(rpc, sign(rpc, plan, signer))


def outcome(rpc: JsonRpc, tx_hash: str, venue: PoolSide) -> SwapOutcome | None:
    """The swap's fate from its receipt (None while it is not mined): the pool's Swap event
    gives the exact amounts; status 0 is a revert (nothing filled)."""
    receipt = rpc.request("eth_getTransactionReceipt", [tx_hash])
    if receipt is None:
        return None
    gas_used = int(receipt["gasUsed"], 16)
    paid = gas_used * int(receipt.get("effectiveGasPrice") or "0x0", 16)
    if int(receipt["status"], 16) != 1:
        reason = "reverted (the pool moved past the limit, or the deadline passed)"
        return SwapOutcome(tx_hash, False, 0, 0, gas_used, reason, paid)
    from eth_abi.abi import decode

    v2 = venue.pool.kind == "uniswap-v2"
    topic = V2_SWAP_TOPIC if v2 else SWAP_TOPIC
    for log in receipt["logs"]:
        if log["address"].lower() != venue.pool.address.lower() or log["topics"][0] != topic:
            continue
        data = bytes.fromhex(log["data"].removeprefix("0x"))
        if v2:
            in0, in1, out0, out1 = decode(["uint256"] * 4, data)
            amount0, amount1 = int(in0) + int(out0), int(in1) + int(out1)
        else:
            amount0, amount1, *_ = decode(["int256", "int256", "uint160", "uint128", "int24"], data)
        base, quote = (amount0, amount1) if venue.base_is_token0 else (amount1, amount0)
        return SwapOutcome(tx_hash, True, abs(int(base)), abs(int(quote)), gas_used, "", paid)
    return SwapOutcome(
        tx_hash, False, 0, 0, gas_used, "mined without a Swap event from the pool", paid
    )


def fate(
    rpc: JsonRpc, signed_hash: str, venue: PoolSide, *, sender: str, nonce: int, deadline: int
) -> SwapOutcome | None:
    """What became of a journalled swap, without sending anything.

    Mined: its receipt (`outcome`). Not mined, and it never can fill — its nonce was used by
    another transaction, or the chain's time passed its deadline (mined later, it reverts) —
    a fill of nothing. Otherwise None: still pending, ask again later.

    The nonce and the latest block are read BEFORE the receipt (two round trips; a batch's
    order is not guaranteed): a nonce used by the time of the first read shows up as our
    receipt in the second if the transaction using it was ours.
    """
    count, block = rpc.batch(
        [
            ("eth_getTransactionCount", [sender, "latest"]),
            ("eth_getBlockByNumber", ["latest", False]),
        ]
    )
    got = outcome(rpc, signed_hash, venue)
    if got is not None:
        return got
    if int(count, 16) > nonce:
        reason = f"not mined, and its nonce {nonce} was used by another transaction"
        return SwapOutcome(signed_hash, False, 0, 0, 0, reason)
    if int(block["timestamp"], 16) > deadline:
        reason = f"not mined before its deadline {deadline}: it can no longer fill"
        return SwapOutcome(signed_hash, False, 0, 0, 0, reason)
    return None


def wait_outcome(
    rpc: JsonRpc, tx_hash: str, venue: PoolSide, timeout_s: float = 30.0
) -> SwapOutcome | None:
    """`outcome`, polled until the swap is mined or `timeout_s` passes (then None: the fate
    is unknown and must be asked again, never answered by sending again)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = outcome(rpc, tx_hash, venue)
        if got is not None or time.monotonic() >= deadline:
            return got
        time.sleep(0.01)
