"""Regenerate src/liquidroute/data/sample_books.json from the real recorded books.

    python scripts/build_sample.py [SHARED_DATA_DIR]   # default: ../shared/data

Every book in shared/data/books: BTC/USDT spot on Binance, Bybit and OKX, and Bybit's
BTC/USDT:USDT linear perpetual (recorded in the same seconds as Bybit spot). Each is
reconstructed at the end of its recorded file, then re-centred on one common mid M (the
median of the three spot mids, rounded to 0.1): every level keeps its distance from its
venue's spot mid in bps and its size, price' = price x M / mid, rounded to the tick away
from the mid (asks up, bids down); levels landing on the same tick are merged (sizes
summed). Both Bybit books use Bybit spot's factor, so the perpetual keeps its real basis.
Fees are the taker fee ccxt gives each market (what a live `--venues` quote uses); lot,
tick and minimums come from the venues' own instrument records (shared/data/markets)
and, for Binance, its published BTCUSDT spot filters.
"""

from __future__ import annotations

import json
import statistics
import sys
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import numpy as np

from liquidroute.backtest.book import book_at
from liquidroute.backtest.data import format_us, read_incremental_l2

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "liquidroute" / "data" / "sample_books.json"
MAX_LEVELS = 1000
NOTE = (
    "Real recorded books (Binance 2024-08-08, Bybit 2026-08-09, OKX 2022-05-13) re-centred "
    "on a common mid; not a simultaneous market."
)
SPOT, PERP = "BTC/USDT", "BTC/USDT:USDT"
# (venue, symbol) -> (file, the venue whose spot mid sets the re-centring factor)
FILES = {
    ("binance", SPOT): ("binance_incremental_book_L2_BTCUSDT.csv.gz", "binance"),
    ("bybit", SPOT): ("bybit-spot_incremental_book_L2_BTCUSDT.csv.gz", "bybit"),
    ("okx", SPOT): ("okex_incremental_book_L2_BTC-USDT.csv.gz", "okx"),
    ("bybit", PERP): ("bybit_incremental_book_L2_BTCUSDT.csv.gz", "bybit"),
}
# ccxt's taker fee per market (ccxt 4.5: binance spot fees.trading.taker; bybit's
# parse_spot_market / parse_contract_market defaults; okx parse_market, computed below)
CCXT_TAKER = {("binance", SPOT): 0.001, ("bybit", SPOT): 0.001, ("bybit", PERP): 0.0006}
# Binance's published BTCUSDT spot filters (PRICE_FILTER, LOT_SIZE, NOTIONAL)
BINANCE_RULES = {
    "price_tick": 0.01,
    "amount_step": 0.00001,
    "min_amount": 0.00001,
    "max_amount": 9000.0,
    "min_notional": 5.0,
    "source": "Binance spot exchangeInfo filters for BTCUSDT (published values)",
}


def _items(path: Path, url_part: str, key: str, value: str) -> dict[str, Any]:
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if url_part in record["url"]:
            for item in record["items"]:
                if item.get(key) == value:
                    return dict(item)
    raise SystemExit(f"{path}: no {key}={value} record for {url_part}")


def okx_taker(data: Path) -> float:
    """OKX's BTC-USDT taker fee as ccxt parses the recorded instrument (offline)."""
    import ccxt

    item = _items(data / "markets" / "okx.markets.jsonl", "SPOT", "instId", "BTC-USDT")
    return float(ccxt.okx().parse_market(item)["taker"])


def rules(data: Path) -> dict[tuple[str, str], dict[str, Any]]:
    okx = _items(data / "markets" / "okx.markets.jsonl", "SPOT", "instId", "BTC-USDT")
    bybit = _items(data / "markets" / "bybit.markets.jsonl", "category=spot", "symbol", "BTCUSDT")
    perp = _items(data / "markets" / "bybit.markets.jsonl", "category=linear", "symbol", "BTCUSDT")
    lot = bybit["lotSizeFilter"]
    plot = perp["lotSizeFilter"]
    return {
        ("binance", SPOT): BINANCE_RULES,
        ("bybit", PERP): {
            "price_tick": float(perp["priceFilter"]["tickSize"]),
            "amount_step": float(plot["qtyStep"]),
            "min_amount": float(plot["minOrderQty"]),
            "max_amount": float(plot["maxMktOrderQty"]),
            "min_notional": float(plot["minNotionalValue"]),
            "source": "Bybit /v5/market/instruments-info?category=linear (shared/data/markets)",
        },
        ("okx", SPOT): {
            "price_tick": float(okx["tickSz"]),
            "amount_step": float(okx["lotSz"]),
            "min_amount": float(okx["minSz"]),
            "max_amount": None,
            "min_notional": None,
            "source": "OKX /api/v5/public/instruments?instType=SPOT (shared/data/markets)",
        },
        ("bybit", SPOT): {
            "price_tick": float(bybit["priceFilter"]["tickSize"]),
            "amount_step": float(lot["basePrecision"]),
            "min_amount": float(lot["minOrderQty"]),
            "max_amount": float(lot["maxOrderQty"]),
            "min_notional": float(lot["minOrderAmt"]),
            "source": "Bybit /v5/market/instruments-info?category=spot (shared/data/markets)",
        },
    }


def recentre(levels: np.ndarray, factor: float, tick: float, up: bool) -> list[list[float]]:
    """Scale prices by `factor`, round to `tick` away from the mid, merge equal ticks."""
    d_tick = Decimal(repr(tick))
    mode = ROUND_CEILING if up else ROUND_FLOOR
    merged: dict[Decimal, float] = {}
    for price, size in levels.tolist():
        ticks = (Decimal(repr(price * factor)) / d_tick).to_integral_value(mode)
        merged[ticks] = merged.get(ticks, 0.0) + size
    ordered = sorted(merged.items(), reverse=not up)[:MAX_LEVELS]
    return [[float(t * d_tick), round(s, 12)] for t, s in ordered]


def build(data: Path) -> dict[str, Any]:
    books = {
        key: (data / "books" / f, book_at(read_incremental_l2(data / "books" / f)))
        for key, (f, _) in FILES.items()
    }
    mids = {key: snap.mid for key, (_, snap) in books.items()}
    spot_mids = {v: mids[(v, s)] for v, s in books if s == SPOT}
    common = round(statistics.median(m for m in spot_mids.values() if m is not None), 1)
    all_rules = rules(data)
    fees = {**CCXT_TAKER, ("okx", SPOT): okx_taker(data)}
    markets = []
    for (venue, symbol), (path, snap) in books.items():
        anchor = spot_mids[FILES[(venue, symbol)][1]]
        assert anchor is not None
        factor = common / anchor
        tick = all_rules[(venue, symbol)]["price_tick"]
        updates = read_incremental_l2(path)
        markets.append(
            {
                "venue": venue,
                "symbol": symbol,
                "taker_fee": fees[(venue, symbol)],
                "fee_source": "ccxt's taker fee for this market (what a live quote uses)",
                "rules": all_rules[(venue, symbol)],
                "recorded_file": path.name,
                "recorded_from": format_us(float(updates.local_timestamp[0])),
                "recorded_to": format_us(float(updates.local_timestamp[-1])),
                "book_time_ms": snap.local_timestamp,
                "original_mid": mids[(venue, symbol)],
                "recentre_factor": factor,
                "bids": recentre(snap.bids, factor, tick, up=False),
                "asks": recentre(snap.asks, factor, tick, up=True),
            }
        )
    return {"note": NOTE, "common_mid": common, "markets": markets}


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
    sample = build(data)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(sample, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB), common mid {sample['common_mid']}")


if __name__ == "__main__":
    main()
