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

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from liquidroute.model import AmountUnit, FloatArray, Side
from liquidroute.optimizer.curves import Ladder

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


def solve_joint(
    ladder: Ladder,
    pools: Sequence[PoolCurve],
    amount: float,
    amount_in: AmountUnit = "base",
    gas: bool = True,
) -> JointAllocation:
    """The optimal split of `amount` over the ladder's levels and the pools (see module).

    With `gas`, each pool's fixed swap cost is decided exactly by enumerating pool subsets
    (at most `MAX_GAS_POOLS` pools carry a non-zero gas cost).
    """
    side = ladder.side
    order = np.argsort(ladder.eff if side == "buy" else -ladder.eff, kind="stable")
    e_sorted = ladder.eff[order]
    s_sorted = ladder.size[order]
    quote_units = amount_in == "quote"
    lam = np.concatenate([e_sorted, *(p.breakpoints(side) for p in pools)])
    lam = np.unique(lam)
    if len(lam) == 0:
        return _empty(ladder, pools)
    # one breakpoint far past the rest: pools' last ranges reach on past every breakpoint
    # (the two-term form holds there too), so the last segment is solved like any other
    far = lam[-1] * 1e4 if side == "buy" else lam[0] * 1e-4
    lam = np.concatenate((lam, [far])) if side == "buy" else np.concatenate(([far], lam))[::-1]
    # book supply strictly better than / up to each λ (target units)
    unit = s_sorted * e_sorted if quote_units else s_sorted
    cum = np.concatenate(([0.0], np.cumsum(unit)))
    key_sorted, key_lam = (e_sorted, lam) if side == "buy" else (-e_sorted, -lam)
    excl = cum[np.searchsorted(key_sorted, key_lam, side="left")]
    incl = cum[np.searchsorted(key_sorted, key_lam, side="right")]
    per_pool = [p.trade(side, lam) for p in pools]
    amounts = np.array([q if quote_units else b for b, q in per_pool]).reshape(len(pools), -1)
    gas_cost = np.array([p.gas if gas else 0.0 for p in pools])
    charged = [i for i, g in enumerate(gas_cost) if g > 0]
    if len(charged) > MAX_GAS_POOLS:
        raise ValueError(
            f"{len(charged)} pools carry gas: at most {MAX_GAS_POOLS} are decided exactly"
        )
    free = [i for i in range(len(pools)) if gas_cost[i] <= 0]
    best: JointAllocation | None = None
    for r in range(len(charged) + 1):
        for subset in combinations(charged, r):
            members = sorted([*free, *subset])
            candidate = _solve_subset(
                ladder,
                pools,
                members,
                order,
                e_sorted,
                s_sorted,
                lam,
                excl,
                incl,
                amounts,
                amount,
                quote_units,
                gas_cost,
            )
            if best is None or _better(side, candidate, best):
                best = candidate
    assert best is not None
    return best


def _better(side: Side, a: JointAllocation, b: JointAllocation) -> bool:
    if abs(a.reached - b.reached) > 1e-12 * max(1.0, b.reached):
        return a.reached > b.reached
    return a.value < b.value if side == "buy" else a.value > b.value


def _solve_subset(
    ladder: Ladder,
    pools: Sequence[PoolCurve],
    members: list[int],
    order: np.ndarray,
    e_sorted: FloatArray,
    s_sorted: FloatArray,
    lam: FloatArray,
    excl: FloatArray,
    incl: FloatArray,
    amounts: FloatArray,
    amount: float,
    quote_units: bool,
    gas_cost: FloatArray,
) -> JointAllocation:
    side = ladder.side
    pool_sum = amounts[members].sum(axis=0) if members else np.zeros(len(lam))
    total_incl = incl + pool_sum
    k = int(np.searchsorted(total_incl, amount, side="left"))
    n_pools = len(pools)
    pool_lam: float
    book_rest: float
    if k >= len(lam):  # everything, to the last breakpoint, is not enough
        pool_lam, book_rest, marginal = float(lam[-1]), float("inf"), float(lam[-1])
    elif excl[k] + pool_sum[k] >= amount and k > 0:
        # interior: books fixed at excl[k]; solve the pools' two-term form on (lam[k-1], lam[k])
        need = amount - excl[k]
        lo, hi = float(lam[k - 1]), float(lam[k])
        f_lo, f_hi = float(pool_sum[k - 1]), float(pool_sum[k])
        power = 0.5 if quote_units else -0.5
        g_lo, g_hi = lo**power, hi**power
        if f_hi == f_lo or g_hi == g_lo:
            pool_lam = hi
        else:
            g = g_lo + (need - f_lo) * (g_hi - g_lo) / (f_hi - f_lo)
            pool_lam = float(np.clip(g ** (1 / power), min(lo, hi), max(lo, hi)))
        book_rest, marginal = 0.0, pool_lam
    else:
        pool_lam = float(lam[k])
        book_rest = amount - excl[k] - pool_sum[k]
        marginal = pool_lam
    base = np.zeros(n_pools)
    quote = np.zeros(n_pools)
    for i in members:
        b, q = pools[i].trade(side, np.array([pool_lam]))
        base[i], quote[i] = float(b[0]), float(q[0])
    # books: every level strictly better than λ full, the rest at λ itself
    better = e_sorted < marginal if side == "buy" else e_sorted > marginal
    take_sorted = np.where(better, s_sorted, 0.0)
    at = np.flatnonzero(e_sorted == marginal)
    rest = book_rest
    for j in at:
        if rest <= 0:
            break
        room = s_sorted[j] * (e_sorted[j] if quote_units else 1.0)
        got = min(room, rest)
        take_sorted[j] = got / (e_sorted[j] if quote_units else 1.0)
        rest -= got
    take = np.zeros_like(ladder.size)
    take[order] = take_sorted
    book_cost = float(take_sorted @ e_sorted)
    used = tuple(bool(base[i] > 0) for i in range(n_pools))
    gas_spent = float(sum(gas_cost[i] for i in range(n_pools) if used[i]))
    pool_value = float(quote.sum())
    filled = float(take.sum() + base.sum())
    reached = book_cost + pool_value if quote_units else filled
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
