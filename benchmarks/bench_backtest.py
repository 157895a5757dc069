"""Backtest throughput, measured in one run on the real Binance file.

    python benchmarks/bench_backtest.py [SHARED_DATA_DIR]

Prints: incremental-L2 rows reconstructed per second (one core), parent orders routed
per second on 5 venues x 100 levels (exact path, no baselines), and the Binance file
(126k rows, ~6 minutes) replayed end to end with a parent order every second and five
strategies. Targets: >= 500k rows/s, >= 1,000 orders/s, end to end < 30 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from liquidroute import DepthSnapshot, Market, route
from liquidroute.backtest import replay as rp
from liquidroute.backtest.book import BookReplay
from liquidroute.backtest.data import read_incremental_l2

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    path = data / "books" / "binance_incremental_book_L2_BTCUSDT.csv.gz"
    t0 = time.perf_counter()
    updates = read_incremental_l2(path)
    read_s = time.perf_counter() - t0
    book = BookReplay(updates)
    t0 = time.perf_counter()
    book.advance_rows(len(updates))
    rebuild_s = time.perf_counter() - t0
    print(
        f"read {len(updates):,} rows in {read_s * 1e3:.0f} ms; reconstruction "
        f"{len(updates) / rebuild_s:,.0f} rows/s (target >= 500,000)"
    )

    snap = book.snapshot(100)
    rng = np.random.default_rng(0)
    shifts = 1 + rng.normal(0, 1e-4, 5)
    snaps = [
        DepthSnapshot(f"v{i}", snap.symbol, snap.bids * [f, 1], snap.asks * [f, 1])
        for i, f in enumerate(shifts)
    ]
    markets = {s.venue: Market(s.venue, s.symbol, 0.001) for s in snaps}
    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        route(snaps, "buy", 1.0 + (i % 10), markets=markets, baselines=False, rules=False)
    per_s = n / (time.perf_counter() - t0)
    print(f"routing (5 venues x 100 levels, exact): {per_s:,.0f} parent orders/s (target >= 1,000)")

    t0 = time.perf_counter()
    replay = rp.load([path])
    parents = rp.schedule(replay, 1.0, "buy", 2.0)
    rows = rp.run(replay, parents)
    total = time.perf_counter() - t0
    print(
        f"Binance file end to end: {len(parents)} parent orders x "
        f"{len(rp.DEFAULT_STRATEGIES)} strategies = {len(rows)} rows in {total:.1f} s "
        "(target < 30 s)"
    )


if __name__ == "__main__":
    main()
