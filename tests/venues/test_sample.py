"""The bundled sample: real books, one common mid, real rules and fees, reproducible."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

from liquidroute import route
from liquidroute.errors import UnknownSymbolError
from liquidroute.venues.recorded import static_taker_fee
from liquidroute.venues.sample import (
    SAMPLE_NOTE,
    sample_data,
    sample_markets,
    sample_snapshots,
    sample_venues,
)

ROOT = Path(__file__).resolve().parents[2]


def test_three_real_venues_on_one_mid():
    snaps = sample_snapshots()
    assert sorted(s.venue for s in snaps) == ["binance", "bybit", "okx"]
    mids = [s.mid for s in snaps]
    common = sample_data()["common_mid"]
    for mid in mids:
        assert abs(mid - common) / common < 5e-5  # within a tick or two of the common mid
    assert "not a simultaneous market" in SAMPLE_NOTE


def test_rules_and_fees_are_the_venues_own(shared_data):
    import ccxt

    markets = sample_markets()
    okx = json.loads((shared_data / "markets/okx.markets.jsonl").read_text().splitlines()[0])
    item = next(i for i in okx["items"] if i["instId"] == "BTC-USDT")
    assert markets["okx"].taker_fee == ccxt.okx().parse_market(item)["taker"]
    assert markets["binance"].taker_fee == static_taker_fee("binance")
    assert markets["bybit"].taker_fee == 0.001  # ccxt's bybit spot markets
    assert sample_markets("BTC/USDT:USDT")["bybit"].taker_fee == 0.0006  # its linear swaps
    for market in markets.values():
        assert market.amount_step and market.price_tick and market.min_amount
    assert markets["okx"].price_tick == 0.1 and markets["okx"].min_amount == 1e-5
    assert markets["bybit"].min_notional == 5.0 and markets["bybit"].amount_step == 1e-6
    for snap in sample_snapshots():  # prices sit on the venue's tick
        tick = markets[snap.venue].price_tick
        ticks = snap.asks[:, 0] / tick
        assert abs(ticks - ticks.round()).max() < 1e-6


def test_unknown_symbol():
    bybit = next(v for v in sample_venues() if v.name == "bybit")
    with pytest.raises(
        UnknownSymbolError, match=r"holds only BTC/USDT, BTC/USDT:USDT.*not ETH/USDT"
    ):
        asyncio.run(bybit.snapshot("ETH/USDT"))


def test_one_data_set_behind_every_sample():
    """quote/execute (sample_venues) and convert/serve (sample_graph_*) see the same books."""
    from liquidroute.venues.sample_graph import sample_graph_markets, sample_graph_snapshots

    graph = {(s.venue, s.symbol): s for s in sample_graph_snapshots()}
    for venue in sample_venues():
        for symbol in venue.symbols:
            snap = asyncio.run(venue.snapshot(symbol))
            if ":" in symbol:  # a perpetual is not an asset conversion
                assert (venue.name, symbol) not in graph
                continue
            assert graph[(venue.name, symbol)] is snap
    fees = {(m.venue, m.symbol): m.taker_fee for m in sample_graph_markets()}
    assert fees[("okx", "BTC/USDT")] == sample_markets()["okx"].taker_fee
    assert {"ETH/USDT", "ETH/BTC", "USDC/USDT"} <= {s for _, s in graph}


def test_bybit_perpetual_keeps_its_real_basis(shared_data):
    """Both Bybit books (recorded together) are re-centred by ONE factor: the basis stays."""
    from liquidroute.backtest.book import book_at
    from liquidroute.backtest.data import read_incremental_l2

    books = shared_data / "books"
    spot = book_at(read_incremental_l2(books / "bybit-spot_incremental_book_L2_BTCUSDT.csv.gz"))
    perp = book_at(read_incremental_l2(books / "bybit_incremental_book_L2_BTCUSDT.csv.gz"))
    assert spot.mid and perp.mid
    recorded_basis = perp.mid / spot.mid - 1
    s, p = sample_snapshots()[1], sample_snapshots("BTC/USDT:USDT")[0]
    assert s.venue == p.venue == "bybit" and s.mid and p.mid
    assert p.mid / s.mid - 1 == pytest.approx(recorded_basis, abs=3e-6)  # a tick or so


def test_sample_file_is_what_the_build_script_makes(shared_data):
    spec = importlib.util.spec_from_file_location("build_sample", ROOT / "scripts/build_sample.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = json.loads(json.dumps(module.build(shared_data), separators=(",", ":")))
    assert rebuilt == sample_data()


def test_optimum_beats_or_ties_every_baseline_on_real_books():
    snaps, markets = sample_snapshots(), sample_markets()
    for side in ("buy", "sell"):
        for amount in (0.1, 1, 5, 20, 60):
            q = route(snaps, side, amount, markets=markets)
            for name, cost in q.baselines.items():
                if cost is not None:
                    assert q.savings_bps[name] >= -1e-7, (side, amount, name)


def test_markets_as_a_list_are_matched_by_venue_and_symbol():
    """docs/library.md passes markets as a list (as route_graph takes them): the list of every
    spot market of the sample routes BTC/USDT exactly as the dict of its BTC/USDT markets."""
    from liquidroute.venues.sample import sample_spot

    _, every_market = sample_spot()
    as_dict = route(sample_snapshots(), "buy", 12, markets=sample_markets())
    as_list = route(sample_snapshots(), "buy", 12, markets=every_market)
    assert as_list.total_cost == as_dict.total_cost
    assert [leg.fee for leg in as_list.legs] == [leg.fee for leg in as_dict.legs]
