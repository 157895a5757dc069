"""Live venues feeding the service's `BookCache` (`serve --venues`).

Each venue is a `venues.live.LiveVenue`: a websocket book per symbol through ccxt.pro, or,
where ccxt.pro cannot stream that venue, polling (`fetch_order_book` every
`poll_interval_s`). Nothing here polls: every new book version reaches the cache through
the venue's listener (`add_listener`), and a book the feed withdraws (a sequence gap, a
checksum failure, a dropped connection) is withdrawn from the cache at once through the
symbol's `subscribe` callback, so no route is computed on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from liquidroute.errors import LiquidrouteError
from liquidroute.model import Market
from liquidroute.service.books import BookCache, Key
from liquidroute.venues.live import BookEvent, LiveVenue


class LiveFeeds:
    """Start `venues`, put their books into `cache`, withdraw the ones they lose."""

    def __init__(self, cache: BookCache, venues: Sequence[LiveVenue]) -> None:
        self.cache = cache
        self.venues = list(venues)
        self.markets: dict[Key, Market] = {}
        self._removers: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        for venue in self.venues:
            cache.feeds[venue.name] = venue.mode

    def start_soon(self) -> None:
        """Start every venue in the background: the server answers /health and /ready
        (not ready) while the first books arrive."""
        self._task = asyncio.create_task(self.start(), name="liquidroute:live-feeds")

    async def start(self) -> None:
        await asyncio.gather(*(self._start(v) for v in self.venues))

    async def _start(self, venue: LiveVenue) -> None:
        try:
            for symbol in venue.symbols:
                self.markets[(venue.name, symbol)] = await venue.market(symbol)
            self._removers.append(venue.add_listener(self._on_book))
            for symbol in venue.symbols:
                self._removers.append(venue.subscribe(symbol, self._on_change(venue, symbol)))
            await venue.start()
        except LiquidrouteError as exc:
            self.cache.errors[venue.name] = str(exc)

    def _on_book(self, event: BookEvent) -> None:
        key = (event.venue, event.symbol)
        self.cache.put(event.snapshot, self.markets[key])
        self.cache.errors.pop(event.venue, None)

    def _on_change(self, venue: LiveVenue, symbol: str) -> Callable[[], None]:
        def changed() -> None:
            status = venue.status(symbol)
            if status.state not in ("live", "stale"):  # withdrawn by the feed
                error = status.error or "no book"
                reason = error if error.startswith(status.state) else f"{status.state}: {error}"
                self.cache.withdraw((venue.name, symbol), reason)
                self.cache.errors[venue.name] = reason

        return changed

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for remove in self._removers:
            remove()
        self._removers.clear()
        await asyncio.gather(*(v.close() for v in self.venues), return_exceptions=True)


__all__ = ["LiveFeeds"]
