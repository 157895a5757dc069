"""A pool leg as a swap: the exact calldata, a dry run (`eth_call`), a signed transaction,
and the receipt as the fill.

Uniswap v3 legs go through the SwapRouter: a buy of base is `exactOutputSingle` (exactly
the base amount out, at most `amountInMaximum` of quote in), a sell is `exactInputSingle`
(exactly the base in, at least `amountOutMinimum` of quote out). The limits come from the
quote and `max_slippage_bps`; a `deadline` bounds when it may be mined. A pool that moved
past the limit reverts the whole swap: nothing is filled, and the caller re-routes.

Keys: `Signer` holds the private key (from eth-account) and never shows it: its repr and
str name only the address. The transaction hash is what a journal records; `outcome(hash)`
resolves an unknown fate from the receipt, so a swap is never sent twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from liquidroute.errors import OrderRejectedError
from liquidroute.venues.pools.rpc import JsonRpc, RpcError, encode_call
from liquidroute.venues.pools.uniswap import PoolSide

EXACT_IN = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
EXACT_OUT = "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
SWAP_TOPIC = "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
# keccak("Swap(address,address,int256,int256,uint160,uint128,int24)") — checked in the tests


class Signer:
    """An Ethereum account that signs transactions; the key never leaves this object."""

    def __init__(self, private_key: str) -> None:
        from eth_account import Account

        self._account = Account.from_key(private_key)
        self.address: str = self._account.address

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
    """The SwapRouter call for a v3 leg of `base_amount`, priced to the wei by the pool's
    integer math, with its slippage limit and deadline."""
    if venue.pool.kind != "uniswap-v3":
        raise OrderRejectedError(
            venue.name, "only Uniswap v3 legs can be sent (a v2 swap needs the v2 Router02)"
        )
    state = venue.pool.state
    fee = getattr(state, "fee", None)
    if fee is None:
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
    tolerance = max_slippage_bps / 1e4
    if side == "buy":
        limit = int(quote_wei * (1 + tolerance))
        params = (quote_token, base_token, fee, recipient, deadline, base_wei, limit, 0)
        calldata = encode_call(EXACT_OUT, [params])
    else:
        limit = int(quote_wei * (1 - tolerance))
        params = (base_token, quote_token, fee, recipient, deadline, base_wei, limit, 0)
        calldata = encode_call(EXACT_IN, [params])
    return SwapPlan(venue.name, side, base_wei, quote_wei, limit, router, calldata)


@dataclass(frozen=True, slots=True)
class SwapOutcome:
    """What a mined swap did (from its receipt), or that it reverted (`filled` False)."""

    tx_hash: str
    filled: bool
    base_wei: int
    quote_wei: int
    gas_used: int
    reason: str = ""


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
    (answer,) = decode(["uint256"], bytes.fromhex(str(result).removeprefix("0x")))
    return int(answer)


def send(rpc: JsonRpc, plan: SwapPlan, signer: Signer) -> str:
    """Sign and send the swap (EIP-1559); returns the transaction hash to journal.

    A swap the node already sees reverting (gas estimation fails) is refused before
    anything is signed: OrderRejectedError, nothing sent.
    """
    tx: dict[str, Any] = {"from": signer.address, "to": plan.router, "data": plan.calldata}
    try:
        gas = int(rpc.request("eth_estimateGas", [tx]), 16)
    except RpcError as exc:
        raise OrderRejectedError(
            plan.pool, f"the swap would revert: {exc.error.get('message')}"
        ) from exc
    chain_id, nonce, base_fee, tip = rpc.batch(
        [
            ("eth_chainId", []),
            ("eth_getTransactionCount", [signer.address, "pending"]),
            ("eth_gasPrice", []),
            ("eth_maxPriorityFeePerGas", []),
        ]
    )
    signed = signer.sign(
        {
            "to": plan.router,
            "data": plan.calldata,
            "value": 0,
            "gas": gas * 12 // 10,
            "nonce": int(nonce, 16),
            "chainId": int(chain_id, 16),
            "maxPriorityFeePerGas": int(tip, 16),
            "maxFeePerGas": 2 * int(base_fee, 16) + int(tip, 16),
            "type": 2,
        }
    )
    return str(rpc.request("eth_sendRawTransaction", ["0x" + signed.hex()]))


def outcome(rpc: JsonRpc, tx_hash: str, venue: PoolSide) -> SwapOutcome | None:
    """The swap's fate from its receipt (None while it is not mined): the pool's Swap event
    gives the exact amounts; status 0 is a revert (nothing filled)."""
    receipt = rpc.request("eth_getTransactionReceipt", [tx_hash])
    if receipt is None:
        return None
    gas_used = int(receipt["gasUsed"], 16)
    if int(receipt["status"], 16) != 1:
        return SwapOutcome(
            tx_hash, False, 0, 0, gas_used, "reverted (the pool moved past the limit)"
        )
    from eth_abi.abi import decode

    for log in receipt["logs"]:
        if log["address"].lower() == venue.pool.address.lower() and log["topics"][0] == SWAP_TOPIC:
            amount0, amount1, *_ = decode(
                ["int256", "int256", "uint160", "uint128", "int24"],
                bytes.fromhex(log["data"].removeprefix("0x")),
            )
            base, quote = (amount0, amount1) if venue.base_is_token0 else (amount1, amount0)
            return SwapOutcome(tx_hash, True, abs(int(base)), abs(int(quote)), gas_used)
    return SwapOutcome(tx_hash, False, 0, 0, gas_used, "mined without a Swap event from the pool")


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
