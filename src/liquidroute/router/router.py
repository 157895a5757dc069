"""Router: gather books from venues concurrently, screen them, and route.

    router = Router([CcxtVenue("binance"), CcxtVenue("okx")])
    quote = await router.quote("BTC/USDT", "buy", 2.5)       # or router.quote_sync(...)

A live venue that fails (timeout, error, bad book) is left out with the reason in
`quote.excluded`; the rest still route. A recorded or sample venue that fails is bad input
and raises. When no venue is left, its error is raised (several: NoVenueAnsweredError names each).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from liquidroute.errors import (
    DataError,
    InvalidInputError,
    LiquidrouteError,
    NoVenueAnsweredError,
    VenueUnavailableError,
)
from liquidroute.model import AmountUnit, DepthSnapshot, Market, Quote
from liquidroute.optimizer.exact import LadderCache
from liquidroute.router.guard import DEFAULT_MAX_AGE_MS, DEFAULT_MAX_DEVIATION_BPS, screen
from liquidroute.router.options import RouteOptions, resolve_options
from liquidroute.router.route import route
from liquidroute.venues.base import Venue

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@dataclass(frozen=True, slots=True)
class Books:
    """What the venues answered: snapshots and markets of the venues that passed."""

    snapshots: list[DepthSnapshot]
    markets: dict[str, Market]
    excluded: dict[str, str]
    notes: list[str]


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
        (recorded or sample venues that return the same snapshots); live books change on
        every fetch, so it is off by default."""
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
        self.cache = cache

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
        fees = dict(fees or {})
        unknown = set(fees) - {v.name for v in self.venues}
        if unknown:
            raise InvalidInputError(
                f"fee override for unknown venue(s) {sorted(unknown)}; "
                f"venues: {[v.name for v in self.venues]}"
            )
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
            if len(errors) == 1:
                raise errors[0]
            if errors:
                raise NoVenueAnsweredError(errors, [v.name for v in venues])
            raise InvalidInputError(f"every venue is excluded: {exclude}")
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
                reasons = "; ".join(f"{v}: {r}" for v, r in excluded.items())
                raise DataError(f"every venue was left out by the guard ({reasons})")
        return Books(snapshots, markets, excluded, notes)

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
        names = [v.name for v in self.venues]  # fees: checked by books()
        opts.check_venues(names, "not routed to", ("caps", "balances", "fixed_costs"))
        books = await self.books(symbol, opts.fees, exclude)
        return route(
            books.snapshots,
            side,
            amount,
            markets=books.markets,  # fee overrides already applied
            options=opts.only(books.markets).replace(fees={}),
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
        await asyncio.gather(*(v.close() for v in self.venues), return_exceptions=True)

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ live books
    async def start(self) -> None:
        """Start the venues that keep their own books (`venues.live.LiveVenue`): markets
        loaded, feeds running, first books awaited. Afterwards `quote` answers from memory."""
        from liquidroute.venues.live import StreamingVenue

        await asyncio.gather(*(v.start() for v in self.venues if isinstance(v, StreamingVenue)))

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
        Updates arriving while a quote is computed are coalesced into the next one;
        `min_interval_s` spaces the re-quotes further (a display needs a few per second).

        `options` are `quote`'s. While no venue is routable (every book withdrawn or
        stale) nothing is yielded, and the first quote after is yielded even if it equals
        the last one; bad input raises. Call `start()` first.
        """
        import contextlib

        from liquidroute.errors import InvalidInputError as BadInput
        from liquidroute.venues.live import StreamingVenue

        changed = asyncio.Event()
        removers = [
            v.subscribe(symbol, changed.set) for v in self.venues if isinstance(v, StreamingVenue)
        ]
        last: tuple[Any, ...] | None = None
        try:
            while True:
                started = time.monotonic()
                changed.clear()
                try:
                    quote = await self.quote(symbol, side, amount, **options)
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), recheck_s)
                pause = min_interval_s - (time.monotonic() - started)
                if pause > 0:
                    await asyncio.sleep(pause)
        finally:
            for remove in removers:
                remove()
