"""Executor figures against loopback Binance-dialect exchanges, through real ccxt clients.

    python benchmarks/bench_execute.py [--parents 30] [--venues 3]

Prints: child orders per second through the full fallback loop (one leg of every parent
order is rejected, so each parent takes two rounds), the time from quote to all legs
acknowledged (p50/p95), and the journal's cost per recorded event (SQLite WAL,
synchronous=FULL) against the same run without a journal on disk (":memory:").
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liquidroute import Router  # noqa: E402
from liquidroute.model import ChildOrder  # noqa: E402
from liquidroute.router.executor import ExecutionPolicy, Executor  # noqa: E402
from liquidroute.router.journal import Journal  # noqa: E402
from liquidroute.venues.ccxt_venue import CcxtVenue  # noqa: E402
from tests.conftest import binance_client  # noqa: E402
from tests.loopback.binance_server import BinanceLoopback  # noqa: E402


def exchanges(n: int) -> list[BinanceLoopback]:
    out = []
    for i in range(n):
        asks = [[60000.0 + i + 5 * k, 50.0] for k in range(200)]
        bids = [[59990.0 - i - 5 * k, 50.0] for k in range(200)]
        balances = {"USDT": 1e12, "BTC": 1e6}
        out.append(BinanceLoopback(bids=bids, asks=asks, balances=balances).start())
    return out


async def run_parents(exs: list[BinanceLoopback], parents: int, journal: Journal) -> dict:
    venues = [
        CcxtVenue("binance", name=f"v{i}", exchange=binance_client(ex.base_url, timeout_ms=5000))
        for i, ex in enumerate(exs)
    ]
    router = Router(venues, max_age_ms=None)
    executor = Executor(router, journal, live=True, policy=ExecutionPolicy(max_rounds=3))
    acks, children, rounds = [], 0, 0
    t0 = time.perf_counter()
    try:
        for _ in range(parents):
            exs[0].fail("/api/v3/order", "insufficient_balance")
            report = await executor.execute("BTC/USDT", "buy", 60.0)
            assert report.complete, report.stop_reason
            acks.append(
                report.timings_ms["first_quote_ms"] + report.timings_ms["first_round_acks_ms"]
            )
            children += len(report.children)
            rounds += report.rounds
    finally:
        await router.close()
    elapsed = time.perf_counter() - t0
    return {"elapsed": elapsed, "children": children, "rounds": rounds, "acks": acks}


def journal_cost(path: str, n: int = 500) -> float:
    journal = Journal(path)
    order = ChildOrder("bench", "cid", "v", "BTC/USDT", "buy", 1.0, 1.0)
    t0 = time.perf_counter()
    for i in range(n):
        order.client_id = f"cid{i}"
        journal.record(order, "intent", {"i": i})
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=30)
    parser.add_argument("--venues", type=int, default=3)
    args = parser.parse_args()
    exs = exchanges(args.venues)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            disk = asyncio.run(run_parents(exs, args.parents, Journal(Path(tmp) / "j.sqlite3")))
            memory = asyncio.run(run_parents(exs, args.parents, Journal(":memory:")))
            per_event_disk = journal_cost(str(Path(tmp) / "k.sqlite3"))
            per_event_mem = journal_cost(":memory:")
    finally:
        for ex in exs:
            ex.stop()
    acks = sorted(disk["acks"])
    print(f"{args.parents} parent orders x {args.venues} loopback venues (real ccxt clients)")
    print(
        f"  child orders/s through the fallback loop: {disk['children'] / disk['elapsed']:.0f}"
        f"  ({disk['children']} children, {disk['rounds']} rounds)"
    )
    print(
        f"  quote -> all legs acknowledged: p50 {statistics.median(acks):.1f} ms, "
        f"p95 {acks[int(0.95 * (len(acks) - 1))]:.1f} ms"
    )
    print(
        f"  journal per event: {per_event_disk:.0f} us on disk (WAL, synchronous=FULL) vs "
        f"{per_event_mem:.0f} us in memory"
    )
    print(
        f"  whole run with the disk journal / with an in-memory one: "
        f"{disk['elapsed'] / memory['elapsed']:.2f}x"
    )


if __name__ == "__main__":
    main()
