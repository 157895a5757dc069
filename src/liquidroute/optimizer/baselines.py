"""Baseline splits, always reported beside the optimum.

Each baseline splits the same base amount Q over the same ladder; `all_baselines` prices
each split as Σ_v C_v(q_v) (quote paid for a buy, received for a sell), None when the
strategy cannot fill Q:

- best_venue:   the single venue with the best C_v(Q);
- equal_split:  q_v = Q / V over the V venues with liquidity on the side;
- pro_rata:     q_v = Q · d_v / Σ d, d_v the displayed depth;
- percent_grid: the best allocation whose parts are multiples of 5 % of Q over at most
                7 venues (Uniswap's smart-order-router grid), found exactly by a dynamic
                program over venues x steps x venues used, as 1inch's OneSplit does.

The optimum (`exact`) is never worse than any of them: each is a feasible point of the
same problem. Each strategy function returns its allocation (base amount per venue,
indexed like the ladder's venues) or None; `split_cost` prices an allocation.
"""

from __future__ import annotations

import numpy as np

from liquidroute.model import FloatArray
from liquidroute.optimizer.curves import Ladder

GRID_STEPS = 20  # 5 % steps
GRID_MAX_VENUES = 7


def split_cost(ladder: Ladder, amounts: FloatArray) -> float | None:
    """Σ_v C_v(q_v), or None when some venue cannot hold its part."""
    total = 0.0
    for v in np.flatnonzero(amounts > 0):
        total += float(ladder.cost(int(v), amounts[v : v + 1])[0])
    return total if np.isfinite(total) else None


def _better(side: str, a: float, b: float) -> bool:
    return a < b if side == "buy" else a > b


def best_venue(ladder: Ladder, amount: float) -> FloatArray | None:
    best: tuple[float, int] | None = None
    for v in range(ladder.n_venues):
        c = float(ladder.cost(v, np.array([amount]))[0])
        if np.isfinite(c) and (best is None or _better(ladder.side, c, best[0])):
            best = (c, v)
    if best is None:
        return None
    out = np.zeros(ladder.n_venues)
    out[best[1]] = amount
    return out


def equal_split(ladder: Ladder, amount: float) -> FloatArray | None:
    active = np.diff(ladder.offsets) > 0
    if not active.any():
        return None
    out = np.where(active, amount / active.sum(), 0.0)
    return out if split_cost(ladder, out) is not None else None


def pro_rata(ladder: Ladder, amount: float) -> FloatArray | None:
    depth = ladder.depth()
    total = depth.sum()
    if total <= 0 or amount > total * (1 + 1e-12):
        return None
    parts: FloatArray = np.minimum(amount * depth / total, depth)
    return parts


def percent_grid(
    ladder: Ladder, amount: float, steps: int = GRID_STEPS, max_venues: int = GRID_MAX_VENUES
) -> FloatArray | None:
    """Best allocation on the grid {0, Q/steps, ..., Q} per venue, at most `max_venues` used.

    DP: best[k, m] = best cost of k grid units using m venues so far; adding venue v with
    j units costs C_v(j·Q/steps). O(V · steps² · max_venues), with a backtrack table.
    """
    sign = 1.0 if ladder.side == "buy" else -1.0  # minimise sign·cost
    grid = np.arange(steps + 1, dtype=np.float64) * (amount / steps)
    n = ladder.n_venues
    best = np.full((steps + 1, max_venues + 1), np.inf)
    best[0, 0] = 0.0
    choice = np.zeros((n, steps + 1, max_venues + 1), dtype=np.intp)  # units given to v
    # all j >= 1 at once: candidate[j-1, k, m] = best[k - j, m] + C_v(j) where j <= k
    units = np.arange(1, steps + 1)[:, None]
    totals = np.arange(steps + 1)[None, :]
    valid = units <= totals
    source = np.where(valid, totals - units, 0)
    for v in range(n):
        c = sign * ladder.cost(v, grid.copy())
        c[~np.isfinite(c)] = np.inf
        candidate = best[source, :-1] + c[1:, None, None]
        candidate[~valid] = np.inf
        j_best = np.argmin(candidate, axis=0)  # the first (smallest) j reaching the minimum
        value = np.take_along_axis(candidate, j_best[None], axis=0)[0]
        better = value < best[:, 1:]  # strictly: not using v wins ties
        choice[v, :, 1:] = np.where(better, j_best + 1, 0)
        new = best.copy()
        new[:, 1:] = np.where(better, value, best[:, 1:])
        best = new
    m = int(np.argmin(best[steps]))
    if not np.isfinite(best[steps, m]):
        return None
    out = np.zeros(n)
    k = steps
    for v in range(n - 1, -1, -1):  # walk the choices back
        j = int(choice[v, k, m])
        if j:
            out[v] = grid[j]
            k, m = k - j, m - 1
    return out


BASELINE_SPLITS = {
    "best_venue": best_venue,
    "equal_split": equal_split,
    "pro_rata": pro_rata,
    "percent_grid": percent_grid,
}


def all_baselines(ladder: Ladder, amount: float) -> dict[str, float | None]:
    """Every baseline's total cost for filling `amount` base units on `ladder`."""
    out: dict[str, float | None] = {}
    for name, split in BASELINE_SPLITS.items():
        amounts = split(ladder, amount)
        out[name] = None if amounts is None else split_cost(ladder, amounts)
    return out
