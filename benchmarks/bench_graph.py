"""Multi-hop routing end to end: route_graph() including its paths report.

    python benchmarks/bench_graph.py [--repeat 30]

Three problems:
  bench_graph  5 assets, 4 venues, 36 books, 200 levels per side (the bundled sample's real
               level profiles, rescaled per venue), USDT -> ETH, <= 3 hops, 1e5-2e6 USDT.
  pools        100 books x 10 assets x 3 hops, one level each (the CFMMRouter.jl class).
  wide         20 assets, every pair one book of 5 levels, <= 4 hops (~80,000 simple paths).

For each: p50/p95 of route_graph (validation, the layered LP, the direct-only exact merge,
the cycle check and the paths report), wall and CPU (the machine may be shared), the time
spent inside HiGHS (end-to-end / HiGHS shows the modelling overhead), and, as the
baseline measured in the same run, the same LPs handed whole to HiGHS. Import time is
measured apart, in a fresh interpreter, and so is the `convert --sample` command. Targets
(DESIGN.md): bench_graph p50 <= 15 ms, pools <= 10 ms, wide <= 100 ms, convert <= 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from liquidroute import DepthSnapshot, Market, route_graph
from liquidroute.optimizer import graph as graph_mod
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


def bench_books(
    n_venues: int, levels: int, seed: int = 5
) -> tuple[list[DepthSnapshot], list[Market]]:
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


def random_books(
    n_assets: int, n_books: int | None, levels: int, seed: int
) -> tuple[list[DepthSnapshot], list[Market]]:
    """Assets A0..An-1 at random values; books at consistent mids (no profitable loop)."""
    rng = np.random.default_rng(seed)
    value = rng.lognormal(0, 1, n_assets)
    pairs = [(i, j) for i in range(n_assets) for j in range(i + 1, n_assets)]
    picks = range(len(pairs)) if n_books is None else rng.integers(0, len(pairs), n_books)
    chosen = [pairs[k] for k in picks]
    snaps, markets, count = [], [], {}
    for i, j in chosen:
        symbol = f"A{i}/A{j}"
        count[symbol] = count.get(symbol, 0) + 1
        venue = f"p{count[symbol]}"
        mid = value[i] / value[j] * (1 + rng.normal(0, 1e-4))
        half = rng.uniform(5e-4, 3e-3)
        steps = np.cumsum(rng.uniform(1e-4, 2e-3, (2, levels)), axis=1)
        sizes = rng.uniform(50, 500, (2, levels)) / value[i]
        bids = np.column_stack([mid * (1 - half - steps[0]), sizes[0]])
        asks = np.column_stack([mid * (1 + half + steps[1]), sizes[1]])
        snaps.append(DepthSnapshot(venue, symbol, bids, asks))
        markets.append(Market(venue, symbol, 0.001))
    return snaps, markets


def timed_highs() -> tuple[list[float], list[Any], Callable[[], None]]:
    """Wrap the HiGHS call to time it and keep the LPs built; returns (ms, LPs, undo)."""
    spent: list[float] = []
    lps: list[Any] = []
    original, original_lp = graph_mod._run, graph_mod._solve_lp

    def run(lp: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(lp)
        finally:
            spent.append((time.perf_counter() - t0) * 1e3)

    def solve_lp(lp: Any, group: Any, rank: Any, tol: float = 1e-12) -> Any:
        lps.append(lp)
        return original_lp(lp, group, rank, tol)

    graph_mod._run = run
    graph_mod._solve_lp = solve_lp

    def undo() -> None:
        graph_mod._run, graph_mod._solve_lp = original, original_lp

    return spent, lps, undo


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def measure(
    name: str,
    snaps: list[DepthSnapshot],
    markets: list[Market],
    source: str,
    target: str,
    hops: int,
    amounts: np.ndarray,
    target_ms: float,
) -> None:
    route_graph(snaps, source, target, markets=markets, amount_in=float(amounts[0]), max_hops=hops)
    total, cpu, highs, whole, n_paths = [], [], [], [], []
    q = None
    for a in amounts:
        spent, lps, undo = timed_highs()
        t0, c0 = time.perf_counter(), time.process_time()
        q = route_graph(snaps, source, target, markets=markets, amount_in=float(a), max_hops=hops)
        total.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
        undo()
        highs.append(sum(spent))
        n_paths.append(len(q.paths))
        t0 = time.perf_counter()  # baseline: the same LPs handed whole to HiGHS
        for lp in lps:
            graph_mod._run(lp)
        whole.append((time.perf_counter() - t0) * 1e3)
    assert q is not None
    p50, h50, w50 = statistics.median(total), statistics.median(highs), statistics.median(whole)
    verdict = "ok" if p50 <= target_ms else "ABOVE TARGET"
    print(
        f"{name}: {len(snaps)} books, <= {hops} hops; full LP {q.lp_variables} columns, "
        f"{q.lp_constraints} rows; paths in the route: median {statistics.median(n_paths):.0f}"
    )
    print(
        f"  route_graph wall p50 {p50:.2f} ms, p95 {p95(total):.2f} ms, CPU p50 "
        f"{statistics.median(cpu):.2f} ms (target {target_ms:g} ms: {verdict})"
    )
    print(
        f"  inside HiGHS p50 {h50:.2f} ms (end-to-end / HiGHS {p50 / h50:.2f}x); the same LPs "
        f"whole to HiGHS {w50:.2f} ms (bound fixing {w50 / h50:.1f}x less solver time)"
    )
    if q.direct_out:
        gains = (q.amount_out / q.direct_out - 1) * 1e4
        print(f"  last order: joint vs direct-only markets +{gains:.2f} bps")


def cli_cold_ms(runs: int = 3) -> tuple[float, float]:
    """`liquidroute convert USDT ETH 500000 --sample` in fresh interpreters: (min, median)."""
    code = "import sys; from liquidroute.cli import main; sys.argv[0] = 'liquidroute'; main()"
    args = [sys.executable, "-c", code, "convert", "USDT", "ETH", "500000", "--sample"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times), statistics.median(times)


def import_ms() -> float:
    code = (
        "import time; t=time.perf_counter(); import liquidroute.router.graph_route, highspy; "
        "print((time.perf_counter()-t)*1e3)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print(
        f"import liquidroute.router.graph_route + highspy (fresh interpreter): {import_ms():.0f} ms"
    )
    snaps, markets = bench_books(4, 200)
    measure(
        "bench_graph",
        snaps,
        markets,
        "USDT",
        "ETH",
        3,
        rng.uniform(1e5, 2e6, args.repeat),
        15,
    )
    snaps, markets = random_books(10, 100, 1, seed=3)
    measure("pools", snaps, markets, "A0", "A9", 3, rng.uniform(50, 400, args.repeat), 10)
    snaps, markets = random_books(20, None, 5, seed=4)
    measure("wide", snaps, markets, "A0", "A19", 4, rng.uniform(200, 2000, args.repeat), 100)
    cold_min, cold_med = cli_cold_ms()
    print(
        f"liquidroute convert USDT ETH 500000 --sample, fresh interpreter: min {cold_min:.0f} ms,"
        f" median {cold_med:.0f} ms (target 1000 ms; imports included)"
    )


if __name__ == "__main__":
    main()
