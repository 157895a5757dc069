"""Multi-hop routing: one joint LP over every book, layered by hop count so that no flow cycles.

Graph. Nodes are assets; each book side is one edge: a market BASE/QUOTE on venue v gives
QUOTE -> BASE ("buy", walking the asks) and BASE -> QUOTE ("sell", walking the bids). On
edge e with levels l (price p, size s in base units, taker fee f), x_{e,l} in [0, s_{e,l}]
is the base amount traded and

    buy edge:   in_e = Σ_l p(1+f) x_{e,l}  (quote spent)    out_e = Σ_l x_{e,l}          (base)
    sell edge:  in_e = Σ_l x_{e,l}          (base sold)      out_e = Σ_l p(1-f) x_{e,l}  (quote)

Layered LP (time-expanded by hop count). Node (u, k) is "asset u after k hops",
k = 0..H (H = max_hops). Edge e = (u -> v) has a copy (e, k) from (u, k) to (v, k+1) with
its own level variables x_{e,l,k}; the copies share the book:  Σ_k x_{e,l,k} <= s_{e,l}.
The source emits only at layer 0, the target absorbs at every layer, no copy enters the
source or leaves the target. For exact input A (exact output is the mirror: minimise the
source's outflow subject to the target's inflow = A):

    maximise    Σ_{(e,k): dst e = T} out_{e,k}
    s.t.        Σ_{e: src e = S} in_{e,0} = A
                Σ_{(e,k-1) into u} out_{e,k-1} = Σ_{(e,k) out of u} in_{e,k}    u ∉ {S, T}, 1<=k<H
                Σ_k x_{e,l,k} <= s_{e,l},   x >= 0

Why it cannot pump. Every unit reaching (T, k) came from (S, 0) through k arcs: the
layered graph is acyclic, so there is no circulation, a walk has at most H edges, and the
input is never 0 for a positive output (each arc's gain is finite). A leg never carries
more than A·R_k(u) of its asset u, R_k(u) the best-price product of the walks of k hops.

Why the answer is a set of simple paths. Decompose the layered flow into walks
S = u_0 -> u_1 -> ... -> u_m = T, m <= H (a flow on a DAG decomposes into source-sink
walks, each arc keeping its realised gain out/in). No arc enters S or leaves T, so S and T
appear only at the ends; consecutive assets differ (no market trades an asset against
itself). Hence for H <= 3 every walk is a simple path, whatever the prices: the layered LP
IS the LP over simple paths of at most H hops, exact, even when the books hold profitable
cycles. For H >= 4 a walk can revisit an asset (u1 -> u2 -> u1 ...). The layered LP is a
relaxation of the simple-path LP (every simple path is a layered walk); `solve_layered`
decomposes its optimum, and if some walk repeats an asset u, u is *tracked*: nodes become
(asset, layer, set of tracked assets visited), and an arc into a tracked asset already
visited does not exist. Simple paths survive the expansion, so it is still a relaxation;
re-solve, and repeat until no walk repeats an asset. The final optimum is then a flow on
simple paths that no simple-path flow beats: optimal, exactly. Tracking costs a factor 2
in states per tracked asset; past MAX_TRACKED assets, the arc copies closing a repeat
are removed instead (`restricted`: a flow on simple paths, not proven optimal over all).

Profitable cycles (a product of best effective rates > 1 around a loop of books: crossed
books across venues, triangular mispricing) are found by Bellman-Ford on -log(rate) over
the best edge per asset pair (`profitable_cycles`) and reported, never routed around.

Sizes. Only arc copies on some S -> T walk of <= H hops enter the LP: (e, k) is usable iff
src e is reachable from S in exactly k hops and T from dst e in <= H-k-1 hops (forward and
backward breadth-first sets, linear in edges x H; no path enumeration). For exact input,
levels beyond Σ_k A·R_k(src e) cumulative input are never reached and are dropped. The
matrices are built vectorised (CSC) and passed to HiGHS through highspy; amounts are
scaled to fractions of the order's value (assets valued at best rates from the source) and
levels to fractions of their size, so every coefficient is O(1). An edge into the target
needs a single copy (the target absorbs at every layer: its input is drawn from each
(src, k)), which removes the shared-capacity rows for H <= 3. HiGHS sees small restricted
LPs: a coarse LP fixes most levels at full or empty, and reduced costs certify the fixing
(`_solve_lp`, exact to the LP's tolerances, else the full LP is solved).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from liquidroute.model import FloatArray, Side
from liquidroute.optimizer.curves import walk_book

IntArray = npt.NDArray[np.intp]
EdgeKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Edge:
    """One book side as a conversion from `src` to `dst` asset.

    Per level, `in_rate` units of `src` are consumed and `out_rate` units of `dst` produced
    per unit of x (base); `rate` is dst per src at the best level. Computed once.
    """

    venue: str
    symbol: str
    side: str  # "buy" (quote -> base) or "sell" (base -> quote)
    src: str
    dst: str
    price: FloatArray
    size: FloatArray
    fee: float
    key: EdgeKey = field(init=False, repr=False, compare=False)
    in_rate: FloatArray = field(init=False, repr=False, compare=False)
    out_rate: FloatArray = field(init=False, repr=False, compare=False)
    rate: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        buy = self.side == "buy"
        ones = np.ones(len(self.price))
        in_rate = self.price * (1 + self.fee) if buy else ones
        out_rate = ones if buy else self.price * (1 - self.fee)
        set_ = object.__setattr__
        set_(self, "key", (self.venue, self.symbol, self.side))
        set_(self, "in_rate", in_rate)
        set_(self, "out_rate", out_rate)
        set_(self, "rate", float(out_rate[0] / in_rate[0]) if len(self.price) else 0.0)

    @property
    def label(self) -> str:
        return f"{self.venue}:{self.symbol}:{self.side}"


@dataclass(frozen=True, slots=True)
class ArcFlow:
    """The flow on one layered arc copy: edge `edge` (index into FlowSolution.edges) taken
    as hop `layer + 1`, consuming `amount_in` of its src and producing `amount_out`."""

    edge: int
    layer: int
    amount_in: float
    amount_out: float
    state_in: int = 0
    state_out: int = 0


@dataclass(frozen=True, slots=True)
class PathFlow:
    """A simple source -> target path of the route and the part of the route it carries."""

    edges: tuple[Edge, ...]
    flow_in: float
    flow_out: float

    @property
    def assets(self) -> list[str]:
        return [self.edges[0].src, *(e.dst for e in self.edges)]


@dataclass(frozen=True, slots=True)
class FlowSolution:
    """Level fills per edge (keyed by Edge.key, summed over layers), with the totals."""

    x: dict[EdgeKey, FloatArray]
    amount_in: float
    amount_out: float
    status: str
    variables: int
    constraints: int
    edges: list[Edge] = field(default_factory=list)
    arcs: tuple[ArcFlow, ...] = ()
    restricted: bool = False


@dataclass(frozen=True, slots=True)
class Cycle:
    """A loop of books whose best effective rates multiply to `gain` > 1."""

    edges: tuple[Edge, ...]
    gain: float

    def describe(self) -> str:
        loop = " -> ".join([self.edges[0].src, *(e.dst for e in self.edges)])
        books = ", ".join(e.label for e in self.edges)
        return f"{loop} gains {(self.gain - 1) * 1e4:.1f} bps at best prices ({books})"


# --- which arc copies can be on a short source -> target walk -------------------------------


def _index(edges: Sequence[Edge]) -> tuple[list[str], IntArray, IntArray]:
    assets = sorted({e.src for e in edges} | {e.dst for e in edges})
    ids = {a: i for i, a in enumerate(assets)}
    src = np.fromiter((ids[e.src] for e in edges), dtype=np.intp, count=len(edges))
    dst = np.fromiter((ids[e.dst] for e in edges), dtype=np.intp, count=len(edges))
    return assets, src, dst


def usable_arcs(
    edges: Sequence[Edge],
    source: str,
    target: str,
    max_hops: int,
    bridges: Sequence[str] | None = None,
    forbidden: frozenset[tuple[int, int]] = frozenset(),
) -> list[tuple[int, int]]:
    """(edge index, layer) pairs on some source -> target walk of at most `max_hops` hops.

    Forward sets F_0 = {S}, F_{k+1} = dst of edges leaving F_k; backward sets B_0 = {T},
    B_{j+1} = B_j ∪ src of edges entering B_j; (e, k) is usable iff src e ∈ F_k and
    dst e ∈ B_{H-k-1} (never into S, never out of T, intermediates within `bridges`).
    """
    if not edges:
        return []
    assets, src, dst = _index(edges)
    n = len(assets)
    if source not in assets or target not in assets:
        return []
    s, t = assets.index(source), assets.index(target)
    allowed = np.ones(n, dtype=bool)
    if bridges is not None:
        keep = {source, target, *bridges}
        allowed = np.array([a in keep for a in assets], dtype=bool)
    ok = allowed[src] & allowed[dst] & (dst != s) & (src != t)
    back = [np.zeros(n, dtype=bool)]
    back[0][t] = True
    for _ in range(max_hops - 1):
        nxt = back[-1].copy()
        nxt[src[ok & back[-1][dst]]] = True
        back.append(nxt)
    fwd = np.zeros(n, dtype=bool)
    fwd[s] = True
    arcs: list[tuple[int, int]] = []
    for k in range(max_hops):
        mask = ok & fwd[src] & back[max_hops - k - 1][dst]
        idx = np.flatnonzero(mask)
        arcs.extend((int(i), k) for i in idx if (int(i), k) not in forbidden)
        fwd = np.zeros(n, dtype=bool)
        fwd[dst[[i for i in idx if (int(i), k) not in forbidden]]] = True
        fwd[t] = False
    return arcs


def _asset_scales(edges: Sequence[Edge], source: str) -> dict[str, float]:
    """Units of each asset worth one unit of source, from the best prices (BFS)."""
    scale = {source: 1.0}
    frontier = [source]
    while frontier:
        nxt = []
        for asset in frontier:
            for e in edges:
                if e.src == asset and e.dst not in scale and e.rate > 0:
                    scale[e.dst] = scale[asset] * e.rate
                    nxt.append(e.dst)
        frontier = nxt
    return scale


# --- HiGHS -------------------------------------------------------------------------------------

_local = threading.local()


def _highs() -> Any:
    """One silent highspy.Highs per thread (its first construction prints a banner on fd 1)."""
    h = getattr(_local, "highs", None)
    if h is None:
        import highspy

        from liquidroute.optimizer.milp import quiet_stdout

        with quiet_stdout():
            h = highspy.Highs()  # type: ignore[no-untyped-call]
        h.setOptionValue("output_flag", False)
        h.setOptionValue("primal_feasibility_tolerance", 1e-10)
        h.setOptionValue("dual_feasibility_tolerance", 1e-10)
        _local.highs = h
    return h


@dataclass(frozen=True, slots=True)
class _Lp:
    """A standard-form LP  min c·y  s.t.  lo <= A y <= hi,  0 <= y <= ub  (A in CSC)."""

    cost: FloatArray
    upper: FloatArray
    row_lo: FloatArray
    row_hi: FloatArray
    start: npt.NDArray[np.int32]
    index: npt.NDArray[np.int32]
    value: FloatArray


def _csc(
    n_cols: int, rows: IntArray, cols: IntArray, vals: FloatArray
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], FloatArray]:
    order = np.argsort(cols, kind="stable")
    start = np.zeros(n_cols + 1, dtype=np.int32)
    np.cumsum(np.bincount(cols, minlength=n_cols), out=start[1:])
    return start, rows[order].astype(np.int32), vals[order]


def _run(lp: _Lp) -> tuple[FloatArray, FloatArray] | None:
    """HiGHS on `lp`: (column values, row duals), or None unless optimal."""
    import highspy

    h = _highs()
    model = highspy.HighsLp()
    model.num_col_ = len(lp.cost)
    model.num_row_ = len(lp.row_lo)
    model.col_cost_ = lp.cost
    model.col_lower_ = np.zeros(len(lp.cost))
    model.col_upper_ = lp.upper
    model.row_lower_ = lp.row_lo
    model.row_upper_ = lp.row_hi
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = lp.start
    model.a_matrix_.index_ = lp.index
    model.a_matrix_.value_ = lp.value
    h.clearModel()
    h.passModel(model)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    sol = h.getSolution()
    y: FloatArray = np.asarray(sol.col_value, dtype=np.float64)
    dual: FloatArray = np.asarray(sol.row_dual, dtype=np.float64)
    return y, dual


def _columns(lp: _Lp) -> IntArray:
    col: IntArray = np.repeat(np.arange(len(lp.cost), dtype=np.intp), np.diff(lp.start))
    return col


def _sub_lp(lp: _Lp, col: IntArray, keep: npt.NDArray[np.bool_], at_one: FloatArray) -> _Lp:
    """`lp` over the columns `keep`, the others fixed (value `at_one`: 0 or 1) into the rows."""
    shift = np.bincount(lp.index, lp.value * at_one[col], minlength=len(lp.row_lo))
    nz = keep[col]
    cols = np.cumsum(keep)[col[nz]] - 1
    start, index, value = _csc(int(keep.sum()), lp.index[nz].astype(np.intp), cols, lp.value[nz])
    return _Lp(
        lp.cost[keep], lp.upper[keep], lp.row_lo - shift, lp.row_hi - shift, start, index, value
    )


def _coarse_lp(lp: _Lp, col: IntArray, bucket: IntArray) -> _Lp:
    """Columns of a bucket filled by one common fraction: A·P, c·P (a restriction of `lp`)."""
    n_b = int(bucket.max()) + 1
    n_rows = len(lp.row_lo)
    keys, inv = np.unique(bucket[col] * n_rows + lp.index, return_inverse=True)
    summed: FloatArray = np.bincount(inv, lp.value, minlength=len(keys)).astype(np.float64)
    rows = (keys % n_rows).astype(np.intp)
    start, index, value = _csc(n_b, rows, (keys // n_rows).astype(np.intp), summed)
    cost: FloatArray = np.bincount(bucket, lp.cost, minlength=n_b).astype(np.float64)
    infinite = np.bincount(bucket, np.isinf(lp.upper).astype(np.float64), minlength=n_b) > 0
    upper: FloatArray = np.where(infinite, math.inf, 1.0)
    return _Lp(cost, upper, lp.row_lo, lp.row_hi, start, index, value)


def _solve_lp(lp: _Lp, group: IntArray, rank: IntArray, tol: float = 1e-12) -> FloatArray | None:
    """`lp` solved exactly through small restricted LPs (bound fixing with a certificate).

    At the optimum almost every level is either filled (y = 1) or empty (y = 0); only
    levels at the marginal price of their arc copy are in between. So: split each group
    (the levels of one arc copy, best first) into ~sqrt(n) buckets and solve the coarse LP
    in which a bucket's levels share one fill (a restriction of the LP). Fix the levels of
    full buckets at 1 and of empty ones at 0; keep the levels of fractional buckets (at
    most one per row of a basic solution) as variables, and solve that restricted LP: it
    is feasible, the coarse solution being one of its points. With its duals π, each fixed
    column's reduced cost d = c - Aᵀπ must have the sign its bound needs (d <= tol at 1,
    d >= -tol at 0); if so, primal feasibility, dual feasibility and complementary
    slackness hold for the whole LP: the answer is optimal (the KKT certificate). Each
    group's margin (its last full and first empty level) is kept free as well, so that the
    restricted duals price every group where its reduced costs change sign. Otherwise
    the violators are freed and the restricted LP re-solved (still feasible, never worse);
    after 10 rounds, or if anything fails, the full LP is solved. Small LPs, and LPs with
    about as many rows as columns (shared-level rows at H >= 4), go to HiGHS whole.
    """
    n = len(lp.cost)
    if n <= 400 or n < 4 * len(lp.row_lo):  # small, or rows (shared levels) dominate
        out = _run(lp)
        return None if out is None else out[0]
    col = _columns(lp)
    per_group = np.bincount(group)
    width = np.maximum(np.ceil(np.sqrt(per_group)), 1.0)
    n_buckets = np.ceil(per_group / width).astype(np.intp)
    first = np.concatenate(([0], np.cumsum(n_buckets)[:-1]))
    bucket = first[group] + (rank // width[group]).astype(np.intp)
    coarse = _run(_coarse_lp(lp, col, bucket))
    if coarse is not None:
        fill = coarse[0][bucket]
        finite = np.isfinite(lp.upper)
        free = ~finite | ((fill > 1e-9) & (fill < 1 - 1e-9))
        full = ~free & (fill >= 1 - 1e-9)
        # each group's margin free too (its last full and first empty level), so that the
        # restricted duals price every group where its reduced costs change sign
        n_full = np.bincount(group[full], minlength=len(per_group))[group]
        free |= (rank == n_full) | (rank == n_full - 1)
        at_one = np.where(~free & full, 1.0, 0.0)
        for _ in range(10):
            out = _run(_sub_lp(lp, col, free, at_one))
            if out is None:
                break
            y = at_one.copy()
            y[free] = out[0]
            d = lp.cost - np.bincount(col, lp.value * out[1][lp.index], minlength=n)
            wrong = ~free & (((at_one == 1.0) & (d > tol)) | ((at_one == 0.0) & (d < -tol)))
            if not wrong.any():
                return y
            free |= wrong
            at_one[wrong] = 0.0  # the previous point stays feasible for the next round
    out = _run(lp)
    return None if out is None else out[0]


# --- the layered LP ----------------------------------------------------------------------------


def _best_reach(
    edges: Sequence[Edge], arcs: Sequence[tuple[int, int]], source: str, max_hops: int
) -> list[dict[str, float]]:
    """R_k(u): the best-rate product over layered walks of k hops from the source to u."""
    reach: list[dict[str, float]] = [{source: 1.0}] + [{} for _ in range(max_hops)]
    for i, k in sorted(arcs, key=lambda a: a[1]):
        e = edges[i]
        got = reach[k].get(e.src, 0.0) * e.rate
        if got > reach[k + 1].get(e.dst, 0.0):
            reach[k + 1][e.dst] = got
    return reach


def solve_layered(
    edges: Sequence[Edge],
    source: str,
    target: str,
    max_hops: int,
    *,
    amount_in: float | None = None,
    amount_out: float | None = None,
    bridges: Sequence[str] | None = None,
    in_caps: Mapping[EdgeKey, float] | None = None,
    at_most: bool = False,
    spend_bound: float | None = None,
) -> FlowSolution | None:
    """The layered LP of the module doc; None when no usable arc exists or it is infeasible.

    Give one of `amount_in` / `amount_out`. `in_caps` bounds what an edge may consume (in
    its source asset: a balance on that venue). With `at_most` the amount is a ceiling and
    the most that can be delivered is found (the partial fill when the books run out).
    `spend_bound`, for exact output, is what some simple-path route spends (the direct
    one): the optimum spends no more, so levels past it are dropped as for exact input.
    """
    forbidden: set[tuple[int, int]] = set()
    position = {e.key: i for i, e in enumerate(edges)}
    tracked: list[str] = []
    restricted = False
    for _ in range(1 + 4 * len(edges) * max_hops):
        arcs = usable_arcs(edges, source, target, max_hops, bridges, frozenset(forbidden))
        if not arcs:
            return None
        expanded = _track(edges, arcs, source, target, tracked)
        sol = _solve_arcs(
            edges,
            expanded,
            source,
            target,
            max_hops,
            amount_in,
            amount_out,
            in_caps,
            at_most,
            spend_bound,
        )
        if sol is None or max_hops <= 3:
            return sol
        closing = _repeat_closing_arcs(sol, source, target)
        if not closing:
            return _replace_restricted(sol, restricted)
        repeated = sorted({sol.edges[_position_in(sol, key)].dst for key, _ in closing})
        if len(tracked) + len(repeated) <= MAX_TRACKED:
            tracked += [a for a in repeated if a not in tracked]
            continue
        forbidden |= {(position[key], k) for key, k in closing}
        restricted = True
    return None  # pragma: no cover - each round tracks an asset or forbids an arc copy


MAX_TRACKED = 5  # assets whose revisits the state expansion forbids exactly (2^5 states)


def _position_in(sol: FlowSolution, key: EdgeKey) -> int:
    return next(j for j, e in enumerate(sol.edges) if e.key == key)


def _track(
    edges: Sequence[Edge],
    arcs: Sequence[tuple[int, int]],
    source: str,
    target: str,
    tracked: Sequence[str],
) -> list[tuple[int, int, int, int]]:
    """Arc copies (edge, layer, state in, state out) of the state-expanded layered graph.

    A node is (asset, layer, state), the state the set (bit mask) of `tracked` assets
    visited so far; an arc into a tracked asset already in the state does not exist. So no
    walk revisits a tracked asset, while every simple path keeps a copy: the LP over these
    arcs is still a relaxation of the simple-path LP, tighter by the tracked revisits.
    With nothing tracked every state is 0 and this is the plain layered graph.
    """
    if not tracked:
        return [(i, k, 0, 0) for i, k in arcs]
    bit = {a: 1 << n for n, a in enumerate(tracked)}
    states: dict[tuple[str, int], set[int]] = {(source, 0): {0}}
    out = []
    for i, k in sorted(arcs, key=lambda a: a[1]):
        e = edges[i]
        for m in sorted(states.get((e.src, k), ())):
            b = bit.get(e.dst, 0)
            if m & b:
                continue
            if e.dst == target:
                out.append((i, k, m, 0))
                continue
            out.append((i, k, m, m | b))
            states.setdefault((e.dst, k + 1), set()).add(m | b)
    return out


def _replace_restricted(sol: FlowSolution, restricted: bool) -> FlowSolution:
    if not restricted:
        return sol
    return FlowSolution(
        sol.x,
        sol.amount_in,
        sol.amount_out,
        sol.status,
        sol.variables,
        sol.constraints,
        sol.edges,
        sol.arcs,
        restricted=True,
    )


def _solve_arcs(
    all_edges: Sequence[Edge],
    arc_list: Sequence[tuple[int, int, int, int]],
    source: str,
    target: str,
    max_hops: int,
    amount_in: float | None,
    amount_out: float | None,
    in_caps: Mapping[EdgeKey, float] | None,
    at_most: bool,
    spend_bound: float | None = None,
) -> FlowSolution | None:
    """Build and solve the layered LP over the arc copies `arc_list` (see the module doc).

    Columns are y in [0, 1], the filled fraction of a level on one copy of its edge, and,
    for an edge into the target usable at several layers, draws d_k >= 0 of its input from
    each (src, k): the target absorbs at every layer, so such an edge needs one copy of its
    levels (in_e = Σ_k d_k) instead of one per layer plus a capacity row per level. Values
    are fractions of the order's value V (source units; assets at best rates from it).
    """
    used = sorted({a[0] for a in arc_list})
    edges = [all_edges[i] for i in used]
    local = {g: j for j, g in enumerate(used)}
    arcs = [(local[i], k, m0, m1) for i, k, m0, m1 in arc_list]
    n_states = 1 + max(max(a[2], a[3]) for a in arcs)
    scale = _asset_scales(edges, source)
    exact_in = amount_in is not None
    value = amount_in if exact_in else (amount_out or 0.0) / scale[target]
    assert value is not None and value > 0
    n_edges = len(edges)
    assets = sorted({e.src for e in edges} | {e.dst for e in edges})
    aid = {a: i for i, a in enumerate(assets)}
    n_assets = len(assets)
    s, t = aid[source], aid[target]
    src_id = np.array([aid[e.src] for e in edges], dtype=np.intp)
    dst_id = np.array([aid[e.dst] for e in edges], dtype=np.intp)
    layers: list[list[int]] = [[] for _ in range(n_edges)]
    for j, k, _, _ in arcs:
        layers[j].append(k)
    drawn = np.array([dst_id[j] == t and len(layers[j]) > 1 for j in range(n_edges)], dtype=bool)

    # levels kept per edge: those reachable within Σ_k B·R_k(src), B the most the source can
    # spend (the amount for exact input; a known route's spend for exact output)
    n_levels = np.array([len(e.price) for e in edges], dtype=np.intp)
    offsets = np.zeros(n_edges + 1, dtype=np.intp)
    np.cumsum(n_levels, out=offsets[1:])
    size = np.concatenate([e.size for e in edges])
    rate_in = np.concatenate([e.in_rate for e in edges])
    rate_out = np.concatenate([e.out_rate for e in edges])
    level_edge = np.repeat(np.arange(n_edges, dtype=np.intp), n_levels)
    keep = n_levels
    spend = value if exact_in else spend_bound
    if spend is not None and not (at_most and not exact_in):
        reach = _best_reach(edges, sorted({(j, k) for j, k, _, _ in arcs}), source, max_hops)
        limit = np.array(
            [
                sum(spend * reach[k].get(e.src, 0.0) for k in set(layers[j]))
                for j, e in enumerate(edges)
            ]
        )
        for j, e in enumerate(edges):
            if in_caps and e.key in in_caps:
                limit[j] = min(limit[j], in_caps[e.key])
        consumed = rate_in * size
        cum = np.cumsum(consumed)
        before = cum - consumed - (cum - consumed)[offsets[:-1]][level_edge]  # within the edge
        within = before < (limit * (1 + 1e-9))[level_edge]
        keep = np.maximum(np.bincount(level_edge[within], minlength=n_edges), 1)

    # level columns, one group per arc copy (a drawn edge: one group, layer -1)
    groups = [a for a in arcs if not drawn[a[0]]] + [
        (j, -1, 0, 0) for j in range(n_edges) if drawn[j]
    ]
    g_edge = np.array([a[0] for a in groups], dtype=np.intp)
    g_layer = np.array([a[1] for a in groups], dtype=np.intp)
    g_from = np.array([a[2] for a in groups], dtype=np.intp)
    g_to = np.array([a[3] for a in groups], dtype=np.intp)
    n_lv = keep[g_edge]
    n_level_cols = int(n_lv.sum())
    col_group = np.repeat(np.arange(len(groups), dtype=np.intp), n_lv)
    col_level = np.arange(n_level_cols) - np.repeat(np.cumsum(n_lv) - n_lv, n_lv)
    col_edge, col_layer = g_edge[col_group], g_layer[col_group]
    col_from, col_to = g_from[col_group], g_to[col_group]
    flat = offsets[col_edge] + col_level  # position in the concatenated level arrays
    src_scale = np.array([scale[e.src] for e in edges])
    dst_scale = np.array([scale.get(e.dst, 1.0) for e in edges])
    c_in = rate_in[flat] * size[flat] / (src_scale[col_edge] * value)
    c_out = rate_out[flat] * size[flat] / (dst_scale[col_edge] * value)
    # draw columns (edge j, layer k) of the drawn edges
    draws = [(j, k, m0) for j, k, m0, _ in arcs if drawn[j]]
    d_edge = np.array([d[0] for d in draws], dtype=np.intp)
    d_layer = np.array([d[1] for d in draws], dtype=np.intp)
    d_from = np.array([d[2] for d in draws], dtype=np.intp)
    n_cols = n_level_cols + len(draws)
    d_cols = np.arange(n_level_cols, n_cols, dtype=np.intp)

    # rows: nodes (u, k) for bridge assets u; the end row (source spent or target got);
    # one row per drawn edge; capacity rows of levels on several copies; in_caps rows
    cols = np.arange(n_level_cols, dtype=np.intp)
    consume = (src_id[col_edge] != s) & (col_layer >= 0)
    produce = dst_id[col_edge] != t
    node_keys = np.concatenate(
        [
            (col_layer[consume] * n_states + col_from[consume]) * n_assets
            + src_id[col_edge[consume]],
            ((col_layer[produce] + 1) * n_states + col_to[produce]) * n_assets
            + dst_id[col_edge[produce]],
            (d_layer * n_states + d_from) * n_assets + src_id[d_edge],
        ]
    )
    nodes, node_pos = np.unique(node_keys, return_inverse=True)
    n_c, n_p = int(consume.sum()), int(produce.sum())
    end_row = len(nodes)
    edge_row = np.full(n_edges, -1, dtype=np.intp)
    edge_row[drawn] = end_row + 1 + np.arange(int(drawn.sum()))
    n_rows = end_row + 1 + int(drawn.sum())
    rows_l = [node_pos[:n_c], node_pos[n_c : n_c + n_p], node_pos[n_c + n_p :]]
    cols_l = [cols[consume], cols[produce], d_cols]
    vals_l = [-c_in[consume], c_out[produce], -np.ones(len(draws))]
    from_src = src_id[col_edge] == s
    into_tgt = dst_id[col_edge] == t
    end_mask = from_src if exact_in else into_tgt
    rows_l += [np.full(int(end_mask.sum()), end_row, dtype=np.intp)]
    cols_l += [cols[end_mask]]
    vals_l += [(c_in if exact_in else c_out)[end_mask]]
    m = col_layer < 0  # a drawn edge's levels consume what its draws bring
    rows_l += [edge_row[col_edge[m]], edge_row[d_edge]]
    cols_l += [cols[m], d_cols]
    vals_l += [-c_in[m], np.ones(len(draws))]
    copies = np.bincount(g_edge, minlength=n_edges)
    shared = copies[col_edge] > 1
    if shared.any():
        _, inv = np.unique(flat[shared], return_inverse=True)
        rows_l.append(n_rows + inv.astype(np.intp))
        cols_l.append(cols[shared])
        vals_l.append(np.ones(int(shared.sum())))
    n_cap = len(np.unique(flat[shared])) if shared.any() else 0
    row_lo = np.concatenate(
        [np.zeros(end_row), [0.0 if at_most else 1.0], np.zeros(n_rows - end_row - 1)]
    )
    row_hi = np.concatenate([np.zeros(end_row), [1.0], np.zeros(n_rows - end_row - 1)])
    row_lo = np.concatenate([row_lo, np.full(n_cap, -math.inf)])
    row_hi = np.concatenate([row_hi, np.ones(n_cap)])
    n_rows += n_cap
    extra_lo, extra_hi = [], []
    for j, e in enumerate(edges):
        if in_caps and e.key in in_caps:
            m = col_edge == j
            rows_l.append(np.full(int(m.sum()), n_rows, dtype=np.intp))
            cols_l.append(cols[m])
            vals_l.append(c_in[m])
            extra_lo.append(-math.inf)
            extra_hi.append(max(in_caps[e.key], 0.0) / (src_scale[j] * value))
            n_rows += 1
    row_lo = np.concatenate([row_lo, extra_lo])
    row_hi = np.concatenate([row_hi, extra_hi])
    # maximise what reaches the target, or minimise what leaves the source
    maximise = exact_in or at_most
    cost = np.zeros(n_cols)
    cost[:n_level_cols] = (
        np.where(into_tgt, -c_out, 0.0) if maximise else np.where(from_src, c_in, 0.0)
    )
    upper = np.concatenate([np.ones(n_level_cols), np.full(len(draws), math.inf)])
    start, index, vals = _csc(
        n_cols, np.concatenate(rows_l), np.concatenate([*cols_l]), np.concatenate(vals_l)
    )
    group = np.concatenate([col_group, len(groups) + np.arange(len(draws))])
    rank = np.concatenate([col_level, np.zeros(len(draws), dtype=np.intp)])
    y = _solve_lp(_Lp(cost, upper, row_lo, row_hi, start, index, vals), group, rank)
    if y is None:
        return None
    frac = np.clip(y[:n_level_cols], 0.0, 1.0)
    base = frac * size[flat]
    filled = np.minimum(np.bincount(flat, base, minlength=len(size)), size)
    x = {e.key: filled[offsets[j] : offsets[j + 1]] for j, e in enumerate(edges)}
    g_frac = np.bincount(col_group, c_in * frac, minlength=len(groups))
    g_in = np.bincount(col_group, rate_in[flat] * base, minlength=len(groups))
    g_out = np.bincount(col_group, rate_out[flat] * base, minlength=len(groups))
    flows = [
        ArcFlow(
            int(g_edge[g]),
            int(g_layer[g]),
            float(g_in[g]),
            float(g_out[g]),
            int(g_from[g]),
            int(g_to[g]),
        )
        for g in range(len(groups))
        if g_layer[g] >= 0 and g_frac[g] > 1e-12 and g_in[g] > 0
    ]
    edge_in = dict(zip(g_edge.tolist(), g_in.tolist(), strict=True))
    edge_out = dict(zip(g_edge.tolist(), g_out.tolist(), strict=True))
    for c, (j, k, m0) in zip(d_cols, draws, strict=True):
        d = max(float(y[c]), 0.0)
        if d > 1e-12 and edge_in[j] > 0:
            amount = d * src_scale[j] * value
            flows.append(ArcFlow(j, k, amount, edge_out[j] * amount / edge_in[j], m0, 0))
    total_in = sum(float(e.in_rate @ x[e.key]) for e in edges if e.src == source)
    total_out = sum(float(e.out_rate @ x[e.key]) for e in edges if e.dst == target)
    return FlowSolution(
        x, total_in, total_out, "optimal", n_cols, n_rows, edges, tuple(flows), restricted=False
    )


def solve_direct(
    edges: Sequence[Edge],
    source: str,
    target: str,
    *,
    amount_in: float | None = None,
    amount_out: float | None = None,
) -> FlowSolution | None:
    """Direct markets only (one hop): the exact merge of `optimizer.exact`, no solver.

    One hop is the split of one order across venues: when every direct book trades the
    pair the same way round (all buys of TARGET/SOURCE or all sells of SOURCE/TARGET) it
    is `solve_exact` on their ladder, each venue's share walked with `walk_book`; books
    of both orientations fall back to the layered LP with one hop. None when the direct
    books cannot fill the amount (or there are none).
    """
    from liquidroute.optimizer.curves import build_ladder
    from liquidroute.optimizer.exact import solve_exact

    direct = [e for e in edges if e.src == source and e.dst == target]
    sides = {e.side for e in direct}
    if not direct:
        return None
    if len(sides) > 1:
        return solve_layered(direct, source, target, 1, amount_in=amount_in, amount_out=amount_out)
    side: Side = "buy" if sides == {"buy"} else "sell"
    ladder = build_ladder([_levels(e) for e in direct], [e.fee for e in direct], side)
    exact_in = amount_in is not None
    amount = amount_in if exact_in else amount_out
    assert amount is not None
    # buys spend quote (the source): exact input is a quote amount; sells the mirror
    in_quote = (side == "buy") == exact_in
    alloc = solve_exact(ladder, amount, "quote" if in_quote else "base")
    reached = alloc.value if in_quote else alloc.filled
    if reached < amount * (1 - 1e-12):
        return None
    shares = zip(direct, alloc.amount, strict=True)
    x = {e.key: walk_book(_levels(e), side, float(q)).take for e, q in shares}
    arcs = tuple(
        ArcFlow(j, 0, float(e.in_rate @ x[e.key]), float(e.out_rate @ x[e.key]))
        for j, e in enumerate(direct)
        if x[e.key].sum() > 0
    )
    total_in = sum(a.amount_in for a in arcs)
    total_out = sum(a.amount_out for a in arcs)
    n = sum(len(e.price) for e in direct)
    return FlowSolution(x, total_in, total_out, "exact merge", n, 1, direct, arcs)


# --- decomposition into paths ----------------------------------------------------------------


def _walks(sol: FlowSolution, source: str, target: str) -> list[tuple[list[ArcFlow], float]]:
    """The layered flow as source -> target walks (arc copies, start amount in source).

    Greedy generalised-flow decomposition on the layered DAG: follow the arc with the most
    remaining input out of each node, send the bottleneck δ = min_i rem_i / G_i (G_i the
    product of the arcs' realised gains before arc i), subtract δ·G_i; each round empties
    at least one arc, so there are at most as many walks as arc copies.
    """
    rem = {id(a): a.amount_in for a in sol.arcs}
    out_of: dict[tuple[str, int, int], list[ArcFlow]] = {}
    for a in sol.arcs:
        out_of.setdefault((sol.edges[a.edge].src, a.layer, a.state_in), []).append(a)
    total = sum(a.amount_in for a in sol.arcs if a.layer == 0)
    left = total  # what the source still emits, undecomposed
    walks: list[tuple[list[ArcFlow], float]] = []
    for _ in range(2 * len(sol.arcs) + 1):
        if left <= 1e-12 * total:
            break
        node, walk = (source, 0, 0), []
        while node[0] != target:
            live = [a for a in out_of.get(node, []) if rem[id(a)] > 1e-12 * a.amount_in]
            if not live:
                break
            arc = max(live, key=lambda a: rem[id(a)] / a.amount_in)
            walk.append(arc)
            node = (sol.edges[arc.edge].dst, node[1] + 1, arc.state_out)
        if not walk:
            break
        if node[0] != target:  # rounding residue: the arc leads nowhere any more
            if len(walk) == 1:
                left -= rem[id(walk[0])]
            rem[id(walk[-1])] = 0.0
            continue
        gains = [a.amount_out / a.amount_in for a in walk]
        prefix = np.concatenate(([1.0], np.cumprod(gains)[:-1]))
        delta = min(rem[id(a)] / g for a, g in zip(walk, prefix, strict=True))
        for a, g in zip(walk, prefix, strict=True):
            rem[id(a)] -= delta * g
        left -= delta
        walks.append((walk, float(delta)))
    return walks


def _repeat_closing_arcs(sol: FlowSolution, source: str, target: str) -> set[tuple[EdgeKey, int]]:
    """Arc copies (edge key, layer) that bring some walk back to an asset it has visited."""
    closing = set()
    for walk, _ in _walks(sol, source, target):
        seen: set[str] = {source}
        for a in walk:
            dst = sol.edges[a.edge].dst
            if dst in seen:
                closing.add((sol.edges[a.edge].key, a.layer))
            seen.add(dst)
    return closing


def path_flows(sol: FlowSolution, source: str, target: str) -> list[PathFlow]:
    """The route as simple paths (merged when the same books recur), largest first."""
    merged: dict[tuple[EdgeKey, ...], PathFlow] = {}
    for walk, delta in _walks(sol, source, target):
        edges = tuple(sol.edges[a.edge] for a in walk)
        gain = float(np.prod([a.amount_out / a.amount_in for a in walk]))
        key = tuple(e.key for e in edges)
        old = merged.get(key)
        f_in = delta + (old.flow_in if old else 0.0)
        f_out = delta * gain + (old.flow_out if old else 0.0)
        merged[key] = PathFlow(edges, f_in, f_out)
    return sorted(merged.values(), key=lambda p: -p.flow_in)


# --- one path alone, by walking its books ------------------------------------------------------


def _levels(e: Edge) -> FloatArray:
    return np.column_stack([e.price, e.size])


def _walk_edge(e: Edge, *, given_in: float | None = None, given_out: float | None = None) -> float:
    """What edge e produces from `given_in` of its src (or needs for `given_out` of its dst),
    walking its book best first; inf/nan-free: returns -1 when the book cannot do it."""
    side: Side = "buy" if e.side == "buy" else "sell"
    cum_in = np.concatenate(([0.0], np.cumsum(e.in_rate * e.size)))
    cum_out = np.concatenate(([0.0], np.cumsum(e.out_rate * e.size)))
    cum_base = np.concatenate(([0.0], np.cumsum(e.size)))
    if given_in is not None:
        if given_in > cum_in[-1] * (1 + 1e-12):
            return -1.0
        base = float(np.interp(given_in, cum_in, cum_base))
    else:
        assert given_out is not None
        if given_out > cum_out[-1] * (1 + 1e-12):
            return -1.0
        base = float(np.interp(given_out, cum_out, cum_base))
    walk = walk_book(_levels(e), side, base)
    f = 1 + e.fee if side == "buy" else 1 - e.fee
    amount_in = walk.notional * f if side == "buy" else walk.filled
    amount_out = walk.filled if side == "buy" else walk.notional * f
    return amount_out if given_in is not None else amount_in


def walk_path(
    path: Sequence[Edge], *, amount_in: float | None = None, amount_out: float | None = None
) -> tuple[float, float] | None:
    """(input, output) of `path` alone for an exact input (forward) or output (backward),
    walking each book with `walk_book`; None when a book on it runs out."""
    if amount_in is not None:
        amount = amount_in
        for e in path:
            amount = _walk_edge(e, given_in=amount)
            if amount < 0:
                return None
        return amount_in, amount
    assert amount_out is not None
    amount = amount_out
    for e in reversed(path):
        amount = _walk_edge(e, given_out=amount)
        if amount < 0:
            return None
    return amount, amount_out


# --- profitable cycles -------------------------------------------------------------------------


def profitable_cycles(edges: Sequence[Edge], limit: int = 5, tol: float = 1e-12) -> list[Cycle]:
    """Loops of books whose best effective rates multiply to more than 1 + `tol`.

    Bellman-Ford on w = -log(rate) over the best edge of each asset pair (a loop gains iff
    it is a negative cycle there); after each find, the loop's books are dropped and the
    search repeated, up to `limit` loops.
    """
    pool = [e for e in edges if e.rate > 0]
    found: list[Cycle] = []
    while len(found) < limit:
        cycle = _negative_cycle(pool, tol)
        if cycle is None:
            break
        found.append(cycle)
        drop = {e.key for e in cycle.edges}
        pool = [e for e in pool if e.key not in drop]
    return found


def _negative_cycle(edges: Sequence[Edge], tol: float) -> Cycle | None:
    best: dict[tuple[str, str], Edge] = {}
    for e in edges:
        old = best.get((e.src, e.dst))
        if old is None or e.rate > old.rate:
            best[(e.src, e.dst)] = e
    arcs = list(best.values())
    assets = sorted({e.src for e in arcs} | {e.dst for e in arcs})
    dist = dict.fromkeys(assets, 0.0)
    pred: dict[str, Edge] = {}
    last = None
    weighted = [(e, -math.log(e.rate)) for e in arcs]
    for _ in range(len(assets)):
        last = None
        for e, w in weighted:
            if dist[e.src] + w < dist[e.dst] - tol:
                dist[e.dst] = dist[e.src] + w
                pred[e.dst] = e
                last = e.dst
        if last is None:
            return None
    assert last is not None
    node = last
    for _ in range(len(assets)):
        node = pred[node].src
    loop = [pred[node]]
    while loop[-1].src != node:
        loop.append(pred[loop[-1].src])
    loop.reverse()
    gain = float(np.prod([e.rate for e in loop]))
    return Cycle(tuple(loop), gain) if gain > 1 + tol else None


# --- compatibility: the old entry points -------------------------------------------------------


def build_graph(edges: Iterable[Edge]):  # type: ignore[no-untyped-def]
    """A networkx MultiDiGraph with one edge per book side (attribute `edge`)."""
    import networkx as nx

    graph = nx.MultiDiGraph()
    for e in edges:
        graph.add_edge(e.src, e.dst, key=e.key, edge=e)
    return graph


def simple_paths(
    edges: Sequence[Edge],
    source: str,
    target: str,
    max_hops: int,
    bridges: Sequence[str] | None = None,
) -> list[list[Edge]]:
    """Every simple path source -> target of at most `max_hops` edges, via allowed bridges.

    Exponential in general: for small graphs and reports only; routing never calls it.
    """
    import networkx as nx

    allowed = None if bridges is None else {source, target, *bridges}
    usable = [e for e in edges if allowed is None or (e.src in allowed and e.dst in allowed)]
    graph = build_graph(usable)
    if source not in graph or target not in graph:
        return []
    paths = []
    for path in nx.all_simple_edge_paths(graph, source, target, cutoff=max_hops):
        paths.append([graph.edges[u, v, k]["edge"] for u, v, k in path])
    return paths


def solve_flow(
    paths: Sequence[Sequence[Edge]],
    source: str,
    target: str,
    *,
    amount_in: float | None = None,
    amount_out: float | None = None,
    in_caps: Mapping[EdgeKey, float] | None = None,
    at_most: bool = False,
) -> FlowSolution | None:
    """The layered LP over the books of `paths`, at most their longest length in hops.

    Kept for callers that hold paths (the service); `solve_layered` takes edges directly.
    """
    unique: dict[EdgeKey, Edge] = {}
    for path in paths:
        for e in path:
            unique.setdefault(e.key, e)
    if not unique:
        return None
    hops = max(len(p) for p in paths)
    return solve_layered(
        list(unique.values()),
        source,
        target,
        hops,
        amount_in=amount_in,
        amount_out=amount_out,
        in_caps=in_caps,
        at_most=at_most,
    )


def path_hops(solution: FlowSolution, paths: Sequence[Sequence[Edge]] = ()) -> int:
    """The most hops on a path carrying flow (1 = direct only)."""
    return max((a.layer + 1 for a in solution.arcs), default=1)


def is_finite_positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


# --- pools as edges ---------------------------------------------------------------------------


def pool_grid(curve: Any, side: str, levels: int = 256, span: float = 4.0) -> FloatArray:
    """Marginal prices λ from the pool's current one, geometric, over a factor `span`
    (up for a buy, down for a sell): the breakpoints of its chord levels (`pool_edge`)."""
    start = float(curve.marginal(side, np.array([curve.root]))[0])
    steps = np.exp(np.linspace(0.0, math.log(span), levels + 1))
    grid: FloatArray = start * steps if side == "buy" else start / steps
    return grid


def pool_edge(curve: Any, symbol: str, side: str, grid: FloatArray) -> Edge:
    """A pool side as a graph edge: one level per step of `grid` (marginal prices λ).

    With (b_i, q_i) = the base and quote the pool trades when its marginal price reaches
    λ_i (`PoolCurve.trade`, closed form, fee included), level i has size b_{i+1} − b_i and
    price (q_{i+1} − q_i)/(b_{i+1} − b_i): the chord of the pool's convex cost (concave
    proceeds) curve, so each full level costs exactly what the pool charges, and a partly
    used level is priced at its chord, between λ_i and λ_{i+1} — never better than the
    pool. The fee is inside the price (the edge's own fee is 0). `refine_grid` narrows the
    partly used level until the gap is below any tolerance.
    """
    from liquidroute.model import split_symbol

    base, quote = split_symbol(symbol)
    b, q = curve.trade(side, grid)
    db, dq = np.diff(b), np.diff(q)
    keep = db > max(float(b[-1]), 1e-300) * 1e-15
    price, size = dq[keep] / db[keep], db[keep]
    src, dst = (quote, base) if side == "buy" else (base, quote)
    return Edge(curve.name, symbol, side, src, dst, price, size, 0.0)


def refine_grid(
    curve: Any, side: str, grid: FloatArray, take: FloatArray, pieces: int = 64
) -> FloatArray:
    """`grid` with the steps around the partly used level of `take` (the edge's level
    fills; all zero for an edge the LP left unused) split into `pieces` each. An unused
    edge has its first level split: its chord is below the pool's marginal price at the
    start, and a finer one shows whether a little of the pool is worth taking."""
    b, _ = curve.trade(side, grid)
    db = np.diff(b)
    keep = np.flatnonzero(db > max(float(b[-1]), 1e-300) * 1e-15)
    if len(take) != len(keep) or len(keep) == 0:
        return grid
    size = db[keep]
    partial = np.flatnonzero((take > size * 1e-12) & (take < size * (1 - 1e-12)))
    used = np.flatnonzero(take > 0)
    j = int(partial[0]) if len(partial) else int(used[-1]) if len(used) else 0
    lo, hi = int(keep[max(j - 1, 0)]), int(keep[min(j + 1, len(keep) - 1)]) + 1
    fine = np.geomspace(grid[lo], grid[hi], 3 * pieces + 1)
    out: FloatArray = np.concatenate((grid[:lo], fine, grid[hi + 1 :]))
    return out
