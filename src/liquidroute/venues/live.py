"""Live books kept in memory from a venue's websocket stream (ccxt.pro), as a `Venue`.

    venue = LiveVenue(venue_from_spec("binance", websocket=True), ["BTC/USDT"], max_age_s=5)
    await venue.start()                        # markets loaded, one feed task per symbol
    book = await venue.snapshot("BTC/USDT")    # from memory: no network on the hot path
    venue.status("BTC/USDT")                   # mode, state, age, nonce, updates, resyncs
    await venue.close()

A feed keeps one book with ccxt.pro's `watch_order_book`, which follows the exchange's
own recipe. For Binance: subscribe to the diff stream and buffer its events, fetch a REST
snapshot carrying `lastUpdateId`, drop the events with u <= lastUpdateId, apply the rest,
and from then on require every event's U to be the previous u + 1. Each diff ccxt
applies is published from its message handler (`_track_changes`): the touched levels go
into the cache's sides, a `DepthSnapshot` is the new version and the listeners are told
(`subscribe`, `add_listener`); the feed's watch stays armed and returns only for a new
subscription's first book or an error. What goes wrong, and what is done:

- a sequence gap or checksum failure (ccxt `InvalidNonce`/`ChecksumError`): the book is
  withdrawn at once (`snapshot` raises, so the router leaves the venue out, saying why)
  and resubscribed: a new REST snapshot plus the buffered diffs (`resyncs` + 1);
- the connection drops (ccxt `NetworkError`): withdrawn, reconnected with exponential
  backoff from `backoff_s[0]` to `backoff_s[1]` (`reconnects` + 1);
- the stream stalls: after `max_age_s` without an update the status says "stale" and the
  book keeps its old timestamp, so the router's guard (age check, `--max-age`) leaves it
  out until an update arrives;
- a book that arrives crossed or malformed is withdrawn until the next valid one.

The first book after a (re)subscription is flagged `fresh` (rebuilt from a snapshot):
`record` writes it as a tardis snapshot block. A venue that ccxt.pro cannot stream
(no `watchOrderBook`) is polled with `fetch_order_book` every `poll_interval_s`; its
status says mode "polling".
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import select
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from liquidroute.errors import (
    InvalidInputError,
    LiquidrouteError,
    MalformedBookError,
    VenueUnavailableError,
)
from liquidroute.model import ChildOrder, DepthSnapshot, FloatArray, Market
from liquidroute.venues.base import OrderUpdate
from liquidroute.venues.ccxt_venue import CcxtVenue, translate

Mode = Literal["websocket", "polling"]
State = Literal["connecting", "live", "stale", "resyncing", "reconnecting", "failed", "closed"]


@dataclass(frozen=True, slots=True)
class BookEvent:
    """A new version of one venue's book. `fresh`: rebuilt from a snapshot (first book
    after start, a resync or a reconnect), not an increment of the previous version."""

    venue: str
    symbol: str
    version: int
    snapshot: DepthSnapshot
    fresh: bool
    nonce: int | None = None


@dataclass(frozen=True, slots=True)
class BookStatus:
    """What a feed says about its book: how it is kept and how current it is."""

    venue: str
    symbol: str
    mode: Mode
    state: State
    age_s: float | None
    nonce: int | None
    updates: int
    resyncs: int
    reconnects: int
    error: str | None

    @property
    def usable(self) -> bool:
        return self.state == "live"


Listener = Callable[[BookEvent], None]


@runtime_checkable
class StreamingVenue(Protocol):
    """A venue that keeps books itself and says when they change (Router.start/watch)."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    def subscribe(self, symbol: str, callback: Callable[[], None]) -> Callable[[], None]: ...

    def fds(self) -> tuple[int, ...]: ...


#: event-loop iterations from bytes in a feed's socket to the book they carry being
#: published: the loop reads them (aiohttp parses the frame in `data_received`), the
#: feed's receive task wakes and hands the message to ccxt (whose handler publishes)
_HOPS_TO_PUBLISH = 3
_CATCH_UP_ROUNDS = 4  # at most this many rounds of reading bytes that keep arriving


def unread(venues: Iterable[StreamingVenue]) -> bool:
    """Whether a websocket of `venues` holds bytes the event loop has not read yet: one
    non-blocking poll of all their sockets (`select.select` where there is no poll)."""
    fds = [fd for v in venues for fd in v.fds()]
    if not fds:
        return False
    if not hasattr(select, "poll"):
        return bool(select.select(fds, [], [], 0)[0])
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


async def catch_up(venues: Iterable[StreamingVenue]) -> None:
    """Let the feeds of `venues` publish what their websockets have already received.

    While bytes wait unread (`unread`), the event loop gets the iterations it needs to
    read them and publish the books they carry (`_HOPS_TO_PUBLISH`), at most
    `_CATCH_UP_ROUNDS` times, so a venue that never pauses cannot hold the caller back
    longer. A quote made next routes on every update that has reached this process:
    when several venues' updates arrive together, it is computed once, after all of
    them, not once on books about to change and again. With nothing unread it costs
    one poll."""
    venues = list(venues)
    for _ in range(_CATCH_UP_ROUNDS):
        if not unread(venues):
            return
        for _ in range(_HOPS_TO_PUBLISH):
            await asyncio.sleep(0)


@runtime_checkable
class MemoryVenue(Protocol):
    """A venue that hands over its current book synchronously, with a version number
    that changes whenever the book does: what `Router`'s hot path routes on."""

    @property
    def name(self) -> str: ...

    @property
    def live(self) -> bool: ...

    def book_now(self, symbol: str, depth: int | None = None) -> tuple[int, DepthSnapshot]:
        """(version, book) from memory; raises VenueUnavailableError while there is none."""
        ...

    def market_now(self, symbol: str) -> Market:
        """The market from memory; raises VenueUnavailableError before it is loaded."""
        ...


def _levels(side: Any, depth: int | None = None) -> FloatArray:
    rows = side[:depth] if depth else side
    if not len(rows):
        return np.empty((0, 2))
    return np.array(rows if len(rows[0]) == 2 else [row[:2] for row in rows], dtype=np.float64)


_EMPTY: FloatArray = np.empty((0, 2))
_EMPTY.setflags(write=False)


def _check_crossed(snap: DepthSnapshot, bids: _Side, asks: _Side) -> None:
    """`DepthSnapshot`'s crossed-book check, for a book assembled from validated sides:
    the best prices read from the sides' sort keys (Python floats, −price for the bids),
    not from the arrays."""
    if bids.keys and asks.keys and -bids.keys[0] >= asks.keys[0]:
        raise MalformedBookError(
            f"{snap.venue} {snap.symbol}: crossed book (best bid {-bids.keys[0]} >= best "
            f"ask {asks.keys[0]}); refresh the book or leave the venue out"
        )


class _Side:
    """One side of a book as a read-only (n, 2) array, updated by the levels that changed.

    `keys` are ccxt's sort keys as a Python list (price for asks, -price for bids:
    ascending either way) and `book` the published (price, size) rows, best first. A diff
    touching k levels costs k binary searches on `keys`, one copy of the n rows and an
    O(n) memmove per inserted or deleted level, not a rebuild of the n levels from
    ccxt's Python lists, and no re-validation of the n - k untouched levels: each
    touched level is checked here (price and size finite and > 0; a size of 0 deletes)
    and the rows stay strictly sorted by construction (unique keys kept by bisection).
    """

    __slots__ = ("book", "dirty", "keys", "sign")

    def __init__(self, bids: bool) -> None:
        self.sign = -1.0 if bids else 1.0
        self.keys: list[float] = []
        self.book: FloatArray = _EMPTY
        self.dirty = True  # changed since the last published book

    def adopt(self, rows: FloatArray) -> None:
        """Take `rows` (validated by `DepthSnapshot`, read-only) as the whole side."""
        self.book = rows
        self.keys = (rows[:, 0] * self.sign).tolist()
        self.dirty = True

    def apply(self, venue: str, side: Any, changed: set[float]) -> bool:
        """Bring the rows to ccxt's `side` at the `changed` prices (then cut to its
        length: ccxt trims the deep end); False when they do not match it after.
        Raises MalformedBookError for a touched level with a price or size that is NaN,
        infinite, zero or negative (the book is then withdrawn by `_Feed.accept`)."""
        index = side._index
        keys, rows = self.keys, self.book
        if changed:
            rows = rows.copy()  # the published array is never written to
            sign = self.sign
            for price in changed:
                if not 0.0 < price < math.inf:
                    raise MalformedBookError(
                        f"{venue}: a diff has the price {price!r} (must be finite and > 0)"
                    )
                key = sign * price
                j = bisect_left(index, key)
                size = side[j][1] if j < len(index) and index[j] == key else 0.0
                i = bisect_left(keys, key)
                exists = i < len(keys) and keys[i] == key
                if size:
                    if not 0.0 < size < math.inf:
                        raise MalformedBookError(
                            f"{venue}: a diff has the size {size!r} at {price} (must be "
                            "finite and > 0, or 0 to delete the level)"
                        )
                    if exists:
                        rows[i, 1] = size
                    else:
                        keys.insert(i, key)
                        grown = np.empty((len(rows) + 1, 2))
                        grown[:i], grown[i] = rows[:i], (price, size)
                        grown[i + 1 :] = rows[i:]
                        rows = grown
                elif exists:
                    del keys[i]
                    rows = np.concatenate((rows[:i], rows[i + 1 :]))
            self.dirty = True
        n = len(index)
        if len(keys) > n:
            del keys[n:]
            rows = rows[:n]
            self.dirty = True
        if self.dirty:
            rows.setflags(write=False)
            self.book = rows
        return len(keys) == n and (n == 0 or (keys[0] == index[0] and keys[-1] == index[-1]))

    def cut(self, depth: int | None) -> FloatArray:
        """The published rows, to `depth` levels (a read-only view)."""
        return self.book[:depth] if depth else self.book


def _track_changes(exchange: Any) -> None:
    """Make the ccxt.pro client's books note which prices each diff touches.

    Every book the client creates (`exchange.order_book`) gets its sides' `storeArray`
    (through which ccxt applies every level of every diff) wrapped to record the price,
    and its `reset` (a new snapshot) wrapped to flag a rebuild. Books of other kinds
    (counted, indexed) are not tracked and are rebuilt on every update instead.
    """
    make = exchange.order_book

    def order_book(snapshot: Any = None, depth: Any = None) -> Any:
        book = make(snapshot or {}, depth)
        book.lr_changed = {"bids": set(), "asks": set()}
        book.lr_reset = True
        for name in ("bids", "asks"):
            side, changed = book[name], book.lr_changed[name]
            store = side.storeArray

            def tracked(delta: Any, store: Any = store, changed: set[float] = changed) -> Any:
                changed.add(delta[0])
                return store(delta)

            side.storeArray = tracked
        reset = book.reset

        def tracked_reset(snapshot: Any = None) -> Any:
            book.lr_reset = True
            return reset(snapshot or {})

        book.reset = tracked_reset
        return book

    exchange.order_book = order_book
    make_client = exchange.client

    def client(url: str) -> Any:
        """The exchange's websocket client, its `resolve` made to call a book's
        `lr_on_update` (set by its feed) synchronously, in the message handler: the feed
        publishes a version as soon as ccxt has applied the diff, even between two
        `watch_order_book` calls, instead of one loop iteration later. A book its
        running feed took is not resolved to ccxt's waiter: the feed's watch stays armed,
        and wakes only for what ccxt rejects it with (a sequence gap, a lost connection),
        so no update pays for the watch's return and re-arming (tens of microseconds of
        ccxt's subscription code per update, ahead of other venues' messages)."""
        c = make_client(url)
        if not getattr(c, "lr_hooked", False):
            resolve = c.resolve

            def hooked(result: Any, message_hash: Any, resolve: Any = resolve) -> Any:
                on_update = getattr(result, "lr_on_update", None)
                if on_update is not None and on_update(result):
                    return result
                return resolve(result, message_hash)

            c.resolve = hooked
            c.receive_loop = lambda: _receive_forever(c)
            c.lr_hooked = True
        return c

    exchange.client = client


def _receive_forever(client: Any) -> None:
    """ccxt's `Client.receive_loop` (started by its `open`) as one task per connection.

    ccxt's creates a task per message and handles the message in that task's done
    callback: two loop iterations from the bytes' arrival to the exchange's handler, and
    two more (re-scheduling, the next task's first step) per message. Here one task
    awaits `receive()` in a loop and handles each message as soon as it returns; the
    rest is ccxt's: the message goes to `handle_message`, a receive error rejects every
    waiter with a `NetworkError`, a closed connection ends in `on_close(1006)`, and an
    error raised by a handler ends the loop (ccxt's does not reschedule either)."""
    import ccxt

    async def run() -> None:
        while not client.closed():
            try:
                message = await client.receive()
            except asyncio.CancelledError:
                return
            except Exception as exc:
                client.reject(ccxt.NetworkError(str(exc)))
                return
            client.handle_message(message)
        client.on_close(1006)

    client.lr_receiver = client.asyncio_loop.create_task(run())


class _Feed:
    """One symbol's book on one venue, kept by a background task."""

    def __init__(self, owner: LiveVenue, symbol: str) -> None:
        self.owner = owner
        self.symbol = symbol
        self.book: DepthSnapshot | None = None
        self.version = 0
        self.updates = 0
        self.resyncs = 0
        self.reconnects = 0
        self.nonce: int | None = None
        self.received: float | None = None  # time.time() of the last book
        self.state: State = "connecting"
        self.error: str | None = None
        self.fresh = True  # the next book is rebuilt from a snapshot
        self.first = asyncio.Event()
        self.bids, self.asks = _Side(bids=True), _Side(bids=False)
        self.rebuilds = 0
        self.crash: Exception | None = None
        self.top: tuple[int, int, DepthSnapshot] | None = None  # (version, depth, book)
        self.callbacks: list[Callable[[], None]] = []
        self.task: asyncio.Task[None] | None = None
        self.seen: tuple[Any, Any] = (None, None)  # (nonce, timestamp) last published

    def withdraw(self, state: State, reason: str) -> None:
        self.state, self.error, self.fresh = state, reason, True
        self.owner._fds = None  # the connection may be going: read the sockets again
        self._notify()

    def _notify(self) -> None:
        for callback in list(self.callbacks):
            callback()

    def accept(self, raw: Any) -> None:
        """Publish ccxt's book as a snapshot and tell the listeners.

        Incrementally (`_Side.apply`) only the touched levels are validated and the
        crossed check is O(1) on the best levels; a new snapshot from the venue, an
        untracked book or sides that no longer match ccxt's are rebuilt and validated
        whole by `DepthSnapshot`. Either way a bad book withdraws the feed (resyncing)
        and the next update is rebuilt and validated whole."""
        now = time.time() * 1e3
        owner = self.owner
        prev = self.book
        depth = owner.depth
        stamp = raw.get("timestamp") or now
        bids, asks = self.bids, self.asks
        try:
            if self._update_sides(raw) and prev is not None:
                # a side that did not change keeps its array: caches keyed by a side's
                # array stay valid across the update
                snap = DepthSnapshot._trusted(
                    owner.name,
                    self.symbol,
                    bids.cut(depth) if bids.dirty else prev.bids,
                    asks.cut(depth) if asks.dirty else prev.asks,
                    stamp,
                    now,
                )
                _check_crossed(snap, bids, asks)
            else:
                full = DepthSnapshot(
                    owner.name,
                    self.symbol,
                    _levels(raw["bids"]),
                    _levels(raw["asks"]),
                    timestamp=stamp,
                    local_timestamp=now,
                )
                bids.adopt(full.bids)
                asks.adopt(full.asks)
                self.rebuilds += 1
                snap = full
                if depth:
                    snap = DepthSnapshot._trusted(
                        owner.name, self.symbol, bids.cut(depth), asks.cut(depth), stamp, now
                    )
        except LiquidrouteError as exc:
            self.withdraw("resyncing", str(exc))
            return
        bids.dirty = asks.dirty = False
        self.book, self.received = snap, now / 1e3
        self.nonce = raw.get("nonce")
        self.seen = (self.nonce, raw.get("timestamp"))
        self.version += 1
        self.updates += 1
        self.state, self.error = "live", None
        fresh, self.fresh = self.fresh, False
        if fresh:  # a new subscription, maybe on a new connection
            owner._fds = None
        if not self.first.is_set():
            self.first.set()
        if owner.listeners:
            event = BookEvent(owner.name, self.symbol, self.version, snap, fresh, self.nonce)
            for listener in list(owner.listeners):
                listener(event)
        self._notify()

    def pending(self, raw: Any) -> bool:
        """Whether ccxt's book `raw` holds what the published version does not: always for
        an untracked book; else a new snapshot, touched levels, or a new nonce or
        timestamp (a diff that changed no level still refreshes the book's age)."""
        changed = getattr(raw, "lr_changed", None)
        return (
            changed is None
            or self.book is None
            or self.fresh
            or raw.lr_reset
            or bool(changed["bids"] or changed["asks"])
            or (raw.get("nonce"), raw.get("timestamp")) != self.seen
        )

    def on_update(self, raw: Any) -> bool:
        """ccxt has applied a message to `raw` (called from its handler, see
        `_track_changes`): trim it to its depth as ccxt's watch does (`limit()`) and
        publish it now. A listener's error stops the feed, as in `run`. False when the
        feed is not running (ccxt's waiter is then resolved as usual)."""
        if self.crash is not None or self.task is None or self.task.done():
            return False
        try:
            limit = getattr(raw, "limit", None)
            if limit is not None:  # what watch_order_book does before it returns the book:
                limit()  # trim it to its depth (the feed's watch stays armed, see above)
            if self.pending(raw):
                self.accept(raw)
        except Exception as exc:
            self._stop(exc)
            self.task.cancel()
        return True

    def _stop(self, exc: Exception) -> None:
        """The feed stops on an error that is not the venue's: kept in `crash`, failed."""
        self.crash = exc
        self.withdraw("failed", f"feed stopped: {type(exc).__name__}: {exc}")

    def _update_sides(self, raw: Any) -> bool:
        """Apply the prices ccxt changed since the last version; False when the book must
        be rebuilt instead: new (a snapshot), untracked, or the sides no longer match
        ccxt's book. Raises MalformedBookError for a bad touched level."""
        changed = getattr(raw, "lr_changed", None)
        if changed is None:
            return False
        try:
            if raw.lr_reset or self.fresh:
                return False
            name = self.owner.name
            ok = self.bids.apply(name, raw["bids"], changed["bids"])
            return self.asks.apply(name, raw["asks"], changed["asks"]) and ok
        finally:
            raw.lr_reset = False
            changed["bids"].clear()
            changed["asks"].clear()

    async def run(self) -> None:
        """Keep the book until cancelled. An error that is not the venue's (a listener
        failing, e.g. a recorder's disk) stops the feed: kept in `crash`, state failed."""
        try:
            await self._keep()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._stop(exc)

    async def _keep(self) -> None:
        import ccxt

        owner = self.owner
        exchange = owner.venue.exchange
        delay = owner.backoff_s[0]
        while True:
            try:
                if owner.mode == "websocket":
                    raw = await exchange.watch_order_book(self.symbol, owner.limit)
                    if getattr(raw, "lr_changed", None) is not None:
                        raw.lr_on_update = self.on_update  # the next diffs, at once
                else:
                    raw = await exchange.fetch_order_book(self.symbol, owner.limit)
                if self.pending(raw):  # else published already, by on_update
                    self.accept(raw)
                delay = owner.backoff_s[0]
                if self.callbacks and owner.mode == "websocket":
                    # the watch returns for a subscription's first book only (later
                    # diffs are published by `on_update` and leave it armed): one hop
                    # back to the loop before re-arming it, so the subscribers woken by
                    # the publish (Router.watch's re-quote) run first. No update is
                    # missed: new messages are handled in a later loop iteration
                    await asyncio.sleep(0)
                if owner.mode == "polling":
                    await asyncio.sleep(owner.poll_interval_s)
            except asyncio.CancelledError:
                raise
            except ccxt.InvalidNonce as exc:  # sequence gap or checksum: resubscribe now
                self.resyncs += 1
                self.withdraw("resyncing", f"resyncing after {type(exc).__name__}")
            except ccxt.NetworkError as exc:
                self.reconnects += 1
                self.withdraw("reconnecting", str(translate(owner.name, exc)))
                await asyncio.sleep(delay)
                delay = min(delay * 2, owner.backoff_s[1])
            except ccxt.BaseError as exc:
                self.withdraw("failed", str(translate(owner.name, exc)))
                await asyncio.sleep(delay)
                delay = min(delay * 2, owner.backoff_s[1])


class LiveVenue:
    """A `Venue` answering from books kept in memory by websocket (or polling) feeds."""

    live = True

    def __init__(
        self,
        venue: CcxtVenue,
        symbols: Sequence[str],
        *,
        max_age_s: float = 10.0,
        depth: int | None = None,
        limit: int | None = None,
        poll_interval_s: float = 1.0,
        backoff_s: tuple[float, float] = (0.05, 5.0),
        start_timeout_s: float = 10.0,
    ) -> None:
        """`venue` supplies the client (ccxt.pro's for streaming: `venue_from_spec(...,
        websocket=True)`) and the markets. `limit` is the snapshot/book depth asked of
        the exchange (ccxt's default when None), `depth` the levels kept per side."""
        if not symbols:
            raise InvalidInputError(f"{venue.name}: give at least one symbol to keep live")
        if not max_age_s > 0:
            raise InvalidInputError(f"max_age_s must be > 0 seconds, got {max_age_s!r}")
        self.venue = venue
        self.max_age_s = max_age_s
        self.depth = depth
        self.limit = limit
        self.poll_interval_s = poll_interval_s
        self.backoff_s = backoff_s
        self.start_timeout_s = start_timeout_s
        has = getattr(venue.exchange, "has", None) or {}
        self.mode: Mode = "websocket" if has.get("watchOrderBook") else "polling"
        if self.mode == "websocket":
            _track_changes(venue.exchange)
        self.listeners: list[Listener] = []
        self._feeds = {s: _Feed(self, s) for s in dict.fromkeys(symbols)}
        self._started = False
        self._markets: dict[str, Market] = {}
        self._fds: tuple[int, ...] | None = None  # of `sockets()`, see `fds`

    @property
    def name(self) -> str:
        return self.venue.name

    @property
    def symbols(self) -> list[str]:
        return list(self._feeds)

    def _feed(self, symbol: str) -> _Feed:
        feed = self._feeds.get(symbol)
        if feed is None:
            raise InvalidInputError(
                f"{self.name}: {symbol} is not kept live here; live symbols: {self.symbols}"
            )
        return feed

    async def start(self) -> None:
        """Load markets (an unknown symbol raises), start every feed, and wait up to
        `start_timeout_s` for the first books (a feed that has none yet keeps trying)."""
        if self._started:
            return
        for symbol in self._feeds:
            self._markets[symbol] = await self.venue.market(symbol)
        self._started = True
        for feed in self._feeds.values():
            feed.task = asyncio.create_task(feed.run(), name=f"live:{self.name}:{feed.symbol}")
        waits = [feed.first.wait() for feed in self._feeds.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), self.start_timeout_s)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` on every new book version; returns the remover."""
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    def subscribe(self, symbol: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback()` when `symbol`'s book changes or is withdrawn; returns the remover."""
        callbacks = self._feed(symbol).callbacks
        callbacks.append(callback)
        return lambda: callbacks.remove(callback) if callback in callbacks else None

    def sockets(self) -> list[Any]:
        """The sockets of this venue's open websockets (none while polling or connecting):
        what `unread` polls."""
        out = []
        for client in (getattr(self.venue.exchange, "clients", None) or {}).values():
            info = getattr(getattr(client, "connection", None), "get_extra_info", None)
            sock = info("socket") if info is not None else None
            if sock is not None:
                out.append(sock)
        return out

    def fds(self) -> tuple[int, ...]:
        """The file descriptors of `sockets()`, kept until a feed withdraws its book or
        publishes a fresh one: a (re)connection does one, then the other."""
        fds = self._fds
        if fds is None:
            fds = self._fds = tuple(fd for sock in self.sockets() if (fd := sock.fileno()) >= 0)
        return fds

    def check(self) -> None:
        """Raise the error that stopped a feed, if one did (see `_Feed.run`)."""
        for feed in self._feeds.values():
            if feed.crash is not None:
                raise feed.crash

    def version(self, symbol: str) -> int:
        return self._feed(symbol).version

    def status(self, symbol: str) -> BookStatus:
        feed = self._feed(symbol)
        age = time.time() - feed.received if feed.received is not None else None
        state = feed.state
        if state == "live" and age is not None and age > self.max_age_s:
            state = "stale"
        return BookStatus(
            self.name,
            symbol,
            self.mode,
            state,
            age,
            feed.nonce,
            feed.updates,
            feed.resyncs,
            feed.reconnects,
            feed.error,
        )

    def statuses(self) -> list[BookStatus]:
        return [self.status(s) for s in self._feeds]

    def book_now(self, symbol: str, depth: int | None = None) -> tuple[int, DepthSnapshot]:
        """(version, book) from memory, synchronously: `snapshot` without the await.

        Raises VenueUnavailableError while there is no book (starting, resyncing,
        reconnecting); a stale book is returned with its old timestamp for the guard to
        judge. The same object is returned until the book changes (per depth), and a
        side that an update did not touch keeps its array, so caches keyed by a book's
        (or a side's) identity stay valid."""
        feed = self._feeds.get(symbol) or self._feed(symbol)
        book = feed.book
        if book is None or feed.state not in ("live", "stale"):
            why = feed.error or "no book received yet"
            raise VenueUnavailableError(self.name, f"{symbol} live book {feed.state}: {why}")
        if not depth:
            return feed.version, book
        top = feed.top
        if top is None or top[0] != feed.version or top[1] != depth:
            top = feed.top = (feed.version, depth, book.top(depth))
        return feed.version, top[2]

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        """The book in memory (no network): see `book_now`."""
        return self.book_now(symbol, depth)[1]

    def market_now(self, symbol: str) -> Market:
        """The market loaded at `start`, synchronously (VenueUnavailableError before)."""
        market = self._markets.get(symbol)
        if market is None:
            self._feed(symbol)  # an unknown symbol says so
            raise VenueUnavailableError(self.name, f"{symbol} market not loaded: start() first")
        return market

    async def market(self, symbol: str) -> Market:
        """The market, loaded once at start (no network, no re-parsing per quote)."""
        market = self._markets.get(symbol)
        if market is None:
            market = self._markets[symbol] = await self.venue.market(symbol)
        return market

    # the orders go out through the wrapped venue's client (REST), as without live books
    async def place_order(self, order: ChildOrder) -> OrderUpdate:
        """Send `order` through the wrapped `CcxtVenue` (see `CcxtVenue.place_order`)."""
        return await self.venue.place_order(order)

    async def fetch_order(self, order: ChildOrder) -> OrderUpdate | None:
        """Look `order` up through the wrapped `CcxtVenue` (by client order id)."""
        return await self.venue.fetch_order(order)

    async def cancel_order(self, order: ChildOrder) -> OrderUpdate | None:
        return await self.venue.cancel_order(order)

    async def close(self) -> None:
        tasks = [f.task for f in self._feeds.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for feed in self._feeds.values():
            feed.task = None
            feed.state = "closed"
        await self.venue.close()

    async def __aenter__(self) -> LiveVenue:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def live_venue_from_spec(spec: str, symbols: Sequence[str], **options: Any) -> LiveVenue:
    """A LiveVenue from a CLI spec (`binance`, `NAME=EXCHANGE_ID`): the ccxt.pro client,
    with LIQUIDROUTE_<NAME>_URL / _WS_URL / _OPTIONS applied (see `venue_from_spec`)."""
    from liquidroute.venues.ccxt_venue import venue_from_spec

    return LiveVenue(venue_from_spec(spec, websocket=True), symbols, **options)


__all__ = [
    "BookEvent",
    "BookStatus",
    "LiveVenue",
    "MemoryVenue",
    "StreamingVenue",
    "catch_up",
    "live_venue_from_spec",
    "unread",
]
