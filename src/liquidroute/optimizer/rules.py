"""Exchange rules on a split, and the greedy repair that makes any split obey them.

Per venue v (arrays indexed like the ladder's venues; 0 = no rule):

    step_v         lot: q_v must be a multiple of it
    min_amount_v   q_v = 0 or q_v ≥ min_amount_v
    min_notional_v q_v = 0 or Σ_l p_{v,l} x_{v,l} ≥ min_notional_v  (the fill's notional)
    cap_v          q_v ≤ cap_v  (depth, balance, max order size, max share, user cap)
    fixed_v        a cost charged once when q_v > 0 (withdrawal, flat fee)

plus at most `max_venues` venues with q_v > 0. `round_to_rules` turns a split (typically
the exact continuous optimum) into one that obeys every rule: amounts down to the lot,
legs under a minimum dropped, then the shortfall refilled greedily from the cheapest
feasible increments. It is the warm start and the guaranteed-feasible fallback of the
MILP, not an optimum: the MILP's answer is never worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from liquidroute.model import FloatArray, Side
from liquidroute.optimizer.curves import Ladder
from liquidroute.optimizer.exact import allocate


@dataclass(frozen=True, slots=True)
class VenueRules:
    """The rules of every venue, as arrays (0 where a venue has no such rule)."""

    step: FloatArray
    min_amount: FloatArray
    min_notional: FloatArray
    cap: FloatArray
    fixed: FloatArray
    max_venues: int | None = None

    def can_bind(self) -> bool:
        """False when the exact continuous split already obeys every rule."""
        return bool(
            self.step.any() or self.min_amount.any() or self.min_notional.any()
            or self.fixed.any() or self.max_venues is not None
        )  # fmt: skip


def round_amount(amount: float, step: float | None) -> float:
    """`amount` rounded down to a multiple of the lot `step`, in exact decimal arithmetic.

    Float noise within 1e-9 of a lot (0.29999999999999999 for 3 lots of 0.1) counts as
    that lot: it comes from summing levels, not from the order.
    """
    if not step:
        return amount
    d_step = Decimal(repr(float(step)))
    lots = (Decimal(repr(float(amount))) / d_step + Decimal("1e-9")).to_integral_value(ROUND_FLOOR)
    return float(lots * d_step)


def round_limit_price(price: float, tick: float | None, side: Side) -> float:
    """A limit price on the tick, rounded away from the book: up for a buy, down for a sell."""
    if not tick:
        return price
    d_tick = Decimal(repr(float(tick)))
    mode = ROUND_CEILING if side == "buy" else ROUND_FLOOR
    return float((Decimal(repr(float(price))) / d_tick).to_integral_value(mode) * d_tick)


def floor_lot(q: float, step: float) -> float:
    """q rounded down to a multiple of step (step 0: unchanged)."""
    return round_amount(q, step) if step > 0 else q


def _ceil_lot(q: float, step: float) -> float:
    if step <= 0:
        return q
    return math.ceil(q / step * (1 - 1e-12) - 1e-9) * step


def _notional(ladder: Ladder, v: int, q: float) -> float:
    amounts = np.zeros(ladder.n_venues)
    amounts[v] = q
    return float(allocate(ladder, amounts).notional[v])


def _legal(ladder: Ladder, rules: VenueRules, v: int, q: float) -> bool:
    return q <= 0 or (
        q >= rules.min_amount[v] * (1 - 1e-12)
        and q <= rules.cap[v] * (1 + 1e-12)
        and (not rules.min_notional[v] or _notional(ladder, v, q) >= rules.min_notional[v])
    )


def _min_entry(ladder: Ladder, rules: VenueRules, v: int) -> float:
    """The smallest legal non-zero amount on venue v (inf if none)."""
    q = float(max(rules.min_amount[v], rules.step[v]))
    if rules.min_notional[v]:
        best_price = (
            float(ladder.price[ladder.offsets[v]])
            if ladder.offsets[v + 1] > ladder.offsets[v]
            else 0
        )
        if best_price <= 0:
            return math.inf
        q = max(q, rules.min_notional[v] / best_price)
    q = _ceil_lot(q, rules.step[v]) if rules.step[v] else q
    for _ in range(50):  # deeper levels have worse prices: the notional may need more
        if q > rules.cap[v] * (1 + 1e-12):
            return math.inf
        if _legal(ladder, rules, v, q):
            return q
        q = _ceil_lot(q * 1.001 + float(rules.step[v]), float(rules.step[v]))
    return math.inf


def round_to_rules(
    ladder: Ladder, amounts: FloatArray, rules: VenueRules, target: float
) -> FloatArray:
    """A split obeying every rule, close to `amounts`, filling as much of `target` as it can."""
    n = ladder.n_venues
    sign = 1.0 if ladder.side == "buy" else -1.0
    q = np.array(
        [floor_lot(min(float(a), rules.cap[v]), rules.step[v]) for v, a in enumerate(amounts)]
    )
    for v in range(n):
        if q[v] > 0 and not _legal(ladder, rules, v, q[v]):
            q[v] = 0.0
    if rules.max_venues is not None and np.count_nonzero(q) > rules.max_venues:
        keep = np.argsort(-q)[: rules.max_venues]
        mask = np.zeros(n, dtype=bool)
        mask[keep] = True
        q[~mask] = 0.0
    # refill the shortfall from the cheapest legal increments
    for _ in range(10 * len(ladder.size) + 10):
        room = target - q.sum()
        if room <= target * 1e-12:
            break
        best: tuple[float, int, float] | None = None
        used = np.count_nonzero(q)
        for v in range(n):
            if q[v] > 0:
                add = min(room, rules.cap[v] - q[v])
                lo, hi = ladder.offsets[v], ladder.offsets[v + 1]
                cum = np.cumsum(ladder.size[lo:hi])
                k = int(np.searchsorted(cum, q[v] * (1 + 1e-12), side="right"))
                if k < len(cum):  # to the end of the current level at most
                    add = min(add, cum[k] - q[v])
                add = floor_lot(add, rules.step[v])
                if add <= 0:
                    continue
                fixed = 0.0
            else:
                if rules.max_venues is not None and used >= rules.max_venues:
                    continue
                add = _min_entry(ladder, rules, v)
                if add > room * (1 + 1e-12):
                    continue
                fixed = rules.fixed[v]
            trial = q.copy()
            trial[v] += add
            if not _legal(ladder, rules, v, trial[v]):
                continue
            delta = float(allocate(ladder, trial).cost[v] - allocate(ladder, q).cost[v])
            unit = (sign * delta + fixed) / add
            if best is None or unit < best[0]:
                best = (unit, v, add)
        if best is None:
            break
        q[best[1]] += best[2]
    return q
