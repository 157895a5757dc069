"""Exchange rules on a split, and the greedy repair that makes any split obey them.

Per venue v (arrays indexed like the ladder's venues; 0 = no rule):

    step_v         lot: q_v must be a multiple of it
    min_amount_v   q_v = 0 or q_v ≥ min_amount_v
    min_notional_v q_v = 0 or Σ_l p_{v,l} x_{v,l} ≥ min_notional_v  (the fill's notional)
    cap_v          q_v ≤ cap_v  (depth, balance, max order size, max share, user cap)
    fixed_v        a cost charged once when q_v > 0 (withdrawal, flat fee)

plus at most `max_venues` venues with q_v > 0.

`Lattice` states the rules as integers. With g the greatest common divisor of the lots
(exact, in decimal), venue v's lot is k_v·g and its amount q_v = g·k_v·n_v with n_v ∈ ℤ.
The minimum amount and the minimum notional both become a minimum lot count m_v (the
notional Σ p·x grows with q_v, so "notional ≥ min" is "q_v ≥ the amount whose notional is
min"), the caps a maximum M_v: n_v ∈ {0} ∪ [m_v, M_v]. A venue without a lot is
continuous (k_v = 1, n_v real, in units of g). An order of T is reachable exactly only if
T/g is a sum of such k_v·n_v; `optimizer.milp.nearest_reachable` finds the nearest sums.

`round_to_rules` turns a split (typically the exact continuous optimum) into one that obeys
every rule: amounts down to the lot, legs under a minimum dropped, then the shortfall
refilled greedily from the cheapest feasible increments. It is the MILP's warm start and
the fallback for a solver failure, not an optimum.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from liquidroute.model import FloatArray, Side
from liquidroute.optimizer.curves import Ladder
from liquidroute.optimizer.exact import allocate, venue_notional


@dataclass(frozen=True, slots=True)
class VenueRules:
    """The rules of every venue, as arrays (0 where a venue has no such rule)."""

    step: FloatArray
    min_amount: FloatArray
    min_notional: FloatArray
    cap: FloatArray
    fixed: FloatArray
    max_venues: int | None = None


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


def legal_amount(ladder: Ladder, rules: VenueRules, v: int, q: float) -> bool:
    """True when q on venue v is 0 or meets its minimums and cap (its lot is not checked)."""
    if q <= 0:
        return True
    minimum = rules.min_notional.item(v)  # item: a Python float, not a numpy scalar
    return rules.min_amount.item(v) * (1 - 1e-12) <= q <= rules.cap.item(v) * (1 + 1e-12) and (
        not minimum or meets_notional(ladder, v, q, minimum)
    )


def meets_notional(ladder: Ladder, v: int, q: float, minimum: float) -> bool:
    """venue_notional(ladder, v, q) >= minimum, without the walk when the best price
    decides it: asks get dearer with depth, so a buy's notional is at least q · best ask;
    bids get cheaper, so a sell's is at most q · best bid. A margin of 1e-9 leaves the
    float rounding of the walk's sum to the walk."""
    lo = int(ladder.offsets[v])
    if lo < int(ladder.offsets[v + 1]):
        bound = q * float(ladder.price[lo])
        if ladder.side == "buy" and bound >= minimum * (1 + 1e-9):
            return True
        if ladder.side == "sell" and bound < minimum * (1 - 1e-9):
            return False
    return venue_notional(ladder, v, q) >= minimum


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
        if legal_amount(ladder, rules, v, q):
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
        if q[v] > 0 and not legal_amount(ladder, rules, v, q[v]):
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
                if add <= 0 or add > room * (1 + 1e-12):  # an empty side has no entry
                    continue
                fixed = rules.fixed[v]
            trial = q.copy()
            trial[v] += add
            if not legal_amount(ladder, rules, v, trial[v]):
                continue
            delta = float(allocate(ladder, trial).cost[v] - allocate(ladder, q).cost[v])
            unit = (sign * delta + fixed) / add
            if best is None or unit < best[0]:
                best = (unit, v, add)
        if best is None:
            break
        q[best[1]] += best[2]
    return q


def _decimal(x: float) -> Fraction:
    """x as the decimal it is meant to be (12 significant digits: 1e-05, not its binary)."""
    return Fraction(Decimal(f"{float(x):.12g}"))


@dataclass(frozen=True, slots=True)
class LotGrid:
    """The venues' lots on one grid g (see module doc): venue v takes g·k_v·n_v base units.

    `k[v]` is the lot in grid units (1 for a venue without a lot, whose n_v is then a real
    number of grid units), `integer[v]` says whether n_v must be whole.
    """

    unit: Fraction
    k: tuple[int, ...]
    integer: tuple[bool, ...]
    unit_float: float  # float(unit), read on every snap
    unit_ratio: tuple[int, int]  # (unit.numerator, unit.denominator), read on every leg

    @property
    def all_integer(self) -> bool:
        return all(self.integer)

    def units(self, amount: float) -> float:
        """`amount` base in grid units, snapped to the nearest whole unit within float noise."""
        u = float(_decimal(amount) / self.unit)
        r = round(u)
        return float(r) if r and abs(u - r) <= 1e-12 * abs(u) else u

    def amount(self, v: int, n: float) -> float:
        """Base amount of n_v on venue v (exact decimal for lots: 3 lots of 0.1 is 0.3)."""
        if self.integer[v]:  # int / int is correctly rounded: float() of the fraction
            num, den = self.unit_ratio
            return round(n) * self.k[v] * num / den
        return float(n) * self.unit_float

    def snap(self, amounts: FloatArray) -> FloatArray:
        """Amounts on their lots as exact decimals (7.41535, not 7.415349999999999)."""
        out = np.asarray(amounts, dtype=np.float64).copy()
        for v, q in enumerate(out.tolist()):
            if q > 0 and self.integer[v]:
                n = q / (self.k[v] * self.unit_float)
                if abs(n - round(n)) <= 1e-6:
                    out[v] = self.amount(v, n)
        return out

    def base(self, units: float) -> float:
        """Grid units back to base units (exact decimal when whole)."""
        if float(units).is_integer():
            return float(int(units) * self.unit)
        return float(units) * self.unit_float


@dataclass(frozen=True, slots=True)
class Lattice(LotGrid):
    """The rules in integers: the `LotGrid` and n_v ∈ {0} ∪ [min_n[v], max_n[v]];
    `usable[v]` is False when min_n > max_n."""

    min_n: FloatArray
    max_n: FloatArray

    @property
    def usable(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.min_n <= self.max_n)


def _grid(steps: list[Fraction], target: float) -> Fraction:
    if not steps:  # no lot anywhere: a fine grid, a millionth of the order
        return _decimal(target) / 1_000_000 if target > 0 else Fraction(1)
    num = 0
    den = 1
    for s in steps:
        den = den * s.denominator // math.gcd(den, s.denominator)
    for s in steps:
        num = math.gcd(num, s.numerator * (den // s.denominator))
    return Fraction(num, den)


def entry_amount(ladder: Ladder, rules: VenueRules, v: int) -> float:
    """The least q_v > 0 that meets venue v's minimum amount and minimum notional (inf if none).

    The notional N_v(q) = Σ_l p_l·min(s_l, (q − S_{l−1})⁺) is increasing and piecewise
    linear, so min_notional is reached at q = N_v⁻¹(min_notional) (interpolated exactly).
    """
    q = float(rules.min_amount[v])
    if rules.min_notional[v] > 0:
        lo, hi = int(ladder.offsets[v]), int(ladder.offsets[v + 1])
        size = ladder.size[lo:hi]
        cum_q = np.concatenate(([0.0], np.cumsum(size)))
        cum_n = np.concatenate(([0.0], np.cumsum(size * ladder.price[lo:hi])))
        if cum_n[-1] < rules.min_notional[v]:
            return math.inf
        q = max(q, float(np.interp(rules.min_notional[v], cum_n, cum_q)))
    return q


def lot_grid(steps: Sequence[float], target: float) -> LotGrid:
    """The venues' lots (`steps`, 0 for none) on their common grid, for an order of
    `target` base units (the grid depends on the order only when no venue has a lot)."""
    steps = tuple(steps)
    return _lot_grid(steps, 0.0 if max(steps, default=0.0) > 0 else target)


@functools.lru_cache(maxsize=256)
def _lot_grid(steps: tuple[float, ...], target: float) -> LotGrid:
    """`lot_grid` of these lot steps, made once (exact fractions are slow to make)."""
    fractions = [_decimal(s) if s > 0 else None for s in steps]
    unit = _grid([s for s in fractions if s is not None], target)
    k = tuple(int(s / unit) if s is not None else 1 for s in fractions)
    integer = tuple(s is not None for s in fractions)
    return LotGrid(unit, k, integer, float(unit), (unit.numerator, unit.denominator))


def lattice(
    ladder: Ladder, rules: VenueRules, target: float, grid: LotGrid | None = None
) -> Lattice:
    """The venues' rules as a `Lattice` for an order of `target` base units (on `grid`,
    `lot_grid(rules.step.tolist(), target)`, when the caller has it)."""
    n = ladder.n_venues
    grid = grid or lot_grid(rules.step.tolist(), target)
    unit, k, integer = grid.unit, grid.k, grid.integer
    steps = [_decimal(s) if s > 0 else None for s in rules.step.tolist()]
    cap = np.minimum(rules.cap, ladder.depth())
    min_n, max_n = np.zeros(n), np.zeros(n)
    u = float(unit)
    for v in range(n):
        entry = entry_amount(ladder, rules, v)
        if not integer[v]:
            min_n[v], max_n[v] = entry / u, float(cap[v]) / u
            continue
        step = float(steps[v])  # type: ignore[arg-type]
        top = math.floor(float(cap[v]) / step + 1e-9)
        while top > 0 and top * step > cap[v] * (1 + 1e-12) + 1e-15:
            top -= 1
        max_n[v] = top
        if not math.isfinite(entry):
            min_n[v] = math.inf
            continue
        low = max(1, math.ceil(entry / step - 1e-9))
        for _ in range(3):  # float noise in the inverse: check the notional itself
            if low > top or legal_amount(ladder, rules, v, float(low * steps[v])):  # type: ignore[operator]
                break
            low += 1
        min_n[v] = low
    return Lattice(unit, k, integer, u, grid.unit_ratio, min_n, max_n)


class _Venue:
    """One venue's objective slopes (±e per base unit) around an amount, for lattice_split."""

    def __init__(self, ladder: Ladder, v: int) -> None:
        lo, hi = int(ladder.offsets[v]), int(ladder.offsets[v + 1])
        self.sign = 1.0 if ladder.side == "buy" else -1.0
        self.cum = np.cumsum(ladder.size[lo:hi])
        self.eff = ladder.eff[lo:hi]
        self.q, self.c = ladder.venue_curve(v)

    def cost(self, q: float) -> float:
        return self.sign * float(np.interp(q, self.q, self.c))

    def up(self, q: float) -> tuple[float, float]:
        """(slope, room to the end of the level) just above q; slope inf past the book."""
        i = int(np.searchsorted(self.cum, q * (1 + 1e-12) + 1e-15, side="right"))
        if i >= len(self.cum):
            return math.inf, 0.0
        return self.sign * float(self.eff[i]), float(self.cum[i] - q)

    def down(self, q: float) -> tuple[float, float]:
        """(slope, amount back to the start of the level) just below q."""
        i = min(int(np.searchsorted(self.cum, q * (1 - 1e-12), side="left")), len(self.cum) - 1)
        start = float(self.cum[i - 1]) if i else 0.0
        return self.sign * float(self.eff[i]), q - start


def lattice_split(
    ladder: Ladder, lat: Lattice, amounts: FloatArray, goal: float, max_steps: int = 200
) -> FloatArray | None:
    """A split of exactly `goal` grid units on the lots, near the continuous split `amounts`.

    Only the venues `amounts` uses are used, each within [m_v, M_v] lots. The lot counts
    start at ⌊a_v/k_v⌋ (clipped to the venue's range); the residue R = goal − Σ k_v n_v is
    then filled (R > 0) with the cheapest marginal lot that fits R, or given back (R < 0)
    from the dearest, in bulk up to the end of the current level (when no lot fits, one
    lot goes past R and the other side corrects it), and pairs of venues whose
    lots divide each other exchange lots while that lowers the cost. A heuristic: the
    caller proves it against a lower bound. None when the lots cannot reach the goal so.
    """
    u = lat.unit_float
    used = [v for v in range(ladder.n_venues) if amounts[v] > 0 and lat.usable[v]]
    books = {v: _Venue(ladder, v) for v in used}
    n: dict[int, float] = {}
    for v in used:
        a = float(amounts[v]) / u
        if lat.integer[v]:
            a = math.floor(a / lat.k[v] + 1e-9)
        n[v] = min(max(a, float(lat.min_n[v])), float(lat.max_n[v]))
    ints = [v for v in used if lat.integer[v]]
    free = [v for v in used if not lat.integer[v]]

    def residue() -> float:
        return goal - sum(n[v] * lat.k[v] for v in used)

    for _ in range(max_steps):
        r = residue()
        for v in free:  # a venue without a lot absorbs any residue within its range
            new = min(max(n[v] + r, float(lat.min_n[v])), float(lat.max_n[v]))
            r -= new - n[v]
            n[v] = new
        if abs(r) <= 1e-9 * max(goal, 1.0):
            break
        if r > 0:  # add: the cheapest lot that fits r, else one lot past it (then give back)
            up = [(books[v].up(n[v] * lat.k[v] * u), v) for v in ints if n[v] < lat.max_n[v]]
            fits = [o for o in up if lat.k[o[1]] <= r + 1e-9]
            if not (fits or up):
                return None
            (slope, room), v = min(fits or up)
            if not math.isfinite(slope):
                return None
            t = min(r // lat.k[v], lat.max_n[v] - n[v], max(1.0, room // (lat.k[v] * u)))
            n[v] += max(t, 1.0)
        else:  # give back: the dearest lot that fits −r, else one lot past it (then add)
            down = [(books[v].down(n[v] * lat.k[v] * u), v) for v in ints if n[v] > lat.min_n[v]]
            fits = [o for o in down if lat.k[o[1]] <= -r + 1e-9]
            if not (fits or down):
                return None
            (slope, back), v = max(fits or down)
            t = min(-r // lat.k[v], n[v] - lat.min_n[v], max(1.0, back // (lat.k[v] * u)))
            n[v] -= max(t, 1.0)
    else:
        return None
    _exchange(books, lat, ints, n, u)
    out = np.zeros(ladder.n_venues)
    for v in used:
        out[v] = lat.amount(v, n[v])
    return out


def _exchange(
    books: dict[int, _Venue], lat: Lattice, ints: list[int], n: dict[int, float], u: float
) -> None:
    """Move one lot of a for c = k_a/k_b lots of b (or back) while that lowers the cost."""

    def cost(v: int, lots: float) -> float:
        return books[v].cost(lots * lat.k[v] * u)

    for _ in range(50):
        best: tuple[float, int, int, int] | None = None
        for a in ints:
            for b in ints:
                if a == b or lat.k[a] % lat.k[b]:
                    continue
                c = lat.k[a] // lat.k[b]
                for da in (-1, 1):
                    na, nb = n[a] + da, n[b] - da * c
                    if not (
                        lat.min_n[a] <= na <= lat.max_n[a] and lat.min_n[b] <= nb <= lat.max_n[b]
                    ):
                        continue
                    gain = cost(a, na) + cost(b, nb) - cost(a, n[a]) - cost(b, n[b])
                    if gain < -1e-12 * abs(cost(a, n[a]) + cost(b, n[b])) and (
                        best is None or gain < best[0]
                    ):
                        best = (gain, a, b, da)
        if best is None:
            return
        _, a, b, da = best
        n[a] += da
        n[b] -= da * lat.k[a] // lat.k[b]
