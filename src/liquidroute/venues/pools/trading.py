"""A pool as a venue the executor trades on: a child order is a swap.

`PoolTradingVenue` gives a Uniswap pool the executor's `TradingVenue` shape, so a pool leg
gets the guarantees of an exchange leg (journal, caps, fallback rounds, resume):

- `child_terms(side, amount)`: the child's amount (to the wei) and its limit as an average
  price — the swap's integer limit (`swap.swap_limit`, from the quoted exact output and
  the slippage tolerance) over the base amount. The notional cap counts that limit: for a
  buy it is exactly `amountInMaximum`.
- dry run (`live=False`): `place_order` is an `eth_call` of the exact swap from the
  wallet's address; the fill is the node's own answer, and a note states it beside the
  integer prediction. Nothing is signed or sent.
- live: `prepare` signs the swap (gas estimated, nonce fixed, the deadline `deadline_s`
  after the latest block's time — the clock the router checks) and returns its hash, which
  the executor journals BEFORE `place_order` broadcasts it; the receipt is the fill (the
  pool's Swap event, to the wei). No receipt within `receipt_timeout_s`: the fate is
  unknown (TimeoutError), and `fetch_order` later decides it from the chain (`swap.fate`):
  mined -> the receipt; reverted -> rejected; nonce used elsewhere or deadline passed ->
  rejected (it can no longer fill); else still pending. A swap is never sent twice.

Fees: the pool's LP fee is inside the swap's price; it is reported as the fill's fee in
quote (avg price excludes it, as the quote's legs do). Gas is paid in the chain's native
token and reported as a fee in that asset ("ETH"), valued only with `--fee-price ETH=...`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from liquidroute.errors import InvalidInputError, OrderRejectedError, VenueUnavailableError
from liquidroute.model import ChildOrder, DepthSnapshot, Market
from liquidroute.venues.base import OrderUpdate
from liquidroute.venues.pools.rpc import JsonRpc
from liquidroute.venues.pools.swap import (
    SignedSwap,
    Signer,
    SwapOutcome,
    SwapPlan,
    broadcast,
    dry_run,
    fate,
    plan_swap,
    sign,
    wait_outcome,
)
from liquidroute.venues.pools.uniswap import PoolSide, refresh_pools

NATIVE = "ETH"


class PoolTradingVenue:
    """One pool, oriented for one market, that takes child orders as swaps."""

    def __init__(
        self,
        side: PoolSide,
        rpc: JsonRpc,
        *,
        router: str,
        wallet: str,
        signer: Signer | None = None,
        live: bool = False,
        slippage_bps: float = 25.0,
        deadline_s: float = 120.0,
        receipt_timeout_s: float = 30.0,
    ) -> None:
        if live and signer is None:
            raise InvalidInputError(
                f"pool {side.name}: live swaps need a key (LIQUIDROUTE_EVM_PRIVATE_KEY)"
            )
        self.side = side
        self.rpc = rpc
        self.router = router
        self.wallet = signer.address if signer is not None else wallet
        self.signer = signer
        self.trading_live = live
        self.slippage_bps = slippage_bps
        self.deadline_s = deadline_s
        self.receipt_timeout_s = receipt_timeout_s
        self._signed: dict[str, SignedSwap] = {}
        self._known: dict[str, Mapping[str, Any]] = {}
        self._dry: dict[str, OrderUpdate] = {}
        self.notes: list[str] = []

    # ------------------------------------------------------------ Venue
    @property
    def name(self) -> str:
        return self.side.name

    @property
    def live(self) -> bool:
        return True

    async def market(self, symbol: str) -> Market:
        """No lot or tick (the amount goes to the wei); fee 0: the LP fee is in the price."""
        return Market(self.name, symbol, taker_fee=0.0)

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        raise InvalidInputError(f"{self.name} is a pool: it has a curve, not an order book")

    async def close(self) -> None:
        return None

    # ------------------------------------------------------------ planning
    def _plan(self, side: str, amount: float, now: float | None = None) -> SwapPlan:
        return plan_swap(
            self.side,
            side,  # type: ignore[arg-type]
            amount,
            router=self.router,
            recipient=self.wallet,
            max_slippage_bps=self.slippage_bps,
            deadline_s=self.deadline_s,
            now=now,
        )

    def child_terms(self, side: str, amount: float) -> tuple[float, float]:
        """(amount to the wei, limit as an average price) of a swap of `amount` base on the
        pool's current state; (0, 0) below one wei."""
        try:
            plan = self._plan(side, amount)
        except OrderRejectedError:
            return 0.0, 0.0
        base = plan.base_wei / 10**self.side.base_decimals
        return base, plan.limit_wei / 10**self.side.quote_decimals / base

    def _order_plan(self, order: ChildOrder, now: float | None = None) -> SwapPlan:
        plan = self._plan(order.side, order.amount, now)
        bound = order.limit_price * order.amount * 10**self.side.quote_decimals
        if order.side == "buy" and plan.limit_wei > bound * (1 + 1e-12):
            raise OrderRejectedError(self.name, "the swap's limit exceeds the order's limit")
        return plan

    # ------------------------------------------------------------ orders
    async def prepare(self, order: ChildOrder) -> dict[str, Any]:
        """Sign the swap of `order` (live only): the details to journal before sending."""
        if not self.trading_live:
            return {}
        assert self.signer is not None
        plan = self._order_plan(order, await asyncio.to_thread(self._chain_now))
        signed = await asyncio.to_thread(sign, self.rpc, plan, self.signer)
        self._signed[order.client_id] = signed
        detail = {
            "tx_hash": signed.tx_hash,
            "nonce": signed.nonce,
            "sender": signed.sender,
            "deadline": signed.deadline,
            "limit_wei": str(plan.limit_wei),
            "predicted_quote_wei": str(plan.quote_wei),
        }
        self._known[order.client_id] = detail
        return detail

    def _chain_now(self) -> float:
        """The latest block's timestamp: the clock the router checks the deadline against."""
        block = self.rpc.request("eth_getBlockByNumber", ["latest", False])
        return float(int(block["timestamp"], 16))

    def remember(self, client_id: str, detail: Mapping[str, Any]) -> None:
        """A signed swap journalled by an earlier run (resume): enough to decide its fate."""
        self._known[client_id] = dict(detail)

    async def place_order(self, order: ChildOrder) -> OrderUpdate:
        if not self.trading_live:
            return await self._dry_run(order)
        signed = self._signed.get(order.client_id)
        if signed is None:
            raise OrderRejectedError(self.name, "the swap was not signed (prepare first)")
        try:
            await asyncio.to_thread(broadcast, self.rpc, signed)
        except OrderRejectedError:
            if self.signer is not None:
                self.signer.forget_nonces()  # that nonce is free again: re-read it
            raise
        got = await asyncio.to_thread(
            wait_outcome, self.rpc, signed.tx_hash, self.side, self.receipt_timeout_s
        )
        if got is None:
            raise TimeoutError(
                f"{self.name}: swap {signed.tx_hash} not mined within {self.receipt_timeout_s:g}"
                " s; its fate is decided from the chain (liquidroute resume)"
            )
        return self._update(order, got)

    async def _dry_run(self, order: ChildOrder) -> OrderUpdate:
        known = self._dry.get(order.client_id)
        if known is not None:  # the same client id twice: the first answer
            return known
        plan = self._order_plan(order)
        answer = await asyncio.to_thread(dry_run, self.rpc, plan, self.wallet)
        same = "equal to the wei" if answer == plan.quote_wei else "DIFFERENT"
        paid = "pays" if order.side == "buy" else "receives"
        self.notes.append(
            f"{self.name}: eth_call of the swap {paid} {answer} quote wei; predicted "
            f"{plan.quote_wei} ({same})"
        )
        outcome = SwapOutcome("", True, plan.base_wei, answer, 0)
        update = self._update(order, outcome)
        self._dry[order.client_id] = update
        return update

    async def fetch_order(self, order: ChildOrder) -> OrderUpdate | None:
        """The swap's fate from the chain; None when it was never signed (so never sent).
        A swap still pending raises VenueUnavailableError (its fate stays unknown)."""
        if not self.trading_live:
            return self._dry.get(order.client_id)
        known = self._known.get(order.client_id)
        if known is None or not order.venue_order_id:
            return None
        got = await asyncio.to_thread(
            fate,
            self.rpc,
            str(known["tx_hash"]),
            self.side,
            sender=str(known["sender"]),
            nonce=int(known["nonce"]),
            deadline=int(known["deadline"]),
        )
        if got is None:
            raise VenueUnavailableError(
                self.name, f"swap {known['tx_hash']} is still pending; ask again later"
            )
        return self._update(order, got)

    def _update(self, order: ChildOrder, got: SwapOutcome) -> OrderUpdate:
        """An executor update from a swap outcome: amounts to the wei; the LP fee in quote,
        gas in the native token."""
        if not got.filled:
            return OrderUpdate(
                order.client_id,
                "rejected",
                0.0,
                None,
                0.0,
                venue_order_id=got.tx_hash or None,
                reason=f"{self.name}: {got.reason}",
                fees={NATIVE: got.gas_cost_wei / 1e18} if got.gas_cost_wei else None,
            )
        base = got.base_wei / 10**self.side.base_decimals
        quote = got.quote_wei / 10**self.side.quote_decimals
        rate = self.side.curve().fee
        buy = order.side == "buy"
        fee = quote * rate if buy else quote * rate / (1 - rate)
        notional = quote - fee if buy else quote + fee
        fees = {order.quote: fee}
        if got.gas_cost_wei:
            fees[NATIVE] = fees.get(NATIVE, 0.0) + got.gas_cost_wei / 1e18
        return OrderUpdate(
            order.client_id,
            "filled",
            base,
            notional / base,
            fee,
            venue_order_id=got.tx_hash or None,
            fees=fees,
        )


def refresh_all(venues: Sequence[PoolTradingVenue]) -> None:
    """Re-read every pool's state: one JSON-RPC round trip per node (the pools sharing a
    client are refreshed in one batch), not one per pool."""
    groups: dict[int, list[PoolTradingVenue]] = {}
    for venue in venues:
        groups.setdefault(id(venue.rpc), []).append(venue)
    for group in groups.values():
        refresh_pools(group[0].rpc, [v.side.pool for v in group])
