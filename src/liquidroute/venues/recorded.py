"""Books replayed from a recorded tardis `incremental_book_L2` file.

`RecordedVenue(path, at=ms)` is a `Venue` whose book is the file's book as of `at`
(arrival time, ms since the epoch; the end of the file by default). The venue name is the
ccxt id of the file's tardis exchange (okex -> okx, bybit-spot -> bybit, ...), the symbol
the unified form of its native symbol, and the taker fee ccxt's static fee table for that
venue unless `fee` is given. The file is read once, on first use.
"""

from __future__ import annotations

from pathlib import Path

from liquidroute.backtest.book import book_at
from liquidroute.backtest.data import L2Updates, ccxt_id, read_incremental_l2
from liquidroute.errors import DataFileError
from liquidroute.model import DepthSnapshot, Market


def static_taker_fee(venue: str) -> float:
    """The taker fee from ccxt's static fee table for `venue` (0.001 when it has none)."""
    import ccxt

    exchange = getattr(ccxt, venue)()
    fee = exchange.fees.get("trading", {}).get("taker")
    return float(fee) if fee is not None else 0.001


class RecordedVenue:
    """A venue replayed from a file, frozen at one instant."""

    live = False

    def __init__(
        self, path: Path | str, *, at: float | None = None, fee: float | None = None
    ) -> None:
        self.path = Path(path)
        self.at = at
        self._fee = fee
        self._updates: L2Updates | None = None
        self._snapshot: DepthSnapshot | None = None

    @property
    def updates(self) -> L2Updates:
        if self._updates is None:
            self._updates = read_incremental_l2(self.path)
        return self._updates

    @property
    def name(self) -> str:
        return ccxt_id(self.updates.exchange)[0]

    @property
    def symbol(self) -> str:
        return self.updates.symbol

    def _check(self, symbol: str) -> None:
        if symbol != self.symbol:
            raise DataFileError(
                f"{self.path.name} holds {self.symbol} ({self.updates.native_symbol} on "
                f"{self.updates.exchange}), not {symbol}"
            )

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        self._check(symbol)
        if self._snapshot is None:
            self._snapshot = book_at(self.updates, self.at)
        return self._snapshot.top(depth) if depth else self._snapshot

    async def market(self, symbol: str) -> Market:
        self._check(symbol)
        fee = self._fee if self._fee is not None else static_taker_fee(self.name)
        return Market(self.name, symbol, fee)

    async def close(self) -> None:
        return None
