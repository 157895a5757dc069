"""Baseline splits, always reported beside the optimum.

Each baseline fills the same base amount Q on the same ladder and returns its total
effective cost Σ_v C_v(q_v) (quote paid for a buy, received for a sell), or None when it
cannot fill Q:

- best_venue:   the single venue with the best C_v(Q);
- equal_split:  q_v = Q / V over the V venues with liquidity on the side;
- pro_rata:     q_v = Q · d_v / Σ d, d_v the displayed depth;
- percent_grid: the best allocation whose parts are multiples of 5 % of Q over at most
                7 venues (Uniswap's smart-order-router grid), found exactly by a dynamic
                program over venues x steps x venues used, as 1inch's OneSplit does.

The optimum (`exact`) is never worse than any of them: each is a feasible point of the
same problem.
"""

from __future__ import annotations

import numpy as np

from liquidroute.optimizer.curves import Ladder

GRID_STEPS = 20  # 5 % steps
GRID_MAX_VENUES = 7

BASELINES = ("best_venue", "equal_split", "pro_rata", "percent_grid")


def _total(values: np.ndarray) -> float | None:
    total = float(values.sum())
    return total if np.isfinite(total) else None


def _better(side: str, a: float, b: float) -> bool:
    return a < b if side == "buy" else a > b


def best_venue(ladder: Ladder, amount: float) -> float | None:
    best: float | None = None
    for v in range(ladder.n_venues):
        c = float(ladder.cost(v, np.array([amount]))[0])
        if np.isfinite(c) and (best is None or _better(ladder.side, c, best)):
            best = c
    return best


def equal_split(ladder: Ladder, amount: float) -> float | None:
    active = [v for v in range(ladder.n_venues) if ladder.offsets[v + 1] > ladder.offsets[v]]
    if not active:
        return None
    part = np.array([amount / len(active)])
    return _total(np.array([ladder.cost(v, part)[0] for v in active]))


def pro_rata(ladder: Ladder, amount: float) -> float | None:
    depth = ladder.depth()
    total = depth.sum()
    if total <= 0 or amount > total * (1 + 1e-12):
        return None
    parts = amount * depth / total
    return _total(np.array([ladder.cost(v, parts[v : v + 1])[0] for v in range(len(depth))]))


def percent_grid(
    ladder: Ladder, amount: float, steps: int = GRID_STEPS, max_venues: int = GRID_MAX_VENUES
) -> float | None:
    """Best allocation on the grid {0, Q/steps, ..., Q} per venue, at most `max_venues` used.

    DP: best[k, m] = best cost of k grid units using m venues so far; adding venue v with
    j units costs C_v(j·Q/steps). O(V · steps² · max_venues).
    """
    sign = 1.0 if ladder.side == "buy" else -1.0  # minimise sign·cost
    grid = np.arange(steps + 1, dtype=np.float64) * (amount / steps)
    inf = np.inf
    best = np.full((steps + 1, max_venues + 1), inf)
    best[0, 0] = 0.0
    for v in range(ladder.n_venues):
        c = sign * ladder.cost(v, grid.copy())
        c[~np.isfinite(c)] = inf
        new = best.copy()
        for j in range(1, steps + 1):
            if not np.isfinite(c[j]):
                break
            # use venue v for j units: from best[k - j, m - 1]
            new[j:, 1:] = np.minimum(new[j:, 1:], best[: steps + 1 - j, :-1] + c[j])
        best = new
    value = best[steps].min()
    return float(sign * value) if np.isfinite(value) else None


def all_baselines(ladder: Ladder, amount: float) -> dict[str, float | None]:
    """Every baseline's total cost for filling `amount` base units on `ladder`."""
    return {
        "best_venue": best_venue(ladder, amount),
        "equal_split": equal_split(ladder, amount),
        "pro_rata": pro_rata(ladder, amount),
        "percent_grid": percent_grid(ladder, amount),
    }
