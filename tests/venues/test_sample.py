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


def test_rules_and_fees_are_the_venues_own():
    markets = sample_markets()
    for venue, market in markets.items():
        assert market.taker_fee == static_taker_fee(venue)
        assert market.amount_step and market.price_tick and market.min_amount
    assert markets["okx"].price_tick == 0.1 and markets["okx"].min_amount == 1e-5
    assert markets["bybit"].min_notional == 5.0 and markets["bybit"].amount_step == 1e-6
    for snap in sample_snapshots():  # prices sit on the venue's tick
        tick = markets[snap.venue].price_tick
        ticks = snap.asks[:, 0] / tick
        assert abs(ticks - ticks.round()).max() < 1e-6


def test_unknown_symbol():
    with pytest.raises(UnknownSymbolError, match="only BTC/USDT"):
        asyncio.run(sample_venues()[0].snapshot("ETH/USDT"))


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
