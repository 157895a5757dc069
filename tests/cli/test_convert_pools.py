"""`liquidroute convert --sample --pools sample`: multi-hop through books and the synthetic
pools, checked against route_graph called directly and against each pool's own integer swap
math (an independent check: the CLI prices pool legs on float chords of the curve)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from typer.testing import CliRunner

from liquidroute import route_graph
from liquidroute.cli.app import app
from liquidroute.cli.convert import POOL_TOLERANCE
from liquidroute.router.route import consolidated_mid
from liquidroute.venues.pools.sample import sample_pools
from liquidroute.venues.pools.uniswap import PoolSide
from liquidroute.venues.sample import sample_spot

runner = CliRunner()


def sample_sides() -> list[PoolSide]:
    snaps, _ = sample_spot()
    mid = consolidated_mid([s for s in snaps if s.symbol == "BTC/USDT"])
    assert mid is not None
    return sample_pools(mid)


def convert_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["convert", *args, "--sample", "--pools", "sample", "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def pool_legs(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [leg for hop in data["hops"] for leg in hop["legs"] if leg["venue"] in POOL_NAMES]


POOL_NAMES = {side.name for side in sample_sides()}


def check_against_integer_math(leg: dict[str, Any], sides: dict[str, PoolSide]) -> None:
    """The leg's quote amount is the pool's integer swap of its base amount, to the stated
    tolerance (plus one base wei's worth for rounding the base to the wei), and never
    better for the trader than the pool (the chords lie on the pool's side of its curve)."""
    side = sides[leg["venue"]]
    _, quote_wei = side.exact_trade(leg["side"], leg["base_amount"])
    exact = quote_wei / 10**side.quote_decimals
    quote = leg["amount_in"] if leg["side"] == "buy" else leg["amount_out"]
    wei_worth = leg["avg_price"] * 10.0**-side.base_decimals + 10.0**-side.quote_decimals
    assert quote == pytest.approx(exact, rel=POOL_TOLERANCE, abs=wei_worth)
    if leg["side"] == "buy":  # paid at least what the pool charges
        assert quote >= exact * (1 - 1e-12) - wei_worth
    else:  # received at most what the pool pays
        assert quote <= exact * (1 + 1e-12) + wei_worth
    base = leg["amount_out"] if leg["side"] == "buy" else leg["amount_in"]
    assert base == pytest.approx(leg["base_amount"], rel=1e-12)


@pytest.mark.parametrize(
    ("source", "target", "amount", "bridges"),
    [
        ("USDC", "BTC", 2_000_000.0, ["ETH", "USDT"]),  # USDC -> USDT on books -> BTC on a pool
        ("ETH", "USDT", 300.0, ["BTC", "USDC"]),  # ETH -> BTC on a book -> USDT on a pool
    ],
)
def test_convert_through_pools_equals_route_graph_and_the_pools_integer_math(
    source: str, target: str, amount: float, bridges: list[str]
) -> None:
    data = convert_json(source, target, f"{amount:g}")
    snaps, markets = sample_spot()
    sides = sample_sides()
    lib = route_graph(
        snaps,
        source,
        target,
        markets=markets,
        amount_in=amount,
        bridges=bridges,
        pools=[("BTC/USDT", s.curve()) for s in sides],
    )
    without = route_graph(snaps, source, target, markets=markets, amount_in=amount, bridges=bridges)
    assert data["amount_out"] == pytest.approx(lib.amount_out, rel=1e-12)
    assert lib.amount_out > without.amount_out * (1 + 1e-6)  # the pools matter here
    legs = pool_legs(data)
    assert legs, "the route uses no pool"
    assert sum(leg["amount_in"] for leg in legs) > amount * 1e-3 * (
        1 if source == "USDC" else 1 / 3000
    )
    by_name = {s.name: s for s in sides}
    into = defaultdict(float)  # all that flows out of each asset
    for hop in data["hops"]:
        for leg in hop["legs"]:
            into[leg["asset_in"]] += leg["amount_in"]
    for leg in legs:  # no solver-tolerance sliver (the LP once sent 0.0095 USDT to the v2 pair)
        assert leg["amount_in"] >= 1e-7 * into[leg["asset_in"]], leg
        check_against_integer_math(leg, by_name)
        fee = by_name[leg["venue"]].curve().fee  # the pool fee inside the leg's price
        quote = leg["amount_in"] if leg["side"] == "buy" else leg["amount_out"] / (1 - fee)
        assert leg["fee"] == pytest.approx(quote * fee, rel=1e-12)
    # the paths add up to the whole route
    assert sum(p["flow_out"] for p in data["paths"]) == pytest.approx(data["amount_out"], rel=1e-9)
    assert sum(p["flow_in"] for p in data["paths"]) == pytest.approx(data["amount_in"], rel=1e-9)
    assert data["amount_in"] == pytest.approx(amount, rel=1e-9)
    # what goes into each intermediate asset comes out of it
    flow: defaultdict[str, float] = defaultdict(float)
    for hop in data["hops"]:
        for leg in hop["legs"]:
            flow[leg["asset_in"]] -= leg["amount_in"]
            flow[leg["asset_out"]] += leg["amount_out"]
    for asset, net in flow.items():
        if asset not in (source, target):
            assert net == pytest.approx(0.0, abs=amount * 1e-9 * (1 if source == "USDC" else 3000))
    assert flow[target] == pytest.approx(data["amount_out"], rel=1e-12)
    assert {p["venue"] for p in data["pools"]} == POOL_NAMES
    assert {p["fee"] for p in data["pools"]} == {0.0005, 0.003}
    assert "not to the wei" in data["pool_pricing"]


def test_exact_output_through_pools() -> None:
    data = convert_json("USDC", "BTC", "30", "--out")
    assert data["amount_out"] == pytest.approx(30.0, rel=1e-9)
    assert pool_legs(data)
    by_name = {s.name: s for s in sample_sides()}
    for leg in pool_legs(data):
        check_against_integer_math(leg, by_name)


def test_table_names_the_pool_legs_and_how_they_are_priced() -> None:
    result = runner.invoke(
        app,
        ["convert", "USDC", "BTC", "2000000", "--sample", "--pools", "sample"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    v3 = next(s for s in sample_sides() if s.pool.kind == "uniswap-v3")
    assert f"{v3.name} (0.05 %)" in result.stdout
    assert "USDT->BTC" in result.stdout and "USDC->USDT" in result.stdout
    assert "not to the wei" in result.stdout and "gas is not charged" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["USDC", "USDT", "1000", "--sample", "--pools", "sample", "--max-hops", "1"], 2,
         "is on no path from USDC to USDT within 1 hop(s)"),
        (["USDC", "BTC", "1000", "--sample", "--pools", "sample", "--bridges", "ETH"], 2,
         "is on no path from USDC to BTC"),
        (["USDT", "BTC", "100", "--pools", "sample"], 2, "add a book source (--sample)"),
        (["USDT", "BTC", "100", "--sample", "--pools", "uniswap-v3:0x" + "1" * 40], 2,
         "--pools needs --rpc URL"),
        (["USDT", "BTC", "100", "--sample", "--pools", "uniswap-v9:0x00"], 2, "KIND:ADDRESS"),
        (["USDT", "BTC", "100", "--sample", "--pools",
          f"uniswap-v3:0x{'1' * 40},uniswap-v3:0x{'1' * 40}", "--rpc", "http://127.0.0.1:9"], 2,
         "twice: give each pool once"),
        (["USDT", "BTC", "100", "--sample", "--pools", "uniswap-v3:0x" + "1" * 40,
          "--rpc", "http://127.0.0.1:9"], 1, "127.0.0.1:9"),
    ],
)  # fmt: skip
def test_bad_pool_input_is_one_clear_line(args: list[str], code: int, words: str) -> None:
    result = runner.invoke(app, ["convert", *args], env={"LIQUIDROUTE_RPC_URL": ""})
    assert result.exit_code == code, result.output
    assert words in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
