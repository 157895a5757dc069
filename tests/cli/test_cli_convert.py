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
    assert "derived from real recorded" in result.stderr


def test_convert_exact_output_and_table():
    result = runner.invoke(
        app, ["convert", "USDC", "ETH", "25", "--out", "--sample", "--max-hops", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "25 ETH" in result.stdout and "Paths considered" in result.stdout


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
