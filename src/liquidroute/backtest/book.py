"""L2 book reconstruction from tardis incremental rows.

`BookReplay(updates)` walks the rows in file order and keeps one price -> size dict per
side. `advance_to(t)` applies every row whose local_timestamp <= t (µs); `snapshot()`
returns the book as a validated `DepthSnapshot`. The rules:

- update rows before the first snapshot are skipped (the book is unknown until then);
- a snapshot row that starts a new snapshot message (the first row, or one after an
  update row, or one with a new local_timestamp) clears the book first;
- `amount` is the new total size at the price; 0 deletes the level;
- a book that comes out crossed (real feeds drop messages, so a level's deletion can be
  missed) is repaired when read: of the best bid and best ask, the one updated longer ago
  is stale and removed, until the book is no longer crossed. `repaired` counts them.

Time only moves forward; `reset()` starts over. Each row costs a few dict operations, so
reconstruction runs at millions of rows per second.
"""

from __future__ import annotations

import numpy as np

from liquidroute.backtest.data import L2Updates, format_us
from liquidroute.errors import DataFileError
from liquidroute.model import DepthSnapshot


def _starts_snapshot(updates: L2Updates) -> np.ndarray:
    snap = updates.is_snapshot
    prev_snap = np.concatenate(([False], snap[:-1]))
    new_ts = np.concatenate(([True], updates.local_timestamp[1:] != updates.local_timestamp[:-1]))
    return snap & (~prev_snap | new_ts)


class BookReplay:
    """Replays one file's rows into a book, forward in time."""

    def __init__(self, updates: L2Updates) -> None:
        self.updates = updates
        self._reset_at = _starts_snapshot(updates)
        first = np.flatnonzero(updates.is_snapshot)
        if not len(first):
            raise DataFileError(f"{updates.path}: no snapshot rows; the book is never known")
        self._first = int(first[0])
        # plain lists: per-row access is much faster than numpy scalars
        self._price = updates.price.tolist()
        self._amount = updates.amount.tolist()
        self._bid = updates.is_bid.tolist()
        self._reset = self._reset_at.tolist()
        self.reset()

    def reset(self) -> None:
        # price -> (size, row of the last update)
        self.bids: dict[float, tuple[float, int]] = {}
        self.asks: dict[float, tuple[float, int]] = {}
        self.repaired = 0
        self.position = self._first  # next row to apply
        self.last_row = -1

    @property
    def start_us(self) -> int:
        """Arrival time of the first snapshot: the earliest time a book exists."""
        return int(self.updates.local_timestamp[self._first])

    @property
    def end_us(self) -> int:
        return int(self.updates.local_timestamp[-1])

    def advance_to(self, t_us: float) -> int:
        """Apply every row with local_timestamp <= t_us; returns the rows applied."""
        stop = int(np.searchsorted(self.updates.local_timestamp, t_us, side="right"))
        return self.advance_rows(stop)

    def advance_rows(self, stop: int) -> int:
        start = self.position
        if stop <= start:
            return 0
        bids, asks = self.bids, self.asks
        price, amount, is_bid, reset = self._price, self._amount, self._bid, self._reset
        for i in range(start, stop):
            if reset[i]:
                bids.clear()
                asks.clear()
            book = bids if is_bid[i] else asks
            a = amount[i]
            if a > 0:
                book[price[i]] = (a, i)
            else:
                book.pop(price[i], None)
        self.position = stop
        self.last_row = stop - 1
        return stop - start

    def _uncross(self) -> None:
        """Drop stale crossed levels: of best bid and best ask, the older update goes."""
        while self.bids and self.asks:
            best_bid, best_ask = max(self.bids), min(self.asks)
            if best_bid < best_ask:
                return
            if self.bids[best_bid][1] < self.asks[best_ask][1]:
                del self.bids[best_bid]
            else:
                del self.asks[best_ask]
            self.repaired += 1

    def snapshot(self, depth: int | None = None) -> DepthSnapshot:
        """The current book, best `depth` levels per side (all when None)."""
        up = self.updates
        if self.last_row < 0:
            raise DataFileError(
                f"{up.path}: no book yet: the file's first snapshot arrives at "
                f"{format_us(self.start_us)}"
            )
        self._uncross()
        bids = np.array(
            [(p, v[0]) for p, v in sorted(self.bids.items(), reverse=True)], dtype=np.float64
        )
        asks = np.array([(p, v[0]) for p, v in sorted(self.asks.items())], dtype=np.float64)
        if depth is not None:
            bids, asks = bids[:depth], asks[:depth]
        i = self.last_row
        return DepthSnapshot(
            up.venue,
            up.symbol,
            bids.reshape(-1, 2),
            asks.reshape(-1, 2),
            timestamp=float(up.timestamp[i]) / 1e3,
            local_timestamp=float(up.local_timestamp[i]) / 1e3,
        )


def book_at(
    updates: L2Updates, at_ms: float | None = None, depth: int | None = None
) -> DepthSnapshot:
    """The book as of `at_ms` (arrival time, ms); the end of the file when None."""
    replay = BookReplay(updates)
    if at_ms is None:
        replay.advance_rows(len(updates))
    else:
        t_us = round(at_ms * 1e3)  # tardis stamps are whole microseconds
        if t_us < replay.start_us:
            raise DataFileError(
                f"{updates.path}: no book before {format_us(at_ms * 1e3)}: the file's first "
                f"snapshot arrives at {format_us(replay.start_us)}"
            )
        replay.advance_to(t_us)
    return replay.snapshot(depth)
