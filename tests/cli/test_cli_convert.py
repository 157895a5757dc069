"""`liquidroute convert` on the bundled multi-market sample."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from liquidroute import route_graph
from liquidroute.cli.app import app
from liquidroute.venues.sample_graph import sample_graph_markets, sample_graph_snapshots

runner = CliRunner()


def test_convert_json_equals_library():
    result = runner.invoke(app, ["convert", "USDT", "ETH", "500000", "--sample", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lib = route_graph(
        sample_graph_snapshots(),
        "USDT",
        "ETH",
        markets=sample_graph_markets(),
        amount_in=500_000,
        bridges=["BTC", "USDC"],
    )
    assert data["amount_out"] == pytest.approx(lib.amount_out, rel=1e-9)
    assert data["hops"][0]["asset_in"] == "USDT"
    assert "derived from them" in result.stderr


def test_convert_exact_output_and_table():
    result = runner.invoke(
        app, ["convert", "USDC", "ETH", "25", "--out", "--sample", "--max-hops", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "25 ETH" in result.stdout and "Paths used" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["USDT", "USDT", "5", "--sample"], 2, "both USDT"),
        (["USDT", "XRP", "5", "--sample"], 2, "unknown target asset XRP"),
        (["USDT", "ETH", "0", "--sample"], 2, "AMOUNT must be a positive"),
        (["USDT", "ETH", "5"], 2, "choose exactly one source"),
        (["USDC", "ETH", "100", "--sample", "--max-hops", "1", "--bridges", "BTC"], 0, None),
        (["USDT", "ETH", "1e12", "--sample"], 3, "cannot absorb"),
    ],
)
def test_convert_bad_input(args, code, words):
    result = runner.invoke(app, ["convert", *args])
    assert result.exit_code == code, result.output
    if words:
        assert words in result.stderr and "Traceback" not in result.output


def test_convert_on_live_books_from_a_loopback_exchange(loopback, monkeypatch):
    import json as _json

    monkeypatch.setenv("LIQUIDROUTE_BINANCE_URL", loopback.base_url)
    monkeypatch.setenv(
        "LIQUIDROUTE_BINANCE_OPTIONS",
        _json.dumps({"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}),
    )
    result = runner.invoke(
        app, ["convert", "USDT", "BTC", "60015", "--venues", "binance", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = _json.loads(result.stdout)
    # asks 60010 x 1, 60020 x 5 with Binance's 0.1 % fee: 60015 USDT buys just under 1 BTC
    assert data["amount_out"] == pytest.approx(60015 / (60010 * 1.001), rel=1e-9)
    assert loopback.count("/api/v3/order") == 0
