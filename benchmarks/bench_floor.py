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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import bench_live as live_bench

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


if __name__ == "__main__":
    main()
