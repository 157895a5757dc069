"""Uniswap v2 and v3 swap arithmetic, integer for integer as the contracts compute it.

Python integers are exact, so each Solidity expression is reproduced with explicit floor
division, explicit rounding up, and the contracts' own overflow branches (uint256), which
change the rounding of `getNextSqrtPriceFromAmount0RoundingUp`. A quote computed here equals
what the pool pays, to the wei (tests/onchain compares against the deployed contracts).

v2 (UniswapV2Library.getAmountOut), fee 0.3 %:

    out = ⌊ in·997·R_out / (R_in·1000 + in·997) ⌋

v3 (UniswapV3Pool.swap): the price moves through tick ranges; inside a range of active
liquidity L a swap is the constant-product curve of virtual reserves x = L/√P, y = L·√P.
`computeSwapStep` (SwapMath) moves √P towards the next initialized tick (or the end of the
bitmap word, as `nextInitializedTickWithinOneWord` does), crossing a tick adds its
liquidityNet (negated when moving down).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MIN_TICK = -887272
MAX_TICK = 887272
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342
Q96 = 1 << 96
UINT256 = 1 << 256


def v2_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """UniswapV2Library.getAmountOut (fee 30 bps = 997/1000)."""
    if amount_in <= 0:
        return 0
    kept = 10_000 - fee_bps  # 9970 for the standard pair: same ratio as 997/1000
    with_fee = amount_in * kept
    return (with_fee * reserve_out) // (reserve_in * 10_000 + with_fee)


def v2_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """UniswapV2Library.getAmountIn: an input that buys at least `amount_out`."""
    if amount_out >= reserve_out:
        raise ValueError("amount_out must be below the output reserve")
    kept = 10_000 - fee_bps
    return (reserve_in * amount_out * 10_000) // ((reserve_out - amount_out) * kept) + 1


def _div_up(a: int, b: int) -> int:
    return -(-a // b)


def mul_div(a: int, b: int, d: int) -> int:
    """FullMath.mulDiv: ⌊a·b/d⌋ with a 512-bit intermediate (exact in Python)."""
    return (a * b) // d


def mul_div_up(a: int, b: int, d: int) -> int:
    """FullMath.mulDivRoundingUp: ⌈a·b/d⌉."""
    return _div_up(a * b, d)


_TICK_FACTORS = (
    0xFFF97272373D413259A46990580E213A,
    0xFFF2E50F5F656932EF12357CF3C7FDCC,
    0xFFE5CACA7E10E4E61C3624EAA0941CD0,
    0xFFCB9843D60F6159C9DB58835C926644,
    0xFF973B41FA98C081472E6896DFB254C0,
    0xFF2EA16466C96A3843EC78B326B52861,
    0xFE5DEE046A99A2A811C461F1969C3053,
    0xFCBE86C7900A88AEDCFFC83B479AA3A4,
    0xF987A7253AC413176F2B074CF7815E54,
    0xF3392B0822B70005940C7A398E4B70F3,
    0xE7159475A2C29B7443B29C7FA6E889D9,
    0xD097F3BDFD2022B8845AD8F792AA5825,
    0xA9F746462D870FDF8A65DC1F90E061E5,
    0x70D869A156D2A1B890BB3DF62BAF32F7,
    0x31BE135F97D08FD981231505542FCFA6,
    0x9AA508B5B7A84E1C677DE54F3E99BC9,
    0x5D6AF8DEDB81196699C329225EE604,
    0x2216E584F5FA1EA926041BEDFE98,
    0x48A170391F7DC42444E8FA2,
)


def sqrt_ratio_at_tick(tick: int) -> int:
    """TickMath.getSqrtRatioAtTick: √(1.0001^tick)·2⁹⁶, rounded up."""
    abs_tick = abs(tick)
    if abs_tick > MAX_TICK:
        raise ValueError(f"tick {tick} outside [{MIN_TICK}, {MAX_TICK}]")
    ratio = 0xFFFCB933BD6FAD37AA2D162D1A594001 if abs_tick & 1 else 1 << 128
    for bit, factor in enumerate(_TICK_FACTORS, start=1):
        if abs_tick & (1 << bit):
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = (UINT256 - 1) // ratio
    return (ratio >> 32) + (0 if ratio % (1 << 32) == 0 else 1)


def tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """TickMath.getTickAtSqrtRatio: the greatest tick whose ratio is <= the price."""
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise ValueError("sqrt price outside the ratio bounds")
    lo, hi = MIN_TICK, MAX_TICK
    while lo < hi:  # the contract's log2 approximation is exact to this definition
        mid = (lo + hi + 1) // 2
        if sqrt_ratio_at_tick(mid) <= sqrt_price_x96:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _next_sqrt_from_amount0_up(sqrt_p: int, liquidity: int, amount: int, add: bool) -> int:
    if amount == 0:
        return sqrt_p
    numerator1 = liquidity << 96
    product = amount * sqrt_p
    if add:
        if product < UINT256:
            denominator = numerator1 + product
            if denominator < UINT256:
                return mul_div_up(numerator1, sqrt_p, denominator)
        return _div_up(numerator1, numerator1 // sqrt_p + amount)
    if product >= UINT256 or numerator1 <= product:
        raise ValueError("the pool cannot pay that much (price would pass zero)")
    return mul_div_up(numerator1, sqrt_p, numerator1 - product)


def _next_sqrt_from_amount1_down(sqrt_p: int, liquidity: int, amount: int, add: bool) -> int:
    if add:
        quotient = (
            (amount << 96) // liquidity if amount < (1 << 160) else mul_div(amount, Q96, liquidity)
        )
        return sqrt_p + quotient
    quotient = (
        _div_up(amount << 96, liquidity)
        if amount < (1 << 160)
        else mul_div_up(amount, Q96, liquidity)
    )
    if sqrt_p <= quotient:
        raise ValueError("the pool cannot pay that much (price would pass zero)")
    return sqrt_p - quotient


def amount0_delta(a: int, b: int, liquidity: int, round_up: bool) -> int:
    """SqrtPriceMath.getAmount0Delta: L·(√b − √a)/(√a·√b) in token0."""
    if a > b:
        a, b = b, a
    numerator1, numerator2 = liquidity << 96, b - a
    if round_up:
        return _div_up(mul_div_up(numerator1, numerator2, b), a)
    return mul_div(numerator1, numerator2, b) // a


def amount1_delta(a: int, b: int, liquidity: int, round_up: bool) -> int:
    """SqrtPriceMath.getAmount1Delta: L·(√b − √a) in token1."""
    if a > b:
        a, b = b, a
    if round_up:
        return mul_div_up(liquidity, b - a, Q96)
    return mul_div(liquidity, b - a, Q96)


def compute_swap_step(
    sqrt_current: int, sqrt_target: int, liquidity: int, amount_remaining: int, fee_pips: int
) -> tuple[int, int, int, int]:
    """SwapMath.computeSwapStep -> (sqrt_next, amount_in, amount_out, fee_amount)."""
    zero_for_one = sqrt_current >= sqrt_target
    exact_in = amount_remaining >= 0
    amount_in = amount_out = 0
    if exact_in:
        less_fee = mul_div(amount_remaining, 1_000_000 - fee_pips, 1_000_000)
        amount_in = (
            amount0_delta(sqrt_target, sqrt_current, liquidity, True)
            if zero_for_one
            else amount1_delta(sqrt_current, sqrt_target, liquidity, True)
        )
        if less_fee >= amount_in:
            sqrt_next = sqrt_target
        elif zero_for_one:
            sqrt_next = _next_sqrt_from_amount0_up(sqrt_current, liquidity, less_fee, True)
        else:
            sqrt_next = _next_sqrt_from_amount1_down(sqrt_current, liquidity, less_fee, True)
    else:
        amount_out = (
            amount1_delta(sqrt_target, sqrt_current, liquidity, False)
            if zero_for_one
            else amount0_delta(sqrt_current, sqrt_target, liquidity, False)
        )
        if -amount_remaining >= amount_out:
            sqrt_next = sqrt_target
        elif zero_for_one:
            sqrt_next = _next_sqrt_from_amount1_down(
                sqrt_current, liquidity, -amount_remaining, False
            )
        else:
            sqrt_next = _next_sqrt_from_amount0_up(
                sqrt_current, liquidity, -amount_remaining, False
            )
    reached = sqrt_target == sqrt_next
    if zero_for_one:
        if not (reached and exact_in):
            amount_in = amount0_delta(sqrt_next, sqrt_current, liquidity, True)
        if not (reached and not exact_in):
            amount_out = amount1_delta(sqrt_next, sqrt_current, liquidity, False)
    else:
        if not (reached and exact_in):
            amount_in = amount1_delta(sqrt_current, sqrt_next, liquidity, True)
        if not (reached and not exact_in):
            amount_out = amount0_delta(sqrt_current, sqrt_next, liquidity, False)
    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining
    if exact_in and sqrt_next != sqrt_target:
        fee_amount = amount_remaining - amount_in
    else:
        fee_amount = mul_div_up(amount_in, fee_pips, 1_000_000 - fee_pips)
    return sqrt_next, amount_in, amount_out, fee_amount


@dataclass(frozen=True, slots=True)
class V3State:
    """What a v3 swap depends on: slot0's price and tick, active liquidity, the fee
    (pips, 1e-6), tick spacing, and every initialized tick's liquidityNet.

    `ticks` must hold every initialized tick in [`tick_lo`, `tick_hi`], the range whose
    bitmap words were read; a swap that would leave it raises instead of guessing.
    """

    sqrt_price_x96: int
    tick: int
    liquidity: int
    fee: int
    tick_spacing: int
    ticks: Mapping[int, int]
    tick_lo: int = MIN_TICK
    tick_hi: int = MAX_TICK

    def sorted_ticks(self) -> list[int]:
        return sorted(self.ticks)


@dataclass(frozen=True, slots=True)
class V3Swap:
    """A simulated swap: tokens in (fee included) and out, and the pool state after it."""

    amount_in: int
    amount_out: int
    state: V3State


def _next_tick_in_word(
    tick: int, spacing: int, lte: bool, initialized: Sequence[int]
) -> tuple[int, bool]:
    """TickBitmap.nextInitializedTickWithinOneWord over a sorted list of initialized ticks."""
    compressed = tick // spacing  # Python floors: the contract's round towards -inf
    if lte:
        word_start = (compressed >> 8) << 8
        i = bisect_right(initialized, compressed * spacing) - 1
        if i >= 0 and initialized[i] >= word_start * spacing:
            return initialized[i], True
        return word_start * spacing, False
    start = compressed + 1
    word_end = ((start >> 8) << 8) + 255
    i = bisect_left(initialized, start * spacing)
    if i < len(initialized) and initialized[i] <= word_end * spacing:
        return initialized[i], True
    return word_end * spacing, False


def v3_swap(
    state: V3State,
    zero_for_one: bool,
    amount_specified: int,
    sqrt_price_limit_x96: int | None = None,
) -> V3Swap:
    """UniswapV3Pool.swap's loop: exact input when `amount_specified` > 0, exact output
    when < 0. Returns the amounts as the pool computes them (protocol fee does not change them).
    """
    if amount_specified == 0:
        raise ValueError("amount_specified must not be zero")
    if sqrt_price_limit_x96 is None:
        sqrt_price_limit_x96 = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    exact_in = amount_specified > 0
    initialized = state.sorted_ticks()
    remaining, calculated = amount_specified, 0
    sqrt_p, tick, liquidity = state.sqrt_price_x96, state.tick, state.liquidity
    while remaining != 0 and sqrt_p != sqrt_price_limit_x96:
        start = sqrt_p
        tick_next, is_init = _next_tick_in_word(tick, state.tick_spacing, zero_for_one, initialized)
        tick_next = min(max(tick_next, MIN_TICK), MAX_TICK)
        if not state.tick_lo <= tick_next <= state.tick_hi:
            raise ValueError(
                f"the swap leaves the tick range read from the pool [{state.tick_lo}, "
                f"{state.tick_hi}]: read more bitmap words"
            )
        sqrt_next_tick = sqrt_ratio_at_tick(tick_next)
        beyond = (
            sqrt_next_tick < sqrt_price_limit_x96
            if zero_for_one
            else sqrt_next_tick > sqrt_price_limit_x96
        )
        target = sqrt_price_limit_x96 if beyond else sqrt_next_tick
        sqrt_p, step_in, step_out, fee_amount = compute_swap_step(
            sqrt_p, target, liquidity, remaining, state.fee
        )
        if exact_in:
            remaining -= step_in + fee_amount
            calculated -= step_out
        else:
            remaining += step_out
            calculated += step_in + fee_amount
        if sqrt_p == sqrt_next_tick:
            if is_init:
                net = state.ticks[tick_next]
                liquidity += -net if zero_for_one else net
                if liquidity < 0:
                    raise ValueError("liquidity underflow: the tick data is inconsistent")
            tick = tick_next - 1 if zero_for_one else tick_next
        elif sqrt_p != start:
            tick = tick_at_sqrt_ratio(sqrt_p)
    if exact_in:
        amount_in, amount_out = amount_specified - remaining, -calculated
    else:
        amount_in, amount_out = calculated, remaining - amount_specified
    after = V3State(
        sqrt_p,
        tick,
        liquidity,
        state.fee,
        state.tick_spacing,
        state.ticks,
        state.tick_lo,
        state.tick_hi,
    )
    return V3Swap(amount_in, amount_out, after)
