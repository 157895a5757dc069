"""Router: gather books from venues concurrently, screen them, and route.

    router = Router([CcxtVenue("binance"), CcxtVenue("okx")])
    quote = await router.quote("BTC/USDT", "buy", 2.5)       # or router.quote_sync(...)

A live venue that fails (timeout, error, bad book) is left out with the reason in
`quote.excluded`; the rest still route. A recorded or sample venue that fails is bad input
and raises. When no venue is left, its error is raised (several: NoVenueAnsweredError names each).

The hot path: when every venue keeps its books in memory (`venues.live.MemoryVenue`, e.g.
`LiveVenue`) and `start()` has run, `quote` (and the synchronous `quote_now`) takes the
books from memory — no tasks, no timeouts, no awaits — checks ages on every quote but the
deviation guard only when a book's best bid or ask changed, and routes with a
`LadderCache`: a book version's merged ladder is built once, and an update on one side
leaves the other side's ladder cached. The answer is `route()`'s on the same snapshots,
bit for bit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from liquidroute.errors import (
    DataError,
    InvalidInputError,
    LiquidrouteError,
    NoVenueAnsweredError,
    VenueUnavailableError,
)
from liquidroute.model import AmountUnit, DepthSnapshot, Market, Quote
from liquidroute.optimizer.exact import LadderCache
from liquidroute.router.guard import (
    DEFAULT_MAX_AGE_MS,
    DEFAULT_MAX_DEVIATION_BPS,
    combine,
    outliers,
    screen,
    stale_books,
)
from liquidroute.router.options import RouteOptions, resolve_options
from liquidroute.router.route import route
from liquidroute.venues.base import Venue
from liquidroute.venues.live import MemoryVenue, StreamingVenue, catch_up

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@dataclass(frozen=True, slots=True)
class Books:
    """What the venues answered: snapshots and markets of the venues that passed."""

    snapshots: list[DepthSnapshot]
    markets: dict[str, Market]
    excluded: dict[str, str]
    notes: list[str]


def _same_objects(a: Sequence[object], b: Sequence[object]) -> bool:
    """The same objects in the same order (identity, not equality)."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class Router:
    """Quotes across a fixed set of venues. Holds no global state; close() when done."""

    def __init__(
        self,
        venues: Sequence[Venue],
        *,
        guard: bool = True,
        max_age_ms: float | None = DEFAULT_MAX_AGE_MS,
        max_deviation_bps: float | None = DEFAULT_MAX_DEVIATION_BPS,
        timeout_s: float = 10.0,
        depth: int | None = None,
        source: str = "",
        cache: LadderCache | None = None,
    ) -> None:
        """`cache` (a `LadderCache`) reuses merged ladders across quotes on unchanged books
        (recorded or sample venues that return the same snapshots). REST books change on
        every fetch, so it is off by default, except when every venue keeps its books in
        memory (`MemoryVenue`): then a cache is made (give `cache=LadderCache(...)` to size
        it)."""
        if not venues:
            raise InvalidInputError("a Router needs at least one venue")
        names = [v.name for v in venues]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"venues must be distinct, got {names}")
        self.venues = list(venues)
        self.guard = guard
        self.max_age_ms = max_age_ms
        self.max_deviation_bps = max_deviation_bps
        self.timeout_s = timeout_s
        self.depth = depth
        self.source = source
        self._facts: tuple[object, int, bool, frozenset[str]] = (None, 0, False, frozenset())
        self.cache = cache if cache is not None or not self.memory else LadderCache(64)
        self._started = False
        # per symbol: the books the deviation check last saw, their tops (venue, best bid,
        # best ask) with the limit, and its answer; per venue: its last snapshot and top
        self._outliers: dict[str, tuple[Sequence[DepthSnapshot], tuple[Any, ...], Any]] = {}
        self._tops: dict[str, tuple[DepthSnapshot, tuple[str, float | None, float | None]]] = {}
        self._fee_markets: dict[tuple[str, float], tuple[Market, Market]] = {}
        # per symbol: the screened books from memory with what they hold for (the venues'
        # facts, the guard's settings, the books the age check passed), and the venues whose
        # feed of that symbol published or withdrew a book since (`_keep_books`)
        self._kept: dict[str, tuple[object, tuple[Any, ...], list[DepthSnapshot], Books]] = {}
        self._moved: dict[str, set[str]] = {}
        self._kept_for: dict[str, tuple[object, list[Callable[[], None]]]] = {}

    def _venue_facts(self) -> tuple[object, int, bool, frozenset[str]]:
        """(venues, count, all in memory, live names), redone when `venues` is replaced
        (e.g. `execute`'s dry run swaps in simulated venues on a copy of the router)."""
        facts, venues = self._facts, self.venues
        if facts[0] is not venues or facts[1] != len(venues):
            memory = all(isinstance(v, MemoryVenue) for v in venues)
            live = frozenset(v.name for v in venues if v.live)
            facts = self._facts = (venues, len(venues), memory, live)
        return facts

    @property
    def memory(self) -> bool:
        """Every venue keeps its books in memory (`MemoryVenue`): the hot path applies."""
        return self._venue_facts()[2]

    async def _fetch(self, venue: Venue, symbol: str) -> tuple[DepthSnapshot, Market]:
        async def both() -> tuple[DepthSnapshot, Market]:
            market = await venue.market(symbol)
            return await venue.snapshot(symbol, self.depth), market

        try:
            return await asyncio.wait_for(both(), self.timeout_s)
        except TimeoutError:
            raise VenueUnavailableError(
                venue.name, f"no answer within {self.timeout_s:g} s (--timeout)"
            ) from None

    async def books(
        self,
        symbol: str,
        fees: Mapping[str, float] | None = None,
        exclude: Mapping[str, str] | None = None,
    ) -> Books:
        """Fetch every venue's book and market concurrently, then screen them.

        Venues in `exclude` (name -> reason) are not asked; the reason is reported.
        """
        exclude = dict(exclude or {})
        venues = [v for v in self.venues if v.name not in exclude]
        fees = self._check_fees(fees)
        results = await asyncio.gather(
            *(self._fetch(v, symbol) for v in venues), return_exceptions=True
        )
        snapshots: list[DepthSnapshot] = []
        markets: dict[str, Market] = {}
        excluded: dict[str, str] = exclude
        errors: list[LiquidrouteError] = []
        for venue, result in zip(venues, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, LiquidrouteError) or not venue.live:
                    raise result
                errors.append(result)
                excluded[venue.name] = str(result)
                continue
            snap, market = result
            if venue.name in fees:
                market = dataclasses.replace(market, taker_fee=fees[venue.name])
            snapshots.append(snap)
            markets[venue.name] = market
        if not snapshots:
            self._no_books(errors, venues, exclude)
        notes: list[str] = []
        if self.guard:
            screened = screen(
                snapshots,
                now_ms=time.time() * 1e3,
                live={v.name for v in self.venues if v.live},
                max_age_ms=self.max_age_ms,
                max_deviation_bps=self.max_deviation_bps,
            )
            excluded.update(screened.excluded)
            notes.extend(screened.notes)
            snapshots = screened.kept
            if not snapshots:
                self._all_screened(excluded)
        return Books(snapshots, markets, excluded, notes)

    def _check_fees(self, fees: Mapping[str, float] | None) -> dict[str, float]:
        fees = dict(fees or {})
        if fees:
            unknown = set(fees) - {v.name for v in self.venues}
            if unknown:
                raise InvalidInputError(
                    f"fee override for unknown venue(s) {sorted(unknown)}; "
                    f"venues: {[v.name for v in self.venues]}"
                )
        return fees

    @staticmethod
    def _no_books(
        errors: list[LiquidrouteError], venues: Sequence[Venue], exclude: Mapping[str, str]
    ) -> NoReturn:
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise NoVenueAnsweredError(errors, [v.name for v in venues])
        raise InvalidInputError(f"every venue is excluded: {dict(exclude)}")

    @staticmethod
    def _all_screened(excluded: Mapping[str, str]) -> NoReturn:
        reasons = "; ".join(f"{v}: {r}" for v, r in excluded.items())
        raise DataError(f"every venue was left out by the guard ({reasons})")

    def _with_fee(self, market: Market, rate: float) -> Market:
        """`market` at taker fee `rate`, made once per (market, rate)."""
        key = (market.venue, rate)
        hit = self._fee_markets.get(key)
        if hit is None or hit[0] is not market:
            hit = self._fee_markets[key] = (market, dataclasses.replace(market, taker_fee=rate))
        return hit[1]

    def _top(self, snap: DepthSnapshot) -> tuple[str, float | None, float | None]:
        """(venue, best bid, best ask) of `snap`, read once per snapshot object: all the
        deviation check (`guard.outliers`: each venue's mid) looks at."""
        hit = self._tops.get(snap.venue)
        if hit is not None and hit[0] is snap:
            return hit[1]
        bids, asks = snap.bids, snap.asks
        top = (
            snap.venue,
            bids.item(0) if len(bids) else None,
            asks.item(0) if len(asks) else None,
        )
        self._tops[snap.venue] = (snap, top)
        return top

    def books_now(
        self,
        symbol: str,
        fees: Mapping[str, float] | None = None,
        exclude: Mapping[str, str] | None = None,
    ) -> Books:
        """`books()` from memory, synchronously: every venue must be a `MemoryVenue`.

        Ages are checked on every call; the deviation check runs again only when the
        best bid or ask of a book it looks at changed (it reads nothing else: each
        venue's mid), not on every update deeper in a book.
        """
        got = self._books_now(symbol, fees, exclude)
        return Books(list(got.snapshots), dict(got.markets), dict(got.excluded), list(got.notes))

    def _screen_settings(self) -> tuple[Any, ...]:
        return (self.guard, self.max_age_ms, self.max_deviation_bps, self.depth)

    def _books_now(
        self,
        symbol: str,
        fees: Mapping[str, float] | None,
        exclude: Mapping[str, str] | None,
    ) -> Books:
        """`books_now`, shared (read it, do not change it). Without fees or exclusions
        the screened books are kept per symbol (every venue a `StreamingVenue`: its feed
        tells its subscribers which venue's book moved, see `_keep_books`) while no book
        the age check passed has gone stale: what `books_now` would screen again is these
        books, with the new books of the venues that published since put in (`_patched`),
        or, when that cannot be told without it, the screen's answer again."""
        plain = not fees and not exclude
        if plain:  # taken out, put back only while they hold
            kept, moved = self._kept.pop(symbol, None), self._moved.pop(symbol, None)
            if (
                kept is not None
                and kept[0] is self._venue_facts()  # the same venues, none added
                and kept[1] == self._screen_settings()
            ):
                if moved:
                    kept = self._patched(symbol, kept, moved)
                if kept is not None and not self._goes_stale(kept[2]):
                    self._kept[symbol] = kept
                    return kept[3]
        books, fresh = self._screen_now(symbol, fees, exclude)
        if plain and fresh is not None and self._keep_books(symbol):
            self._kept[symbol] = (self._venue_facts(), self._screen_settings(), fresh, books)
        return books

    def _patched(
        self,
        symbol: str,
        kept: tuple[object, tuple[Any, ...], list[DepthSnapshot], Books],
        moved: set[str],
    ) -> tuple[object, tuple[Any, ...], list[DepthSnapshot], Books] | None:
        """The kept books with the `moved` venues' new books put in; None when the
        screen must run again. It is the screen's answer when every venue's book passed
        the age check before (no stale venue, whose reason names its age) and, with the
        guard on, each moved venue has a book with the same best bid and ask as before:
        the deviation check reads nothing else (each venue's mid). The caller checks the
        ages again."""
        facts, settings, fresh, books = kept
        venues = self.venues
        if len(fresh) != len(venues):  # a venue was left out as stale, or gave no book
            return None
        fresh = list(fresh)  # so: every venue's book, in the venues' order (_screen_now)
        for i, venue in enumerate(venues):
            if venue.name not in moved:
                continue
            try:
                snap = venue.book_now(symbol, self.depth)[1]  # type: ignore[attr-defined]
            except LiquidrouteError:
                return None
            if snap is not fresh[i]:
                if self.guard and self._top(fresh[i]) != self._top(snap):
                    return None
                fresh[i] = snap
        excluded = books.excluded
        snapshots = [s for s in fresh if s.venue not in excluded] if excluded else fresh
        return facts, settings, fresh, Books(snapshots, books.markets, excluded, books.notes)

    def _goes_stale(self, fresh: Sequence[DepthSnapshot]) -> bool:
        """Whether one of the live books in `fresh` (those the age check passed) is
        now older than max_age_ms: the screen would leave it out."""
        if not self.guard or self.max_age_ms is None:
            return False
        live = self._venue_facts()[3]
        return bool(
            stale_books(fresh, now_ms=time.time() * 1e3, live=live, max_age_ms=self.max_age_ms)
        )

    def _keep_books(self, symbol: str) -> bool:
        """Whether `symbol`'s screened books can be kept: every venue a `StreamingVenue`,
        subscribed (once per set of venues) to note in `_moved` that its feed of `symbol`
        published or withdrew a book."""
        venues, facts = self.venues, self._venue_facts()
        held = self._kept_for.get(symbol)
        if held is not None and held[0] is facts:
            return True
        streaming = [v for v in venues if isinstance(v, StreamingVenue)]
        if len(streaming) != len(venues):
            return False
        if held is not None:
            for remove in held[1]:
                remove()

        def mover(name: str) -> Callable[[], None]:
            def moved() -> None:
                self._moved.setdefault(symbol, set()).add(name)

            return moved

        self._kept_for[symbol] = (
            facts,
            [v.subscribe(symbol, mover(v.name)) for v in streaming],
        )
        return True

    def _screen_now(
        self,
        symbol: str,
        fees: Mapping[str, float] | None,
        exclude: Mapping[str, str] | None,
    ) -> tuple[Books, list[DepthSnapshot] | None]:
        """The screened books from memory, and the books not left out as stale (None
        when a venue gave no book or market: the screen must run again)."""
        if not self.memory:
            raise InvalidInputError(
                "books_now/quote_now need venues that keep books in memory (LiveVenue)"
            )
        excluded: dict[str, str] = dict(exclude or {})
        fees = self._check_fees(fees)
        snapshots: list[DepthSnapshot] = []
        markets: dict[str, Market] = {}
        errors: list[LiquidrouteError] = []
        venues = self.venues
        for venue in venues:
            name = venue.name
            if name in excluded:
                continue
            try:
                snap = venue.book_now(symbol, self.depth)[1]  # type: ignore[attr-defined]
                market = venue.market_now(symbol)  # type: ignore[attr-defined]
            except LiquidrouteError as exc:
                if not venue.live:
                    raise
                errors.append(exc)
                excluded[name] = str(exc)
                continue
            rate = fees.get(name)
            snapshots.append(snap)
            markets[name] = market if rate is None else self._with_fee(market, rate)
        if not snapshots:
            asked = [v for v in venues if v.name not in (exclude or {})]
            self._no_books(errors, asked, exclude or {})
        notes: list[str] = []
        fresh = snapshots
        if self.guard:
            stale = (
                stale_books(
                    snapshots,
                    now_ms=time.time() * 1e3,
                    live=self._venue_facts()[3],
                    max_age_ms=self.max_age_ms,
                )
                if self.max_age_ms is not None
                else {}
            )
            fresh = [s for s in snapshots if s.venue not in stale] if stale else snapshots
            limit = self.max_deviation_bps
            cached = self._outliers.get(symbol)
            if cached is None or cached[1][1] != limit or not _same_objects(cached[0], fresh):
                key = (tuple(map(self._top, fresh)), limit)  # a book changed: did a top?
                same = cached is not None and cached[1] == key
                answer = cached[2] if same and cached is not None else outliers(fresh, limit)
                cached = self._outliers[symbol] = (fresh, key, answer)
            screened = combine(snapshots, stale, cached[2])
            excluded.update(screened.excluded)
            notes.extend(screened.notes)
            snapshots = screened.kept
            if not snapshots:
                self._all_screened(excluded)
        return Books(snapshots, markets, excluded, notes), None if errors else fresh

    async def quote(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        options: RouteOptions | None = None,
        exclude: Mapping[str, str] | None = None,
        amount_in: AmountUnit | None = None,
        caps: Mapping[str, float] | None = None,
        fees: Mapping[str, float] | None = None,
        baselines: bool | None = None,
        rules: bool | None = None,
        balances: Mapping[str, float] | None = None,
        fixed_costs: Mapping[str, float] | None = None,
        max_venues: int | None = None,
        max_share: float | None = None,
        time_limit: float | None = None,
        mip_gap: float | None = None,
    ) -> Quote:
        """The optimal split of `amount` of `symbol` over this router's venues.

        The options are `route()`'s (a `RouteOptions` and/or its keywords; a keyword that
        is not None wins); `fees` override the venues' taker fees. `exclude` maps venue
        names to leave out to the reason (reported in the quote). Caps, balances and fixed
        costs of venues that were left out are ignored.
        """
        opts = resolve_options(
            options,
            amount_in=amount_in,
            caps=caps,
            fees=fees,
            baselines=baselines,
            rules=rules,
            balances=balances,
            fixed_costs=fixed_costs,
            max_venues=max_venues,
            max_share=max_share,
            time_limit=time_limit,
            mip_gap=mip_gap,
        )
        self._check_venue_options(opts)
        return await self._quote(symbol, side, amount, opts, exclude)

    async def _quote(
        self,
        symbol: str,
        side: str,
        amount: float,
        opts: RouteOptions,
        exclude: Mapping[str, str] | None,
    ) -> Quote:
        """`quote` with its options resolved and checked."""
        if self._started and self.memory:  # the hot path: no await below
            return self._route(self._books_now(symbol, opts.fees, exclude), side, amount, opts)
        return self._route(await self.books(symbol, opts.fees, exclude), side, amount, opts)

    def quote_now(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        options: RouteOptions | None = None,
        exclude: Mapping[str, str] | None = None,
        **keywords: Any,
    ) -> Quote:
        """`quote` from memory, synchronously (no event loop needed): the books as the
        venues hold them now. Every venue must be a `MemoryVenue` and `start()` must have
        run. `keywords` are `quote`'s route options (caps, fees, baselines, ...)."""
        if not self._started:
            raise InvalidInputError("quote_now answers from memory: await router.start() first")
        opts = resolve_options(options, **keywords)
        self._check_venue_options(opts)
        return self._route(self._books_now(symbol, opts.fees, exclude), side, amount, opts)

    def _check_venue_options(self, opts: RouteOptions) -> None:
        if opts.caps or opts.balances or opts.fixed_costs:  # fees: checked with the books
            names = [v.name for v in self.venues]
            opts.check_venues(names, "not routed to", ("caps", "balances", "fixed_costs"))

    def _route(self, books: Books, side: str, amount: float, opts: RouteOptions) -> Quote:
        """route() on `books` (fee overrides already applied to their markets)."""
        if opts.caps or opts.balances or opts.fixed_costs or opts.fees:
            opts = opts.only(books.markets).replace(fees={})
        return route(
            books.snapshots,
            side,
            amount,
            markets=books.markets,
            options=opts,
            cache=self.cache,
            excluded=books.excluded,
            warnings=books.notes,
            source=self.source,
        )

    def quote_sync(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        options: RouteOptions | None = None,
        **kwargs: Any,
    ) -> Quote:
        """`quote` for synchronous callers: runs its own event loop, closes the venues.

        `kwargs` are `quote`'s keywords (exclude, caps, fees, balances, max_venues, ...).
        """

        async def run() -> Quote:
            try:
                return await self.quote(symbol, side, amount, options=options, **kwargs)
            finally:
                await self.close()

        return asyncio.run(run())

    async def close(self) -> None:
        for _, removers in self._kept_for.values():
            for remove in removers:
                remove()
        self._kept_for.clear()
        self._kept.clear()
        self._moved.clear()
        await asyncio.gather(*(v.close() for v in self.venues), return_exceptions=True)

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ live books
    async def start(self) -> None:
        """Start the venues that keep their own books (`venues.live.LiveVenue`): markets
        loaded, feeds running, first books awaited. Afterwards `quote` answers from memory."""
        await asyncio.gather(*(v.start() for v in self.venues if isinstance(v, StreamingVenue)))
        self._started = True

    async def watch(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        recheck_s: float = 1.0,
        min_interval_s: float = 0.0,
        **options: Any,
    ) -> AsyncIterator[Quote]:
        """Yield a quote now and a new one each time the optimum changes (legs, amounts,
        total cost or the venues left out), re-quoting on every live book update and at
        least every `recheck_s` (a book going stale changes the route without an update).
        Updates arriving while a quote is computed are coalesced into the next one, and
        before a re-quote the feeds publish what their websockets have already received
        (`venues.live.catch_up`): updates from several venues that arrive together are
        routed once, after all of them. `min_interval_s` spaces the re-quotes further (a
        display needs a few per second).

        `options` are `quote`'s. While no venue is routable (every book withdrawn or
        stale) nothing is yielded, and the first quote after is yielded even if it equals
        the last one; bad input raises. Call `start()` first.
        """
        from liquidroute.errors import InvalidInputError as BadInput

        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] | None = None
        changed = False

        def wake() -> None:  # called by a feed's accept/withdraw: no Event, no task
            nonlocal changed
            changed = True
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

        exclude = options.pop("exclude", None)
        opts = resolve_options(options.pop("options", None), **options)  # once per watch
        self._check_venue_options(opts)
        streaming = [v for v in self.venues if isinstance(v, StreamingVenue)]
        removers = [v.subscribe(symbol, wake) for v in streaming]
        last: tuple[Any, ...] | None = None
        try:
            while True:
                started = time.monotonic()
                changed = False
                try:
                    quote: Quote | None = await self._quote(symbol, side, amount, opts, exclude)
                except BadInput:
                    raise
                except LiquidrouteError:
                    quote, last = None, None  # the recovery is yielded even if unchanged
                if quote is not None:
                    key = (
                        tuple((leg.venue, leg.amount, leg.cost) for leg in quote.legs),
                        quote.total_cost,
                        tuple(sorted(quote.excluded)),
                    )
                    if key != last:
                        last = key
                        yield quote
                if not changed:  # wait for a book update, or recheck_s for ageing books
                    waiter = loop.create_future()
                    timer = loop.call_later(recheck_s, wake)
                    try:
                        await waiter
                    finally:
                        timer.cancel()
                        waiter = None
                pause = min_interval_s - (time.monotonic() - started)
                if pause > 0:
                    await asyncio.sleep(pause)
                await catch_up(streaming)  # what has arrived is published before the re-quote
        finally:
            for remove in removers:
                remove()
