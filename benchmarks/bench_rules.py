"""Routing within venue rules: 10 venues x 500 levels with lots, minimums and fixed costs.

    python benchmarks/bench_rules.py [--venues 10] [--levels 500] [--repeat 30]

Books are real-shaped: each venue is one of the bundled real books (Binance, Bybit, OKX;
re-centred on one mid), shifted by a few bps and with sizes scaled, so depth profiles are
real. Prints the cold first solve (cvxpy import + compile), warm p50/p95 over re-solves
with changing amounts (the DPP-compiled problem is reused), and the ratio to the rule-free
exact path measured in the same run. Target: p50 <= 50 ms warm.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from liquidroute import DepthSnapshot, Market, route
from liquidroute.venues.sample import sample_markets, sample_snapshots


def books(n_venues: int, n_levels: int, seed: int = 3) -> tuple[list[DepthSnapshot], dict]:
    rng = np.random.default_rng(seed)
    real, real_markets = sample_snapshots(), sample_markets()
    snaps, markets = [], {}
    for v in range(n_venues):
        src = real[v % len(real)]
        shift = 1 + rng.normal(0, 3e-4)
        scale = rng.uniform(0.5, 2.0)
        bids = src.bids[:n_levels] * [shift, scale]
        asks = src.asks[:n_levels] * [shift, scale]
        name = f"{src.venue}{v}"
        snaps.append(DepthSnapshot(name, "BTC/USDT", bids, asks, 0))
        m = real_markets[src.venue]
        markets[name] = Market(
            name,
            "BTC/USDT",
            m.taker_fee,
            amount_step=float(rng.choice([1e-5, 1e-4, 1e-3])),
            price_tick=m.price_tick,
            min_amount=0.001,
            min_notional=float(rng.choice([5, 100])),
        )
    return snaps, markets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", type=int, default=10)
    parser.add_argument("--levels", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    snaps, markets = books(args.venues, args.levels)
    fixed = {v: 15.0 * (i % 3) for i, v in enumerate(markets)}
    rng = np.random.default_rng(0)
    amounts = rng.uniform(5, 60, args.repeat)

    t0 = time.perf_counter()
    first = route(snaps, "buy", 25.0, markets=markets, fixed_costs=fixed, baselines=False)
    cold_ms = (time.perf_counter() - t0) * 1e3
    warm, exact, solvers, gaps = [], [], [], []
    for amount in amounts:
        t0 = time.perf_counter()
        q = route(snaps, "buy", float(amount), markets=markets, fixed_costs=fixed, baselines=False)
        warm.append((time.perf_counter() - t0) * 1e3)
        solvers.append(q.solver)
        gaps.append((q.total_cost - q.lower_bound) / q.lower_bound * 1e4)
        t0 = time.perf_counter()
        route(snaps, "buy", float(amount), markets=markets, rules=False, baselines=False)
        exact.append((time.perf_counter() - t0) * 1e3)
    warm.sort()
    p50, p95 = statistics.median(warm), warm[int(0.95 * (len(warm) - 1))]
    print(
        f"{args.venues} venues x {args.levels} levels, lots + minimums + fixed costs, "
        f"{args.repeat} amounts in 5..60 BTC"
    )
    print(f"  cold first solve        {cold_ms:8.1f} ms  ({first.solver})")
    print(f"  warm p50 / p95          {p50:8.1f} / {p95:.1f} ms  (target p50 <= 50 ms)")
    print(
        f"  exact rule-free p50     {statistics.median(exact):8.2f} ms  ratio rules/exact "
        f"{p50 / statistics.median(exact):.0f}x"
    )
    print(f"  solvers used            {dict((s, solvers.count(s)) for s in set(solvers))}")
    print(
        f"  cost above the rule-free bound (fixed costs included): median "
        f"{statistics.median(gaps):.2f} bps, max {max(gaps):.2f} bps"
    )


if __name__ == "__main__":
    main()
