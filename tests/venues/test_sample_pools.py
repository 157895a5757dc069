"""The offline sample pools (`--pools sample`): synthetic, but priced by the same integer
math as live pools, and routed beside the bundled books."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app
from liquidroute.venues.pools.sample import sample_pools

runner = CliRunner()


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_sample_pool_curves_equal_their_integer_swaps(side: str) -> None:
    for venue in sample_pools(61_700.0):
        curve = venue.curve()
        lam = curve.marginal(side, np.array([curve.root]))[0]  # type: ignore[arg-type]
        factors = np.linspace(1.0002, 1.02, 9) if side == "buy" else np.linspace(0.9998, 0.98, 9)
        base, quote = curve.trade(side, lam * factors)  # type: ignore[arg-type]
        for b, q in zip(base, quote, strict=True):
            base_units, quote_units = venue.exact_trade(side, float(b))
            truncated = abs(b - base_units / 1e8)  # WBTC has 8 decimals: the nearest satoshi
            assert truncated <= 0.5e-8 + 1e-15
            # the float curve may differ from the integer swap by what the cut fraction is
            # worth, plus the pool's own flooring of a fee-adjusted input to whole satoshis
            # (an exact-input sell) and one USDT unit: at most ~2 satoshis' worth
            assert abs(quote_units / 1e6 - q) <= (truncated + 2e-8) * lam * 1.03 + 2e-6


def test_quote_with_sample_pools_routes_books_and_pools() -> None:
    result = runner.invoke(
        app, ["quote", "BTC/USDT", "buy", "20", "--sample", "--pools", "sample", "--json"]
    )
    assert result.exit_code == 0, result.output
    quote = json.loads(result.stdout)
    venues = [leg["venue"] for leg in quote["legs"]]
    assert any(v.startswith("uniswap-v3:") for v in venues)
    assert any(not v.startswith("uniswap") for v in venues)
    assert quote["filled"] == pytest.approx(20.0, rel=1e-6)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["quote", "BTC/USDT", "buy", "1", "--pools", "sample"], "book source"),
        (["quote", "ETH/USDT", "buy", "1", "--sample", "--pools", "sample"], "BTC/USDT"),
    ],
)
def test_sample_pools_refuse_what_they_cannot_price(args: list[str], text: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and text in result.output
