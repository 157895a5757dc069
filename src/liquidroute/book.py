"""L2 book reconstruction from tardis incremental rows, streamed forward in time.

`L2Book` holds both sides in one sorted numpy array (key −price for a bid, +price for an
ask; size; the file row of the level's last update). `BookCursor` feeds it a file's
validated batches (`liquidroute.tardis.TardisFile.batches()`): `advance_to(t)` applies
every row whose local_timestamp <= t (µs), keeping one batch in memory; `levels()` reads
the book as arrays and `snapshot()` as a validated `DepthSnapshot`. The rules:

- update rows before the first snapshot are skipped (the book is unknown until then);
- a snapshot row that starts a new snapshot message (the first row, or one after an
  update row, or one with a new local_timestamp) clears the book first;
- `amount` is the new total size at the price; 0 deletes the level;
- a book that comes out crossed (real feeds drop messages, so a level's deletion can be
  missed) is repaired when read: of the best bid and best ask, the one updated longer ago
  is stale and removed, until the book is no longer crossed. `repaired` counts them.

A run of rows between two reads is applied at once, vectorised: the book's levels and the
run's rows are sorted together by (side, price) (one stable sort, O((depth + run) log)),
and the last entry per key is the level (a row after the book's own), so the cost per
row is a few numpy element operations, not Python dict operations. The result is the
same book, level for level, as applying the rows one by one.

Two clocks on one pass: a backtest reads each book at t (route) and t + latency (fill).
Repairs change the book, and the two reads repair at different times, so the cursor keeps
a second book for the fill clock only once a repair would make them differ (copy on
repair), and merges them again at the next snapshot (which clears both). Time only
moves forward.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from liquidroute.errors import DataFileError
from liquidroute.model import DepthSnapshot
from liquidroute.tardis import (
    BoolArray,
    FloatArray,
    IntArray,
    L2Updates,
    Rows,
    TardisFile,
    format_us,
    starts_snapshot,
)

_EMPTY_F = np.empty(0, dtype=np.float64)
_EMPTY_I = np.empty(0, dtype=np.int64)


class L2Book:
    """One venue's book as one sorted array of both sides (module doc).

    Level keys are −price for a bid and +price for an ask (prices are > 0), ascending: the
    bids best first (highest price), then the asks best first (lowest price). So one sort,
    one binary search and one merge apply a run of rows to both sides; (side, price) is
    the key, `size` the level's size and `row` the file row of its last update. The arrays
    are replaced on every change, never written in place: a reader may keep them.
    """

    __slots__ = ("key", "repaired", "row", "size")

    def __init__(self) -> None:
        self.key: FloatArray = _EMPTY_F
        self.size: FloatArray = _EMPTY_F
        self.row: IntArray = _EMPTY_I
        self.repaired = 0

    def clear(self) -> None:
        self.key, self.size, self.row = _EMPTY_F, _EMPTY_F, _EMPTY_I

    def copy(self) -> L2Book:
        out = L2Book()
        out.key, out.size, out.row = self.key.copy(), self.size.copy(), self.row.copy()
        out.repaired = self.repaired
        return out

    def _n_bids(self) -> int:
        return int(self.key.searchsorted(0.0))

    def apply(
        self, is_bid: BoolArray, price: FloatArray, amount: FloatArray, first_row: int
    ) -> None:
        """Rows in file order (file rows first_row, first_row + 1, ...); the last one per
        (side, price) sets the level (0 deletes it)."""
        rows = np.arange(first_row, first_row + len(price), dtype=np.int64)
        self.apply_keys(np.where(is_bid, -price, price), amount, rows)

    def apply_keys(self, key: FloatArray, amount: FloatArray, row: IntArray) -> None:
        """`apply` with the rows' keys (−price bid, +price ask) and file rows given.

        The book's levels and the rows, in that order, are sorted together by key
        (stable): in each run of equal keys the last entry is the level's state (the
        book's own when no row touched it), and zero sizes are dropped.
        """
        if len(key) == 0:
            return
        key = np.concatenate((self.key, key))
        size = np.concatenate((self.size, amount))
        row = np.concatenate((self.row, row))
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        last = np.empty(len(key), dtype=bool)
        last[-1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=last[:-1])
        pick = order[last]  # each key's last entry, in key order
        picked = size[pick]
        kept = picked > 0
        chosen = pick[kept]
        self.key, self.size, self.row = key[chosen], picked[kept], row[chosen]

    def crossed(self) -> bool:
        nb = self._n_bids()
        return bool(0 < nb < len(self.key) and -self.key[0] >= self.key[nb])

    def uncross(self) -> int:
        """Drop stale crossed levels: of best bid and best ask, the older update goes."""
        removed = 0
        nb = self._n_bids()
        while 0 < nb < len(self.key) and -self.key[0] >= self.key[nb]:
            if self.row[0] < self.row[nb]:  # the best bid is older
                self.key, self.size, self.row = self.key[1:], self.size[1:], self.row[1:]
                nb -= 1
            else:
                self.key = np.delete(self.key, nb)
                self.size = np.delete(self.size, nb)
                self.row = np.delete(self.row, nb)
            removed += 1
        self.repaired += removed
        return removed

    def levels(self, depth: int | None) -> tuple[FloatArray, FloatArray]:
        """(bids, asks) as (n, 2) arrays, best first, `depth` levels each (all when None)."""
        key, size = self.key, self.size
        n_bids = self._n_bids()
        n_asks = len(key) - n_bids
        nb = n_bids if depth is None else min(depth, n_bids)
        na = n_asks if depth is None else min(depth, n_asks)
        bids = np.empty((nb, 2))
        np.negative(key[:nb], out=bids[:, 0])
        bids[:, 1] = size[:nb]
        asks = np.empty((na, 2))
        asks[:, 0] = key[n_bids : n_bids + na]
        asks[:, 1] = size[n_bids : n_bids + na]
        return bids, asks


class BookCursor:
    """A file's book moved forward in time over its batches; one pass, two clocks."""

    def __init__(self, batches: Iterable[Rows], *, path: Path, venue: str, symbol: str) -> None:
        self._batches: Iterator[Rows] = iter(batches)
        self.path, self.venue, self.symbol = path, venue, symbol
        self.book = L2Book()
        self._fill: L2Book | None = None  # the fill clock's book once it differs
        self._batch: Rows | None = None
        self._reset: BoolArray | None = None
        self._keys: FloatArray = _EMPTY_F  # the batch's rows as L2Book keys, and file rows
        self._rows: IntArray = _EMPTY_I
        self._pos = 0
        self._prev: tuple[bool, int] | None = None
        self.started = False
        self.exhausted = False
        self.rows_applied = 0
        self.last_ts = -1
        self.last_local_ts = -1
        self.start_us: int | None = None  # arrival of the first snapshot applied
        self.seed_us = 0  # a window's cursor enters the file at a snapshot at this time
        self.two_clocks = True  # False: only the route clock reads (no fill book is kept)

    @property
    def repaired(self) -> int:
        return self.book.repaired + (self._fill.repaired if self._fill else 0)

    def _next(self) -> bool:
        batch = next(self._batches, None)
        if batch is None:
            self.exhausted = True
            self._batch = None
            return False
        self._batch, self._pos = batch, 0
        self._reset = starts_snapshot(batch.is_snapshot, batch.local_timestamp, self._prev)
        self._keys = np.where(batch.is_bid, -batch.price, batch.price)  # L2Book's level keys
        self._rows = np.arange(batch.offset, batch.offset + len(batch), dtype=np.int64)
        if self._prev is None and len(batch):  # a window's seed row starts a snapshot
            self._reset[0] = bool(batch.is_snapshot[0])
        self._prev = (bool(batch.is_snapshot[-1]), int(batch.local_timestamp[-1]))
        return True

    def advance_to(self, t_us: int) -> int:
        """Apply every row with local_timestamp <= t_us; returns the rows applied."""
        applied = 0
        while True:
            if self._batch is None and (self.exhausted or not self._next()):
                return applied
            batch = self._batch
            assert batch is not None
            lt = batch.local_timestamp
            stop = int(np.searchsorted(lt, t_us, side="right"))
            if stop > self._pos:
                applied += self._apply(batch, self._pos, stop)
                self._pos = stop
            if stop < len(lt):
                return applied
            self._batch = None

    def next_time(self) -> int | None:
        """Arrival time of the next row not applied yet (None at the end of the file)."""
        if self._batch is None and (self.exhausted or not self._next()):
            return None
        assert self._batch is not None
        return int(self._batch.local_timestamp[self._pos])

    def advance_to_first_book(self) -> bool:
        """Apply rows up to the first snapshot message (inclusive); False if there is none."""
        while not self.started:
            t = self.next_time()
            if t is None:
                return False
            batch = self._batch
            assert batch is not None
            snaps = np.flatnonzero(batch.is_snapshot[self._pos :])
            self.advance_to(
                int(batch.local_timestamp[self._pos + snaps[0]])
                if len(snaps)
                else int(batch.local_timestamp[-1])
            )
        return True

    def advance_all(self) -> int:
        return self.advance_to(np.iinfo(np.int64).max)

    def _apply(self, b: Rows, start: int, stop: int) -> int:
        assert self._reset is not None
        if not self.started:
            first = np.flatnonzero(b.is_snapshot[start:stop])
            if not len(first):
                return 0
            start += int(first[0])
            self.started = True
            self.start_us = int(b.local_timestamp[start])
        resets = np.flatnonzero(self._reset[start:stop])
        if len(resets):
            start += int(resets[-1])
            self.book.clear()
            self._fill = None  # both clocks see the same fresh snapshot
        key, amount, rows = self._keys[start:stop], b.amount[start:stop], self._rows[start:stop]
        for book in (self.book, self._fill):
            if book is not None:
                book.apply_keys(key, amount, rows)
        self.last_ts = int(b.timestamp[stop - 1])
        self.last_local_ts = int(b.local_timestamp[stop - 1])
        self.rows_applied += stop - start
        return stop - start

    def _book(self, clock: str) -> L2Book:
        if clock == "route":
            book = self.book
            if self.two_clocks and self._fill is None and book.crossed():
                self._fill = book.copy()  # the fill clock repairs on its own
            return book
        if self._fill is None:
            if not self.book.crossed():
                return self.book
            self._fill = self.book.copy()
        return self._fill

    def repair(self, clock: str = "route") -> None:
        """What a read does to the book, without building the snapshot."""
        if self.started:
            self._book(clock).uncross()

    def _read_book(self, clock: str) -> L2Book:
        """The book a read on `clock` sees, stale crossed levels repaired first."""
        if not self.started:
            raise DataFileError(
                f"{self.path}: no book yet: the file's first snapshot arrives later"
            )
        book = self._book(clock)
        book.uncross()
        return book

    def levels(
        self, depth: int | None = None, clock: str = "route"
    ) -> tuple[FloatArray, FloatArray]:
        """A read of the current book: (bids, asks) as (n, 2) arrays, best first, `depth`
        levels a side (all when None), stale crossed levels repaired first. Sorted, unique,
        positive and not crossed by construction (what `snapshot` validates again)."""
        return self._read_book(clock).levels(depth)

    def read(self, clock: str = "route") -> tuple[FloatArray, FloatArray, int]:
        """`levels` without building them: the book's (keys, sizes, number of bids) after
        the read's repair. The arrays are the book's own, never written in place."""
        book = self._read_book(clock)
        return book.key, book.size, book._n_bids()

    def snapshot(self, depth: int | None = None, clock: str = "route") -> DepthSnapshot:
        """The current book, best `depth` levels per side (all when None)."""
        bids, asks = self.levels(depth, clock)
        return DepthSnapshot(
            self.venue,
            self.symbol,
            bids,
            asks,
            timestamp=float(self.last_ts) / 1e3,
            local_timestamp=float(self.last_local_ts) / 1e3,
        )


class BookReplay(BookCursor):
    """A cursor over a file already in memory (`L2Updates`)."""

    def __init__(self, updates: L2Updates) -> None:
        super().__init__(
            [updates.rows()], path=updates.path, venue=updates.venue, symbol=updates.symbol
        )
        self.updates = updates
        first = np.flatnonzero(updates.is_snapshot)
        if not len(first):
            raise DataFileError(f"{updates.path}: no snapshot rows; the book is never known")
        self._first_us = int(updates.local_timestamp[first[0]])

    @property
    def first_us(self) -> int:
        return self._first_us

    def advance_rows(self, stop: int) -> int:
        """Apply the file's rows up to (not including) row `stop`."""
        if stop <= 0:
            return 0
        return self.advance_to(int(self.updates.local_timestamp[min(stop, len(self.updates)) - 1]))


def open_cursor(source: TardisFile, start_row: int = 0) -> BookCursor:
    return BookCursor(
        source.batches(start_row), path=source.path, venue=source.venue, symbol=source.symbol
    )


def book_at(
    updates: L2Updates | TardisFile | Path | str,
    at_ms: float | None = None,
    depth: int | None = None,
) -> DepthSnapshot:
    """The book as of `at_ms` (arrival time, ms); the end of the file when None. Files are
    streamed (memory: one batch plus the book)."""
    if isinstance(updates, L2Updates):
        cursor: BookCursor = BookReplay(updates)
    else:
        source = updates if isinstance(updates, TardisFile) else TardisFile(Path(updates))
        cursor = open_cursor(source)
    if at_ms is None:
        cursor.advance_all()
    else:
        t_us = round(at_ms * 1e3)  # tardis stamps are whole microseconds
        cursor.advance_to(t_us)
    if not cursor.started:
        if cursor.exhausted:
            raise DataFileError(f"{cursor.path}: no snapshot rows; the book is never known")
        cursor.advance_all()
        first = cursor.start_us if cursor.start_us is not None else 0
        raise DataFileError(
            f"{cursor.path}: no book before {format_us((at_ms or 0) * 1e3)}: the file's "
            f"first snapshot arrives at {format_us(first)}"
        )
    return cursor.snapshot(depth)


def crossed_checks(source: TardisFile, every_us: int = 1_000_000) -> dict[str, object]:
    """Replay a file and look at its book every `every_us` of arrival time and at the end:
    how often it came out crossed (a missed deletion), and the first time."""
    cursor = open_cursor(source)
    checks = crossed = 0
    first: str | None = None
    t = cursor.next_time()
    while t is not None:
        cursor.advance_to(t)
        if cursor.started:
            checks += 1
            if cursor.book.crossed():
                crossed += 1
                first = first or format_us(float(t))
                cursor.book.uncross()
        upcoming = cursor.next_time()
        if upcoming is None:
            break
        t = max(t + every_us, upcoming)  # quiet stretches are skipped
    return {"crossed_checks": checks, "crossed_books": crossed, "first_crossed": first}


__all__ = ["BookCursor", "BookReplay", "L2Book", "book_at", "crossed_checks", "open_cursor"]
