"""Routing within venue rules: 10 venues x 500 levels, Binance-like lots, minimums, fixed costs.

    python benchmarks/bench_rules.py [--venues 10] [--levels 500] [--repeat 30] [--side buy]

Books are real-shaped: each venue is one of the bundled real books (Binance, Bybit, OKX;
re-centred on one mid), shifted by a few bps and with sizes scaled, so depth profiles are
real. Rules are Binance's: 1e-5 BTC lots on most venues (1e-4 / 1e-3 on a few), a min
notional of 5 or 100 USDT, a min amount of 1e-5 BTC, and fixed costs of 0 / 15 / 30 USDT.

Prints the import + first solve apart from the warm figures, then p50/p95 over `--repeat`
amounts log-spaced from 0.01 to 60 BTC (targets: p50 <= 20 ms, p95 <= 50 ms), the ratio to
the rule-free exact route measured in the same run, the solvers used and the count of
rounded fallbacks (target: 0). Every leg is checked on its lot in exact decimal arithmetic,
every quote for `complete` and for its cost against the rule-free lower bound.
The machine may be shared: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from decimal import Decimal

t_import = time.perf_counter()
import numpy as np  # noqa: E402

from liquidroute import DepthSnapshot, Market, route  # noqa: E402
from liquidroute.venues.sample import sample_markets, sample_snapshots  # noqa: E402

IMPORT_MS = (time.perf_counter() - t_import) * 1e3


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
            amount_step=float(rng.choice([1e-5, 1e-5, 1e-5, 1e-4, 1e-3])),
            price_tick=m.price_tick,
            min_amount=1e-5,
            min_notional=float(rng.choice([5, 100])),
        )
    return snaps, markets


def on_lot(amount: float, step: float) -> bool:
    lots = Decimal(repr(amount)) / Decimal(repr(step))
    return lots == lots.to_integral_value()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--venues", type=int, default=10)
    parser.add_argument("--levels", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--side", default="buy", choices=["buy", "sell"])
    args = parser.parse_args()
    snaps, markets = books(args.venues, args.levels)
    fixed = {v: 15.0 * (i % 3) for i, v in enumerate(markets)}
    amounts = np.round(np.geomspace(0.01, 60, args.repeat), 4)  # an order says 2.5 BTC
    side = args.side

    t0 = time.perf_counter()
    first = route(snaps, side, 25.0, markets=markets, fixed_costs=fixed, baselines=False)
    cold_ms = (time.perf_counter() - t0) * 1e3
    warm, exact, solvers, gaps, off_lot, incomplete, fallbacks = [], [], [], [], 0, 0, 0
    for amount in amounts:
        t0 = time.perf_counter()
        q = route(snaps, side, float(amount), markets=markets, fixed_costs=fixed, baselines=False)
        warm.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        route(snaps, side, float(amount), markets=markets, rules=False, baselines=False)
        exact.append((time.perf_counter() - t0) * 1e3)
        solvers.append(q.solver)
        fallbacks += q.solver == "rounded-fallback"
        incomplete += not q.complete
        off_lot += sum(not on_lot(leg.amount, markets[leg.venue].amount_step) for leg in q.legs)
        book = q.total_cost - sum(q.fixed_costs.values()) * (1 if side == "buy" else -1)
        assert q.lower_bound is not None
        assert (book - q.lower_bound) * (1 if side == "buy" else -1) >= -1e-9 * q.lower_bound
        gaps.append(q.gap if q.gap is not None else float("nan"))
    warm.sort()
    p50, p95 = statistics.median(warm), warm[int(0.95 * (len(warm) - 1))]
    print(
        f"{args.venues} venues x {args.levels} levels, {side}, lots 1e-5..1e-3 + min notional "
        f"+ fixed costs, {args.repeat} amounts 0.01..60 BTC (machine may be shared)"
    )
    print(f"  import                  {IMPORT_MS:8.1f} ms")
    print(f"  first solve (cold)      {cold_ms:8.1f} ms  ({first.solver})")
    print(f"  warm p50 / p95          {p50:8.1f} / {p95:.1f} ms  (targets 20 / 50 ms)")
    print(
        f"  exact rule-free p50     {statistics.median(exact):8.2f} ms  ratio rules/exact "
        f"{p50 / statistics.median(exact):.1f}x"
    )
    print(f"  solvers used            {dict(sorted((s, solvers.count(s)) for s in set(solvers)))}")
    print(f"  rounded fallbacks       {fallbacks:8d}      (target 0)")
    print(f"  legs off their lot      {off_lot:8d}      incomplete quotes {incomplete}")
    print(f"  proven gap (cost terms) max {np.nanmax(gaps):.1e}")


if __name__ == "__main__":
    main()
