"""The Venue protocol: where books (and later, fills) come from.

A venue answers two questions about a symbol: what its book looks like now
(`snapshot`) and what its rules and fee are (`market`). Implementations: `CcxtVenue`
(any ccxt exchange, live), `RecordedVenue` (a tardis CSV replayed to a time), and the
bundled sample (`sample_venues`). `live` tells the router whether staleness checks apply.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from liquidroute.model import DepthSnapshot, Market


@runtime_checkable
class Venue(Protocol):
    """A source of depth snapshots and market metadata for one venue."""

    @property
    def name(self) -> str:
        """The venue id (ccxt id: 'binance', 'okx', 'bybit', ...)."""
        ...

    @property
    def live(self) -> bool:
        """True when snapshots come from the venue now (age checks apply)."""
        ...

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        """The current book for `symbol`, best `depth` levels per side (all when None)."""
        ...

    async def market(self, symbol: str) -> Market:
        """Fee and trading rules for `symbol`."""
        ...

    async def close(self) -> None:
        """Release connections; safe to call twice."""
        ...
