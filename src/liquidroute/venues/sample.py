"""The bundled sample behind every `--sample`: one data set, offline.

It holds (see src/liquidroute/data/README.md and the two build scripts):

- REAL recorded books (`sample_books.json`, scripts/build_sample.py): BTC/USDT spot on
  Binance (2024-08-08), Bybit (2026-08-09) and OKX (2022-05-13), and Bybit's BTC/USDT:USDT
  perpetual (recorded with Bybit spot), each re-centred on one common mid (every level
  keeps its distance from the mid in bps, and its size), with each market's ccxt taker fee
  and the venues' real lot, tick and minimums;
- DERIVED markets (`sample_graph.json`, scripts/build_sample_graph.py): ETH/USDT, ETH/BTC,
  USDC/USDT, BTC/USDC, ETH/USDC, whose books reuse the real BTC/USDT books' shapes at fixed
  reference prices — for trying multi-hop conversion; not recorded markets.

It is not a simultaneous market: every output that uses it says so (`sample_note`).
Loading needs only json and numpy.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from liquidroute.errors import UnknownSymbolError
from liquidroute.model import DepthSnapshot, Market

REAL_SYMBOLS = ("BTC/USDT", "BTC/USDT:USDT")
SAMPLE_NOTE = (
    "sample: real recorded books (Binance 2024-08-08, Bybit 2026-08-09, OKX 2022-05-13) "
    "re-centred on a common mid; not a simultaneous market"
)
DERIVED_NOTE = (
    "sample: DERIVED book (real BTC/USDT book shapes at fixed reference prices: BTC 61,686, "
    "ETH 2,600, USDC 0.9998 USDT); not a recorded market"
)
HOLDS = (
    "real recorded BTC/USDT books on binance, bybit, okx and bybit's BTC/USDT:USDT perpetual; "
    "ETH/USDT, ETH/BTC, USDC/USDT, BTC/USDC, ETH/USDC derived from them"
)
_RULES = ("amount_step", "price_tick", "min_amount", "max_amount", "min_notional")


@cache
def sample_data() -> dict[str, Any]:
    """The raw real books (see scripts/build_sample.py for every field)."""
    text = resources.files("liquidroute.data").joinpath("sample_books.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def derived_data() -> dict[str, Any]:
    """The raw derived markets (see scripts/build_sample_graph.py)."""
    text = resources.files("liquidroute.data").joinpath("sample_graph.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def _books() -> tuple[tuple[Market, DepthSnapshot], ...]:
    """Every (market, book) of the sample: the real ones first, then the derived ones."""
    out: list[tuple[Market, DepthSnapshot]] = []
    for rec in sample_data()["markets"]:
        rules = rec["rules"]
        venue, symbol, t = rec["venue"], rec["symbol"], rec["book_time_ms"]
        out.append(
            (
                Market(venue, symbol, rec["taker_fee"], **{k: rules.get(k) for k in _RULES}),
                DepthSnapshot(
                    venue, symbol, rec["bids"], rec["asks"], timestamp=t, local_timestamp=t
                ),
            )
        )
    for rec in derived_data()["books"]:
        venue, symbol = rec["venue"], rec["symbol"]
        out.append(
            (
                Market(venue, symbol, rec["taker_fee"]),
                DepthSnapshot(venue, symbol, rec["bids"], rec["asks"]),
            )
        )
    return tuple(out)


def sample_symbols() -> list[str]:
    """The symbols the sample holds, real ones first."""
    return list(dict.fromkeys(m.symbol for m, _ in _books()))


def sample_note(symbol: str) -> str:
    """What the sample's books for `symbol` are (say it wherever they are shown)."""
    return SAMPLE_NOTE if symbol in REAL_SYMBOLS else DERIVED_NOTE


class SampleVenue:
    """One venue of the bundled sample: every market the sample holds on that venue."""

    live = False

    def __init__(self, name: str, books: dict[str, tuple[Market, DepthSnapshot]]) -> None:
        self.name = name
        self._books = books

    @property
    def symbols(self) -> list[str]:
        return list(self._books)

    def _get(self, symbol: str) -> tuple[Market, DepthSnapshot]:
        if symbol not in self._books:
            raise UnknownSymbolError(
                self.name,
                f"the sample holds only {', '.join(self._books)} here, not {symbol}",
            )
        return self._books[symbol]

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        snap = self._get(symbol)[1]
        return snap.top(depth) if depth else snap

    async def market(self, symbol: str) -> Market:
        return self._get(symbol)[0]

    async def close(self) -> None:
        return None


def sample_venues(symbol: str | None = None) -> list[SampleVenue]:
    """The sample's venues (those listing `symbol`, when given)."""
    by_venue: dict[str, dict[str, tuple[Market, DepthSnapshot]]] = {}
    for market, snap in _books():
        by_venue.setdefault(market.venue, {})[market.symbol] = (market, snap)
    return [
        SampleVenue(name, books)
        for name, books in by_venue.items()
        if symbol is None or symbol in books
    ]


def sample_snapshots(symbol: str = "BTC/USDT") -> list[DepthSnapshot]:
    """The sample's books of `symbol`, one per venue listing it."""
    return [snap for market, snap in _books() if market.symbol == symbol]


def sample_markets(symbol: str = "BTC/USDT") -> dict[str, Market]:
    """venue -> Market for `symbol` (the form `route()` takes)."""
    return {market.venue: market for market, _ in _books() if market.symbol == symbol}


def sample_spot() -> tuple[list[DepthSnapshot], list[Market]]:
    """Every spot book of the sample and its market, aligned (the form `route_graph()` takes)."""
    spot = [(m, s) for m, s in _books() if ":" not in m.symbol]
    return [s for _, s in spot], [m for m, _ in spot]
