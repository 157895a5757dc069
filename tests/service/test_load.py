"""The service under load, over loopback: routes run in worker processes, a stuck route is
stopped, a full pool answers 503 + Retry-After, and /health and the live-book refresh never
wait behind routes. Bounded: a few seconds and a few dozen requests per test."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest
from ccxt.base.errors import ExchangeNotAvailable, RequestTimeout
from ccxt.base.order_router import OrderRouter

from liquidroute.model import DepthSnapshot, Market
from liquidroute.service.app import create_app, refresh_forever
from liquidroute.venues.sample_graph import sample_graph_snapshots
from tests.service.live import sample_cache, serving

SLOW = "tests.service.slow_compute:compute"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is dead too


def slow(url: str, seconds: float, **kw) -> httpx.Response:
    params = {"from": "USDT", "to": "BTC", "amountIn": 1, "hopPenaltyBps": seconds}
    return httpx.get(url + "/route", params=params, timeout=30, **kw)


def test_a_stuck_route_is_stopped_and_its_worker_replaced():
    app = create_app(sample_cache(), workers=1, route_timeout=0.5, compute=SLOW)
    with serving(app) as url:
        assert slow(url, 0).json() == {"slept": 0.0, "books": 13}  # the pool is up
        (old,) = [w.process.pid for w in app.state.pool._all]
        t0 = time.monotonic()
        stuck = slow(url, 9999)  # would spin forever
        assert stuck.status_code == 504 and "stopped" in stuck.json()["error"]
        assert time.monotonic() - t0 < 5
        deadline = time.monotonic() + 5
        while alive(old) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(old)  # the work really stopped: its process is gone
        assert slow(url, 0).status_code == 200  # a fresh worker answers
        (new,) = [w.process.pid for w in app.state.pool._all]
        assert new != old
        with pytest.raises(RequestTimeout):  # what ccxt's client makes of it
            OrderRouter({"baseUrl": url, "timeoutMs": 20000}).fetch_route(
                "USDT", "BTC", {"amountIn": 1, "hopPenaltyBps": 9999}
            )


def test_a_full_pool_answers_503_with_retry_after_and_health_never_waits():
    app = create_app(sample_cache(), workers=1, queue=1, route_timeout=20, compute=SLOW)
    with serving(app) as url:
        slow(url, 0)
        results: list[httpx.Response] = []
        threads = [
            threading.Thread(target=lambda: results.append(slow(url, 1.5))) for _ in range(2)
        ]
        for t in threads:  # one runs, one waits in the queue
            t.start()
            time.sleep(0.2)
        refused = slow(url, 0)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["error"]
        with pytest.raises(ExchangeNotAvailable, match="retry after 1s"):
            OrderRouter({"baseUrl": url}).fetch_route("USDT", "BTC", {"amountIn": 1})
        waits, busy = [], []
        with httpx.Client(base_url=url, timeout=5) as http:
            while any(t.is_alive() for t in threads):
                t0 = time.perf_counter()
                busy.append(http.get("/health").json()["busyWorkers"])
                assert http.get("/ready").status_code == 200
                waits.append(time.perf_counter() - t0)
                time.sleep(0.05)
        # the worker frees a moment before its client thread gets the answer, so the last
        # polls may see 0 busy; while routes run it is the one worker, never more
        assert set(busy) <= {0, 1} and busy.count(1) >= 10
        assert len(waits) >= 10 and max(waits) < 0.5  # routes take 1.5 s each
        assert sorted(r.status_code for r in results) == [200, 200]


class TickingVenue:
    """An in-memory live venue: every snapshot is a new book version (counts the polls)."""

    name = "live"

    def __init__(self) -> None:
        self.base = next(s for s in sample_graph_snapshots() if s.symbol == "BTC/USDT")
        self.polls = 0

    async def snapshot(self, symbol: str) -> DepthSnapshot:
        self.polls += 1
        return DepthSnapshot(self.name, symbol, self.base.bids, self.base.asks)

    async def market(self, symbol: str) -> Market:
        return Market(self.name, symbol, taker_fee=0.001)


def test_load_8_clients_heavy_multi_hop_while_health_is_polled():
    cache = sample_cache()
    cache.live, cache.stale_ms = True, 60_000.0
    venue = TickingVenue()
    app = create_app(cache, workers=2, queue=4, route_timeout=20)

    async def refresh() -> None:
        app.state.refresher = __import__("asyncio").create_task(
            refresh_forever(cache, [venue], ["BTC/USDT"], 0.05)
        )

    app.router.on_startup.append(refresh)
    heavy = {"from": "USDT", "to": "ETH"}  # multi-hop: the joint LP, then the best chain
    statuses: list[int] = []
    health: list[float] = []
    stop = 0.0

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for n in range(20):
                if time.monotonic() > stop:
                    return
                r = http.get("/route", params=heavy | {"amountIn": 1e6 + 1e4 * i + n})
                statuses.append(r.status_code)
                if r.status_code == 503:
                    assert r.headers["retry-after"] == "1"
                    time.sleep(0.2)
                elif r.status_code == 504:  # stopped at the time limit: a valid answer
                    assert "stopped" in r.json()["error"]
                else:
                    assert r.json()["path"][-1] == "ETH", r.text

    def poller() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                assert http.get("/health").status_code == 200
                health.append(time.perf_counter() - t0)
                time.sleep(0.02)

    with serving(app) as url:
        httpx.get(url + "/route", params=heavy | {"amountIn": 1000}, timeout=60)  # warm
        polls, stop = venue.polls, time.monotonic() + 6.0
        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        threads.append(threading.Thread(target=poller))
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        refreshed = venue.polls - polls
    assert set(statuses) <= {200, 503, 504} and statuses.count(200) >= 2, statuses
    assert len(health) >= 50, f"/health answered {len(health)} times in 6 s"
    p99 = statistics.quantiles(health, n=100)[98]
    assert p99 < 0.25, (p99, max(health))  # never behind a route
    assert refreshed >= 30  # ~120 polls in 6 s at 0.05 s: the refresh did not stall


def test_a_bug_in_a_route_is_a_logged_500_never_a_4xx(caplog):
    from fastapi.testclient import TestClient

    app = create_app(sample_cache(), workers=1, compute="tests.service.slow_compute:boom")
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/route", params={"from": "USDT", "to": "BTC", "amountIn": 1})
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal error (RouteWorkerError); it is logged, please report it"
    }
    logged = [r for r in caplog.records if r.name == "liquidroute.service"]
    assert logged and "ZeroDivisionError" in str(logged[0].exc_info[1])
