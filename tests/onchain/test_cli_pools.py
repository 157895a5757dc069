"""`quote --pools ... --rpc ...`: the real recorded Binance book and two pools on anvil.

The pools' tokens are named BTC and USDT with --token and priced near the recording's mid,
so one quote splits across a real book and real Uniswap contracts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app
from liquidroute.venues.pools.uniswap_math import sqrt_ratio_at_tick
from tests.conftest import BOOK_FILES
from tests.onchain.chain import Chain, Uniswap

E18 = 10**18
runner = CliRunner()


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Chain, Uniswap, str, str]]:
    chain = Chain()
    uni = Uniswap(chain)
    # token1 (USDT) per token0 (BTC), just under the recording's mid (61,686) less the pool fee
    tick = round(math.log(61_520) / math.log(1.0001) / 60) * 60
    pool = uni.v3_pool(3000, sqrt_ratio_at_tick(tick))
    for width, btc in [(600, 3), (3000, 10), (12000, 30)]:
        uni.add_position(3000, tick - width, tick + width, btc * E18, btc * 61_520 * E18)
    pair = uni.v2_pair(5 * E18, 5 * 61_500 * E18)
    yield chain, uni, pool, pair
    chain.close()


def _args(deployed, *extra: str) -> list[str]:
    chain, uni, pool, pair = deployed
    return [
        "quote",
        "BTC/USDT",
        "buy",
        "4",
        "--books",
        str(BOOK_FILES["binance"]),
        "--pools",
        f"uniswap-v3:{pool},uniswap-v2:{pair}",
        "--rpc",
        chain.url,
        "--token",
        f"BTC={uni.token0}",
        "--token",
        f"USDT={uni.token1}",
        *extra,
    ]


def test_quote_splits_across_the_recorded_book_and_the_pools(deployed) -> None:
    _, _, pool, pair = deployed
    result = runner.invoke(app, [*_args(deployed), "--json", "--gas-price-gwei", "0"])
    assert result.exit_code == 0, result.output
    quote = json.loads(result.stdout)
    venues = {leg["venue"] for leg in quote["legs"]}
    assert {"binance", f"uniswap-v3:{pool}", f"uniswap-v2:{pair}"} <= venues
    assert quote["filled"] == pytest.approx(4.0, rel=1e-9)


def test_gas_is_charged_per_pool_used_and_can_rule_a_pool_out(deployed) -> None:
    cheap = _args(deployed, "--json", "--gas-price-gwei", "1", "--native-price", "3000")
    quote = json.loads(runner.invoke(app, cheap).stdout)
    pools_used = {leg["venue"] for leg in quote["legs"]} - {"binance"}
    assert pools_used and set(quote["fixed_costs"]) == pools_used
    gas = {
        v: 150_000 * 1e-9 * 3000 if v.startswith("uniswap-v3") else 110_000 * 1e-9 * 3000
        for v in pools_used
    }
    assert quote["fixed_costs"] == pytest.approx(gas, rel=1e-12)
    dear = _args(deployed, "--json", "--gas-price-gwei", "3000", "--native-price", "3000")
    quote = json.loads(runner.invoke(app, dear).stdout)
    assert {leg["venue"] for leg in quote["legs"]} == {"binance"}  # 1,350 USDT a swap


@pytest.mark.parametrize(
    ("extra", "code", "text"),
    [
        (["--pools", "uniswap-v9:0x00"], 2, "KIND:ADDRESS"),
        (["--pools", "uniswap-v3:0x" + "1" * 40], 2, "--rpc"),
        (["--pools", "uniswap-v3:0x" + "1" * 40, "--rpc", "http://127.0.0.1:9"], 1, "127.0.0.1:9"),
    ],
)
def test_bad_pool_input_is_one_clear_line(extra: list[str], code: int, text: str) -> None:
    args = ["quote", "BTC/USDT", "buy", "1", *extra]
    result = runner.invoke(app, args, env={"LIQUIDROUTE_RPC_URL": ""})
    assert result.exit_code == code, result.output
    assert text in result.output and "Traceback" not in result.output
