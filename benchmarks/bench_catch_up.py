"""Router.watch with and without `catch_up`, alternating on the same live feeds.

    python benchmarks/bench_catch_up.py [--rounds 8] [--seconds 3] [--rules | --no-rules]

Before a re-quote, `Router.watch` lets the feeds publish what their websockets have
already received (`venues.live.catch_up`). This runs `bench_live.py`'s setting (5
loopback Binance exchanges in a separate process, 1,000 levels, ~20 updates/s each, the
real ccxt.pro client) and re-quotes 40 BTC on every update, round by round: one round
with `catch_up`, one with it replaced by nothing, and so on, with the venues' sends
aligned (bursts of five updates), then staggered (venue i sends i/5 of a period later).
Latency is from the newest included event's bytes being handed to the server's socket to
the quote (bench_live's "handover" clock). Alternating rounds on one set of feeds put a
slow spell of the shared machine on both variants; compare the medians of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_live as bench

from liquidroute.router import router as router_module


async def _nothing(venues: Any) -> None:
    return None


async def rounds(ex: bench.Exchanges, n: int, seconds: float, options: dict[str, Any]) -> dict:
    """Per variant and phase, the (server, update id, quote time) of each quote's newest
    event, one list per round."""
    venues, sent = bench.live_venues(ex.urls, 1000)
    included: bench.Stamps = {}

    def on_version(event: Any) -> None:
        if event.venue in sent:
            included[event.venue] = sent[event.venue]

    for v in venues:
        v.add_listener(on_version)
    variants = {"catch_up": router_module.catch_up, "without": _nothing}
    phases = ("aligned", "staggered")
    out: dict[str, dict[str, list]] = {p: {k: [] for k in variants} for p in phases}
    router = router_module.Router(venues, max_age_ms=30_000)
    async with router:
        await router.start()
        ex.go()
        for phase in phases:
            ex.go("align" if phase == "aligned" else "stagger")
            for _ in range(n):
                for name, fn in variants.items():
                    router_module.catch_up = fn  # what Router.watch calls
                    got = []
                    stream = router.watch(
                        bench.SYMBOL, "buy", bench.AMOUNT, baselines=False, recheck_s=0.5, **options
                    )
                    deadline = time.monotonic() + seconds
                    async for _quote in stream:
                        now = time.time()
                        if included:
                            newest = max(included, key=lambda k: included[k])
                            got.append((int(newest[1:]), included[newest][3], now))
                        if time.monotonic() > deadline:
                            break
                    await stream.aclose()
                    out[phase][name].append(got[5:])  # the first quotes: start-up
        router_module.catch_up = variants["catch_up"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rules", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    ex = bench.Exchanges(5, 1000, 20.0)
    try:
        options = {} if args.rules else {"rules": False}
        got = asyncio.run(rounds(ex, args.rounds, args.seconds, options))
    finally:
        handed = ex.close()
    print(
        f"Router.watch, 5 venues x 1000 levels, ~20 upd/s each, "
        f"{'lot rules' if args.rules else 'rules=False'}; p50 from the handover per round (ms):"
    )
    for phase, variants in got.items():
        medians = {}
        for name, per_round in variants.items():
            p50s = [
                statistics.median(
                    (now - handed[i][u]) * 1e3 for i, u, now in quotes if u in handed[i]
                )
                for quotes in per_round
            ]
            medians[name] = statistics.median(p50s)
            rounds_text = " ".join(f"{x:.2f}" for x in p50s)
            print(f"   {phase:9s} {name:8s} {rounds_text} | median {medians[name]:.3f}")
        ratio = medians["catch_up"] / medians["without"]
        print(f"   {phase:9s} with/without catch_up: {ratio:.2f}x")


if __name__ == "__main__":
    main()
