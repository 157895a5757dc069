"""Exact split vs. its floor (a bare numpy merge) and vs. the same LP through cvxpy.

10 venues x 500 levels per side, buy and sell. Everything is measured in this run and
printed as ratios, so the figures hold on whatever machine runs it:

    python benchmarks/bench_split.py [--venues 10] [--levels 500] [--repeat 200]

Targets (DESIGN.md): route(..., baselines=False) within 3x of the bare merge; >= 100x faster
than cvxpy (HiGHS) on the same LP, with equal cost (relative difference <= 1e-9).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from liquidroute import DepthSnapshot, Market, route


def books(n_venues: int, n_levels: int, seed: int = 7) -> list[DepthSnapshot]:
    rng = np.random.default_rng(seed)
    out = []
    for v in range(n_venues):
        mid = 60_000 * (1 + rng.normal(0, 2e-4))
        gaps = mid * rng.uniform(1e-6, 2e-5, (2, n_levels))
        asks = mid + 0.5 + np.cumsum(gaps[0])
        bids = mid - 0.5 - np.cumsum(gaps[1])
        sizes = rng.lognormal(-1.5, 1.0, (2, n_levels))
        out.append(
            DepthSnapshot(
                f"v{v}",
                "BTC/USDT",
                np.column_stack([bids, sizes[1]]),
                np.column_stack([asks, sizes[0]]),
                0,
            )
        )
    return out


def bare_merge(snaps: list[DepthSnapshot], side: str, amount: float) -> float:
    """The floor: concatenate, sort, cumulate, cut. No fees, no per-venue bookkeeping."""
    books = [s.levels(side) for s in snaps]  # type: ignore[arg-type]
    price = np.concatenate([b[:, 0] for b in books])
    size = np.concatenate([b[:, 1] for b in books])
    order = np.argsort(price if side == "buy" else -price, kind="stable")  # merges sorted runs
    cum = np.cumsum(size[order])
    k = int(np.searchsorted(cum, amount))
    return float(cum[k])


def cvxpy_cost(snaps: list[DepthSnapshot], fees: list[float], side: str, amount: float) -> float:
    import cvxpy as cp

    eff = np.concatenate(
        [
            s.levels(side)[:, 0] * (1 + f if side == "buy" else 1 - f)  # type: ignore[arg-type]
            for s, f in zip(snaps, fees, strict=True)
        ]
    )
    size = np.concatenate([s.levels(side)[:, 1] for s in snaps])  # type: ignore[arg-type]
    x = cp.Variable(len(eff))
    objective = cp.Minimize(eff @ x) if side == "buy" else cp.Maximize(eff @ x)
    problem = cp.Problem(objective, [x >= 0, x <= size, cp.sum(x) == amount])
    problem.solve(solver=cp.HIGHS)
    return float(problem.value)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `fn` in microseconds."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venues", type=int, default=10)
    parser.add_argument("--levels", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    snaps = books(args.venues, args.levels)
    fees = [0.0005 + 0.0001 * i for i in range(args.venues)]
    markets = {s.venue: Market(s.venue, "BTC/USDT", f) for s, f in zip(snaps, fees, strict=True)}
    print(f"{args.venues} venues x {args.levels} levels per side; median of {args.repeat} runs")
    for side in ("buy", "sell"):
        report(snaps, fees, markets, side, args.repeat)


def report(
    snaps: list[DepthSnapshot],
    fees: list[float],
    markets: dict[str, Market],
    side: str,
    repeat: int,
) -> None:
    depth = sum(float(s.levels(side)[:, 1].sum()) for s in snaps)  # type: ignore[arg-type]
    amount = depth * 0.3
    ours = timed(lambda: route(snaps, side, amount, markets=markets, baselines=False), repeat)
    floor = timed(lambda: bare_merge(snaps, side, amount), repeat)
    t0 = time.perf_counter()
    lp = cvxpy_cost(snaps, fees, side, amount)
    lp_first_ms = (time.perf_counter() - t0) * 1e3
    lp_warm = timed(lambda: cvxpy_cost(snaps, fees, side, amount), 5)
    q = route(snaps, side, amount, markets=markets, baselines=False)
    full = timed(lambda: route(snaps, side, amount, markets=markets), max(repeat // 10, 5))
    rel = abs(q.total_cost - lp) / abs(lp)
    print(f"\n{side} {amount:.2f} base:")
    print(f"  route(baselines=False)  {ours:9.1f} us")
    print(
        f"  bare numpy merge        {floor:9.1f} us   ratio route/merge = {ours / floor:.2f}"
        "  (target <= 3)"
    )
    print(
        f"  cvxpy + HiGHS LP        {lp_warm:9.1f} us   ratio cvxpy/route = "
        f"{lp_warm / ours:.0f}x  (target >= 100x; first solve {lp_first_ms:.0f} ms)"
    )
    print(f"  cost: route {q.total_cost:.6f}  LP {lp:.6f}  rel. diff {rel:.1e}  (target <= 1e-9)")
    print(f"  route with 4 baselines  {full:9.1f} us")


if __name__ == "__main__":
    main()
