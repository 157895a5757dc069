"""Recorded books: the replay matches an independent reconstruction; the format's rules
hold; bad files get one clear error."""

from __future__ import annotations

import asyncio
import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from liquidroute.book import BookReplay, book_at
from liquidroute.errors import DataFileError
from liquidroute.tardis import read_incremental_l2, unified_symbol
from liquidroute.venues.recorded import RecordedVenue
from tests.conftest import BOOK_FILES

HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"


def independent_book(path: Path, at_us: int) -> tuple[dict[float, float], dict[float, float]]:
    """Plain csv + dict reconstruction written from the format's description."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    seen_snapshot = False
    prev_snapshot_ts = None
    with gzip.open(path, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            ts = int(row["local_timestamp"])
            if ts > at_us:
                break
            snap = row["is_snapshot"] == "true"
            if snap and prev_snapshot_ts != ts:
                bids.clear()
                asks.clear()
            prev_snapshot_ts = ts if snap else None
            seen_snapshot = seen_snapshot or snap
            if not seen_snapshot:
                continue
            side = bids if row["side"] == "bid" else asks
            price, amount = float(row["price"]), float(row["amount"])
            if amount == 0:
                side.pop(price, None)
            else:
                side[price] = amount
    return bids, asks


@pytest.mark.parametrize("name", sorted(BOOK_FILES))
def test_replay_matches_independent_reconstruction(name):
    path = BOOK_FILES[name]
    updates = read_incremental_l2(path)
    stamps = np.unique(updates.local_timestamp)
    replay = BookReplay(updates)
    for t in stamps[np.linspace(0, len(stamps) - 1, 12).astype(int)]:
        replay.advance_to(int(t))
        bids, asks = independent_book(path, int(t))
        snap = replay.snapshot()
        top_bids = sorted(bids.items(), reverse=True)
        top_asks = sorted(asks.items())
        if top_bids[0][0] < top_asks[0][0]:  # not crossed: identical books
            assert snap.bids.tolist()[:10] == [list(x) for x in top_bids[:10]]
            assert snap.asks.tolist()[:10] == [list(x) for x in top_asks[:10]]
            assert len(snap.bids) == len(bids) and len(snap.asks) == len(asks)
        else:  # the feed missed a deletion: stale crossed levels are dropped, nothing else
            assert snap.best_bid < snap.best_ask
            assert set(map(tuple, snap.asks.tolist())) <= set(top_asks)
            assert set(map(tuple, snap.bids.tolist())) <= set(top_bids)


def test_symbol_and_venue_mapping():
    assert unified_symbol("BTCUSDT") == "BTC/USDT"
    assert unified_symbol("BTC-USDT") == "BTC/USDT"
    assert unified_symbol("ETHFDUSD") == "ETH/FDUSD"
    assert unified_symbol("BTCUSDT", derivative=True) == "BTC/USDT:USDT"
    venues = {n: read_incremental_l2(p) for n, p in BOOK_FILES.items()}
    assert venues["okex"].venue == "okx" and venues["okex"].symbol == "BTC/USDT"
    assert venues["bybit-spot"].venue == "bybit"
    assert venues["bybit"].symbol == "BTC/USDT:USDT"


def test_recorded_venue_at_time_and_fee():
    path = BOOK_FILES["okex"]
    updates = read_incremental_l2(path)
    at_ms = float(updates.local_timestamp[len(updates) // 2]) / 1e3
    venue = RecordedVenue(path, at=at_ms)
    snap = asyncio.run(venue.snapshot("BTC/USDT"))
    bids, asks = independent_book(path, int(at_ms * 1e3))
    assert snap.best_bid == max(bids) and snap.best_ask == min(asks)
    assert snap.local_timestamp <= at_ms
    market = asyncio.run(venue.market("BTC/USDT"))
    assert market.venue == "okx" and market.taker_fee == 0.0015  # ccxt's static table
    with pytest.raises(DataFileError, match=r"holds BTC/USDT \(BTC-USDT on okex\), not ETH/USDT"):
        asyncio.run(venue.snapshot("ETH/USDT"))


def write(tmp_path: Path, rows: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + rows)
    return path


def test_snapshot_after_updates_replaces_the_book_and_zero_deletes(tmp_path):
    rows = (
        "okex,BTC-USDT,1,10,false,bid,99,5\n"  # before any snapshot: skipped
        "okex,BTC-USDT,1,20,true,bid,100,1\n"
        "okex,BTC-USDT,1,20,true,ask,101,1\n"
        "okex,BTC-USDT,2,30,false,bid,100,0\n"  # deletes 100
        "okex,BTC-USDT,2,30,false,bid,99.5,2\n"
        "okex,BTC-USDT,3,40,true,bid,98,7\n"  # a new snapshot: the book is replaced
        "okex,BTC-USDT,3,40,true,ask,102,3\n"
    )
    updates = read_incremental_l2(write(tmp_path, rows))
    mid = book_at(updates, at_ms=0.035)
    assert mid.bids.tolist() == [[99.5, 2.0]] and mid.asks.tolist() == [[101.0, 1.0]]
    end = book_at(updates)
    assert end.bids.tolist() == [[98.0, 7.0]] and end.asks.tolist() == [[102.0, 3.0]]
    with pytest.raises(DataFileError, match="no book before"):
        book_at(updates, at_ms=0.015)


def test_a_missed_deletion_is_repaired_not_routed(tmp_path):
    rows = (
        "okex,BTC-USDT,1,20,true,bid,100,1\n"
        "okex,BTC-USDT,1,20,true,ask,101,1\n"
        "okex,BTC-USDT,2,30,false,ask,99,1\n"  # asks moved below a bid nobody deleted
    )
    replay = BookReplay(read_incremental_l2(write(tmp_path, rows)))
    replay.advance_rows(3)
    snap = replay.snapshot()
    assert snap.bids.tolist() == [] and snap.best_ask == 99.0
    assert replay.repaired == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "no such file"),
        ("", "empty"),
        ("a,b\n1,2\n", "missing columns"),
        (HEADER, "no rows"),
        (HEADER + "okex,BTC-USDT,1,2,true,bid,abc,1\n", "line 2: not a number"),
        (HEADER + "okex,BTC-USDT,1,2,true,bid,1\n", "line 2: 7 fields"),
        (
            HEADER + "okex,BTC-USDT,1,2,true,bid,100,1\nokex,ETH-USDT,1,2,true,ask,101,1\n",
            "several exchanges/symbols",
        ),
        (
            HEADER + "okex,BTC-USDT,1,5,true,bid,100,1\nokex,BTC-USDT,1,2,true,ask,101,1\n",
            "line 3: local_timestamp goes backwards",
        ),
        (HEADER + "okex,BTC-USDT,1,5,true,mid,100,1\n", "side must be"),
        (HEADER + "okex,BTC-USDT,1,5,true,bid,-100,1\n", "price must be > 0"),
        (HEADER + "nowhere,BTC-USDT,1,5,true,bid,100,1\n", "unknown tardis exchange"),
        (HEADER + "okex,BTC-USDT,1,5,false,bid,100,1\n", "no snapshot rows"),
    ],
)
def test_bad_files(tmp_path, content, words):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataFileError, match=words):
        book_at(read_incremental_l2(path))


def test_truncated_gzip(tmp_path):
    data = BOOK_FILES["okex"].read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match=r"cut\.csv\.gz"):
        read_incremental_l2(path)
