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
from liquidroute.model import AmountUnit, DepthSnapshot, ExecutionReport, Market, Quote
from liquidroute.router.guard import DEFAULT_MAX_AGE_MS, DEFAULT_MAX_DEVIATION_BPS, screen
from liquidroute.router.route import route
from liquidroute.venues.base import Venue

if TYPE_CHECKING:
    from liquidroute.router.executor import ExecutionPolicy
    from liquidroute.router.journal import Journal


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
    ) -> None:
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
        amount_in: AmountUnit = "base",
        caps: Mapping[str, float] | None = None,
        fees: Mapping[str, float] | None = None,
        baselines: bool = True,
        exclude: Mapping[str, str] | None = None,
        rules: bool | None = None,
        balances: Mapping[str, float] | None = None,
        fixed_costs: Mapping[str, float] | None = None,
        max_venues: int | None = None,
        max_share: float | None = None,
        time_limit: float = 1.0,
    ) -> Quote:
        """The optimal split of `amount` of `symbol` over this router's venues.

        `exclude` maps venue names to leave out to the reason (reported in the quote).
        The rule options are `route()`'s; balances and fixed costs of venues that were
        left out are ignored.
        """
        names = {v.name for v in self.venues}
        for option, given in (("caps", caps), ("balances", balances), ("fixed_costs", fixed_costs)):
            unknown = set(given or {}) - names
            if unknown:
                raise InvalidInputError(
                    f"{option} name venue(s) not routed to: {sorted(unknown)}; venues: "
                    f"{sorted(names)}"
                )
        books = await self.books(symbol, fees, exclude)
        return route(
            books.snapshots,
            side,
            amount,
            markets=books.markets,
            caps={v: c for v, c in (caps or {}).items() if v in books.markets},
            amount_in=amount_in,
            baselines=baselines,
            excluded=books.excluded,
            warnings=books.notes,
            source=self.source,
            rules=rules,
            balances={v: b for v, b in (balances or {}).items() if v in books.markets},
            fixed_costs={v: c for v, c in (fixed_costs or {}).items() if v in books.markets},
            max_venues=max_venues,
            max_share=max_share,
            time_limit=time_limit,
        )

    def quote_sync(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        amount_in: AmountUnit = "base",
        caps: Mapping[str, float] | None = None,
        fees: Mapping[str, float] | None = None,
        baselines: bool = True,
        **rules: Any,
    ) -> Quote:
        """`quote` for synchronous callers: runs its own event loop, closes the venues.

        `rules` are `quote`'s rule options (balances, fixed_costs, max_venues, ...).
        """

        async def run() -> Quote:
            try:
                return await self.quote(
                    symbol,
                    side,
                    amount,
                    amount_in=amount_in,
                    caps=caps,
                    fees=fees,
                    baselines=baselines,
                    **rules,
                )
            finally:
                await self.close()

        return asyncio.run(run())

    async def execute(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        live: bool = False,
        journal: Journal | None = None,
        policy: ExecutionPolicy | None = None,
        fees: Mapping[str, float] | None = None,
        latency_ms: float = 0.0,
    ) -> ExecutionReport:
        """Fill `amount` of `symbol`: dry run (simulated fills, nothing sent) unless `live`.

        Live trading needs venues that take orders (`CcxtVenue` with credentials). The
        journal defaults to ~/.liquidroute/journal.sqlite3.
        """
        from liquidroute.router.executor import Executor
        from liquidroute.router.journal import Journal
        from liquidroute.venues.simulated import SimulatedVenue

        router = self
        if not live:
            router = Router(
                [SimulatedVenue(v, latency_ms=latency_ms) for v in self.venues],
                guard=self.guard,
                max_age_ms=self.max_age_ms,
                max_deviation_bps=self.max_deviation_bps,
                timeout_s=self.timeout_s,
                depth=self.depth,
                source=self.source,
            )
        executor = Executor(router, journal or Journal(), live=live, policy=policy, fees=fees)
        return await executor.execute(symbol, side, amount)

    def execute_sync(self, symbol: str, side: str, amount: float, **kwargs: Any) -> ExecutionReport:
        """`execute` for synchronous callers (closes the venues when done)."""

        async def run() -> ExecutionReport:
            try:
                return await self.execute(symbol, side, amount, **kwargs)
            finally:
                await self.close()

        return asyncio.run(run())

    async def close(self) -> None:
        await asyncio.gather(*(v.close() for v in self.venues), return_exceptions=True)

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
