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
    e = eff[order]
    s = ladder.size[order]
    per_level = s * e if amount_in == "quote" else s
    cum = np.cumsum(per_level)
    k = int(np.searchsorted(cum, amount, side="left"))
    if k >= len(cum):  # the books run out: take everything
        take = s
        last = len(s) - 1
    else:
        take = s[: k + 1].copy()
        before = cum[k - 1] if k > 0 else 0.0
        rest = amount - before
        take[k] = rest / e[k] if amount_in == "quote" else rest
        last = k
    idx = order[: len(take)]
    v = ladder.venue[idx]
    amounts = _sum_by_venue(v, take, n_venues)
    notional = _sum_by_venue(v, take * ladder.price[idx], n_venues)
    cost = _sum_by_venue(v, take * e[: len(take)], n_venues)
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
        marginal=float(e[last]) if last >= 0 else None,
        filled=float(amounts.sum()),
        value=float(cost.sum()),
    )
