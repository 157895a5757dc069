"""Books replayed from a recorded tardis `incremental_book_L2` file (or our Parquet).

`RecordedVenue(path, at=ms)` is a `Venue` whose book is the file's book as of `at`
(arrival time, ms since the epoch; the end of the file by default). The venue name is the
ccxt id of the file's tardis exchange (okex -> okx, bybit-spot -> bybit, ...), the symbol
the unified form of its native symbol, and the taker fee ccxt's static fee table for that
venue unless `fee` is given. The file is opened on first use and streamed to `at` once
(memory: one batch plus the book, whatever the file's length).
"""

from __future__ import annotations

from pathlib import Path

from liquidroute.book import book_at
from liquidroute.errors import DataFileError
from liquidroute.model import DepthSnapshot, Market
from liquidroute.tardis import TardisFile
from liquidroute.venues.ccxt_venue import static_taker_fee

__all__ = ["RecordedVenue", "static_taker_fee"]


class RecordedVenue:
    """A venue replayed from a file, frozen at one instant."""

    live = False

    def __init__(
        self, path: Path | str, *, at: float | None = None, fee: float | None = None
    ) -> None:
        self.path = Path(path)
        self.at = at
        self._fee = fee
        self._source: TardisFile | None = None
        self._snapshot: DepthSnapshot | None = None

    @property
    def source(self) -> TardisFile:
        if self._source is None:
            self._source = TardisFile(self.path)
        return self._source

    @property
    def name(self) -> str:
        return self.source.venue

    @property
    def symbol(self) -> str:
        return self.source.symbol

    def _check(self, symbol: str) -> None:
        if symbol != self.symbol:
            raise DataFileError(
                f"{self.path.name} holds {self.symbol} ({self.source.native_symbol} on "
                f"{self.source.exchange}), not {symbol}"
            )

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        self._check(symbol)
        if self._snapshot is None:
            self._snapshot = book_at(self.source, self.at)
        return self._snapshot.top(depth) if depth else self._snapshot

    async def market(self, symbol: str) -> Market:
        self._check(symbol)
        fee = self._fee if self._fee is not None else static_taker_fee(self.name)
        return Market(self.name, symbol, fee)

    async def close(self) -> None:
        return None
