"""The backtest's per-order fast paths equal the general code they stand in for.

- `batched.walk` is `walk_book` for many amounts at once (to 1e-14: sequential sums where
  `walk_book` takes a dot), and both match a level-by-level walk written here (the oracle);
- the routed strategies skip `route()` only when no venue rule can bind, and then give
  route()'s split exactly; with a rule that binds they go through route() (lots honoured);
- at zero latency the cursor keeps no fill-clock book, and the rows equal a run whose
  fill clock is read on its own book (latency 1 µs before any row changes the book).
"""

from __future__ import annotations

import numpy as np
import pytest

from liquidroute.backtest import replay as rp
from liquidroute.model import DepthSnapshot, Market
from liquidroute.optimizer import batched
from liquidroute.optimizer.curves import walk_book


def book(rng: np.random.Generator, n: int, side: str) -> np.ndarray:
    steps = rng.uniform(0.01, 0.5, n)
    price = 100 + np.cumsum(steps) if side == "buy" else 100 - np.cumsum(steps)
    return np.column_stack([price, rng.lognormal(0, 1, n)])


def oracle_walk(levels: np.ndarray, amount: float) -> tuple[float, float]:
    left, filled, notional = max(amount, 0.0), 0.0, 0.0
    for price, size in levels:
        take = min(size, left)
        filled, notional, left = filled + take, notional + take * price, left - take
    return filled, notional


@pytest.mark.parametrize("seed", range(30))
def test_the_batched_walk_is_walk_book(seed):
    """`batched.walk` on one venue, for many amounts at once, is `walk_book` (the one book
    walk) to 1e-14, and both match the level-by-level oracle; a prefix cut of the book
    (amounts within the first levels, or around one depth) changes nothing."""
    rng = np.random.default_rng(seed)
    side = "buy" if seed % 2 else "sell"
    levels = book(rng, int(rng.integers(1, 300)), side)
    depth = levels[:, 1].sum()
    cums = np.cumsum(levels[:, 1])
    # inside the book, on level boundaries, beyond it, zero and negative; then amounts all
    # within the first levels, and all around one depth
    for amounts in (
        np.concatenate([rng.uniform(0, depth, 6), cums[:3], [depth, 2 * depth, 0.0, -1.0]]),
        rng.uniform(0, cums[min(1, len(cums) - 1)], 3),
        cums[rng.integers(0, len(cums), 2)] * rng.uniform(0.9, 1.0, 2),
    ):
        books = batched.pack([[(levels[:, 0], levels[:, 1])]])
        filled, notional = batched.walk(books, amounts[None, :, None], np.zeros(1), side)
        for a, f, n in zip(amounts, filled[0], notional[0], strict=True):
            walk = walk_book(levels, side, float(a))
            assert f == pytest.approx(walk.filled, rel=1e-14, abs=1e-300)
            assert n == pytest.approx(walk.notional, rel=1e-14, abs=1e-300)
            of, on = oracle_walk(levels, float(a))
            assert f == pytest.approx(of, rel=1e-12, abs=1e-12)
            assert n == pytest.approx(on, rel=1e-12, abs=1e-9)


def snaps(rng: np.random.Generator, venues: list[str]) -> list[DepthSnapshot]:
    out = []
    for v in venues:
        asks = book(rng, 60, "buy")
        bids = book(rng, 60, "sell") - [0.5, 0]
        out.append(DepthSnapshot(v, "BTC/USDT", bids, asks))
    return out


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("name", ["optimal", "optimal_exact"])
def test_routed_strategies_equal_route(seed, name):
    from liquidroute import route

    rng = np.random.default_rng(100 + seed)
    venues = ["binance", "okx", "bybit"][: 1 + seed % 3]
    books = snaps(rng, venues)
    side = "buy" if seed % 2 else "sell"
    fees = [float(f) for f in rng.uniform(0, 0.002, len(venues))]
    markets = {v: Market(v, "BTC/USDT", f) for v, f in zip(venues, fees, strict=True)}
    amount = float(rng.uniform(0.1, 30))
    splits, found, _ = rp.price_orders([books], [rp.ParentOrder(0, side, amount)], markets, [name])
    quote = route(books, side, amount, markets=markets, baselines=False, rules=None)
    want = np.zeros(len(venues))
    for leg in quote.legs:
        want[venues.index(leg.venue)] = leg.amount
    assert found[0, 0]
    np.testing.assert_array_equal(splits[0, 0], want)


def test_a_lot_that_binds_goes_through_route():
    rng = np.random.default_rng(7)
    books = snaps(rng, ["binance", "okx"])
    markets = {
        "binance": Market("binance", "BTC/USDT", 0.001, amount_step=0.1),
        "okx": Market("okx", "BTC/USDT", 0.0008, amount_step=0.1),
    }
    order = rp.ParentOrder(0, "buy", 3.7)
    splits, found, _ = rp.price_orders([books], [order], markets, ["optimal", "optimal_exact"])
    assert found.all()
    got, exact = splits[0]
    np.testing.assert_allclose(got / 0.1, np.round(got / 0.1), atol=1e-9)  # on the lot
    assert not np.allclose(exact / 0.1, np.round(exact / 0.1), atol=1e-9)  # rules ignored


def test_zero_latency_keeps_no_fill_book(tmp_path, monkeypatch):
    """Repairs happen, yet at zero latency no fill-clock copy of a book is ever made; with
    latency there is one. The rows at 1 µs latency (no row arrives within 1 µs of an order
    here) equal the zero-latency rows: the fill clock reads the same books."""
    from benchmarks.gen_books import generate
    from liquidroute.book import L2Book

    path = tmp_path / "binance_gen.csv.gz"
    generate(path, 30_000, snapshot_every_s=20, stale=0.05, seed=5)
    data = rp.load([path])
    orders = rp.schedule(data, 0.5, "buy", 3.0)
    copies: list[int] = []
    repairs: list[int] = []
    copy, uncross = L2Book.copy, L2Book.uncross

    def counted_copy(self: L2Book) -> L2Book:
        copies.append(1)
        return copy(self)

    def counted_uncross(self: L2Book) -> int:
        repairs.append(uncross(self))
        return repairs[-1]

    monkeypatch.setattr(L2Book, "copy", counted_copy)
    monkeypatch.setattr(L2Book, "uncross", counted_uncross)
    zero = rp.run(data, orders)
    assert sum(repairs) > 0 and not copies
    later = rp.run(data, orders, latency_ms=0.001)
    assert copies
    assert len(zero) == len(later) > 100
    assert zero == later


def oracle_read(bids: dict, asks: dict) -> tuple[list, list]:
    """Repair as the module doc says (the older of a crossed best bid / best ask goes),
    then the levels best first."""
    while bids and asks and max(bids) >= min(asks):
        bb, ba = max(bids), min(asks)
        if bids[bb][1] < asks[ba][1]:
            del bids[bb]
        else:
            del asks[ba]
    return (
        [[p, bids[p][0]] for p in sorted(bids, reverse=True)],
        [[p, asks[p][0]] for p in sorted(asks)],
    )


@pytest.mark.parametrize("seed", range(25))
def test_l2book_runs_equal_rows_applied_one_by_one(seed):
    """Both sides in one sorted array, runs applied at once, reads repairing crossed books:
    the same levels as a dict fed row by row (prices of both sides overlap, so books cross,
    sizes repeat within a run, deletions of absent levels occur)."""
    from liquidroute.book import L2Book

    rng = np.random.default_rng(seed)
    n = 3000
    is_bid = rng.random(n) < 0.5
    price = np.round(100 + rng.integers(-40, 40, n) * 0.5, 2)
    amount = np.where(rng.random(n) < 0.3, 0.0, rng.lognormal(0, 1, n))
    book, bids, asks = L2Book(), {}, {}
    cuts = np.sort(rng.choice(np.arange(1, n), size=60, replace=False))
    for lo, hi in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [n])), strict=True):
        book.apply(is_bid[lo:hi], price[lo:hi], amount[lo:hi], int(lo))
        for r in range(lo, hi):
            side = bids if is_bid[r] else asks
            if amount[r] == 0:
                side.pop(float(price[r]), None)
            else:
                side[float(price[r])] = (float(amount[r]), r)
        book.uncross()
        want_b, want_a = oracle_read(bids, asks)
        got_b, got_a = book.levels(None)
        assert got_b.tolist() == want_b and got_a.tolist() == want_a
        depth = int(rng.integers(1, 10))
        top_b, top_a = book.levels(depth)
        assert top_b.tolist() == want_b[:depth] and top_a.tolist() == want_a[:depth]
    assert book.repaired > 0


def test_the_batched_walk_on_an_empty_side_takes_nothing():
    books = batched.pack([[(np.empty(0), np.empty(0))]])
    filled, notional = batched.walk(books, np.array([[[1.0], [0.0]]]), np.zeros(1), "buy")
    assert filled.tolist() == [[0.0, 0.0]] and notional.tolist() == [[0.0, 0.0]]


def test_with_venue_rules_the_backtest_routes_through_route_on_the_books_of_t():
    """Markets with a lot size: `optimal` goes through route() on DepthSnapshots built
    from the read (prices re-centred with --align start); every split is on the lot and
    equals route() on books rebuilt independently (a fresh `book_at` pass per instant)."""
    from liquidroute import route
    from liquidroute.book import book_at
    from liquidroute.tardis import TardisFile
    from tests.conftest import BOOK_FILES

    files = [BOOK_FILES["binance"], BOOK_FILES["okex"]]
    data = rp.load(files, align="start")
    for name, m in list(data.markets.items()):
        data.markets[name] = Market(name, m.symbol, m.taker_fee, amount_step=0.01)
    rows = rp.run(data, rp.schedule(data, 2.0, "buy", 7.337), strategies=["optimal"])
    assert len(rows) >= 5
    for row in rows:
        books = []
        for v in data.venues:
            snap = book_at(TardisFile(v.path), at_ms=(row["t_us"] - v.shift_us) / 1e3, depth=200)
            s = v.price_scale
            books.append(DepthSnapshot(v.name, snap.symbol, snap.bids * [s, 1], snap.asks * [s, 1]))
        quote = route(books, "buy", 7.337, markets=data.markets, baselines=False)
        assert quote.solver != "exact"  # the rules were applied
        for leg in quote.legs:
            assert abs(leg.amount / 0.01 - round(leg.amount / 0.01)) < 1e-9
        assert row["venues"] == ",".join(leg.venue for leg in quote.legs)
        assert row["planned_cost"] == pytest.approx(quote.total_cost, rel=1e-12)


def test_real_books_and_lots_priced_in_one_batch_equal_route():
    """The real recorded books (Binance 1,000 levels a side, Bybit, OKX) with the venues'
    real lots (1e-5, 1e-6, 1e-8) and minimums, buys and sells mixed in one batch: each
    order's `optimal` split is route()'s, leg for leg, on its venues' lots, and its planned
    cost is route()'s total cost."""
    from liquidroute import route
    from liquidroute.venues.sample import sample_markets, sample_snapshots

    snaps, markets = sample_snapshots(), sample_markets()
    venues = [s.venue for s in snaps]
    orders = [rp.ParentOrder(0, side, amount)
              for amount in (0.003, 0.05, 0.7, 4.0, 25.0) for side in ("buy", "sell")]  # fmt: skip
    splits, found, planned = rp.price_orders([snaps] * len(orders), orders, markets, ["optimal"])
    assert found.all()
    for b, order in enumerate(orders):
        quote = route(snaps, order.side, order.amount, markets=markets, baselines=False)
        want = np.zeros(len(venues))
        for leg in quote.legs:
            want[venues.index(leg.venue)] = leg.amount
            lot = markets[leg.venue].amount_step
            assert lot and abs(leg.amount / lot - round(leg.amount / lot)) < 1e-6
        np.testing.assert_array_equal(splits[b, 0], want)
        assert planned[b, 0] == pytest.approx(quote.total_cost, rel=1e-12)
