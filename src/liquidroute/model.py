"""The domain: markets, depth snapshots, quotes and their legs.

Pure data with validation in the constructors: nothing here talks to a venue or a solver.
A `DepthSnapshot` that exists is a book you can route on (finite, positive, strictly
monotone, not crossed); a `Market` that exists has sane fee and trading rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from liquidroute.errors import InvalidInputError, MalformedBookError

Side = Literal["buy", "sell"]
AmountUnit = Literal["base", "quote"]
FloatArray = npt.NDArray[np.float64]

SIDES: tuple[Side, ...] = ("buy", "sell")


def split_symbol(symbol: str) -> tuple[str, str]:
    """`"BTC/USDT"` or `"BTC/USDT:USDT"` (ccxt unified) -> `("BTC", "USDT")`."""
    pair = symbol.split(":", 1)[0]
    base, sep, quote = pair.partition("/")
    if not sep or not base or not quote:
        raise InvalidInputError(
            f"symbol {symbol!r} is not a unified symbol; write it as BASE/QUOTE, e.g. BTC/USDT"
        )
    return base.upper(), quote.upper()


def _optional_positive(name: str, value: float | None, venue: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(
            f"market {venue}: {name} must be a positive finite number or None, got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Market:
    """One instrument on one venue, with its taker fee and trading rules.

    Rules follow ccxt's unified market: `amount_step` is the lot (ccxt `precision.amount`
    in TICK_SIZE mode), `price_tick` the price increment, `min_amount`/`max_amount` the
    amount limits and `min_notional` the minimum cost (price x amount) of an order.
    `None` means the venue states no such rule. `precision_mode` (ccxt's DECIMAL_PLACES,
    SIGNIFICANT_DIGITS or TICK_SIZE) with the raw `amount_precision`/`price_precision`
    is how the venue states its precision; in SIGNIFICANT_DIGITS mode there is no fixed
    lot or tick, and orders are rounded with ccxt's `decimal_to_precision`.
    """

    venue: str
    symbol: str
    taker_fee: float = 0.0
    amount_step: float | None = None
    price_tick: float | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    min_notional: float | None = None
    base: str = field(default="", compare=False)
    quote: str = field(default="", compare=False)
    precision_mode: int | None = field(default=None, compare=False)
    amount_precision: float | None = field(default=None, compare=False)
    price_precision: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.venue:
            raise InvalidInputError("market: venue must be a non-empty venue id, e.g. 'okx'")
        base, quote = split_symbol(self.symbol)
        object.__setattr__(self, "base", self.base or base)
        object.__setattr__(self, "quote", self.quote or quote)
        fee = float(self.taker_fee)
        if not math.isfinite(fee) or not 0.0 <= fee < 0.1:
            raise InvalidInputError(
                f"market {self.venue} {self.symbol}: taker_fee must be a rate in [0, 0.1) "
                f"(0.001 = 10 bps), got {self.taker_fee!r}"
            )
        object.__setattr__(self, "taker_fee", fee)
        for name in ("amount_step", "price_tick", "min_amount", "max_amount", "min_notional"):
            object.__setattr__(
                self, name, _optional_positive(name, getattr(self, name), self.venue)
            )
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            raise InvalidInputError(
                f"market {self.venue} {self.symbol}: min_amount {self.min_amount} exceeds "
                f"max_amount {self.max_amount}; fix the limits"
            )

    @property
    def has_rules(self) -> bool:
        """True when any rule other than the fee could shape an order."""
        return any(
            v is not None
            for v in (self.amount_step, self.min_amount, self.max_amount, self.min_notional)
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_levels(venue: str, side: str, levels: Any) -> FloatArray:
    try:
        arr = np.array(levels if len(levels) else np.empty((0, 2)), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MalformedBookError(
            f"{venue}: {side} must be a list of [price, size] pairs ({exc})"
        ) from exc
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise MalformedBookError(
            f"{venue}: {side} must have shape (n, 2) as [price, size] rows, got {arr.shape}"
        )
    arr = np.ascontiguousarray(arr[:, :2])
    if not np.isfinite(arr).all():
        raise MalformedBookError(f"{venue}: {side} contain NaN or infinite prices/sizes")
    if (arr <= 0).any():
        raise MalformedBookError(f"{venue}: {side} contain zero or negative prices/sizes")
    steps = np.diff(arr[:, 0])
    ok = (steps < 0).all() if side == "bids" else (steps > 0).all()
    if not ok:
        order = "strictly descending" if side == "bids" else "strictly ascending"
        raise MalformedBookError(
            f"{venue}: {side} prices must be {order} (best first) with no duplicates"
        )
    arr.setflags(write=False)
    return arr


class DepthSnapshot:
    """An L2 order book on one venue at one instant.

    `bids` and `asks` are read-only float64 arrays of shape (n, 2) holding (price, size),
    best first. `timestamp` is the exchange time and `local_timestamp` the arrival time,
    both in milliseconds since the epoch (None when unknown). Construction validates the
    book and raises `MalformedBookError` naming the venue.
    """

    __slots__ = ("asks", "bids", "local_timestamp", "symbol", "timestamp", "venue")

    def __init__(
        self,
        venue: str,
        symbol: str,
        bids: Any,
        asks: Any,
        timestamp: float | None = None,
        local_timestamp: float | None = None,
    ) -> None:
        if not venue:
            raise InvalidInputError("snapshot: venue must be a non-empty venue id")
        split_symbol(symbol)
        self.venue = venue
        self.symbol = symbol
        self.bids = _as_levels(venue, "bids", bids)
        self.asks = _as_levels(venue, "asks", asks)
        if len(self.bids) and len(self.asks) and self.bids[0, 0] >= self.asks[0, 0]:
            raise MalformedBookError(
                f"{venue} {symbol}: crossed book (best bid {self.bids[0, 0]} >= best ask "
                f"{self.asks[0, 0]}); refresh the book or leave the venue out"
            )
        self.timestamp = timestamp
        self.local_timestamp = local_timestamp if local_timestamp is not None else timestamp

    @classmethod
    def _trusted(
        cls,
        venue: str,
        symbol: str,
        bids: FloatArray,
        asks: FloatArray,
        timestamp: float | None,
        local_timestamp: float | None,
    ) -> DepthSnapshot:
        """Package-private: a snapshot of sides the caller guarantees already hold the
        constructor's invariants (read-only C-contiguous float64 (n, 2), finite, > 0,
        strictly sorted best first), with no copy and no check. The caller checks the
        book is not crossed. For the live cache (`venues.live`), which validates only
        the levels an update touched; everything else builds through `__init__`."""
        self = object.__new__(cls)
        self.venue, self.symbol = venue, symbol
        self.bids, self.asks = bids, asks
        self.timestamp = timestamp
        self.local_timestamp = local_timestamp if local_timestamp is not None else timestamp
        return self

    @property
    def best_bid(self) -> float | None:
        return float(self.bids[0, 0]) if len(self.bids) else None

    @property
    def best_ask(self) -> float | None:
        return float(self.asks[0, 0]) if len(self.asks) else None

    @property
    def mid(self) -> float | None:
        """(best bid + best ask) / 2, or None when a side is empty."""
        if not len(self.bids) or not len(self.asks):
            return None
        return float(self.bids[0, 0] + self.asks[0, 0]) / 2.0

    def levels(self, side: Side) -> FloatArray:
        """The levels a taker `side` order walks: asks for a buy, bids for a sell."""
        return self.asks if side == "buy" else self.bids

    def top(self, n: int) -> DepthSnapshot:
        """The same book cut to its best `n` levels per side (the cut of a valid book is
        valid: no copy, no re-validation)."""
        return DepthSnapshot._trusted(
            self.venue, self.symbol, self.bids[:n], self.asks[:n], self.timestamp,
            self.local_timestamp,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"DepthSnapshot(venue={self.venue!r}, symbol={self.symbol!r}, "
            f"bid={self.best_bid}, ask={self.best_ask}, levels={len(self.bids)}/"
            f"{len(self.asks)}, timestamp={self.timestamp})"
        )


@dataclass(frozen=True, slots=True)
class Leg:
    """One venue's part of a route.

    `avg_price` is the volume-weighted book price (fees excluded), `worst_price` the
    deepest level touched, `fee` the taker fee in quote currency, and `cost` the all-in
    quote amount: spent for a buy (amount x avg_price + fee), received for a sell
    (amount x avg_price - fee).
    """

    venue: str
    side: Side
    amount: float
    avg_price: float
    worst_price: float
    fee: float
    cost: float
    share: float
    levels: int
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


# Leg validates nothing itself (its values come from the optimizer), so the only cost of
# building one is the frozen dataclass's object.__setattr__ per field. route() builds a
# Leg per venue on every call: the hot path sets the slots through their descriptors
# instead (about half the time), for values it computed itself. The result is equal to the
# public constructor's, field for field (tests/router/test_fast_build.py).
_LEG_SLOTS = tuple(Leg.__dict__[name].__set__ for name in Leg.__dataclass_fields__)
_new = object.__new__


def _leg_unchecked(
    venue: str,
    side: Side,
    amount: float,
    avg_price: float,
    worst_price: float,
    fee: float,
    cost: float,
    share: float,
    levels: int,
    notes: tuple[str, ...],
) -> Leg:
    """`Leg(venue, side, ..., notes)`, every field given, without the frozen-setattr cost."""
    leg: Leg = _new(Leg)
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 = _LEG_SLOTS
    s0(leg, venue)
    s1(leg, side)
    s2(leg, amount)
    s3(leg, avg_price)
    s4(leg, worst_price)
    s5(leg, fee)
    s6(leg, cost)
    s7(leg, share)
    s8(leg, levels)
    s9(leg, notes)
    return leg


def _json_float(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def _json(value: Any) -> Any:
    """JSON-safe: non-finite floats -> None; mappings, sequences and objects with
    to_dict() converted recursively."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return _json_float(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _fields_dict(obj: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every dataclass field of `obj` (plus `extra`), JSON-safe."""
    out = {name: _json(getattr(obj, name)) for name in obj.__dataclass_fields__}
    return out | {k: _json(v) for k, v in (extra or {}).items()}


@dataclass(frozen=True, slots=True)
class Quote:
    """An optimal route for one parent order, with the proof and the comparison.

    - `requested` is the parent amount in `amount_in` units (base, or quote for spend-X).
    - `filled` is the base amount the route buys/sells; `unfilled` what is missing of
      `requested`, in `amount_in` units (0 when the books suffice).
    - `total_cost` is the quote spent (buy, fees included) or received (sell, net of fees).
    - `avg_price` = total_cost / filled, the all-in price per base unit.
    - `marginal_price` is λ, the fee-adjusted price of the last unit taken: every level
      cheaper than λ (dearer, for a sell) is taken, none beyond it. That is the KKT
      certificate of optimality for the separable convex problem.
    - `mid` is the consolidated mid (best bid across venues + best ask across venues) / 2;
      `slippage_bps` is the all-in price's distance from it, positive = worse than mid.
    - `baselines` maps each baseline strategy to its total cost for the same filled base
      amount (None when that strategy cannot fill it); `savings_bps` is how much better the
      optimum is than each, in bps of the baseline's cost.
    - `solver` is "exact" (the rule-free optimum, which obeys every rule), "rounded-optimal"
      (the exact split rounded to the rules, proven optimal because it costs the rule-free
      bound), "milp" (the rules' optimum on integer lots, proven within `gap`, a relative
      gap in cost: by the structured bounds of `optimizer.constrained`, or by HiGHS's
      MILP when those do not close) or "rounded-fallback" (the rounded split, only when
      the solver failed; a warning says so).
      `lower_bound` is the exact rule-free cost of the same amount: no rule-respecting
      split can beat it.
      `fixed_costs` are the per-venue fixed costs charged (included in `total_cost`).
      When the venues' lots cannot add up to the amount asked, the route fills the nearest
      reachable amount below it, counts the rest `unfilled` (so `complete` is False) and
      `reachable` holds the nearest reachable base amounts (below, above); None otherwise.
    """

    symbol: str
    side: Side
    amount_in: AmountUnit
    requested: float
    legs: tuple[Leg, ...]
    filled: float
    unfilled: float
    total_cost: float
    total_fees: float
    avg_price: float | None
    marginal_price: float | None
    mid: float | None
    slippage_bps: float | None
    baselines: Mapping[str, float | None] = field(default_factory=dict)
    savings_bps: Mapping[str, float | None] = field(default_factory=dict)
    excluded: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    solver: str = "exact"
    compute_ms: float = 0.0
    timestamps: Mapping[str, float | None] = field(default_factory=dict)
    source: str = ""
    fixed_costs: Mapping[str, float] = field(default_factory=dict)
    gap: float | None = None
    lower_bound: float | None = None
    reachable: tuple[float | None, float | None] | None = None

    @property
    def complete(self) -> bool:
        """True when the route fills the whole request."""
        return self.unfilled <= 0.0

    @property
    def venues(self) -> tuple[str, ...]:
        return tuple(leg.venue for leg in self.legs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become null)."""
        return _fields_dict(self, {"complete": self.complete})


_Q_symbol = Quote.__dict__["symbol"].__set__
_Q_side = Quote.__dict__["side"].__set__
_Q_amount_in = Quote.__dict__["amount_in"].__set__
_Q_requested = Quote.__dict__["requested"].__set__
_Q_legs = Quote.__dict__["legs"].__set__
_Q_filled = Quote.__dict__["filled"].__set__
_Q_unfilled = Quote.__dict__["unfilled"].__set__
_Q_total_cost = Quote.__dict__["total_cost"].__set__
_Q_total_fees = Quote.__dict__["total_fees"].__set__
_Q_avg_price = Quote.__dict__["avg_price"].__set__
_Q_marginal_price = Quote.__dict__["marginal_price"].__set__
_Q_mid = Quote.__dict__["mid"].__set__
_Q_slippage_bps = Quote.__dict__["slippage_bps"].__set__
_Q_baselines = Quote.__dict__["baselines"].__set__
_Q_savings_bps = Quote.__dict__["savings_bps"].__set__
_Q_excluded = Quote.__dict__["excluded"].__set__
_Q_warnings = Quote.__dict__["warnings"].__set__
_Q_solver = Quote.__dict__["solver"].__set__
_Q_compute_ms = Quote.__dict__["compute_ms"].__set__
_Q_timestamps = Quote.__dict__["timestamps"].__set__
_Q_source = Quote.__dict__["source"].__set__
_Q_fixed_costs = Quote.__dict__["fixed_costs"].__set__
_Q_gap = Quote.__dict__["gap"].__set__
_Q_lower_bound = Quote.__dict__["lower_bound"].__set__
_Q_reachable = Quote.__dict__["reachable"].__set__


def _quote_unchecked(
    *,
    symbol: str,
    side: Side,
    amount_in: AmountUnit,
    requested: float,
    legs: tuple[Leg, ...],
    filled: float,
    unfilled: float,
    total_cost: float,
    total_fees: float,
    avg_price: float | None,
    marginal_price: float | None,
    mid: float | None,
    slippage_bps: float | None,
    baselines: Mapping[str, float | None],
    savings_bps: Mapping[str, float | None],
    excluded: Mapping[str, str],
    warnings: tuple[str, ...],
    solver: str,
    compute_ms: float,
    timestamps: Mapping[str, float | None],
    source: str,
    fixed_costs: Mapping[str, float],
    gap: float | None,
    lower_bound: float | None,
    reachable: tuple[float | None, float | None] | None,
) -> Quote:
    """`Quote(...)` with every field given (keywords only), without the frozen-setattr cost:
    for route()'s hot path, on values it computed. Equal to the public constructor's."""
    quote: Quote = _new(Quote)
    _Q_symbol(quote, symbol)
    _Q_side(quote, side)
    _Q_amount_in(quote, amount_in)
    _Q_requested(quote, requested)
    _Q_legs(quote, legs)
    _Q_filled(quote, filled)
    _Q_unfilled(quote, unfilled)
    _Q_total_cost(quote, total_cost)
    _Q_total_fees(quote, total_fees)
    _Q_avg_price(quote, avg_price)
    _Q_marginal_price(quote, marginal_price)
    _Q_mid(quote, mid)
    _Q_slippage_bps(quote, slippage_bps)
    _Q_baselines(quote, baselines)
    _Q_savings_bps(quote, savings_bps)
    _Q_excluded(quote, excluded)
    _Q_warnings(quote, warnings)
    _Q_solver(quote, solver)
    _Q_compute_ms(quote, compute_ms)
    _Q_timestamps(quote, timestamps)
    _Q_source(quote, source)
    _Q_fixed_costs(quote, fixed_costs)
    _Q_gap(quote, gap)
    _Q_lower_bound(quote, lower_bound)
    _Q_reachable(quote, reachable)
    return quote


def check_side(side: str) -> Side:
    """Validate a side string ("buy"/"sell", any case)."""
    s = str(side).strip().lower()
    if s not in SIDES:
        raise InvalidInputError(f"side must be 'buy' or 'sell', got {side!r}")
    return s


def check_amount(amount: Any, name: str = "amount") -> float:
    """A positive finite float, or InvalidInputError naming `name`."""
    try:
        value = float(amount)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a positive number, got {amount!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive finite number, got {amount!r}")
    return value


def snapshot_map(snapshots: Sequence[DepthSnapshot]) -> dict[str, DepthSnapshot]:
    """Index snapshots by venue; one symbol, no venue twice."""
    out: dict[str, DepthSnapshot] = {}
    symbols = {s.symbol for s in snapshots}
    if len(symbols) > 1:
        raise InvalidInputError(
            f"snapshots hold different symbols {sorted(symbols)}; route one symbol at a time"
        )
    for snap in snapshots:
        if snap.venue in out:
            raise InvalidInputError(
                f"venue {snap.venue!r} appears twice; pass one snapshot per venue"
            )
        out[snap.venue] = snap
    return out


class OrderState(StrEnum):
    """Where a child order is. Terminal: filled, cancelled, rejected, failed."""

    PLANNED = "planned"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    FAILED = "failed"
    UNKNOWN = "unknown"


class OrderEvent(StrEnum):
    """What can happen to a child order; each is one row of `TRANSITIONS` per state."""

    SUBMIT = "submit"  # handed to the venue
    NOT_SENT = "not_sent"  # refused here before sending (kill switch, risk limit)
    RECOVER = "recover"  # resume: an intent journalled before a crash; only the venue knows
    ACCEPT = "accept"  # the venue holds it, nothing filled yet
    PARTIAL_FILL = "partial_fill"  # part filled, the rest still working
    FILL = "fill"  # completely filled
    CANCEL = "cancel"  # the rest cancelled (an IOC's unfilled part); fills so far kept
    REJECT = "reject"  # the venue refused it: it never reached the book
    LOSE = "lose"  # sent, no answer: fate unknown until the venue is asked
    NOT_FOUND = "not_found"  # the venue has no such order: it was never placed


_S, _E = OrderState, OrderEvent
#: The child-order state machine, (state, event) -> next state; a pair that is not here is
#: refused with OrderStateError. `unknown` is left only by asking the venue what happened
#: (never by sending again); terminal states have no way out.
TRANSITIONS: Mapping[tuple[OrderState, OrderEvent], OrderState] = {
    (_S.PLANNED, _E.SUBMIT): _S.SUBMITTED,
    (_S.PLANNED, _E.NOT_SENT): _S.FAILED,
    (_S.PLANNED, _E.RECOVER): _S.UNKNOWN,
    (_S.SUBMITTED, _E.ACCEPT): _S.SUBMITTED,
    (_S.SUBMITTED, _E.PARTIAL_FILL): _S.PARTIALLY_FILLED,
    (_S.SUBMITTED, _E.FILL): _S.FILLED,
    (_S.SUBMITTED, _E.CANCEL): _S.CANCELLED,
    (_S.SUBMITTED, _E.REJECT): _S.REJECTED,
    (_S.SUBMITTED, _E.LOSE): _S.UNKNOWN,
    (_S.SUBMITTED, _E.NOT_FOUND): _S.FAILED,
    (_S.PARTIALLY_FILLED, _E.PARTIAL_FILL): _S.PARTIALLY_FILLED,
    (_S.PARTIALLY_FILLED, _E.FILL): _S.FILLED,
    (_S.PARTIALLY_FILLED, _E.CANCEL): _S.CANCELLED,
    (_S.PARTIALLY_FILLED, _E.LOSE): _S.UNKNOWN,
    (_S.UNKNOWN, _E.ACCEPT): _S.SUBMITTED,
    (_S.UNKNOWN, _E.PARTIAL_FILL): _S.PARTIALLY_FILLED,
    (_S.UNKNOWN, _E.FILL): _S.FILLED,
    (_S.UNKNOWN, _E.CANCEL): _S.CANCELLED,
    (_S.UNKNOWN, _E.REJECT): _S.REJECTED,
    (_S.UNKNOWN, _E.NOT_FOUND): _S.FAILED,
}
TERMINAL_STATES = frozenset(
    s for s in OrderState if not any(state == s for state, _ in TRANSITIONS)
)
PENDING_STATES = frozenset({_S.SUBMITTED, _S.PARTIALLY_FILLED, _S.UNKNOWN})
#: Events that carry the venue's (cumulative) fill report.
_FILL_EVENTS = frozenset({_E.ACCEPT, _E.PARTIAL_FILL, _E.FILL, _E.CANCEL})


class ChildOrder:
    """One IOC limit order sent (or to be sent) to one venue for one parent order.

    `client_id` is deterministic (parent id + round + leg) so that a retry is recognisable
    by the venue. The order's state and fills are private: they change only through
    `apply(event, ...)`, which looks the move up in `TRANSITIONS` and refuses any other.

    Fills are accounted per asset: `filled` is the base executed (gross), `fees` maps each
    asset charged to the amount (Binance takes a spot buy's commission in the base asset,
    or in BNB). `net_base`/`net_quote` are the signed balance changes of the account
    (+ received, - paid); `fee` is the commission valued in quote where the price is
    known (base at the fill price, quote as is; other assets through `fee_prices`).
    """

    __slots__ = (
        "_avg_price",
        "_error",
        "_fees",
        "_filled",
        "_state",
        "_venue_order_id",
        "amount",
        "attempt",
        "base",
        "client_id",
        "leg",
        "limit_price",
        "parent_id",
        "quote",
        "round",
        "side",
        "symbol",
        "venue",
    )

    def __init__(
        self,
        parent_id: str,
        client_id: str,
        venue: str,
        symbol: str,
        side: Side,
        amount: float,
        limit_price: float,
        leg: int = 0,
        attempt: int = 0,
        round: int = 1,
    ) -> None:
        self.parent_id, self.client_id, self.venue, self.symbol = (
            parent_id,
            client_id,
            venue,
            symbol,
        )
        self.side: Side = check_side(side)
        self.amount = float(amount)
        self.limit_price = float(limit_price)
        self.leg, self.attempt, self.round = leg, attempt, round
        self.base, self.quote = split_symbol(symbol)
        self._state = OrderState.PLANNED
        self._filled = 0.0
        self._avg_price: float | None = None
        self._fees: dict[str, float] = {}
        self._venue_order_id: str | None = None
        self._error: str | None = None

    @classmethod
    def restore(
        cls,
        *,
        state: str,
        filled: float,
        avg_price: float | None,
        fees: Mapping[str, float],
        venue_order_id: str | None,
        error: str | None,
        **order: Any,
    ) -> ChildOrder:
        """Rebuild an order from what the journal recorded of it (resume, listings)."""
        child = cls(**order)
        child._state = OrderState(state)
        child._filled, child._avg_price = float(filled), avg_price
        child._fees = {k: float(v) for k, v in fees.items() if v}
        child._venue_order_id, child._error = venue_order_id, error
        return child

    @property
    def state(self) -> OrderState:
        return self._state

    @property
    def filled(self) -> float:
        return self._filled

    @property
    def avg_price(self) -> float | None:
        return self._avg_price

    @property
    def fees(self) -> Mapping[str, float]:
        return dict(self._fees)

    @property
    def venue_order_id(self) -> str | None:
        return self._venue_order_id

    @property
    def error(self) -> str | None:
        return self._error

    def apply(
        self,
        event: OrderEvent,
        *,
        filled: float | None = None,
        avg_price: float | None = None,
        fees: Mapping[str, float] | None = None,
        venue_order_id: str | None = None,
        reason: str | None = None,
    ) -> OrderState:
        """Apply `event` through the state table and return the new state.

        Fill events (accept, partial_fill, fill, cancel) may carry the venue's cumulative
        report: `filled` never decreases nor exceeds the amount. Raises OrderStateError for
        a move the table does not have, or a fill report that cannot be true.
        """
        from liquidroute.errors import OrderStateError

        new = TRANSITIONS.get((self._state, event))
        if new is None:
            raise OrderStateError(
                f"child order {self.client_id} on {self.venue}: event {event.value} is not "
                f"allowed in state {self._state.value}"
            )
        if event in _FILL_EVENTS and filled is not None:
            filled = float(filled)
            if not math.isfinite(filled) or filled < self._filled * (1 - 1e-12) - 1e-15:
                raise OrderStateError(
                    f"child order {self.client_id}: filled {filled} after {self._filled}"
                )
            if filled > self.amount * (1 + 1e-9):
                raise OrderStateError(
                    f"child order {self.client_id}: filled {filled} > amount {self.amount}"
                )
            self._filled = filled
            if avg_price is not None:
                self._avg_price = float(avg_price)
            if fees is not None:
                self._fees = {k: float(v) for k, v in fees.items() if v}
        elif filled is not None or avg_price is not None or fees is not None:
            raise OrderStateError(f"event {event.value} carries no fills ({self.client_id})")
        if venue_order_id:
            self._venue_order_id = venue_order_id
        if reason:
            from liquidroute.errors import redact

            self._error = redact(reason)
        self._state = new
        return new

    @property
    def done(self) -> bool:
        return self._state in TERMINAL_STATES

    @property
    def notional(self) -> float:
        """Base filled x average book price, in quote."""
        return self._filled * (self._avg_price or 0.0)

    def fee_value(self, fee_prices: Mapping[str, float] | None = None) -> float:
        """The commission in quote: quote as is, base at the fill price, any other asset at
        `fee_prices[asset]` (quote per unit); assets without a price count 0 here and
        are listed by `unvalued_fees`."""
        total = 0.0
        for asset, amount in self._fees.items():
            if asset == self.quote:
                total += amount
            elif asset == self.base:
                total += amount * (self._avg_price or 0.0)
            elif fee_prices and asset in fee_prices:
                total += amount * fee_prices[asset]
        return total

    def unvalued_fees(self, fee_prices: Mapping[str, float] | None = None) -> dict[str, float]:
        known = {self.quote, self.base} | set(fee_prices or {})
        return {a: v for a, v in self._fees.items() if a not in known}

    @property
    def fee(self) -> float:
        """The commission valued in quote (base and quote assets; see `fee_value`)."""
        return self.fee_value()

    @property
    def cost(self) -> float:
        """All-in quote amount: paid for a buy (fees included), received for a sell."""
        fee = self.fee
        return self.notional + fee if self.side == "buy" else self.notional - fee

    @property
    def net_base(self) -> float:
        """Base the account gained (buy, net of a base commission) or gave (sell, < 0)."""
        fee = self._fees.get(self.base, 0.0)
        return self._filled - fee if self.side == "buy" else -self._filled - fee

    @property
    def net_quote(self) -> float:
        """Quote the account gained (sell, net of a quote commission) or paid (buy, < 0)."""
        fee = self._fees.get(self.quote, 0.0)
        return -self.notional - fee if self.side == "buy" else self.notional - fee

    def to_dict(self) -> dict[str, Any]:
        return {
            "parent_id": self.parent_id,
            "client_id": self.client_id,
            "venue": self.venue,
            "symbol": self.symbol,
            "side": self.side,
            "amount": self.amount,
            "limit_price": self.limit_price,
            "leg": self.leg,
            "attempt": self.attempt,
            "round": self.round,
            "state": self._state.value,
            "filled": self._filled,
            "avg_price": _json_float(self._avg_price),
            "fee": _json_float(self.fee),
            "fees": dict(self._fees),
            "venue_order_id": self._venue_order_id,
            "error": self._error,
            "cost": _json_float(self.cost),
        }

    def __repr__(self) -> str:
        return (
            f"ChildOrder({self.client_id!r}, {self.venue!r}, {self.side} {self.amount:g} "
            f"@ {self.limit_price:g}, {self._state.value}, filled={self._filled:g})"
        )


class StopReason(StrEnum):
    """Why a parent order stopped; `ExecutionReport.stop_detail` says it in words."""

    FILLED = "filled"
    UNKNOWN_FATE = "unknown_fate"  # an order's fate is unknown: run `liquidroute resume`
    KILL_SWITCH = "kill_switch"
    MAX_ROUNDS = "max_rounds"
    DEADLINE = "deadline"
    NO_ROUTE = "no_route"
    NO_LIQUIDITY = "no_liquidity"
    PRICE_LIMIT = "price_limit"  # the next round would breach --limit-price/--max-slippage-bps
    BELOW_MINIMUM = "below_minimum"
    RISK_LIMIT = "risk_limit"  # --max-notional would be exceeded by the next child order

    @property
    def parent_state(self) -> str:
        """The parent's state in the journal: filled, unknown (resume it) or stopped."""
        if self is StopReason.FILLED:
            return "filled"
        return "unknown" if self is StopReason.UNKNOWN_FATE else "stopped"


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What happened to a parent order: every child order, the totals and why it stopped.

    `filled` is the base executed (gross of a base-charged commission) and `total_cost`
    the all-in quote amount with every commission valued in quote where its price is
    known; `fees_by_asset` lists each commission in the asset charged, and `net_base` /
    `net_quote` are the signed balance changes of the accounts (they add up to what the
    venues booked). `unvalued_fees` are commissions in a third asset with no price given.
    `shortfall_bps` is the implementation shortfall of the realised all-in price against
    the first quote's all-in price (positive = worse than quoted). `continues` is the
    parent this one continues (`resume --continue`).
    """

    parent_id: str
    symbol: str
    side: Side
    requested: float
    filled: float
    unfilled: float
    total_cost: float
    total_fees: float
    avg_price: float | None
    quoted_avg_price: float | None
    shortfall_bps: float | None
    children: tuple[ChildOrder, ...]
    rounds: int
    stop_reason: StopReason
    live: bool
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    stop_detail: str = ""
    fees_by_asset: Mapping[str, float] = field(default_factory=dict)
    unvalued_fees: Mapping[str, float] = field(default_factory=dict)
    net_base: float = 0.0
    net_quote: float = 0.0
    continues: str | None = None

    @property
    def complete(self) -> bool:
        return self.unfilled <= 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become null)."""
        return _fields_dict(self, {"complete": self.complete})


@dataclass(frozen=True, slots=True)
class HopLeg:
    """One book used by a multi-hop route: what went in and what came out."""

    venue: str
    symbol: str
    side: Side
    asset_in: str
    asset_out: str
    amount_in: float
    amount_out: float
    base_amount: float
    avg_price: float
    fee: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Hop:
    """One asset-to-asset step of a route, with its legs on each venue."""

    asset_in: str
    asset_out: str
    legs: tuple[HopLeg, ...]

    @property
    def amount_in(self) -> float:
        return sum(leg.amount_in for leg in self.legs)

    @property
    def amount_out(self) -> float:
        return sum(leg.amount_out for leg in self.legs)

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self, {"amount_in": self.amount_in, "amount_out": self.amount_out})


@dataclass(frozen=True, slots=True)
class GraphQuote:
    """A multi-hop route from `source` to `target`, solved jointly over all paths.

    `amount_in` of source is converted into `amount_out` of target through `hops`;
    `paths` lists the simple paths the route uses (each with its flow, and what it alone
    would deliver: its standalone optimum, valued by walking its books); `warnings` names
    any profitable cycle found in the books (never routed through); `direct_out` /
    `direct_in` is the best using direct markets only (None when there are none). `exact`
    says which side was fixed ("in" or "out").
    """

    source: str
    target: str
    exact: Literal["in", "out"]
    amount_in: float
    amount_out: float
    hops: tuple[Hop, ...]
    paths: tuple[dict[str, Any], ...]
    direct_in: float | None
    direct_out: float | None
    solver: str
    lp_variables: int
    lp_constraints: int
    compute_ms: float
    warnings: tuple[str, ...] = ()

    @property
    def price(self) -> float:
        """Source spent per unit of target received."""
        return self.amount_in / self.amount_out if self.amount_out else math.inf

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self, {"price": self.price})
