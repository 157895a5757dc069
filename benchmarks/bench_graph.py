"""Multi-hop joint LP: 5 assets, 4 venues, up to 3 hops, 200 levels per book side.

    python benchmarks/bench_graph.py [--repeat 15]

Books are real-shaped (the bundled multi-market sample's level profiles, rescaled per
venue). Prints the LP size, p50/p95 of the joint solve (paths enumerated once, LP
re-solved for new amounts), the same for direct markets only, and the joint gain.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from liquidroute import DepthSnapshot, Market
from liquidroute.optimizer.graph import simple_paths, solve_flow
from liquidroute.router.graph_route import book_edges
from liquidroute.venues.sample_graph import sample_graph_markets, sample_graph_snapshots

SYMBOLS = [
    "BTC/USDT",
    "ETH/USDT",
    "ETH/BTC",
    "USDC/USDT",
    "BTC/USDC",
    "ETH/USDC",
    "SOL/USDT",
    "SOL/BTC",
    "SOL/USDC",
]


def books(n_venues: int, levels: int, seed: int = 5) -> tuple[list[DepthSnapshot], list[Market]]:
    rng = np.random.default_rng(seed)
    shapes = {s.symbol: s for s in sample_graph_snapshots()}
    fees = {m.venue: m.taker_fee for m in sample_graph_markets()}
    snaps, markets = [], []
    for v in range(n_venues):
        for symbol in SYMBOLS:
            quote = symbol.split("/")[1]
            ref = shapes.get(symbol)
            if ref is None:  # SOL markets: the BTC/USDT shape at 150 USDT/SOL
                src = shapes["BTC/USDT"]
                conv = {"USDT": 150.0, "BTC": 150 / 61_686, "USDC": 150 / 0.9998}[quote]
                ref = DepthSnapshot(
                    "x",
                    symbol,
                    src.bids * [conv / src.mid, 61_686 / 150],
                    src.asks * [conv / src.mid, 61_686 / 150],
                )
            shift = 1 + rng.normal(0, 2e-4)
            scale = rng.uniform(0.3, 1.5)
            snaps.append(
                DepthSnapshot(
                    f"v{v}",
                    symbol,
                    ref.bids[:levels] * [shift, scale],
                    ref.asks[:levels] * [shift, scale],
                )
            )
            markets.append(Market(f"v{v}", symbol, list(fees.values())[v % len(fees)]))
    return snaps, markets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    snaps, markets = books(4, 200)
    edges = book_edges(snaps, markets)
    t0 = time.perf_counter()
    paths = simple_paths(edges, "USDT", "ETH", 3)
    enum_ms = (time.perf_counter() - t0) * 1e3
    direct = [p for p in paths if len(p) == 1]
    amounts = np.random.default_rng(1).uniform(1e5, 2e6, args.repeat)
    solve_flow(paths, "USDT", "ETH", amount_in=float(amounts[0]))  # warm imports
    joint_ms, direct_ms, gains = [], [], []
    for a in amounts:
        t0 = time.perf_counter()
        joint = solve_flow(paths, "USDT", "ETH", amount_in=float(a))
        joint_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        only = solve_flow(direct, "USDT", "ETH", amount_in=float(a))
        direct_ms.append((time.perf_counter() - t0) * 1e3)
        if joint and only:
            gains.append((joint.amount_out / only.amount_out - 1) * 1e4)
    assert joint is not None
    assets = {e.src for e in edges} | {e.dst for e in edges}
    print(
        f"{len(assets)} assets, 4 venues, {len(snaps)} books, 200 levels per side, "
        f"max 3 hops: {len(paths)} paths (enumerated in {enum_ms:.1f} ms)"
    )
    print(f"  LP: {joint.variables} variables, {joint.constraints} constraints")
    print(
        f"  joint solve p50 {statistics.median(joint_ms):.1f} ms, "
        f"p95 {sorted(joint_ms)[int(0.95 * (len(joint_ms) - 1))]:.1f} ms"
    )
    print(f"  direct-only solve p50 {statistics.median(direct_ms):.1f} ms")
    if gains:
        print(
            f"  joint vs direct-only output: median +{statistics.median(gains):.2f} bps, "
            f"max +{max(gains):.2f} bps"
        )


if __name__ == "__main__":
    main()
