"""The service's books: one `BookCache` that every route is computed on.

Books and markets by (venue, symbol), with when each book arrived. A book is fed three
ways, said per venue in `feeds` (and in /exchanges/status, /route and the serve start-up
line):

- "websocket": kept by a `LiveVenue` from the venue's stream (`service.feeds.LiveFeeds`
  puts every new version, and withdraws the book while the feed resyncs or reconnects);
- "polling": a venue ccxt.pro cannot stream, polled by its LiveVenue (`fetch_order_book`
  every --refresh seconds), or any other `Venue` polled by `refresh_forever`;
- "static": --sample / --books, never stale.

A live book is left out of routes, with the reason, while it is withdrawn or when it is
older than `stale_ms` (no update within --stale-ms). Watchers (`subscribe`) are told the
key of every book that changes or is withdrawn: /stream/route recomputes on them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from liquidroute.errors import LiquidrouteError
from liquidroute.model import DepthSnapshot, Market, split_symbol
from liquidroute.service.pool import BookSet, RoutePool
from liquidroute.service.routing import RouteRequest
from liquidroute.venues.base import Venue

Key = tuple[str, str]  # (venue, symbol)
Feed = Literal["websocket", "polling", "static"]
Watcher = Callable[[Key], None]


def now_ms() -> float:
    return time.time() * 1e3


@dataclass
class BookCache:
    """Books and markets by (venue, symbol), with when each book arrived (ms).

    `version` changes on every `put`, so route workers know when their copy is old.
    """

    live: bool
    stale_ms: float = 10_000.0
    min_fresh: int = 1
    books: dict[Key, DepthSnapshot] = field(default_factory=dict)
    markets: dict[Key, Market] = field(default_factory=dict)
    fetched_ms: dict[Key, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    version: int = 0
    feeds: dict[str, Feed] = field(default_factory=dict)  # venue -> how its books are kept
    withdrawn: dict[Key, str] = field(default_factory=dict)  # key -> why it is not usable
    watchers: list[Watcher] = field(default_factory=list)
    put_at: dict[Key, int] = field(default_factory=dict)  # key -> version of its last put

    def put(self, snap: DepthSnapshot, market: Market) -> None:
        key = (snap.venue, snap.symbol)
        self.books[key], self.markets[key] = snap, market
        self.fetched_ms[key] = now_ms()
        self.withdrawn.pop(key, None)
        self.version += 1
        self.put_at[key] = self.version
        self._tell(key)

    def withdraw(self, key: Key, reason: str) -> None:
        """The feed lost this book (resync, reconnect, failure): not routed on until the
        next `put`."""
        self.withdrawn[key] = reason
        self._tell(key)

    def subscribe(self, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher(key)` on every put or withdrawal; returns the remover."""
        self.watchers.append(watcher)
        return lambda: self.watchers.remove(watcher) if watcher in self.watchers else None

    def _tell(self, key: Key) -> None:
        for watcher in list(self.watchers):
            watcher(key)

    def feed(self, venue: str) -> Feed:
        return self.feeds.get(venue, "polling" if self.live else "static")

    def exclusion(self, key: Key, at_ms: float | None = None) -> str:
        """Why the book is not routed on now ('' when it is)."""
        if not self.live:
            return ""
        if key in self.withdrawn:
            return f"withdrawn: {self.withdrawn[key]}"
        at = now_ms() if at_ms is None else at_ms
        if at - self.fetched_ms.get(key, -float("inf")) > self.stale_ms:
            return f"stale: no update within {self.stale_ms:g} ms (--stale-ms)"
        return ""

    def fresh(self, key: Key, at_ms: float | None = None) -> bool:
        return not self.exclusion(key, at_ms)

    def fresh_keys(self, at_ms: float | None = None) -> list[Key]:
        at = now_ms() if at_ms is None else at_ms
        return [k for k in self.books if self.fresh(k, at)]

    def fresh_books(self) -> list[DepthSnapshot]:
        return [self.books[k] for k in self.fresh_keys()]

    def market_list(self) -> list[Market]:
        return list(self.markets.values())

    def book_set(self) -> BookSet:
        return self.version, self.books, self.markets

    def changed_since(self, version: int) -> list[Key]:
        """The keys put after `version` (a route worker that holds that version needs
        only these)."""
        return [k for k, v in self.put_at.items() if v > version]

    def stale_in_s(self, keys: Iterable[Key], at_ms: float | None = None) -> float | None:
        """Seconds until the first of these books turns stale, 0 if one already has
        (None: never; a withdrawn book comes back through a `put`, not a timer)."""
        if not self.live:
            return None
        at = now_ms() if at_ms is None else at_ms
        left = [
            self.fetched_ms[k] + self.stale_ms - at
            for k in keys
            if k in self.fetched_ms and k not in self.withdrawn
        ]
        return max(min(left), 0.0) / 1e3 if left else None

    def report(
        self, result: Mapping[str, Any], exchanges: Sequence[str], at_ms: float
    ) -> list[dict[str, Any]]:
        """The books a RouteResult stands on, as /route reports them: every cached book of
        the markets its hops trade (of the markets holding `from` or `to` when it has no
        hops), each with its age, how it is fed and why it was left out ('' if it was not)."""
        symbols = touched_symbols(result, self.books)
        out = []
        for venue, symbol in sorted(self.books):
            if symbol not in symbols or (exchanges and venue not in exchanges):
                continue
            key = (venue, symbol)
            out.append(
                {
                    "exchangeId": venue,
                    "symbol": symbol,
                    "ageMs": max(at_ms - self.fetched_ms.get(key, at_ms), 0.0),
                    "feed": self.feed(venue),
                    "excludedReason": self.exclusion(key, at_ms),
                }
            )
        return out


def touched_symbols(result: Mapping[str, Any], books: Iterable[Key]) -> set[str]:
    """The symbols a RouteResult trades (every hop's pair); with no hops, every cached
    symbol holding its `from` or `to` asset."""
    pairs = {str(hop["pair"]) for hop in result.get("hops", [])}
    if pairs:
        return pairs
    assets = {result.get("from"), result.get("to")}
    return {s for _, s in books if assets & set(split_symbol(s))}


async def route_on(cache: BookCache, pool: RoutePool, req: RouteRequest) -> dict[str, Any]:
    """The RouteResult for `req` on the books fresh now, computed in the pool, with the
    books it stands on (`report`); a book left out is also named in `warnings`."""
    at = now_ms()
    result = await pool.submit(req, cache.fresh_keys(at))
    if "hops" not in result:  # a replaced compute function (tests) answers its own shape
        return result
    books = cache.report(result, req.exchanges, at)
    result["books"] = books
    left = [b for b in books if b["excludedReason"]]
    if not result["hops"] and left and len(left) == len(books):
        first = left[0]
        result["unroutableReason"] = (
            f"no_fresh_book: every book holding {req.source} or {req.target} is left out "
            f"({first['exchangeId']} {first['symbol']} {first['excludedReason']}); see books"
        )
    result["warnings"] = [
        *result.get("warnings", []),
        *(
            f"{b['exchangeId']} {b['symbol']} left out: {b['excludedReason']}"
            for b in books
            if b["excludedReason"]
        ),
    ]
    return result


async def refresh_forever(
    cache: BookCache, venues: Sequence[Venue], symbols: Sequence[str], every_s: float
) -> None:
    """Poll every (venue, symbol) the venue lists into the cache; a failure is recorded,
    not fatal. (`serve --venues` keeps ccxt venues with `LiveFeeds`; this polls any
    other `Venue`.)"""
    while True:
        started = time.monotonic()
        for venue in venues:
            cache.feeds.setdefault(venue.name, "polling")
            try:
                listed = await venue.symbols() if hasattr(venue, "symbols") else list(symbols)
                wanted = [s for s in symbols if s in listed]
                results = await asyncio.gather(
                    *(asyncio.gather(venue.snapshot(s), venue.market(s)) for s in wanted),
                    return_exceptions=True,
                )
                for result in results:
                    if isinstance(result, BaseException):
                        cache.errors[venue.name] = str(result)
                    else:
                        cache.put(*result)
                        cache.errors.pop(venue.name, None)
            except LiquidrouteError as exc:
                cache.errors[venue.name] = str(exc)
        await asyncio.sleep(max(0.05, every_s - (time.monotonic() - started)))


__all__ = ["BookCache", "Feed", "Key", "refresh_forever", "route_on", "touched_symbols"]
