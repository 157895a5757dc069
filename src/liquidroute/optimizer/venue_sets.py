"""The rules' continuous relaxation solved exactly: branch and bound over the venues used.

With the lots relaxed (amounts continuous, minimums and caps kept), the rules problem is,
over the set S of venues used (c = e for a buy, −e for a sell, so that both minimise):

    minimise  Σ_{v∈S} (C_v(q_v) + f_v)   s.t.  Σ_{v∈S} q_v = T,  ℓ_v ≤ q_v ≤ u_v,  |S| ≤ K

ℓ_v is venue v's least order (its minimum lot count m_v in base units, so every split on
the lots obeys it) and u_v its cap. For a fixed S the problem is convex and separable:
each venue takes its first ℓ_v units, at cost C_v(ℓ_v), and the rest R = T − Σ ℓ_v is the
exact merge (`exact.py`) of the venues' remaining levels — those beyond ℓ_v, cut at u_v.

Branch and bound: a node fixes the venues In (used) and Out (not used); relaxing the
Free ones (each may take any amount from 0, its fixed cost charged pro rata, f_v·q/w_v
with w_v = min(u_v, T) ≥ q, which never exceeds f_v) gives a lower bound: the merge of
In's remaining levels and Free's whole levels plus Σ_In (C_v(ℓ_v) + f_v). A leaf
(no Free venue) is feasible and is S = In's optimum. All levels of both kinds are sorted
once by c, so that a node costs one masked cumulative sum (O(L)). Nodes whose bound is
within `gap` of the best leaf are pruned; the bound returned is the least bound of the
pruned nodes and the best leaf, so best − bound ≤ gap·|best| is proven.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from liquidroute.model import FloatArray
from liquidroute.optimizer.curves import IntArray, Ladder, take_prefix


@dataclass(frozen=True, slots=True)
class Relaxed:
    """The relaxation's optimum: amounts per venue (base), its cost and a proven bound."""

    amounts: FloatArray
    objective: float
    bound: float
    nodes: int


def _levels(
    ladder: Ladder, v: int, least: float, cap: float
) -> tuple[float, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Venue v's forced cost C_v(ℓ), then (c, size) of its whole and remaining levels."""
    lo, hi = int(ladder.offsets[v]), int(ladder.offsets[v + 1])
    sign = 1.0 if ladder.side == "buy" else -1.0
    c = sign * ladder.eff[lo:hi]
    size = take_prefix(ladder.size[lo:hi], cap)
    if len(size) > 1:  # levels past the cap (or past the order) are empty: cut them
        cut = int(np.searchsorted(np.cumsum(size), cap * (1 - 1e-12), side="left")) + 1
        c, size = c[:cut], size[:cut]
    taken = take_prefix(size, least)
    return float(c @ taken), c, size, c, size - taken


def relax_venue_sets(
    ladder: Ladder,
    target: float,
    least: FloatArray,
    cap: FloatArray,
    fixed: FloatArray,
    usable: np.typing.NDArray[np.bool_],
    max_venues: int | None,
    *,
    gap: float = 1e-9,
    max_nodes: int = 4096,
    admits: Callable[[np.typing.NDArray[np.bool_]], bool] | None = None,
    seeds: tuple[np.typing.NDArray[np.bool_], ...] = (),
    cutoff: float = math.inf,
    skip: np.typing.NDArray[np.bool_] | None = None,
) -> Relaxed | None:
    """The relaxation's optimum (see module doc); None when it needs over `max_nodes`.

    An infeasible relaxation (no set of venues can hold the target) has objective inf.

    `admits(S)` is a necessary condition for a set to be usable on the lots (for
    instance: the gcd of its lots divides T); leaves failing it are infeasible, which
    keeps the bound valid and tighter. `seeds` are sets evaluated first, as incumbents.

    With a `cutoff` (the cost of a known split on the lots), nodes are pruned against it
    and the set `skip` (that split's, bounded by the caller) is left out: the result's
    `bound` then covers every other set, and its `objective` is inf unless some other set's
    relaxation beats the cutoff.
    """
    nv = ladder.n_venues
    forced = np.zeros(nv)
    parts_c, parts_s, parts_v, parts_t = [], [], [], []
    for v in range(nv):
        if not usable[v]:
            continue
        f_cost, c_all, s_all, c_rest, s_rest = _levels(
            ladder, v, float(least[v]), min(float(cap[v]), target)
        )
        forced[v] = f_cost
        # a Free venue that takes q ≤ w = min(u_v, T) pays f_v ≥ f_v·q/w: a valid linear
        # charge that keeps the bound close when fixed costs matter
        charge = float(fixed[v]) / max(min(float(cap[v]), target), 1e-300)
        for kind, (cv, sv) in enumerate(((c_all + charge, s_all), (c_rest, s_rest))):
            keep = sv > 0
            parts_c.append(cv[keep])
            parts_s.append(sv[keep])
            parts_v.append(np.full(int(keep.sum()), v, dtype=np.intp))
            parts_t.append(np.full(int(keep.sum()), kind, dtype=np.intp))
    if not parts_c:
        return None
    c = np.concatenate(parts_c)
    order = np.argsort(c, kind="stable")
    c = c[order]
    s = np.concatenate(parts_s)[order]
    venue: IntArray = np.concatenate(parts_v)[order]
    tag: IntArray = np.concatenate(parts_t)[order]
    cs = c * s
    entry = forced + fixed

    def evaluate(inside: np.typing.NDArray[np.bool_], free: np.typing.NDArray[np.bool_]) -> float:
        rest = target - float(least[inside].sum())
        if rest < -1e-12 * target:
            return math.inf
        sel = np.where(tag == 0, free[venue], inside[venue])
        cum = np.cumsum(s[sel])
        if not len(cum) or cum[-1] < rest * (1 - 1e-12):
            return math.inf if rest > 1e-12 * target else float(entry[inside].sum())
        k = min(int(np.searchsorted(cum, rest, side="left")), len(cum) - 1)
        before = float(cum[k - 1]) if k else 0.0
        value = float(cs[sel][:k].sum()) + float(c[sel][k]) * (rest - before)
        return value + float(entry[inside].sum())

    def amounts(inside: np.typing.NDArray[np.bool_]) -> FloatArray:
        rest = max(target - float(least[inside].sum()), 0.0)
        sel = np.flatnonzero((tag == 1) & inside[venue])
        take = take_prefix(s[sel], rest)
        out = np.where(inside, least, 0.0)
        np.add.at(out, venue[sel], take)
        return np.asarray(out, dtype=np.float64)

    k_max = nv if max_venues is None else int(max_venues)

    def leaf(inside: np.typing.NDArray[np.bool_]) -> float:
        if not inside.any() or int(inside.sum()) > k_max or (admits and not admits(inside)):
            return math.inf
        return evaluate(inside, np.zeros(nv, dtype=bool))

    first = np.full(nv, math.inf)  # each venue's cheapest level: likely venues branch first
    np.minimum.at(first, venue[tag == 0], c[tag == 0])
    ranking = [v for v in np.argsort(first, kind="stable").tolist() if usable[v]]
    best_value, best_set = cutoff, None
    for seed in seeds:
        value = leaf(seed)
        if value < best_value:
            best_value, best_set = value, seed
    pruned = math.inf
    nodes = 0
    stack = [(np.zeros(nv, dtype=bool), 0)]
    while stack:
        inside, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            return None
        free = np.zeros(nv, dtype=bool)
        if int(inside.sum()) < k_max:
            free[ranking[depth:]] = True
        bound = evaluate(inside, free)
        if math.isfinite(best_value) and bound >= best_value - gap * abs(best_value):
            pruned = min(pruned, bound)
            continue
        if not free.any():
            if skip is not None and np.array_equal(inside, skip):
                continue
            if inside.any() and (admits is None or admits(inside)):
                best_value, best_set = bound, inside
            continue
        v = ranking[depth]
        out = inside.copy()
        with_v = inside.copy()
        with_v[v] = True
        stack.append((out, depth + 1))  # explored second
        stack.append((with_v, depth + 1))  # the cheap side first: the bound tightens early
    if best_set is None:  # nothing beats the cutoff (`bound` covers the rest), or infeasible
        return Relaxed(np.zeros(nv), math.inf, pruned, nodes)
    return Relaxed(amounts(best_set), best_value, min(best_value, pruned), nodes)


def lagrange_bound(
    ladder: Ladder,
    members: list[int],
    low: FloatArray,
    high: FloatArray,
    lot: FloatArray,
    fixed: FloatArray,
    target: float,
    prices: list[float],
) -> float:
    """A lower bound on every split of `target` that uses exactly the venues `members` on
    their lots (q_v in lot_v·Z within [low_v, high_v]; lot 0 = continuous): the Lagrangian

        L(λ) = λT + Σ_{v∈S} (f_v + min_q (C_v(q) − λq)),

    each venue's minimum taken over its lattice points — the two lattice neighbours of the
    continuous minimiser of the convex C_v(q) − λq — maximised over the candidate `prices`.
    Each range is first narrowed to what the others' ranges leave of T.
    It sees the lots, which the continuous relaxation cannot.
    """
    sign = 1.0 if ladder.side == "buy" else -1.0
    curves = [ladder.venue_curve(v) for v in members]
    high = np.minimum(high, ladder.depth())
    least, most = float(low[members].sum()), float(high[members].sum())
    # with all of S used, venue v holds at most T − Σ_{w≠v} low_w, at least T − Σ_{w≠v} high_w
    top = {v: min(float(high[v]), target - (least - float(low[v]))) for v in members}
    bottom = {v: max(float(low[v]), target - (most - float(high[v]))) for v in members}
    if any(bottom[v] > top[v] * (1 + 1e-12) for v in members):
        return math.inf  # S cannot hold the target at all
    best = -math.inf
    for lam in prices:
        total = lam * target
        for v, (q, c) in zip(members, curves, strict=True):
            lo, hi = bottom[v], top[v]
            inside = (q >= lo) & (q <= hi)
            grid = np.concatenate(([lo, hi], q[inside]))
            h = sign * np.interp(grid, q, c) - lam * grid
            star = float(grid[int(np.argmin(h))])
            if lot[v] > 0:
                ns = (math.floor(star / lot[v] + 1e-9), math.ceil(star / lot[v] - 1e-9))
                points = [
                    n * lot[v] for n in ns if lo * (1 - 1e-12) <= n * lot[v] <= hi * (1 + 1e-12)
                ]
                points = points or [lo, hi]
            else:
                points = [star]
            total += float(fixed[v]) + min(
                sign * float(np.interp(p, q, c)) - lam * p for p in points
            )
        best = max(best, total)
    return best
