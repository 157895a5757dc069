"""Load on the routing service over loopback: N concurrent clients for a bounded time.

    python benchmarks/bench_service.py [--clients 8] [--seconds 5] [--venues 5]

Serves 5 venues' BTC/USDT books (the bundled real books, re-centred, two of them shifted
copies) on 127.0.0.1 from a separate process (uvicorn, one worker) and drives GET /route
for a direct split (bridges=[]) from concurrent httpx clients in this one. Prints p50/p99
latency and
requests/s, and the in-process route() time on the same books as the baseline.
Target: p50 <= 5 ms for a direct split over 5 venues.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time

import httpx
import uvicorn

from liquidroute import DepthSnapshot, Market, route
from liquidroute.service.app import BookCache, create_app
from liquidroute.venues.sample import sample_markets, sample_snapshots


def five_venues(n: int) -> tuple[list[DepthSnapshot], list[Market]]:
    snaps, markets = [], []
    real, real_markets = sample_snapshots(), sample_markets()
    for i in range(n):
        src = real[i % len(real)]
        f = 1 + 1e-5 * i
        name = src.venue if i < len(real) else f"{src.venue}{i}"
        snaps.append(DepthSnapshot(name, "BTC/USDT", src.bids * [f, 1], src.asks * [f, 1]))
        markets.append(Market(name, "BTC/USDT", real_markets[src.venue].taker_fee))
    return snaps, markets


async def client(url: str, until: float, latencies: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            r = await http.get(
                "/route", params={"from": "USDT", "to": "BTC", "amountIn": "250000", "bridges": ""}
            )
            latencies.append((time.perf_counter() - t0) * 1e3)
            assert r.status_code == 200 and r.json()["fullyFillable"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--venues", type=int, default=5)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    snaps, markets = five_venues(args.venues)
    if args.serve:
        cache = BookCache(live=False)
        for s, m in zip(snaps, markets, strict=True):
            cache.put(s, m)
        uvicorn.run(create_app(cache), host="127.0.0.1", port=args.serve, log_level="error")
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--venues", str(args.venues)]
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)

    by_venue = {m.venue: m for m in markets}
    t0 = time.perf_counter()
    for _ in range(200):
        route(snaps, "buy", 250_000, amount_in="quote", markets=by_venue, baselines=False)
    in_process = (time.perf_counter() - t0) / 200 * 1e3

    latencies: list[float] = []

    async def load() -> None:
        until = time.monotonic() + args.seconds
        await asyncio.gather(*(client(url, until, latencies) for _ in range(args.clients)))

    try:
        asyncio.run(load())
    finally:
        server.terminate()
        server.wait(10)
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(
        f"{args.clients} clients x {args.seconds:g} s, direct split over {args.venues} venues "
        "on loopback"
    )
    print(
        f"  requests/s {len(latencies) / args.seconds:,.0f}  p50 "
        f"{statistics.median(latencies):.2f} ms  p99 {p99:.2f} ms  (target p50 <= 5 ms)"
    )
    print(f"  in-process route() on the same books: {in_process:.3f} ms")


if __name__ == "__main__":
    main()
