"""The guard leaves out stale and outlying books, and says why."""

from __future__ import annotations

from liquidroute import DepthSnapshot
from liquidroute.router.guard import screen


def book(venue: str, mid: float, ts: float = 0.0) -> DepthSnapshot:
    return DepthSnapshot(venue, "BTC/USDT", [[mid - 0.5, 1]], [[mid + 0.5, 1]], ts)


def test_outlier_left_out_against_median_of_all():
    snaps = [book("a", 60_000), book("b", 60_010), book("c", 60_005), book("bad", 61_000)]
    out = screen(snaps, now_ms=0)
    assert [s.venue for s in out.kept] == ["a", "b", "c"]
    assert "bad" in out.excluded and "bps" in out.excluded["bad"]
    assert "median mid of all venues" in out.excluded["bad"]


def test_threshold_is_respected():
    snaps = [book("a", 60_000), book("b", 60_000), book("c", 60_240)]  # 40 bps
    assert screen(snaps, now_ms=0, max_deviation_bps=50).excluded == {}
    assert set(screen(snaps, now_ms=0, max_deviation_bps=30).excluded) == {"c"}
    assert screen(snaps, now_ms=0, max_deviation_bps=None).excluded == {}


def test_two_venues_compare_with_each_other_and_say_so():
    out = screen([book("a", 60_000), book("b", 61_000)], now_ms=0)
    assert set(out.excluded) == {"a", "b"}
    assert "other venue" in out.excluded["a"]
    assert any("only two venues" in n for n in out.notes)
    ok = screen([book("a", 60_000), book("b", 60_010)], now_ms=0)
    assert not ok.excluded


def test_stale_live_books_left_out_recorded_ones_kept():
    now = 1_000_000.0
    snaps = [book("a", 60_000, now - 500), book("b", 60_000, now - 20_000)]
    out = screen(snaps, now_ms=now, live={"a", "b"}, max_age_ms=10_000)
    assert set(out.excluded) == {"b"} and "stale" in out.excluded["b"]
    recorded = screen(snaps, now_ms=now, live=(), max_age_ms=10_000)
    assert recorded.excluded == {}


def test_one_outlier_among_three_does_not_condemn_the_good_books():
    out = screen([book("a", 60_000), book("b", 60_002), book("far", 63_000)], now_ms=0)
    assert set(out.excluded) == {"far"}
