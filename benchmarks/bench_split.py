"""Exact split vs. its floor (a bare numpy merge), a cached ladder, and the same LP in cvxpy.

10 venues x 500 levels per side, buy and sell. Everything is measured in this run and
printed as ratios, so the figures hold on whatever machine runs it:

    python benchmarks/bench_split.py [--venues 10] [--levels 500] [--rounds 30] [--block 20]

Timings are CPU time of this thread (time waiting for a core on a shared machine is not
counted), medians over `rounds` rounds; in each round every contender runs a block of
`block` calls back to back, and the contenders take turns, so a load change hits them
alike. Ratios are the median of the per-round ratios; beside it, the ratio of the fastest
blocks (the least disturbed by other work).

Targets (DESIGN.md, issue 10):
- route(..., baselines=False) <= 1.5x the bare merge of the same levels;
- a repeated order on unchanged books through the cached ladder <= 0.2x the merge
  (`LadderCache.merged(...).solve`, the Ladder-level API; the full `route(cache=...)`,
  which also builds the Quote and its legs, is printed beside it);
- >= 100x faster than cvxpy (HiGHS) on the same LP, with equal cost (<= 1e-9 relative).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

t_import = time.perf_counter()
import numpy as np  # noqa: E402

from liquidroute import DepthSnapshot, LadderCache, Market, RouteOptions, route  # noqa: E402
from liquidroute.optimizer.curves import build_ladder  # noqa: E402
from liquidroute.optimizer.exact import solve_exact  # noqa: E402

IMPORT_MS = (time.perf_counter() - t_import) * 1e3


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


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, block: int) -> dict[str, float]:
    """Median per-call time (µs) of each fn: blocks of calls taking turns in each round.

    Timed with the thread's CPU clock (`time.thread_time`): on a shared machine, time spent
    waiting for a core is not counted, only the work. Also returns, under "ratio:NAME", the
    median over rounds of NAME's block time over the first fn's block time in that round,
    and under "best:NAME" the ratio of the two fastest blocks (the least disturbed ones).
    """
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.thread_time()
            for _ in range(block):
                fn()
            samples[name].append((time.thread_time() - t0) / block)
    out = {name: statistics.median(xs) * 1e6 for name, xs in samples.items()}
    first = samples[next(iter(fns))]
    for name, xs in samples.items():
        out[f"ratio:{name}"] = statistics.median(x / f for x, f in zip(xs, first, strict=True))
        out[f"best:{name}"] = min(xs) / min(first)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--venues", type=int, default=10)
    parser.add_argument("--levels", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--block", type=int, default=20)
    args = parser.parse_args()
    snaps = books(args.venues, args.levels)
    fees = [0.0005 + 0.0001 * i for i in range(args.venues)]
    markets = {s.venue: Market(s.venue, "BTC/USDT", f) for s, f in zip(snaps, fees, strict=True)}
    print(
        f"{args.venues} venues x {args.levels} levels per side; medians of {args.rounds} rounds "
        f"x {args.block} calls; import liquidroute {IMPORT_MS:.0f} ms (not in any figure)"
    )
    failed = [
        report(snaps, fees, markets, side, args.rounds, args.block) for side in ("buy", "sell")
    ]
    if any(failed):
        sys.exit(1)


def report(
    snaps: list[DepthSnapshot],
    fees: list[float],
    markets: dict[str, Market],
    side: str,
    rounds: int,
    block: int,
) -> bool:
    """Print one side's figures; True when the cached answer differs from the uncached."""
    depth = sum(float(s.levels(side)[:, 1].sum()) for s in snaps)  # type: ignore[arg-type]
    amount = depth * 0.3
    lean = RouteOptions(baselines=False)
    cache = LadderCache()
    levels = [s.levels(side) for s in snaps]  # type: ignore[arg-type]
    t = interleaved(
        {
            "merge": lambda: bare_merge(snaps, side, amount),
            "route": lambda: route(snaps, side, amount, markets=markets, baselines=False),
            "cached route": lambda: route(
                snaps, side, amount, markets=markets, options=lean, cache=cache
            ),
            "cached ladder": lambda: cache.merged(levels, fees, side).solve(amount),  # type: ignore[arg-type]
            "exact split": lambda: solve_exact(build_ladder(levels, fees, side), amount),  # type: ignore[arg-type]
        },
        rounds,
        block,
    )
    floor = t["merge"]
    t0 = time.perf_counter()
    import cvxpy  # noqa: F401

    cvxpy_import_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    lp = cvxpy_cost(snaps, fees, side, amount)
    lp_first_ms = (time.perf_counter() - t0) * 1e3
    lp_warm = interleaved({"lp": lambda: cvxpy_cost(snaps, fees, side, amount)}, 5, 1)["lp"]
    q = route(snaps, side, amount, markets=markets, baselines=False)
    again = route(snaps, side, amount, markets=markets, options=lean, cache=cache)
    same = (again.legs, again.total_cost, again.marginal_price) == (
        q.legs,
        q.total_cost,
        q.marginal_price,
    )
    full = interleaved({"full": lambda: route(snaps, side, amount, markets=markets)}, 5, 4)
    rel = abs(q.total_cost - lp) / abs(lp)
    print(f"\n{side} {amount:.2f} base ({len(q.legs)} legs):")
    print(f"  bare numpy merge            {floor:9.1f} us   (the floor)")
    print(
        f"  route(baselines=False)      {t['route']:9.1f} us   ratio route/merge = "
        f"{t['ratio:route']:.2f}  (fastest blocks {t['best:route']:.2f}; target <= 1.5)"
    )
    print(
        f"  route()'s own overhead      {t['route'] - t['exact split']:9.1f} us   "
        f"= {t['ratio:route'] - t['ratio:exact split']:.2f}x the merge  (checks, the venue "
        "pass, the Quote and its legs: route minus the optimizer below)"
    )
    print(
        f"  build_ladder + solve_exact  {t['exact split']:9.1f} us   ratio = "
        f"{t['ratio:exact split']:.2f}  (fastest {t['best:exact split']:.2f}; the optimizer alone, "
        "no Quote)"
    )
    print(
        f"  cached ladder (repeat)      {t['cached ladder']:9.1f} us   ratio cached/merge = "
        f"{t['ratio:cached ladder']:.2f}  (fastest {t['best:cached ladder']:.2f}; target <= 0.2)"
    )
    print(
        f"  route(cache=...) (repeat)   {t['cached route']:9.1f} us   ratio = "
        f"{t['ratio:cached route']:.2f}  (fastest {t['best:cached route']:.2f}; the whole Quote)"
    )
    print(
        f"  cvxpy + HiGHS LP            {lp_warm:9.1f} us   ratio cvxpy/route = "
        f"{lp_warm / t['route']:.0f}x  (target >= 100x; first solve {lp_first_ms:.0f} ms, "
        f"cvxpy import {cvxpy_import_ms:.0f} ms apart)"
    )
    print(f"  cost: route {q.total_cost:.6f}  LP {lp:.6f}  rel. diff {rel:.1e}  (target <= 1e-9)")
    print(f"  cached answer == uncached: {same}")
    print(f"  route with 4 baselines      {full['full']:9.1f} us")
    return not same


if __name__ == "__main__":
    main()
