"""The Router's hot path on books kept in memory, against route() on fresh snapshots.

The books are real `LiveVenue`s fed through the real ccxt.pro order book (the diffs go
through ccxt's `store`, our change tracking and the incremental sides), the way the
websocket feed keeps them. The oracle is independent of every cache: the test keeps its
own copy of each book as a dict, builds brand-new `DepthSnapshot`s from it, screens them
with `guard.screen` and routes them with `route()` (no ladder cache). The hot path's
quote must be the oracle's, bit for bit: legs, totals, marginal price, solver, exclusions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt.pro
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liquidroute import DepthSnapshot, Market, Router
from liquidroute.errors import (
    DataError,
    InvalidInputError,
    NoVenueAnsweredError,
    VenueUnavailableError,
)
from liquidroute.router.guard import screen
from liquidroute.router.route import route
from liquidroute.venues.ccxt_venue import CcxtVenue
from liquidroute.venues.live import LiveVenue, MemoryVenue

SYMBOL = "BTC/USDT"
MID = 60_000.0
GRID = 0.5  # price grid: bids at MID - k*GRID, asks at MID + k*GRID (k >= 1), never crossed


class Fed:
    """One LiveVenue whose book the test drives through a ccxt.pro order book."""

    def __init__(self, name: str, bids: dict[float, float], asks: dict[float, float], market):
        client = ccxt.pro.binance()
        self.venue = LiveVenue(CcxtVenue("binance", exchange=client, name=name), [SYMBOL])
        self.venue._markets[SYMBOL] = market
        self.venue._started = True  # no feed task: the test is the feed
        self.feed = self.venue._feed(SYMBOL)
        self.model = {"bids": dict(bids), "asks": dict(asks)}
        self.book = client.order_book({}, None)  # tracked by LiveVenue (_track_changes)
        self.book.reset(
            {"bids": [list(x) for x in bids.items()], "asks": [list(x) for x in asks.items()]}
        )
        self.feed.accept(self.book)

    def update(self, side: str, price: float, size: float) -> None:
        self.book[side].store(price, size)
        if size > 0:
            self.model[side][price] = size
        else:
            self.model[side].pop(price, None)
        self.feed.accept(self.book)

    def fresh(self) -> DepthSnapshot:
        """A new snapshot from the test's own copy of the book."""
        return self.fresh_at(None)

    def fresh_at(self, timestamp: float | None) -> DepthSnapshot:
        """`fresh`, stamped `timestamp` (ms)."""
        bids = sorted(self.model["bids"].items(), key=lambda x: -x[0])
        asks = sorted(self.model["asks"].items())
        return DepthSnapshot(
            self.venue.name,
            SYMBOL,
            np.array(bids or np.empty((0, 2))),
            np.array(asks or np.empty((0, 2))),
            timestamp=timestamp,
        )


def close(feds: list[Fed]) -> None:
    async def go() -> None:
        for f in feds:
            await f.venue.venue.close()

    asyncio.run(go())


def key(quote: Any) -> tuple[Any, ...]:
    """Everything a quote says about the route (not its timing)."""
    legs = tuple(
        (
            leg.venue,
            leg.side,
            leg.amount,
            leg.avg_price,
            leg.worst_price,
            leg.fee,
            leg.cost,
            leg.share,
            leg.levels,
        )
        for leg in quote.legs
    )
    return (
        legs,
        quote.filled,
        quote.unfilled,
        quote.total_cost,
        quote.total_fees,
        quote.avg_price,
        quote.marginal_price,
        quote.mid,
        quote.slippage_bps,
        quote.solver,
        quote.baselines,
        tuple(sorted(quote.excluded)),
        quote.warnings,
        quote.fixed_costs,
    )


def oracle(
    feds: list[Fed],
    markets: dict[str, Market],
    side: str,
    amount: float,
    guard: bool,
    **options: Any,
):
    snaps = [f.fresh() for f in feds]
    excluded: dict[str, str] = {}
    notes: list[str] = []
    if guard:
        screened = screen(
            snaps, now_ms=time.time() * 1e3, live=[f.venue.name for f in feds], max_age_ms=None
        )
        snaps, excluded, notes = screened.kept, screened.excluded, screened.notes
        if not snaps:
            raise DataError("every venue was left out by the guard")
    options = dict(options)
    fees = options.pop("fees", None) or {}
    if fees:  # the router applies fee overrides to the markets
        markets = {
            v: Market(
                m.venue,
                m.symbol,
                fees.get(v, m.taker_fee),
                amount_step=m.amount_step,
                min_amount=m.min_amount,
                min_notional=m.min_notional,
                price_tick=m.price_tick,
            )
            for v, m in markets.items()
        }
    kept = {s.venue for s in snaps}
    for name in ("caps", "balances"):
        if name in options:
            options[name] = {v: x for v, x in options[name].items() if v in kept}
    return route(
        snaps,
        side,
        amount,
        markets={v: m for v, m in markets.items() if v in kept},
        excluded=excluded,
        warnings=notes,
        **options,
    )


level = st.tuples(st.integers(1, 60), st.sampled_from([0.1, 0.25, 0.5, 1.0, 1.5, 3.0]))
venue_book = st.tuples(
    st.dictionaries(
        st.integers(1, 60), st.sampled_from([0.1, 0.5, 1.0, 2.0]), min_size=1, max_size=30
    ),
    st.dictionaries(
        st.integers(1, 60), st.sampled_from([0.1, 0.5, 1.0, 2.0]), min_size=1, max_size=30
    ),
    st.sampled_from([0.0, 0.0005, 0.001]),
    st.booleans(),  # exchange rules (lot, minimums): the rules path
)
update = st.tuples(
    st.integers(0, 3),  # venue (mod n)
    st.sampled_from(["bids", "asks"]),
    st.integers(1, 60),
    st.sampled_from([0.0, 0.0, 0.2, 0.7, 1.0, 4.0]),  # 0 deletes the level
)
order = st.tuples(
    st.sampled_from(["buy", "sell"]),
    st.sampled_from([0.05, 0.3, 1.0, 2.5, 7.0, 40.0, 500.0]),
    st.sampled_from(["base", "quote", "caps", "fees"]),
)


def market(name: str, fee: float, rules: bool) -> Market:
    if rules:
        return Market(
            name, SYMBOL, fee, amount_step=0.001, min_amount=0.01, min_notional=10.0, price_tick=0.5
        )
    return Market(name, SYMBOL, fee)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    books=st.lists(venue_book, min_size=2, max_size=4),
    steps=st.lists(
        st.tuples(st.lists(update, max_size=4), order, st.booleans()), min_size=1, max_size=12
    ),
    guard=st.sampled_from([True, False]),  # True first: the guard is the default
    shift=st.sampled_from([0.0, 0.00499, 0.0051]),  # venue 0 ~50 bps away: the guard's edge
)
def test_hot_path_equals_route_on_fresh_snapshots_after_random_updates(books, steps, guard, shift):
    feds = []
    markets: dict[str, Market] = {}
    for i, (bids, asks, fee, rules) in enumerate(books):
        name = f"v{i}"
        off = MID * shift if i == 0 else 0.0
        feds.append(
            Fed(
                name,
                {MID + off - k * GRID: s for k, s in bids.items()},
                {MID + off + k * GRID: s for k, s in asks.items()},
                market(name, fee, rules),
            )
        )
        markets[name] = feds[-1].venue._markets[SYMBOL]
    router = Router([f.venue for f in feds], guard=guard, max_age_ms=None)
    assert router.memory and router.cache is not None
    asyncio.run(router.start())
    try:
        for diffs, (side, amount, kind), again in steps:
            for v, book_side, k, size in diffs:
                fed = feds[v % len(feds)]
                off = MID * shift if fed is feds[0] else 0.0
                price = MID + off - k * GRID if book_side == "bids" else MID + off + k * GRID
                if size == 0 and len(fed.model[book_side]) == 1:
                    continue  # keep one level per side: an empty side is another test
                fed.update(book_side, price, size)
            options: dict[str, Any] = {"baselines": not again}
            if kind == "quote":
                options["amount_in"] = "quote"
                amount *= MID / 10
            elif kind == "caps":
                options["caps"] = {feds[-1].venue.name: amount / 3}
            elif kind == "fees":
                options["fees"] = {feds[0].venue.name: 0.002}
            try:
                expected = key(oracle(feds, markets, side, amount, guard, **options))
            except Exception as exc:  # the same error, from both
                with pytest.raises(type(exc)):
                    router.quote_now(SYMBOL, side, amount, **options)
                continue
            assert key(router.quote_now(SYMBOL, side, amount, **options)) == expected
            if again:  # unchanged books: cached ladders, same answer
                assert key(router.quote_now(SYMBOL, side, amount, **options)) == expected
                assert key(asyncio.run(router.quote(SYMBOL, side, amount, **options))) == expected
        for f in feds:  # the cache's books are the test's books, every level
            snap = f.venue.book_now(SYMBOL)[1]
            assert snap.bids.tolist() == f.fresh().bids.tolist()
            assert snap.asks.tolist() == f.fresh().asks.tolist()
            assert f.feed.rebuilds == 1  # every update went through the incremental sides
    finally:
        close(feds)


def two_feds() -> list[Fed]:
    bids = {MID - k * GRID: 1.0 for k in range(1, 21)}
    asks = {MID + k * GRID: 1.0 for k in range(1, 21)}
    return [
        Fed("a", bids, asks, market("a", 0.001, False)),
        Fed("b", bids, asks, market("b", 0.001, True)),
    ]


def test_an_update_on_one_side_keeps_the_other_sides_array_and_its_cached_ladder():
    feds = two_feds()
    router = Router([f.venue for f in feds], max_age_ms=None)
    asyncio.run(router.start())
    try:
        asks = feds[0].venue.book_now(SYMBOL)[1].asks
        router.quote_now(SYMBOL, "buy", 3.0, baselines=False)
        misses = router.cache.misses
        feds[0].update("bids", MID - 3 * GRID, 7.0)  # a bid: the asks did not change
        version, book = feds[0].venue.book_now(SYMBOL)
        assert version == 2 and book.asks is asks and book.bids[2].tolist() == [MID - 1.5, 7.0]
        router.quote_now(SYMBOL, "buy", 3.0, baselines=False)
        assert router.cache.misses == misses  # the buy ladder was not rebuilt
        feds[0].update("asks", MID + GRID, 0.5)
        assert feds[0].venue.book_now(SYMBOL)[1].asks is not asks
        router.quote_now(SYMBOL, "buy", 3.0, baselines=False)
        assert router.cache.misses == misses + 1
    finally:
        close(feds)


def test_the_deviation_check_runs_again_only_when_a_books_top_changes(monkeypatch):
    """It reads each venue's mid only: an update deeper in a book (a new version, the
    same best bid and ask) reuses its answer; a new best ask runs it again, and a top
    that moves a venue's mid past the limit leaves that venue out at once."""
    import liquidroute.router.router as router_module

    feds = two_feds()
    feds.append(
        Fed(
            "c", dict(feds[0].model["bids"]), dict(feds[0].model["asks"]), market("c", 0.001, False)
        )
    )
    calls = []
    real = router_module.outliers
    monkeypatch.setattr(router_module, "outliers", lambda *a, **k: calls.append(1) or real(*a, **k))
    router = Router([f.venue for f in feds], max_age_ms=None, max_deviation_bps=5.0)
    asyncio.run(router.start())
    try:
        for _ in range(3):
            router.quote_now(SYMBOL, "buy", 1.0)
        assert len(calls) == 1
        feds[1].update("asks", MID + 2 * GRID, 3.0)  # below the top: same mids
        router.quote_now(SYMBOL, "buy", 1.0)
        assert len(calls) == 1
        feds[1].update("asks", MID + GRID, 0.0)  # the best ask goes: a new mid
        router.quote_now(SYMBOL, "buy", 1.0)
        assert len(calls) == 2
        feds[2].update("asks", MID + 200 * GRID, 1.0)
        for k in range(1, 21):  # venue c's asks now start 100 above: its mid ~8 bps up
            feds[2].update("asks", MID + k * GRID, 0.0)
        quote = router.quote_now(SYMBOL, "buy", 1.0)
        assert "bps from" in quote.excluded["c"]
        assert len(calls) == 3 and set(quote.excluded) == {"c"}
    finally:
        close(feds)


def test_quote_from_memory_awaits_nothing_and_reports_a_withdrawn_book():
    feds = two_feds()
    router = Router([f.venue for f in feds], max_age_ms=None)
    with pytest.raises(InvalidInputError, match="start"):
        router.quote_now(SYMBOL, "buy", 1.0)
    asyncio.run(router.start())
    try:
        coro = router.quote(SYMBOL, "buy", 1.0)
        with pytest.raises(StopIteration) as done:  # finished on the first step: no await
            coro.send(None)
        assert done.value.value.filled == pytest.approx(1.0)
        feds[0].feed.withdraw("resyncing", "resyncing after InvalidNonce")
        quote = router.quote_now(SYMBOL, "buy", 1.0)
        assert quote.venues == ("b",) and "resyncing" in quote.excluded["a"]
        feds[1].feed.withdraw("reconnecting", "connection lost")
        with pytest.raises(NoVenueAnsweredError, match="connection lost"):
            router.quote_now(SYMBOL, "buy", 1.0)
        assert isinstance(feds[0].venue, MemoryVenue)
    finally:
        close(feds)


def test_a_stale_book_is_left_out_on_every_quote(monkeypatch):
    """With no update since the last quote its screened books are kept, and they still
    age: past max_age_ms every venue is left out, as a fresh screen would; an update
    makes that venue's book fresh again and the other one stays out."""
    feds = two_feds()
    router = Router([f.venue for f in feds], max_age_ms=1_000)
    asyncio.run(router.start())
    try:
        assert router.quote_now(SYMBOL, "buy", 1.5).excluded == {}
        now = time.time()
        monkeypatch.setattr(time, "time", lambda: now + 5)  # 5 s later, no update came
        with pytest.raises(DataError, match="stale book"):
            router.quote_now(SYMBOL, "buy", 1.5)
        feds[1].update("asks", MID + GRID, 2.0)  # b is fresh again, a is 5 s old
        quote = router.quote_now(SYMBOL, "buy", 1.5)
        assert set(quote.excluded) == {"a"} and "stale book" in quote.excluded["a"]
        assert quote.venues == ("b",)
    finally:
        close(feds)


def test_kept_books_take_in_each_update_as_a_fresh_screen_would(monkeypatch):
    """Between screens the kept books take in the new book of each venue that published
    (`Router._patched`): the quote after every step is route() on brand-new snapshots
    screened at the same clock, with a stale venue first in the router's order (its
    reason names its age at this quote, and the others' new books are routed), then
    the stale venue's own update (routed again), a new best ask (the deviation check
    again) and a withdrawn book."""
    now = time.time()
    clock = [now]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    bids = {MID - k * GRID: 1.0 for k in range(1, 21)}
    asks = {MID + k * GRID: 1.0 for k in range(1, 21)}
    feds = [Fed(n, bids, asks, market(n, 0.001, n == "a")) for n in ("c", "a", "b")]
    markets = {f.venue.name: f.venue._markets[SYMBOL] for f in feds}
    router = Router([f.venue for f in feds], max_age_ms=1_000, max_deviation_bps=50.0)
    asyncio.run(router.start())

    def withdrawn(fed: Fed) -> str:
        with pytest.raises(VenueUnavailableError) as why:
            fed.venue.book_now(SYMBOL)
        return str(why.value)

    def expected() -> Any:
        live = [f for f in feds if f.feed.state == "live"]
        screened = screen(
            [f.fresh_at(f.feed.book.timestamp) for f in live],
            now_ms=clock[0] * 1e3,
            live=[f.venue.name for f in feds],
            max_age_ms=1_000,
        )
        return route(
            screened.kept,
            "buy",
            5.0,
            markets={s.venue: markets[s.venue] for s in screened.kept},
            excluded={
                **{f.venue.name: withdrawn(f) for f in feds if f not in live},
                **screened.excluded,
            },
            warnings=screened.notes,
        )

    def check() -> Any:
        quote, want = router.quote_now(SYMBOL, "buy", 5.0), expected()
        assert key(quote) == key(want) and quote.excluded == want.excluded
        return quote

    try:
        assert check().excluded == {}
        clock[0] = now + 1.5
        feds[1].update("asks", MID + 2 * GRID, 3.0)  # a and b fresh, c 1.5 s old
        feds[2].update("bids", MID - 3 * GRID, 2.0)
        assert "1.5 s old" in check().excluded["c"]
        clock[0] = now + 2.0
        feds[1].update("asks", MID + 3 * GRID, 0.5)  # a again: c is still out, 2.0 s old
        assert "2.0 s old" in check().excluded["c"]
        feds[0].update("asks", MID + 4 * GRID, 2.5)  # c publishes: fresh again
        assert check().excluded == {}
        feds[2].update("asks", MID + 4 * GRID, 0.7)  # below the top: kept books patched
        feds[1].update("asks", MID + 3 * GRID, 1.5)
        check()
        feds[2].update("asks", MID + GRID, 0.0)  # b's best ask goes: a new top
        check()
        feds[1].feed.withdraw("resyncing", "resyncing after InvalidNonce")
        assert "resyncing" in check().excluded["a"]
    finally:
        close(feds)


def test_a_venue_left_out_as_an_outlier_is_reported_stale_once_it_is(monkeypatch):
    """The kept books go stale with any book the age check passed, outliers included:
    an outlying venue whose book goes stale first is then reported stale, as a fresh
    screen reports it, while the other books are still kept fresh."""
    now = time.time()
    clock = [now]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    asks = {MID + 200 * GRID + k * GRID: 1.0 for k in range(1, 21)}  # mid ~8 bps up
    bids = {MID - k * GRID: 1.0 for k in range(1, 21)}
    outlier = Fed("c", bids, asks, market("c", 0.001, False))  # its book: at `now`
    clock[0] = now + 0.6
    feds = [*two_feds(), outlier]  # a and b: 0.6 s later
    router = Router([f.venue for f in feds], max_age_ms=1_000, max_deviation_bps=5.0)
    asyncio.run(router.start())
    try:
        assert "bps from" in router.quote_now(SYMBOL, "buy", 1.0).excluded["c"]
        clock[0] = now + 1.2  # c is 1.2 s old, a and b 0.6 s
        quote = router.quote_now(SYMBOL, "buy", 1.0)
        assert set(quote.excluded) == {"c"} and "stale book" in quote.excluded["c"]
    finally:
        close(feds)


def test_books_kept_between_quotes_follow_the_guard_settings_and_are_the_routers_own():
    """The kept books answer only for the guard settings they were screened with (a
    tighter deviation limit leaves a venue out at once, no update needed), and what
    `books_now` hands a caller is a copy: changing it changes no later quote."""
    feds = two_feds()
    asks = {MID + 200 * GRID + k * GRID: 1.0 for k in range(1, 21)}  # mid ~8 bps up
    feds.append(Fed("c", dict(feds[0].model["bids"]), asks, market("c", 0.001, False)))
    router = Router([f.venue for f in feds], max_age_ms=None, max_deviation_bps=50.0)
    asyncio.run(router.start())
    try:
        assert router.quote_now(SYMBOL, "buy", 1.0).excluded == {}
        books = router.books_now(SYMBOL)
        books.snapshots.clear()
        books.markets.clear()
        books.excluded["a"] = "changed by the caller"
        quote = router.quote_now(SYMBOL, "buy", 1.0)
        assert quote.excluded == {} and quote.filled == pytest.approx(1.0)
        router.max_deviation_bps = 5.0
        quote = router.quote_now(SYMBOL, "buy", 1.0)
        assert set(quote.excluded) == {"c"} and "bps from" in quote.excluded["c"]
    finally:
        close(feds)


def test_a_venue_added_to_the_router_is_routed_and_followed_at_once():
    """The kept books are those of the venues they were screened from: a venue appended
    to `router.venues` in place is in the next quote, and its book changes drop the kept
    books like the others' do."""
    feds = two_feds()
    router = Router([f.venue for f in feds], max_age_ms=None)
    asyncio.run(router.start())
    cheap = {MID + GRID / 2: 1.0, MID + GRID: 1.0}  # cheaper than a's and b's best ask
    added = Fed("c", dict(feds[0].model["bids"]), cheap, market("c", 0.001, False))
    try:
        assert "c" not in router.quote_now(SYMBOL, "buy", 1.0).venues
        router.venues.append(added.venue)
        assert router.quote_now(SYMBOL, "buy", 1.0).venues == ("c",)
        added.update("asks", MID + GRID / 2, 0.0)  # c's cheap level goes
        quote = router.quote_now(SYMBOL, "buy", 1.0)
        assert quote.legs and {leg.worst_price for leg in quote.legs} == {MID + GRID}
    finally:
        close([*feds, added])


def test_non_memory_router_refuses_quote_now():
    class Plain:
        name, live = "x", True

        async def snapshot(self, symbol, depth=None):
            raise VenueUnavailableError("x", "down")

        async def market(self, symbol):
            return Market("x", symbol, 0.001)

        async def close(self):
            return None

    router = Router([Plain()])
    assert not router.memory and router.cache is None
    asyncio.run(router.start())
    with pytest.raises(InvalidInputError, match="memory"):
        router.quote_now(SYMBOL, "buy", 1.0)


def test_a_dry_run_on_a_started_memory_router_fills_against_simulated_copies(tmp_path):
    from liquidroute.router.executor import execute
    from liquidroute.router.journal import Journal

    feds = two_feds()
    router = Router([f.venue for f in feds], max_age_ms=None)
    asyncio.run(router.start())
    try:
        report = asyncio.run(
            execute(router, SYMBOL, "buy", 3.0, journal=Journal(tmp_path / "j.sqlite3"))
        )
        assert report.complete and not report.live
        assert report.filled == pytest.approx(3.0)
        # the live books are untouched by the simulated fills; the router still routes them
        assert feds[0].venue.book_now(SYMBOL)[0] == 1
        assert router.memory and router.quote_now(SYMBOL, "buy", 3.0).filled == pytest.approx(3.0)
    finally:
        close(feds)
