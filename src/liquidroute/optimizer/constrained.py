"""The rules pipeline: from markets, balances and user limits to `VenueRules`, and the
optimal rule-respecting split on integer lots (exact -> lattice -> MILP -> polish).

`route()` calls `apply_rules` after the exact split when a rule could bind:

1. exact: when the exact split obeys every rule as it is (legs on their lots, as on books
   whose levels are whole lots, minimums and caps met, no fixed cost) it is the optimum
   ("exact", `exact_on_lots`). Otherwise it is rounded to the rules
   (`rules.round_to_rules`); when that fills the whole amount at the rule-free optimum's
   cost it is optimal ("exact" / "rounded-optimal").
2. lattice: the amount in grid units (`rules.Lattice`). The continuous-lot relaxation
   (switches kept: minimums, fixed costs, max venues) is solved exactly — by the exact
   split when no switch binds, else by branch and bound over the venue sets
   (`venue_sets.relax_venue_sets`) — and put on the lots (`rules.lattice_split`). Its
   cost is proven against the relaxation's bound, or, where the lots themselves cost
   something, against a bound that sees them (`_Lots.prove`: the other venue sets cut
   off at the split's cost, its own set by a Lagrangian over lattice points).
3. MILP: when no proof closes within `mip_gap`, HiGHS solves the integer program
   (`milp.solve_rules`), seeded with the best split and pruned with the windows that
   split's cost proves (a full fill of the same amount, so a bound).
4. polish: lot counts become amounts in exact decimal arithmetic and each venue's book is
   walked again (`exact.allocate`); the gap is reported in cost terms.

An amount the lots cannot add up to is never relabelled complete: `milp.nearest_reachable`
gives the nearest reachable amounts; the route fills the one below and a warning names
both, with their unit. Orders in quote units spend at most / receive at least the budget.
The rounded split is the answer only when the solver fails ("rounded-fallback"), and a
warning says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from liquidroute.errors import InfeasibleConstraintsError, InvalidInputError
from liquidroute.model import FloatArray, Market, Side
from liquidroute.optimizer.curves import Ladder, build_ladder
from liquidroute.optimizer.exact import (
    Allocation,
    AllocationRows,
    allocate,
    fee_factors,
    solve_exact,
)
from liquidroute.optimizer.milp import nearest_reachable, solve_rules
from liquidroute.optimizer.rules import (
    Lattice,
    LotGrid,
    VenueRules,
    entry_amount,
    lattice,
    lattice_split,
    lot_grid,
    meets_notional,
    round_to_rules,
)
from liquidroute.optimizer.venue_sets import lagrange_bound, relax_venue_sets


def _finite_nonneg(name: str, venue: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{name}[{venue!r}] must be a non-negative number, got {value!r}")
    return value


def _known(name: str, mapping: Mapping[str, float], venues: Sequence[str]) -> None:
    unknown = set(mapping) - set(venues)
    if unknown:
        raise InvalidInputError(f"{name} name venues with no book: {sorted(unknown)}")


def balance_caps(
    levels: Sequence[FloatArray],
    fees: Sequence[float],
    side: Side,
    venues: Sequence[str],
    caps: list[float | None],
    balances: Mapping[str, float],
) -> list[float | None]:
    """Per-venue base caps from balances: quote for a buy (the most base C_v(q) ≤ balance
    buys, read off the venue's own cost curve), base for a sell."""
    _known("balances", balances, venues)
    out = list(caps)
    uncapped = build_ladder(levels, fees, side)
    for i, venue in enumerate(venues):
        if venue not in balances:
            continue
        balance = _finite_nonneg("balances", venue, balances[venue])
        if side == "buy":
            q, c = uncapped.venue_curve(i)
            cap = float(np.interp(balance, c, q)) if len(c) > 1 else 0.0
        else:
            cap = balance
        out[i] = cap if out[i] is None else min(cap, out[i])  # type: ignore[type-var]
    return out


class RuleRows(NamedTuple):
    """Each venue's rules as Python lists, indexed like the venues (0 where a venue states
    no such rule; `cap` is its max order size and `max_share` of the order, inf for
    none, without its book's depth): what the rules read on the hot path."""

    step: list[float]
    min_amount: list[float]
    min_notional: list[float]
    cap: list[float]
    fixed: list[float]
    max_venues: int | None

    @classmethod
    def of(cls, rules: VenueRules) -> RuleRows:
        return cls(
            rules.step.tolist(),
            rules.min_amount.tolist(),
            rules.min_notional.tolist(),
            rules.cap.tolist(),
            rules.fixed.tolist(),
            rules.max_venues,
        )

    def can_bind(self) -> bool:
        """False when the exact continuous split already obeys every rule: no venue states
        a lot, a minimum or a fixed cost, and no max_venues (a cap binds the exact split
        only through `max_share`, which the caller checks)."""
        return (
            any(self.step) or any(self.min_amount) or any(self.min_notional)
            or any(self.fixed) or self.max_venues is not None
        )  # fmt: skip

    def arrays(self, ladder: Ladder) -> VenueRules:
        """These rules as arrays, each venue's cap within its depth on `ladder`."""
        cap = list(map(min, self.cap, ladder.depth().tolist()))
        return VenueRules(
            np.array(self.step),
            np.array(self.min_amount),
            np.array(self.min_notional),
            np.array(cap),
            np.array(self.fixed),
            self.max_venues,
        )


def rule_rows(
    venues: Sequence[str],
    markets: Mapping[str, Market],
    amount: float,
    fixed_costs: Mapping[str, float] | None,
    max_venues: int | None,
    max_share: float | None,
) -> RuleRows:
    """The venues' rules from their markets and the user's limits (`max_share` of
    `amount`, the order in base units), checked."""
    fixed_costs = fixed_costs or {}
    _known("fixed_costs", fixed_costs, venues)
    if max_venues is not None and (int(max_venues) != max_venues or max_venues < 1):
        raise InvalidInputError(f"max_venues must be a whole number >= 1, got {max_venues!r}")
    if max_share is not None and not (0 < max_share <= 1):
        raise InvalidInputError(f"max_share must be in (0, 1] (0.5 = half), got {max_share!r}")
    share = math.inf if max_share is None else max_share * amount
    step, min_q, min_n, cap, fixed = [], [], [], [], []
    for venue in venues:
        market = markets.get(venue)
        if market is not None:
            step.append(market.amount_step or 0.0)
            min_q.append(market.min_amount or 0.0)
            min_n.append(market.min_notional or 0.0)
            cap.append(min(market.max_amount or math.inf, share))
        else:
            step.append(0.0)
            min_q.append(0.0)
            min_n.append(0.0)
            cap.append(share)
        charge = fixed_costs.get(venue)
        fixed.append(0.0 if charge is None else _finite_nonneg("fixed_costs", venue, charge))
    return RuleRows(step, min_q, min_n, cap, fixed, None if max_venues is None else int(max_venues))


def venue_rules(
    venues: Sequence[str],
    markets: Mapping[str, Market],
    ladder: Ladder,
    amount: float,
    fixed_costs: Mapping[str, float] | None,
    max_venues: int | None,
    max_share: float | None,
) -> VenueRules:
    """`rule_rows` as arrays (`RuleRows.arrays`), each venue's cap within its depth."""
    return rule_rows(venues, markets, amount, fixed_costs, max_venues, max_share).arrays(ladder)


def _objective(ladder: Ladder, alloc: Allocation, rules: VenueRules) -> float:
    """Cost to minimise: spend (+ fixed) for a buy, −(proceeds − fixed) for a sell."""
    fixed = float(rules.fixed[alloc.amount > 0].sum())
    return alloc.value + fixed if ladder.side == "buy" else fixed - alloc.value


def _weak_dual(ladder: Ladder, lam: float, target: float) -> float:
    """D(λ) = λT + Σ min(0, c − λ) s with c = ±e: no split of T costs less (weak duality)."""
    sign = 1.0 if ladder.side == "buy" else -1.0
    c, lam_ = sign * ladder.eff, sign * lam
    return float(lam_ * target + np.minimum(c - lam_, 0.0) @ ladder.size)


@dataclass(frozen=True, slots=True)
class RuledSplit:
    """The rule-respecting split and how it was found.

    `reachable` = (nearest below, nearest above), base units, when the lots cannot add up
    to the amount asked (the split fills the one below); None when they can.
    """

    alloc: Allocation
    solver: str
    gap: float | None
    fixed: dict[str, float] = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    reachable: tuple[float | None, float | None] | None = None


def _fills(alloc: Allocation, amount: float, lat: LotGrid) -> bool:
    """True when the split fills `amount` exactly (equal in grid units)."""
    return alloc.filled > 0 and lat.units(alloc.filled) == lat.units(amount)


_FALLBACK = (
    "the MILP solver found no solution within the time limit: the split is the exact split "
    "rounded to the rules (rounded-fallback), not proven optimal"
)


@dataclass(frozen=True, slots=True)
class _Lots:
    """One rules problem: the ladder, its rules on the lattice and the solver's limits."""

    ladder: Ladder
    rules: VenueRules
    lat: Lattice
    rounded: Allocation
    time_limit: float
    mip_gap: float

    def objective(self, alloc: Allocation) -> float:
        return _objective(self.ladder, alloc, self.rules)

    def admits(self, goal: float, inside: npt.NDArray[np.bool_]) -> bool:
        """The gcd of the set's lots divides the goal (a venue without a lot takes any)."""
        lat = self.lat
        ids = np.flatnonzero(inside).tolist()
        if not lat.all_integer and any(not lat.integer[v] for v in ids):
            return True
        return float(goal).is_integer() and int(goal) % math.gcd(*(lat.k[v] for v in ids)) == 0

    def ranges(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(least, most, lot) per venue in base units; lot 0 where the venue has none."""
        lat = self.lat
        lot = np.asarray(lat.k, dtype=float) * lat.unit_float
        low = np.where(lat.usable, lat.min_n * lot, 0.0)
        high = np.where(lat.usable, lat.max_n * lot, 0.0)
        return low, high, np.where(np.asarray(lat.integer), lot, 0.0)

    def prove(self, best: Allocation, goal: float) -> float | None:
        """The gap of `best` (a split on the lots) against a bound that sees the lots.

        Every other set of venues is bounded by the branch and bound over sets, cut off at
        best's cost; best's own set by the Lagrangian over its venues' lattice points
        (`venue_sets.lagrange_bound`) at the venues' marginal prices around best.
        """
        ladder, rules = self.ladder, self.rules
        cost = self.objective(best)
        members = np.flatnonzero(best.amount > 0).tolist()
        low, high, lot = self.ranges()
        others = relax_venue_sets(
            ladder,
            best.filled,
            low,
            high,
            rules.fixed,
            self.lat.usable,
            rules.max_venues,
            gap=self.mip_gap / 4,
            admits=partial(self.admits, goal),
            cutoff=cost,
            skip=best.amount > 0,
        )
        if others is None or math.isfinite(others.objective):
            return None
        sign = 1.0 if ladder.side == "buy" else -1.0
        prices = set()
        for v in members:
            lo, hi = int(ladder.offsets[v]), int(ladder.offsets[v + 1])
            cum = np.cumsum(ladder.size[lo:hi])
            i = int(np.searchsorted(cum, best.amount[v] * (1 - 1e-12), side="left"))
            for j in (i, i + 1):
                if j < hi - lo:
                    prices.add(sign * float(ladder.eff[lo + j]))
        own = lagrange_bound(
            ladder, members, low, high, lot, rules.fixed, best.filled, sorted(prices)
        )
        return _gap(cost, min(others.bound, own))

    def relaxation(self, goal: float) -> tuple[FloatArray, float] | None:
        """The optimum with continuous lots (binary switches): amounts and a lower bound.

        Without fixed costs, and when the exact split of the goal already meets every
        used venue's minimum, cap and the venue count, and its venues' lots can add up to
        the goal (gcd), that split is this optimum (no solver); otherwise
        `venue_sets.relax_venue_sets` solves it by branch and bound over the venues used,
        and HiGHS (`solve_rules(relaxed=True)`) if that gives up.
        """
        lat, rules = self.lat, self.rules
        exact = solve_exact(self.ladder, lat.base(goal))
        q, used = exact.amount, exact.amount > 0
        lot = np.asarray(lat.k, dtype=float) * lat.unit_float
        fits = (q >= lat.min_n * lot * (1 - 1e-12)) & (q <= lat.max_n * lot * (1 + 1e-12))
        admits = partial(self.admits, goal)
        if (
            not rules.fixed.any()
            and (rules.max_venues is None or int(used.sum()) <= rules.max_venues)
            and bool(np.all(fits[used]))
            and admits(used)
        ):
            return q, self.objective(exact)
        seeds = [used, self.rounded.amount > 0]
        if rules.max_venues is not None and int(used.sum()) > rules.max_venues:
            top = np.argsort(-q)[: rules.max_venues]
            seeds[0] = np.isin(np.arange(len(q)), top)
        sets = relax_venue_sets(
            self.ladder,
            lat.base(goal),
            np.where(lat.usable, lat.min_n * lot, 0.0),
            np.where(lat.usable, lat.max_n * lot, 0.0),
            rules.fixed,
            lat.usable,
            rules.max_venues,
            gap=self.mip_gap / 4,
            admits=admits,
            seeds=tuple(seeds),
        )
        if sets is not None:
            return sets.amounts, sets.bound  # bound inf: no split of the goal exists
        res = solve_rules(
            self.ladder,
            rules,
            lat,
            goal,
            time_limit=self.time_limit,
            mip_gap=self.mip_gap,
            relaxed=True,
        )
        if res is None or res.bound is None:
            return None
        return res.amounts, res.bound

    def solve(self, goal: float) -> tuple[Allocation, float | None, list[str]] | None:
        """The optimal split of exactly `goal` grid units: (split, gap in cost, warnings).

        The continuous-lot relaxation put on the lots (`rules.lattice_split`) is proven
        within `mip_gap` by the relaxation's bound in most cases; otherwise the full MILP
        runs, seeded with the best split known and pruned with the bound that split proves.
        None when no split of the goal is found.
        """
        ladder, lat = self.ladder, self.lat
        relax = self.relaxation(goal)
        if relax is not None and relax[1] == math.inf:
            return None  # even with continuous lots no split holds the goal
        best: Allocation | None = None
        if relax is not None:
            split = lattice_split(ladder, lat, relax[0], goal)
            best = None if split is None else allocate(ladder, split)
        if _fills(self.rounded, lat.base(goal), lat) and (
            best is None or self.objective(self.rounded) < self.objective(best)
        ):
            best = self.rounded
        if best is not None and relax is not None:
            gap = _gap(self.objective(best), relax[1])
            if gap <= self.mip_gap:
                return best, gap, []
            lots_gap = self.prove(best, goal)  # a bound that sees the lots
            if lots_gap is not None and lots_gap <= self.mip_gap:
                return best, lots_gap, []
        prune = None
        amount = lat.base(goal)
        lam = solve_exact(ladder, amount).marginal
        if best is not None and lam is not None:
            prune = (lam, max(self.objective(best) - _weak_dual(ladder, lam, amount), 0.0))
        milp = partial(
            solve_rules,
            ladder,
            self.rules,
            lat,
            goal,
            time_limit=self.time_limit,
            mip_gap=self.mip_gap,
            start=None if best is None else best.amount,
        )
        result = milp(prune=prune)
        if result is None and prune is not None:
            # the windows are a speed-up: should they ever leave the MILP without its own
            # seed (found infeasible), solve it whole rather than lose the answer
            result = milp()
        if result is None:
            return None
        alloc = allocate(ladder, result.amounts)
        if best is not None and self.objective(best) < self.objective(alloc):
            alloc = best
        bounds = [b for b in (result.bound, None if relax is None else relax[1]) if b is not None]
        proven = _gap(self.objective(alloc), max(bounds)) if bounds else None
        warnings = []
        if result.status != "optimal":
            warnings.append(
                f"the MILP stopped at its time limit ({self.time_limit:g} s): proven within "
                f"{'an unknown gap' if proven is None else f'a gap of {proven:.1e}'} of the optimum"
            )
        return alloc, proven, warnings


def _gap(objective: float, bound: float) -> float:
    """(cost − proven lower bound) / |cost|: the relative gap in cost terms."""
    return max(objective - bound, 0.0) / max(abs(objective), 1e-300)


def apply_rules(
    ladder: Ladder,
    exact: Allocation,
    rules: VenueRules,
    venues: Sequence[str],
    balance_capped: Sequence[bool],
    time_limit: float,
    *,
    mip_gap: float = 1e-9,
    unit: str = "",
    budget: float | None = None,
    budget_unit: str = "",
) -> RuledSplit:
    """The optimal rule-respecting split of the exact split's amount (see module doc).

    `mip_gap` is the relative gap in cost to prove; `unit` names the base currency in
    messages. With a `budget` (an order in quote units, `budget_unit`) a buy spends at most
    the budget, buying the most base within it; a sell receives at least the budget,
    selling the least base that does (see `_within_budget`).
    """
    target = exact.filled
    grid = lot_grid(rules.step.tolist(), target)
    done = partial(_finish, ladder, exact, rules, venues, balance_capped)
    if budget is None:
        obeying = exact_on_lots(ladder, exact, rules, grid)
        if obeying is not None:  # the rule-free optimum obeys the rules: it is optimal
            return done(obeying, "exact", 0.0)
    rounded = allocate(ladder, grid.snap(round_to_rules(ladder, exact.amount, rules, target)))
    free = exact.value if ladder.side == "buy" else -exact.value  # rule-free, no fixed costs
    if _fills(rounded, target, grid) and _objective(ladder, rounded, rules) <= (
        free + 1e-12 * abs(free)
    ):  # the rounded split costs no more than the rule-free optimum: it is optimal
        same = all(  # np.allclose(rtol=1e-12, atol=0), venue by venue
            abs(r - e) <= 1e-12 * abs(e)
            for r, e in zip(rounded.amount.tolist(), exact.amount.tolist(), strict=True)
        )
        return done(rounded, "exact" if same else "rounded-optimal", 0.0)
    lat = lattice(ladder, rules, target, grid)  # each venue's lot range: for the search
    lots = _Lots(ladder, rules, lat, rounded, time_limit, mip_gap)
    if budget is not None:
        return _within_budget(lots, exact, budget, (unit, budget_unit), done)
    goal = lat.units(target)
    on_lattice = float(goal).is_integer() or not lat.all_integer
    solved = lots.solve(goal) if on_lattice else None
    reach: tuple[float | None, float | None] | None = None
    warnings: list[str] = []
    if solved is None:
        below, above = nearest_reachable(lat, rules, goal, time_limit=time_limit)
        if below is not None and math.isclose(below, goal, rel_tol=1e-12):
            return done(rounded, "rounded-fallback", None, [_FALLBACK])  # reachable: unsolved
        reach = (
            None if below is None else lat.base(below),
            None if above is None else lat.base(above),
        )
        if not below:
            raise InfeasibleConstraintsError(
                _why_infeasible(ladder, rules, venues, target, reach[1], unit)
            )
        warnings.append(_unreachable(target, reach, unit))
        solved = lots.solve(below)
        if solved is None:
            return done(rounded, "rounded-fallback", None, [*warnings, _FALLBACK], reach)
    alloc, gap, notes = solved
    return done(alloc, "milp", gap, [*warnings, *notes], reach)


def split_on_lots(
    amounts: list[float],
    notional: list[float],
    worst: list[float],
    rules: RuleRows,
    grid: LotGrid,
) -> tuple[list[float], list[float]] | None:
    """The exact split (its legs, notionals and worst prices) on its lots, when it obeys
    every rule as it is; else None.

    Rules only remove splits, so a rule-free optimum that obeys them is the rules'
    optimum. It obeys them when every leg q_v > 0 is a whole number n_v >= 1 of lots up to
    float noise (|n_v·lot_v − q_v| <= 1e-12·q_v: the 12 significant digits `LotGrid.units`
    reads amounts to), meets its venue's minimum amount and notional, stays within its
    cap and carries no fixed cost, and at most `max_venues` legs are used: on books whose
    sizes are whole lots (a real venue's always are) the usual case.
    Each leg becomes n_v·lot_v in exact decimal arithmetic; the move δ_v (float noise)
    is taken at the price of the leg's last level, as `allocate` takes a leg's remainder:
    notional_v + δ_v·p_last. A leg's notional within 1e-9 of its minimum is left to the
    rounding and search (they walk the book), so only float noise separates this answer
    from theirs.
    """
    used = [v for v, q in enumerate(amounts) if q > 0]
    if rules.max_venues is not None and len(used) > rules.max_venues:
        return None
    snapped, notional = list(amounts), list(notional)
    for v in used:
        q = amounts[v]
        if rules.fixed[v]:
            return None
        if grid.integer[v]:
            on_lot = grid.amount(v, round(q / (grid.k[v] * grid.unit_float)))
            if abs(on_lot - q) > 1e-12 * q:
                return None
            if on_lot != q:
                notional[v] += (on_lot - q) * worst[v]
                snapped[v] = q = on_lot
        if not rules.min_amount[v] * (1 - 1e-12) <= q <= rules.cap[v] * (1 + 1e-12):
            return None
        minimum = rules.min_notional[v]
        if minimum and notional[v] < minimum * (1 + 1e-9):
            return None
    return snapped, notional


def exact_on_lots(
    ladder: Ladder, exact: Allocation, rules: VenueRules, grid: LotGrid
) -> Allocation | None:
    """`split_on_lots` of an `Allocation`: the exact split on its lots, or None; cost =
    notional·factor_v, fee = notional·f_v."""
    amounts = exact.amount.tolist()
    got = split_on_lots(
        amounts, exact.notional.tolist(), exact.worst_price.tolist(), RuleRows.of(rules), grid
    )
    if got is None:
        return None
    snapped, notional = got
    if snapped == amounts:
        return exact
    notional_a = np.array(notional)
    cost = notional_a * ladder.factor
    return Allocation(
        amount=np.array(snapped),
        notional=notional_a,
        fee=notional_a * ladder.fees,
        cost=cost,
        levels=exact.levels,
        worst_price=exact.worst_price,
        marginal=exact.marginal,
        filled=float(np.add.reduce(snapped)),
        value=float(np.add.reduce(cost)),
    )


def rows_on_lots(
    exact: AllocationRows, rules: RuleRows, fees: Sequence[float], side: Side
) -> AllocationRows | None:
    """`exact_on_lots` on the exact split as Python lists (`solve_rows`'s), with the rules
    as `rule_rows` gives them: what a quote from live books needs when its split already
    sits on its lots, without the merged ladder or any array. The same answer as
    `apply_rules` on that split, bit for bit, where it answers: it also declines a leg
    that the lots moved by more than 1e-12 or that starts below its minimum amount
    (`apply_rules` notes those legs)."""
    amounts = exact.amount
    grid = lot_grid(rules.step, exact.filled)
    if any(0 < q < least for q, least in zip(amounts, rules.min_amount, strict=True)):
        return None
    got = split_on_lots(amounts, exact.notional, exact.worst_price, rules, grid)
    if got is None:
        return None
    snapped, notional = got
    if snapped == amounts:
        return exact
    if any(s and abs(a - b) > 1e-12 for a, b, s in zip(snapped, amounts, rules.step, strict=True)):
        return None
    return AllocationRows.priced(
        snapped,
        notional,
        exact.levels,
        exact.worst_price,
        exact.marginal,
        fee_factors(fees, side),
        fees,
    )


def _within_budget(
    lots: _Lots,
    exact: Allocation,
    budget: float,
    units: tuple[str, str],
    done: Callable[..., RuledSplit],
) -> RuledSplit:
    """An order in quote units (see `apply_rules`).

    A buy spends at most the budget: the most base within it, then the cheapest split of
    that base. A sell receives at least the budget: the least base whose net proceeds
    reach it, then the best split of that base. Rules only cost, so that base is at most
    (buy) / at least (sell) the rule-free amount T of the exact split: the nearest lattice
    amount on that side of T is tried first and is the answer when it fits the budget;
    otherwise a MILP finds the base (`solve_rules(budget=...)`).
    """
    ladder, rules, lat = lots.ladder, lots.rules, lots.lat
    buy = ladder.side == "buy"
    b, q = (f" {u}" if u else "" for u in units)

    def fits(alloc: Allocation) -> bool:
        got = abs(lots.objective(alloc))
        return got <= budget * (1 + 1e-12) if buy else got >= budget * (1 - 1e-12)

    t = lat.units(exact.filled)
    goal: float | None = t
    if lat.all_integer:  # the nearest whole number of grid units on the budget's side
        goal = math.floor(t + 1e-9) if buy else math.ceil(t - 1e-9)
    solved = lots.solve(goal) if goal else None
    if solved is None:
        below, above = nearest_reachable(lat, rules, t, time_limit=lots.time_limit)
        goal = below if buy else above
        solved = lots.solve(goal) if goal else None
    if solved is None or not fits(solved[0]):
        ub = sum(float(lat.max_n[v]) * lat.k[v] for v in range(len(lat.k)) if lat.usable[v])
        upto = math.floor(t) if buy else ub
        first = solve_rules(
            ladder,
            rules,
            lat,
            upto,
            time_limit=lots.time_limit,
            mip_gap=lots.mip_gap,
            budget=budget,
        )
        goal = None if first is None else lat.units(float(first.amounts.sum()))
        if not goal:
            if first is not None or not buy:
                raise InfeasibleConstraintsError(
                    f"no split {'within' if buy else 'receiving'} {budget:.12g}{q} obeys the "
                    "venues' rules (the smallest order they accept does not fit); change "
                    "the amount"
                )
            return done(lots.rounded, "rounded-fallback", None, [_FALLBACK])
        solved = lots.solve(goal)
        if solved is None:
            return done(lots.rounded, "rounded-fallback", None, [_FALLBACK])
    alloc, gap, warnings = solved
    assert goal is not None  # solved
    achieved = abs(lots.objective(alloc))
    reach = None
    if abs(achieved - budget) > 1e-12 * budget:
        step = 1.0 if buy else -1.0
        fine = [v for v in range(len(lat.k)) if alloc.amount[v] > 0 and lat.k[v] == 1]
        if lat.all_integer and any(
            lat.min_n[v] <= round(alloc.amount[v] / lat.unit_float) + step <= lat.max_n[v]
            for v in fine
        ):  # one grid unit more (fewer) on a venue whose lot is the grid
            other: float | None = goal + step
        else:
            near = nearest_reachable(lat, rules, goal + step / 2, time_limit=lots.time_limit)
            other = near[1] if buy else near[0]
        other_base = None if not other else lat.base(other)
        reach = (lat.base(goal), other_base) if buy else (other_base, lat.base(goal))
        verb, how = ("spend", "short") if buy else ("receive", "more than asked")
        warnings = [
            *warnings,
            f"the venues' lots cannot {verb} exactly {budget:.12g}{q}: routed "
            f"{alloc.filled:.12g}{b} for {achieved:.12g}{q} ({abs(budget - achieved):.6g}{q} "
            f"{how}), the nearest the lots allow; "
            + (f"next reachable amount: {other_base:.12g}{b}" if other_base else "none other"),
        ]
    return done(alloc, "milp", gap, warnings, reach)


def _unreachable(target: float, reach: tuple[float | None, float | None], unit: str) -> str:
    below, above = reach
    u = f" {unit}" if unit else ""
    up = f"{above:.12g}{u}" if above is not None else "none (the caps are reached)"
    return (
        f"the venues' lots cannot add up to exactly {target:.12g}{u}: routed the nearest "
        f"reachable amount below, {below:.12g}{u}; nearest above: {up}"
    )


def _finish(
    ladder: Ladder,
    exact: Allocation,
    rules: VenueRules,
    venues: Sequence[str],
    balance_capped: Sequence[bool],
    alloc: Allocation,
    solver: str,
    gap: float | None,
    warnings: Sequence[str] = (),
    reach: tuple[float | None, float | None] | None = None,
) -> RuledSplit:
    """Fixed costs charged and per-venue notes saying which rule shaped each leg."""
    amounts, charge = alloc.amount.tolist(), rules.fixed.tolist()
    fixed = {v: charge[i] for i, v in enumerate(venues) if amounts[i] > 0 and charge[i]}
    notes = {}
    depth = ladder.depth().tolist() if any(balance_capped) else []
    step = rules.step.tolist()
    for i, (venue, q, e) in enumerate(zip(venues, amounts, exact.amount.tolist(), strict=True)):
        marks = []
        if q > 0 and balance_capped[i] and e >= depth[i] * (1 - 1e-12):  # held back by it
            marks.append("cut by balance")
        elif 0 < e < q and _below_minimum(ladder, rules, i, e):
            marks.append("raised to minimum")
        if q > 0 and step[i] and abs(q - e) > 1e-12:
            marks.append("rounded to lot")
        if marks:
            notes[venue] = tuple(marks)
    return RuledSplit(alloc, solver, gap, fixed, notes, tuple(warnings), reach)


def _below_minimum(ladder: Ladder, rules: VenueRules, v: int, q: float) -> bool:
    """True when q on venue v is under its minimum amount or minimum notional."""
    if q < rules.min_amount[v]:
        return True
    if not rules.min_notional[v]:
        return False
    return not meets_notional(ladder, v, q, float(rules.min_notional[v]))


def _why_infeasible(
    ladder: Ladder,
    rules: VenueRules,
    venues: Sequence[str],
    target: float,
    above: float | None = None,
    unit: str = "",
) -> str:
    u = f" {unit}" if unit else ""
    reasons = []
    for i, venue in enumerate(venues):
        need = max(entry_amount(ladder, rules, i), float(rules.step[i]))
        if rules.cap[i] <= 0:
            reasons.append(f"{venue}: no room (balance, caps or depth)")
        elif not math.isfinite(need):
            reasons.append(f"{venue}: minimum notional {rules.min_notional[i]:g} not reachable")
        elif need > target:
            reasons.append(f"{venue}: smallest order {need:.12g}{u}")
        elif need > rules.cap[i]:
            reasons.append(
                f"{venue}: smallest order {need:.12g}{u} exceeds its room {rules.cap[i]:.12g}{u}"
            )
    detail = "; ".join(reasons) or "the rules admit no split"
    least = f"; the nearest amount they accept is {above:.12g}{u}" if above else ""
    return (
        f"no split of {target:.12g}{u} obeys the venues' rules ({detail}){least}; "
        "raise the amount or balances"
    )
