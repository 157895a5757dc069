"""Executor: turn a quote into child orders, dispatch them, fall back, and never double-send.

    from liquidroute import Router, execute_sync
    report = execute_sync(Router(venues), "BTC/USDT", "buy", 2.0)      # dry run
    report = await execute(router, "BTC/USDT", "buy", 2.0, live=True, policy=...)

The executor is typed against a small `Quoter` protocol (the venues it may trade on, a
quote of the remainder over the venues not excluded, close): `Router` is one; it never
imports the executor.

One parent order runs in rounds. Each round:

1. resolve every child whose fate is `unknown` by asking its venue (by client order id,
   idempotent lookups retried with back-off); an amount whose fate is still unknown is
   never routed again — the run stops instead;
2. quote the remainder over the venues not excluded (refreshed books);
3. plan one IOC limit child order per leg on the venue's precision (`order_precision`:
   amount truncated, the limit — the leg's worst planned price moved by `slippage_bps` in
   the costly direction — rounded away from the book, or inside `limit_price`); legs
   below a venue minimum are dropped;
4. right before each send, the risk limits: the kill switch, and the notional cap

       spent + in flight + this order <= max_notional

   where `spent` is what filled children cost (fees included, and what earlier linked
   parents spent), `in flight` the worst case of every child whose fate is open
   (amount x limit x (1 + fee) for a buy) and `this order` the same worst case of the
   child about to go. A child that does not fit is not sent and the parent stops, saying
   what was spent. Then the intent is journalled and the child sent (legs concurrently,
   a per-venue concurrency limit); every ack, fill and error is journalled;
5. transient faults (rate limits with their Retry-After, 5xx and dropped connections
   whose order the venue says it never placed) back off and retry within the parent, at
   most `max_retries` times; a permanent refusal (funds, filters, credentials) or a
   partial fill excludes the venue for the rest of the parent.

It stops when filled, at `max_rounds` (plus the retries used), at the deadline, when the
next quote would breach the limit price or the slippage budget, on a risk limit, on the
kill switch, or when no liquidity is left; `ExecutionReport.stop_reason` (a `StopReason`)
says which and `stop_detail` in words. Dry run is the default: the venues are
`SimulatedVenue`s and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from liquidroute.errors import (
    AuthenticationError,
    InvalidInputError,
    LiquidrouteError,
    OrderRejectedError,
    RateLimitedError,
    RiskLimitError,
    VenueError,
    VenueUnavailableError,
    redact,
)
from liquidroute.model import (
    PENDING_STATES,
    ChildOrder,
    ExecutionReport,
    Market,
    OrderEvent,
    OrderState,
    Quote,
    Side,
    StopReason,
    check_amount,
    check_side,
)
from liquidroute.paths import home
from liquidroute.router.journal import Journal
from liquidroute.venues.base import OrderUpdate, TradingVenue, Venue
from liquidroute.venues.ccxt_venue import order_precision, to_precision

if TYPE_CHECKING:
    from liquidroute.router.router import Router


class Quoter(Protocol):
    """What the executor needs of a router: its venues, a quote, and close()."""

    @property
    def venues(self) -> Sequence[Venue]: ...

    async def quote(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        baselines: bool = ...,
        exclude: Mapping[str, str] | None = ...,
        fees: Mapping[str, float] | None = ...,
    ) -> Quote:
        """The optimal split of `amount` over the venues not in `exclude`."""
        ...

    async def close(self) -> None: ...


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
    max_retries: int = 3
    backoff_s: float = 0.25
    max_backoff_s: float = 5.0
    lookup_retries: int = 2

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
            "max_retries": self.max_retries >= 0,
            "backoff_s": self.backoff_s >= 0,
            "max_backoff_s": self.max_backoff_s >= 0,
            "lookup_retries": self.lookup_retries >= 0,
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

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> ExecutionPolicy:
        """The policy a journalled request recorded (unknown keys ignored)."""
        known = {k: v for k, v in fields.items() if k in cls.__dataclass_fields__}
        if known.get("kill_switch"):
            known["kill_switch"] = Path(known["kill_switch"])
        return cls(**known)


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
    swap_terms: Mapping[str, SwapTerms] | None = None,
) -> tuple[list[ChildOrder], list[str]]:
    """One IOC child order per leg, on the venue's precision; notes for dropped legs.

    The amount is truncated to the venue's precision; the limit price is the leg's worst
    planned price moved by `slippage_bps` against us and rounded away from the book, but
    never beyond `limit_price` (which is rounded inside: down for a buy, up for a sell).
    A pool leg (its venue in `swap_terms`) is a swap: its amount goes to the wei and its
    limit is the swap's own (the quoted exact output moved by the tolerance, as an average
    price); a swap whose limit is beyond `limit_price` is dropped, not clipped.
    """
    children, notes = [], []
    buy = quote.side == "buy"
    sign = 1.0 if buy else -1.0
    swap_terms = swap_terms or {}
    for leg_no, leg in enumerate(quote.legs):
        market = markets[leg.venue]
        terms = swap_terms.get(leg.venue)
        if terms is not None:
            amount, price = terms(quote.side, leg.amount)
            beyond = limit_price is not None and sign * (price - limit_price) > 0
            if amount <= 0 or beyond:
                why = "below one wei" if amount <= 0 else "its swap limit is beyond --limit-price"
                notes.append(f"{leg.venue}: {leg.amount:.8g} skipped ({why})")
                continue
        else:
            amount, price = order_precision(
                market, quote.side, leg.amount, leg.worst_price * (1 + sign * slippage_bps / 1e4)
            )
        if limit_price is not None and terms is None:
            mode = market.precision_mode
            tick = market.price_precision if mode is not None else market.price_tick
            inside = to_precision(limit_price, tick, mode, up=not buy)
            price = min(price, inside) if buy else max(price, inside)
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


def apply_update(order: ChildOrder, update: OrderUpdate) -> OrderState:
    """Move `order` through the state table to what the venue reported."""
    if update.status == "rejected":
        return order.apply(OrderEvent.REJECT, reason=update.reason or "rejected by the venue")
    event = {
        "filled": OrderEvent.FILL,
        "cancelled": OrderEvent.CANCEL,
    }.get(update.status)
    if event is None:  # open: resting on the book
        partly = update.filled > 0 or order.state is OrderState.PARTIALLY_FILLED
        event = OrderEvent.PARTIAL_FILL if partly else OrderEvent.ACCEPT
    return order.apply(
        event,
        filled=update.filled,
        avg_price=update.avg_price,
        fees=update.fees_by_asset(order.quote),
        venue_order_id=update.venue_order_id,
        reason=update.reason,
    )


class SwapTerms(Protocol):
    """(amount, limit as an average price) of a pool leg of `amount` base (0 amount: none)."""

    def __call__(self, side: str, amount: float) -> tuple[float, float]: ...


@dataclass(slots=True)
class _Stop:
    reason: StopReason
    detail: str


@dataclass(slots=True)
class _Parent:
    """One running parent's state (an Executor may run several parents concurrently)."""

    children: list[ChildOrder]
    spent_before: float = 0.0
    risk_stop: str | None = None


#: Faults after which the venue is worth another try within the parent (not placed).
TRANSIENT = (RateLimitedError, VenueUnavailableError, TimeoutError)


class Executor:
    """Runs parent orders over a `Quoter` (a Router) whose venues can trade."""

    def __init__(
        self,
        quoter: Quoter,
        journal: Journal,
        *,
        live: bool,
        policy: ExecutionPolicy | None = None,
        fees: Mapping[str, float] | None = None,
        venue_specs: Sequence[str] | None = None,
        fee_prices: Mapping[str, float] | None = None,
        request_extra: Mapping[str, Any] | None = None,
    ) -> None:
        """`venue_specs` (how the venues were named, e.g. "sub=binance") are journalled so
        that `resume` can rebuild the same venues; `request_extra` is journalled with them
        (e.g. the pools traded). `fee_prices` (asset -> quote per unit) value commissions
        charged in a third asset (BNB, or ETH for a swap's gas)."""
        self.quoter = quoter
        self.request_extra = dict(request_extra or {})
        self.venue_specs = list(
            venue_specs if venue_specs is not None else [v.name for v in quoter.venues]
        )
        self.fees = dict(fees or {})
        self.fee_prices = {k.upper(): float(v) for k, v in (fee_prices or {}).items()}
        self.journal = journal
        self.live = live
        self.policy = policy or ExecutionPolicy()
        self.venues: dict[str, TradingVenue] = {}
        for venue in quoter.venues:
            if not isinstance(venue, TradingVenue):
                raise InvalidInputError(f"venue {venue.name} cannot take orders")
            self.venues[venue.name] = venue
        self._limits = {
            name: asyncio.Semaphore(self.policy.venue_concurrency) for name in self.venues
        }
        self._fee_rate: dict[str, float] = {}
        self._sell_bound: dict[str, float] = {}
        self._transient: dict[str, LiquidrouteError | TimeoutError] = {}

    @property
    def router(self) -> Quoter:
        """The quoter (kept under its former name)."""
        return self.quoter

    def _swap_terms(self) -> dict[str, SwapTerms]:
        """The venues whose children are swaps (pools), with their terms."""
        out: dict[str, SwapTerms] = {}
        for name, venue in self.venues.items():
            terms = getattr(venue, "child_terms", None)
            if terms is not None:
                out[name] = terms
        return out

    def _to_pools(self, quote: Quote, bad: dict[str, str]) -> bool:
        """When every leg of `quote` was below its venue's minimum and pools are still
        open, leave those book venues out so that the next round routes the remainder
        to the pools. False when there is no pool to go to."""
        pools = set(self._swap_terms()) - set(bad)
        books = {leg.venue for leg in quote.legs} - pools - set(bad)
        if not pools or not books:
            return False
        for venue in books:
            bad[venue] = "the remainder is below its minimum order"
        return True

    def _kill_switch_on(self) -> bool:
        return bool(self.policy.kill_switch and self.policy.kill_switch.exists())

    # ------------------------------------------------------------------ entry points
    async def execute(self, symbol: str, side: str, amount: float) -> ExecutionReport:
        """Fill `amount` base units of `symbol`; returns the report (also journalled)."""
        side_ = check_side(side)
        amount = check_amount(amount)
        return await self._start(symbol, side_, amount)

    async def _start(
        self,
        symbol: str,
        side: Side,
        amount: float,
        *,
        continues: str | None = None,
        spent_before: float = 0.0,
        quoted_avg: float | None = None,
    ) -> ExecutionReport:
        if self._kill_switch_on():
            raise RiskLimitError(f"kill switch {self.policy.kill_switch} is present; nothing sent")
        quote = await self.quoter.quote(symbol, side, amount, baselines=False, fees=self.fees)
        self._check_first_quote(quote, spent_before)
        parent_id = secrets.token_hex(8)
        quoted_avg = quoted_avg if quoted_avg is not None else quote.avg_price
        request: dict[str, Any] = {
            "symbol": symbol,
            "side": side,
            "amount": amount,
            "live": self.live,
            "venues": sorted(self.venues),
            "venue_specs": self.venue_specs,
            "policy": self.policy.to_dict(),
            "quoted_avg_price": quoted_avg,
            "continues": continues,
            "spent_before": spent_before,
            "fee_prices": self.fee_prices,
            **self.request_extra,
        }
        if continues:  # first claim the stopped parent: it can be continued only once
            self.journal.continued(continues, by=parent_id)
        self.journal.start_parent(parent_id, symbol, side, amount, self.live, request)
        return await self._run(
            parent_id,
            symbol,
            side,
            amount,
            [],
            quoted_avg=quoted_avg,
            spent_before=spent_before,
            continues=continues,
        )

    async def resume(self, parent_id: str) -> ExecutionReport:
        """Reconcile an interrupted parent order with the venues, then finish it."""
        parent = self.journal.parent(parent_id)
        if parent is None:
            raise InvalidInputError(f"no parent order {parent_id!r} in {self.journal.path}")
        if parent.state == "continued":
            raise InvalidInputError(
                f"parent {parent_id} was continued by another parent (see `liquidroute "
                "orders`); resume that one instead"
            )
        children = self.journal.children(parent_id)
        venue_of = {c.client_id: c.venue for c in children}
        for _, client_id, kind, detail in self.journal.events(parent_id):
            # a swap signed (maybe broadcast) by an earlier run: its venue decides its fate
            venue = self.venues.get(venue_of.get(client_id or "", ""))
            remember = getattr(venue, "remember", None)
            if kind == "signed" and client_id and remember is not None:
                remember(client_id, detail)
        for child in children:
            if child.state is OrderState.PLANNED:
                # the intent was journalled; the venue decides whether it was ever sent
                child.apply(OrderEvent.RECOVER)
        side = check_side(parent.side)
        return await self._run(
            parent_id,
            parent.symbol,
            side,
            parent.amount,
            children,
            quoted_avg=parent.request.get("quoted_avg_price"),
            spent_before=float(parent.request.get("spent_before") or 0.0),
            continues=parent.request.get("continues"),
        )

    async def continue_parent(self, parent_id: str) -> ExecutionReport:
        """Route a stopped parent's remainder as a new parent linked to it (`continues`).

        The notional cap covers both: what the stopped parent (and the parents it
        continued) spent counts as already spent.
        """
        parent = self.journal.parent(parent_id)
        if parent is None:
            raise InvalidInputError(f"no parent order {parent_id!r} in {self.journal.path}")
        if parent.state != "stopped":
            hint = {
                "running": "run `liquidroute resume` on it first",
                "unknown": "run `liquidroute resume` on it first",
                "continued": "it was continued already (see `liquidroute orders`)",
            }.get(parent.state, "nothing is left to fill")
            raise InvalidInputError(
                f"parent {parent_id} is {parent.state}: only a stopped parent with a "
                f"remainder can be continued; {hint}"
            )
        children = self.journal.children(parent_id)
        if any(c.state in PENDING_STATES or c.state is OrderState.PLANNED for c in children):
            raise InvalidInputError(
                f"parent {parent_id} has orders whose fate is open; run `liquidroute resume "
                f"{parent_id}` first"
            )
        remaining = parent.amount - sum(c.filled for c in children)
        if remaining <= parent.amount * 1e-9:
            raise InvalidInputError(f"parent {parent_id} has no remainder to continue")
        spent = float(parent.request.get("spent_before") or 0.0)
        spent += sum(self._spent_value(c) for c in children)
        return await self._start(
            parent.symbol,
            check_side(parent.side),
            remaining,
            continues=parent_id,
            spent_before=spent,
            quoted_avg=parent.request.get("quoted_avg_price"),
        )

    # ------------------------------------------------------------------ venues
    async def _lookup(self, child: ChildOrder) -> OrderUpdate | None:
        """The venue's answer about `child`, retried with back-off on transient faults."""
        attempt = 0
        while True:
            try:
                return await asyncio.wait_for(
                    self.venues[child.venue].fetch_order(child), self.policy.order_timeout_s
                )
            except (*TRANSIENT, VenueError) as exc:
                text = redact(str(exc) or f"no answer within {self.policy.order_timeout_s:g} s")
                self.journal.record(child, "lookup_failed", {"error": text, "attempt": attempt})
                if not isinstance(exc, TRANSIENT) or attempt >= self.policy.lookup_retries:
                    raise
                await asyncio.sleep(self._backoff(attempt, exc))
                attempt += 1

    async def _resolve_unknown(self, children: Sequence[ChildOrder]) -> None:
        for child in children:
            if child.state not in PENDING_STATES:
                continue
            try:
                update = await self._lookup(child)
            except (*TRANSIENT, LiquidrouteError):
                continue
            if update is None:
                # unknown, or journalled as submitted and never acknowledged (a crash)
                never_acked = child.state is OrderState.SUBMITTED and not child.venue_order_id
                if child.state is OrderState.UNKNOWN or never_acked:
                    child.apply(OrderEvent.NOT_FOUND, reason="the venue has no such order")
                    self.journal.record(child, "resolved", {"found": False})
                continue
            apply_update(child, update)
            self.journal.record(child, "resolved", {"status": update.status})

    def _backoff(self, attempt: int, exc: BaseException | None) -> float:
        retry_after = getattr(exc, "retry_after", None)
        wait = retry_after if retry_after is not None else self.policy.backoff_s * 2**attempt
        return float(min(wait, self.policy.max_backoff_s))

    # ------------------------------------------------------------------ risk
    def _spent_value(self, child: ChildOrder) -> float:
        """What a child has spent towards the notional cap: cost for a buy (fees
        included), notional sold for a sell."""
        if child.side == "buy":
            return child.notional + child.fee_value(self.fee_prices)
        return child.notional

    def _worst_case(self, child: ChildOrder) -> float:
        """The most a child can add to the notional: its amount at its limit (plus the
        taker fee) for a buy; at the better of its limit and the book's mid for a sell."""
        if child.side == "buy":
            return child.amount * child.limit_price * (1 + self._fee_rate.get(child.venue, 0.0))
        bound = max(child.limit_price, self._sell_bound.get(child.client_id, 0.0))
        return child.amount * bound

    def _cap_refusal(self, child: ChildOrder, parent: _Parent) -> str | None:
        """Why `child` may not be sent under --max-notional (None: it fits)."""
        cap = self.policy.max_notional
        if cap is None:
            return None
        spent, in_flight = parent.spent_before, 0.0
        for c in parent.children:
            if c is child or c.state is OrderState.PLANNED:
                continue
            if c.state in PENDING_STATES:
                in_flight += max(self._worst_case(c), self._spent_value(c))
            elif c.filled:
                spent += self._spent_value(c)
        this = self._worst_case(child)
        if spent + in_flight + this <= cap * (1 + 1e-12):
            return None
        return (
            f"--max-notional {cap:,.2f}: spent {spent:,.2f} + in flight {in_flight:,.2f} + "
            f"this order {this:,.2f} (at its limit price) = {spent + in_flight + this:,.2f}; "
            "not sent"
        )

    def _limit_refusal(self, child: ChildOrder) -> str | None:
        """A child priced beyond --limit-price is never sent (planning clips it; this is
        the check at the door)."""
        limit = self.policy.limit_price
        if limit is None:
            return None
        beyond = child.limit_price > limit if child.side == "buy" else child.limit_price < limit
        if not beyond:
            return None
        return f"{child.client_id} priced {child.limit_price:.8g} beyond --limit-price {limit:g}"

    # ------------------------------------------------------------------ sending
    async def _send(self, child: ChildOrder, parent: _Parent) -> None:
        venue = self.venues[child.venue]
        async with self._limits[child.venue]:
            if self._kill_switch_on() or parent.risk_stop:
                reason = "kill switch: not sent" if self._kill_switch_on() else parent.risk_stop
                child.apply(OrderEvent.NOT_SENT, reason=reason)
                self.journal.record(child, "not_sent", {"reason": reason})
                return
            refusal = self._cap_refusal(child, parent) or self._limit_refusal(child)
            if refusal:  # no await between this check and SUBMIT: the cap cannot race
                parent.risk_stop = refusal
                child.apply(OrderEvent.NOT_SENT, reason=refusal)
                self.journal.record(child, "not_sent", {"reason": refusal})
                return
            child.apply(OrderEvent.SUBMIT)
            self.journal.record(
                child, "intent", {"amount": child.amount, "price": child.limit_price}
            )
            if not await self._prepare(venue, child):
                return
            try:
                update = await asyncio.wait_for(
                    venue.place_order(child), self.policy.order_timeout_s
                )
            except (OrderRejectedError, RateLimitedError, AuthenticationError) as exc:
                # refused outright: the order never reached the book
                if isinstance(exc, RateLimitedError):
                    self._transient[child.client_id] = exc
                child.apply(OrderEvent.REJECT, reason=str(exc))
                self.journal.record(child, "rejected", {"error": str(exc)})
                return
            except (TimeoutError, VenueError) as exc:
                # sent, no answer: the order may exist. Only the venue can say.
                if isinstance(exc, TRANSIENT):
                    self._transient[child.client_id] = exc
                reason = redact(str(exc) or "timed out waiting for the venue")
                child.apply(OrderEvent.LOSE, reason=reason)
                self.journal.record(child, "unknown", {"error": reason})
                return
            apply_update(child, update)
            self.journal.record(child, "ack", {"status": update.status, "filled": update.filled})

    async def _prepare(self, venue: TradingVenue, child: ChildOrder) -> bool:
        """For a venue that signs before sending (a pool swap): sign, then journal the
        transaction hash BEFORE anything is broadcast, so a crash after the broadcast is
        resolved from the chain. False when it cannot be signed (nothing was sent)."""
        prepare = getattr(venue, "prepare", None)
        if prepare is None:
            return True
        try:
            detail = await asyncio.wait_for(prepare(child), self.policy.order_timeout_s)
        except (LiquidrouteError, TimeoutError) as exc:
            if isinstance(exc, TRANSIENT) and not isinstance(exc, OrderRejectedError):
                self._transient[child.client_id] = exc
            reason = redact(str(exc) or "timed out signing")
            child.apply(OrderEvent.REJECT, reason=reason)
            self.journal.record(child, "rejected", {"error": reason, "signed": False})
            return False
        if detail:
            child.apply(OrderEvent.ACCEPT, venue_order_id=str(detail["tx_hash"]))
            self.journal.record(child, "signed", detail)
        return True

    # ------------------------------------------------------------------ the loop
    async def _run(
        self,
        parent_id: str,
        symbol: str,
        side: Side,
        amount: float,
        children: list[ChildOrder],
        *,
        quoted_avg: float | None,
        spent_before: float = 0.0,
        continues: str | None = None,
    ) -> ExecutionReport:
        policy = self.policy
        started = time.monotonic()
        timings: dict[str, float] = {}
        notes: list[str] = []
        bad: dict[str, str] = {}
        parent = _Parent(children, spent_before)
        rounds = max((c.round for c in children), default=0)
        first_round = rounds + 1
        retries = 0
        ran_out = ""  # set when a quote shows the books cannot fill what is left
        tol = amount * 1e-9
        while True:
            stop = await self._next_stop(children, amount, tol, rounds - first_round + 1, retries)
            if stop is None and time.monotonic() - started > policy.deadline_s:
                stop = _Stop(StopReason.DEADLINE, f"deadline ({policy.deadline_s:g} s) passed")
            if stop is not None:
                break
            remaining = amount - sum(c.filled for c in children)
            rounds += 1
            t0 = time.perf_counter()
            try:
                quote = await self.quoter.quote(
                    symbol, side, remaining, baselines=False, exclude=bad, fees=self.fees
                )
            except LiquidrouteError as exc:
                stop = (
                    _Stop(StopReason.NO_LIQUIDITY, ran_out)
                    if ran_out
                    else _Stop(StopReason.NO_ROUTE, f"no route for the remainder: {exc}")
                )
                break
            if rounds == first_round:
                timings["first_quote_ms"] = (time.perf_counter() - t0) * 1e3
            if quote.filled <= 0 or quote.avg_price is None:
                stop = _Stop(
                    StopReason.NO_LIQUIDITY, ran_out or "no liquidity left on the remaining venues"
                )
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
                stop = _Stop(StopReason.PRICE_LIMIT, breach)
                break
            markets = {v: await self.venues[v].market(symbol) for v in quote.venues}
            planned, dropped = plan_children(
                quote,
                markets,
                parent_id=parent_id,
                round_no=rounds,
                slippage_bps=policy.slippage_bps,
                limit_price=policy.limit_price,
                swap_terms=self._swap_terms(),
            )
            notes.extend(dropped)
            if not planned and self._to_pools(quote, bad):
                continue  # a book's lot or minimum left a remainder: the pools take any wei
            if not planned:
                stop = _Stop(
                    StopReason.BELOW_MINIMUM, "the remainder is below every venue's minimum order"
                )
                break
            for child in planned:
                self._fee_rate[child.venue] = markets[child.venue].taker_fee
                self._sell_bound[child.client_id] = quote.mid or 0.0
            children.extend(planned)
            t1 = time.perf_counter()
            await asyncio.gather(*(self._send(c, parent) for c in planned))
            await self._resolve_unknown(planned)
            if rounds == first_round:
                timings["first_round_acks_ms"] = (time.perf_counter() - t1) * 1e3
            if parent.risk_stop:
                stop = _Stop(StopReason.RISK_LIMIT, parent.risk_stop)
                break
            left_s = policy.deadline_s - (time.monotonic() - started)
            retries += await self._after_round(planned, bad, retries, max(left_s, 0.0))
        timings["total_ms"] = (time.monotonic() - started) * 1e3
        for venue in self.venues.values():
            venue_notes = getattr(venue, "notes", None)
            if isinstance(venue_notes, list):
                notes.extend(venue_notes)
                venue_notes.clear()
        report = self._report(
            parent_id, symbol, side, amount, children, rounds, stop, quoted_avg, timings, notes
        )
        report = _with_continues(report, continues)
        self.journal.finish_parent(parent_id, stop.reason.parent_state, report.to_dict())
        return report

    async def _next_stop(
        self, children: list[ChildOrder], amount: float, tol: float, used: int, retries: int
    ) -> _Stop | None:
        """Why the parent must stop before another round (None: go on)."""
        await self._resolve_unknown(children)
        filled = sum(c.filled for c in children)
        pending = sum(c.amount - c.filled for c in children if c.state in PENDING_STATES)
        if pending > tol:
            return _Stop(
                StopReason.UNKNOWN_FATE,
                "an order's fate is unknown; run `liquidroute resume` before trading more",
            )
        if amount - filled <= tol:
            return _Stop(StopReason.FILLED, "filled")
        if self._kill_switch_on():
            return _Stop(StopReason.KILL_SWITCH, "kill switch present")
        if used >= self.policy.max_rounds + retries:
            return _Stop(StopReason.MAX_ROUNDS, f"max rounds ({self.policy.max_rounds}) used")
        return None

    async def _after_round(
        self, planned: list[ChildOrder], bad: dict[str, str], retries: int, left_s: float
    ) -> int:
        """Exclude venues that refused for good; back off after transient faults (never
        past the deadline, `left_s` away).

        Returns 1 when the next round is a retry (bounded by `max_retries`), else 0.
        """
        transient: list[BaseException] = []
        for child in planned:
            if child.state in (OrderState.REJECTED, OrderState.FAILED):
                cause = self._transient.get(child.client_id)
                if cause is not None and retries < self.policy.max_retries:
                    transient.append(cause)
                else:
                    bad[child.venue] = child.error or child.state.value
            elif child.state is OrderState.CANCELLED and child.filled < child.amount:
                bad[child.venue] = "partly filled: the book moved"
        if not transient:
            return 0
        wait = min(max(self._backoff(retries, exc) for exc in transient), left_s)
        for child in planned:
            if child.client_id in self._transient and child.done:
                self.journal.record(child, "retry_scheduled", {"after_s": wait})
        await asyncio.sleep(wait)
        return 1

    def _check_first_quote(self, quote: Quote, spent_before: float) -> None:
        limit = self.policy.max_notional
        if limit is not None and spent_before + quote.total_cost > limit:
            already = f" after {spent_before:,.2f} already spent" if spent_before else ""
            raise RiskLimitError(
                f"the order's notional {quote.total_cost:,.2f}{already} exceeds --max-notional "
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
        stop: _Stop,
        quoted_avg: float | None,
        timings: dict[str, float],
        notes: list[str],
    ) -> ExecutionReport:
        filled = sum(c.filled for c in children)
        notional = sum(c.notional for c in children)
        fees = sum(c.fee_value(self.fee_prices) for c in children)
        cost = notional + fees if side == "buy" else notional - fees
        by_asset: dict[str, float] = {}
        unvalued: dict[str, float] = {}
        for c in children:
            for asset, value in c.fees.items():
                by_asset[asset] = by_asset.get(asset, 0.0) + value
            for asset, value in c.unvalued_fees(self.fee_prices).items():
                unvalued[asset] = unvalued.get(asset, 0.0) + value
        for asset, value in unvalued.items():
            notes.append(
                f"{value:.8g} {asset} of commission is not valued in the totals (no price "
                f"known; pass fee_prices / --fee-price {asset}=PRICE)"
            )
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
            stop_reason=stop.reason,
            stop_detail=redact(stop.detail),
            live=self.live,
            timings_ms=timings,
            warnings=tuple(redact(n) for n in notes),
            fees_by_asset=by_asset,
            unvalued_fees=unvalued,
            net_base=sum(c.net_base for c in children),
            net_quote=sum(c.net_quote for c in children),
        )


def _with_continues(report: ExecutionReport, continues: str | None) -> ExecutionReport:
    if not continues:
        return report
    import dataclasses

    return dataclasses.replace(report, continues=continues)


# ---------------------------------------------------------------------- library entry
async def execute(
    router: Router,
    symbol: str,
    side: str,
    amount: float,
    *,
    live: bool = False,
    journal: Journal | None = None,
    policy: ExecutionPolicy | None = None,
    fees: Mapping[str, float] | None = None,
    latency_ms: float = 0.0,
    fee_prices: Mapping[str, float] | None = None,
) -> ExecutionReport:
    """Fill `amount` of `symbol` over `router`'s venues: a dry run (simulated fills
    against the venues' books, nothing sent) unless `live`.

    Live trading needs venues that take orders (`CcxtVenue` with credentials). The
    journal defaults to ~/.liquidroute/journal.sqlite3. `router` is not closed.
    """
    from liquidroute.venues.simulated import SimulatedVenue

    quoter = router
    if not live:
        quoter = copy.copy(router)
        quoter.venues = [SimulatedVenue(v, latency_ms=latency_ms) for v in router.venues]
    executor = Executor(
        quoter, journal or Journal(), live=live, policy=policy, fees=fees, fee_prices=fee_prices
    )
    return await executor.execute(symbol, side, amount)


def execute_sync(
    router: Router, symbol: str, side: str, amount: float, **kwargs: Any
) -> ExecutionReport:
    """`execute` for synchronous callers (closes the router's venues when done)."""

    async def run() -> ExecutionReport:
        try:
            return await execute(router, symbol, side, amount, **kwargs)
        finally:
            await router.close()

    return asyncio.run(run())
