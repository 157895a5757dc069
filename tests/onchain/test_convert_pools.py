"""`convert --pools ... --rpc ...` on anvil: USDC -> USDT on the sample's books, USDT -> BTC
on a real Uniswap v3 pool and v2 pair, each pool leg's predicted output checked against the
node's own quote of the same swap (eth_call of the v3 SwapRouter / v2 Router02). The chain
is conftest's `world` (pools at 59,440 USDT/BTC, under the sample's asks), reverted after
each test."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app
from liquidroute.cli.convert import POOL_TOLERANCE
from tests.onchain.conftest import World

E18 = 10**18
runner = CliRunner()


def args(d: World, *extra: str, tokens: bool = True, v2: bool = True) -> list[str]:
    named = ["--token", f"BTC={d.uni.token0}", "--token", f"USDT={d.uni.token1}"]
    return [
        "convert",
        *extra,
        "--sample",
        "--pools",
        f"uniswap-v3:{d.v3}" + (f",uniswap-v2:{d.v2}" if v2 else ""),
        "--rpc",
        d.chain.url,
        *(named if tokens else []),
    ]


def node_quote(d: World, leg: dict[str, Any]) -> float:
    """The node's answer for the leg's swap: a buy (USDT -> BTC) as an exact-input swap of
    the leg's USDT, a sell (BTC -> USDT) of its BTC; the output in whole tokens."""
    uni, chain = d.uni, d.chain
    wei_in = round(leg["amount_in"] * E18)
    t_in, t_out = (uni.token1, uni.token0) if leg["side"] == "buy" else (uni.token0, uni.token1)
    if leg["venue"].startswith("uniswap-v3"):
        params = ((t_in, t_out, 3000, chain.me, 2**40, wei_in, 0, 0),)
        (out,) = chain.call(uni.router, uni.EXACT_IN, params, ("uint256",))
    else:
        fn = "getAmountsOut(uint256,address[])"
        (amounts,) = chain.call(d.v2_router, fn, (wei_in, [t_in, t_out]), ("uint256[]",))
        out = amounts[-1]
    return int(out) / E18


@pytest.mark.parametrize("order", [["1000000"], ["15", "--out"]])
def test_convert_routes_through_real_pools_as_the_node_quotes_them(
    world: World, order: list[str]
) -> None:
    d = world
    result = runner.invoke(app, [*args(d, "USDC", "BTC", *order), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    legs = [leg for hop in data["hops"] for leg in hop["legs"]]
    pool_legs = [leg for leg in legs if leg["venue"].startswith("uniswap-")]
    assert {leg["venue"] for leg in pool_legs} >= {f"uniswap-v3:{d.v3}"}
    assert all(leg["asset_in"] == "USDT" and leg["asset_out"] == "BTC" for leg in pool_legs)
    assert any(leg["symbol"] == "USDC/USDT" for leg in legs)  # the book hop before the pool
    v3 = next(leg for leg in pool_legs if leg["venue"] == f"uniswap-v3:{d.v3}")
    assert v3["amount_out"] > 0.1  # the pool carries a real part of the route (~26k USDT)
    for leg in pool_legs:
        answer = node_quote(d, leg)
        assert leg["amount_out"] == pytest.approx(answer, rel=POOL_TOLERANCE, abs=1e-15)
        assert leg["amount_out"] <= answer * (1 + 1e-12) + 1e-15  # never promised more
    assert {p["kind"] for p in data["pools"]} == {"uniswap-v3", "uniswap-v2"}
    assert {p["symbol"] for p in data["pools"]} == {"BTC/USDT"}


def test_real_pools_alone_without_books(world: World) -> None:
    d = world
    argv = [a for a in args(d, "USDT", "BTC", "5000", "--json") if a != "--sample"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    legs = [leg for hop in data["hops"] for leg in hop["legs"]]
    assert legs and all(leg["venue"].startswith("uniswap-") for leg in legs)
    assert data["amount_out"] == pytest.approx(sum(node_quote(d, leg) for leg in legs), rel=1e-8)


def test_table_shows_the_pool_legs(world: World) -> None:
    result = runner.invoke(app, args(world, "USDC", "BTC", "1000000"), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"uniswap-v3:{world.v3} (0.3 %)" in result.stdout
    assert "Pools: 2 given" in result.stdout


@pytest.mark.parametrize(
    ("named", "v2", "words"),
    [
        ([], True, "both tokens are called UNI-V2; name them with --token"),
        (["--token", "BTC={token0}"], False, "UNI-V2 is not FROM, TO, an asset of the books"),
        (["--token", "BTC={token0}", "--token", "XRP={token1}"], False, "XRP is not FROM, TO"),
        # two pools of XRP/BTC: XRP is known (the other pool), but neither pool reaches USDC
        (["--token", "BTC={token0}", "--token", "XRP={token1}"], True, "(XRP/BTC) is on no path"),
    ],
)
def test_unknown_pool_tokens_are_one_clear_line(
    world: World, named: list[str], v2: bool, words: str
) -> None:
    extra = [n.format(token0=world.uni.token0, token1=world.uni.token1) for n in named]
    base = args(world, "USDC", "BTC", "100", tokens=False, v2=v2)
    result = runner.invoke(app, [*base, *extra])
    assert result.exit_code == 2, result.output
    assert words in result.stderr and "Traceback" not in result.output
