"""Multi-hop routing: one joint LP over every book on every short path between two assets.

Graph. Nodes are assets; each book side is one edge of a networkx MultiDiGraph:
a market BASE/QUOTE on venue v gives QUOTE -> BASE ("buy", walking the asks) and
BASE -> QUOTE ("sell", walking the bids). On edge e with levels l (price p, size s in base
units, taker fee f) the level variable 0 <= x_{e,l} <= s_{e,l} is the base amount traded:

    buy edge:   in_e = Σ_l p(1+f) x_{e,l}  (quote spent)    out_e = Σ_l x_{e,l}          (base)
    sell edge:  in_e = Σ_l x_{e,l}          (base sold)      out_e = Σ_l p(1-f) x_{e,l}  (quote)

Paths. Only edges on simple paths of at most `max_hops` edges from source to target (whose
intermediate assets are in `bridges`, when given) enter the LP; a book used by several
paths is one edge with one set of level variables, so its depth is counted once.

LP (exact input A; exact output is the mirror: minimise the source's outflow subject to
the target's inflow = A):

    maximise    Σ_{e into target} out_e
    s.t.        Σ_{e out of source} in_e = A
                Σ_{e into n} out_e = Σ_{e out of n} in_e      for every bridge asset n
                0 <= x_{e,l} <= s_{e,l}

Edges into the source or out of the target are never on a simple source->target path, so
nothing flows back. A cycle among bridges (buy on one venue, sell on another) carries flow
only if it gains, i.e. only when books are crossed across venues — the guard's business.
Amounts are rescaled per asset (to source units at the books' mid prices) before solving.
cvxpy and networkx are imported lazily.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from liquidroute.model import FloatArray
from liquidroute.optimizer.milp import quiet_stdout


@dataclass(frozen=True, slots=True)
class Edge:
    """One book side as a conversion from `src` to `dst` asset."""

    venue: str
    symbol: str
    side: str  # "buy" (quote -> base) or "sell" (base -> quote)
    src: str
    dst: str
    price: FloatArray
    size: FloatArray
    fee: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.venue, self.symbol, self.side)

    @property
    def in_rate(self) -> FloatArray:
        """Units of `src` consumed per unit of x (base) on each level."""
        return self.price * (1 + self.fee) if self.side == "buy" else np.ones_like(self.price)

    @property
    def out_rate(self) -> FloatArray:
        """Units of `dst` produced per unit of x on each level."""
        return np.ones_like(self.price) if self.side == "buy" else self.price * (1 - self.fee)

    @property
    def rate(self) -> float:
        """dst per src at the best level (for scaling and path ranking)."""
        return float(self.out_rate[0] / self.in_rate[0]) if len(self.price) else 0.0


@dataclass(frozen=True, slots=True)
class FlowSolution:
    """Level fills per edge (keyed by Edge.key), with the totals."""

    x: dict[tuple[str, str, str], FloatArray]
    amount_in: float
    amount_out: float
    status: str
    variables: int
    constraints: int
    edges: list[Edge] = field(default_factory=list)


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
    """Every simple path source -> target of at most `max_hops` edges, via allowed bridges."""
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


def solve_flow(
    paths: Sequence[Sequence[Edge]],
    source: str,
    target: str,
    *,
    amount_in: float | None = None,
    amount_out: float | None = None,
    in_caps: Mapping[tuple[str, str, str], float] | None = None,
    at_most: bool = False,
) -> FlowSolution | None:
    """The joint LP over the union of `paths` (see the module doc). None when infeasible.

    `in_caps` bounds what an edge may consume (in its source asset: a balance on that
    venue). With `at_most`, the amount is a ceiling instead of an equality and the most
    that can be delivered is found (the partial fill when the books run out).
    """
    import cvxpy as cp

    unique: dict[tuple[str, str, str], Edge] = {}
    for path in paths:
        for e in path:
            unique.setdefault(e.key, e)
    edges = list(unique.values())
    if not edges:
        return None
    scale = _asset_scales(edges, source)
    xs = [cp.Variable(len(e.price), nonneg=True) for e in edges]
    size_scale = [float(e.size.max()) or 1.0 for e in edges]
    # flows in source-value units: in_e / scale[src], out_e / scale[dst]
    inflow = [
        (e.in_rate * s / scale[e.src]) @ x for e, x, s in zip(edges, xs, size_scale, strict=True)
    ]
    outflow = [
        (e.out_rate * s / scale[e.dst]) @ x for e, x, s in zip(edges, xs, size_scale, strict=True)
    ]
    cons = [x <= e.size / s for e, x, s in zip(edges, xs, size_scale, strict=True)]
    for i, e in enumerate(edges):
        if in_caps and e.key in in_caps:
            cons.append(inflow[i] <= in_caps[e.key] / scale[e.src])
    assets = {e.src for e in edges} | {e.dst for e in edges}
    for node in assets - {source, target}:
        arriving = [outflow[i] for i, e in enumerate(edges) if e.dst == node]
        leaving = [inflow[i] for i, e in enumerate(edges) if e.src == node]
        cons.append(cp.sum(cp.hstack(arriving or [0.0])) == cp.sum(cp.hstack(leaving or [0.0])))
    spent = cp.sum(cp.hstack([inflow[i] for i, e in enumerate(edges) if e.src == source]))
    got = cp.sum(cp.hstack([outflow[i] for i, e in enumerate(edges) if e.dst == target]))
    if amount_in is not None:
        cons.append(spent <= amount_in if at_most else spent == amount_in)
        problem = cp.Problem(cp.Maximize(got), cons)
    elif at_most:
        assert amount_out is not None
        cons.append(got <= amount_out / scale[target])
        problem = cp.Problem(cp.Maximize(got), cons)
    else:
        assert amount_out is not None
        cons.append(got == amount_out / scale[target])
        problem = cp.Problem(cp.Minimize(spent), cons)
    try:
        with quiet_stdout():
            problem.solve(
                solver=cp.HIGHS,
                primal_feasibility_tolerance=1e-10,
                dual_feasibility_tolerance=1e-10,
            )
    except (cp.error.SolverError, ValueError):  # extreme magnitudes: HiGHS gives up
        return None
    if problem.status not in ("optimal", "optimal_inaccurate") or xs[0].value is None:
        return None
    x = {
        e.key: np.clip(np.asarray(v.value, dtype=np.float64) * s, 0.0, e.size)
        for e, v, s in zip(edges, xs, size_scale, strict=True)
    }
    total_in = sum(float(e.in_rate @ x[e.key]) for e in edges if e.src == source)
    total_out = sum(float(e.out_rate @ x[e.key]) for e in edges if e.dst == target)
    n_vars = sum(len(e.price) for e in edges)
    n_cons = sum(len(e.price) for e in edges) + len(assets - {source, target}) + 1
    return FlowSolution(x, total_in, total_out, str(problem.status), n_vars, n_cons, edges)


def path_hops(solution: FlowSolution, paths: Sequence[Sequence[Edge]]) -> int:
    """The most hops among paths all of whose edges carry flow (1 = direct only)."""
    used = {k for k, v in solution.x.items() if v.sum() > 1e-12}
    return max((len(p) for p in paths if all(e.key in used for e in p)), default=1)


def is_finite_positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0
