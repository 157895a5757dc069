"""`record` from the stream: the recording replays to the server's books at sampled times.

Recorded against the loopback Binance diff-depth exchange with a sequence gap and a
dropped connection in the middle (each forces a new snapshot block), then read back with
`read_incremental_l2` + `book_at` and through `quote --books --at`.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from liquidroute.backtest.book import book_at
from liquidroute.backtest.data import read_incremental_l2
from liquidroute.backtest.record import level_changes, record
from liquidroute.cli.app import app
from liquidroute.model import DepthSnapshot, Market
from liquidroute.router.route import route
from liquidroute.venues.recorded import static_taker_fee
from tests.loopback.binance_ws import BinanceWsLoopback
from tests.venues.test_live import ASKS, BIDS, SYMBOL, equal_to_server, live, on_server, until


@pytest.fixture
def exchange():
    ex = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()
    yield ex
    ex.stop()


def random_change(rng: random.Random, ex) -> dict[str, list[tuple[float, float]]]:
    """Move, resize, add or delete a few levels, keeping the book uncrossed."""
    bids, asks = ex.book()
    out: dict[str, list[tuple[float, float]]] = {"bids": [], "asks": []}
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.5:
            price = bids[0][0] - 5 * rng.randint(0, 30)
            out["bids"].append((price, 0.0 if rng.random() < 0.3 else rng.randint(1, 90) / 10))
        else:
            price = asks[0][0] + 5 * rng.randint(0, 30)
            out["asks"].append((price, 0.0 if rng.random() < 0.3 else rng.randint(1, 90) / 10))
    return out


def test_recording_replays_to_the_servers_books(exchange, monkeypatch, tmp_path):
    rng = random.Random(7)
    samples: list[tuple[float, list, list]] = []

    async def go():
        venue = live(monkeypatch, exchange)
        stop = asyncio.Event()
        task = asyncio.create_task(
            record([venue], SYMBOL, tmp_path, duration_s=60, interval_s=0.05, stop=stop)
        )
        await until(lambda: venue.status(SYMBOL).state == "live")
        for i in range(40):
            if i == 12:
                exchange.gap()
            if i == 25:
                await on_server(exchange.drop)
                await until(lambda: venue.status(SYMBOL).state != "live")
            await on_server(exchange.update, **random_change(rng, exchange))
            await equal_to_server(venue, exchange)
            samples.append((time.time() * 1e3, *exchange.book()))
            await asyncio.sleep(0.002)
        assert venue.status(SYMBOL).resyncs == 1
        assert venue.status(SYMBOL).reconnects >= 1
        stop.set()
        return await task

    (path,) = asyncio.run(go())
    assert path.name == "binance_incremental_book_L2_BTCUSDT.csv.gz"
    updates = read_incremental_l2(path)
    starts = np.flatnonzero(
        updates.is_snapshot & ~np.concatenate(([False], updates.is_snapshot[:-1]))
    )
    assert len(starts) == 3  # start, the resync after the gap, the reconnect
    assert (~updates.is_snapshot).sum() > 40  # the rest are increments
    for at_ms, bids, asks in samples:
        snap = book_at(updates, at_ms)
        assert snap.bids.tolist() == [list(b) for b in bids]
        assert snap.asks.tolist() == [list(a) for a in asks]

    # the same books through `quote --books --at`, against route() on the server's book
    fee = static_taker_fee("binance")
    for at_ms, bids, asks in samples[::13]:
        result = CliRunner().invoke(
            app,
            [
                *("quote", SYMBOL, "buy", "3", "--books", str(path)),
                *("--at", str(int(at_ms) + 1), "--json", "--no-guard"),
            ],
        )
        assert result.exit_code == 0, result.output
        got = json.loads(result.stdout)
        oracle = route(
            [DepthSnapshot("binance", SYMBOL, bids, asks)],
            "buy",
            3.0,
            markets={"binance": Market("binance", SYMBOL, taker_fee=fee)},
        )
        # the JSON drops float noise (12 significant digits), nothing more
        assert got["total_cost"] == pytest.approx(oracle.total_cost, rel=1e-12)
        assert got["filled"] == pytest.approx(oracle.filled, rel=1e-12)


def test_level_changes_turn_one_side_into_the_other():
    rng = np.random.default_rng(3)
    for _ in range(200):
        old = np.unique(rng.integers(0, 40, 15)).astype(float)
        new = np.unique(rng.integers(0, 40, 15)).astype(float)
        a = np.column_stack([old, rng.integers(1, 5, len(old))]).astype(float)
        b = np.column_stack([new, rng.integers(1, 5, len(new))]).astype(float)
        book = dict(a.tolist())
        for price, size in level_changes(a, b):
            if size:
                book[price] = size
            else:
                del book[price]
        assert sorted(book.items()) == sorted(map(tuple, b.tolist()))


def test_record_command_streams_from_the_websocket(exchange, monkeypatch, tmp_path):
    from tests.venues.test_live import point_at

    point_at(monkeypatch, "binance", exchange)
    stop = threading.Event()

    def trickle() -> None:
        i = 0
        while not stop.is_set():
            exchange.update(bids=[(59990.0, 1.0 + i % 4)])
            i += 1
            time.sleep(0.05)

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        result = CliRunner().invoke(
            app,
            [
                *("record", SYMBOL, "--venues", "binance", "--out", str(tmp_path)),
                *("--duration", "1.5s", "--interval", "0.2s"),
            ],
        )
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    updates = read_incremental_l2(tmp_path / "binance_incremental_book_L2_BTCUSDT.csv.gz")
    assert exchange.connect_count == 1 and exchange.count("/api/v3/depth") == 1
    assert updates.is_snapshot.sum() == len(BIDS) + len(ASKS)  # one snapshot block
    assert (~updates.is_snapshot).sum() >= 5  # then the stream's increments


def test_a_failing_writer_stops_the_recording(exchange, monkeypatch, tmp_path):
    async def go():
        venue = live(monkeypatch, exchange)

        def broken(event):
            raise OSError("No space left on device")

        venue.add_listener(broken)
        task = asyncio.create_task(
            record([venue], SYMBOL, tmp_path, duration_s=30, interval_s=0.05)
        )
        with pytest.raises(OSError, match="No space"):
            await asyncio.wait_for(task, 10)

    asyncio.run(go())
