"""The machine's floor under update -> quote: a bare websocket consumer on the same feeds.

    python benchmarks/bench_floor.py [--venues 5] [--levels 1000] [--seconds 5]

`bench_live.py`'s loopback Binance exchanges (a separate process) push ~20 updates/s
each, aligned and then staggered. Two consumers read them in this process, one after the
other, timed from each event's handover to the server's socket (bench_live's honest
"update sent") to the moment the consuming task has it:

- bare: one aiohttp websocket per venue (permessage-deflate on, as ccxt connects), one
  task per connection awaiting `receive()` and decoding the JSON, and one hop (a future)
  to a consumer task. No ccxt, no book, no routing: what any asyncio websocket client
  pays on this machine, the kernel's wake of an idle process included.
- liquidroute: `Router.watch` on `LiveVenue`s (real ccxt.pro), with lot rules and with
  rules=False, as in bench_live's hot path; its p50 beside the bare one, and what it
  adds to it.

The difference is the part of the latency the library's own code (ccxt's book handler,
our book versions, routing) is responsible for; the bare figure is the machine's.

Then the machine's cold core: a fixed workload that is not liquidroute's (sorting 1,000
floats, 700 dict lookups, a copy, a sum and a binary search of a 1,000 x 2 array: about
what one live update costs us) timed back to back, after 3 ms of spinning (the process
never leaves the core) and after 3 and 10 ms asleep (the gaps between live updates). What
it costs after a gap, over what it costs back to back, is what this machine charges any
code for the gap; bench_live's line 2c gives the library's own step on the same terms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import bench_live as live_bench
import numpy as np

SYMBOL_STREAM = "btcusdt@depth@100ms"


async def bare(
    urls: list[list[str]], seconds: float, ex: Any, phase: str
) -> list[tuple[int, int, float]]:
    """(server, update id, time the consumer had it) for every event, `seconds` long."""
    import aiohttp

    got: list[tuple[int, int, float]] = []
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] | None = None
    newest: tuple[int, int] | None = None

    async def read(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        nonlocal newest
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            event = json.loads(msg.data)
            if "u" in event:
                newest = (i, int(event["u"]))
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

    async with aiohttp.ClientSession() as session:
        sockets = []
        for _, ws_url in urls:
            ws = await session.ws_connect(f"{ws_url}/ws/{SYMBOL_STREAM}", compress=15)
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": [], "id": 1}))
            sockets.append(ws)
        readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
        ex.go(phase)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            waiter = loop.create_future()
            await waiter
            assert newest is not None
            got.append((*newest, time.time()))
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()
    return got[5:]


def reference_workload() -> Callable[[], float]:
    """A fixed piece of Python and numpy work that is not liquidroute's; returns a
    function that runs it once and answers the µs it took."""
    rng = random.Random(1)
    floats = [rng.random() for _ in range(1000)]
    table = {i: str(i) for i in range(2100)}
    rows = np.random.default_rng(1).random((1000, 2))

    def run() -> float:
        t = time.perf_counter()
        sorted(floats)
        sum(len(table[i]) for i in range(0, 2100, 3))
        copied = rows.copy()
        float(copied[:, 1].sum())
        int(np.searchsorted(copied[:, 0], 0.5))
        return (time.perf_counter() - t) * 1e6

    return run


def cold_core(repeat: int = 300) -> dict[str, float]:
    """The reference workload's median µs back to back and after each kind of gap; the
    gaps take turns call by call, so a slow spell of the machine falls on all of them."""

    run = reference_workload()

    def warm_up() -> None:  # back to back: the run before it warms the core
        run()

    def spin(seconds: float) -> None:  # the process never leaves the core
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    gaps: dict[str, Callable[[], None]] = {
        "back to back": warm_up,
        "after 3 ms spinning": lambda: spin(0.003),
        "after 3 ms asleep": lambda: time.sleep(0.003),
        "after 10 ms asleep": lambda: time.sleep(0.010),
    }
    for _ in range(50):
        run()
    took: dict[str, list[float]] = {name: [] for name in gaps}
    for _ in range(repeat):
        for name, gap in gaps.items():
            gap()
            took[name].append(run())
    return {name: statistics.median(xs) for name, xs in took.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", type=int, default=5)
    parser.add_argument("--levels", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    ex = live_bench.Exchanges(args.venues, args.levels, 20.0)
    try:
        ex.go("go")
        aligned = asyncio.run(bare(ex.urls, args.seconds, ex, "align"))
        staggered = asyncio.run(bare(ex.urls, args.seconds, ex, "stagger"))
        ex.go("align")
        ours = asyncio.run(
            live_bench.latency(ex.urls, args.levels, args.seconds, ex, hot_only=True)
        )
    finally:
        handed = ex.close()
    live_bench.add_handoff(ours, handed)
    print(
        f"update -> consumer, {args.venues} venues x {args.levels} levels, ~20 upd/s each, "
        "from the event's handover to the server's socket (ms)"
    )
    for label, got, suffix in (("aligned", aligned, ""), ("staggered", staggered, "_stagger")):
        lat = live_bench.handover_ms(got, handed)
        p50, p99 = statistics.median(lat), live_bench.pct(lat, 99)
        print(f"  {label}: bare aiohttp consumer p50 {p50:.2f}, p99 {p99:.2f} ({len(lat)} events)")
        for rules, phase in (("lot rules", "hot"), ("rules=False", "hot_norules")):
            measured = ours[phase + suffix]
            lib, lib_p99 = measured["handoff_p50_ms"], measured["handoff_p99_ms"]
            print(
                f"    liquidroute watch, {rules}: p50 {lib:.2f}, p99 {lib_p99:.2f};"
                f" adds {lib - p50:.2f} ms to the bare p50 ({lib / p50:.1f}x)"
            )
    costs = cold_core()
    warm = costs["back to back"]
    print("the machine's cold core: a fixed Python + numpy workload, not liquidroute's (us)")
    print("  " + ", ".join(f"{name} {us:.0f} ({us / warm:.1f}x)" for name, us in costs.items()))


if __name__ == "__main__":
    main()
