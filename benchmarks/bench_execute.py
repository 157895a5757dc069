"""Executor figures against loopback Binance-dialect exchanges, through real ccxt clients.

    python benchmarks/bench_execute.py [--parents 30] [--venues 3]

Prints: child orders per second through the full fallback loop (one leg of every parent
order is rejected, so each parent takes two rounds), the time from quote to all legs
acknowledged (p50/p95), and the journal's cost per recorded event (SQLite WAL,
synchronous=FULL) against the same run without a journal on disk (":memory:").

Then the cost of the money safety: child orders/s with the per-send notional cap check
(`--max-notional` set, so it runs) and the redaction of every journalled text, against
the same executor with both switched off (the cap check patched to "fits", `redact` to
the identity), parents alternating on one executor, median of `--repeat`; and the same
cost timed directly per child. Measured twice: on the loopback venues (real ccxt, HTTP),
and in a dry run (SimulatedVenue, no I/O: the worst case for the overhead's share).
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

import liquidroute.router.executor as executor_module  # noqa: E402
import liquidroute.router.journal as journal_module  # noqa: E402
from liquidroute import Router  # noqa: E402
from liquidroute.errors import register_secret  # noqa: E402
from liquidroute.model import ChildOrder  # noqa: E402
from liquidroute.router.executor import ExecutionPolicy, Executor  # noqa: E402
from liquidroute.router.journal import Journal  # noqa: E402
from liquidroute.venues.ccxt_venue import CcxtVenue  # noqa: E402
from tests.conftest import binance_client  # noqa: E402
from tests.loopback.binance_server import API_KEY, SECRET, BinanceLoopback  # noqa: E402


def exchanges(n: int) -> list[BinanceLoopback]:
    out = []
    for i in range(n):
        asks = [[60000.0 + i + 5 * k, 50.0] for k in range(200)]
        bids = [[59990.0 - i - 5 * k, 50.0] for k in range(200)]
        balances = {"USDT": 1e12, "BTC": 1e6}
        out.append(BinanceLoopback(bids=bids, asks=asks, balances=balances).start())
    return out


async def run_parents(
    exs: list[BinanceLoopback], parents: int, journal: Journal, max_notional: float | None = None
) -> dict:
    venues = [
        CcxtVenue("binance", name=f"v{i}", exchange=binance_client(ex.base_url, timeout_ms=5000))
        for i, ex in enumerate(exs)
    ]
    router = Router(venues, max_age_ms=None)
    policy = ExecutionPolicy(max_rounds=3, max_notional=max_notional)
    executor = Executor(router, journal, live=True, policy=policy)
    acks, children, rounds = [], 0, 0
    t0 = time.perf_counter()
    try:
        for _ in range(parents):
            exs[0].fail("/api/v3/order", "insufficient_balance")
            report = await executor.execute("BTC/USDT", "buy", 60.0)
            assert report.complete, report.stop_detail
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
    t0 = time.perf_counter()
    for i in range(n):
        order = ChildOrder("bench", f"cid{i}", "v", "BTC/USDT", "buy", 1.0, 1.0)
        journal.record(order, "intent", {"i": i})
    return (time.perf_counter() - t0) / n * 1e6


class _Book:
    """A fixed deep book (dry-run source)."""

    live = False

    def __init__(self, name: str, offset: float) -> None:
        from liquidroute.model import DepthSnapshot, Market

        asks = [[60000.0 + offset + 5 * k, 50.0] for k in range(200)]
        bids = [[59990.0 - offset - 5 * k, 50.0] for k in range(200)]
        self.name = name
        self._snap = DepthSnapshot(name, "BTC/USDT", bids, asks, 0)
        self._market = Market(name, "BTC/USDT", 0.001, amount_step=1e-5, price_tick=0.01)

    async def snapshot(self, symbol: str, depth: int | None = None) -> object:
        return self._snap

    async def market(self, symbol: str) -> object:
        return self._market

    async def close(self) -> None:
        pass


class SafetyOff:
    """The cap check answers "fits" and `redact` is the identity while inside."""

    def __enter__(self) -> None:
        self.saved = (executor_module.Executor._cap_refusal, executor_module.redact,
                      journal_module.redact)  # fmt: skip
        executor_module.Executor._cap_refusal = lambda self, child, parent: None  # type: ignore[method-assign]
        executor_module.redact = journal_module.redact = str  # type: ignore[assignment]

    def __exit__(self, *exc: object) -> None:
        (executor_module.Executor._cap_refusal, executor_module.redact,
         journal_module.redact) = self.saved  # fmt: skip


def direct_cost(n: int = 2000) -> tuple[float, float]:
    """Microseconds spent in the safety itself, timed directly: per child, one cap check
    against a parent with 12 other children and the redaction of its two journal events
    (intent, ack); per failed child, the redaction of a venue's error text."""
    from liquidroute.errors import redact
    from liquidroute.model import OrderEvent
    from liquidroute.venues.simulated import SimulatedVenue

    sim = SimulatedVenue(_Book("v0", 0))  # type: ignore[arg-type]
    executor = Executor(Router([sim]), Journal(":memory:"), live=False,
                        policy=ExecutionPolicy(max_notional=1e15))  # fmt: skip
    children = [ChildOrder("p", f"c{i}", "v0", "BTC/USDT", "buy", 1.0, 60000.0) for i in range(12)]
    for i, c in enumerate(children):
        c.apply(OrderEvent.SUBMIT)
        if i % 2:
            c.apply(OrderEvent.FILL, filled=1.0, avg_price=60000.0, fees={"BTC": 0.001})
    parent = executor_module._Parent(children)
    child = ChildOrder("p", "new", "v0", "BTC/USDT", "buy", 1.0, 60000.0)
    error = (
        "binance POST http://127.0.0.1:9/api/v3/order 500 Internal Server Error "
        "internal error handling POST body=symbol=BTCUSDT&side=BUY&timestamp=1&signature=abc"
    )
    t0 = time.perf_counter()
    for _ in range(n):
        executor._cap_refusal(child, parent)
        journal_module._dumps({"amount": 1.0, "price": 60000.0})
        journal_module._dumps({"status": "filled", "filled": 1.0})
    per_child = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        redact(error)
    per_error = (time.perf_counter() - t0) / n * 1e6
    return per_child, per_error


async def alternate(executor: Executor, parents: int, fail_first: list[BinanceLoopback]) -> dict:
    """Child orders/s with the safety on and off, parents alternating on one executor
    after a warm-up parent (so client set-up, caches and load drift fall on both alike)."""
    spent = {True: 0.0, False: 0.0}
    children = {True: 0, False: 0}
    for ex in fail_first:  # warm-up parent, not counted: markets, connections
        ex.fail("/api/v3/order", "insufficient_balance")
    await executor.execute("BTC/USDT", "buy", 60.0)
    for i in range(2 * parents):
        on = i % 4 in (0, 3)  # on, off, off, on, ...: drift falls on both alike
        for ex in fail_first:
            ex.fail("/api/v3/order", "insufficient_balance")
        t0 = time.perf_counter()
        if on:
            report = await executor.execute("BTC/USDT", "buy", 60.0)
        else:
            with SafetyOff():
                report = await executor.execute("BTC/USDT", "buy", 60.0)
        spent[on] += time.perf_counter() - t0
        assert report.complete, report.stop_detail
        children[on] += len(report.children)
    return {on: children[on] / spent[on] for on in (True, False)}


async def live_alternate(exs: list[BinanceLoopback], parents: int) -> dict:
    venues = [
        CcxtVenue("binance", name=f"v{i}", exchange=binance_client(ex.base_url, timeout_ms=5000))
        for i, ex in enumerate(exs)
    ]
    router = Router(venues, max_age_ms=None)
    policy = ExecutionPolicy(max_rounds=3, max_notional=1e15)  # set: checked on every send
    try:
        executor = Executor(router, Journal(":memory:"), live=True, policy=policy)
        return await alternate(executor, parents, exs[:1])
    finally:
        await router.close()


async def dry_alternate(n_venues: int, parents: int) -> dict:
    from liquidroute.venues.simulated import SimulatedVenue

    venues = [SimulatedVenue(_Book(f"v{i}", i)) for i in range(n_venues)]  # type: ignore[arg-type]
    policy = ExecutionPolicy(max_rounds=3, max_notional=1e15)
    executor = Executor(Router(venues), Journal(":memory:"), live=False, policy=policy)
    return await alternate(executor, parents, [])


def overhead(exs: list[BinanceLoopback], parents: int, repeat: int, n_venues: int) -> None:
    per_child_us, per_error_us = direct_cost()
    print(
        f"  timed directly: {per_child_us:.1f} us per child (cap check + journal redaction), "
        f"{per_error_us:.1f} us more per failed child (its error text)"
    )
    runs = {
        "loopback venues (real ccxt)": lambda: asyncio.run(live_alternate(exs, parents)),
        "dry run (simulated)": lambda: asyncio.run(dry_alternate(n_venues, parents * 4)),
    }
    for label, go in runs.items():
        rates = [go() for _ in range(repeat)]
        with_ = statistics.median(r[True] for r in rates)
        without = statistics.median(r[False] for r in rates)
        share = (per_child_us + per_error_us) / (1e6 / without) * 100
        print(
            f"  {label}: {with_:.0f} child orders/s with cap check + redaction, {without:.0f} "
            f"without (parents alternated, median of {repeat}): cost "
            f"{(1 - with_ / without) * 100:+.1f} %; timed directly {share:.2f} % of a "
            "child's time even if every child failed"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=30)
    parser.add_argument("--venues", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    register_secret(API_KEY)  # as load_credentials does: redaction has values to mask
    register_secret(SECRET)
    exs = exchanges(args.venues)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            disk = asyncio.run(run_parents(exs, args.parents, Journal(Path(tmp) / "j.sqlite3")))
            memory = asyncio.run(run_parents(exs, args.parents, Journal(":memory:")))
            per_event_disk = journal_cost(str(Path(tmp) / "k.sqlite3"))
            per_event_mem = journal_cost(":memory:")
        print("money safety (issue 11): per-send cap check and redaction")
        overhead(exs, args.parents, args.repeat, args.venues)
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
