"""Joint book + pool split: 10 books x 500 levels and 5 v3-like pools x 50 initialized ticks.

Prints p50/p95 of `solve_joint` without gas and with gas decisions (5 pools -> 32 subsets),
next to the book-only exact merge (`solve_exact`) measured in the same run, as a ratio.
Targets (issue 15): p50 <= 1 ms without gas, <= 5 ms with gas.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.exact import solve_exact
from liquidroute.optimizer.pools import PoolCurve, solve_joint


def books(rng: np.random.Generator, n_venues: int = 10, n_levels: int = 500) -> list[np.ndarray]:
    out = []
    for _ in range(n_venues):
        prices = 2000.0 + rng.uniform(0.01, 0.5, n_levels).cumsum()
        out.append(np.column_stack([prices, rng.uniform(0.01, 3.0, n_levels)]))
    return out


def pool(rng: np.random.Generator, name: str, gas: float) -> PoolCurve:
    centre = np.sqrt(2000.0 * rng.uniform(0.999, 1.001))
    ticks = np.unique(centre * 1.0001 ** (rng.integers(-3000, 3000, 50) / 2))
    roots = np.concatenate(([centre * 0.5], ticks, [centre * 2.0]))
    liquidity = rng.uniform(5e4, 5e5, len(roots) - 1)  # ~10-100 base per 1 % of price
    return PoolCurve(name, roots, liquidity, float(centre), 0.003, gas)


def timed(fn, repeat: int = 200) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.95 * len(times))]


def main() -> None:
    rng = np.random.default_rng(1)
    ladder = build_ladder(books(rng), [0.001] * 10, "buy")
    free = [pool(rng, f"v3-{i}", 0.0) for i in range(5)]
    gassy = [pool(rng, f"v3-{i}", float(rng.uniform(2, 30))) for i in range(5)]
    amount = 400.0
    merge = timed(lambda: solve_exact(ladder, amount))
    joint = timed(lambda: solve_joint(ladder, free, amount))
    with_gas = timed(lambda: solve_joint(ladder, gassy, amount))
    print("10 books x 500 levels + 5 pools x 50 ticks, buy 400 base")
    print(f"  book-only exact merge      p50 {merge[0]:.3f} ms  p95 {merge[1]:.3f} ms")
    print(
        f"  joint, no gas              p50 {joint[0]:.3f} ms  p95 {joint[1]:.3f} ms"
        f"  ({joint[0] / merge[0]:.1f}x the merge; target p50 <= 1 ms)"
    )
    print(
        f"  joint, gas decided exactly p50 {with_gas[0]:.3f} ms  p95 {with_gas[1]:.3f} ms"
        f"  ({with_gas[0] / merge[0]:.1f}x the merge; target p50 <= 5 ms)"
    )
    got = solve_joint(ladder, gassy, amount)
    print(f"  pools used with gas: {sum(got.used)} of 5; marginal {got.marginal:.4f}")


if __name__ == "__main__":
    main()
