"""Live books: update-to-quote latency, cache CPU, and quotes from memory.

    python benchmarks/bench_live.py [--venues 5] [--levels 1000] [--seconds 5]

1. Latency (target p50 <= 1 ms, p99 <= 5 ms at 5 venues x 1,000 levels): V loopback
   Binance diff-depth exchanges run in a SEPARATE process (their own core when one is
   free) and each pushes ~20 updates/s touching 1-3 levels near the top, every event
   stamped with its send time. This process keeps the books with the real ccxt.pro
   client (`LiveVenue`) and `Router.watch(..., baselines=False)` re-quotes on every
   update; latency = quote ready - send time of the newest event in it, where "sent" is
   the handover of its bytes to the server's socket, stamped just before the write call.
   (Until 2026-12-02 it was stamped after the call: a write that woke this process on
   the server's core could let it run first, and the stamp then came after the quote. A
   third of the staggered quotes showed a latency below 0.1 ms, some negative, and the
   p50 was 0.1-0.2 ms too low.) Four phases on
   the same feeds: the hot path (started Router: books from memory, cached ladders) and
   the former gather path (a Router on the same venues, not started: asyncio.gather +
   wait_for per venue, full screen, no ladder cache), each with the venues' lot rules
   (the exact rules pipeline) and with rules=False. The latency is split: server + wire
   + websocket + JSON (until ccxt's book handler gets the event), ccxt's book and our
   sides until the new version is published, and route() (`quote.compute_ms`); and it is
   given from the moment the update's bytes reach this process's socket (aiohttp's
   `data_received`), which leaves out the loopback server's own work and the kernel.
   A fifth phase, aligned and staggered, runs the same watch with a quote that costs
   nothing (`NoRouting`): the floor the routing adds to. Last, how many of the four
   hot-path phases meet the target on two clocks: from the update's bytes reaching this
   process (the interval the issue names, book update -> new quote: everything this
   process does with the update, aiohttp's frame and ccxt's handler included) and from
   the handover (also the loopback kernel path and this process's wake-up, which a bare
   aiohttp consumer pays too: `bench_floor.py`).
2. Cache CPU (target < 25 % of one core at 5 venues x 100 updates/s): the same servers
   at 100 updates/s each, no quoting; CPU time of this process / wall time.
2c. A cold core: one diff published + `quote_now`, back to back and after 3 ms asleep
   (what the live path pays between updates on this machine); with --before, REV's
   tree takes its turn after each of today's.
3. `router.quote` from memory at 10 x 500 levels (target <= 50 us): a repeated order on
   unchanged books through `quote_now` and `await quote`, beside the gather path and
   route() without a cache on the same snapshots.

With --before REV (default 1e5a336: the cache before its CPU work), phases 1 (hot
path), 2, 2b and 2c also run REV's exact.py, rules.py, constrained.py, route.py, live.py and
router.py, loaded from git
beside today's, on the same servers in the same run: the after/before ratios are the
figures to compare.

Import time is reported apart. The machine may be shared: figures are noisy, the
ratios inside one run are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
import numpy as np  # noqa: E402

from liquidroute import Router  # noqa: E402
from liquidroute.model import Market  # noqa: E402
from liquidroute.router.route import route  # noqa: E402
from liquidroute.venues.ccxt_venue import CcxtVenue  # noqa: E402
from liquidroute.venues.live import LiveVenue, _Feed  # noqa: E402

IMPORT_S = time.perf_counter() - T0
ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "BTC/USDT"
AMOUNT = 40.0  # BTC: about 4 levels deep on each of 5 venues, where the updates land


def ladder(levels: int, mid: float = 60000.0) -> tuple[list[list[float]], list[list[float]]]:
    rng = random.Random(levels)
    bids = [[round(mid - 0.5 - i * 0.5, 2), rng.randint(1, 40) / 10] for i in range(levels)]
    asks = [[round(mid + 0.5 + i * 0.5, 2), rng.randint(1, 40) / 10] for i in range(levels)]
    return bids, asks


# ---------------------------------------------------------------------------- server side
def serve(venues: int, levels: int, rate: float) -> None:
    """The exchanges' process: start, print the ports, push updates until stdin closes."""
    sys.path.insert(0, str(ROOT))
    from tests.loopback.binance_ws import BinanceWsLoopback

    bids, asks = ladder(levels)
    servers = [
        BinanceWsLoopback(bids=bids, asks=asks, history=0, stamp=True).start()
        for _ in range(venues)
    ]
    # per server, update id -> time.time() when its event's bytes were handed to the
    # socket: just before the write call (after the server's JSON and deflate; the
    # event's "T" is stamped before them). Not after it: the write wakes the reader,
    # which may run first on this core, and the stamp would then follow its quote
    handed: list[dict[int, float]] = [{} for _ in servers]
    for server, out in zip(servers, handed, strict=True):
        broadcast = server._broadcast

        async def timed(
            events: list[dict[str, Any]],
            broadcast: Any = broadcast,
            out: dict = out,
            server: Any = server,
        ) -> None:
            for event in events:
                writes: list[float] = []
                for ws in server.subscribed:
                    stamp_writes(ws, writes)
                await broadcast([event])  # returns once ws.send_str has written it
                out[event["u"]] = min(writes, default=time.time())

        server._broadcast = timed
    print(json.dumps([[s.base_url, s.ws_base_url] for s in servers]), flush=True)
    stop = threading.Event()
    go = threading.Event()
    stagger = [0.0]  # venue i's updates are sent i / venues of a period later (x this)

    def drive(server: Any, seed: int, i: int) -> None:
        rng = random.Random(seed)
        go.wait()
        period = 1.0 / rate
        start = time.monotonic()
        while not stop.is_set():
            side = rng.choice(("bids", "asks"))
            k = rng.randint(0, 4)
            price = 59999.5 - k * 0.5 if side == "bids" else 60000.5 + k * 0.5
            server.update(**{side: [(price, rng.randint(1, 40) / 10)]})
            start += period
            next_t = start + stagger[0] * period * i / venues
            time.sleep(max(0.0, next_t - time.monotonic()))

    threads = [
        threading.Thread(target=drive, args=(s, i, i), daemon=True) for i, s in enumerate(servers)
    ]
    for t in threads:
        t.start()
    for line in sys.stdin:  # "go" starts the updates, "stagger"/"align" phase them; EOF stops
        command = line.strip()
        if command == "go":
            go.set()
        elif command in ("stagger", "align"):
            stagger[0] = 1.0 if command == "stagger" else 0.0
    stop.set()
    for s in servers:
        s.stop()
    print(json.dumps(handed), flush=True)


def stamp_writes(ws: Any, into: list[float]) -> None:
    """Note in `into` when each write to the websocket `ws`'s socket starts (time.time()
    before the call that hands the bytes to the kernel and wakes the reader)."""
    transport = ws._writer.transport
    if not hasattr(transport, "_lr_into"):
        write = transport.write

        def stamped(data: Any, write: Any = write, transport: Any = transport) -> None:
            transport._lr_into.append(time.time())
            write(data)

        transport.write = stamped
    transport._lr_into = into


class Exchanges:
    def __init__(self, venues: int, levels: int, rate: float) -> None:
        cmd = [sys.executable, __file__, "--serve", str(venues), "--levels", str(levels)]
        cmd += ["--rate", str(rate)]
        env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None
        self.urls: list[list[str]] = json.loads(self.proc.stdout.readline())

    def go(self, command: str = "go") -> None:
        """ "go" starts the updates; "stagger" spreads the venues' sends over the period,
        "align" sends them at the same moments again (the default)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def close(self) -> list[dict[int, float]]:
        """Stop the servers; per server, update id -> when its bytes were handed over."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        line = self.proc.stdout.readline()
        self.proc.wait(20)
        handed = json.loads(line) if line.strip() else []
        return [{int(u): t for u, t in server.items()} for server in handed]


Stamps = dict[str, tuple[float, float, float, int]]  # venue -> (T, arrival, read, u)


def stamp_socket_reads() -> None:
    """Note on each aiohttp connection when its socket last delivered bytes (time.time()):
    the moment an update reaches this process, before aiohttp's frame parsing, the
    permessage-deflate inflate and ccxt's JSON decode."""
    from aiohttp import client_proto

    if getattr(client_proto.ResponseHandler, "_lr_stamped", False):
        return
    received = client_proto.ResponseHandler.data_received

    def data_received(self: Any, data: bytes) -> None:
        self._lr_t = time.time()
        received(self, data)

    client_proto.ResponseHandler.data_received = data_received  # type: ignore[method-assign]
    client_proto.ResponseHandler._lr_stamped = True  # type: ignore[attr-defined]


def socket_time(client: Any) -> float:
    """When `client`'s (a ccxt.pro websocket client) socket last delivered bytes."""
    conn = getattr(getattr(client, "connection", None), "_conn", None)
    return float(getattr(getattr(conn, "protocol", None), "_lr_t", 0.0) or 0.0)


def before_modules(rev: str) -> tuple[Any, Any]:
    """The hot path as of git `rev` — optimizer/exact.py, rules.py and constrained.py
    (the rules' fast path), router/route.py, venues/live.py and router/router.py, each
    importing the others' `rev` copies — loaded beside today's (on today's model, the
    rest of the optimizer and ccxt): the "before" measured in the same run as the
    "after"."""
    import types

    mods = []
    for path, name in (
        ("src/liquidroute/optimizer/exact.py", "_before_exact"),
        ("src/liquidroute/optimizer/rules.py", "_before_rules"),
        ("src/liquidroute/optimizer/constrained.py", "_before_constrained"),
        ("src/liquidroute/router/route.py", "_before_route"),
        ("src/liquidroute/venues/live.py", "_before_live"),
        ("src/liquidroute/router/router.py", "_before_router"),
    ):
        show = ["git", "-C", str(ROOT), "show", f"{rev}:{path}"]
        text = subprocess.run(show, capture_output=True, text=True, check=True).stdout
        for module, before in (
            ("liquidroute.optimizer.exact", "_before_exact"),
            ("liquidroute.optimizer.rules", "_before_rules"),
            ("liquidroute.optimizer.constrained", "_before_constrained"),
            ("liquidroute.router.route", "_before_route"),
            ("liquidroute.venues.live", "_before_live"),
        ):
            text = text.replace(f"from {module} import", f"from {before} import")
        mod = types.ModuleType(name)
        mod.__file__ = f"{rev}:{path}"
        sys.modules[name] = mod  # dataclasses look their module up; the next ones import it
        exec(compile(text, mod.__file__, "exec"), mod.__dict__)
        mods.append(mod)
    return mods[4], mods[5]


def live_venues(
    urls: list[list[str]], levels: int, live_cls: Any = LiveVenue
) -> tuple[list[LiveVenue], Stamps]:
    """LiveVenues on the loopbacks (real ccxt.pro); `sent` holds each venue's newest
    (T, arrival): the server's send time and when the parsed event reached ccxt's book
    handler (wire, websocket and JSON behind it; ccxt's book, ours and routing ahead)."""
    import ccxt.pro

    from liquidroute.venues.ccxt_venue import rewrite_urls

    stamp_socket_reads()
    sent: Stamps = {}
    venues = []
    for i, (rest, ws) in enumerate(urls):
        client = ccxt.pro.binance(
            {"options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}}
        )
        api = client.urls["api"]
        api["ws"] = rewrite_urls(api["ws"], ws, ("ws",))
        client.urls["api"] = rewrite_urls(api, rest)
        handle = client.handle_order_book
        name = f"v{i}"

        def stamped(c: Any, message: Any, handle: Any = handle, name: str = name) -> Any:
            now = time.time()
            stamps = (float(message.get("T", 0.0)), now, socket_time(c) or now)
            sent[name] = (*stamps, int(message.get("u", -1)))
            return handle(c, message)

        client.handle_order_book = stamped
        venue = CcxtVenue("binance", exchange=client, name=name)
        venues.append(live_cls(venue, [SYMBOL], limit=levels, max_age_s=30.0))
    return venues, sent


class NoRouting(Router):
    """The hot path's pipeline with a quote that costs nothing: the same feeds, books,
    subscriptions and watch loop, and then, instead of routing, one of two quotes made
    before the phase (their totals differ, so the watch yields every one). Its latency
    is the floor that routing adds to: ccxt, aiohttp, the kernel, our book versions and
    the hop to the watch."""

    ready: tuple[Any, Any] = (None, None)
    turn = 0

    async def _quote(self, *args: Any) -> Any:
        self.turn ^= 1
        return self.ready[self.turn]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def handover_ms(got: list[tuple[int, int, float]], handed: list[dict[int, float]]) -> list[float]:
    """ms from each (server, update id, time)'s handover (`handed`: the servers' report)."""
    return [(now - handed[i][u]) * 1e3 for i, u, now in got if i < len(handed) and u in handed[i]]


def add_handoff(result: dict, handed: list[dict[int, float]]) -> None:
    """Each phase's latency from its newest event's bytes being handed to the server's
    socket (`handed`: the servers' report), beside the figure from the event's "T"."""
    for phase in result.values():
        if isinstance(phase, dict) and "handoff" in phase:
            lat = handover_ms(phase.pop("handoff"), handed)
            phase["handoff_p50_ms"], phase["handoff_p99_ms"] = pct(lat, 50), pct(lat, 99)


# ---------------------------------------------------------------------------- 1. latency
async def latency(
    urls: list[list[str]],
    levels: int,
    seconds: float,
    ex: Exchanges,
    live_cls: Any = LiveVenue,
    router_cls: Any = Router,
    hot_only: bool = False,
) -> dict:
    """Four phases of `seconds` each on the same live feeds: the hot path (a started
    Router: books from memory, cached ladders) and the former path (a Router on the same
    LiveVenues that was not started: asyncio.gather + wait_for per venue, full screen,
    no ladder cache), each with the venues' lot rules (the exact rules path) and with
    rules=False."""
    venues, sent = live_venues(urls, levels, live_cls)
    hot = router_cls(venues, max_age_ms=30_000)
    old = router_cls(venues, max_age_ms=30_000, cache=None)
    floor = NoRouting(venues, max_age_ms=30_000)
    out: dict[str, Any] = {}
    published: dict[str, float] = {}  # venue -> when its newest version was published
    # venue -> the stamps of the event behind its newest published version: a quote is
    # timed from the newest event it includes, not from one that arrived while it was
    # computed (that event is in the next quote)
    included: Stamps = {}
    staggered = False

    def on_version(event: Any) -> None:
        published[event.venue] = time.time()
        if event.venue in sent:
            included[event.venue] = sent[event.venue]

    for v in venues:
        v.add_listener(on_version)
    async with hot:
        await hot.start()
        snaps = [await v.snapshot(SYMBOL) for v in venues]
        first = await hot.quote(SYMBOL, "buy", AMOUNT, baselines=False)
        floor.ready = (first, dataclasses.replace(first, total_cost=first.total_cost + 1))
        markets = {v.name: await v.market(SYMBOL) for v in venues}
        assert all(len(s.asks) == levels for s in snaps), [len(s.asks) for s in snaps]
        ex.go()
        phases = [
            ("hot", hot, {}),
            ("old", old, {}),
            ("hot_norules", hot, {"rules": False}),
            ("old_norules", old, {"rules": False}),
            ("floor", floor, {}),
            ("hot_stagger", hot, {}),  # the venues' sends spread over the period
            ("hot_norules_stagger", hot, {"rules": False}),
            ("floor_stagger", floor, {}),
        ]
        for label, router, options in [p for p in phases if p[1] is hot or not hot_only]:
            if label.endswith("_stagger") and not staggered:
                ex.go("stagger")
                staggered = True
            # (server, update id, quote time) of the newest event in each quote: timed
            # from its bytes' handover to the socket once the servers report it
            handoff: list[tuple[int, int, float]] = []
            lat: list[float] = []
            wire: list[float] = []
            here: list[float] = []  # from the event reaching ccxt's handler to the quote
            socket: list[float] = []  # from its bytes reaching our socket to the quote
            book: list[float] = []  # ... to our new book version (ccxt's book, our sides)
            compute: list[float] = []
            stream = router.watch(SYMBOL, "buy", AMOUNT, baselines=False, recheck_s=0.5, **options)
            deadline = time.monotonic() + seconds
            async for quote in stream:
                now = time.time()
                if included:
                    t_sent, t_arrived, t_read, u = max(included.values())
                    newest = max(included, key=lambda k: included[k])
                    handoff.append((int(newest[1:]), u, now))
                    socket.append((now - t_read) * 1e3)
                    lat.append((now - t_sent) * 1e3)
                    wire.append((t_arrived - t_sent) * 1e3)
                    here.append((now - t_arrived) * 1e3)
                    book.append((published.get(newest, now) - t_arrived) * 1e3)
                    compute.append(quote.compute_ms)
                if time.monotonic() > deadline:
                    break
            await stream.aclose()
            lat, wire, here, compute = lat[5:], wire[5:], here[5:], compute[5:]  # 1st: start-up
            socket = socket[5:]
            book = book[5:]
            handoff = handoff[5:]
            out[label] = {
                "handoff": handoff,
                "quotes": len(lat),
                "p50_ms": pct(lat, 50),
                "p99_ms": pct(lat, 99),
                "route_p50_ms": pct(compute, 50),
                "wire_p50_ms": pct(wire, 50),
                "here_p50_ms": pct(here, 50),
                "socket_p50_ms": pct(socket, 50),
                "socket_p99_ms": pct(socket, 99),
                "here_p99_ms": pct(here, 99),
                "book_p50_ms": pct(book, 50),
            }
        if staggered:
            ex.go("align")
        out["rebuilds"] = sum(v._feed(SYMBOL).rebuilds for v in venues)
        out["updates"] = sum(v._feed(SYMBOL).updates for v in venues)
    for label, options in (
        () if hot_only else (("route_ms", {}), ("route_norules_ms", {"rules": False}))
    ):
        t = time.perf_counter()
        n = 50
        for _ in range(n):
            route(snaps, "buy", AMOUNT, markets=markets, baselines=False, **options)
        out[label] = (time.perf_counter() - t) / n * 1e3
    return out


def target_met(r: dict, clock: str) -> tuple[int, tuple[float, float]]:
    """How many of the hot path's four phases meet the latency target (p50 <= 1 ms and
    p99 <= 5 ms) on `clock` ("socket" or "handoff"), and the worst (p50, p99) of them."""
    phases = [r[k] for k in ("hot", "hot_stagger", "hot_norules", "hot_norules_stagger")]
    got = [(h[f"{clock}_p50_ms"], h[f"{clock}_p99_ms"]) for h in phases]
    met = sum(p50 <= 1.0 and p99 <= 5.0 for p50, p99 in got)
    return met, (max(p50 for p50, _ in got), max(p99 for _, p99 in got))


# ---------------------------------------------------------------------------- 2. cpu
async def cpu(
    urls: list[list[str]], levels: int, seconds: float, ex: Exchanges, live_cls: Any = LiveVenue
) -> dict:
    venues, _ = live_venues(urls, levels, live_cls)
    for v in venues:
        await v.start()
    ex.go()
    await asyncio.sleep(1.0)  # warm up
    before = {v.name: v._feed(SYMBOL).updates for v in venues}
    c0, w0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    c1, w1 = time.process_time(), time.monotonic()
    got = sum(v._feed(SYMBOL).updates - before[v.name] for v in venues)
    for v in venues:
        await v.close()
    return {"cpu_pct": (c1 - c0) / (w1 - w0) * 100, "updates_per_s": got / (w1 - w0)}


# ---------------------------------------------------------------------------- 2b. apply
def apply_cost(levels: int, repeat: int, live_mod: Any = None) -> dict:
    """One book version from a 1-3 level diff: incremental sides vs a rebuild from ccxt's
    lists (what a cache that copies the whole book per update would pay)."""
    import ccxt.pro

    from liquidroute.venues import live

    live_mod = live_mod or live
    rng = random.Random(5)
    client = ccxt.pro.binance()
    live_mod._track_changes(client)
    bids, asks = ladder(levels)
    book = client.order_book({}, levels)
    book.reset({"bids": bids, "asks": asks})
    owner = type("Owner", (), {"name": "x", "depth": None, "listeners": []})()
    feed = live_mod._Feed(owner, SYMBOL)
    feed.accept(book)
    diffs = []
    for _ in range(repeat):
        side = rng.choice(("bids", "asks"))
        k = rng.randint(0, 4)
        price = 59999.5 - k * 0.5 if side == "bids" else 60000.5 + k * 0.5
        diffs.append((side, price, rng.randint(1, 40) / 10))
    t = time.perf_counter()
    for side, price, size in diffs:
        book[side].store(price, size)
        feed.accept(book)
    incremental_us = (time.perf_counter() - t) / repeat * 1e6
    t = time.perf_counter()
    for side, price, size in diffs[: repeat // 10]:
        book[side].store(price, size)
        book.lr_reset = True  # force the rebuild path
        feed.accept(book)
    rebuild_us = (time.perf_counter() - t) / (repeat // 10) * 1e6
    asyncio.run(client.close())
    return {"incremental_us": incremental_us, "rebuild_us": rebuild_us}


# ---------------------------------------------------------------------------- 2c. cold
def cold_step(levels: int, before: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
    """(step, close): `step(n)` publishes one 1-level diff on one of 5 venues (lot
    rules) and returns the µs until `quote_now` on the new version has answered; with
    `before` (its live and router modules), on that tree's LiveVenue and Router."""
    import ccxt.pro

    from liquidroute.venues import live

    live_mod, router_cls = (live, Router) if before is None else (before[0], before[1].Router)
    venues = memory_venues(5, levels, live_mod.LiveVenue)
    for i, v in enumerate(venues):
        v._markets[SYMBOL] = Market(
            f"m{i}", SYMBOL, taker_fee=0.001, amount_step=1e-5, min_amount=1e-5,
            price_tick=0.01, min_notional=5.0,
        )  # fmt: skip
    router = router_cls(venues, max_age_ms=None)
    router._started = True  # the books below are the whole feeds
    client = ccxt.pro.binance()
    live_mod._track_changes(client)
    bids, asks = ladder(levels)
    books = []
    for i, v in enumerate(venues):
        book = client.order_book({}, levels)
        shift = 1 + i * 1e-5
        sides = {"bids": bids, "asks": asks}
        book.reset({k: [[p * shift, q] for p, q in rows] for k, rows in sides.items()})
        v._feed(SYMBOL).fresh = True
        v._feed(SYMBOL).accept(book)
        books.append(book)
    rng = random.Random(7)

    def step(n: int) -> float:
        i = n % 5
        price = (60000.5 + rng.randint(0, 4) * 0.5) * (1 + i * 1e-5)
        t = time.perf_counter()
        books[i]["asks"].store(price, rng.randint(1, 40) / 10)
        venues[i]._feed(SYMBOL).accept(books[i])
        router.quote_now(SYMBOL, "buy", AMOUNT, baselines=False)
        return (time.perf_counter() - t) * 1e6

    return step, lambda: asyncio.run(client.close())


def cold_cost(
    levels: int, repeat: int, idle_s: float = 0.003, before: tuple[Any, Any] | None = None
) -> dict[str, float]:
    """What this machine charges for a cold core: one 1-level diff published (ccxt's
    book, our sides) and `quote_now` on the new version, 5 venues with lot rules, back
    to back and after `idle_s` asleep (the gap between live updates). The live path
    pays the second. With `before`, that tree's turn follows each of today's, so a slow
    spell of the machine falls on both."""
    trees = {"now": cold_step(levels)}
    if before is not None:
        trees["before"] = cold_step(levels, before)
    out: dict[str, float] = {"idle_ms": idle_s * 1e3}
    for name, (step, _) in trees.items():
        for n in range(200):
            step(n)
        out[f"{name}_warm_us"] = statistics.median(step(n) for n in range(repeat))
    cold: dict[str, list[float]] = {name: [] for name in trees}
    for n in range(repeat // 4):
        for name, (step, _) in trees.items():
            time.sleep(idle_s)
            cold[name].append(step(n))
    for name, (_, close) in trees.items():
        out[f"{name}_cold_us"] = statistics.median(cold[name])
        close()
    return out


# ---------------------------------------------------------------------------- 3. quote
def memory_venues(venues_n: int, levels: int, live_cls: Any = LiveVenue) -> list[LiveVenue]:
    """LiveVenues holding a book in memory (fed once, no feed task, no network)."""
    bids, asks = ladder(levels)
    venues = []
    for i in range(venues_n):
        venue = live_cls(CcxtVenue("binance", name=f"m{i}"), [SYMBOL])
        venue._markets[SYMBOL] = Market(f"m{i}", SYMBOL, taker_fee=0.001 + i * 1e-5)
        venue._started = True  # the book below is the whole feed
        shift = 1 + i * 1e-5
        feed: _Feed = venue._feed(SYMBOL)
        feed.accept(
            {
                "bids": [[p * shift, s] for p, s in bids],
                "asks": [[p * shift, s] for p, s in asks],
                "nonce": 1,
            }
        )
        venues.append(venue)
    return venues


def interleaved(
    fns: dict[str, Any], repeat: int, batches: int = 5
) -> dict[str, tuple[float, float]]:
    """(median, best) µs per call of each of `fns` over `batches` batches of `repeat`
    calls, after 20 warm-up calls each; the functions take turns batch by batch, so a
    slow spell of the shared machine falls on all of them. The median says what a call
    costs here, the best what it costs when the machine leaves this process alone."""
    per: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(20):
            fn()
    for _ in range(batches):
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(repeat):
                fn()
            per[name].append((time.perf_counter() - t) / repeat * 1e6)
    return {name: (statistics.median(got), min(got)) for name, got in per.items()}


def per_call_us(fn: Any, repeat: int) -> tuple[float, float]:
    """`interleaved` of one function."""
    return interleaved({"fn": fn}, repeat)["fn"]


async def quote_from_memory(
    venues_n: int, levels: int, repeat: int, before: tuple[Any, Any] | None = None
) -> dict:
    """The hot path (quote_now, await quote: a repeated order, and an order whose amount
    changes every call) beside the gather path on the same venues (a Router not
    started: asyncio.gather + wait_for per venue, no ladder cache) and route() alone on
    the same snapshots (no cache: build, merge, solve); with `before`, the same orders
    through its LiveVenue and Router, batches interleaved with today's."""
    venues = memory_venues(venues_n, levels)
    router = Router(venues, max_age_ms=None)
    gathered = Router(venues, max_age_ms=None, cache=None)
    gathered.cache = None  # the former path: no ladder cache on live books
    await router.start()
    routers = {"after": router}
    if before:
        old_venues = memory_venues(venues_n, levels, before[0].LiveVenue)
        routers["before"] = before[1].Router(old_venues, max_age_ms=None)
        await routers["before"].start()
    snaps = [v.book_now(SYMBOL)[1] for v in venues]
    markets = {v.name: v.market_now(SYMBOL) for v in venues}
    amounts = [5.0 * (1 + i / 100) for i in range(100)]  # 5 .. 9.95 BTC, one per call

    def repeated(r: Any) -> Any:
        return lambda: r.quote_now(SYMBOL, "buy", 5.0, baselines=False)

    def varying(r: Any) -> Any:
        calls = iter(range(1 << 62))
        return lambda: r.quote_now(SYMBOL, "buy", amounts[next(calls) % 100], baselines=False)

    out: dict[str, Any] = {name: {} for name in routers}
    for what, fns in (
        ("quote_now_us", {n: repeated(r) for n, r in routers.items()}),
        ("varying_us", {n: varying(r) for n, r in routers.items()}),
    ):
        for name, got in interleaved(fns, repeat).items():
            out[name][what] = got
    # the awaited path, batches in the running loop, routers interleaved
    per: dict[str, list[float]] = {name: [] for name in routers}
    for _ in range(6):
        for name, r in routers.items():
            t = time.perf_counter()
            for _ in range(repeat):
                await r.quote(SYMBOL, "buy", 5.0, baselines=False)
            per[name].append((time.perf_counter() - t) / repeat * 1e6)
    for name, got in per.items():  # the first batch warms up
        out[name]["await_quote_us"] = (statistics.median(got[1:]), min(got[1:]))
    out["route_us"] = per_call_us(
        lambda: route(snaps, "buy", 5.0, markets=markets, baselines=False), repeat
    )
    t = time.perf_counter()
    for _ in range(repeat):
        await gathered.quote(SYMBOL, "buy", 5.0, baselines=False)
    out["gather_us"] = (time.perf_counter() - t) / repeat * 1e6
    same = router.quote_now(SYMBOL, "buy", 5.0, baselines=False)
    oracle = route(snaps, "buy", 5.0, markets=markets, baselines=False)
    out["identical"] = same.legs == oracle.legs and same.total_cost == oracle.total_cost
    for v in venues:
        await v.venue.close()
    return out


def report_quote(rev: str, before: tuple[Any, Any] | None) -> None:
    """Phase 3: quotes from memory, today's beside `rev`'s when given."""
    q = asyncio.run(quote_from_memory(10, 500, 1000, before))
    print(
        "3. router.quote from memory, 10 x 500 (target 50 us), median / best of 5 batches "
        "of 1,000 calls:"
    )

    def us(x: tuple[float, float]) -> str:
        return f"{x[0]:.0f} / {x[1]:.0f} us"

    for name in ("after", "before"):
        if name in q:
            f = q[name]
            label = "now" if name == "after" else f"before ({rev})"
            print(
                f"   {label}: repeated order: quote_now {us(f['quote_now_us'])}, await quote "
                f"{us(f['await_quote_us'])}; a new amount every call: quote_now "
                f"{us(f['varying_us'])}"
            )
    if "before" in q:
        a, b = q["after"], q["before"]
        repeated = a["quote_now_us"][0] / b["quote_now_us"][0]
        print(
            f"   after/before (medians): repeated {repeated:.2f}x, "
            f"new amounts {a['varying_us'][0] / b['varying_us'][0]:.2f}x"
        )
    print(
        f"   baselines in this run: the gather path {q['gather_us']:.0f} us, route() without a "
        f"cache {q['route_us'][0]:.0f} us; identical to route(): {q['identical']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", type=int, default=5)
    parser.add_argument("--levels", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=20.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--before",
        default="1e5a336",
        help="git revision whose exact/route/live/router.py are measured as the before ('' = none)",
    )
    parser.add_argument(
        "--quote-only", action="store_true", help="run phase 3 (quotes from memory) alone"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.levels, args.rate)
        return
    before = before_modules(args.before) if args.before else None
    print(f"import liquidroute + numpy: {IMPORT_S * 1e3:.0f} ms (not counted below)")
    print(f"cores: {os.cpu_count()} (shared machine: figures are noisy)")
    if args.quote_only:
        report_quote(args.before, before)
        return

    ex = Exchanges(args.venues, args.levels, 20.0)
    handed: list[dict[int, float]] = []
    try:
        r = asyncio.run(latency(ex.urls, args.levels, args.seconds, ex))
        if before:
            rb = asyncio.run(
                latency(
                    ex.urls,
                    args.levels,
                    args.seconds,
                    ex,
                    before[0].LiveVenue,
                    before[1].Router,
                    hot_only=True,
                )
            )
    finally:
        handed = ex.close()
    add_handoff(r, handed)
    if before:
        add_handoff(rb, handed)
    print(
        f"1. update -> new quote, {args.venues} venues x {args.levels} levels, ~20 upd/s each "
        f"(targets p50 1 ms, p99 5 ms); {r['updates']} book versions, {r['rebuilds']} full "
        "rebuilds (snapshots). Three clocks for the same quotes: from the event's stamp "
        "(taken before the server's JSON + deflate + write), from its bytes' handover to "
        "the server's socket (stamped just before the write, after them: the honest "
        "'update sent'), from its bytes "
        "reaching our socket (aiohttp data_received)"
    )

    def clocks(h: dict) -> str:
        return (
            f"p50 {h['p50_ms']:.2f} / {h['handoff_p50_ms']:.2f} / {h['socket_p50_ms']:.2f} ms, "
            f"p99 {h['p99_ms']:.2f} / {h['handoff_p99_ms']:.2f} / {h['socket_p99_ms']:.2f} ms "
            "(stamp / handover / our socket)"
        )

    for rules, key, alone in (
        ("venue lot rules", "", "route_ms"),
        ("rules=False", "_norules", "route_norules_ms"),
    ):
        h, o = r["hot" + key], r["old" + key]
        g = r["hot" + key + "_stagger"]
        print(
            f"   {rules}, the venues' sends aligned (5 updates at once): hot path "
            f"{clocks(h)}; {h['quotes']} quotes; of it p50 server+wire+JSON "
            f"{h['wire_p50_ms']:.2f} ms, then ccxt's book -> quote p50 "
            f"{h['here_p50_ms']:.2f} ms, p99 {h['here_p99_ms']:.2f} ms, of which ccxt's book "
            f"+ ours -> new version p50 {h['book_p50_ms']:.2f} ms, route() p50 "
            f"{h['route_p50_ms']:.2f} ms. Former gather path p50 {o['p50_ms']:.2f} ms, p99 "
            f"{o['p99_ms']:.2f} ms from the stamp ({o['quotes']} quotes): p50 "
            f"{h['p50_ms'] / o['p50_ms']:.2f}x; route() alone, uncached {r[alone]:.2f} ms"
        )
        print(
            f"   {rules}, the venues' sends staggered (i/{args.venues} of a period apart): "
            f"hot path {clocks(g)}; {g['quotes']} quotes, ccxt's book -> quote p50 "
            f"{g['here_p50_ms']:.2f} ms"
        )
        if before:
            b = rb["hot" + key]
            bg = rb["hot" + key + "_stagger"]
            print(
                f"   {rules}, before ({args.before}'s exact, rules, constrained, route, live, "
                f"router.py; same feeds, same run): aligned {clocks(b)}, ccxt's book -> quote p50 "
                f"{b['here_p50_ms']:.2f} ms (new version {b['book_p50_ms']:.2f} ms); "
                f"staggered {clocks(bg)}"
            )
            print(
                f"   {rules}, after/before p50: aligned {h['p50_ms'] / b['p50_ms']:.2f}x "
                f"(stamp), {h['handoff_p50_ms'] / b['handoff_p50_ms']:.2f}x (handover), "
                f"{h['socket_p50_ms'] / b['socket_p50_ms']:.2f}x (our socket), ccxt's book "
                f"-> quote {h['here_p50_ms'] / b['here_p50_ms']:.2f}x; staggered "
                f"{g['p50_ms'] / bg['p50_ms']:.2f}x (stamp), "
                f"{g['handoff_p50_ms'] / bg['handoff_p50_ms']:.2f}x (handover), "
                f"{g['socket_p50_ms'] / bg['socket_p50_ms']:.2f}x (our socket)"
            )

    f, fs = r["floor"], r["floor_stagger"]
    print(
        "   the pipeline without routing (the same feeds and watch, a quote that costs "
        f"nothing: NoRouting): p50 {f['handoff_p50_ms']:.2f} ms aligned, "
        f"{fs['handoff_p50_ms']:.2f} ms staggered (handover); routing with lot rules adds "
        f"{r['hot']['handoff_p50_ms'] - f['handoff_p50_ms']:.2f} / "
        f"{r['hot_stagger']['handoff_p50_ms'] - fs['handoff_p50_ms']:.2f} ms"
    )

    for clock, label in (
        ("socket", "from the update's bytes reaching this process (our socket)"),
        ("handoff", "from the handover (the kernel's loopback path and this process's wake-up "
         "included: bench_floor.py measures what a bare aiohttp consumer pays of it)"),
    ):  # fmt: skip
        met, worst = target_met(r, clock)
        print(
            f"   target p50 <= 1 ms, p99 <= 5 ms, {label}: met in {met} of 4 phases (lot "
            f"rules, rules=False; aligned, staggered); worst p50 {worst[0]:.2f} ms, worst "
            f"p99 {worst[1]:.2f} ms"
        )

    ex = Exchanges(args.venues, args.levels, 100.0)
    try:
        c = asyncio.run(cpu(ex.urls, args.levels, args.seconds, ex))
        if before:
            cb = asyncio.run(cpu(ex.urls, args.levels, args.seconds, ex, before[0].LiveVenue))
    finally:
        ex.close()
    print(
        f"2. cache CPU, {args.venues} venues x 100 upd/s: {c['cpu_pct']:.1f} % of one core "
        f"(target < 25 %), {c['updates_per_s']:.0f} book versions/s kept"
    )
    if before:
        print(
            f"   before ({args.before}'s live.py, same servers, same run): "
            f"{cb['cpu_pct']:.1f} % ({cb['updates_per_s']:.0f} versions/s); after/before "
            f"{c['cpu_pct'] / cb['cpu_pct']:.2f}x"
        )

    a = apply_cost(args.levels, 2000)
    print(
        f"2b. one book version from a 1-3 level diff at {args.levels} levels: incremental "
        f"{a['incremental_us']:.0f} us vs rebuild {a['rebuild_us']:.0f} us "
        f"({a['incremental_us'] / a['rebuild_us']:.2f}x)"
    )
    if before:
        ab = apply_cost(args.levels, 2000, before[0])
        print(
            f"   before ({args.before}'s live.py): incremental {ab['incremental_us']:.0f} us, "
            f"rebuild {ab['rebuild_us']:.0f} us; incremental after/before "
            f"{a['incremental_us'] / ab['incremental_us']:.2f}x"
        )
    k = cold_cost(args.levels, 2000, before=before)
    print(
        f"2c. a cold core: one diff published + quote_now (5 x {args.levels}, lot rules): "
        f"{k['now_warm_us']:.0f} us back to back, {k['now_cold_us']:.0f} us after "
        f"{k['idle_ms']:.0f} ms asleep ({k['now_cold_us'] / k['now_warm_us']:.1f}x): the "
        "live path pays the second"
    )
    if before:
        print(
            f"   before ({args.before}, its turn after each of today's): "
            f"{k['before_warm_us']:.0f} us back to back, {k['before_cold_us']:.0f} us "
            f"asleep first; after/before {k['now_warm_us'] / k['before_warm_us']:.2f}x / "
            f"{k['now_cold_us'] / k['before_cold_us']:.2f}x"
        )
    report_quote(args.before, before)


if __name__ == "__main__":
    main()
