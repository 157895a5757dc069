"""`route_graph()`: convert one asset into another over several hops, solved jointly."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from liquidroute.errors import InsufficientLiquidityError, InvalidInputError
from liquidroute.model import DepthSnapshot, GraphQuote, Hop, HopLeg, Market, split_symbol
from liquidroute.optimizer.graph import Edge, FlowSolution, path_hops, simple_paths, solve_flow


def book_edges(snapshots: Sequence[DepthSnapshot], markets: Sequence[Market]) -> list[Edge]:
    """Two edges per snapshot (buy: quote -> base on the asks; sell: base -> quote on the bids)."""
    fees = {(m.venue, m.symbol): m.taker_fee for m in markets}
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


def route_graph(
    snapshots: Sequence[DepthSnapshot],
    source: str,
    target: str,
    *,
    markets: Sequence[Market],
    amount_in: float | None = None,
    amount_out: float | None = None,
    bridges: Sequence[str] | None = None,
    max_hops: int = 3,
    hop_penalty_bps: float = 0.0,
) -> GraphQuote:
    """The best conversion of `source` into `target` across all venues and paths.

    Give exactly one of `amount_in` (spend exactly this much source; most target wins)
    or `amount_out` (receive exactly this much target; least source wins). Snapshots and
    markets are matched by (venue, symbol); fees are in the quote currency as in `route`.
    `bridges` restricts intermediate assets; `max_hops` bounds path length. A multi-hop
    answer is used only if it beats the direct-only optimum by `hop_penalty_bps` per
    extra hop on the longest path it uses; otherwise the direct-only answer is returned.
    Stablecoins are assets like any other: USDT, USDC and USD meet only through books.
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
    edges = book_edges(snapshots, markets)
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
    paths = simple_paths(edges, source, target, int(max_hops), bridge_list)
    if not paths:
        raise InsufficientLiquidityError(
            f"no path from {source} to {target} within {max_hops} hop(s)"
            + (f" via {bridge_list}" if bridge_list is not None else "")
            + "; add markets, bridges or --max-hops"
        )
    kwargs: dict[str, Any] = {"amount_in": amount_in, "amount_out": amount_out}
    joint = solve_flow(paths, source, target, **kwargs)
    direct_paths = [p for p in paths if len(p) == 1]
    direct = solve_flow(direct_paths, source, target, **kwargs) if direct_paths else None
    if joint is None:
        raise InsufficientLiquidityError(
            f"the books cannot {'deliver' if amount_out else 'absorb'} {amount:g} "
            f"{target if amount_out else source} on any path within {max_hops} hop(s)"
        )
    notes = []
    chosen = joint
    extra = path_hops(joint, paths) - 1
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
    standalone = []
    for p in paths:
        alone = solve_flow([p], source, target, **kwargs)
        standalone.append(
            {
                "path": [f"{e.venue}:{e.symbol}:{e.side}" for e in p],
                "hops": len(p),
                "amount_in": None if alone is None else alone.amount_in,
                "amount_out": None if alone is None else alone.amount_out,
            }
        )
    return GraphQuote(
        source=source,
        target=target,
        exact="in" if amount_in is not None else "out",
        amount_in=chosen.amount_in,
        amount_out=chosen.amount_out,
        hops=_hops(chosen),
        paths=tuple(standalone),
        direct_in=None if direct is None else direct.amount_in,
        direct_out=None if direct is None else direct.amount_out,
        solver=f"cvxpy/HiGHS LP ({chosen.status})",
        lp_variables=joint.variables,
        lp_constraints=joint.constraints,
        compute_ms=(time.perf_counter() - started) * 1e3,
        warnings=tuple(notes),
    )


__all__ = ["book_edges", "route_graph"]
