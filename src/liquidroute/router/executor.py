"""Executor: turn a quote into child orders, dispatch them, fall back, and never double-send.

One parent order runs in rounds. Each round:

1. resolve every child whose fate is `unknown` by asking its venue (by client order id);
   an amount whose fate is still unknown is never routed again — the run stops instead;
2. quote the remainder over the venues not yet marked bad (refreshed books);
3. plan one IOC limit child order per leg: amount rounded down to the lot, limit price at
   the leg's worst planned price moved by `slippage_bps` in the costly direction and
   rounded to the tick conservatively (buy up, sell down); legs below a venue minimum
   are dropped;
4. journal each intent, then send all legs concurrently (per-venue concurrency limit);
   journal every ack, fill and error;
5. a venue that rejected or only partly filled is marked bad for the next rounds.

It stops when filled, at `max_rounds`, at the deadline, when the next quote would breach
the limit price or the slippage budget, on the kill switch, or when no liquidity is left;
the report says which. Dry run is the default: the venues are `SimulatedVenue`s and
nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from liquidroute.errors import (
    InvalidInputError,
    LiquidrouteError,
    OrderRejectedError,
    RateLimitedError,
    RiskLimitError,
    VenueError,
)
from liquidroute.model import (
    ChildOrder,
    ExecutionReport,
    Market,
    OrderState,
    Quote,
    Side,
    check_amount,
    check_side,
)
from liquidroute.optimizer.rules import round_amount, round_limit_price
from liquidroute.paths import home
from liquidroute.router.journal import Journal
from liquidroute.router.router import Router
from liquidroute.venues.base import OrderUpdate, TradingVenue


@dataclass(frozen=True, slots=True)
class ExecutionPolicy:
    """Limits of one parent order. Every field is checked before anything is sent."""

    slippage_bps: float = 25.0
    max_rounds: int = 3
    deadline_s: float = 30.0
    order_timeout_s: float = 10.0
    limit_price: float | None = None
    max_slippage_bps: float | None = None
    max_notional: float | None = None
    kill_switch: Path | None = None
    venue_concurrency: int = 2

    def __post_init__(self) -> None:
        checks = {
            "slippage_bps": self.slippage_bps >= 0,
            "max_rounds": self.max_rounds >= 1,
            "deadline_s": self.deadline_s > 0,
            "order_timeout_s": self.order_timeout_s > 0,
            "venue_concurrency": self.venue_concurrency >= 1,
            "limit_price": self.limit_price is None or self.limit_price > 0,
            "max_slippage_bps": self.max_slippage_bps is None or self.max_slippage_bps >= 0,
            "max_notional": self.max_notional is None or self.max_notional > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise InvalidInputError(
                    f"{name} = {getattr(self, name)!r} is out of range; see --help"
                )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kill_switch"] = str(self.kill_switch) if self.kill_switch else None
        return d


def default_kill_switch() -> Path:
    """`$LIQUIDROUTE_HOME/KILL` (default ~/.liquidroute/KILL): if it exists, nothing is sent."""
    return home() / "KILL"


def plan_children(
    quote: Quote,
    markets: Mapping[str, Market],
    *,
    parent_id: str,
    round_no: int,
    slippage_bps: float,
    limit_price: float | None,
) -> tuple[list[ChildOrder], list[str]]:
    """One IOC child order per leg, on the venue's lot and tick; notes for dropped legs."""
    children, notes = [], []
    sign = 1.0 if quote.side == "buy" else -1.0
    for leg_no, leg in enumerate(quote.legs):
        market = markets[leg.venue]
        amount = round_amount(leg.amount, market.amount_step)
        price = leg.worst_price * (1 + sign * slippage_bps / 1e4)
        if limit_price is not None:
            price = min(price, limit_price) if quote.side == "buy" else max(price, limit_price)
        price = round_limit_price(price, market.price_tick, quote.side)
        if amount <= 0 or (market.min_amount and amount < market.min_amount):
            notes.append(f"{leg.venue}: {leg.amount:.8g} is below the venue's minimum; skipped")
            continue
        if market.min_notional and amount * price < market.min_notional:
            notes.append(f"{leg.venue}: notional below the venue's minimum; skipped")
            continue
        children.append(
            ChildOrder(
                parent_id=parent_id,
                client_id=f"lr{parent_id}r{round_no}l{leg_no}",
                venue=leg.venue,
                symbol=quote.symbol,
                side=quote.side,
                amount=amount,
                limit_price=price,
                leg=leg_no,
                attempt=round_no,
                round=round_no,
            )
        )
    return children, notes


def apply_update(order: ChildOrder, update: OrderUpdate) -> None:
    """Move `order` through the state table to what the venue reported."""
    fields: dict[str, Any] = {
        "filled": update.filled,
        "avg_price": update.avg_price,
        "fee": update.fee,
        "venue_order_id": update.venue_order_id or order.venue_order_id,
    }
    if update.reason:
        fields["error"] = update.reason
    target: OrderState
    if update.status == "filled":
        target = "filled"
    elif update.status == "rejected":
        target = "rejected"
    elif update.status == "cancelled":
        target = "cancelled"
    else:  # open: resting on the book
        target = "partially_filled" if update.filled > 0 else "submitted"
    if order.state == "unknown" and target in ("partially_filled", "cancelled", "filled"):
        order.transition("submitted")
    if target == "cancelled" and update.filled > 0 and order.state == "submitted":
        order.transition("partially_filled", **fields)
    if target != order.state or target == "partially_filled":
        order.transition(target, **fields)
    else:
        for name, value in fields.items():
            setattr(order, name, value)


class Executor:
    """Runs parent orders over a Router whose venues can trade (simulated or live)."""

    def __init__(
        self,
        router: Router,
        journal: Journal,
        *,
        live: bool,
        policy: ExecutionPolicy | None = None,
        fees: Mapping[str, float] | None = None,
        venue_specs: Sequence[str] | None = None,
    ) -> None:
        """`venue_specs` (how the venues were named, e.g. "sub=binance") are journalled so
        that `resume` can rebuild the same venues."""
        self.router = router
        self.venue_specs = list(venue_specs or [v.name for v in router.venues])
        self.fees = dict(fees or {})
        self.journal = journal
        self.live = live
        self.policy = policy or ExecutionPolicy()
        self.venues: dict[str, TradingVenue] = {}
        for venue in router.venues:
            if not isinstance(venue, TradingVenue):
                raise InvalidInputError(f"venue {venue.name} cannot take orders")
            self.venues[venue.name] = venue
        self._limits = {
            name: asyncio.Semaphore(self.policy.venue_concurrency) for name in self.venues
        }

    def _kill_switch_on(self) -> bool:
        return bool(self.policy.kill_switch and self.policy.kill_switch.exists())

    async def execute(self, symbol: str, side: str, amount: float) -> ExecutionReport:
        """Fill `amount` base units of `symbol`; returns the report (also journalled)."""
        side_ = check_side(side)
        amount = check_amount(amount)
        if self._kill_switch_on():
            raise RiskLimitError(f"kill switch {self.policy.kill_switch} is present; nothing sent")
        quote = await self.router.quote(symbol, side_, amount, baselines=False, fees=self.fees)
        self._check_first_quote(quote)
        parent_id = secrets.token_hex(8)
        request = {
            "symbol": symbol,
            "side": side_,
            "amount": amount,
            "live": self.live,
            "venues": sorted(self.venues),
            "venue_specs": self.venue_specs,
            "policy": self.policy.to_dict(),
            "quoted_avg_price": quote.avg_price,
        }
        self.journal.start_parent(parent_id, symbol, side_, amount, self.live, request)
        return await self._run(parent_id, symbol, side_, amount, [], quoted_avg=quote.avg_price)

    async def resume(self, parent_id: str) -> ExecutionReport:
        """Reconcile an interrupted parent order with the venues, then finish it."""
        parent = self.journal.parent(parent_id)
        if parent is None:
            raise InvalidInputError(f"no parent order {parent_id!r} in {self.journal.path}")
        children = self.journal.children(parent_id)
        for child in children:
            if child.state == "planned":
                # the intent was journalled; the venue decides whether it was ever sent
                child.state = "unknown"
        side = check_side(parent.side)
        quoted = parent.request.get("quoted_avg_price")
        return await self._run(
            parent_id, parent.symbol, side, parent.amount, children, quoted_avg=quoted
        )

    async def _resolve_unknown(self, children: Sequence[ChildOrder]) -> None:
        for child in children:
            if child.state not in ("unknown", "submitted", "partially_filled"):
                continue
            try:
                update = await self.venues[child.venue].fetch_order(child)
            except LiquidrouteError as exc:
                self.journal.record(child, "lookup_failed", {"error": str(exc)})
                continue
            if update is None:
                if child.state == "unknown":
                    child.transition("failed", error="the venue has no such order: never placed")
                    self.journal.record(child, "resolved", {"found": False})
                continue
            apply_update(child, update)
            self.journal.record(child, "resolved", {"status": update.status})

    async def _send(self, child: ChildOrder) -> None:
        venue = self.venues[child.venue]
        async with self._limits[child.venue]:
            self.journal.record(
                child, "intent", {"amount": child.amount, "price": child.limit_price}
            )
            if self._kill_switch_on():
                child.transition("failed", error="kill switch: not sent")
                self.journal.record(child, "not_sent", {"reason": "kill switch"})
                return
            child.transition("submitted")
            try:
                update = await asyncio.wait_for(
                    venue.place_order(child), self.policy.order_timeout_s
                )
            except (OrderRejectedError, RateLimitedError) as exc:
                child.transition("rejected", error=str(exc))
                self.journal.record(child, "rejected", {"error": str(exc)})
                return
            except (TimeoutError, VenueError) as exc:
                # sent, no answer: the order may exist. Only the venue can say.
                reason = str(exc) or "timed out waiting for the venue"
                child.transition("unknown", error=reason)
                self.journal.record(child, "unknown", {"error": reason})
                return
            apply_update(child, update)
            self.journal.record(child, "ack", {"status": update.status, "filled": update.filled})

    async def _run(
        self,
        parent_id: str,
        symbol: str,
        side: Side,
        amount: float,
        children: list[ChildOrder],
        *,
        quoted_avg: float | None,
    ) -> ExecutionReport:
        policy = self.policy
        started = time.monotonic()
        timings: dict[str, float] = {}
        notes: list[str] = []
        bad: dict[str, str] = {}
        rounds = max((c.round for c in children), default=0)
        first_round = rounds + 1
        stop = ""
        ran_out = ""  # set when a quote shows the books cannot fill what is left
        tol = amount * 1e-9
        while True:
            await self._resolve_unknown(children)
            filled = sum(c.filled for c in children)
            pending = sum(
                c.amount - c.filled
                for c in children
                if c.state in ("unknown", "submitted", "partially_filled")
            )
            remaining = amount - filled - pending
            if pending > tol:
                stop = "an order's fate is unknown; run `liquidroute resume` before trading more"
                break
            if remaining <= tol:
                stop = "filled"
                break
            if self._kill_switch_on():
                stop = "kill switch present"
                break
            if rounds >= first_round - 1 + policy.max_rounds:
                stop = f"max rounds ({policy.max_rounds}) used"
                break
            if time.monotonic() - started > policy.deadline_s:
                stop = f"deadline ({policy.deadline_s:g} s) passed"
                break
            rounds += 1
            t0 = time.perf_counter()
            try:
                quote = await self.router.quote(
                    symbol, side, remaining, baselines=False, exclude=bad, fees=self.fees
                )
            except LiquidrouteError as exc:
                stop = ran_out or f"no route for the remainder: {exc}"
                break
            if rounds == first_round:
                timings["first_quote_ms"] = (time.perf_counter() - t0) * 1e3
            if quote.filled <= 0 or quote.avg_price is None:
                stop = ran_out or "no liquidity left on the remaining venues"
                break
            if quote.unfilled > tol and not ran_out:
                ran_out = (
                    "the books ran out of liquidity: the venues' books held "
                    f"{quote.filled:.8g} of the {remaining:.8g} {symbol.split('/')[0]} left to "
                    "fill; add venues or reduce the amount"
                )
            if quoted_avg is None:
                quoted_avg = quote.avg_price
            breach = self._breach(quote, quoted_avg)
            if breach:
                stop = breach
                break
            markets = {v: await self.venues[v].market(symbol) for v in quote.venues}
            planned, dropped = plan_children(
                quote,
                markets,
                parent_id=parent_id,
                round_no=rounds,
                slippage_bps=policy.slippage_bps,
                limit_price=policy.limit_price,
            )
            notes.extend(dropped)
            if not planned:
                stop = "the remainder is below every venue's minimum order"
                break
            children.extend(planned)
            t1 = time.perf_counter()
            await asyncio.gather(*(self._send(c) for c in planned))
            if rounds == first_round:
                timings["first_round_acks_ms"] = (time.perf_counter() - t1) * 1e3
            for child in planned:
                if child.state in ("rejected", "failed"):
                    bad[child.venue] = child.error or child.state
                elif child.state == "cancelled" and child.filled < child.amount:
                    bad[child.venue] = "partly filled: the book moved"
        timings["total_ms"] = (time.monotonic() - started) * 1e3
        report = self._report(
            parent_id, symbol, side, amount, children, rounds, stop, quoted_avg, timings, notes
        )
        state = "filled" if report.complete else ("unknown" if "unknown" in stop else "stopped")
        self.journal.finish_parent(parent_id, state, report.to_dict())
        return report

    def _check_first_quote(self, quote: Quote) -> None:
        limit = self.policy.max_notional
        if limit is not None and quote.total_cost > limit:
            raise RiskLimitError(
                f"the order's notional {quote.total_cost:,.2f} exceeds --max-notional "
                f"{limit:,.2f}; nothing sent"
            )

    def _breach(self, quote: Quote, quoted_avg: float) -> str:
        sign = 1.0 if quote.side == "buy" else -1.0
        assert quote.avg_price is not None
        budget = self.policy.max_slippage_bps
        if budget is not None:
            drift = sign * (quote.avg_price - quoted_avg) / quoted_avg * 1e4
            if drift > budget:
                return (
                    f"the next round's price is {drift:.1f} bps worse than quoted "
                    f"(--max-slippage-bps {budget:g})"
                )
        limit = self.policy.limit_price
        if limit is not None and quote.marginal_price is not None:
            best = (
                min(leg.avg_price for leg in quote.legs)
                if sign > 0
                else max(leg.avg_price for leg in quote.legs)
            )
            if sign * (best - limit) > 0:
                return f"the best remaining price {best:.8g} breaches --limit-price {limit:g}"
        return ""

    def _report(
        self,
        parent_id: str,
        symbol: str,
        side: Side,
        amount: float,
        children: list[ChildOrder],
        rounds: int,
        stop: str,
        quoted_avg: float | None,
        timings: dict[str, float],
        notes: list[str],
    ) -> ExecutionReport:
        filled = sum(c.filled for c in children)
        fees = sum(c.fee for c in children)
        cost = sum(c.cost for c in children)
        avg = cost / filled if filled > 0 else None
        shortfall = None
        if avg is not None and quoted_avg:
            sign = 1.0 if side == "buy" else -1.0
            shortfall = sign * (avg - quoted_avg) / quoted_avg * 1e4
        unfilled = max(amount - filled, 0.0)
        return ExecutionReport(
            parent_id=parent_id,
            symbol=symbol,
            side=side,
            requested=amount,
            filled=filled,
            unfilled=0.0 if unfilled <= amount * 1e-9 else unfilled,
            total_cost=cost,
            total_fees=fees,
            avg_price=avg,
            quoted_avg_price=quoted_avg,
            shortfall_bps=shortfall,
            children=tuple(children),
            rounds=rounds,
            stop_reason=stop,
            live=self.live,
            timings_ms=timings,
            warnings=tuple(notes),
        )
