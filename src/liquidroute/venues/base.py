"""The Venue protocol: where books (and later, fills) come from.

A venue answers two questions about a symbol: what its book looks like now
(`snapshot`) and what its rules and fee are (`market`). Implementations: `CcxtVenue`
(any ccxt exchange, live), `RecordedVenue` (a tardis CSV replayed to a time), and the
bundled sample (`sample_venues`). `live` tells the router whether staleness checks apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from liquidroute.model import ChildOrder, DepthSnapshot, Market


@runtime_checkable
class Venue(Protocol):
    """A source of depth snapshots and market metadata for one venue."""

    @property
    def name(self) -> str:
        """The venue id (ccxt id: 'binance', 'okx', 'bybit', ...)."""
        ...

    @property
    def live(self) -> bool:
        """True when snapshots come from the venue now (age checks apply)."""
        ...

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        """The current book for `symbol`, best `depth` levels per side (all when None)."""
        ...

    async def market(self, symbol: str) -> Market:
        """Fee and trading rules for `symbol`."""
        ...

    async def close(self) -> None:
        """Release connections; safe to call twice."""
        ...


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A venue's answer about one order, normalised.

    `status`: "open" (resting, maybe partly filled), "filled", "cancelled" (an IOC's
    unfilled rest is cancelled: `filled` may be > 0) or "rejected". `avg_price` is the book
    price of the fills (fees excluded). `fees` maps each asset charged to the amount (a
    Binance buy pays its commission in the base asset, or in BNB); when it is None the
    commission is `fee`, in the quote currency.
    """

    client_id: str
    status: Literal["open", "filled", "cancelled", "rejected"]
    filled: float
    avg_price: float | None
    fee: float
    venue_order_id: str | None = None
    reason: str | None = None
    fees: Mapping[str, float] | None = None

    def fees_by_asset(self, quote: str) -> dict[str, float]:
        """The commission per asset (`fee` in `quote` when no breakdown was given)."""
        if self.fees is not None:
            return {k: float(v) for k, v in self.fees.items() if v}
        return {quote: self.fee} if self.fee else {}


@runtime_checkable
class TradingVenue(Venue, Protocol):
    """A venue that takes orders: the executor's only way to move money."""

    async def place_order(self, order: ChildOrder) -> OrderUpdate:
        """Send `order` as an IOC limit order with its client id; raise VenueError on failure."""
        ...

    async def fetch_order(self, order: ChildOrder) -> OrderUpdate | None:
        """What the venue knows of `order` (by client id); None if it never saw it."""
        ...
