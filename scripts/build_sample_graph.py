"""Regenerate src/liquidroute/data/sample_graph.json: the sample's markets besides BTC.

    python scripts/build_sample_graph.py    # after scripts/build_sample.py

`--sample` is ONE data set: the real BTC/USDT (and Bybit perpetual) books of
sample_books.json plus the markets written here, which are not in shared/data. They are
DERIVED from
the real recorded BTC/USDT books (src/liquidroute/data/sample_books.json, itself built
from shared/data): for venue v and market M with reference mid m_M, every level of v's
real book keeps its distance from the mid (price' = m_M x price / mid_BTC) and its
notional in USDT (scaled by the market's depth factor), converted into M's base units at
the reference prices. Reference prices (fixed, documented): BTC 61,686 USDT, ETH 2,600
USDT, USDC 0.9998 USDT; ETH/BTC carries a small per-venue mispricing (below) so that
routing through BTC can pay. Fees are each venue's real taker fee (ccxt static table).
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "liquidroute" / "data" / "sample_books.json"
OUT = ROOT / "src" / "liquidroute" / "data" / "sample_graph.json"

LEVELS = 200  # per side: enough depth, a small file
USDT_VALUE = {"USDT": 1.0, "USDC": 0.9998, "BTC": 61_686.0, "ETH": 2_600.0}
# market -> {venue: (mid mispricing in bps, depth factor)}
MARKETS = {  # BTC/USDT itself is the real books (sample_books.json), not derived
    "ETH/USDT": {"binance": (0, 0.05), "okx": (4, 0.04)},
    "ETH/BTC": {"binance": (-3, 0.5), "bybit": (2, 0.5)},
    "USDC/USDT": {"binance": (0, 3.0), "bybit": (1, 2.0)},
    "BTC/USDC": {"okx": (-2, 0.6), "bybit": (1, 0.6)},
    "ETH/USDC": {"binance": (2, 0.4), "okx": (-1, 0.3)},
}
NOTE = (
    "Derived from real recorded BTC/USDT books (Binance 2024-08-08, Bybit 2026-08-09, OKX "
    "2022-05-13; re-centred): each market keeps a real book's level distances from the mid "
    "and its USDT notional per level, rescaled to fixed reference prices (BTC 61,686, ETH "
    "2,600, USDC 0.9998 USDT). Not a recorded market; for trying multi-hop routing offline."
)


def derive(book: dict, symbol: str, bps: float, depth: float) -> dict:
    base, quote = symbol.split("/")
    mid = USDT_VALUE[base] / USDT_VALUE[quote] * (1 + bps / 1e4)
    src_mid = (book["bids"][0][0] + book["asks"][0][0]) / 2

    def side(levels: list[list[float]]) -> list[list[float]]:
        out = []
        for price, size in levels[:LEVELS]:
            new_price = float(f"{mid * price / src_mid:.10g}")
            notional_usdt = price * size * depth
            out.append(
                [new_price, float(f"{notional_usdt / (new_price * USDT_VALUE[quote]):.10g}")]
            )
        return out

    return {"bids": side(book["bids"]), "asks": side(book["asks"])}


def build() -> dict:
    sample = json.loads(SAMPLE.read_text())
    spot = {m["venue"]: m for m in sample["markets"] if m["symbol"] == "BTC/USDT"}
    books = []
    for symbol, venues in MARKETS.items():
        for venue, (bps, depth) in venues.items():
            src = spot[venue]
            books.append(
                {
                    "venue": venue,
                    "symbol": symbol,
                    "taker_fee": src["taker_fee"],
                    "mispricing_bps": bps,
                    "depth_factor": depth,
                    "shape_from": src["recorded_file"],
                    **derive(src, symbol, bps, depth),
                }
            )
    return {"note": NOTE, "reference_usdt": USDT_VALUE, "books": books}


def main() -> None:
    OUT.write_text(json.dumps(build(), separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
