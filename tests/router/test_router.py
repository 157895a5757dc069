"""Router: concurrent gathering, failure handling, guard, fee overrides, sync wrapper."""

from __future__ import annotations

import asyncio

import pytest

from liquidroute import DepthSnapshot, LadderCache, Market, RouteOptions, Router
from liquidroute.errors import DataError, InvalidInputError, VenueUnavailableError


class BookVenue:
    """A real Venue implementation serving fixed books (optionally slow or failing)."""

    def __init__(self, name, mid, *, live=True, delay=0.0, error=None, fee=0.001, ts=None):
        self.name, self.live = name, live
        self._mid, self._delay, self._error, self._fee, self._ts = mid, delay, error, fee, ts
        self.closed = 0

    async def snapshot(self, symbol, depth=None):
        await asyncio.sleep(self._delay)
        if self._error:
            raise self._error
        ts = self._ts if self._ts is not None else asyncio.get_running_loop().time()
        m = self._mid
        return DepthSnapshot(
            self.name, symbol, [[m - 1, 1], [m - 2, 5]], [[m + 1, 1], [m + 2, 5]], ts
        )

    async def market(self, symbol):
        return Market(self.name, symbol, self._fee)

    async def close(self):
        self.closed += 1


def now_ms():
    import time

    return time.time() * 1e3


def test_quote_sync_routes_and_closes():
    venues = [BookVenue(n, 60_000 + i, ts=now_ms()) for i, n in enumerate("abc")]
    q = Router(venues, source="test").quote_sync("BTC/USDT", "buy", 2.5)
    assert q.filled == pytest.approx(2.5) and q.source == "test"
    assert all(v.closed == 1 for v in venues)


def test_failed_live_venue_is_dropped_with_reason():
    venues = [
        BookVenue("a", 60_000, ts=now_ms()),
        BookVenue("b", 60_001, ts=now_ms()),
        BookVenue("down", 60_000, error=VenueUnavailableError("down", "HTTP 503")),
    ]
    q = Router(venues).quote_sync("BTC/USDT", "buy", 1)
    assert "down" in q.excluded and "503" in q.excluded["down"]
    assert set(q.venues) <= {"a", "b"}


def test_slow_live_venue_times_out_and_is_dropped():
    venues = [BookVenue("a", 60_000, ts=now_ms()), BookVenue("slow", 60_000, delay=5)]
    q = Router(venues, timeout_s=0.2, guard=False).quote_sync("BTC/USDT", "buy", 1)
    assert "slow" in q.excluded and "0.2 s" in q.excluded["slow"]


def test_all_venues_failing_raises_the_venue_error():
    venues = [BookVenue("a", 1, error=VenueUnavailableError("a", "refused"))]
    with pytest.raises(VenueUnavailableError, match="a: refused"):
        Router(venues).quote_sync("BTC/USDT", "buy", 1)


def test_recorded_venue_failure_is_an_error_not_a_drop():
    venues = [
        BookVenue("a", 60_000, live=False, ts=0),
        BookVenue("b", 60_000, live=False, error=DataError("bad file")),
    ]
    with pytest.raises(DataError, match="bad file"):
        Router(venues).quote_sync("BTC/USDT", "buy", 1)


def test_guard_drops_stale_and_outliers_and_can_be_turned_off():
    venues = [
        BookVenue("a", 60_000, ts=now_ms()),
        BookVenue("b", 60_002, ts=now_ms()),
        BookVenue("old", 60_001, ts=now_ms() - 60_000),
        BookVenue("far", 63_000, ts=now_ms()),
    ]
    q = Router(venues).quote_sync("BTC/USDT", "buy", 1)
    assert set(q.excluded) == {"old", "far"}
    off = Router(venues, guard=False).quote_sync("BTC/USDT", "buy", 1)
    assert off.excluded == {}


def test_everything_excluded_by_guard_is_a_data_error():
    venues = [BookVenue("a", 60_000, ts=now_ms()), BookVenue("b", 66_000, ts=now_ms())]
    with pytest.raises(DataError, match="every venue was left out"):
        Router(venues).quote_sync("BTC/USDT", "buy", 1)


def test_fee_override_changes_the_route():
    venues = [BookVenue("a", 60_000, ts=now_ms()), BookVenue("b", 60_000, ts=now_ms())]
    q = Router(venues).quote_sync("BTC/USDT", "buy", 1, fees={"a": 0.01})
    assert q.venues == ("b",)
    with pytest.raises(InvalidInputError, match="unknown venue"):
        Router(venues).quote_sync("BTC/USDT", "buy", 1, fees={"zz": 0.01})
    with pytest.raises(InvalidInputError, match="caps"):
        Router(venues).quote_sync("BTC/USDT", "buy", 1, caps={"zz": 1})


def test_router_needs_distinct_venues():
    with pytest.raises(InvalidInputError):
        Router([])
    with pytest.raises(InvalidInputError, match="distinct"):
        Router([BookVenue("a", 1), BookVenue("a", 2)])


class FixedVenue(BookVenue):
    """A recorded-style venue: the same snapshot object on every fetch."""

    def __init__(self, name, mid, **kwargs):
        super().__init__(name, mid, live=False, ts=0, **kwargs)
        self._snap = None

    async def snapshot(self, symbol, depth=None):
        if self._snap is None:
            self._snap = await super().snapshot(symbol, depth)
        return self._snap


def test_quote_takes_an_options_object_and_keywords_override_it():
    venues = [BookVenue(n, 60_000 + i, ts=now_ms()) for i, n in enumerate("abc")]
    opts = RouteOptions(caps={"a": 0.1}, baselines=False)
    q = Router(venues).quote_sync("BTC/USDT", "buy", 2, options=opts)
    assert q.baselines == {} and {leg.venue: leg.amount for leg in q.legs}["a"] <= 0.1 + 1e-12
    same = Router(venues).quote_sync("BTC/USDT", "buy", 2, caps={"a": 0.1}, baselines=False)
    assert same.legs == q.legs
    wider = Router(venues).quote_sync("BTC/USDT", "buy", 2, options=opts, caps={"a": 0.5})
    assert {leg.venue: leg.amount for leg in wider.legs}["a"] == pytest.approx(0.5)
    assert wider.baselines == {}
    with pytest.raises(InvalidInputError, match="balances name venue"):
        Router(venues).quote_sync("BTC/USDT", "buy", 1, options=RouteOptions(balances={"z": 1}))


def test_options_of_a_venue_left_out_are_dropped():
    venues = [
        BookVenue("a", 60_000, ts=now_ms()),
        BookVenue("b", 60_001, ts=now_ms()),
        BookVenue("down", 60_000, error=VenueUnavailableError("down", "HTTP 503")),
    ]
    opts = RouteOptions(caps={"down": 1.0}, fees={"down": 0.0}, fixed_costs={"down": 1.0})
    q = Router(venues).quote_sync("BTC/USDT", "buy", 1, options=opts)
    assert "down" in q.excluded and set(q.venues) <= {"a", "b"}


def test_router_cache_reuses_the_ladder_of_unchanged_recorded_books():
    cache = LadderCache()
    router = Router([FixedVenue("a", 60_000), FixedVenue("b", 60_001)], cache=cache)

    async def two_quotes():
        first = await router.quote("BTC/USDT", "buy", 1.5, baselines=False)
        second = await router.quote("BTC/USDT", "buy", 1.5, baselines=False)
        return first, second

    first, second = asyncio.run(two_quotes())
    assert (cache.misses, cache.hits) == (1, 1)
    assert second.legs == first.legs and second.total_cost == first.total_cost
    assert Router([FixedVenue("a", 1)]).cache is None  # off by default
