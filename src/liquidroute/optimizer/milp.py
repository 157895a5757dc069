"""The optimal split under exchange rules: a mixed-integer program solved by HiGHS (highspy).

In the integer form of the rules (`rules.Lattice`: grid g, venue lots k_v, lot counts
n_v ∈ {0} ∪ [m_v, M_v]) with level fills x_{v,l} in grid units and use-switches z_v,
for a buy (a sell minimises −Σ e·x + Σ f·z, i.e. maximises net proceeds):

    minimise   Σ_{v,l} e_{v,l} x_{v,l} + Σ_v f_v z_v
    s.t.       Σ_l x_{v,l} = k_v n_v                 (the lots; n_v ∈ ℤ for every lot size)
               0 ≤ x_{v,l} ≤ s_{v,l}
               m_v z_v ≤ n_v ≤ M_v z_v              (min amount and min notional, caps)
               Σ_v z_v ≤ K
               Σ_v Σ_l x_{v,l} = T                   (T on the lattice: see nearest_reachable)

Lots stay integer at any scale: in grid units a lot is k_v ≥ 1, so the solver's absolute
tolerances (see `_highs`) are far below one lot, and the lot counts it returns are
rounded and checked in exact integer arithmetic; every venue's levels are then walked
again for the cost, which is what the gap is measured on. The objective is the cost
itself (per grid unit, divided by the mid, so the coefficients are near 1; no fill
reward), so HiGHS's
relative gap is the gap in cost, and `MilpResult.bound` is a proven lower bound on the cost.

`prune = (λ, slack)` drops levels no optimal split can reach. For any λ, weak duality gives
D(λ) = λT + Σ_{v,l} min(0, e_{v,l} − λ) s_{v,l} ≤ the cost of every split of T, and a split
that uses level l of venue v fills the levels before it, which costs at least
D(λ) + Σ_{j<l} (e_{v,j} − λ)⁺ s_{v,j}. With slack = UB − D(λ), UB the cost of a feasible
split of exactly T, a level whose preceding excess exceeds the slack is never used.

`nearest_reachable` solves the lattice alone (no books: 2V variables): the largest sum
≤ T and the smallest ≥ T the rules allow.

highspy is imported lazily. Both return None when HiGHS fails or finds no solution.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from liquidroute.model import FloatArray
from liquidroute.optimizer.curves import Ladder, take_prefix
from liquidroute.optimizer.rules import Lattice, VenueRules


@dataclass(frozen=True, slots=True)
class MilpResult:
    """Amounts per venue (base), HiGHS's status and what it proved.

    `bound` is a proven lower bound on the cost to minimise (buy: spend + fixed costs;
    sell: −(proceeds − fixed costs)); `gap` = (cost − bound)/|cost| of the solver's own
    solution, in cost terms.
    """

    amounts: FloatArray
    lots: tuple[int, ...]
    bound: float | None
    gap: float | None
    status: str
    solve_ms: float


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


def _highs(time_limit: float, mip_gap: float, magnitude: float = 1.0) -> Any:
    """A silent HiGHS with tolerances from `mip_gap` (see module doc).

    The relative gap is `mip_gap` itself and the dual tolerance (reduced costs, whose
    coefficients are near 1) follows it, within [1e-10, 1e-7]. Primal and integrality
    tolerances are absolute, in grid units where a lot is ≥ 1: 1e-7 and 1e-6, raised with
    the model's `magnitude` (the largest amount in grid units) to what double precision
    can hold (≈ 1e-15 of it), so that they stay far below one lot.
    """
    import highspy

    with quiet_stdout():  # the banner is printed from C++ when a solver is created
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    dual = min(max(mip_gap, 1e-10), 1e-7)
    primal = max(1e-7, 1e-15 * magnitude)
    for name, value in (
        ("output_flag", False),
        ("time_limit", float(time_limit)),
        ("mip_rel_gap", float(mip_gap)),
        ("mip_abs_gap", 0.0),
        ("mip_feasibility_tolerance", 10 * primal),
        ("primal_feasibility_tolerance", primal),
        ("dual_feasibility_tolerance", dual),
    ):
        h.setOptionValue(name, value)
    return h


def _pass(
    h: Any,
    cost: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    rows: list[tuple[list[int], list[float], float, float]],
    integer: FloatArray,
) -> None:
    """Load min cost·x s.t. row_lo ≤ A x ≤ row_hi, lower ≤ x ≤ upper (A given by rows)."""
    import highspy

    inf = highspy.kHighsInf
    starts, index, value = [0], [], []
    row_lo, row_hi = [], []
    for cols, coefs, lo, hi in rows:
        index.extend(cols)
        value.extend(coefs)
        starts.append(len(index))
        row_lo.append(-inf if lo == -math.inf else lo)
        row_hi.append(inf if hi == math.inf else hi)
    upper = np.where(np.isinf(upper), inf, upper)
    h.passModel(
        len(cost),
        len(rows),
        len(index),
        int(highspy.MatrixFormat.kRowwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        np.asarray(cost, dtype=np.float64),
        np.asarray(lower, dtype=np.float64),
        np.asarray(upper, dtype=np.float64),
        np.asarray(row_lo, dtype=np.float64),
        np.asarray(row_hi, dtype=np.float64),
        np.asarray(starts[:-1], dtype=np.int32),
        np.asarray(index, dtype=np.int32),
        np.asarray(value, dtype=np.float64),
        np.asarray(integer, dtype=np.int32),
    )


def _switch_rows(
    lat: Lattice, rules: VenueRules, n_col: int, z_col: int
) -> list[tuple[list[int], list[float], float, float]]:
    """m_v z_v ≤ n_v ≤ M_v z_v per venue, and Σ z ≤ K."""
    V = len(lat.k)
    rows: list[tuple[list[int], list[float], float, float]] = []
    for v in range(V):
        if not lat.usable[v]:
            continue
        low = max(float(lat.min_n[v]), 1.0 if lat.integer[v] else 0.0)
        rows.append(([n_col + v, z_col + v], [1.0, -low], 0.0, math.inf))
        rows.append(([n_col + v, z_col + v], [1.0, -float(lat.max_n[v])], -math.inf, 0.0))
    if rules.max_venues is not None and rules.max_venues < V:
        rows.append((list(range(z_col, z_col + V)), [1.0] * V, -math.inf, rules.max_venues))
    return rows


def _lots(lat: Lattice, values: FloatArray) -> tuple[list[float], bool]:
    """Lot counts from the solver's values, rounded to integers where lots are integer."""
    out, ok = [], True
    for v, value in enumerate(values.tolist()):
        if lat.integer[v]:
            r = round(value)
            ok &= abs(value - r) <= 1e-3
            out.append(float(r))
        else:
            out.append(max(value, 0.0))
    return out, ok


def nearest_reachable(
    lat: Lattice, rules: VenueRules, target_units: float, *, time_limit: float = 1.0
) -> tuple[float | None, float | None]:
    """(largest, smallest) sums Σ k_v n_v the rules allow with sum ≤ / ≥ `target_units`.

    Either is None when no such sum exists (the smallest order exceeds the target; the
    caps add up to less than it).
    """
    V = len(lat.k)
    usable = lat.usable
    lower = np.zeros(2 * V)
    upper = np.concatenate((np.where(usable, lat.max_n, 0.0), usable.astype(float)))
    integer = np.concatenate((np.asarray(lat.integer, dtype=float), np.ones(V)))
    rows = _switch_rows(lat, rules, 0, V)
    k = [float(x) for x in lat.k]
    out: list[float | None] = []
    low: float
    high: float
    if lat.all_integer:  # whole sums: the nearest whole numbers on each side
        low, high = math.floor(target_units + 1e-9), max(math.ceil(target_units - 1e-9), 1)
    else:
        low, high = target_units, target_units
    for sense in (-1.0, 1.0):
        h = _highs(time_limit, 0.0, max(target_units, 1.0))
        bound = (-math.inf, low) if sense < 0 else (high, math.inf)
        total = (list(range(V)), k, *bound)
        _pass(h, sense * np.concatenate((k, np.zeros(V))), lower, upper, [*rows, total], integer)
        h.run()
        if str(h.getModelStatus()).rsplit(".", 1)[-1] != "kOptimal":
            out.append(None)
            continue
        lots, ok = _lots(lat, np.asarray(h.getSolution().col_value[:V]))
        out.append(sum(n * kv for n, kv in zip(lots, lat.k, strict=True)) if ok else None)
    return out[0], out[1]


def solve_rules(
    ladder: Ladder,
    rules: VenueRules,
    lat: Lattice,
    target_units: float,
    *,
    time_limit: float = 1.0,
    mip_gap: float = 1e-9,
    prune: tuple[float, float] | None = None,
    start: FloatArray | None = None,
    budget: float | None = None,
    relaxed: bool = False,
    fix: dict[int, bool] | None = None,
) -> MilpResult | None:
    """The rule-respecting optimum for exactly `target_units` grid units (see module doc).

    `fix` forces venues in (True: z_v = 1) or out (False). A solution in which a venue
    trades with its switch off, or under its minimum, by the solver's integrality
    tolerance (z_v ≈ 1e-9 times a big cap), is never returned: it is re-solved with those
    venues forced out and, apart, in, and the better valid one is kept.

    `relaxed=True` keeps the switches z_v binary but the lot counts n_v continuous: its
    `bound` is then a lower bound for the lot problem and `amounts` (not on the lots) the
    continuous optimum, which `rules.lattice_split` puts on the lots.

    The solver stops once it has proven the answer within `mip_gap` (relative, in cost).
    `start` (base amounts per venue, a feasible split of the target) seeds the search.

    With a `budget` (quote), the amount is free up to `target_units` and the quote side is
    bounded instead: a buy takes the most base whose cost (fixed costs included) is at most
    the budget (objective −Σ x), a sell the least base whose net proceeds Σ e x − Σ f z
    reach it (objective Σ x) — both convex in the amounts, so every venue still fills its
    levels best first; `bound` and `gap` are then in base terms.
    """
    V = ladder.n_venues
    u = lat.unit_float
    target = target_units * u
    sign = 1.0 if ladder.side == "buy" else -1.0
    keep = np.zeros(V, dtype=np.intp)
    windows = [(0.0, math.inf, False)] * V
    for v in range(V):
        lo, hi = int(ladder.offsets[v]), int(ladder.offsets[v + 1])
        if not lat.usable[v] or hi == lo:
            continue
        cum = np.cumsum(ladder.size[lo:hi])
        need = min(target, float(lat.max_n[v]) * lat.k[v] * u)  # no venue needs more
        keep[v] = min(int(np.searchsorted(cum, need * (1 - 1e-12), side="left")) + 1, hi - lo)
        if prune is not None:
            windows[v] = _window(ladder, v, *prune)
            reach = int(np.searchsorted(cum, windows[v][1] * (1 - 1e-12), side="left")) + 1
            keep[v] = max(1, min(int(keep[v]), reach))
    mid = float(np.median(ladder.price)) if len(ladder.price) else 1.0
    idx = np.concatenate(
        [np.arange(ladder.offsets[v], ladder.offsets[v] + keep[v]) for v in range(V)]
        + [np.zeros(0, dtype=np.intp)]
    ).astype(np.intp)
    n_x = len(idx)
    n_col, z_col = n_x, n_x + V
    scale = mid * u  # cost of one grid unit at the mid: objective coefficients near ±1
    cost = np.concatenate((sign * ladder.eff[idx] / mid, np.zeros(V), rules.fixed / scale))
    lower = np.zeros(n_x + 2 * V)
    usable = lat.usable
    upper = np.concatenate(
        (ladder.size[idx] / u, np.where(usable, lat.max_n, 0.0), usable.astype(float))
    )
    first = 0
    for v, (a, b, forced) in enumerate(windows):  # the windows the bound proves
        k = int(keep[v])
        if forced and usable[v]:
            lot = lat.k[v] * u
            low = a / lot if not lat.integer[v] else math.ceil(a / lot * (1 - 1e-12) - 1e-9)
            lower[n_col + v] = min(max(low, float(lat.min_n[v])), upper[n_col + v])
            lower[z_col + v] = 1.0
            full = np.cumsum(ladder.size[idx[first : first + k]]) <= a * (1 - 1e-12)
            lower[first : first + k][full] = upper[first : first + k][full]
        if math.isfinite(b) and usable[v]:
            top = b / (lat.k[v] * u)
            top = math.floor(top * (1 + 1e-12) + 1e-9) if lat.integer[v] else top
            upper[n_col + v] = max(min(upper[n_col + v], top), lower[n_col + v])
        first += k
    for v, on in (fix or {}).items():
        lower[z_col + v] = upper[z_col + v] = float(on)
        if not on:
            lower[n_col + v] = upper[n_col + v] = 0.0
    lot_int = np.zeros(V) if relaxed else np.asarray(lat.integer, dtype=float)
    integer = np.concatenate((np.zeros(n_x), lot_int, np.ones(V)))
    rows: list[tuple[list[int], list[float], float, float]] = []
    first = 0
    for v in range(V):
        cols = list(range(first, first + int(keep[v])))
        first += int(keep[v])
        rows.append(([*cols, n_col + v], [1.0] * len(cols) + [-float(lat.k[v])], 0.0, 0.0))
    rows += _switch_rows(lat, rules, n_col, z_col)
    rows.append(
        (list(range(n_x)), [1.0] * n_x, -math.inf if budget else target_units, target_units)
    )
    if budget is not None:  # buy: Σ e x + Σ f z ≤ budget; sell: Σ e x − Σ f z ≥ budget
        spend = np.concatenate((ladder.eff[idx] / mid, np.zeros(V), sign * rules.fixed / scale))
        cols = np.flatnonzero(spend).tolist()
        limit = budget / scale * (1 - sign * 1e-12)
        rows.append(
            (cols, spend[cols].tolist(), *((-math.inf, limit) if sign > 0 else (limit, math.inf)))
        )
        cost = np.concatenate((-sign * np.ones(n_x), np.zeros(2 * V)))  # most / least base
        scale = u  # the objective is ∓Σ x in grid units: back to base
    h = _highs(time_limit, mip_gap, max(target_units, 1.0))
    if budget is not None:  # whole grid units: an absolute gap under one unit is optimal
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_abs_gap", 0.99)
    _pass(h, cost, lower, upper, rows, integer)
    if start is not None:
        _seed(h, ladder, lat, idx, keep, start)
    started = time.perf_counter()
    h.run()
    elapsed = (time.perf_counter() - started) * 1e3
    status = str(h.getModelStatus()).rsplit(".", 1)[-1]
    info = h.getInfo()
    if status not in ("kOptimal", "kTimeLimit", "kInterrupt") or info.primal_solution_status < 2:
        return None
    values = np.asarray(h.getSolution().col_value)
    bound = float(info.mip_dual_bound) * scale if math.isfinite(info.mip_dual_bound) else None
    objective = float(info.objective_function_value) * scale
    gap = None if bound is None else max(objective - bound, 0.0) / max(abs(objective), 1e-300)
    if relaxed:
        amounts = np.where(values[z_col:] > 0.5, values[n_col:z_col] * np.asarray(lat.k) * u, 0.0)
        return MilpResult(amounts, (), bound, gap, status[1:].lower(), elapsed)
    lots, ok = _lots(lat, values[n_col:z_col])
    if not ok:
        return None
    amounts = np.array([lat.amount(v, n) if usable[v] else 0.0 for v, n in enumerate(lots)])
    if budget is None and not math.isclose(
        sum(n * k for n, k in zip(lots, lat.k, strict=True)), target_units, rel_tol=1e-12
    ):
        return None
    wrong = [
        v
        for v, n in enumerate(lots)
        if n > 0 and (values[z_col + v] < 0.5 or n < lat.min_n[v] * (1 - 1e-12))
    ]
    if wrong:
        if fix is not None:
            return None
        again = [
            solve_rules(
                ladder,
                rules,
                lat,
                target_units,
                time_limit=time_limit,
                mip_gap=mip_gap,
                prune=prune,
                budget=budget,
                fix=dict.fromkeys(wrong, on),
            )
            for on in (False, True)
        ]
        valid = [r for r in again if r is not None]
        if not valid:
            return None
        ladder_cost = [_cost(ladder, rules, r.amounts) for r in valid]
        best = valid[int(np.argmin(ladder_cost))]
        return MilpResult(best.amounts, best.lots, bound, best.gap, best.status, elapsed)
    int_lots = tuple(int(n) if lat.integer[v] else 0 for v, n in enumerate(lots))
    return MilpResult(amounts, int_lots, bound, gap, status[1:].lower(), elapsed)


def _cost(ladder: Ladder, rules: VenueRules, amounts: FloatArray) -> float:
    """The objective of a split: book cost (±) plus the fixed costs of the venues used."""
    from liquidroute.optimizer.exact import allocate

    alloc = allocate(ladder, amounts)
    sign = 1.0 if ladder.side == "buy" else -1.0
    return sign * alloc.value + float(rules.fixed[amounts > 0].sum())


def _window(ladder: Ladder, v: int, lam: float, slack: float) -> tuple[float, float, bool]:
    """[a, b] ∋ q_v for every split within `slack` of D(λ), and whether q_v = 0 is excluded.

    With c = ±e and h_v(q) = Σ_l (c_l − λ) x_l(q) for venue v's prefix fill x(q) (convex,
    piecewise linear), cost − D(λ) = Σ_v (h_v(q_v) − min h_v) ≥ 0 term by term, so each
    venue's term is at most the slack: q_v lies where h_v ≤ min h_v + slack, an interval.
    When h_v(0) exceeds it (the venue holds much liquidity better than λ) q_v = 0 is out.
    """
    lo, hi = int(ladder.offsets[v]), int(ladder.offsets[v + 1])
    sign = 1.0 if ladder.side == "buy" else -1.0
    q = np.concatenate(([0.0], np.cumsum(ladder.size[lo:hi])))
    h = np.concatenate(
        ([0.0], np.cumsum((sign * ladder.eff[lo:hi] - sign * lam) * ladder.size[lo:hi]))
    )
    j = int(np.argmin(h))
    level = h[j] + slack * (1 + 1e-9) + 1e-12 * max(abs(h[j]), 1.0)
    if h[0] <= level:
        a = 0.0
    else:  # h decreases from q_0 to q_j: the last breakpoint above the level, then interpolate
        i = int(np.flatnonzero(h[: j + 1] > level)[-1])
        a = float(np.interp(level, [h[i + 1], h[i]], [q[i + 1], q[i]]))
    above = np.flatnonzero(h[j:] > level)
    if not len(above):
        b = math.inf
    else:
        i = j + int(above[0])
        b = float(np.interp(level, [h[i - 1], h[i]], [q[i - 1], q[i]]))
    # the interpolation's rounding must not cut off a split that sits on an end (a lot
    # exactly at a): widen by far less than any lot
    return a * (1 - 1e-9), b * (1 + 1e-9), h[0] > level


def _seed(h: Any, ladder: Ladder, lat: Lattice, idx: Any, keep: Any, start: FloatArray) -> None:
    """Pass a feasible split as HiGHS's first incumbent (levels walked in book order)."""
    V = ladder.n_venues
    u = lat.unit_float
    x, first = np.zeros(len(idx)), 0
    n, z = np.zeros(V), np.zeros(V)
    for v in range(V):
        k = int(keep[v])
        sizes = ladder.size[idx[first : first + k]] / u
        want = float(start[v]) / u
        x[first : first + k] = take_prefix(sizes, want)
        first += k
        n[v] = want / lat.k[v]
        if lat.integer[v]:
            n[v] = round(n[v])
        z[v] = 1.0 if start[v] > 0 else 0.0
    values = np.concatenate((x, n, z))
    h.setSolution(len(values), np.arange(len(values), dtype=np.int32), values)
