"""Exact joint split across order books and concentrated-liquidity pools, gas included.

A pool with fee f trading base against quote is, inside a price range [a, b] of √p (p =
quote per base) holding liquidity L, the constant-product curve of virtual reserves
x = L/√p (base), y = L·√p (quote). Moving the price from √p₀ to √p₁ > √p₀ (a buy) gives

    base out  = L·(1/√p₀ − 1/√p₁),      quote in = L·(√p₁ − √p₀)/(1 − f),

and the marginal all-in price at √p₁ is λ = p₁/(1 − f). A sell mirrors it: base in
L·(1/√p₁ − 1/√p₀)/(1 − f), quote out L·(√p₀ − √p₁), marginal proceeds λ = p₁·(1 − f).
Crossing a range boundary changes L (the ticks' liquidityNet). Uniswap v2 is one range
(0, ∞) with L = √(R_base·R_quote).

Joint problem (buy Q base; sell mirrors, maximising proceeds): books' levels e_l (fee-
adjusted, sizes s_l) and pools P,

    minimise  Σ_l e_l·x_l + Σ_P C_P(q_P) + Σ_P g_P·[q_P > 0]
    s.t.      Σ_l x_l + Σ_P q_P = Q,  0 ≤ x_l ≤ s_l,  q_P ≥ 0,

with C_P the (convex) pool cost curves and g_P the gas of a swap (fixed cost per pool
used). Without gas every curve is convex and separable: the optimum equalises marginal
prices. Each pool then trades until its marginal price reaches the common λ, in closed
form, and the books take every level with e_l < λ. The total amount supplied at λ,

    F(λ) = Σ_{e_l < λ} s_l + Σ_P q_P(λ),

is monotone; between consecutive breakpoints (book prices, pool start prices, pool range
boundaries) no book level changes and every pool stays in one range, so there
q_P(λ) = c_P + d_P·λ^{-1/2} (and the cost c'_P + d'_P·λ^{1/2}) exactly. λ* is found by
evaluating F at every breakpoint (vectorised) and solving the two-term form inside the
segment that holds Q — no sampling, no bisection tolerance. At λ* either a pool range is
interior (every level with e_l ≤ λ* full) or λ* is a book price whose levels take the rest.
λ* is the certificate: no level cheaper than λ* is left, no pool's marginal price is below
it, none above it is used (KKT).

Gas makes the problem mixed-integer: for each subset S of pools the problem restricted to S
is the convex one above, so the optimum is min over S of (its convex optimum + Σ_{P∈S} g_P),
counting g_P only for pools that trade. The per-pool amounts at every breakpoint are computed
once, so each subset costs one vector sum: exact for up to `MAX_GAS_POOLS` pools.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from liquidroute.model import AmountUnit, FloatArray, Side
from liquidroute.optimizer.curves import IntArray, Ladder

MAX_GAS_POOLS = 12


@dataclass(frozen=True, slots=True)
class PoolCurve:
    """A pool's liquidity profile in base/quote units.

    `roots` are the ascending range boundaries of √p (p = quote per base; the first may be
    0 and the last inf), `liquidity[i]` the L between roots[i] and roots[i+1], `root` the
    current √p, `fee` the pool fee as a fraction, `gas` the quote cost of one swap.
    """

    name: str
    roots: FloatArray
    liquidity: FloatArray
    root: float
    fee: float
    gas: float = 0.0
    _paths: dict[str, _Path] = field(default_factory=dict, repr=False, compare=False)

    def path(self, side: Side) -> _Path:
        """The trading path for `side`, built once (the curve is immutable)."""
        path = self._paths.get(side)
        if path is None:
            path = self._paths[side] = _Path(self, side)
        return path

    def __post_init__(self) -> None:
        if len(self.roots) != len(self.liquidity) + 1 or np.any(np.diff(self.roots) <= 0):
            raise ValueError(f"pool {self.name}: roots must ascend, one more than ranges")
        if not self.roots[0] <= self.root <= self.roots[-1]:
            raise ValueError(f"pool {self.name}: the current price lies outside its ranges")
        if not 0 <= self.fee < 1 or np.any(self.liquidity < 0):
            raise ValueError(f"pool {self.name}: fee must be in [0, 1) and liquidity >= 0")

    @property
    def price(self) -> float:
        return self.root * self.root

    def _path(self, side: Side) -> tuple[FloatArray, FloatArray]:
        """Boundaries from the current √p in trading direction, and L on each step."""
        if side == "buy":
            k = int(np.searchsorted(self.roots, self.root, side="right")) - 1
            k = min(k, len(self.liquidity) - 1)
            bounds = np.concatenate(([self.root], self.roots[k + 1 :]))
            return bounds, self.liquidity[k:]
        k = int(np.searchsorted(self.roots, self.root, side="left"))
        k = max(k, 1)
        bounds = np.concatenate(([self.root], self.roots[:k][::-1]))
        return bounds, self.liquidity[:k][::-1]

    def marginal(self, side: Side, roots: FloatArray) -> FloatArray:
        """λ at each √p: p/(1 − f) for a buy, p·(1 − f) for a sell."""
        p = roots * roots
        out: FloatArray = p / (1 - self.fee) if side == "buy" else p * (1 - self.fee)
        return out

    def root_at(self, side: Side, lam: FloatArray) -> FloatArray:
        out: FloatArray = np.sqrt(lam * (1 - self.fee) if side == "buy" else lam / (1 - self.fee))
        return out

    def trade(self, side: Side, lam: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(base amount, quote amount) traded when the marginal price reaches each λ.

        Buy: base out and quote in (fee included); sell: base in (fee included) and quote
        out. Zero where λ is not past the pool's current marginal price.
        """
        bounds, liq = self._path(side)
        lam = np.asarray(lam, dtype=np.float64)
        target = self.root_at(side, lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / bounds
            if side == "buy":
                base_steps = liq * (inv[:-1] - inv[1:])
                quote_steps = liq * (bounds[1:] - bounds[:-1]) / (1 - self.fee)
                target = np.clip(target, bounds[0], bounds[-1])
                k = np.searchsorted(bounds, target, side="right") - 1
            else:
                base_steps = liq * (inv[1:] - inv[:-1]) / (1 - self.fee)
                quote_steps = liq * (bounds[:-1] - bounds[1:])
                target = np.clip(target, bounds[-1], bounds[0])
                k = np.searchsorted(-bounds, -target, side="right") - 1
            k = np.clip(k, 0, len(liq) - 1)
            base_steps = np.nan_to_num(base_steps, posinf=np.inf)
            cum_base = np.concatenate(([0.0], np.cumsum(base_steps)))
            cum_quote = np.concatenate(([0.0], np.cumsum(quote_steps)))
            start = bounds[k]
            lk = liq[k]
            if side == "buy":
                base = cum_base[k] + lk * (1.0 / start - 1.0 / target)
                quote = cum_quote[k] + lk * (target - start) / (1 - self.fee)
            else:
                base = cum_base[k] + lk * (1.0 / target - 1.0 / start) / (1 - self.fee)
                quote = cum_quote[k] + lk * (start - target)
        base = np.where(lk > 0, base, cum_base[k])
        quote = np.where(lk > 0, quote, cum_quote[k])
        return np.nan_to_num(base), np.nan_to_num(quote)

    def breakpoints(self, side: Side) -> FloatArray:
        """λ at the current price and at every range boundary in trading direction."""
        bounds, _ = self._path(side)
        finite = bounds[np.isfinite(bounds) & (bounds > 0)]
        return self.marginal(side, finite)


@dataclass(frozen=True, slots=True)
class JointAllocation:
    """The optimum: per book level and per pool, the common marginal price and totals.

    `take` is indexed like the ladder's levels; `pool_base`/`pool_quote` like the pools
    (quote = paid on a buy, received on a sell, fees included; gas apart in `gas`).
    `value` is Σ book cost + Σ pool quote ± gas (buy: + gas spent; sell: − gas).
    """

    take: FloatArray
    book_cost: float
    pool_base: FloatArray
    pool_quote: FloatArray
    gas: float
    marginal: float | None
    filled: float
    value: float
    used: tuple[bool, ...]
    reached: float = 0.0  # in the order's units (base, or quote for amount_in="quote")


class _Path:
    """A pool's trading path for one side, for fast scalar evaluation at a λ."""

    __slots__ = ("base", "bounds", "fee", "key", "liq", "quote", "side")

    def __init__(self, pool: PoolCurve, side: Side) -> None:
        bounds, liq = pool._path(side)
        self.side, self.fee = side, pool.fee
        self.bounds = bounds.tolist()
        self.liq = liq.tolist()
        base, quote = pool.trade(side, pool.marginal(side, bounds))
        self.base, self.quote = base.tolist(), quote.tolist()
        lam = pool.marginal(side, bounds)
        self.key = (lam if side == "buy" else -lam).tolist()  # ascending in trading order

    def at(self, lam: float) -> tuple[float, float]:
        """(base, quote) traded when the marginal price reaches `lam` (cf. PoolCurve.trade)."""
        key = lam if self.side == "buy" else -lam
        k = bisect_right(self.key, key) - 1
        if k < 0:
            return 0.0, 0.0
        if k >= len(self.liq):
            return self.base[-1], self.quote[-1]
        start, liq, f = self.bounds[k], self.liq[k], self.fee
        if liq <= 0:
            return self.base[k], self.quote[k]
        if self.side == "buy":
            t = math.sqrt(lam * (1 - f))
            return (
                self.base[k] + liq * (1.0 / start - 1.0 / t),
                self.quote[k] + liq * (t - start) / (1 - f),
            )
        t = math.sqrt(lam / (1 - f))
        return (
            self.base[k] + liq * (1.0 / t - 1.0 / start) / (1 - f),
            self.quote[k] + liq * (start - t),
        )


@dataclass(frozen=True, slots=True)
class _Problem:
    """What every pool subset shares: the sorted book levels and the breakpoint grid."""

    side: Side
    order: IntArray
    e_sorted: FloatArray
    s_sorted: FloatArray
    lam: FloatArray
    excl: FloatArray
    incl: FloatArray
    paths: list[_Path]
    quote_units: bool
    amount: float
    key_sorted: FloatArray  # e_sorted in trading order as an ascending key
    cum_amount: FloatArray  # base of the first j sorted levels
    cum_cost: FloatArray  # Σ e·s of the first j sorted levels

    def at_price(self, j: int, marginal: float) -> float:
        """Target units offered by the levels priced exactly `marginal`, from index j."""
        key = marginal if self.side == "buy" else -marginal
        end = int(np.searchsorted(self.key_sorted, key, side="right"))
        cum = self.cum_cost if self.quote_units else self.cum_amount
        return float(cum[end] - cum[j])


def solve_joint(
    ladder: Ladder,
    pools: Sequence[PoolCurve],
    amount: float,
    amount_in: AmountUnit = "base",
    gas: bool = True,
) -> JointAllocation:
    """The optimal split of `amount` over the ladder's levels and the pools (see module).

    With `gas`, each pool's fixed swap cost is decided exactly by enumerating pool subsets
    (at most `MAX_GAS_POOLS` pools carry a non-zero gas cost). The segment that holds λ* is
    found by bisection over the breakpoints: O(log K) pool evaluations per subset.
    """
    side = ladder.side
    order = np.argsort(ladder.eff if side == "buy" else -ladder.eff, kind="stable")
    e_sorted = ladder.eff[order]
    s_sorted = ladder.size[order]
    quote_units = amount_in == "quote"
    grid = np.unique(np.concatenate([e_sorted, *(p.breakpoints(side) for p in pools)]))
    if len(grid) == 0:
        return _empty(ladder, pools)
    # one breakpoint far past the rest: pools' last ranges reach on past every breakpoint
    # (the two-term form holds there too), so the last segment is solved like any other
    if side == "buy":
        grid = np.concatenate((grid, [grid[-1] * 1e4]))
    else:
        grid = np.concatenate(([grid[0] * 1e-4], grid))[::-1]
    cum_amount = np.concatenate(([0.0], np.cumsum(s_sorted)))
    cum_cost = np.concatenate(([0.0], np.cumsum(s_sorted * e_sorted)))
    cum = cum_cost if quote_units else cum_amount
    key_sorted, key_grid = (e_sorted, grid) if side == "buy" else (-e_sorted, -grid)
    excl = cum[np.searchsorted(key_sorted, key_grid, side="left")]
    incl = cum[np.searchsorted(key_sorted, key_grid, side="right")]
    problem = _Problem(
        side,
        order,
        e_sorted,
        s_sorted,
        grid,
        excl,
        incl,
        [p.path(side) for p in pools],
        quote_units,
        amount,
        key_sorted,
        cum_amount,
        cum_cost,
    )
    gas_cost = [p.gas if gas else 0.0 for p in pools]
    charged = [i for i, g in enumerate(gas_cost) if g > 0]
    if len(charged) > MAX_GAS_POOLS:
        raise ValueError(
            f"{len(charged)} pools carry gas: at most {MAX_GAS_POOLS} are decided exactly"
        )
    free = [i for i in range(len(pools)) if gas_cost[i] <= 0]
    sign = 1.0 if side == "buy" else -1.0

    def solve(members: list[int]) -> tuple[tuple[float, float], list[int], float, float]:
        marginal, rest = _locate(problem, members)
        return _evaluate(problem, members, marginal, rest, gas_cost), members, marginal, rest

    # Every pool first: it reaches the most and its gas-free cost bounds every subset's
    # from below (more supply never costs more), so a subset S whose gas alone lifts that
    # bound past the best found is skipped — with all its supersets' values covered too.
    every = list(range(len(pools)))
    best = solve(every)
    _, _, lam_all, rest_all = best
    convex_floor = _evaluate(problem, every, lam_all, rest_all, [0.0] * len(pools))[1]
    for r in range(len(charged)):
        for subset in combinations(charged, r):
            bound = convex_floor + sign * sum(gas_cost[i] for i in subset)
            if sign * bound >= sign * best[0][1]:
                continue
            candidate = solve(sorted([*free, *subset]))
            if _better(side, candidate[0], best[0]):
                best = candidate
    _, members, marginal, rest = best
    return _allocation(ladder, problem, members, marginal, rest, gas_cost)


def _better(side: Side, a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(reached, value): more of the order first, then cheaper (buy) / richer (sell)."""
    if abs(a[0] - b[0]) > 1e-12 * max(1.0, b[0]):
        return a[0] > b[0]
    return a[1] < b[1] if side == "buy" else a[1] > b[1]


def _pool_supply(problem: _Problem, members: list[int], lam: float) -> float:
    pick = 1 if problem.quote_units else 0
    return sum(problem.paths[i].at(lam)[pick] for i in members)


def _locate(problem: _Problem, members: list[int]) -> tuple[float, float]:
    """(λ*, what the book levels priced exactly at λ* must supply) for a pool subset."""
    lam, excl, incl, amount = problem.lam, problem.excl, problem.incl, problem.amount
    lo, hi = 0, len(lam)  # first breakpoint whose supply (books to λ_k, pools at λ_k) suffices
    while lo < hi:
        mid = (lo + hi) // 2
        if incl[mid] + _pool_supply(problem, members, float(lam[mid])) >= amount:
            hi = mid
        else:
            lo = mid + 1
    k = lo
    if k >= len(lam):  # everything up to the last breakpoint is not enough
        return float(lam[-1]), math.inf
    at_k = _pool_supply(problem, members, float(lam[k]))
    if k == 0 or excl[k] + at_k < amount:
        return float(lam[k]), float(amount - excl[k] - at_k)
    # interior of (λ_{k-1}, λ_k): books fixed at excl[k], pools = c + d·λ^power exactly
    need = float(amount - excl[k])
    a, b = float(lam[k - 1]), float(lam[k])
    f_a = _pool_supply(problem, members, a)
    power = 0.5 if problem.quote_units else -0.5
    g_a, g_b = a**power, b**power
    if at_k == f_a or g_a == g_b:
        return b, 0.0
    g = g_a + (need - f_a) * (g_b - g_a) / (at_k - f_a)
    return min(max(g ** (1 / power), min(a, b)), max(a, b)), 0.0


def _evaluate(
    problem: _Problem,
    members: list[int],
    marginal: float,
    book_rest: float,
    gas_cost: Sequence[float],
) -> tuple[float, float]:
    """(reached, value) of a located subset, from prefix sums: no per-level arrays."""
    key = marginal if problem.side == "buy" else -marginal
    j = int(np.searchsorted(problem.key_sorted, key, side="left"))
    room = problem.at_price(j, marginal)
    rest = min(max(book_rest, 0.0), room)
    per_unit = 1.0 if problem.quote_units else marginal
    book_amount = float(problem.cum_amount[j]) + (rest / marginal if problem.quote_units else rest)
    book_cost = float(problem.cum_cost[j]) + rest * per_unit
    pool_base = pool_quote = gas = 0.0
    for i in members:
        b, q = problem.paths[i].at(marginal)
        pool_base += b
        pool_quote += q
        gas += gas_cost[i] if b > 0 else 0.0
    value = book_cost + pool_quote + (gas if problem.side == "buy" else -gas)
    reached = book_cost + pool_quote if problem.quote_units else book_amount + pool_base
    return reached, value


def _allocation(
    ladder: Ladder,
    problem: _Problem,
    members: list[int],
    marginal: float,
    book_rest: float,
    gas_cost: Sequence[float],
) -> JointAllocation:
    side = problem.side
    n_pools = len(problem.paths)
    base = np.zeros(n_pools)
    quote = np.zeros(n_pools)
    for i in members:
        base[i], quote[i] = problem.paths[i].at(marginal)
    e_sorted, s_sorted = problem.e_sorted, problem.s_sorted
    better = e_sorted < marginal if side == "buy" else e_sorted > marginal
    take_sorted = np.where(better, s_sorted, 0.0)
    rest = book_rest
    for j in np.flatnonzero(e_sorted == marginal):  # the levels priced at λ take the rest
        if rest <= 0:
            break
        per_unit = e_sorted[j] if problem.quote_units else 1.0
        got = min(s_sorted[j] * per_unit, rest)
        take_sorted[j] = got / per_unit
        rest -= got
    take = np.zeros_like(ladder.size)
    take[problem.order] = take_sorted
    book_cost = float(take_sorted @ e_sorted)
    used = tuple(bool(base[i] > 0) for i in range(n_pools))
    gas_spent = float(sum(gas_cost[i] for i in range(n_pools) if used[i]))
    pool_value = float(quote.sum())
    filled = float(take.sum() + base.sum())
    reached = book_cost + pool_value if problem.quote_units else filled
    value = book_cost + pool_value + (gas_spent if side == "buy" else -gas_spent)
    return JointAllocation(
        take, book_cost, base, quote, gas_spent, marginal, filled, value, used, reached
    )


def _empty(ladder: Ladder, pools: Sequence[PoolCurve]) -> JointAllocation:
    n = len(pools)
    return JointAllocation(
        np.zeros_like(ladder.size),
        0.0,
        np.zeros(n),
        np.zeros(n),
        0.0,
        None,
        0.0,
        0.0,
        (False,) * n,
    )
