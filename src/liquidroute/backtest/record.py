"""Record live books as tardis `incremental_book_L2` CSV.gz files, from the venue's stream.

Each venue's book is kept by a `LiveVenue` (ccxt.pro websocket where the exchange has one,
REST polling every `interval_s` otherwise) and every new version of it is written:

- the first book, and the first after every resync or reconnect, as a snapshot block
  (`is_snapshot=true` rows sharing one local_timestamp), which by the format's rules
  replaces the book;
- every other version as its increments against the previous one (`is_snapshot=false`;
  `amount` is the new size at the price, 0 deletes the level): the levels the venue's
  diff changed, and the levels that left the kept depth.

So the file replays (`read_incremental_l2`, `book_at`, `quote --books`, `backtest`) to the
very books the cache held, version by version: replayed at any arrival time t (µs), it is
the last version received at or before t.
Files: OUT/<tardis exchange id>_incremental_book_L2_<venue-native symbol>.csv.gz. Rows are
flushed every `interval_s` and the gzip stream is closed on exit, including Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from liquidroute.backtest.data import COLUMNS, TARDIS_EXCHANGES
from liquidroute.model import FloatArray
from liquidroute.venues.ccxt_venue import CcxtVenue
from liquidroute.venues.live import BookEvent, LiveVenue

_TARDIS_ID = {ccxt: tardis for tardis, (ccxt, deriv) in TARDIS_EXCHANGES.items() if not deriv}


def tardis_name(venue: CcxtVenue, native: str) -> str:
    exchange = _TARDIS_ID.get(venue.exchange.id, venue.exchange.id)
    return f"{exchange}_incremental_book_L2_{native}.csv.gz"


def level_changes(previous: FloatArray, current: FloatArray) -> list[tuple[float, float]]:
    """The (price, new size) rows turning side `previous` into `current` (size 0: deleted)."""
    old = dict(previous.tolist())
    changes = [(p, s) for p, s in current.tolist() if old.pop(p, None) != s]
    return changes + [(p, 0.0) for p in old]


class _Writer:
    """One venue's file: a snapshot block for a fresh book, increments otherwise."""

    def __init__(self, fh: IO[str], exchange: str, native: str, symbol: str) -> None:
        self.fh, self.exchange, self.native, self.symbol = fh, exchange, native, symbol
        self.previous: BookEvent | None = None
        self.versions = 0
        self.snapshots = 0

    def write(self, event: BookEvent) -> None:
        snap = event.snapshot
        if snap.symbol != self.symbol:
            return
        ts = int((snap.timestamp or 0) * 1e3)
        local = int((snap.local_timestamp or time.time() * 1e3) * 1e3)
        head = f"{self.exchange},{self.native},{ts},{local},"
        lines: list[str] = []
        if event.fresh or self.previous is None:
            self.snapshots += 1
            for side, levels in (("bid", snap.bids), ("ask", snap.asks)):
                lines += [f"{head}true,{side},{p!r},{s!r}\n" for p, s in levels.tolist()]
        else:
            before = self.previous.snapshot
            for side, old, new in (
                ("bid", before.bids, snap.bids),
                ("ask", before.asks, snap.asks),
            ):
                lines += [f"{head}false,{side},{p!r},{s!r}\n" for p, s in level_changes(old, new)]
        self.fh.write("".join(lines))
        self.previous = event
        self.versions += 1


async def record(
    venues: Sequence[CcxtVenue | LiveVenue],
    symbol: str,
    out: Path,
    *,
    duration_s: float,
    interval_s: float = 1.0,
    depth: int | None = 100,
    on_poll: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> list[Path]:
    """Record every venue's book versions until `duration_s` has passed (or `stop` is
    set); returns the files written.

    A `CcxtVenue` is kept live here (streamed if its client is ccxt.pro's, e.g. from
    `venue_from_spec(..., websocket=True)`, else polled every `interval_s`), `depth`
    levels per side. `on_poll(n)` is called every `interval_s` (n = ticks so far).
    """
    out.mkdir(parents=True, exist_ok=True)
    feeds = [
        v
        if isinstance(v, LiveVenue)
        else LiveVenue(v, [symbol], depth=depth, limit=depth, poll_interval_s=interval_s)
        for v in venues
    ]
    paths = []
    with ExitStack() as stack:  # every gzip stream is closed, even on Ctrl-C
        writers: list[_Writer] = []
        try:
            for feed in feeds:
                native = (await feed.venue._market_dict(symbol))["id"]
                exchange = _TARDIS_ID.get(feed.venue.exchange.id, feed.venue.exchange.id)
                path = out / tardis_name(feed.venue, native)
                fh: IO[str] = stack.enter_context(gzip.open(path, "wt", newline=""))
                fh.write(",".join(COLUMNS) + "\n")
                writer = _Writer(fh, exchange, native, symbol)
                writers.append(writer)
                feed.add_listener(writer.write)
                paths.append(path)
            await asyncio.gather(*(feed.start() for feed in feeds))
            deadline = time.monotonic() + duration_s
            ticks = 0
            while True:
                pause = max(0.0, min(interval_s, deadline - time.monotonic()))
                if stop is None:
                    await asyncio.sleep(pause)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
                for feed in feeds:
                    feed.check()  # a failed write stops the recording, it is not a gap
                for writer in writers:
                    writer.fh.flush()
                ticks += 1
                if on_poll is not None:
                    on_poll(ticks)
                if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                    break
        finally:
            await asyncio.gather(*(feed.close() for feed in feeds), return_exceptions=True)
    return paths
