"""The domain: markets, depth snapshots, quotes and their legs.

Pure data with validation in the constructors: nothing here talks to a venue or a solver.
A `DepthSnapshot` that exists is a book you can route on (finite, positive, strictly
monotone, not crossed); a `Market` that exists has sane fee and trading rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
    `None` means the venue states no such rule.
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
        """The same book cut to its best `n` levels per side."""
        return DepthSnapshot(
            self.venue,
            self.symbol,
            self.bids[:n],
            self.asks[:n],
            self.timestamp,
            self.local_timestamp,
        )

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


OrderState = Literal[
    "planned",
    "submitted",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "failed",
    "unknown",
]

#: The child-order state machine. `unknown` (sent, no answer) is left only by asking the
#: venue what happened, never by sending again. Terminal states have no way out.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "planned": frozenset({"submitted", "failed"}),
    "submitted": frozenset(
        {"partially_filled", "filled", "cancelled", "rejected", "failed", "unknown"}
    ),
    "partially_filled": frozenset({"partially_filled", "filled", "cancelled", "unknown"}),
    "unknown": frozenset(
        {"submitted", "partially_filled", "filled", "cancelled", "rejected", "failed"}
    ),
    "filled": frozenset(),
    "cancelled": frozenset(),
    "rejected": frozenset(),
    "failed": frozenset(),
}
TERMINAL_STATES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


@dataclass(slots=True)
class ChildOrder:
    """One IOC limit order sent (or to be sent) to one venue for one parent order.

    `client_id` is deterministic (parent id + leg + attempt) so that a retry is
    recognisable by the venue. The state only changes through `transition`.
    """

    parent_id: str
    client_id: str
    venue: str
    symbol: str
    side: Side
    amount: float
    limit_price: float
    leg: int = 0
    attempt: int = 0
    round: int = 1
    state: OrderState = "planned"
    filled: float = 0.0
    avg_price: float | None = None
    fee: float = 0.0
    venue_order_id: str | None = None
    error: str | None = None

    def transition(self, new: OrderState, **changes: Any) -> None:
        """Move to `new` (and set `changes`), or raise OrderStateError if not allowed."""
        from liquidroute.errors import OrderStateError

        if new not in TRANSITIONS[self.state]:
            raise OrderStateError(
                f"child order {self.client_id} on {self.venue}: {self.state} -> {new} "
                "is not an allowed transition"
            )
        self.state = new
        for name, value in changes.items():
            setattr(self, name, value)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def cost(self) -> float:
        """All-in quote amount: paid for a buy (fees included), received for a sell."""
        notional = self.filled * (self.avg_price or 0.0)
        return notional + self.fee if self.side == "buy" else notional - self.fee

    def to_dict(self) -> dict[str, Any]:
        return _fields_dict(self, {"cost": self.cost})


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What happened to a parent order: every child order, the totals and why it stopped.

    `shortfall_bps` is the implementation shortfall of the realised all-in price against
    the first quote's all-in price (positive = worse than quoted).
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
    stop_reason: str
    live: bool
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

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
    `paths` lists every path considered with what it alone would deliver (its standalone
    optimum), and `direct_out`/`direct_in` the best using direct markets only (None when
    there are none). `exact` says which side was fixed ("in" or "out").
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
