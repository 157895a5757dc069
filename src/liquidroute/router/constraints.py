"""From markets, balances and user limits to `VenueRules`, and a rule-respecting split.

`route()` calls `apply_rules` after the exact split when a rule could bind: the MILP
(`optimizer.milp`) is tried within the time budget, the exact split rounded to the rules
(`optimizer.rules.round_to_rules`) is always computed as the feasible fallback, and the
cheaper of the two wins. Each venue gets notes saying which rule shaped its leg.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from liquidroute.errors import InfeasibleConstraintsError, InvalidInputError
from liquidroute.model import FloatArray, Market, Side
from liquidroute.optimizer.curves import Ladder, build_ladder
from liquidroute.optimizer.exact import Allocation, allocate, solve_exact
from liquidroute.optimizer.milp import solve_rules
from liquidroute.optimizer.rules import VenueRules, round_to_rules


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


def venue_rules(
    venues: Sequence[str],
    markets: Mapping[str, Market],
    ladder: Ladder,
    amount: float,
    fixed_costs: Mapping[str, float] | None,
    max_venues: int | None,
    max_share: float | None,
) -> VenueRules:
    """Rule arrays for the ladder's venues from their markets and the user's limits."""
    fixed_costs = fixed_costs or {}
    _known("fixed_costs", fixed_costs, venues)
    if max_venues is not None and (int(max_venues) != max_venues or max_venues < 1):
        raise InvalidInputError(f"max_venues must be a whole number >= 1, got {max_venues!r}")
    if max_share is not None and not (0 < max_share <= 1):
        raise InvalidInputError(f"max_share must be in (0, 1] (0.5 = half), got {max_share!r}")
    n = len(venues)
    depth = ladder.depth()
    step, min_q, min_n, cap, fixed = (np.zeros(n) for _ in range(5))
    for i, venue in enumerate(venues):
        market = markets.get(venue)
        cap[i] = depth[i]
        if market is not None:
            step[i] = market.amount_step or 0.0
            min_q[i] = market.min_amount or 0.0
            min_n[i] = market.min_notional or 0.0
            if market.max_amount:
                cap[i] = min(cap[i], market.max_amount)
        if max_share is not None:
            cap[i] = min(cap[i], max_share * amount)
        if venue in fixed_costs:
            fixed[i] = _finite_nonneg("fixed_costs", venue, fixed_costs[venue])
    return VenueRules(
        step, min_q, min_n, cap, fixed, None if max_venues is None else int(max_venues)
    )


def _objective(ladder: Ladder, alloc: Allocation, rules: VenueRules) -> float:
    """Cost to minimise: spend (+ fixed) for a buy, −(proceeds − fixed) for a sell."""
    fixed = float(rules.fixed[alloc.amount > 0].sum())
    return alloc.value + fixed if ladder.side == "buy" else fixed - alloc.value


@dataclass(frozen=True, slots=True)
class RuledSplit:
    alloc: Allocation
    solver: str
    gap: float | None
    fixed: dict[str, float] = field(default_factory=dict)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)


def apply_rules(
    ladder: Ladder,
    exact: Allocation,
    rules: VenueRules,
    venues: Sequence[str],
    balance_capped: Sequence[bool],
    time_limit: float,
) -> RuledSplit:
    """The best rule-respecting split of the exact split's amount (see module doc)."""
    target = exact.filled
    fallback = allocate(ladder, round_to_rules(ladder, exact.amount, rules, target))
    bound = exact.value if ladder.side == "buy" else -exact.value  # rule-free, no fixed costs
    if fallback.filled >= target * (1 - 1e-12) and _objective(ladder, fallback, rules) <= (
        bound + 1e-12 * abs(bound)
    ):  # the rounded split costs no more than the rule-free optimum: it is optimal
        same = np.allclose(fallback.amount, exact.amount, rtol=1e-12, atol=0)
        alloc, solver, gap = fallback, "exact" if same else "rounded-optimal", 0.0
    else:
        alloc, solver, gap = fallback, "rounded-fallback", None
        # levels beyond reach of any split as good as the fallback are left out (provably;
        # only when the fallback itself fills what the solver must fill, so it is a bound)
        least = max(min(target, float(rules.cap.sum())) - float(rules.step.max(initial=0.0)), 0.0)
        prune = None
        if exact.marginal is not None and fallback.filled >= least * (1 - 1e-12):
            bound = solve_exact(ladder, least).value if ladder.side == "buy" else -exact.value
            prune = (exact.marginal, max(_objective(ladder, fallback, rules) - bound, 0.0))
        result = solve_rules(ladder, rules, target, time_limit=time_limit, prune=prune)
        if result is not None:
            # polish: fill the last lots the solver's tolerance left open, cheapest first
            solved = allocate(ladder, result.amounts)
            milp = allocate(ladder, round_to_rules(ladder, result.amounts, rules, target))
            fills_more = milp.filled > fallback.filled * (1 + 1e-9)
            fb_obj = _objective(ladder, fallback, rules)
            cheaper = _objective(ladder, milp, rules) <= fb_obj + 1e-9 * abs(fb_obj)  # ties: milp
            if fills_more or (milp.filled >= fallback.filled * (1 - 1e-9) and cheaper):
                alloc, solver, gap = milp, "milp", result.gap
                if gap is not None and not result.integer_lots:  # lots were relaxed
                    base = abs(_objective(ladder, solved, rules)) or 1.0
                    rounding = _objective(ladder, milp, rules) - _objective(ladder, solved, rules)
                    gap += max(rounding, 0.0) / base
    if alloc.filled <= 0:
        raise InfeasibleConstraintsError(_why_infeasible(ladder, rules, venues, target))
    fixed = {
        v: float(rules.fixed[i])
        for i, v in enumerate(venues)
        if alloc.amount[i] > 0 and rules.fixed[i]
    }
    notes = {}
    for i, venue in enumerate(venues):
        q, e = float(alloc.amount[i]), float(exact.amount[i])
        marks = []
        if q > 0 and balance_capped[i] and abs(q - rules.cap[i]) <= max(rules.step[i], 1e-12):
            marks.append("cut by balance")
        elif 0 < e < q and _below_minimum(ladder, rules, i, e):
            marks.append("raised to minimum")
        if q > 0 and rules.step[i] and abs(q - e) > 1e-12:
            marks.append("rounded to lot")
        if marks:
            notes[venue] = tuple(marks)
    return RuledSplit(alloc, solver, gap, fixed, notes)


def _below_minimum(ladder: Ladder, rules: VenueRules, v: int, q: float) -> bool:
    """True when q on venue v is under its minimum amount or minimum notional."""
    if q < rules.min_amount[v]:
        return True
    if not rules.min_notional[v]:
        return False
    amounts = np.zeros(ladder.n_venues)
    amounts[v] = q
    return bool(allocate(ladder, amounts).notional[v] < rules.min_notional[v])


def _why_infeasible(ladder: Ladder, rules: VenueRules, venues: Sequence[str], target: float) -> str:
    reasons = []
    for i, venue in enumerate(venues):
        need = max(rules.min_amount[i], rules.step[i])
        if rules.cap[i] <= 0:
            reasons.append(f"{venue}: no room (balance, caps or depth)")
        elif need > target or need > rules.cap[i]:
            reasons.append(f"{venue}: minimum order {need:g} exceeds what can go there")
        elif rules.min_notional[i]:
            reasons.append(f"{venue}: minimum notional {rules.min_notional[i]:g} not reachable")
    detail = "; ".join(reasons) or "the rules admit no split"
    return (
        f"no split of {target:g} obeys the venues' rules ({detail}); raise the amount or balances"
    )
