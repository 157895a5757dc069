"""Executor in dry run: simulated fills, rounds, fallbacks, journal, state machine."""

from __future__ import annotations

import asyncio

import pytest

from liquidroute import DepthSnapshot, Market, Router
from liquidroute.errors import RiskLimitError
from liquidroute.model import ChildOrder, OrderEvent
from liquidroute.optimizer.rules import round_amount, round_limit_price
from liquidroute.router.executor import ExecutionPolicy, Executor
from liquidroute.router.journal import Journal
from liquidroute.venues.base import OrderUpdate
from liquidroute.venues.simulated import SimulatedVenue


class Book:
    """A recorded-style venue serving one fixed book (with real-looking rules)."""

    live = False

    def __init__(self, name, asks, bids, fee=0.001, step=0.001, tick=0.1, min_notional=5.0):
        self.name = name
        self._snap = DepthSnapshot(name, "BTC/USDT", bids, asks, 0)
        self._market = Market(
            name, "BTC/USDT", fee, amount_step=step, price_tick=tick, min_notional=min_notional
        )

    async def snapshot(self, symbol, depth=None):
        return self._snap

    async def market(self, symbol):
        return self._market

    async def close(self):
        pass


def venues(latency_ms=0.0):
    a = Book("a", [[100.0, 1.0], [100.5, 2.0]], [[99.9, 1.0]])
    b = Book("b", [[100.2, 1.5], [101.0, 5.0]], [[99.8, 1.0]])
    return [SimulatedVenue(a, latency_ms=latency_ms), SimulatedVenue(b, latency_ms=latency_ms)]


def run(coro):
    return asyncio.run(coro)


def test_dry_run_fills_like_the_quote(tmp_path):
    sims = venues()
    journal = Journal(tmp_path / "j.sqlite3")
    ex = Executor(Router(sims), journal, live=False)
    report = run(ex.execute("BTC/USDT", "buy", 2.0))
    assert report.complete and report.stop_reason == "filled"
    assert report.filled == pytest.approx(2.0)
    # fills equal what the simulated venues matched
    matched = sum(u.filled for s in sims for u in s.orders.values())
    assert matched == pytest.approx(report.filled)
    assert abs(report.shortfall_bps) < 1e-6  # no latency, no drift: fills at the quote
    stored = journal.children(report.parent_id)
    assert [c.state for c in stored] == ["filled"] * len(stored)
    assert journal.parent(report.parent_id).state == "filled"
    kinds = [k for _, _, k, _ in journal.events(report.parent_id)]
    assert kinds.index("intent") < kinds.index("ack")


def test_child_orders_respect_lot_and_tick(tmp_path):
    sims = venues()
    ex = Executor(Router(sims), Journal(tmp_path / "j"), live=False)
    report = run(ex.execute("BTC/USDT", "buy", 2.3456789))
    for child in report.children:
        assert round(child.amount / 0.001, 9).is_integer()
        assert round(child.limit_price / 0.1, 9).is_integer()
        assert child.state != "rejected"
    # what is below a lot is left unfilled and said so
    assert report.unfilled < 0.001 * len(sims)


def test_insufficient_liquidity_reports_remainder(tmp_path):
    ex = Executor(Router(venues()), Journal(tmp_path / "j"), live=False)
    report = run(ex.execute("BTC/USDT", "buy", 20.0))
    assert report.filled == pytest.approx(9.5)
    assert report.unfilled == pytest.approx(10.5)
    assert "liquidity" in report.stop_reason or "rounds" in report.stop_reason


def test_max_notional_refused_before_anything_is_sent(tmp_path):
    sims = venues()
    policy = ExecutionPolicy(max_notional=100.0)
    ex = Executor(Router(sims), Journal(tmp_path / "j"), live=False, policy=policy)
    with pytest.raises(RiskLimitError, match="max-notional"):
        run(ex.execute("BTC/USDT", "buy", 2.0))
    assert all(not s.orders for s in sims)


def test_kill_switch_refuses(tmp_path):
    switch = tmp_path / "STOP"
    switch.touch()
    sims = venues()
    ex = Executor(
        Router(sims),
        Journal(tmp_path / "j"),
        live=False,
        policy=ExecutionPolicy(kill_switch=switch),
    )
    with pytest.raises(RiskLimitError, match="kill switch"):
        run(ex.execute("BTC/USDT", "buy", 1.0))
    assert all(not s.orders for s in sims)


def test_simulated_venue_recognises_a_retry():
    sim = venues()[0]
    c = ChildOrder("p", "same-id", "a", "BTC/USDT", "buy", 0.5, 100.0)
    first = run(sim.place_order(c))
    second = run(sim.place_order(c))
    assert first == second and first.filled == 0.5
    assert run(sim.snapshot("BTC/USDT")).asks[0, 1] == pytest.approx(0.5)


def test_simulated_venue_rejects_off_lot_amounts():
    sim = venues()[0]
    c = ChildOrder("p", "x", "a", "BTC/USDT", "buy", 0.0005, 100.0)
    update = run(sim.place_order(c))
    assert update.status == "rejected" and "lot" in update.reason


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [(1.23456, 0.001, 1.234), (0.3, 0.1, 0.3), (2.0, 0.5, 2.0), (0.00099, 0.001, 0.0)],
)
def test_round_amount_down_to_lot(value, step, expected):
    assert round_amount(value, step) == expected


def test_round_limit_price_conservatively():
    assert round_limit_price(100.01, 0.1, "buy") == 100.1
    assert round_limit_price(100.09, 0.1, "sell") == 100.0
    assert round_limit_price(100.1, 0.1, "buy") == 100.1


class Flaky(SimulatedVenue):
    """Accepts the order, then 'loses' the answer: the executor must ask, not resend."""

    def __init__(self, source):
        super().__init__(source)
        self.calls = 0

    async def place_order(self, order):
        self.calls += 1
        await super().place_order(order)
        raise TimeoutError


def test_unknown_order_is_resolved_by_lookup_not_resent(tmp_path):
    a = Book("a", [[100.0, 1.0], [100.5, 2.0]], [[99.9, 1.0]])
    flaky = Flaky(a)
    journal = Journal(tmp_path / "j")
    ex = Executor(Router([flaky]), journal, live=False)
    report = run(ex.execute("BTC/USDT", "buy", 1.0))
    assert flaky.calls == 1
    assert report.filled == pytest.approx(1.0)
    assert report.children[0].state == "filled"
    kinds = [k for _, _, k, _ in journal.events(report.parent_id)]
    assert "unknown" in kinds and "resolved" in kinds


def test_apply_update_partial_then_cancel():
    from liquidroute.router.executor import apply_update

    c = ChildOrder("p", "cid", "a", "BTC/USDT", "buy", 1.0, 100.0)
    c.apply(OrderEvent.SUBMIT)
    apply_update(c, OrderUpdate("cid", "cancelled", 0.4, 100.0, 0.04))
    assert c.state == "cancelled" and c.filled == 0.4
    assert c.fees == {"USDT": 0.04} and c.cost == pytest.approx(40.04)


def test_library_execute_is_a_dry_run_by_default(tmp_path):
    from liquidroute import execute_sync
    from liquidroute.venues.sample import sample_venues

    report = execute_sync(
        Router(sample_venues()), "BTC/USDT", "buy", 2.0, journal=Journal(tmp_path / "j")
    )
    assert report.complete and not report.live
    assert all(c.venue_order_id.startswith("sim-") for c in report.children)


def test_router_does_not_know_the_executor():
    """The arrow points one way: executor -> Router (through the Quoter protocol)."""
    import subprocess
    import sys

    code = (
        "import sys, liquidroute.router.router as r; "
        "print('liquidroute.router.executor' in sys.modules, hasattr(r.Router, 'execute'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_executor_takes_any_quoter(tmp_path):
    """Not only a Router: anything with venues, quote() and close()."""
    sims = venues()
    inner = Router(sims)

    class Quoter:
        def __init__(self):
            self.venues = sims
            self.calls = []

        async def quote(self, symbol, side, amount, *, baselines=True, exclude=None, fees=None):
            self.calls.append((amount, dict(exclude or {})))
            return await inner.quote(symbol, side, amount, baselines=baselines, exclude=exclude)

        async def close(self):
            pass

    quoter = Quoter()
    report = run(
        Executor(quoter, Journal(tmp_path / "j"), live=False).execute("BTC/USDT", "buy", 2)
    )
    assert report.complete and quoter.calls[0][0] == 2.0


def test_two_parents_at_once_on_one_executor(tmp_path):
    ex = Executor(Router(venues()), Journal(tmp_path / "j"), live=False)

    async def both():
        return await asyncio.gather(
            ex.execute("BTC/USDT", "buy", 1.0), ex.execute("BTC/USDT", "buy", 1.5)
        )

    first, second = run(both())
    assert first.complete and second.complete
    assert {c.parent_id for c in first.children} == {first.parent_id}
    assert {c.parent_id for c in second.children} == {second.parent_id}


def test_a_child_beyond_the_limit_price_is_never_sent(tmp_path):
    from liquidroute.router.executor import _Parent

    sims = venues()
    policy = ExecutionPolicy(limit_price=100.0)
    ex = Executor(Router(sims), Journal(tmp_path / "j"), live=False, policy=policy)
    child = ChildOrder("p", "c-over", "a", "BTC/USDT", "buy", 0.5, 100.1)
    parent = _Parent([child])
    run(ex._send(child, parent))
    assert child.state == "failed" and "limit-price" in child.error
    assert parent.risk_stop and not sims[0].orders
    inside = ChildOrder("p", "c-in", "a", "BTC/USDT", "buy", 0.5, 100.0)
    run(ex._send(inside, _Parent([inside])))
    assert inside.state == "filled"


def test_cap_on_a_sell_counts_each_child_at_the_better_of_its_limit_and_the_mid(tmp_path):
    from liquidroute.model import StopReason

    sims = venues()
    # proceeds quoted 199.5 (99.9 + 99.8 less fees) fit 199.8; but a child could sell as
    # high as the mid (99.95) before its IOC is matched: two of them would not fit
    policy = ExecutionPolicy(max_notional=199.8)
    ex = Executor(Router(sims), Journal(tmp_path / "j"), live=False, policy=policy)
    report = run(ex.execute("BTC/USDT", "sell", 2.0))
    assert report.stop_reason is StopReason.RISK_LIMIT and "spent" in report.stop_detail
    sold = sum(u.filled * (u.avg_price or 0) for s in sims for u in s.orders.values())
    assert 0 < sold <= 199.8 and len([u for s in sims for u in s.orders.values()]) == 1


def test_a_journal_from_before_per_asset_fees_still_opens(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE parents (parent_id TEXT PRIMARY KEY, created REAL NOT NULL, symbol TEXT
            NOT NULL, side TEXT NOT NULL, amount REAL NOT NULL, live INTEGER NOT NULL,
            state TEXT NOT NULL, request TEXT NOT NULL, report TEXT);
        CREATE TABLE children (client_id TEXT PRIMARY KEY, parent_id TEXT NOT NULL, round
            INTEGER NOT NULL, leg INTEGER NOT NULL, venue TEXT NOT NULL, symbol TEXT NOT NULL,
            side TEXT NOT NULL, amount REAL NOT NULL, limit_price REAL NOT NULL, state TEXT NOT
            NULL, filled REAL NOT NULL, avg_price REAL, fee REAL NOT NULL, venue_order_id TEXT,
            error TEXT, updated REAL NOT NULL);
        INSERT INTO parents VALUES ('p1', 0, 'BTC/USDT', 'buy', 1.0, 1, 'running', '{}', NULL);
        INSERT INTO children VALUES ('c1', 'p1', 1, 0, 'a', 'BTC/USDT', 'buy', 1.0, 100.0,
            'filled', 1.0, 100.0, 0.1, 'v1', NULL, 0);
        INSERT INTO children VALUES ('c2', 'p1', 1, 1, 'b', 'BTC/USDT', 'buy', 1.0, 100.0,
            'planned', 0.0, NULL, 0.0, NULL, NULL, 0);
        """
    )
    db.close()
    (c1, c2) = Journal(path).children("p1")
    assert c1.state == "filled" and c1.fees == {"USDT": 0.1} and c1.cost == pytest.approx(100.1)
    assert c2.state == "planned"
    c2.apply(OrderEvent.RECOVER)  # what resume does with an intent of unknown fate
    assert c2.state == "unknown"
