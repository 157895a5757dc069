"""Offline sample pools (`--pools sample`): SYNTHETIC Uniswap v3 and v2 states, not chain data.

Two WBTC/USDT pools shaped like a real concentrated-liquidity market — most liquidity within
±0.5 % of the price, less out to ±2 % and ±10 %, and a full-range tail — with the real
tokens' decimals (WBTC 8, USDT 6), priced at the books' mid less a few bps. Nothing here was
read from a chain: the states are built from the positions below, so every number can be
reproduced. Their swaps are computed with the same integer math as live pools.
"""

from __future__ import annotations

import math

from liquidroute.venues.pools.uniswap import Pool, PoolSide, V2State
from liquidroute.venues.pools.uniswap_math import (
    MAX_TICK,
    MIN_TICK,
    V3State,
    sqrt_ratio_at_tick,
    tick_at_sqrt_ratio,
)

SAMPLE_POOLS_NOTE = (
    "sample pools: SYNTHETIC WBTC/USDT Uniswap v3 (0.05 %) and v2 (0.3 %) states built from "
    "fixed positions at the books' mid (no chain data)"
)
WBTC_DECIMALS, USDT_DECIMALS = 8, 6
# (half-width of the range as a fraction of price, WBTC deposited on the upper side)
POSITIONS = [(0.005, 6.0), (0.02, 10.0), (0.10, 20.0), (None, 15.0)]
V3_ADDRESS = "0x" + "5a" * 20  # labels, not contracts
V2_ADDRESS = "0x" + "2b" * 20


def _raw_root(price: float) -> float:
    """√(USDT units per WBTC unit): token0 = WBTC, token1 = USDT."""
    return math.sqrt(price * 10 ** (USDT_DECIMALS - WBTC_DECIMALS))


def sample_pools(mid: float, gas_quote: float = 0.0) -> list[PoolSide]:
    """The two synthetic pools, priced so that the v3 pool's mid sits 2 bps under `mid`."""
    spacing = 10
    root = _raw_root(mid * (1 - 2e-4))
    sqrt_x96 = int(root * 2**96)
    tick = tick_at_sqrt_ratio(sqrt_x96)
    nets: dict[int, int] = {}
    active = 0
    for half, wbtc in POSITIONS:
        if half is None:
            lo, hi = (MIN_TICK // spacing + 1) * spacing, (MAX_TICK // spacing) * spacing
        else:
            width = round(math.log1p(half) / math.log(1.0001) / spacing) * spacing
            lo, hi = (tick // spacing) * spacing - width, (tick // spacing) * spacing + width
        upper = sqrt_ratio_at_tick(hi) / 2**96
        liquidity = int(wbtc * 10**WBTC_DECIMALS / (1 / root - 1 / upper))
        nets[lo] = nets.get(lo, 0) + liquidity
        nets[hi] = nets.get(hi, 0) - liquidity
        active += liquidity
    v3 = Pool("uniswap-v3", V3_ADDRESS, "WBTC", "USDT")
    v3.state = V3State(sqrt_x96, tick, active, 500, spacing, nets)
    reserve0 = 25 * 10**WBTC_DECIMALS
    v2_price = mid * (1 + 5e-4)
    v2 = Pool("uniswap-v2", V2_ADDRESS, "WBTC", "USDT")
    v2.state = V2State(reserve0, int(25 * v2_price * 10**USDT_DECIMALS))
    return [
        PoolSide(v3, True, WBTC_DECIMALS, USDT_DECIMALS, gas_quote),
        PoolSide(v2, True, WBTC_DECIMALS, USDT_DECIMALS, gas_quote),
    ]
