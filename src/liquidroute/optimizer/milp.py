"""The optimal split under exchange rules: a mixed-integer program (cvxpy + HiGHS).

With level fills x_{v,l} = s_{v,l} y_{v,l} (base units; 0 <= y <= 1 are column bounds, so
the level caps add no rows), lots n_v ∈ ℤ, venue switches z_v ∈ {0,1}, and
the rules of `rules.VenueRules`, for a buy (a sell maximises Σ e·x − Σ f·z instead):

    minimise   Σ_{v,l} e_{v,l} x_{v,l} + Σ_v f_v z_v − P Σ_v q_v
    s.t.       q_v = Σ_l x_{v,l} = step_v n_v  (+ w_v, a continuous part, only where v has no lot)
               0 ≤ x_{v,l} ≤ s_{v,l}
               min_v z_v ≤ q_v ≤ cap_v z_v
               Σ_l p_{v,l} x_{v,l} ≥ min_notional_v z_v
               Σ_v z_v ≤ K
               T − δ ≤ Σ_v q_v ≤ T

T is the amount asked (or all that the caps allow), δ the coarsest lot (a lattice of lots
cannot hit every T), and the small reward P = 2·max e makes the solver fill as much of
the window as it can. Everything is scaled before solving (amounts by T, prices by the
mid), so the solver sees numbers near 1.

Fine lots (more than MAX_INTEGER_LOTS on a venue, e.g. 1e-5 BTC lots on a 60 BTC
order) are relaxed: the solver still decides which venues to use and how much, exactly,
but treats n_v as continuous; the amounts are then rounded down to the lots and the
shortfall refilled greedily. Rounding moves each leg by less than one lot, so the cost
differs from the lot-exact optimum by at most about one lot's worth per venue; the
reported gap adds that rounding cost to the solver's proven gap.

The problem is built once per shape (venues x padded levels, side) with DPP parameters
and cached: re-solves with new books, rules or amounts reuse the compiled problem.
cvxpy is imported lazily. `solve_rules` returns amounts per venue, or None when the
solver fails, times out without a solution, or proves the rules infeasible; the caller
then falls back to `rules.round_to_rules`.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from liquidroute.model import FloatArray
from liquidroute.optimizer.curves import Ladder
from liquidroute.optimizer.rules import VenueRules


@dataclass(frozen=True, slots=True)
class MilpResult:
    """Amounts per venue and what the solver proved (gap: relative MIP gap)."""

    amounts: FloatArray
    gap: float | None
    status: str
    solve_ms: float
    integer_lots: bool = True


class _Model:
    """One compiled problem for a (venues, levels, side) shape."""

    def __init__(self, n_venues: int, n_levels: int, side: str, integer_lots: bool) -> None:
        import cvxpy as cp

        V, L = n_venues, n_levels
        # level fills as fractions y of each level's size: 0 <= y <= 1 are column bounds
        # (no extra rows), and x = s ⊙ y enters through the products below.
        self.es = cp.Parameter((V, L), name="eff_x_size")
        self.ps = cp.Parameter((V, L), nonneg=True, name="price_x_size")
        self.s = cp.Parameter((V, L), nonneg=True, name="size")
        self.step = cp.Parameter(V, nonneg=True, name="step")
        self.free = cp.Parameter(V, nonneg=True, name="free_cap")  # cap of w (no-lot venues)
        self.lots = cp.Parameter(V, nonneg=True, name="max_lots")
        self.min_q = cp.Parameter(V, nonneg=True, name="min_amount")
        self.min_n = cp.Parameter(V, nonneg=True, name="min_notional")
        self.cap = cp.Parameter(V, nonneg=True, name="cap")
        self.fixed = cp.Parameter(V, nonneg=True, name="fixed")
        self.k = cp.Parameter(nonneg=True, name="max_venues")
        self.lo = cp.Parameter(nonneg=True, name="lo")
        self.hi = cp.Parameter(nonneg=True, name="hi")
        self.rs = cp.Parameter((V, L), nonneg=True, name="reward_x_size")
        self.y = cp.Variable((V, L), bounds=[0.0, 1.0])
        self.n = cp.Variable(V, integer=integer_lots)
        self.w = cp.Variable(V, nonneg=True)
        self.z = cp.Variable(V, boolean=True)
        q = cp.sum(cp.multiply(self.s, self.y), axis=1)
        sign = 1.0 if side == "buy" else -1.0
        book = cp.sum(cp.multiply(self.es, self.y))
        objective = sign * book + self.fixed @ self.z - cp.sum(cp.multiply(self.rs, self.y))
        constraints = [
            q == cp.multiply(self.step, self.n) + self.w,
            self.n >= 0,
            self.n <= self.lots,
            self.w <= self.free,
            q >= cp.multiply(self.min_q, self.z),
            q <= cp.multiply(self.cap, self.z),
            cp.sum(cp.multiply(self.ps, self.y), axis=1) >= cp.multiply(self.min_n, self.z),
            cp.sum(self.z) <= self.k,
            cp.sum(q) >= self.lo,
            cp.sum(q) <= self.hi,
        ]
        self.problem = cp.Problem(cp.Minimize(objective), constraints)
        assert self.problem.is_dcp(dpp=True)


_CACHE: dict[tuple[int, int, str, bool], _Model] = {}

#: above this many lots on a venue, lots are relaxed in the solve and restored after
MAX_INTEGER_LOTS = 5_000


def _padded(n: int) -> int:
    """Level counts are padded to a power of two so that shapes (and compilations) repeat."""
    return 1 << max(3, math.ceil(math.log2(max(n, 1))))


def solve_rules(
    ladder: Ladder,
    rules: VenueRules,
    target: float,
    *,
    time_limit: float = 1.0,
    mip_gap: float = 1e-6,
    prune: tuple[float, float] | None = None,
) -> MilpResult | None:
    """The rule-respecting optimum for `target` base units, or None (see module doc).

    The solver stops once it has proven the answer within `mip_gap` (relative; 1e-6 is
    0.01 bps of the order's cost); the gap it proved is returned.

    `prune = (λ, slack)` drops levels no optimal split can reach. λ is the exact split's
    marginal price for `target`, slack = UB − LB with UB the objective of a known feasible
    split and LB the rule-free optimum's over the amounts the answer may fill. Any split
    filling T' units costs at least the rule-free optimum of T' plus, on each venue, the
    excess Σ (e_l − λ)⁺ s_l of the levels it fills completely (a venue fills its levels in
    order); a level whose preceding excess already exceeds the slack is never used.
    """
    import time

    import cvxpy as cp

    V = ladder.n_venues
    counts = np.diff(ladder.offsets)
    # a venue never needs more of its book than the target: cut the rest (exactly)
    keep = np.zeros(V, dtype=np.intp)
    for v in range(V):
        lo, hi = ladder.offsets[v], ladder.offsets[v + 1]
        cum = np.cumsum(ladder.size[lo:hi])
        keep[v] = min(
            int(np.searchsorted(cum, min(target, rules.cap[v]), side="left")) + 1, int(counts[v])
        )
        if prune is not None:
            lam, slack = prune
            sign = 1.0 if ladder.side == "buy" else -1.0
            excess = np.maximum(sign * (ladder.eff[lo:hi] - lam), 0.0) * ladder.size[lo:hi]
            before = np.concatenate(([0.0], np.cumsum(excess)[:-1]))
            reachable = int(np.searchsorted(before, slack * (1 + 1e-9) + 1e-12, side="right"))
            keep[v] = max(1, min(keep[v], reachable))
    L = _padded(int(keep.max(initial=1)))
    mid = float(np.median(ladder.price)) if len(ladder.price) else 1.0
    e = np.zeros((V, L))
    p = np.zeros((V, L))
    s = np.zeros((V, L))
    for v in range(V):
        lo = ladder.offsets[v]
        k = int(keep[v])
        e[v, :k] = ladder.eff[lo : lo + k] / mid
        p[v, :k] = ladder.price[lo : lo + k] / mid
        s[v, :k] = ladder.size[lo : lo + k] / target
    cap = np.minimum(np.minimum(rules.cap, s.sum(axis=1) * target), target) / target  # tight big-M
    step = rules.step / target
    has_lot = step > 0
    max_lots = np.where(has_lot, cap / np.where(has_lot, step, 1.0), 0.0)
    integer_lots = bool(max_lots.max(initial=0.0) <= MAX_INTEGER_LOTS)
    key = (V, L, ladder.side, integer_lots)
    model = _CACHE.get(key)
    if model is None:
        model = _CACHE[key] = _Model(V, L, ladder.side, integer_lots)
    model.es.value = e * s
    model.ps.value = p * s
    model.s.value = s
    model.step.value = step
    model.free.value = np.where(has_lot, 0.0, cap)
    model.lots.value = np.where(has_lot, np.floor(cap / np.where(has_lot, step, 1.0) + 1e-9), 0.0)
    model.min_q.value = rules.min_amount / target
    model.min_n.value = rules.min_notional / (target * mid)
    model.cap.value = cap
    model.fixed.value = rules.fixed / (target * mid)
    model.k.value = float(rules.max_venues if rules.max_venues is not None else V)
    hi = min(1.0, float(cap.sum()))
    model.hi.value = hi
    model.lo.value = max(0.0, hi - float(step.max(initial=0.0)) * (1 + 1e-9))
    model.rs.value = 2.0 * float(np.abs(e).max(initial=1.0)) * s
    started = time.perf_counter()
    try:
        with quiet_stdout():  # HiGHS prints a banner from C++ on every new solver
            model.problem.solve(
                solver=cp.HIGHS, time_limit=time_limit, mip_rel_gap=1e-9, verbose=False
            )
    except cp.error.SolverError:
        return None
    elapsed = (time.perf_counter() - started) * 1e3
    status = str(model.problem.status)
    if model.y.value is None or status not in ("optimal", "optimal_inaccurate", "user_limit"):
        return None
    q = (np.asarray(model.y.value) * s).sum(axis=1) * target
    lots = np.asarray(model.n.value) if model.n.value is not None else np.zeros(V)
    lots = np.rint(lots) if integer_lots else np.floor(lots + 1e-9)
    q = np.where(has_lot, lots * rules.step, np.maximum(q, 0.0))
    q[np.asarray(model.z.value) < 0.5] = 0.0
    gap = _gap(model.problem)
    return MilpResult(q, gap, status, elapsed, integer_lots)


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 (C-level prints) so that --json output stays clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _gap(problem: Any) -> float | None:
    stats = getattr(problem.solver_stats, "extra_stats", None)
    gap = getattr(stats, "mip_gap", None)
    if gap is None or not math.isfinite(gap):
        return None
    return float(max(gap, 0.0))
