"""`route()`: snapshots in, the optimal `Quote` out (no I/O, no global state)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

from liquidroute.errors import InvalidInputError
from liquidroute.model import (
    AmountUnit,
    DepthSnapshot,
    Leg,
    Market,
    Quote,
    Side,
    check_amount,
    check_side,
    snapshot_map,
)
from liquidroute.optimizer.baselines import all_baselines
from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.exact import Allocation, solve_exact
from liquidroute.router.constraints import apply_rules, balance_caps, venue_rules


def consolidated_mid(snapshots: Sequence[DepthSnapshot]) -> float | None:
    """(best bid across venues + best ask across venues) / 2, or None if a side is empty."""
    bids = [float(s.bids[0, 0]) for s in snapshots if len(s.bids)]
    asks = [float(s.asks[0, 0]) for s in snapshots if len(s.asks)]
    if not bids or not asks:
        return None
    return (max(bids) + min(asks)) / 2.0


def savings_bps(side: str, optimum: float, baseline: float | None) -> float | None:
    """How much better `optimum` is than `baseline`, in bps of the baseline (>= 0 = better)."""
    if baseline is None or baseline == 0:
        return None
    gain = baseline - optimum if side == "buy" else optimum - baseline
    return gain / abs(baseline) * 1e4


def _check_caps(caps: Mapping[str, float] | None, venues: Sequence[str]) -> list[float | None]:
    caps = caps or {}
    unknown = set(caps) - set(venues)
    if unknown:
        raise InvalidInputError(
            f"caps name venues with no snapshot: {sorted(unknown)}; routable: {list(venues)}"
        )
    out: list[float | None] = []
    for v in venues:
        cap = caps.get(v)
        if cap is not None:
            cap = float(cap)
            if not math.isfinite(cap) or cap < 0:
                raise InvalidInputError(
                    f"caps[{v!r}] must be a non-negative base amount, got {caps[v]!r}"
                )
        out.append(cap)
    return out


def _legs(
    alloc: Allocation,
    venues: Sequence[str],
    side: Side,
    notes: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[Leg, ...]:
    notes = notes or {}
    amount, notional = alloc.amount.tolist(), alloc.notional.tolist()
    worst, fee, cost = alloc.worst_price.tolist(), alloc.fee.tolist(), alloc.cost.tolist()
    levels = alloc.levels.tolist()
    return tuple(
        Leg(
            venue=venues[i],
            side=side,
            amount=amount[i],
            avg_price=notional[i] / amount[i],
            worst_price=worst[i],
            fee=fee[i],
            cost=cost[i],
            share=amount[i] / alloc.filled,
            levels=levels[i],
            notes=notes.get(venues[i], ()),
        )
        for i in range(len(venues))
        if amount[i] > 0
    )


def route(
    snapshots: Sequence[DepthSnapshot],
    side: str,
    amount: float,
    *,
    markets: Mapping[str, Market] | Sequence[Market] | None = None,
    caps: Mapping[str, float] | None = None,
    amount_in: AmountUnit = "base",
    baselines: bool = True,
    excluded: Mapping[str, str] | None = None,
    warnings: Sequence[str] = (),
    source: str = "",
    rules: bool | None = None,
    balances: Mapping[str, float] | None = None,
    fixed_costs: Mapping[str, float] | None = None,
    max_venues: int | None = None,
    max_share: float | None = None,
    time_limit: float = 1.0,
) -> Quote:
    """The cheapest way to fill `amount` across the venues of `snapshots`, fees included.

    `side` is "buy" or "sell"; `amount` is in base units, or in quote units with
    `amount_in="quote"` (spend exactly X on a buy, receive exactly X on a sell).
    `markets` supply taker fees and rules: a list of `Market`s, as `route_graph()` takes
    them (or a dict keyed by venue); a venue without one is routed at zero fee, with a
    warning. `caps` bound each venue's base amount. With `baselines=False`
    the comparison strategies are skipped (the hot path for bots).

    Venue rules apply when one could bind (`rules=None`; True forces, False ignores them):
    each leg on the venue's lot, at or above its minimum amount and notional, within its
    max order size, `balances` (quote currency for a buy, converted on that venue's own
    book; base for a sell) and `max_share` of the order; `fixed_costs` (quote) charged
    once per venue used, included in `total_cost`; at most `max_venues` venues. Solved as
    a MILP within `time_limit` seconds, else the exact split rounded to the rules; a split
    no rule allows raises `InfeasibleConstraintsError` saying why.

    When the books cannot fill `amount`, the quote fills what exists and reports the rest
    in `unfilled`; it does not raise.
    """
    started = time.perf_counter()
    side_ = check_side(side)
    amount = check_amount(amount)
    if amount_in not in ("base", "quote"):
        raise InvalidInputError(f"amount_in must be 'base' or 'quote', got {amount_in!r}")
    if not snapshots:
        raise InvalidInputError("no snapshots to route on: give at least one venue's book")
    books = snapshot_map(snapshots)
    venues = list(books)
    if markets is not None and not isinstance(markets, Mapping):  # a list: match venue+symbol
        symbols = {snap.symbol for snap in snapshots}
        markets = {m.venue: m for m in markets if m.symbol in symbols}
    markets = markets or {}
    notes = list(warnings)
    fees = []
    for v in venues:
        market = markets.get(v)
        if market is None:
            notes.append(f"{v}: no market metadata, taker fee assumed 0")
        fees.append(market.taker_fee if market else 0.0)
    levels = [books[v].levels(side_) for v in venues]
    cap_list = _check_caps(caps, venues)
    balance_capped = [bool(balances and v in balances) for v in venues]
    if balances:
        cap_list = balance_caps(levels, fees, side_, venues, cap_list, balances)
    ladder = build_ladder(levels, fees, side_, cap_list)
    alloc = solve_exact(ladder, amount, amount_in)
    solver, gap, lower_bound, lot_residue = "exact", None, None, 0.0
    fixed: dict[str, float] = {}
    leg_notes: dict[str, tuple[str, ...]] = {}
    wants_rules = rules is not False and (
        rules
        or balances
        or fixed_costs
        or max_venues is not None
        or max_share is not None
        or any(m.has_rules for m in markets.values())
    )
    if wants_rules and alloc.filled > 0:
        venue_rule = venue_rules(
            venues, markets, ladder, alloc.filled, fixed_costs, max_venues, max_share
        )
        if rules or venue_rule.can_bind() or max_share is not None:
            ruled = apply_rules(ladder, alloc, venue_rule, venues, balance_capped, time_limit)
            alloc, solver, gap = ruled.alloc, ruled.solver, ruled.gap
            fixed, leg_notes = ruled.fixed, ruled.notes
            lower_bound = solve_exact(ladder, alloc.filled).value  # no rule can beat it
            lot_residue = float(venue_rule.step.max(initial=0.0)) * (1 + 1e-9)
    fixed_total = sum(fixed.values())
    total = alloc.value + fixed_total if side_ == "buy" else alloc.value - fixed_total

    base_costs: dict[str, float | None] = {}
    saved: dict[str, float | None] = {}
    if baselines and alloc.filled > 0:
        base_costs = all_baselines(ladder, alloc.filled)
        saved = {k: savings_bps(side_, alloc.value, c) for k, c in base_costs.items()}

    achieved = total if amount_in == "quote" else alloc.filled
    unfilled = max(amount - achieved, 0.0)
    if unfilled <= amount * 1e-12:
        unfilled = 0.0
    elif solver != "exact" and unfilled < lot_residue * (
        1.0 if amount_in == "base" else 1.01 * (alloc.marginal or 0.0)
    ):
        notes.append(f"{unfilled:.8g} is below the venues' lot sizes: rounded down, not routed")
        unfilled = 0.0
    mid = consolidated_mid(list(books.values()))
    avg = total / alloc.filled if alloc.filled > 0 else None
    slip = None
    if avg is not None and mid:
        slip = (avg - mid) / mid * 1e4 * (1 if side_ == "buy" else -1)
    symbol = snapshots[0].symbol
    return Quote(
        symbol=symbol,
        side=side_,
        amount_in=amount_in,
        requested=amount,
        legs=_legs(alloc, venues, side_, leg_notes),
        filled=alloc.filled,
        unfilled=unfilled,
        total_cost=total,
        total_fees=float(alloc.fee.sum()),
        avg_price=avg,
        marginal_price=alloc.marginal,
        mid=mid,
        slippage_bps=slip,
        baselines=base_costs,
        savings_bps=saved,
        excluded=dict(excluded or {}),
        warnings=tuple(notes),
        solver=solver,
        compute_ms=(time.perf_counter() - started) * 1e3,
        timestamps={v: books[v].timestamp for v in venues},
        source=source,
        fixed_costs=fixed,
        gap=gap,
        lower_bound=lower_bound,
    )
