"""The streaming replay equals the in-memory replay it replaced, and route() + walk_book."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liquidroute.backtest import replay as rp
from tests.backtest.make_reference import CASES, STRATEGIES
from tests.conftest import BOOK_FILES

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "backtest_reference.parquet"


def run_case(case: str, **kw) -> pd.DataFrame:
    names, align, side, size, every, lat, depth = CASES[case]
    data = rp.load([BOOK_FILES[n] for n in names], align=align, **kw)
    parents = rp.schedule(data, every, side, size)
    rows = rp.run(data, parents, strategies=STRATEGIES, latency_ms=lat, depth=depth)
    return pd.DataFrame(rows)


#: basis points are a difference of two prices times 1e4 (slippage: avg vs mid; shortfall:
#: avg vs planned avg, often equal): a 1e-15 relative change of a ~1e5 price moves them by
#: ~1e-11 bp, which no relative tolerance can bound near 0. They are compared absolutely.
BPS_ATOL = 1e-9


def assert_rows_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    for col in want.columns:
        a, b = got[col].to_numpy(), want[col].to_numpy()
        if col.endswith("_bps"):
            np.testing.assert_allclose(a, b, rtol=0, atol=BPS_ATOL, equal_nan=True, err_msg=col)
        elif want[col].dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, equal_nan=True, err_msg=col)
        else:
            assert (a == b).all(), col


@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_equals_the_in_memory_replay(case):
    ref = pd.read_parquet(REFERENCE)
    want = ref[ref["case"] == case].drop(columns="case").reset_index(drop=True)
    assert len(want) > 0
    assert_rows_equal(run_case(case), want)


@pytest.mark.parametrize("latency_ms", [0.0, 700.0])
def test_optimal_fills_equal_route_and_walk_book_on_the_books_at_fill_time(latency_ms):
    """Independent of the replay: books from `book_at` (a fresh pass per instant), the split
    from route(), the fill from walk_book on the books as of t + latency."""
    from liquidroute import route
    from liquidroute.book import book_at
    from liquidroute.model import DepthSnapshot
    from liquidroute.optimizer.curves import walk_book
    from liquidroute.tardis import TardisFile

    files = [BOOK_FILES["binance"], BOOK_FILES["bybit-spot"], BOOK_FILES["okex"]]
    data = rp.load(files, align="start")
    parents = rp.schedule(data, 1.5, "buy", 7.0)
    rows = pd.DataFrame(rp.run(data, parents, strategies=["optimal"], latency_ms=latency_ms))
    assert len(rows) >= 5

    def books_at(t_us: int) -> list[DepthSnapshot]:
        out = []
        for v in data.venues:
            snap = book_at(TardisFile(v.path), at_ms=(t_us - v.shift_us) / 1e3, depth=200)
            s = v.price_scale
            out.append(
                DepthSnapshot(snap.venue, snap.symbol, snap.bids * [s, 1], snap.asks * [s, 1])
            )
        return out

    for row in rows.itertuples():
        quote = route(books_at(row.t_us), "buy", 7.0, markets=data.markets, baselines=False)
        fill_books = {b.venue: b for b in books_at(row.t_us + int(latency_ms * 1e3))}
        cost = filled = 0.0
        for leg in quote.legs:
            walk = walk_book(fill_books[leg.venue].asks, "buy", leg.amount)
            cost += walk.all_in("buy", data.markets[leg.venue].taker_fee)
            filled += walk.filled
        assert row.venues == ",".join(leg.venue for leg in quote.legs)
        assert row.planned_cost == pytest.approx(quote.total_cost, rel=1e-12)
        assert row.cost == pytest.approx(cost, rel=1e-12)
        assert row.filled == pytest.approx(filled, rel=1e-12)


def test_converted_parquet_carries_the_snapshot_index_and_replays_the_same(tmp_path):
    from benchmarks.gen_books import generate
    from liquidroute.tardis import TardisFile, scan, write_parquet

    csv = tmp_path / "binance_gen.csv.gz"
    generate(csv, 40_000, snapshot_every_s=10, stale=0.05, seed=3)
    out = tmp_path / "binance_gen.parquet"
    assert write_parquet(TardisFile(csv, batch_rows=4096), out) >= 40_000
    parquet = TardisFile(out, batch_rows=4096)
    assert parquet.index is not None  # read from the metadata, no pass over the rows
    assert scan(parquet) == scan(TardisFile(csv))
    assert len(scan(parquet).snapshot_rows) >= 5
    runs = []
    for path in (csv, out):
        data = rp.load([path])
        runs.append(pd.DataFrame(rp.run(data, rp.schedule(data, 0.5, "sell", 4.0), latency_ms=300)))
    pd.testing.assert_frame_equal(runs[0], runs[1])


@pytest.mark.parametrize("one_read", [True, False])
@pytest.mark.parametrize("merged", [True, False])
def test_the_summary_from_the_file_equals_the_summary_of_the_rows(
    tmp_path, monkeypatch, one_read, merged
):
    """`summary_from_file` reads a short run once and a long one a strategy at a time
    (with the best-venue baseline beside it), from the merged file or from the window
    parts; every way must give `report.summary` of all the rows at once."""
    from liquidroute.backtest import report
    from liquidroute.backtest import store as results
    from liquidroute.backtest.store import ResultsStore, summary_from_file

    if not one_read:  # every run is "long": one strategy at a time
        monkeypatch.setattr(results, "SUMMARY_ONE_READ_ROWS", 0)
    data = rp.load([BOOK_FILES["binance"], BOOK_FILES["okex"]], align="start")
    rows = rp.run(data, rp.schedule(data, 3.0, "sell", 4.0), strategies=STRATEGIES)
    want = report.summary(report.frame(rows))
    store = ResultsStore(tmp_path, {"case": "summary"})
    third = len(rows) // 3
    store.write(2, rows[2 * third :])  # parts written out of order, read in window order
    store.write(0, rows[:third])
    store.write(1, rows[third : 2 * third])
    got = summary_from_file(store.finish("", keep_files=False) if merged else store.part_files())
    assert len(want) == len(STRATEGIES)
    pd.testing.assert_frame_equal(got, want)
