"""`route()`: snapshots in, the optimal `Quote` out (no I/O, no global state)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from liquidroute.errors import InvalidInputError
from liquidroute.model import (
    AmountUnit,
    DepthSnapshot,
    FloatArray,
    Leg,
    Market,
    Quote,
    Side,
    _leg_unchecked,
    _quote_unchecked,
    check_amount,
    check_side,
    snapshot_map,
)
from liquidroute.optimizer.baselines import all_baselines
from liquidroute.optimizer.constrained import (
    RuleRows,
    apply_rules,
    balance_caps,
    rows_on_lots,
    rule_rows,
)
from liquidroute.optimizer.curves import Ladder, build_ladder
from liquidroute.optimizer.exact import (
    Allocation,
    AllocationRows,
    LadderCache,
    MergedLadder,
    solve_exact,
    touched_count,
)
from liquidroute.router.options import RouteOptions, resolve_options


def consolidated_mid(snapshots: Sequence[DepthSnapshot]) -> float | None:
    """(best bid across venues + best ask across venues) / 2, or None if a side is empty."""
    bids = [s.bids.item(0) for s in snapshots if len(s.bids)]  # item(0): level 0's price
    asks = [s.asks.item(0) for s in snapshots if len(s.asks)]
    return _mid_of(bids, asks)


def _mid_of(best_bids: list[float], best_asks: list[float]) -> float | None:
    """`consolidated_mid` from each venue's best bid and best ask (empty sides left out)."""
    if not best_bids or not best_asks:
        return None
    return (max(best_bids) + min(best_asks)) / 2.0


def savings_bps(side: str, optimum: float, baseline: float | None) -> float | None:
    """How much better `optimum` is than `baseline`, in bps of the baseline (>= 0 = better)."""
    if baseline is None or baseline == 0:
        return None
    gain = baseline - optimum if side == "buy" else optimum - baseline
    return gain / abs(baseline) * 1e4


def _legs(
    alloc: AllocationRows | Allocation,
    venues: Sequence[str],
    side: Side,
    notes: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[Leg, ...]:
    """One Leg per venue with a positive amount q, in the venues' order: avg_price =
    notional / q, share = q / filled. Built by `_leg_unchecked` (these values are computed
    here, not given): the same Legs as the public constructor, at about half the cost."""
    if isinstance(alloc, Allocation):
        alloc = AllocationRows.of(alloc)
    filled = alloc.filled
    rows = zip(
        venues,
        alloc.amount,
        alloc.notional,
        alloc.worst_price,
        alloc.fee,
        alloc.cost,
        alloc.levels,
        strict=True,
    )
    leg = _leg_unchecked
    if notes:
        return tuple(
            [
                leg(v, side, q, n / q, w, f, c, q / filled, k, notes.get(v, ()))
                for v, q, n, w, f, c, k in rows
                if q > 0
            ]
        )
    return tuple(
        [
            leg(v, side, q, n / q, w, f, c, q / filled, k, ())
            for v, q, n, w, f, c, k in rows
            if q > 0
        ]
    )


def _has_rules(market: Market) -> bool:
    """`Market.has_rules`, inlined for the hot path."""
    return (
        market.amount_step is not None
        or market.min_amount is not None
        or market.max_amount is not None
        or market.min_notional is not None
    )


def _rules_reach(
    levels: Sequence[FloatArray],
    markets: Sequence[Market | None],
    amount: float,
    cache: LadderCache | None,
) -> list[FloatArray]:
    """Each venue's levels cut to those an order of `amount` base can use under its rules:
    up to the first level whose running size reaches

        r_v = 2 · (amount + lot_v + min_amount_v + min_notional_v / best price_v),

    all of them on a thinner book. No leg the rules can choose needs more: a leg is at
    most the order rounded up to a lot (the nearest reachable amount above it included),
    and a venue's minimum is met within its first min_amount + min_notional / price.
    Every leg below r_v / 2 leaves the cut's depth (a cap of at least r_v) slack, so
    the rules' search, its bounds and its answer are those on the whole book — at the cost
    of tens of levels, not thousands (the oracle tests check the answers on deep books).
    With a `cache`, the cut reaches the power of two at or above r_v (more levels are
    as exact) and is the same view object for the same book and octave of r_v, so the
    ladder built on it is cached like any other, for a new amount too.
    """
    out = []
    for lv, market in zip(levels, markets, strict=True):
        if not len(lv):
            out.append(lv)
            continue
        reach = amount
        if market is not None:
            reach += (market.amount_step or 0.0) + (market.min_amount or 0.0)
            if market.min_notional:
                reach += market.min_notional / lv.item(0)
        if cache is not None:
            out.append(cache.reaching(lv, 2.0 * reach))
        else:
            out.append(lv[: touched_count(lv, 1.0, 2.0 * reach)])
    return out


@dataclass(frozen=True, slots=True)
class _BookFacts:
    """What route() reads from the snapshots and their markets, whatever the order: the
    venues in order, each one's asks and bids, taker fee (an override, else its market's,
    else 0 with a note) and whether its market has rules, the consolidated mid and the
    timestamps. Read once per set of book versions through `LadderCache.facts`."""

    venues: list[str]
    asks: list[FloatArray]
    bids: list[FloatArray]
    fees: list[float]
    any_rules: bool
    notes: tuple[str, ...]
    mid: float | None
    stamps: dict[str, float | None]

    @classmethod
    def of(
        cls,
        snapshots: Sequence[DepthSnapshot],
        markets: Mapping[str, Market],
        fee_over: Mapping[str, float] | None = None,
    ) -> _BookFacts:
        books = snapshot_map(snapshots)
        asks, bids, fees, notes = [], [], [], []
        best_bids: list[float] = []
        best_asks: list[float] = []
        any_rules = False
        for v, snap in books.items():
            asks.append(snap.asks)
            bids.append(snap.bids)
            if len(snap.bids):
                best_bids.append(snap.bids.item(0))  # item(0): level 0's price
            if len(snap.asks):
                best_asks.append(snap.asks.item(0))
            market = markets.get(v)
            rate = fee_over.get(v) if fee_over else None
            if market is not None:
                any_rules = any_rules or _has_rules(market)
                fees.append(market.taker_fee if rate is None else rate)
            else:
                if rate is None:
                    notes.append(f"{v}: no market metadata, taker fee assumed 0")
                fees.append(rate or 0.0)
        return cls(
            list(books),
            asks,
            bids,
            fees,
            any_rules,
            tuple(notes),
            _mid_of(best_bids, best_asks),
            {v: snap.timestamp for v, snap in books.items()},
        )


def _rules_bind(limits: RuleRows, opts: RouteOptions) -> bool:
    """Whether route() applies the rules to the exact split: forced (`rules=True`), a
    max_share, or a rule some venue states that the exact split may break."""
    return bool(opts.rules) or opts.max_share is not None or limits.can_bind()


def _rules_on_rows(
    merged: MergedLadder,
    amount: float,
    venues: Sequence[str],
    markets: Mapping[str, Market],
    fees: Sequence[float],
    side: Side,
    opts: RouteOptions,
) -> tuple[tuple[AllocationRows, float | None, float | None] | None, RuleRows | None]:
    """The rules' answer from the exact split as Python lists, when it obeys every rule
    as it is (`constrained.rows_on_lots`): (split, gap, lower bound), the very figures
    route() gets from `apply_rules` for it; None leaves the order to the ladder and
    `apply_rules`. No rule can beat the exact split of the amount filled: that is the
    lower bound (0 gap), solved again when the lots moved the filled amount by float
    noise. Beside it, the rules of this base `amount` when they were read (`rule_rows`),
    for `apply_rules` when the answer is None."""
    exact = merged.solve_rows(amount)
    if exact.filled <= 0:
        return (exact, None, None), None
    limits = rule_rows(venues, markets, amount, opts.fixed_costs, opts.max_venues, opts.max_share)
    if not _rules_bind(limits, opts):
        return (exact, None, None), limits  # no rule to apply: apply_rules is not called
    taken = rows_on_lots(exact, limits, fees, side)
    if taken is None:
        return None, limits
    bound = exact.value if taken.filled == amount else merged.solve_rows(taken.filled).value
    return (taken, 0.0, bound), limits


def route(
    snapshots: Sequence[DepthSnapshot],
    side: str,
    amount: float,
    *,
    markets: Mapping[str, Market] | Sequence[Market] | None = None,
    options: RouteOptions | None = None,
    cache: LadderCache | None = None,
    excluded: Mapping[str, str] | None = None,
    warnings: Sequence[str] = (),
    source: str = "",
    caps: Mapping[str, float] | None = None,
    amount_in: AmountUnit | None = None,
    baselines: bool | None = None,
    rules: bool | None = None,
    balances: Mapping[str, float] | None = None,
    fixed_costs: Mapping[str, float] | None = None,
    fees: Mapping[str, float] | None = None,
    max_venues: int | None = None,
    max_share: float | None = None,
    time_limit: float | None = None,
    mip_gap: float | None = None,
) -> Quote:
    """The cheapest way to fill `amount` across the venues of `snapshots`, fees included.

    `side` is "buy" or "sell"; `amount` is in base units, or in quote units with
    `amount_in="quote"` (spend exactly X on a buy, receive exactly X on a sell).
    `markets` supply taker fees and rules: a list of `Market`s, as `route_graph()` takes
    them (or a dict keyed by venue); `fees` overrides a venue's taker fee; a venue with
    neither is routed at zero fee, with a warning. `caps` bound each venue's base amount.
    With `baselines=False` the comparison strategies are skipped (the hot path for bots).
    Every option may come in `options` (a `RouteOptions`) or as its keyword; a keyword
    that is not None wins.

    Venue rules apply when one could bind (`rules=None`; True forces, False ignores them):
    each leg on the venue's lot, at or above its minimum amount and notional, within its
    max order size, `balances` (quote currency for a buy, converted on that venue's own
    book; base for a sell) and `max_share` of the order; `fixed_costs` (quote) charged
    once per venue used, included in `total_cost`; at most `max_venues` venues. Solved as
    a MILP within `time_limit` seconds, else the exact split rounded to the rules; a split
    no rule allows raises `InfeasibleConstraintsError` saying why.

    `cache` (a `LadderCache`) keeps each book version's merged ladder and what route()
    reads from the snapshots (levels, fees, mid): a repeated order on the same snapshot
    and market objects (same fees, caps) skips reading, building and sorting them and gets
    the same answer.

    When the books cannot fill `amount`, the quote fills what exists and reports the rest
    in `unfilled`; it does not raise.
    """
    started = time.perf_counter()
    side_: Side = "buy" if side == "buy" else "sell" if side == "sell" else check_side(side)
    amount = check_amount(amount)
    if type(options) is RouteOptions and (
        amount_in is None
        and caps is None
        and baselines is None
        and rules is None
        and balances is None
        and fixed_costs is None
        and fees is None
        and max_venues is None
        and max_share is None
        and time_limit is None
        and mip_gap is None
    ):
        opts = options  # resolve_options' answer: nothing to apply (Router's every quote)
    else:
        opts = resolve_options(
            options,
            amount_in=amount_in,
            caps=caps,
            baselines=baselines,
            rules=rules,
            balances=balances,
            fixed_costs=fixed_costs,
            fees=fees,
            max_venues=max_venues,
            max_share=max_share,
            time_limit=time_limit,
            mip_gap=mip_gap,
        )
    # the resolved options under the names the rest of route() uses
    amount_in, balances, fixed_costs = opts.amount_in, opts.balances, opts.fixed_costs
    rules, max_venues, max_share = opts.rules, opts.max_venues, opts.max_share
    time_limit = opts.time_limit
    if not snapshots:
        raise InvalidInputError("no snapshots to route on: give at least one venue's book")
    if markets is not None and not isinstance(markets, Mapping):  # a list: match venue+symbol
        symbols = {snap.symbol for snap in snapshots}
        markets = {m.venue: m for m in markets if m.symbol in symbols}
    markets = markets or {}
    fee_over = opts.fees
    if cache is not None and not fee_over:  # the same book versions: read them once
        facts = cache.facts(
            (*snapshots, *[markets.get(s.venue) for s in snapshots]),
            lambda: _BookFacts.of(snapshots, markets),
        )
    else:
        facts = _BookFacts.of(snapshots, markets, fee_over)
    venues = facts.venues
    if opts.caps or balances or fixed_costs or fee_over:
        opts.check_venues(venues)
    levels = facts.asks if side_ == "buy" else facts.bids
    fee_list = facts.fees
    any_rules = facts.any_rules
    notes = [*warnings, *facts.notes]
    wants_rules = rules is not False and bool(
        rules
        or balances
        or fixed_costs
        or max_venues is not None
        or max_share is not None
        or any_rules
    )
    solver, gap, lower_bound = "exact", None, None
    rows: AllocationRows | None = None  # the split as Python lists, for the legs
    cut = wants_rules and not opts.baselines and amount_in == "base"
    # the live hot path with venue rules: the exact split as lists on the whole books (the
    # touched merge reads only what it reaches) is the answer when it obeys the rules as it
    # is; only the ladder and apply_rules below need the rules' cut
    taken = False
    limits: RuleRows | None = None  # the rules, once read
    if cut and cache is not None and not (balances or opts.caps):
        merged = cache.merged(levels, fee_list, side_)
        found, limits = _rules_on_rows(merged, amount, venues, markets, fee_list, side_, opts)
        if found is not None:
            (rows, gap, lower_bound), taken = found, True
    if cut and not taken:
        levels = _rules_reach(levels, [markets.get(v) for v in venues], amount, cache)
    cap_list: list[float | None] | None = [opts.caps.get(v) for v in venues] if opts.caps else None
    balance_capped = [v in balances for v in venues] if balances else [False] * len(venues)
    if balances:
        cap_list = balance_caps(
            levels, fee_list, side_, venues, cap_list or [None] * len(venues), balances
        )
    # the whole ladder is needed by the rules and the baselines; through the cache, the
    # exact split alone first reads only the levels it can reach (`solve_touched`, the
    # same answer bit for bit: a live book's new version is not merged whole)
    ladder: Ladder | None = None
    if cache is None:
        ladder = build_ladder(levels, fee_list, side_, cap_list)
        alloc = solve_exact(ladder, amount, amount_in)
    elif not taken:  # a repeated order on the same books skips the build and the sort
        merged = cache.merged(levels, fee_list, side_, cap_list)
        if wants_rules or opts.baselines:
            ladder = merged.ladder
            alloc = merged.solve(amount, amount_in)
        else:  # the live hot path: a shallow order on a new version makes no numpy array
            rows = merged.solve_rows(amount, amount_in)
    reachable: tuple[float | None, float | None] | None = None
    fixed: dict[str, float] = {}
    leg_notes: dict[str, tuple[str, ...]] = {}
    if wants_rules and not taken and alloc.filled > 0:
        assert ladder is not None
        exact_value = alloc.value
        # max_share is a share of the order: its base amount, or what the budget buys
        order_base = amount if amount_in == "base" else alloc.filled
        if limits is None:  # else read by the rows' attempt, for this same base amount
            limits = rule_rows(venues, markets, order_base, fixed_costs, max_venues, max_share)
        if _rules_bind(limits, opts):
            base_ccy, _, quote_ccy = snapshots[0].symbol.partition("/")
            ruled = apply_rules(
                ladder, alloc, limits.arrays(ladder), venues, balance_capped, time_limit,
                unit=base_ccy,
                budget=amount if amount_in == "quote" else None,
                budget_unit=quote_ccy.split(":")[0], mip_gap=opts.mip_gap,
            )  # fmt: skip
            alloc, solver, gap = ruled.alloc, ruled.solver, ruled.gap
            fixed, leg_notes, reachable = ruled.fixed, ruled.notes, ruled.reachable
            notes.extend(ruled.warnings)
            # no rule can beat the exact split of what is filled (already solved when
            # that is the amount asked: the split above is solve_exact's, bit for bit)
            lower_bound = (
                exact_value
                if alloc.filled == amount and amount_in == "base"
                else solve_exact(ladder, alloc.filled).value
            )
    base_costs: dict[str, float | None] = {}
    saved: dict[str, float | None] = {}
    if opts.baselines and alloc.filled > 0:
        assert ladder is not None
        base_costs = all_baselines(ladder, alloc.filled)
        saved = {k: savings_bps(side_, alloc.value, c) for k, c in base_costs.items()}
    if rows is None:
        rows = AllocationRows.of(alloc)
    fixed_total = sum(fixed.values())
    total = rows.value + fixed_total if side_ == "buy" else rows.value - fixed_total

    achieved = total if amount_in == "quote" else rows.filled
    unfilled = max(amount - achieved, 0.0)
    if unfilled <= amount * 1e-12:
        unfilled = 0.0
    mid = facts.mid
    avg = total / rows.filled if rows.filled > 0 else None
    slip = None
    if avg is not None and mid:
        slip = (avg - mid) / mid * 1e4 * (1 if side_ == "buy" else -1)
    symbol = snapshots[0].symbol
    return _quote_unchecked(  # the values below are computed here, not given
        symbol=symbol,
        side=side_,
        amount_in=amount_in,
        requested=amount,
        legs=_legs(rows, venues, side_, leg_notes),
        filled=rows.filled,
        unfilled=unfilled,
        total_cost=total,
        total_fees=rows.total_fee,
        avg_price=avg,
        marginal_price=rows.marginal,
        mid=mid,
        slippage_bps=slip,
        baselines=base_costs,
        savings_bps=saved,
        excluded=dict(excluded or {}),
        warnings=tuple(notes),
        solver=solver,
        compute_ms=(time.perf_counter() - started) * 1e3,
        timestamps=dict(facts.stamps),
        source=source,
        fixed_costs=fixed,
        gap=gap,
        lower_bound=lower_bound,
        reachable=reachable,
    )
