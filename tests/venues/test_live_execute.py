"""`execute` re-routes fallbacks from the live books, against loopback Binance exchanges.

Two `BinanceWsLoopback`s (REST orders + diff-depth websocket) act as venues a and b,
traded through the real ccxt.pro client. Venue a refuses its first order (insufficient
balance), so the remainder is re-routed in a second round. The proof: the second round's
legs follow the book the server holds *now* (changed between the rounds), and no REST
depth request is made after the feeds' own subscription snapshots.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from liquidroute import Router
from liquidroute.cli.app import app
from liquidroute.cli.execute import live_venues
from liquidroute.router.executor import Executor
from liquidroute.router.journal import Journal
from liquidroute.venues.live import LiveVenue
from tests.loopback.binance_server import API_KEY, SECRET, client_options
from tests.loopback.binance_ws import BinanceWsLoopback
from tests.venues.test_live import SYMBOL, equal_to_server, on_server

DEPTH = "/api/v3/depth"
BIDS = [[59990.0, 2.0]]
ASKS_A = [[60000.0, 1.0], [60030.0, 4.0]]
ASKS_B = [[60005.0, 1.0], [60040.0, 4.0]]
runner = CliRunner()


@pytest.fixture
def pair(monkeypatch, tmp_path):
    a = BinanceWsLoopback(bids=BIDS, asks=ASKS_A, hang_s=2.0).start()
    b = BinanceWsLoopback(bids=BIDS, asks=ASKS_B, hang_s=2.0).start()
    monkeypatch.setenv("LIQUIDROUTE_HOME", str(tmp_path / "home"))
    for name, ex in (("A", a), ("B", b)):
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_URL", ex.base_url)
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_WS_URL", ex.ws_base_url)
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_OPTIONS", json.dumps(client_options()))
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_API_KEY", API_KEY)
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_SECRET", SECRET)
    yield a, b
    a.stop()
    b.stop()


class BetweenRounds(Router):
    """A Router that runs `hook` before its n-th quote (the test's "between rounds")."""

    def __init__(self, venues: list[Any], hook: Any, at: int, **kw: Any) -> None:
        super().__init__(venues, **kw)
        self.hook, self.at, self.quotes = hook, at, 0
        self.memory_quotes = 0

    async def quote(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        self.quotes += 1
        if self.quotes == self.at:
            await self.hook()
        quote = await super().quote(*args, **kwargs)
        self.memory_quotes += self._started and self.memory
        return quote


def test_the_fallback_round_routes_on_the_live_book_without_rest(pair, tmp_path):
    a, b = pair
    a.fail("POST /api/v3/order", "insufficient_balance")  # round 1: a refuses its leg

    async def go():
        venues = live_venues(["a=binance", "b=binance"], None, 5.0, books_of=SYMBOL)
        assert all(isinstance(v, LiveVenue) for v in venues)

        async def change_b() -> None:
            # between the rounds b's book changes: a new cheapest ask, deeper than needed
            await on_server(b.update, asks=[(60002.5, 5.0)])
            await equal_to_server(venues[1], b)

        router = BetweenRounds(venues, change_b, at=3, max_age_ms=None)
        executor = Executor(router, Journal(tmp_path / "j.sqlite3"), live=True)
        try:
            await router.start()
            depth = a.count(DEPTH), b.count(DEPTH)
            report = await executor.execute(SYMBOL, "buy", 2.5)
            return report, router, depth
        finally:
            await router.close()

    report, router, depth = asyncio.run(go())
    assert depth == (1, 1)  # each feed's subscription snapshot
    assert (a.count(DEPTH), b.count(DEPTH)) == depth  # no REST book for any quote or round
    assert router.memory_quotes == router.quotes == 3  # first quote, round 1, round 2
    assert report.complete and report.filled == pytest.approx(2.5)
    first = [c for c in report.children if c.round == 1]
    second = [c for c in report.children if c.round == 2]
    assert {c.venue: c.state for c in first}["a"] == "rejected"
    a_share = next(c.amount for c in first if c.venue == "a")
    # the re-route is on b's book as the server holds it now: all at the new 60002.5 ask
    assert [(c.venue, c.amount) for c in second] == [("b", pytest.approx(a_share))]
    assert second[0].avg_price == pytest.approx(60002.5)
    # planned on the new level (limit = worst planned price + 25 bps, up to the tick)
    assert second[0].limit_price == pytest.approx(60002.5 * 1.0025, abs=0.011)
    filled_on_server = sum(o["executedQty"] for ex in pair for o in ex.orders.values())
    assert report.filled == pytest.approx(filled_on_server)


def cli_execute(*extra: str) -> Any:
    args = ["execute", SYMBOL, "buy", "2.5", "--venues", "a=binance,b=binance", "--json"]
    return runner.invoke(app, [*args, "--max-age", "30", *extra])


def test_execute_live_keeps_books_by_websocket_by_default(pair):
    a, b = pair
    a.fail("POST /api/v3/order", "insufficient_balance")
    result = cli_execute("--live")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["complete"] and report["rounds"] == 2
    assert (a.count(DEPTH), b.count(DEPTH)) == (1, 1)  # the feeds' snapshots only
    assert a.subscribe_count == b.subscribe_count == 1


def test_no_live_books_fetches_a_rest_book_per_quote(pair):
    a, b = pair
    a.fail("POST /api/v3/order", "insufficient_balance")
    result = cli_execute("--live", "--no-live-books")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rounds"] == 2
    # the first quote, round 1, round 2 (a is left out of round 2): one REST book each
    assert (a.count(DEPTH), b.count(DEPTH)) == (2, 3)
    assert a.connect_count == b.connect_count == 0


def test_live_books_is_refused_in_a_dry_run_and_a_dry_run_sends_nothing(pair):
    a, b = pair
    refused = cli_execute("--live-books")
    assert refused.exit_code == 2 and "--live-books needs --live" in refused.stderr
    dry = cli_execute()
    assert dry.exit_code == 0, dry.output
    assert not a.posted_ids and not b.posted_ids and a.connect_count == b.connect_count == 0


def test_a_rest_url_without_a_websocket_url_keeps_that_venue_on_rest(pair, monkeypatch):
    a, b = pair
    monkeypatch.delenv("LIQUIDROUTE_A_WS_URL")
    result = cli_execute("--live")
    assert result.exit_code == 0, result.output
    assert "a: books by REST (LIQUIDROUTE_A_URL is set without LIQUIDROUTE_A_WS_URL)" in (
        " ".join(result.stderr.split())
    )
    assert a.connect_count == 0 and b.connect_count == 1
