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
`baseline_splits` computes several at once on one evaluation of every C_v: the amounts
they need (Q, Q/V and the grid j·Q/steps) in one `np.interp` per venue (elementwise, so
the same numbers as one evaluation per baseline).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from liquidroute.model import FloatArray
from liquidroute.optimizer.curves import IntArray, Ladder

BoolArray = npt.NDArray[np.bool_]

GRID_STEPS = 20  # 5 % steps
GRID_MAX_VENUES = 7


def split_cost(ladder: Ladder, amounts: FloatArray) -> float | None:
    """Σ_v C_v(q_v), or None when some venue cannot hold its part."""
    total = 0.0
    for v in np.flatnonzero(amounts > 0):
        total += float(ladder.cost(int(v), amounts[v : v + 1])[0])
    return total if np.isfinite(total) else None


class _Evaluation:
    """C_v for every venue at the amounts the baselines need, in one pass: columns
    0..steps are the grid j·Q/steps, then Q, then Q/V (V the venues with levels)."""

    __slots__ = ("active", "costs", "grid", "n_active")

    def __init__(self, ladder: Ladder, amount: float, steps: int) -> None:
        offsets = ladder.offsets.tolist()  # a few venues: Python beats numpy calls here
        self.active = [hi > lo for lo, hi in pairwise(offsets)]
        self.n_active = sum(self.active)
        points = np.empty(steps + 3)
        np.multiply(_units(steps), amount / steps, out=points[: steps + 1])
        self.grid = points[: steps + 1]
        points[steps + 1] = amount
        points[steps + 2] = amount / self.n_active if self.n_active else 0.0
        self.costs = np.empty((ladder.n_venues, steps + 3))
        for v in range(ladder.n_venues):
            self.costs[v] = ladder.cost(v, points)


@cache
def _units(steps: int) -> FloatArray:
    """0, 1, ..., steps as floats (the grid is these times Q/steps)."""
    units: FloatArray = np.arange(steps + 1, dtype=np.float64)
    units.flags.writeable = False
    return units


def _best_venue(ladder: Ladder, amount: float, ev: _Evaluation) -> FloatArray | None:
    """The first venue with the best finite C_v(Q) (least paid, most received)."""
    buy = ladder.side == "buy"
    best, best_cost = -1, 0.0
    for v, c in enumerate(ev.costs[:, -2].tolist()):
        if math.isfinite(c) and (best < 0 or (c < best_cost if buy else c > best_cost)):
            best, best_cost = v, c
    if best < 0:
        return None
    out = np.zeros(ladder.n_venues)
    out[best] = amount
    return out


def _equal_split(ladder: Ladder, amount: float, ev: _Evaluation) -> FloatArray | None:
    if not ev.n_active:
        return None
    share = amount / ev.n_active
    if share > 0 and not all(
        math.isfinite(c) for c, a in zip(ev.costs[:, -1].tolist(), ev.active, strict=True) if a
    ):
        return None  # some venue cannot hold Q/V
    out: FloatArray = np.where(ev.active, share, 0.0)
    return out


def best_venue(ladder: Ladder, amount: float) -> FloatArray | None:
    return _best_venue(ladder, amount, _Evaluation(ladder, amount, GRID_STEPS))


def equal_split(ladder: Ladder, amount: float) -> FloatArray | None:
    return _equal_split(ladder, amount, _Evaluation(ladder, amount, GRID_STEPS))


def pro_rata(ladder: Ladder, amount: float) -> FloatArray | None:
    depth = ladder.depth()
    total = depth.sum()
    if total <= 0 or amount > total * (1 + 1e-12):
        return None
    parts: FloatArray = np.minimum(amount * depth / total, depth)
    return parts


@cache
def _grid_sources(steps: int) -> IntArray:
    """For j = 1..steps units given to a venue (rows) and k = 0..steps units in all
    (columns): the units held before, k − j, or steps + 1 (a row of the DP table that
    stays unreachable) where j > k."""
    units = np.arange(1, steps + 1)[:, None]
    totals = np.arange(steps + 1)[None, :]
    source: IntArray = np.where(units <= totals, totals - units, steps + 1)
    source.flags.writeable = False
    return source


def percent_grid(
    ladder: Ladder, amount: float, steps: int = GRID_STEPS, max_venues: int = GRID_MAX_VENUES
) -> FloatArray | None:
    """Best allocation on the grid {0, Q/steps, ..., Q} per venue, at most `max_venues` used.

    DP: best[k, m] = best cost of k grid units using m venues so far; adding venue v with
    j units costs C_v(j·Q/steps). O(V · steps² · min(max_venues, V)), with a backtrack
    table (`_percent_grid`).
    """
    ev = _Evaluation(ladder, amount, steps)
    return _percent_grid(ladder, ev, steps, max_venues)


def _percent_grid(
    ladder: Ladder, ev: _Evaluation, steps: int, max_venues: int
) -> FloatArray | None:
    """The DP of `percent_grid` on the shared evaluation.

    best[k, m] = least sign·cost of k grid units on m of the venues so far (inf when
    unreachable); venue v with j units: best[k − j, m − 1] + C_v(j·Q/steps), the smallest
    j among ties, kept only when strictly better than not using v. The answer is the
    least best[steps, m], the fewest venues m among ties, walked back. m never exceeds the
    venues seen, so the bound is min(max_venues, V): columns beyond V stay inf and can
    neither be chosen nor change a choice — the same program on a smaller table.
    """
    n = ladder.n_venues
    if n == 1 and max_venues >= 1:  # the table's one path to k = steps: j = steps on v0
        if not math.isfinite(ev.costs.item(0, steps)):
            return None
        return ev.grid[steps:].copy()
    bound = min(max_venues, n)
    sign = 1.0 if ladder.side == "buy" else -1.0  # minimise sign·cost
    costs = sign * ev.costs[:, 1 : steps + 1]  # j = 1..steps
    costs[~np.isfinite(costs)] = np.inf
    source = _grid_sources(steps)
    best = np.full((steps + 2, bound + 1), np.inf)  # row steps + 1: never reachable
    best[0, 0] = 0.0
    picks: list[tuple[IntArray, BoolArray]] = []  # per venue: the j chosen, and if kept
    # all j >= 1 at once: candidate[j-1, k, m-1] = best[k - j, m - 1] + C_v(j) (inf where
    # j > k); after venue v at most v + 1 venues are used, so only those columns move
    for v in range(n):
        used = min(v + 1, bound)
        candidate = best[source, :used] + costs[v, :, None, None]
        j_best = candidate.argmin(axis=0)  # the first (smallest) j reaching the minimum
        value = candidate.min(axis=0)
        now = best[: steps + 1, 1 : used + 1]
        better = value < now  # strictly: not using v wins ties
        np.copyto(now, value, where=better)
        picks.append((j_best, better))
    m = int(np.argmin(best[steps]))
    if not np.isfinite(best[steps, m]):
        return None
    out = np.zeros(n)
    k = steps
    for v in range(n - 1, -1, -1):  # walk the choices back
        j_best, better = picks[v]
        if m and better[k, m - 1]:
            j = int(j_best[k, m - 1]) + 1
            out[v] = ev.grid[j]
            k, m = k - j, m - 1
    return out


BASELINE_SPLITS = {
    "best_venue": best_venue,
    "equal_split": equal_split,
    "pro_rata": pro_rata,
    "percent_grid": percent_grid,
}


#: each baseline on a shared evaluation (what `BASELINE_SPLITS` computes one at a time)
_ON_EVALUATION: dict[str, Callable[[Ladder, float, _Evaluation], FloatArray | None]] = {
    "best_venue": _best_venue,
    "equal_split": _equal_split,
    "pro_rata": lambda ladder, amount, ev: pro_rata(ladder, amount),
    "percent_grid": lambda ladder, amount, ev: _percent_grid(
        ladder, ev, GRID_STEPS, GRID_MAX_VENUES
    ),
}


def baseline_splits(
    ladder: Ladder, amount: float, names: Sequence[str] = tuple(BASELINE_SPLITS)
) -> dict[str, FloatArray | None]:
    """The splits of the baselines `names` (keys of `BASELINE_SPLITS`), as each function
    gives them, on one evaluation of the venues' curves (module doc)."""
    unknown = [name for name in names if name not in _ON_EVALUATION]
    if unknown:
        raise KeyError(f"unknown baseline {unknown[0]!r}; known: {sorted(BASELINE_SPLITS)}")
    ev = _Evaluation(ladder, amount, GRID_STEPS)
    return {name: _ON_EVALUATION[name](ladder, amount, ev) for name in names}


def all_baselines(ladder: Ladder, amount: float) -> dict[str, float | None]:
    """Every baseline's total cost for filling `amount` base units on `ladder`."""
    return {
        name: None if amounts is None else split_cost(ladder, amounts)
        for name, amounts in baseline_splits(ladder, amount).items()
    }
