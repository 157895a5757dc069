"""Read Uniswap v2 pairs and v3 pools over JSON-RPC, batched across pools.

v2: `getReserves`, `token0`, `token1`. v3: `slot0`, `liquidity`, `fee`, `tickSpacing`,
`token0`, `token1`, the `tickBitmap` words around the price and `ticks(t)` for each
initialized tick (its liquidityNet). A first read takes three round trips (immutables and
price, bitmap words, ticks); `refresh` re-reads price, liquidity, bitmap words and the known
ticks of every pool in ONE round trip, and a fourth only when a bitmap word changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from liquidroute.errors import InvalidInputError
from liquidroute.optimizer.pools import PoolCurve
from liquidroute.venues.pools.rpc import Call, JsonRpc
from liquidroute.venues.pools.uniswap_math import (
    MAX_TICK,
    MIN_TICK,
    Q96,
    V3State,
    sqrt_ratio_at_tick,
    v2_amount_in,
    v2_amount_out,
    v3_swap,
)

PoolKind = Literal["uniswap-v2", "uniswap-v3"]
MAX_WORDS = 512  # bitmap words read per v3 pool (256 ticks·spacing each), centred on the price


@dataclass(frozen=True, slots=True)
class V2State:
    """A v2 pair: reserves of token0 and token1 and the fee in bps (30 for Uniswap v2)."""

    reserve0: int
    reserve1: int
    fee_bps: int = 30


@dataclass(slots=True)
class Pool:
    """A pool venue's identity and last-read state (`state` is V2State or V3State)."""

    kind: PoolKind
    address: str
    token0: str = ""
    token1: str = ""
    state: V2State | V3State | None = None
    words: tuple[int, ...] = ()
    bitmap: dict[int, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.address}"


def _word_range(tick: int, spacing: int) -> tuple[int, ...]:
    lo = (MIN_TICK // spacing) >> 8
    hi = (MAX_TICK // spacing) >> 8
    if hi - lo + 1 > MAX_WORDS:
        centre = (tick // spacing) >> 8
        lo, hi = max(lo, centre - MAX_WORDS // 2), min(hi, centre + MAX_WORDS // 2 - 1)
    return tuple(range(lo, hi + 1))


def _initialized(bitmap: dict[int, int], spacing: int) -> list[int]:
    ticks = []
    for word, bits in bitmap.items():
        while bits:
            low = bits & -bits
            ticks.append(((word << 8) + low.bit_length() - 1) * spacing)
            bits ^= low
    return sorted(ticks)


def _head_calls(pool: Pool) -> list[Call]:
    a = pool.address
    if pool.kind == "uniswap-v2":
        return [
            Call(a, "getReserves()", returns=("uint112", "uint112", "uint32")),
            Call(a, "token0()", returns=("address",)),
            Call(a, "token1()", returns=("address",)),
        ]
    return [
        Call(
            a,
            "slot0()",
            returns=("uint160", "int24", "uint16", "uint16", "uint16", "uint8", "bool"),
        ),
        Call(a, "liquidity()", returns=("uint128",)),
        Call(a, "fee()", returns=("uint24",)),
        Call(a, "tickSpacing()", returns=("int24",)),
        Call(a, "token0()", returns=("address",)),
        Call(a, "token1()", returns=("address",)),
    ]


_TICK_RETURNS = ("uint128", "int128", "uint256", "uint256", "int56", "uint160", "uint32", "bool")


def _tick_calls(pool: Pool, ticks: Sequence[int]) -> list[Call]:
    return [Call(pool.address, "ticks(int24)", (t,), _TICK_RETURNS) for t in ticks]


def _word_calls(pool: Pool) -> list[Call]:
    return [Call(pool.address, "tickBitmap(int16)", (w,), ("uint256",)) for w in pool.words]


def read_pools(rpc: JsonRpc, pools: Sequence[Pool]) -> None:
    """First read of every pool's tokens and state (three round trips for any number)."""
    heads = [_head_calls(p) for p in pools]
    answers = rpc.call_many([c for h in heads for c in h])
    spacing: dict[int, tuple[int, int, int, int]] = {}
    at = 0
    for i, (pool, head) in enumerate(zip(pools, heads, strict=True)):
        got = answers[at : at + len(head)]
        at += len(head)
        if pool.kind == "uniswap-v2":
            (r0, r1, _), (t0,), (t1,) = got
            pool.token0, pool.token1, pool.state = t0, t1, V2State(int(r0), int(r1))
            continue
        slot0, (liq,), (fee,), (sp,), (t0,), (t1,) = got
        pool.token0, pool.token1 = t0, t1
        spacing[i] = (int(slot0[0]), int(slot0[1]), int(liq), int(fee))
        pool.words = _word_range(int(slot0[1]), int(sp))
        pool.state = V3State(int(slot0[0]), int(slot0[1]), int(liq), int(fee), int(sp), {})
    v3 = [p for p in pools if p.kind == "uniswap-v3"]
    word_answers = rpc.call_many([c for p in v3 for c in _word_calls(p)])
    at = 0
    for pool in v3:
        pool.bitmap = {w: int(word_answers[at + k][0]) for k, w in enumerate(pool.words)}
        at += len(pool.words)
    _read_ticks(rpc, v3)


def _read_ticks(rpc: JsonRpc, pools: Sequence[Pool]) -> None:
    lists = []
    for pool in pools:
        assert isinstance(pool.state, V3State)
        lists.append(_initialized(pool.bitmap, pool.state.tick_spacing))
    answers = rpc.call_many(
        [c for p, t in zip(pools, lists, strict=True) for c in _tick_calls(p, t)]
    )
    at = 0
    for pool, ticks in zip(pools, lists, strict=True):
        nets = {t: int(answers[at + k][1]) for k, t in enumerate(ticks)}
        at += len(ticks)
        pool.state = _with_range(pool, nets)


def _with_range(pool: Pool, nets: dict[int, int]) -> V3State:
    state = pool.state
    assert isinstance(state, V3State)
    sp = state.tick_spacing
    lo = max(MIN_TICK, (pool.words[0] << 8) * sp)
    hi = min(MAX_TICK, ((pool.words[-1] << 8) + 255) * sp)
    return replace(state, ticks=nets, tick_lo=lo, tick_hi=hi)


def refresh_pools(rpc: JsonRpc, pools: Sequence[Pool]) -> None:
    """Re-read every pool's price, liquidity, reserves, bitmap and known ticks in one round
    trip (a second only for pools whose bitmap changed: positions opened or closed)."""
    calls: list[list[Call]] = []
    for pool in pools:
        if pool.kind == "uniswap-v2":
            calls.append(_head_calls(pool)[:1])
            continue
        state = pool.state
        assert isinstance(state, V3State)
        known = sorted(state.ticks)
        calls.append(_head_calls(pool)[:2] + _word_calls(pool) + _tick_calls(pool, known))
    answers = rpc.call_many([c for group in calls for c in group])
    at = 0
    changed = []
    for pool, group in zip(pools, calls, strict=True):
        got = answers[at : at + len(group)]
        at += len(group)
        if pool.kind == "uniswap-v2":
            ((r0, r1, _),) = got
            pool.state = V2State(int(r0), int(r1))
            continue
        state = pool.state
        assert isinstance(state, V3State)
        slot0, (liq,) = got[0], got[1]
        n_words = len(pool.words)
        bitmap = {w: int(got[2 + k][0]) for k, w in enumerate(pool.words)}
        known = sorted(state.ticks)
        nets = {t: int(got[2 + n_words + k][1]) for k, t in enumerate(known)}
        pool.state = replace(
            state, sqrt_price_x96=int(slot0[0]), tick=int(slot0[1]), liquidity=int(liq), ticks=nets
        )
        if bitmap != pool.bitmap:
            pool.bitmap = bitmap
            changed.append(pool)
    if changed:
        _read_ticks(rpc, changed)


GAS_UNITS = {"uniswap-v2": 110_000, "uniswap-v3": 150_000}  # typical single-swap gas (estimates)


@dataclass(frozen=True, slots=True)
class PoolSide:
    """A pool seen as a venue for one market: which token is the base, both decimals,
    and the gas a swap costs in quote currency (units × gas price × native price)."""

    pool: Pool
    base_is_token0: bool
    decimals0: int
    decimals1: int
    gas_quote: float = 0.0

    @property
    def name(self) -> str:
        return self.pool.name

    @property
    def base_decimals(self) -> int:
        return self.decimals0 if self.base_is_token0 else self.decimals1

    @property
    def quote_decimals(self) -> int:
        return self.decimals1 if self.base_is_token0 else self.decimals0

    def curve(self) -> PoolCurve:
        """The pool's liquidity profile in base/quote units (floats) for the optimizer.

        With P the raw price (token1 wei per token0 wei) and d0, d1 the decimals: for base =
        token0, √p = √P·10^((d0−d1)/2); for base = token1, √p = 10^((d1−d0)/2)/√P; in both
        L = L_raw·10^(−(d0+d1)/2).
        """
        state = self.pool.state
        scale_l = 10.0 ** (-(self.decimals0 + self.decimals1) / 2)
        shift = 10.0 ** ((self.decimals0 - self.decimals1) / 2)
        if isinstance(state, V2State):
            raw_root = math.sqrt(state.reserve1 / state.reserve0)
            roots_raw = np.array([0.0, math.inf])
            liq = np.array([math.sqrt(state.reserve0 * state.reserve1) * scale_l])
            fee = state.fee_bps / 1e4
        elif isinstance(state, V3State):
            raw_root = state.sqrt_price_x96 / Q96
            roots_raw, liq_raw = _v3_ranges(state)
            liq = liq_raw * scale_l
            fee = state.fee / 1e6
        else:
            raise ValueError(f"pool {self.name} has not been read yet")
        if self.base_is_token0:
            roots, root = roots_raw * shift, raw_root * shift
        else:
            with np.errstate(divide="ignore"):
                roots = (1.0 / roots_raw[::-1]) * shift**-1
            liq, root = liq[::-1], shift**-1 / raw_root
        return PoolCurve(self.name, roots, liq, root, fee, self.gas_quote)

    def exact_trade(self, side: str, base_amount: float) -> tuple[int, int]:
        """(base wei, quote wei) of the swap the pool would execute, integer-exact: a buy
        is an exact-output swap of ⌊base⌋ wei, a sell an exact-input swap."""
        base_wei = round(base_amount * 10**self.base_decimals)  # the nearest wei
        if base_wei <= 0:
            return 0, 0
        state = self.pool.state
        buy = side == "buy"
        if isinstance(state, V2State):
            r_base, r_quote = (
                (state.reserve0, state.reserve1)
                if self.base_is_token0
                else (state.reserve1, state.reserve0)
            )
            if buy:
                return base_wei, v2_amount_in(base_wei, r_quote, r_base, state.fee_bps)
            return base_wei, v2_amount_out(base_wei, r_base, r_quote, state.fee_bps)
        assert isinstance(state, V3State)
        # buying token0 means paying token1: price up, zero_for_one False
        zero_for_one = (not buy) if self.base_is_token0 else buy
        swap = v3_swap(state, zero_for_one, -base_wei if buy else base_wei)
        return (swap.amount_out, swap.amount_in) if buy else (swap.amount_in, swap.amount_out)


def _v3_ranges(state: V3State) -> tuple[np.ndarray, np.ndarray]:
    """Raw √P boundaries of the read tick window and the active liquidity between them."""
    ticks = sorted(t for t in state.ticks if state.tick_lo < t < state.tick_hi)
    bounds = [state.tick_lo, *ticks, state.tick_hi]
    above = [t for t in ticks if t > state.tick]
    below = [t for t in ticks if t <= state.tick]
    liq: dict[int, int] = {}  # liquidity of the range starting at each boundary
    current = state.liquidity
    start = below[-1] if below else state.tick_lo
    liq[start] = current
    for t in above:
        current += state.ticks[t]
        liq[t] = current
    current = state.liquidity
    for lower, upper in zip(reversed([state.tick_lo, *below[:-1]]), reversed(below), strict=True):
        current -= state.ticks[upper]
        liq[lower] = current
    roots = np.array([sqrt_ratio_at_tick(t) / Q96 for t in bounds])
    values = np.array([float(max(liq.get(t, 0), 0)) for t in bounds[:-1]])
    return roots, values


def read_decimals(rpc: JsonRpc, tokens: Sequence[str]) -> dict[str, int]:
    """ERC-20 `decimals()` of each token, one round trip."""
    answers = rpc.call_many([Call(t, "decimals()", returns=("uint8",)) for t in tokens])
    return {t: int(a[0]) for t, a in zip(tokens, answers, strict=True)}


def parse_pool_specs(text: str) -> list[Pool]:
    """`uniswap-v3:0xADDRESS,uniswap-v2:0xADDRESS` -> pools (not yet read)."""
    pools = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, sep, address = part.partition(":")
        if not sep or kind not in ("uniswap-v2", "uniswap-v3"):
            raise InvalidInputError(
                f"--pools: {part!r} is not KIND:ADDRESS with KIND uniswap-v2 or uniswap-v3"
            )
        if not (address.startswith("0x") and len(address) == 42):
            raise InvalidInputError(f"--pools: {address!r} is not a 0x-prefixed 20-byte address")
        try:
            int(address, 16)
        except ValueError:
            raise InvalidInputError(f"--pools: {address!r} is not hexadecimal") from None
        pools.append(Pool(kind, address))  # type: ignore[arg-type]
    if not pools:
        raise InvalidInputError("--pools is empty: give KIND:ADDRESS[,KIND:ADDRESS...]")
    return pools


ALIASES = {"WETH": "ETH", "WBTC": "BTC"}


def pool_sides(
    rpc: JsonRpc,
    pools: Sequence[Pool],
    base: str,
    quote: str,
    *,
    tokens: dict[str, str] | None = None,
    gas_price_wei: int | None = None,
    native_price: float = 0.0,
) -> list[PoolSide]:
    """Read `pools` and orient each for the market base/quote.

    A pool's tokens are matched to `base` and `quote` by `tokens` (SYMBOL -> address) or by
    their ERC-20 `symbol()` (WETH counts as ETH, WBTC as BTC). Gas per swap in quote currency
    = GAS_UNITS x gas price (the node's `eth_gasPrice` unless given) x `native_price`
    (quote per native token; 0 leaves gas out).
    """
    read_pools(rpc, pools)
    addresses = sorted({t for p in pools for t in (p.token0, p.token1)})
    calls = [Call(t, "decimals()", returns=("uint8",)) for t in addresses]
    calls += [Call(t, "symbol()", returns=("string",)) for t in addresses]
    answers = rpc.call_many(calls)
    decimals = {t: int(a[0]) for t, a in zip(addresses, answers[: len(addresses)], strict=True)}
    symbols = {t: str(a[0]) for t, a in zip(addresses, answers[len(addresses) :], strict=True)}
    by_address = {v.lower(): k.upper() for k, v in (tokens or {}).items()}
    if gas_price_wei is None:
        gas_price_wei = int(rpc.request("eth_gasPrice", []), 16)

    def symbol_of(address: str) -> str:
        name = by_address.get(address.lower()) or symbols[address].upper()
        return ALIASES.get(name, name)

    sides = []
    for pool in pools:
        s0, s1 = symbol_of(pool.token0), symbol_of(pool.token1)
        want = {ALIASES.get(base.upper(), base.upper()), ALIASES.get(quote.upper(), quote.upper())}
        if {s0, s1} != want:
            raise InvalidInputError(
                f"pool {pool.name} trades {s0}/{s1}, not {base}/{quote}: pick a pool of "
                f"this market or name its tokens with --token SYMBOL=ADDRESS"
            )
        gas = GAS_UNITS[pool.kind] * gas_price_wei / 1e18 * native_price
        base_is_token0 = s0 == ALIASES.get(base.upper(), base.upper())
        sides.append(
            PoolSide(pool, base_is_token0, decimals[pool.token0], decimals[pool.token1], gas)
        )
    return sides
