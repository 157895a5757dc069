"""The bundled sample: real recorded BTC/USDT books from three venues, offline.

Built by `scripts/build_sample.py` from the recorded files in shared/data (Binance spot
2024-08-08, Bybit spot 2026-08-09, OKX spot 2022-05-13), each re-centred on one common mid
(each level keeps its distance from its own mid in bps, and its size), with each venue's
real fee and trading rules. It is recorded data, not a simultaneous market: say so
wherever it is shown (`SAMPLE_NOTE`). Loading needs only json and numpy.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from liquidroute.errors import UnknownSymbolError
from liquidroute.model import DepthSnapshot, Market

SAMPLE_NOTE = (
    "sample: real recorded books (Binance 2024-08-08, Bybit 2026-08-09, OKX 2022-05-13) "
    "re-centred on a common mid; not a simultaneous market"
)
_RULES = ("amount_step", "price_tick", "min_amount", "max_amount", "min_notional")


@cache
def sample_data() -> dict[str, Any]:
    """The raw sample (see scripts/build_sample.py for every field)."""
    text = resources.files("liquidroute.data").joinpath("sample_books.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


class SampleVenue:
    """One venue of the bundled sample."""

    live = False

    def __init__(self, name: str, record: dict[str, Any]) -> None:
        self.name = name
        self.symbol: str = record["symbol"]
        rules = record["rules"]
        self._market = Market(
            name, self.symbol, record["taker_fee"], **{k: rules.get(k) for k in _RULES}
        )
        self._snapshot = DepthSnapshot(
            name,
            self.symbol,
            record["bids"],
            record["asks"],
            timestamp=record["book_time_ms"],
            local_timestamp=record["book_time_ms"],
        )

    def _check(self, symbol: str) -> None:
        if symbol != self.symbol:
            raise UnknownSymbolError(
                self.name, f"the sample holds only {self.symbol}, not {symbol}"
            )

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        self._check(symbol)
        return self._snapshot.top(depth) if depth else self._snapshot

    async def market(self, symbol: str) -> Market:
        self._check(symbol)
        return self._market

    async def close(self) -> None:
        return None


def sample_venues() -> list[SampleVenue]:
    return [SampleVenue(name, rec) for name, rec in sample_data()["venues"].items()]


def sample_snapshots() -> list[DepthSnapshot]:
    return [v._snapshot for v in sample_venues()]


def sample_markets() -> dict[str, Market]:
    return {v.name: v._market for v in sample_venues()}
