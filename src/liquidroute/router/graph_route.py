"""`route_graph()`: convert one asset into another over several hops, solved jointly.

The LP and its proofs are in `liquidroute.optimizer.graph`; this module matches books to
markets, checks the request, and turns the solution into a `GraphQuote`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from liquidroute.errors import InsufficientLiquidityError, InvalidInputError
from liquidroute.model import DepthSnapshot, GraphQuote, Hop, HopLeg, Market, split_symbol
from liquidroute.optimizer.graph import (
    Edge,
    FlowSolution,
    path_flows,
    path_hops,
    pool_edge,
    pool_grid,
    profitable_cycles,
    refine_grid,
    solve_direct,
    solve_layered,
    usable_arcs,
    walk_path,
)

MarketsArg = Sequence[Market] | Mapping[str, Market] | Mapping[tuple[str, str], Market]


def market_list(markets: MarketsArg) -> list[Market]:
    """Markets given as route() takes them ({venue: Market}), keyed by (venue, symbol) when a
    venue has several, or as a plain list; a key must name its own Market."""
    if not isinstance(markets, Mapping):
        return list(markets)
    out = []
    for key, m in markets.items():
        expected: object = m.venue if isinstance(key, str) else (m.venue, m.symbol)
        if key != expected:
            raise InvalidInputError(
                f"markets[{key!r}] holds {m.venue} {m.symbol}: key it by venue "
                "(as route() does) or by (venue, symbol)"
            )
        out.append(m)
    return out


def book_edges(snapshots: Sequence[DepthSnapshot], markets: MarketsArg) -> list[Edge]:
    """Two edges per snapshot (buy: quote -> base on the asks; sell: base -> quote on the bids)."""
    fees = {(m.venue, m.symbol): m.taker_fee for m in market_list(markets)}
    edges = []
    seen = set()
    for snap in snapshots:
        key = (snap.venue, snap.symbol)
        if key in seen:
            raise InvalidInputError(f"two snapshots for {snap.venue} {snap.symbol}; pass one")
        seen.add(key)
        if key not in fees:
            raise InvalidInputError(
                f"no Market for {snap.venue} {snap.symbol}: pass one (its taker fee is needed)"
            )
        base, quote = split_symbol(snap.symbol)
        fee = fees[key]
        if len(snap.asks):
            edges.append(
                Edge(
                    snap.venue,
                    snap.symbol,
                    "buy",
                    quote,
                    base,
                    snap.asks[:, 0],
                    snap.asks[:, 1],
                    fee,
                )
            )
        if len(snap.bids):
            edges.append(
                Edge(
                    snap.venue,
                    snap.symbol,
                    "sell",
                    base,
                    quote,
                    snap.bids[:, 0],
                    snap.bids[:, 1],
                    fee,
                )
            )
    return edges


def _hops(solution: FlowSolution) -> tuple[Hop, ...]:
    by_pair: dict[tuple[str, str], list[HopLeg]] = {}
    for e in solution.edges:
        x = solution.x[e.key]
        base = float(x.sum())
        if base <= 1e-15:
            continue
        notional = float(e.price @ x)
        leg = HopLeg(
            venue=e.venue,
            symbol=e.symbol,
            side=e.side,  # type: ignore[arg-type]
            asset_in=e.src,
            asset_out=e.dst,
            amount_in=float(e.in_rate @ x),
            amount_out=float(e.out_rate @ x),
            base_amount=base,
            avg_price=notional / base,
            fee=notional * e.fee,
        )
        by_pair.setdefault((e.src, e.dst), []).append(leg)
    starts = {e.src for e in solution.edges} - {e.dst for e in solution.edges}
    depth = dict.fromkeys(starts, 0)
    for _ in range(len(by_pair)):  # hops in path order: by distance from the source
        for a, b in by_pair:
            if a in depth and b not in depth:
                depth[b] = depth[a] + 1
    ordered = sorted(by_pair.items(), key=lambda item: (depth.get(item[0][0], 99), item[0]))
    return tuple(Hop(a, b, tuple(legs)) for (a, b), legs in ordered)


def _paths_report(
    solution: FlowSolution, source: str, target: str, exact_in: bool
) -> tuple[dict[str, Any], ...]:
    """Each simple path the route uses: its part of the route (`flow_in`/`flow_out`) and
    what it alone would do for the whole order (`amount_in`/`amount_out`, by walking its
    books; None when they run out)."""
    order = solution.amount_in if exact_in else solution.amount_out
    report = []
    for p in path_flows(solution, source, target):
        alone = (
            walk_path(p.edges, amount_in=order)
            if exact_in
            else walk_path(p.edges, amount_out=order)
        )
        report.append(
            {
                "path": [e.label for e in p.edges],
                "assets": p.assets,
                "hops": len(p.edges),
                "flow_in": p.flow_in,
                "flow_out": p.flow_out,
                "amount_in": None if alone is None else alone[0],
                "amount_out": None if alone is None else alone[1],
            }
        )
    return tuple(report)


def route_graph(
    snapshots: Sequence[DepthSnapshot],
    source: str,
    target: str,
    *,
    markets: MarketsArg,
    amount_in: float | None = None,
    amount_out: float | None = None,
    bridges: Sequence[str] | None = None,
    max_hops: int = 3,
    hop_penalty_bps: float = 0.0,
    pools: Sequence[tuple[str, Any]] = (),
    pool_levels: int = 256,
    pool_refinements: int = 4,
) -> GraphQuote:
    """The best conversion of `source` into `target` across all venues and paths.

    Give exactly one of `amount_in` (spend exactly this much source; most target wins)
    or `amount_out` (receive exactly this much target; least source wins). `markets` is
    given as for `route()`: {venue: Market}, or {(venue, symbol): Market} when a venue
    has several markets (a list of Markets is accepted too); snapshots and markets are
    matched by (venue, symbol) and fees are in the quote currency as in `route`.
    `bridges` restricts intermediate assets; `max_hops` bounds path length. A multi-hop
    answer is used only if it beats the direct-only optimum by `hop_penalty_bps` per
    extra hop on the longest path it uses; otherwise the direct-only answer is returned.
    Stablecoins are assets like any other: USDT, USDC and USD meet only through books.

    The route is a flow on simple paths of at most `max_hops` hops (`paths` lists them,
    each with its part of the route and what it alone would do); loops of books that
    gain at best prices are named in `warnings` and never routed around.

    `pools` are AMM pools as (symbol, `PoolCurve`) — e.g. ("ETH/USDC", side.curve()) —
    each an edge per direction whose levels are chords of its curve (`pool_edge`): every
    full level priced exactly as the pool trades, the partly used one at its chord. The
    LP is solved, the partly used level of each pool split into finer steps around the
    optimum, and solved again, `pool_refinements` times (the gap shrinks by ~64x each
    time). Pool legs are priced by the pool's closed-form curve (floats), not re-priced
    to the wei as single-hop `route_with_pools` legs are; gas is not charged here.
    """
    started = time.perf_counter()
    source, target = source.upper(), target.upper()
    if (amount_in is None) == (amount_out is None):
        raise InvalidInputError("give exactly one of amount_in (spend) or amount_out (receive)")
    amount = amount_in if amount_in is not None else amount_out
    if amount is None or not math.isfinite(amount) or amount <= 0:
        which = "amount_in" if amount_in is not None else "amount_out"
        raise InvalidInputError(f"{which} must be a positive finite number, got {amount!r}")
    if source == target:
        raise InvalidInputError(f"source and target are both {source}: nothing to convert")
    if int(max_hops) != max_hops or max_hops < 1:
        raise InvalidInputError(f"max_hops must be a whole number >= 1, got {max_hops!r}")
    if not math.isfinite(hop_penalty_bps) or hop_penalty_bps < 0:
        raise InvalidInputError(f"hop_penalty_bps must be >= 0, got {hop_penalty_bps!r}")
    grids = {(curve.name, side): pool_grid(curve, side, pool_levels) for _, curve in pools
             for side in ("buy", "sell")}  # fmt: skip
    books = book_edges(snapshots, markets)

    def all_edges() -> list[Edge]:
        return books + [
            pool_edge(curve, symbol, side, grids[curve.name, side])
            for symbol, curve in pools
            for side in ("buy", "sell")
        ]

    edges = all_edges()
    assets = {e.src for e in edges} | {e.dst for e in edges}
    for name, asset in (("source", source), ("target", target)):
        if asset not in assets:
            raise InvalidInputError(
                f"unknown {name} asset {asset}; the books hold {sorted(assets)}"
            )
    bridge_list = None if bridges is None else [b.upper() for b in bridges]
    for b in bridge_list or []:
        if b not in assets:
            raise InvalidInputError(f"unknown bridge asset {b}; the books hold {sorted(assets)}")
    hops_ = int(max_hops)
    kwargs: dict[str, Any] = {"amount_in": amount_in, "amount_out": amount_out}
    curves = {(curve.name, side): curve for _, curve in pools for side in ("buy", "sell")}
    direct: FlowSolution | None = None
    joint: FlowSolution | None = None
    for round_ in range(1 + (pool_refinements if pools else 0)):
        if round_:  # split each pool's partly used level around the optimum, solve again
            for sol in (direct, joint):
                for e in sol.edges if sol is not None else ():
                    key = (e.venue, e.side)
                    if key in curves and sol is not None:
                        grids[key] = refine_grid(curves[key], e.side, grids[key], sol.x[e.key])
            edges = all_edges()
        direct = solve_direct(edges, source, target, **kwargs)
        bound = None if amount_out is None or direct is None else direct.amount_in * (1 + 1e-9)
        joint = solve_layered(
            edges, source, target, hops_, bridges=bridge_list, spend_bound=bound, **kwargs
        )
    dust = _dust_pool_edges(joint, curves) | _dust_pool_edges(direct, curves)
    if dust:  # a solver-tolerance sliver on a pool: solve once more without that edge
        kept = [e for e in edges if e.key not in dust]
        direct2 = solve_direct(kept, source, target, **kwargs)
        joint2 = solve_layered(kept, source, target, hops_, bridges=bridge_list,
                               spend_bound=bound, **kwargs)  # fmt: skip
        if _no_worse(joint2, joint, amount_in is not None):
            joint, edges = joint2, kept
            if _no_worse(direct2, direct, amount_in is not None):
                direct = direct2
    if joint is None and not usable_arcs(edges, source, target, hops_, bridge_list):
        raise InsufficientLiquidityError(
            f"no path from {source} to {target} within {max_hops} hop(s)"
            + (f" via {bridge_list}" if bridge_list is not None else "")
            + "; add markets, bridges or --max-hops"
        )
    if joint is None:
        raise InsufficientLiquidityError(
            f"the books cannot {'deliver' if amount_out else 'absorb'} {amount:g} "
            f"{target if amount_out else source} on any path within {max_hops} hop(s)"
        )
    notes = [
        f"profitable cycle in the books (the route never loops it): {c.describe()}"
        for c in profitable_cycles(edges)
    ]
    if joint.restricted:
        notes.append(
            "arcs closing a cycle were removed from the LP: the route is on simple paths "
            "but not proven optimal over all of them"
        )
    chosen = joint
    extra = path_hops(joint) - 1
    if direct is not None and extra > 0 and hop_penalty_bps > 0:
        need = 1 + hop_penalty_bps / 1e4 * extra
        better = (
            joint.amount_out >= direct.amount_out * need
            if amount_in is not None
            else joint.amount_in * need <= direct.amount_in
        )
        if not better:
            chosen = direct
            notes.append(f"multi-hop gain below {hop_penalty_bps:g} bps per extra hop: direct used")
    return GraphQuote(
        source=source,
        target=target,
        exact="in" if amount_in is not None else "out",
        amount_in=chosen.amount_in,
        amount_out=chosen.amount_out,
        hops=_hops(chosen),
        paths=_paths_report(chosen, source, target, amount_in is not None),
        direct_in=None if direct is None else direct.amount_in,
        direct_out=None if direct is None else direct.amount_out,
        solver="exact merge"
        if chosen.status == "exact merge"
        else f"HiGHS layered LP ({chosen.status})",
        lp_variables=joint.variables,
        lp_constraints=joint.constraints,
        compute_ms=(time.perf_counter() - started) * 1e3,
        warnings=tuple(notes),
    )


def _dust_pool_edges(
    sol: FlowSolution | None, curves: Mapping[tuple[str, str], Any], rel: float = 1e-7
) -> set[Any]:
    """Pool edges carrying less than `rel` of all the flow out of their source asset:
    slivers at the LP's tolerance (a fraction of a cent at a worse price), not a use."""
    if sol is None or not curves:
        return set()
    out_of: dict[str, float] = {}
    for e in sol.edges:
        out_of[e.src] = out_of.get(e.src, 0.0) + float(sol.x[e.key].sum())
    return {
        e.key
        for e in sol.edges
        if (e.venue, e.side) in curves and 0 < float(sol.x[e.key].sum()) < rel * out_of[e.src]
    }


def _no_worse(new: FlowSolution | None, old: FlowSolution | None, exact_in: bool) -> bool:
    """`new` is at least as good as `old` to 1e-9 relative (more out, or less in)."""
    if new is None or old is None:
        return new is not None or old is None
    if exact_in:
        return new.amount_out >= old.amount_out * (1 - 1e-9)
    return new.amount_in <= old.amount_in * (1 + 1e-9)


__all__ = ["book_edges", "market_list", "route_graph"]
