"""Routing across order books and on-chain pools together: one exact split, gas included.

`route_with_pools` is `route()`'s counterpart when some venues are AMM pools. The split is
`optimizer.pools.solve_joint` (marginal prices equalised across book levels and pool
ranges; gas decided exactly per pool). Each pool leg is then re-priced with the pool's own
integer arithmetic (`PoolVenue.exact_trade`), so the quote states what the swap pays to the
wei, not the float model's estimate. Book legs are priced as `route()` prices them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from liquidroute.errors import DataError, InvalidInputError, VenueError
from liquidroute.model import (
    AmountUnit,
    DepthSnapshot,
    Leg,
    Market,
    Quote,
    check_amount,
    check_side,
)
from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.exact import allocate
from liquidroute.optimizer.pools import PoolCurve, solve_joint
from liquidroute.router.route import _legs, consolidated_mid

if TYPE_CHECKING:
    from liquidroute.router.router import Router


class PoolVenue(Protocol):
    """What routing needs of a pool: its name, its curve, decimals, integer-exact pricing."""

    @property
    def name(self) -> str: ...

    @property
    def base_decimals(self) -> int: ...

    @property
    def quote_decimals(self) -> int: ...

    def curve(self) -> PoolCurve: ...

    def exact_trade(self, side: str, base_amount: float) -> tuple[int, int]: ...


def route_with_pools(
    snapshots: Sequence[DepthSnapshot],
    pools: Sequence[PoolVenue],
    side: str,
    amount: float,
    *,
    markets: Mapping[str, Market] | None = None,
    amount_in: AmountUnit = "base",
    gas: bool = True,
    symbol: str | None = None,
) -> Quote:
    """The cheapest fill of `amount` over the books of `snapshots` and the `pools`.

    Gas (each pool's `gas_quote`) is a fixed cost per pool used, decided exactly; it is in
    `fixed_costs` and `total_cost`. Book legs use `markets`' taker fees (0 with a warning
    when missing). Rules (lots, minimums) are not applied to the book legs here.
    """
    started = time.perf_counter()
    side_ = check_side(side)
    amount = check_amount(amount)
    if not snapshots and not pools:
        raise InvalidInputError("nothing to route on: give at least one book or pool")
    markets = markets or {}
    notes: list[str] = []
    fees = []
    for s in snapshots:
        m = markets.get(s.venue)
        if m is None:
            notes.append(f"{s.venue}: no market metadata, taker fee assumed 0")
        fees.append(m.taker_fee if m else 0.0)
    if any(markets[s.venue].has_rules for s in snapshots if s.venue in markets):
        notes.append(
            "book legs are the continuous optimum beside the pools: lot sizes and minimums "
            "are not applied to them here (quote without --pools for rule-exact book legs)"
        )
    ladder = build_ladder([s.levels(side_) for s in snapshots], fees, side_)
    curves = [p.curve() for p in pools]
    alloc = solve_joint(ladder, curves, amount, amount_in, gas=gas)
    per_venue = np.bincount(ladder.venue, alloc.take, minlength=ladder.n_venues).astype(np.float64)
    legs = list(_legs(allocate(ladder, per_venue), [s.venue for s in snapshots], side_))
    fixed: dict[str, float] = {}
    for pool, curve, base in zip(pools, curves, alloc.pool_base, strict=True):
        if base <= 0:
            continue
        base_wei, quote_wei = pool.exact_trade(side_, float(base))
        if base_wei <= 0:
            continue
        got = base_wei / 10**pool.base_decimals
        cost = quote_wei / 10**pool.quote_decimals
        fee = cost * curve.fee if side_ == "buy" else cost * curve.fee / (1 - curve.fee)
        net = cost - fee if side_ == "buy" else cost + fee
        end = curve.root_at(side_, np.array([alloc.marginal or 0.0]))[0] ** 2
        legs.append(
            Leg(
                pool.name,
                side_,
                got,
                net / got,
                float(end),
                fee,
                cost,
                0.0,
                1,
                ("pool swap",),
            )
        )
        if curve.gas > 0:
            fixed[pool.name] = curve.gas
    filled = sum(leg.amount for leg in legs)
    spent = sum(leg.cost for leg in legs)
    gas_total = sum(fixed.values())
    total = spent + gas_total if side_ == "buy" else spent - gas_total
    legs = [dataclasses.replace(leg, share=leg.amount / filled if filled else 0.0) for leg in legs]
    achieved = spent if amount_in == "quote" else filled
    unfilled = max(amount - achieved, 0.0)
    unit = 10.0 ** -min([p.base_decimals for p in pools] or [18])
    if unfilled <= max(amount * 1e-12, unit if amount_in == "base" else 0.0):
        unfilled = 0.0
    mid = consolidated_mid(list(snapshots)) if snapshots else None
    avg = total / filled if filled > 0 else None
    slip = None
    if avg is not None and mid:
        slip = (avg - mid) / mid * 1e4 * (1 if side_ == "buy" else -1)
    return Quote(
        symbol=symbol or (snapshots[0].symbol if snapshots else ""),
        side=side_,
        amount_in=amount_in,
        requested=amount,
        legs=tuple(legs),
        filled=filled,
        unfilled=unfilled,
        total_cost=total,
        total_fees=sum(leg.fee for leg in legs),
        avg_price=avg,
        marginal_price=alloc.marginal,
        mid=mid,
        slippage_bps=slip,
        warnings=tuple(notes),
        solver="exact-pools",
        compute_ms=(time.perf_counter() - started) * 1e3,
        timestamps={s.venue: s.timestamp for s in snapshots},
        fixed_costs=fixed,
    )


class PoolQuoter:
    """The executor's quoter over books and pools: `route_with_pools` on fresh state.

    Each `quote` fetches the books of the book venues not excluded (through `Router.books`:
    screened as `route()`'s are) and re-reads every pool not excluded (one batched JSON-RPC
    round trip for the pools of one node), then splits the amount across both, gas
    included. Its `venues` are the book venues followed by the pools, so an `Executor`
    sends every leg, pool legs as swaps.
    """

    def __init__(self, books: Router | None, pools: Sequence[Any], *, gas: bool = True) -> None:
        if books is None and not pools:
            raise InvalidInputError("nothing to route on: give at least one book or pool")
        self.books = books
        self.pools = list(pools)
        self.gas = gas

    @property
    def venues(self) -> list[Any]:
        return [*(self.books.venues if self.books else []), *self.pools]

    async def quote(
        self,
        symbol: str,
        side: str,
        amount: float,
        *,
        baselines: bool = False,
        exclude: Mapping[str, str] | None = None,
        fees: Mapping[str, float] | None = None,
    ) -> Quote:
        """The joint optimum of `amount` over the venues not in `exclude` (name -> reason);
        `baselines` is accepted for the `Quoter` protocol (the pool route has none)."""
        exclude = dict(exclude or {})
        snapshots: list[DepthSnapshot] = []
        markets: dict[str, Market] = {}
        excluded = dict(exclude)  # what the caller left out, and what failed here
        notes: list[str] = []
        names = {v.name for v in self.books.venues} if self.books else set()
        pools = [p for p in self.pools if p.name not in exclude]
        if self.books is not None and names - set(exclude):
            try:
                got = await self.books.books(
                    symbol,
                    {k: v for k, v in (fees or {}).items() if k in names},
                    {k: v for k, v in exclude.items() if k in names},
                )
            except (VenueError, DataError) as exc:
                if not pools:
                    raise
                # no book venue answered (or every book failed the guard): pools alone
                excluded.update({n: exclude.get(n, str(exc)) for n in names})
                notes.append(f"no book venue usable ({exc}); routed on the pools alone")
            else:
                snapshots, markets = list(got.snapshots), dict(got.markets)
                excluded.update(got.excluded)
                notes.extend(got.notes)
        if not snapshots and not pools:
            reasons = "; ".join(f"{k}: {v}" for k, v in exclude.items())
            raise InvalidInputError(f"every book and pool is excluded ({reasons})")
        if pools:
            from liquidroute.venues.pools.trading import refresh_all

            await asyncio.to_thread(refresh_all, pools)  # one batched round trip per node
        quote = route_with_pools(
            snapshots,
            [p.side for p in pools],
            side,
            amount,
            markets=markets,
            gas=self.gas,
            symbol=symbol,
        )
        return dataclasses.replace(quote, excluded=excluded, warnings=(*notes, *quote.warnings))

    async def close(self) -> None:
        if self.books is not None:
            await self.books.close()
        await asyncio.gather(*(p.close() for p in self.pools), return_exceptions=True)
