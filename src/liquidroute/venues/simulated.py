"""A venue that fills orders against its own copy of a book: dry runs and backtests.

`SimulatedVenue(source)` quotes from `source` (live, recorded or sample) and fills IOC
limit orders by walking the book: levels priced within the limit are taken best first,
the taker fee is charged on the notional, and what was taken is removed from the book, so
a second order (or the next routing round) sees the depleted book. Nothing is ever sent
anywhere. Orders that break the market's rules (lot step, minimum amount or notional) are
rejected as a venue would. Placing the same client id twice returns the first result: a
retry is recognised, never filled twice.

With `latency_ms`, the order waits that long before matching; a live source's book is
fetched again after the wait (it moved meanwhile), so the fill reflects the latency.
"""

from __future__ import annotations

import asyncio
import math
from typing import Literal

import numpy as np

from liquidroute.model import ChildOrder, DepthSnapshot, Market
from liquidroute.optimizer.curves import walk_book
from liquidroute.venues.base import OrderUpdate, Venue


def _off_step(amount: float, step: float) -> bool:
    n = amount / step
    return abs(n - round(n)) > 1e-9 * max(1.0, abs(n))


class SimulatedVenue:
    """Dry-run venue: the book of `source`, matched locally."""

    def __init__(self, source: Venue, *, latency_ms: float = 0.0) -> None:
        if not math.isfinite(latency_ms) or latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        self.source = source
        self.latency_ms = latency_ms
        self._books: dict[str, DepthSnapshot] = {}
        self._markets: dict[str, Market] = {}
        self._orders: dict[str, OrderUpdate] = {}
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def live(self) -> bool:
        return self.source.live

    @property
    def orders(self) -> dict[str, OrderUpdate]:
        """Every order this venue has matched, by client id."""
        return dict(self._orders)

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = await self.source.snapshot(symbol)
        return book.top(depth) if depth else book

    async def market(self, symbol: str) -> Market:
        if symbol not in self._markets:
            self._markets[symbol] = await self.source.market(symbol)
        return self._markets[symbol]

    def _check_rules(self, order: ChildOrder, market: Market) -> str | None:
        if market.amount_step and _off_step(order.amount, market.amount_step):
            return f"amount {order.amount} is not a multiple of the lot {market.amount_step}"
        if market.min_amount and order.amount < market.min_amount * (1 - 1e-12):
            return f"amount {order.amount} below the minimum {market.min_amount}"
        if market.max_amount and order.amount > market.max_amount * (1 + 1e-12):
            return f"amount {order.amount} above the maximum {market.max_amount}"
        if market.min_notional and order.amount * order.limit_price < market.min_notional:
            return f"notional below the minimum {market.min_notional}"
        if market.price_tick and _off_step(order.limit_price, market.price_tick):
            return f"price {order.limit_price} is not on the tick {market.price_tick}"
        return None

    async def place_order(self, order: ChildOrder) -> OrderUpdate:
        """Match `order` as IOC against the current book; the rest is cancelled."""
        if order.client_id in self._orders:
            return self._orders[order.client_id]
        market = await self.market(order.symbol)
        problem = self._check_rules(order, market)
        if problem:
            update = OrderUpdate(order.client_id, "rejected", 0.0, None, 0.0, reason=problem)
            self._orders[order.client_id] = update
            return update
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1e3)
            if self.source.live:
                self._books[order.symbol] = await self.source.snapshot(order.symbol)
        async with self._lock:
            update = self._match(order, market, await self.snapshot(order.symbol))
        self._orders[order.client_id] = update
        return update

    def _match(self, order: ChildOrder, market: Market, book: DepthSnapshot) -> OrderUpdate:
        levels = book.levels(order.side)
        walk = walk_book(levels, order.side, order.amount, order.limit_price)
        take, filled, notional = walk.take, walk.filled, walk.notional
        price, size = levels[:, 0], levels[:, 1]
        reachable = len(take)
        if filled <= 0:
            return OrderUpdate(
                order.client_id, "cancelled", 0.0, None, 0.0, f"sim-{order.client_id}"
            )
        left = size.copy()
        left[:reachable] -= take
        keep = left > size * 1e-12
        rest = np.column_stack([price[keep], left[keep]])
        bids, asks = (book.bids, rest) if order.side == "buy" else (rest, book.asks)
        self._books[order.symbol] = DepthSnapshot(
            book.venue, book.symbol, bids, asks, book.timestamp, book.local_timestamp
        )
        status: Literal["filled", "cancelled"] = (
            "filled" if filled >= order.amount * (1 - 1e-12) else "cancelled"
        )
        return OrderUpdate(
            order.client_id,
            status,
            filled,
            notional / filled,
            notional * market.taker_fee,
            f"sim-{order.client_id}",
        )

    async def fetch_order(self, order: ChildOrder) -> OrderUpdate | None:
        return self._orders.get(order.client_id)

    async def close(self) -> None:
        await self.source.close()
