"""Multi-hop through pools (ETH -> USDC -> USDT): `route_graph` with pool edges against an
independent convex program (cvxpy/Clarabel) written with the pools' exact constant-product
curves, not their chords."""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest

from liquidroute import DepthSnapshot, Market, route_graph
from liquidroute.optimizer.graph import pool_edge, pool_grid
from liquidroute.optimizer.pools import PoolCurve

R_ETH, R_USDC = 300.0, 300.0 * 2_500.0  # the ETH/USDC pair
R_C, R_T = 2.0e6, 2.0e6  # the USDC/USDT pair
FEE_A, FEE_B, FEE_BOOK = 0.003, 0.0005, 0.001


def v2(name: str, r_base: float, r_quote: float, fee: float) -> PoolCurve:
    """A constant-product pair as a one-range curve: L = √(R_base·R_quote), √p = √(R_q/R_b)."""
    return PoolCurve(
        name,
        np.array([0.0, math.inf]),
        np.array([math.sqrt(r_base * r_quote)]),
        math.sqrt(r_quote / r_base),
        fee,
    )


def v2_out(amount_in: float, r_in: float, r_out: float, fee: float) -> float:
    """Uniswap v2's getAmountOut in reals."""
    g = (1 - fee) * amount_in
    return r_out * g / (r_in + g)


def books() -> tuple[list[DepthSnapshot], dict[tuple[str, str], Market]]:
    rng = np.random.default_rng(7)
    eth = 2_490.0 - np.cumsum(rng.uniform(0.5, 4.0, 30))  # ETH/USDT bids
    usdc = 0.9996 - np.cumsum(rng.uniform(1e-5, 2e-4, 30))  # USDC/USDT bids
    snaps = [
        DepthSnapshot(
            "cex",
            "ETH/USDT",
            np.column_stack([eth, rng.uniform(0.2, 1.5, 30)]),
            np.column_stack([2_500.0 + np.cumsum(rng.uniform(0.5, 4.0, 30)), np.ones(30)]),
        ),
        DepthSnapshot(
            "cex",
            "USDC/USDT",
            np.column_stack([usdc, rng.uniform(2e3, 2e4, 30)]),
            np.column_stack([1.0 + np.cumsum(rng.uniform(1e-5, 2e-4, 30)), np.full(30, 1e4)]),
        ),
    ]
    markets = {
        ("cex", "ETH/USDT"): Market("cex", "ETH/USDT", FEE_BOOK),
        ("cex", "USDC/USDT"): Market("cex", "USDC/USDT", FEE_BOOK),
    }
    return snaps, markets


def best_usdt(
    snaps: list[DepthSnapshot],
    amount_eth: float,
    eth_into_pool: cp.Expression,
    usdc_out_of_pool: cp.Expression,
    pool_constraints: list[cp.Constraint],
    tol: float,
) -> float:
    """Most USDT from `amount_eth`, sold on the ETH/USDT book or into an ETH/USDC pool
    (given by its input, output and curve constraints); the pool's USDC sold on the
    USDC/USDT book or into pair B, with pair B's exact curve. Pair B's flows are in units of
    its reserves (in = R·α, out = R·ω: ω <= 1 − 1/(1 + γα)), USDC in units of 1e4, so every
    coefficient is O(1)."""
    eth_bids, usdc_bids = snaps[0].bids, snaps[1].bids
    x = cp.Variable(len(eth_bids), nonneg=True)  # ETH sold on the book, per level
    y = cp.Variable(len(usdc_bids), nonneg=True)  # USDC/1e4 sold on the book, per level
    alpha_b, omega_b = cp.Variable(nonneg=True), cp.Variable(nonneg=True)  # pair B
    constraints = [
        *pool_constraints,
        x <= eth_bids[:, 1],
        y <= usdc_bids[:, 1] / 1e4,
        cp.sum(x) + eth_into_pool == amount_eth,
        R_C * alpha_b + 1e4 * cp.sum(y) == usdc_out_of_pool,
        omega_b <= 1 - cp.inv_pos(1 + (1 - FEE_B) * alpha_b),
    ]
    scale = amount_eth * 2_500.0
    usdt = (
        (eth_bids[:, 0] * (1 - FEE_BOOK)) @ x
        + (usdc_bids[:, 0] * (1 - FEE_BOOK) * 1e4) @ y
        + R_T * omega_b
    )
    problem = cp.Problem(cp.Maximize(usdt / scale), constraints)
    problem.solve(solver="CLARABEL", tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol)
    assert problem.status == "optimal", problem.status
    return float(problem.value) * scale


def oracle(snaps: list[DepthSnapshot], amount_eth: float, tol: float = 1e-10) -> float:
    """`best_usdt` through pair A, its exact curve in units of its reserves."""
    alpha_a, omega_a = cp.Variable(nonneg=True), cp.Variable(nonneg=True)
    curve = [omega_a <= 1 - cp.inv_pos(1 + (1 - FEE_A) * alpha_a)]
    return best_usdt(snaps, amount_eth, R_ETH * alpha_a, R_USDC * omega_a, curve, tol)


POOLS = [
    ("ETH/USDC", v2("uniswap-v2:A", R_ETH, R_USDC, FEE_A)),
    ("USDC/USDT", v2("uniswap-v2:B", R_C, R_T, FEE_B)),
]


@pytest.mark.parametrize("amount", [8.0, 20.0, 60.0])
def test_two_hops_through_pools_equal_the_convex_program(amount: float) -> None:
    snaps, markets = books()
    quote = route_graph(snaps, "ETH", "USDT", markets=markets, amount_in=amount, pools=POOLS)
    best = oracle(snaps, amount)
    assert quote.amount_in == pytest.approx(amount, rel=1e-12)
    assert quote.amount_out == pytest.approx(best, rel=1e-9)
    venues = {leg.venue for hop in quote.hops for leg in hop.legs}
    assert {"uniswap-v2:A", "uniswap-v2:B"} <= venues  # the route goes through both pairs
    # every pool leg is what the pair itself pays for its input (getAmountOut), to 1e-9
    for hop in quote.hops:
        for leg in hop.legs:
            if leg.venue == "uniswap-v2:A":
                exact = v2_out(leg.amount_in, R_ETH, R_USDC, FEE_A)
            elif leg.venue == "uniswap-v2:B":
                exact = v2_out(leg.amount_in, R_C, R_T, FEE_B)
            else:
                continue
            assert leg.amount_out == pytest.approx(exact, rel=1e-9)
            assert leg.amount_out <= exact * (1 + 1e-12)  # a chord never beats the pool


def test_without_refinement_the_chords_are_conservative_and_coarser() -> None:
    snaps, markets = books()
    best = oracle(snaps, 20.0)
    coarse = route_graph(
        snaps, "ETH", "USDT", markets=markets, amount_in=20.0, pools=POOLS, pool_refinements=0
    )
    assert coarse.amount_out <= best * (1 + 1e-9)  # chords never promise more than the pools
    assert coarse.amount_out < best * (1 - 1e-9)  # and one grid alone is not exact


def test_pool_edge_levels_are_the_curves_chords() -> None:
    curve = v2("uniswap-v2:A", R_ETH, R_USDC, FEE_A)
    for side in ("buy", "sell"):
        grid = pool_grid(curve, side, 64)
        edge = pool_edge(curve, "ETH/USDC", side, grid)
        base, quote = curve.trade(side, grid)
        assert edge.size == pytest.approx(np.diff(base), rel=1e-12)
        assert edge.price * edge.size == pytest.approx(np.diff(quote), rel=1e-12)
        ordered = np.diff(edge.price)
        assert np.all(ordered > 0) if side == "buy" else np.all(ordered < 0)
        # a full level of a sell is exactly the pair's getAmountOut for its base
        first = v2_out(float(edge.size[0]), R_ETH, R_USDC, FEE_A)
        if side == "sell":
            assert float(edge.price[0] * edge.size[0]) == pytest.approx(first, rel=1e-12)


# a concentrated-liquidity ETH/USDC pool: ranges of √p with their liquidity (the price at 2,500)
V3_PRICES = np.array([1_800.0, 2_200.0, 2_400.0, 2_480.0, 2_560.0, 2_700.0, 3_200.0])
V3_LIQ = np.array([9_000.0, 25_000.0, 70_000.0, 120_000.0, 60_000.0, 15_000.0])
V3 = PoolCurve("uniswap-v3:C", np.sqrt(V3_PRICES), V3_LIQ, math.sqrt(2_500.0), 0.0005)


def v3_sell_ranges(curve: PoolCurve) -> list[tuple[float, float, float]]:
    """(L, √p at the start, √p at the end) of each range a sell of base crosses, in order."""
    out = []
    roots, liq = curve.roots, curve.liquidity
    for i in range(len(liq) - 1, -1, -1):
        top = min(roots[i + 1], curve.root)
        if top > roots[i]:
            out.append((float(liq[i]), float(top), float(roots[i])))
    return out


def oracle_v3(snaps: list[DepthSnapshot], amount_eth: float, tol: float = 1e-8) -> float:
    """`best_usdt` through the v3 pool, each range it crosses its own variable.

    In a range of liquidity L entered at √p = s, selling x base (fee γ = 1 − f on the
    input) ends at 1/√p' = 1/s + γx/L and pays L·(s − √p') quote, concave in x; the range
    holds at most L·(1/a − 1/s)/γ base down to its end a. Flows are scaled per range by
    L/s (base) and L·s (quote) so every coefficient is O(1).
    """
    g = 1 - V3.fee
    ranges = v3_sell_ranges(V3)
    xi = cp.Variable(len(ranges), nonneg=True)  # base into each range, in units of L/s
    omega = cp.Variable(len(ranges), nonneg=True)  # quote out of each range, units of L·s
    curve: list[cp.Constraint] = []
    base_in, quote_out = 0, 0
    for k, (liq, s, a) in enumerate(ranges):
        # x_k = (L/s)·ξ: 1/√p' = (1 + γξ)/s, quote = L·s·(1 − 1/(1 + γξ))
        curve += [omega[k] <= 1 - cp.inv_pos(1 + g * xi[k]), xi[k] <= (s / a - 1) / g]
        base_in += (liq / s) * xi[k]
        quote_out += (liq * s) * omega[k]
    return best_usdt(snaps, amount_eth, base_in, quote_out, curve, tol)


@pytest.mark.parametrize("amount", [5.0, 20.0, 60.0])
def test_two_hops_through_a_v3_pool_across_its_ranges(amount: float) -> None:
    snaps, markets = books()
    pools = [("ETH/USDC", V3), POOLS[1]]
    quote = route_graph(snaps, "ETH", "USDT", markets=markets, amount_in=amount, pools=pools)
    # Clarabel reaches 1e-8 here (tighter, it reports optimal_inaccurate on the ranges)
    assert quote.amount_out == pytest.approx(oracle_v3(snaps, amount), rel=1e-8)
    (leg,) = [g for hop in quote.hops for g in hop.legs if g.venue == "uniswap-v3:C"]
    assert leg.amount_out == pytest.approx(v3_sell(leg.amount_in), rel=1e-9)
    assert leg.amount_out <= v3_sell(leg.amount_in) * (1 + 1e-12)


def v3_sell(amount: float) -> float:
    """Quote out of selling `amount` base into V3, walking its ranges one by one."""
    g, out, left = 1 - V3.fee, 0.0, amount
    for liq, s, a in v3_sell_ranges(V3):
        take = min(left, liq * (1 / a - 1 / s) / g)
        out += liq * (s - 1 / (1 / s + g * take / liq))
        left -= take
        if left <= 0:
            return out
    raise AssertionError("the pool cannot absorb that much")
