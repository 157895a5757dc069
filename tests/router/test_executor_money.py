"""Money in every path, through real ccxt clients against loopback Binance-dialect exchanges:
the notional cap holds in fallback rounds and in resume, fees are booked per asset and add
up to the exchange's balances, transient faults are retried and permanent ones exclude.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from liquidroute import Router
from liquidroute.errors import InvalidInputError
from liquidroute.model import OrderState, StopReason
from liquidroute.router.executor import ExecutionPolicy, Executor
from liquidroute.router.journal import Journal
from liquidroute.venues.ccxt_venue import CcxtVenue
from tests.conftest import binance_client
from tests.loopback.binance_server import BinanceLoopback

FEE = 0.001
# issue 11 item 1: A is the cheapest; B's first level is thin and its next one deep
BOOK_A = {"bids": [[59990.0, 2.0]], "asks": [[60000.0, 1.0]]}
BOOK_B = {"bids": [[59985.0, 2.0]], "asks": [[60005.0, 0.5], [60400.0, 4.0]]}


@pytest.fixture
def pair(request):
    kw = getattr(request, "param", {})
    a = BinanceLoopback(hang_s=1.5, **BOOK_A, **kw).start()
    b = BinanceLoopback(hang_s=1.5, **BOOK_B, **kw).start()
    yield a, b
    a.stop()
    b.stop()


def make_executor(pair, journal, fee_prices=None, **policy):
    a, b = pair
    venues = [
        CcxtVenue("binance", name="a", exchange=binance_client(a.base_url, timeout_ms=1000)),
        CcxtVenue("binance", name="b", exchange=binance_client(b.base_url, timeout_ms=1000)),
    ]
    policy = {"slippage_bps": 0.0} | policy
    return Executor(
        Router(venues, max_age_ms=None),
        journal,
        live=True,
        policy=ExecutionPolicy(**policy),
        fee_prices=fee_prices,
    )


def run(executor, job, *args):
    async def go():
        try:
            return await getattr(executor, job)(*args)
        finally:
            await executor.quoter.close()

    return asyncio.run(go())


def spent_on_servers(pair):
    """What the exchanges booked: quote paid for the fills, plus commissions in quote."""
    total = 0.0
    for ex in pair:
        for o in ex.orders.values():
            total += o["cummulativeQuoteQty"]
            total += sum(
                c * (p if o["commissionAsset"] == "BTC" else 1.0) for p, _, c in o["fills"]
            )
    return total


def test_cap_holds_when_a_rejection_reroutes_to_deeper_levels(pair, tmp_path):
    a, _ = pair
    cap = 90_300.0
    # without the cap, the fallback round spends more than it: the scenario
    a.fail("/api/v3/order", "insufficient_balance")
    free = run(make_executor(pair, Journal(tmp_path / "free")), "execute", "BTC/USDT", "buy", 1.5)
    assert free.complete and free.total_cost > cap
    assert spent_on_servers(pair) == pytest.approx(free.total_cost)


def test_cap_checked_before_every_child_send(pair, tmp_path):
    a, b = pair
    cap = 90_300.0
    a.fail("/api/v3/order", "insufficient_balance")
    journal = Journal(tmp_path / "j")
    report = run(make_executor(pair, journal, max_notional=cap), "execute", "BTC/USDT", "buy", 1.5)
    assert report.stop_reason is StopReason.RISK_LIMIT
    assert spent_on_servers(pair) <= cap
    assert report.total_cost == pytest.approx(spent_on_servers(pair))
    # the refusal names what was spent (B's first level, 0.5 at 60005 plus 0.1 %)
    assert "spent 30,032.50" in report.stop_detail and "max-notional" in report.stop_detail
    refused = [c for c in report.children if c.state is OrderState.FAILED]
    assert (
        len(refused) == 1 and refused[0].venue == "b" and refused[0].client_id not in b.posted_ids
    )
    assert journal.parent(report.parent_id).state == "stopped"
    kinds = [k for _, cid, k, _ in journal.events(report.parent_id) if cid == refused[0].client_id]
    assert kinds == ["not_sent"]


def test_cap_holds_in_resume(pair, tmp_path):
    a, b = pair
    # A takes its order but every answer is lost (POST hangs, lookups fail): fate unknown
    a.fail("/api/v3/order", "accept_then_hang")
    a.fail("/api/v3/order", "500", times=6)  # two rounds of three lookups
    b.fail("/api/v3/order", "insufficient_balance")
    journal = Journal(tmp_path / "j")
    policy = {"max_notional": 90_100.0, "lookup_retries": 2, "backoff_s": 0.01}
    first = run(make_executor(pair, journal, **policy), "execute", "BTC/USDT", "buy", 1.5)
    assert first.stop_reason is StopReason.UNKNOWN_FATE  # the first quote, 90,092.50, fit
    assert journal.parent(first.parent_id).state == "unknown"
    with b._lock:  # meanwhile B's cheap level is gone
        b.asks[:] = [[60400.0, 4.0]]
    # resume: A's 1.0 is found filled (60,060 spent); B's 0.5 now costs 30,230.20
    resumed = run(make_executor(pair, journal, **policy), "resume", first.parent_id)
    assert resumed.stop_reason is StopReason.RISK_LIMIT, resumed.stop_detail
    assert "spent 60,060.00" in resumed.stop_detail
    assert spent_on_servers(pair) <= 90_100.0
    assert resumed.filled == pytest.approx(1.0)
    assert len(b.posted_ids) == 1  # the refused remainder never reached B


@pytest.mark.parametrize("pair", [{"commission": "base"}], indirect=True)
def test_base_asset_commission_on_buys_adds_up(pair, tmp_path):
    start = [dict(ex.balances) for ex in pair]
    report = run(make_executor(pair, Journal(tmp_path / "j")), "execute", "BTC/USDT", "buy", 1.4)
    assert report.complete
    got_btc = sum(ex.balances["BTC"] - s["BTC"] for ex, s in zip(pair, start, strict=True))
    paid_usdt = sum(s["USDT"] - ex.balances["USDT"] for ex, s in zip(pair, start, strict=True))
    # Binance takes a buy's commission in BTC: 0.1 % of what was bought
    assert report.fees_by_asset == pytest.approx({"BTC": 1.4 * FEE})
    assert report.net_base == pytest.approx(got_btc) == pytest.approx(1.4 * (1 - FEE))
    assert -report.net_quote == pytest.approx(paid_usdt)
    # valued in quote the totals match the quote's model: notional x (1 + fee)
    assert report.total_cost == pytest.approx(paid_usdt * (1 + FEE))
    stored = Journal(tmp_path / "j").children(report.parent_id)
    assert sum(c.fees.get("BTC", 0.0) for c in stored) == pytest.approx(1.4 * FEE)


@pytest.mark.parametrize("pair", [{"commission": "bnb", "bnb_price": 600.0}], indirect=True)
def test_third_asset_commission_reported_and_valued_when_priced(pair, tmp_path):
    for ex in pair:
        ex.balances["BNB"] = 100.0
    unpriced = run(make_executor(pair, Journal(tmp_path / "j")), "execute", "BTC/USDT", "buy", 0.5)
    notional = unpriced.total_cost
    assert unpriced.fees_by_asset == pytest.approx({"BNB": notional * FEE / 600.0})
    assert unpriced.unvalued_fees == unpriced.fees_by_asset and unpriced.total_fees == 0.0
    assert any("BNB" in w and "not valued" in w for w in unpriced.warnings)
    assert unpriced.net_base == pytest.approx(0.5)
    priced = run(
        make_executor(pair, Journal(tmp_path / "k"), fee_prices={"BNB": 600.0}),
        "execute",
        "BTC/USDT",
        "buy",
        0.5,
    )
    assert priced.unvalued_fees == {} and priced.total_fees == pytest.approx(
        -priced.net_quote * FEE
    )
    bnb_spent = sum(100.0 - ex.balances["BNB"] for ex in pair)
    assert bnb_spent == pytest.approx(unpriced.fees_by_asset["BNB"] + priced.fees_by_asset["BNB"])


def test_429_backs_off_for_retry_after_and_retries_the_venue(pair, tmp_path):
    a, b = pair
    a.fail("/api/v3/order", "429")  # Retry-After: 1
    journal = Journal(tmp_path / "j")
    t0 = time.monotonic()
    report = run(make_executor(pair, journal), "execute", "BTC/USDT", "buy", 1.5)
    waited = time.monotonic() - t0
    assert report.complete
    a_children = [c for c in report.children if c.venue == "a"]
    assert [c.state for c in a_children] == ["rejected", "filled"]  # retried, not excluded
    assert len(a.posted_ids) == 2 and len(set(a.posted_ids)) == 2
    assert waited >= 1.0  # the venue's Retry-After was honoured
    kinds = [k for _, _, k, _ in journal.events(report.parent_id)]
    assert "retry_scheduled" in kinds
    # it cost nothing: A's cheap level was still taken
    assert b.orders and all(o["price"] < 60400 for o in b.orders.values())


def test_retries_are_bounded(pair, tmp_path):
    a, _ = pair
    a.fail("POST /api/v3/order", "500", times=10)  # never placed; lookups say so
    report = run(
        make_executor(pair, Journal(tmp_path / "j"), max_retries=1, backoff_s=0.01),
        "execute",
        "BTC/USDT",
        "buy",
        1.5,
    )
    # one retry on A, then A is excluded and B fills the rest from its deeper level
    assert len(a.posted_ids) == 2
    assert report.complete and report.filled == pytest.approx(1.5)


def test_permanent_reject_excludes_the_venue(pair, tmp_path):
    a, _ = pair
    a.fail("/api/v3/order", "filter_failure")
    report = run(make_executor(pair, Journal(tmp_path / "j")), "execute", "BTC/USDT", "buy", 1.5)
    assert report.complete and len(a.posted_ids) == 1  # never asked again


def test_lookup_retried_on_a_transient_fault(pair, tmp_path):
    a, _ = pair
    a.fail("/api/v3/order", "accept_then_hang")
    a.fail("/api/v3/order", "500")  # the first lookup fails; the second finds the fill
    journal = Journal(tmp_path / "j")
    report = run(make_executor(pair, journal, backoff_s=0.01), "execute", "BTC/USDT", "buy", 1.5)
    assert report.complete and len(a.posted_ids) == 1
    first_a = next(c for c in report.children if c.venue == "a")
    events = [k for _, cid, k, _ in journal.events(report.parent_id) if cid == first_a.client_id]
    assert events[:4] == ["intent", "unknown", "lookup_failed", "resolved"]
    assert first_a.state is OrderState.FILLED


def test_continue_routes_a_stopped_parents_remainder_as_a_linked_parent(pair, tmp_path):
    a, b = pair
    b.fail("/api/v3/order", "insufficient_balance")
    journal = Journal(tmp_path / "j")
    first = run(make_executor(pair, journal, max_rounds=1), "execute", "BTC/USDT", "buy", 1.5)
    assert first.stop_reason is StopReason.MAX_ROUNDS and first.filled == pytest.approx(1.0)
    assert journal.parent(first.parent_id).state == "stopped"
    cap = first.total_cost + 0.5 * 60005 * (1 + FEE) + 1.0
    second = run(make_executor(pair, journal, max_notional=cap), "continue_parent", first.parent_id)
    assert second.complete and second.continues == first.parent_id
    assert second.requested == pytest.approx(0.5)
    assert first.filled + second.filled == pytest.approx(
        sum(o["executedQty"] for ex in pair for o in ex.orders.values())
    )
    assert journal.parent(second.parent_id).request["continues"] == first.parent_id
    assert any(k == "parent_continued" for _, _, k, _ in journal.events(first.parent_id))
    assert journal.parent(first.parent_id).state == "continued"
    with pytest.raises(InvalidInputError, match="continued already"):
        run(make_executor(pair, journal), "continue_parent", first.parent_id)
    posted = a.posted_ids + b.posted_ids
    assert len(posted) == len(set(posted))
    # a filled parent cannot be continued
    with pytest.raises(InvalidInputError, match="only a stopped parent"):
        run(make_executor(pair, journal), "continue_parent", second.parent_id)


def test_continue_counts_what_the_stopped_parent_spent(pair, tmp_path):
    from liquidroute.errors import RiskLimitError

    _, b = pair
    b.fail("/api/v3/order", "insufficient_balance")
    journal = Journal(tmp_path / "j")
    first = run(make_executor(pair, journal, max_rounds=1), "execute", "BTC/USDT", "buy", 1.5)
    cap = first.total_cost + 1000.0  # room for 1,000 more: not B's 30,032.50
    with pytest.raises(RiskLimitError, match="already spent"):
        run(make_executor(pair, journal, max_notional=cap), "continue_parent", first.parent_id)
    assert len(b.posted_ids) == 1


@pytest.mark.parametrize("pair", [{"commission": "base"}], indirect=True)
def test_fees_of_a_fill_found_by_lookup_come_from_its_trades(pair, tmp_path):
    a, _ = pair
    a.fail("POST /api/v3/order", "accept_then_hang")  # A's fill is known only by lookup
    start = [dict(ex.balances) for ex in pair]
    journal = Journal(tmp_path / "j")
    report = run(make_executor(pair, journal), "execute", "BTC/USDT", "buy", 1.5)
    assert report.complete
    lost = next(c for c in report.children if c.venue == "a")
    kinds = [k for _, cid, k, _ in journal.events(report.parent_id) if cid == lost.client_id]
    assert "unknown" in kinds and "resolved" in kinds
    assert lost.fees == pytest.approx({"BTC": 1.0 * FEE})  # from myTrades, not a guess
    got_btc = sum(ex.balances["BTC"] - s["BTC"] for ex, s in zip(pair, start, strict=True))
    assert report.net_base == pytest.approx(got_btc)
    assert a.count("/api/v3/myTrades") == 1
