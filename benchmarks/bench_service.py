"""The routing service under load, over loopback, client and server in separate processes.

    python benchmarks/bench_service.py [--clients 8] [--seconds 5] [--venues 5] [--workers 2]

The server (uvicorn, one event loop, `--workers` route processes) serves 5 venues' BTC/USDT
books (the bundled real books, re-centred; venues past the third are shifted copies) and
the bundled multi-market sample for the other pairs. This process measures, in one run:

1. direct /route (USDT->BTC, bridges empty) one client at a time: the server-side time
   (Server-Timing `route`, parse -> worker -> answer) against in-process `route()` with the
   same arguments on the same books (the service calls route(rules=False) with baselines,
   for savingVsBestSingleBps). Target: <= 2x.
2. throughput: `--clients` concurrent clients sending direct routes; requests/s and per
   route worker (the machine's cores are shared with the clients: said in the output).
3. /health latency (p50/p99/max), polled every 10 ms from its own process, while
   `--clients` clients send heavy multi-hop routes (USDT->ETH, the joint LP and the best
   chain). Target: p99 <= 10 ms.

Import time (liquidroute + the service, in this process) is reported apart from work time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.queues
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

T_IMPORT = time.perf_counter()
import httpx  # noqa: E402
import uvicorn  # noqa: E402

from liquidroute import (  # noqa: E402
    DepthSnapshot,
    LadderCache,
    Market,
    route,
)
from liquidroute.service.app import BookCache, create_app  # noqa: E402
from liquidroute.venues.sample import sample_markets, sample_snapshots  # noqa: E402
from liquidroute.venues.sample_graph import (  # noqa: E402
    sample_graph_markets,
    sample_graph_snapshots,
)

IMPORT_S = time.perf_counter() - T_IMPORT
DIRECT = {"from": "USDT", "to": "BTC", "amountIn": "250000", "bridges": ""}
HEAVY = {"from": "USDT", "to": "ETH", "amountIn": "1000000"}


def books(n: int) -> tuple[list[DepthSnapshot], list[Market]]:
    """n venues' BTC/USDT (real books, shifted copies past the third) + the other pairs."""
    snaps, markets = [], []
    real, real_markets = sample_snapshots(), sample_markets()
    for i in range(n):
        src = real[i % len(real)]
        f = 1 + 1e-5 * i
        name = src.venue if i < len(real) else f"{src.venue}{i}"
        snaps.append(DepthSnapshot(name, "BTC/USDT", src.bids * [f, 1], src.asks * [f, 1]))
        markets.append(Market(name, "BTC/USDT", real_markets[src.venue].taker_fee))
    for s, m in zip(sample_graph_snapshots(), sample_graph_markets(), strict=True):
        if s.symbol != "BTC/USDT":
            snaps.append(s)
            markets.append(m)
    return snaps, markets


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))]


def serve(port: int, n: int, workers: int, nice: int) -> None:
    cache = BookCache(live=False)
    for s, m in zip(*books(n), strict=True):
        cache.put(s, m)
    app = create_app(cache, workers=workers, queue=64, route_timeout=120, nice=nice)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


def load(url: str, clients: int, seconds: float, params: dict[str, str]) -> list[int]:
    statuses: list[int] = []
    until = time.monotonic() + seconds

    def one() -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            while time.monotonic() < until:
                statuses.append(http.get("/route", params=params).status_code)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def poll_health(url: str, seconds: float, out: multiprocessing.queues.Queue[list[float]]) -> None:
    """GET /health every 10 ms for `seconds`; the latencies (ms) go to `out`."""
    ms = []
    until = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=30) as h:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            h.get("/health")
            ms.append((time.perf_counter() - t0) * 1e3)
            time.sleep(0.01)
    out.put(ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--venues", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nice", type=int, default=10, help="route workers' nice level")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.venues, args.workers, args.nice)
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, __file__, "--serve", str(port), "--venues", str(args.venues)]
    server = subprocess.Popen([*cmd, "--workers", str(args.workers), "--nice", str(args.nice)])
    url = f"http://127.0.0.1:{port}"
    try:
        http = httpx.Client(base_url=url, timeout=300)
        for _ in range(400):
            try:
                http.get("/health")
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        for _ in range(4 * args.workers):  # every worker has its books and its imports
            http.get("/route", params=DIRECT)
        http.get("/route", params=HEAVY)

        # 1. server-side time of a direct route vs in-process route(), same books and args
        snaps, markets = books(args.venues)
        btc = [s for s in snaps if s.symbol == "BTC/USDT"]
        by_venue = {m.venue: m for m in markets if m.symbol == "BTC/USDT"}
        server_ms, client_ms, worker_ms, lib_ms, lean_ms, cached_ms = [], [], [], [], [], []
        ladders = LadderCache()  # what each route worker keeps
        for _ in range(300):  # interleaved, so the machine's load weighs on both alike
            t0 = time.perf_counter()
            r = http.get("/route", params=DIRECT)
            client_ms.append((time.perf_counter() - t0) * 1e3)
            assert r.status_code == 200 and r.json()["fullyFillable"], r.text
            timing = r.headers["server-timing"].split("dur=")
            server_ms.append(float(timing[1].split(",")[0]))
            worker_ms.append(float(timing[2]))
            t0 = time.perf_counter()
            route(btc, "buy", 250_000, amount_in="quote", markets=by_venue, rules=False)
            lib_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            route(btc, "buy", 250_000, amount_in="quote", markets=by_venue, baselines=False)
            lean_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            route(
                btc, "buy", 250_000, amount_in="quote", markets=by_venue, rules=False, cache=ladders
            )
            cached_ms.append((time.perf_counter() - t0) * 1e3)

        # 2. throughput of direct routes
        statuses = load(url, args.clients, args.seconds, DIRECT)
        rps = statuses.count(200) / args.seconds

        # 3. /health while heavy multi-hop routes run
        heavy_one = time.perf_counter()
        assert http.get("/route", params=HEAVY).status_code == 200
        heavy_one = time.perf_counter() - heavy_one
        ctx = multiprocessing.get_context("spawn")
        results: multiprocessing.queues.Queue[list[float]] = ctx.Queue()
        poller = ctx.Process(target=poll_health, args=(url, args.seconds, results))
        poller.start()  # its own process: the clients' threads do not delay its timing
        heavy = load(url, args.clients, args.seconds, HEAVY)
        health = results.get(timeout=120)
        poller.join(30)
    finally:
        server.terminate()
        server.wait(10)

    med = statistics.median
    print(f"machine: {os.cpu_count()} cores, shared with other work; client, server and its")
    print(f"  {args.workers} route workers (nice {args.nice}): separate processes, same cores")
    print(f"import time (liquidroute + service, client process): {IMPORT_S * 1e3:.0f} ms")
    print(f"1. direct /route, {args.venues} venues BTC/USDT, 250,000 USDT, one client at a time")
    print(f"   server-side p50 {med(server_ms):.3f} ms  p99 {quantile(server_ms, 0.99):.3f} ms")
    print(
        f"   of which in the worker (compute_route) p50 {med(worker_ms):.3f} ms; "
        f"client round trip p50 {med(client_ms):.3f} ms"
    )
    print(
        f"   in-process route() (same args) p50 {med(lib_ms):.3f} ms;  "
        f"route(baselines=False) {med(lean_ms):.3f} ms"
    )
    print(
        f"   in-process route(cache=LadderCache()), what the worker runs: {med(cached_ms):.3f} ms"
    )
    print(
        f"   ratio server / route(): {med(server_ms) / med(lib_ms):.2f}x  (target <= 2x); "
        f"server / route(cache=): {med(server_ms) / med(cached_ms):.2f}x"
    )
    print(
        f"2. throughput, {args.clients} clients x {args.seconds:g} s direct routes: "
        f"{rps:,.0f} req/s, {rps / args.workers:,.0f} per route worker "
        f"(statuses {sorted(set(statuses))})"
    )
    print(
        f"3. /health while {args.clients} clients send heavy multi-hop routes "
        f"(one alone: {heavy_one:.2f} s; {heavy.count(200)} answered, "
        f"{heavy.count(503)} x 503):"
    )
    print(
        f"   n={len(health)}  p50 {med(health):.2f} ms  p99 {quantile(health, 0.99):.2f} ms  "
        f"max {max(health):.2f} ms  (target p99 <= 10 ms)"
    )


if __name__ == "__main__":
    main()
