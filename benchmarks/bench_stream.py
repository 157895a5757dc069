"""/stream/route on live-changing books: update -> frame latency, coalescing, book transfer.

    python benchmarks/bench_stream.py [--venues 5] [--levels 1000] [--updates 60]

The server (uvicorn on 127.0.0.1, one route worker) holds `--venues` BTC/USDT books of
`--levels` levels per side. Book updates are put into its BookCache on its event loop, as
the live feeds put them (one book, its best ask resized: every update changes the route).
Measured in one run:

1. GET /route server time (Server-Timing `route`) on unchanged books: the baseline.
2. update -> frame: the time from a put to the websocket client (its own process) holding
   the new frame, updates spaced beyond the 0.1 s coalescing window (each one is a frame);
   p50/p99, and as a ratio of the baseline.
3. GET /route server time right after a put, with the worker sent only the changed book
   (`BookCache.changed_since`, the default) and with the whole book set (the old way);
   ratio of the two.
4. a burst of updates at ~1,000/s for 2 s: frames/s and route computations/s (<= 10).

The latency client runs in its own process; the /route and burst clients share the
server's process (the routes run in the worker process). The machine is shared with other
work: compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.queues
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

T_IMPORT = time.perf_counter()
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import uvicorn  # noqa: E402
from ccxt.base.order_router import OrderRouter  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from liquidroute import DepthSnapshot, Market, route  # noqa: E402
from liquidroute.service.app import BookCache, create_app  # noqa: E402

IMPORT_S = time.perf_counter() - T_IMPORT
SYMBOL = "BTC/USDT"
SPEND = {"from": "USDT", "to": "BTC", "amountIn": "250000", "bridges": ""}


def book(venue: str, levels: int, seed: int) -> DepthSnapshot:
    rng = np.random.default_rng(seed)
    steps = np.arange(levels) * 0.5
    bids = np.column_stack((59_999.0 - steps - seed * 0.1, rng.uniform(0.05, 2.0, levels)))
    asks = np.column_stack((60_001.0 + steps + seed * 0.1, rng.uniform(0.05, 2.0, levels)))
    return DepthSnapshot(venue, SYMBOL, bids, asks)


def receive(url: str, n: int, out: multiprocessing.queues.Queue[Any]) -> None:
    """The stream client, in its own process: the monotonic time each frame arrived
    (CLOCK_MONOTONIC is one clock for every process of the machine)."""
    with connect(url) as ws:
        ws.recv(timeout=30)
        out.put("ready")
        arrived = []
        for _ in range(n):
            json.loads(ws.recv(timeout=30))
            arrived.append(time.monotonic())
    out.put(arrived)


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--venues", type=int, default=5)
    parser.add_argument("--levels", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=60)
    args = parser.parse_args()

    cache = BookCache(live=True, stale_ms=3_600_000)
    names = [f"v{i}" for i in range(args.venues)]
    for i, name in enumerate(names):
        cache.put(book(name, args.levels, i), Market(name, SYMBOL, taker_fee=0.001))
    app = create_app(cache, workers=1, route_timeout=30, stream_recheck_s=60)
    loops: list[asyncio.AbstractEventLoop] = []

    async def keep_loop() -> None:
        loops.append(asyncio.get_running_loop())

    app.router.on_startup.append(keep_loop)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    counter = [0]

    def put(venue: str = "v0", clock: Callable[[], float] = time.perf_counter) -> float:
        """Resize the venue's best ask (a new route); returns when it was handed over."""
        counter[0] += 1
        old = cache.books[(venue, SYMBOL)]
        asks = old.asks.copy()
        asks[0, 1] = 0.5 + 0.01 * (counter[0] % 100)
        new = DepthSnapshot(venue, SYMBOL, old.bids, asks)
        t = clock()
        loops[0].call_soon_threadsafe(cache.put, new, cache.markets[(venue, SYMBOL)])
        return t

    def server_ms(http: httpx.Client) -> float:
        r = http.get("/route", params=SPEND)
        r.raise_for_status()
        return float(r.headers["server-timing"].split("dur=")[1].split(",")[0])

    def after_put(http: httpx.Client, n: int) -> list[float]:
        out = []
        for i in range(n):
            put(names[i % len(names)])
            time.sleep(0.005)  # the put lands on the server's loop
            out.append(server_ms(http))
        return out

    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(5):
            server_ms(http)  # warm: the worker holds the books
        base = [server_ms(http) for _ in range(40)]
        pool = app.state.pool
        changed: list[float] = []
        full: list[float] = []
        for _ in range(20):  # interleaved, so the machine's noise falls on both alike
            changed += after_put(http, 3)
            pool._changed = None  # the old way: the whole book set to a worker behind
            full += after_put(http, 3)
            pool._changed = cache.changed_since

    stream_url = OrderRouter({"baseUrl": url}).stream_url(
        "USDT", "BTC", {"amountIn": 250000, "bridges": []}
    )
    ctx = multiprocessing.get_context("spawn")
    times: multiprocessing.queues.Queue[Any] = ctx.Queue()
    client = ctx.Process(target=receive, args=(stream_url, args.updates, times))
    client.start()
    assert times.get(timeout=60) == "ready"
    sent_at = []
    for _ in range(args.updates):
        sent_at.append(put(clock=time.monotonic))
        time.sleep(0.15)  # beyond the coalescing window: every update is a frame
    received_at = times.get(timeout=60)
    client.join(10)
    latencies = [(r - t) * 1e3 for t, r in zip(sent_at, received_at, strict=True)]
    with connect(stream_url) as ws:
        ws.recv(timeout=30)
        stats = app.state.streams
        frames0, computes0 = stats.frames, stats.computes
        t_burst, sent = time.perf_counter(), 0
        received = 0
        done = threading.Event()

        def reader() -> None:
            nonlocal received
            while not done.is_set():
                try:
                    ws.recv(timeout=0.3)
                    received += 1
                except TimeoutError:
                    continue

        reading = threading.Thread(target=reader)
        reading.start()
        while time.perf_counter() - t_burst < 2.0:
            put()
            sent += 1
            time.sleep(0.001)
        burst_s = time.perf_counter() - t_burst
        frames, computes = stats.frames - frames0, stats.computes - computes0
        time.sleep(0.5)  # the last update's frame
        done.set()
        reading.join()

    server.should_exit = True
    thread.join(10)

    snaps = [cache.books[(n, SYMBOL)] for n in names]
    markets = {n: cache.markets[(n, SYMBOL)] for n in names}
    direct = []
    for _ in range(40):  # what the worker runs on changed books: route() without a cache
        t0 = time.perf_counter()
        route(snaps, "buy", 250_000, amount_in="quote", markets=markets, rules=False)
        direct.append((time.perf_counter() - t0) * 1e3)
    r50 = statistics.median(direct)
    b50 = statistics.median(base)
    print(f"import: {IMPORT_S:.2f} s (liquidroute + the service, this process)")
    print(f"books: {args.venues} venues x {args.levels} levels per side, {SYMBOL}")
    print(f"GET /route server time, unchanged books: p50 {b50:.2f} ms (baseline)")
    lp50, lp99 = statistics.median(latencies), quantile(latencies, 0.99)
    print(
        f"update -> frame ({len(latencies)} updates): p50 {lp50:.2f} ms ({lp50 / b50:.2f}x "
        f"baseline), p99 {lp99:.2f} ms ({lp99 / b50:.2f}x)"
    )
    c50, f50 = statistics.median(changed), statistics.median(full)
    print(f"in-process route() on the same books (no ladder cache): p50 {r50:.2f} ms")
    print(
        f"GET /route right after a put: changed book only p50 {c50:.2f} ms "
        f"({c50 / r50:.2f}x route()), whole book set p50 {f50:.2f} ms "
        f"(changed-only / whole = {c50 / f50:.2f}x)"
    )
    print(f"update -> frame p50 / GET /route after a put p50 = {lp50 / c50:.2f}x")
    print(
        f"burst: {sent} updates in {burst_s:.2f} s ({sent / burst_s:.0f}/s) -> {frames} frames "
        f"({frames / burst_s:.1f}/s; {received} received incl. the last), {computes} routes "
        f"({computes / burst_s:.1f}/s; limit 10/s)"
    )
    print("machine shared with other work (2 cores for server, worker and clients)")


if __name__ == "__main__":
    main()
