"""Exact optimal split for separable convex costs: a merge of all venues' levels.

Buy Q base units (sell: mirror) across venues v with convex piecewise-linear costs C_v
(see `curves`) and caps u_v:

    minimise  Σ_v C_v(q_v)   s.t.  Σ_v q_v = Q,   0 ≤ q_v ≤ u_v.

Writing q_v = Σ_l x_{v,l} with 0 ≤ x_{v,l} ≤ s_{v,l} turns this into the LP
min Σ e_{v,l} x_{v,l} s.t. Σ x = Q, whose optimum takes levels in increasing order of
effective price e until Q is reached (a fractional knapsack). The effective price λ of the
last level taken is the dual of Σ x = Q and certifies optimality (KKT): every level with
e < λ is full, every level with e > λ is empty, so no reallocation lowers the cost. For a
sell, maximise proceeds: take levels in *decreasing* e.

The quote-denominated form (spend exactly X quote on a buy; receive exactly X quote on a
sell) is the same merge with the running total measured in e·x instead of x.

Complexity: one argsort of the L levels, O(L log L); the rest is vectorised numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liquidroute.model import AmountUnit, FloatArray
from liquidroute.optimizer.curves import IntArray, Ladder


@dataclass(frozen=True, slots=True)
class Allocation:
    """The optimum per venue (arrays indexed like the ladder's venues).

    `amount` base units, `notional` = Σ price·x (fees excluded), `fee` = notional·f_v,
    `cost` = Σ e·x (quote paid for a buy, received for a sell), `levels` touched and
    `worst_price` (book price of the deepest level touched; nan where unused).
    `marginal` is λ, `filled` Σ amount, `value` Σ cost.
    """

    amount: FloatArray
    notional: FloatArray
    fee: FloatArray
    cost: FloatArray
    levels: IntArray
    worst_price: FloatArray
    marginal: float | None
    filled: float
    value: float


def _sum_by_venue(venue: IntArray, values: FloatArray, n_venues: int) -> FloatArray:
    out: FloatArray = np.bincount(venue, values, minlength=n_venues).astype(np.float64, copy=False)
    return out


def solve_exact(ladder: Ladder, amount: float, amount_in: AmountUnit = "base") -> Allocation:
    """The optimal split of `amount` (base units, or quote units when amount_in="quote").

    When the ladder cannot supply `amount`, every level is taken and `filled`/`value`
    say how much that is.
    """
    n_venues = ladder.n_venues
    eff = ladder.eff
    order = np.argsort(eff if ladder.side == "buy" else -eff, kind="stable")
    s = ladder.size[order]
    if amount_in == "quote":
        e = eff[order]
        cum = np.cumsum(s * e)
    else:
        cum = np.cumsum(s)
    k = int(np.searchsorted(cum, amount, side="left"))
    n_take = min(k + 1, len(s))
    idx = order[:n_take]
    take = s[:n_take].copy()
    e = eff[idx]
    if k < len(s):  # the last level taken is partial; otherwise the books run out
        rest = amount - (cum[k - 1] if k > 0 else 0.0)
        take[k] = rest / e[k] if amount_in == "quote" else rest
    v = ladder.venue[idx]
    amounts = _sum_by_venue(v, take, n_venues)
    notional = _sum_by_venue(v, take * ladder.price[idx], n_venues)
    cost = _sum_by_venue(v, take * e, n_venues)
    levels = np.bincount(v, minlength=n_venues).astype(np.intp)
    worst = np.full(n_venues, np.nan)
    used = levels > 0
    worst[used] = ladder.price[ladder.offsets[:-1][used] + levels[used] - 1]
    return Allocation(
        amount=amounts,
        notional=notional,
        fee=notional * ladder.fees,
        cost=cost,
        levels=levels,
        worst_price=worst,
        marginal=float(e[-1]) if n_take else None,
        filled=float(amounts.sum()),
        value=float(cost.sum()),
    )


def allocate(ladder: Ladder, amounts: FloatArray) -> Allocation:
    """The `Allocation` of given per-venue amounts, each venue walking its own levels.

    Used for splits found by other means (rules, rounding): costs, fees and worst prices
    are computed exactly from the ladder. `marginal` is the dearest fee-adjusted level
    touched (cheapest, for a sell). Amounts beyond a venue's depth raise ValueError.
    """
    n_venues = ladder.n_venues
    notional = np.zeros(n_venues)
    cost = np.zeros(n_venues)
    levels = np.zeros(n_venues, dtype=np.intp)
    worst = np.full(n_venues, np.nan)
    marginal: float | None = None
    for v in range(n_venues):
        q = float(amounts[v])
        if q <= 0:
            continue
        lo, hi = int(ladder.offsets[v]), int(ladder.offsets[v + 1])
        size = ladder.size[lo:hi]
        cum = np.cumsum(size)
        if q > cum[-1] * (1 + 1e-12) + 1e-15:
            raise ValueError(f"venue {v}: amount {q} exceeds its depth {cum[-1]}")
        k = min(int(np.searchsorted(cum, q * (1 - 1e-15), side="left")), len(size) - 1)
        take = size[: k + 1].copy()
        take[k] = q - (cum[k - 1] if k else 0.0)
        notional[v] = float(take @ ladder.price[lo : lo + k + 1])
        cost[v] = float(take @ ladder.eff[lo : lo + k + 1])
        levels[v] = k + 1
        worst[v] = ladder.price[lo + k]
        e = float(ladder.eff[lo + k])
        if marginal is None or (e > marginal if ladder.side == "buy" else e < marginal):
            marginal = e
    return Allocation(
        amount=np.asarray(amounts, dtype=np.float64).copy(),
        notional=notional,
        fee=notional * ladder.fees,
        cost=cost,
        levels=levels,
        worst_price=worst,
        marginal=marginal,
        filled=float(np.sum(amounts)),
        value=float(cost.sum()),
    )
