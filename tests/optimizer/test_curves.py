"""Ladder curves: C_v evaluated on a prefix of the cumulative curve equals C_v on the
whole curve, bit for bit, and both equal a level-by-level sum (the oracle)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liquidroute.optimizer.curves import build_ladder


def oracle_cost(levels: np.ndarray, fee: float, side: str, amount: float) -> float:
    factor = 1 + fee if side == "buy" else 1 - fee
    left, cost = amount, 0.0
    for price, size in levels:
        take = min(size, max(left, 0.0))
        cost, left = cost + take * price * factor, left - take
    depth = float(levels[:, 1].sum()) if len(levels) else 0.0
    return math.inf if amount > depth * (1 + 1e-12) + 1e-15 else cost  # the documented rule


def whole_curve_cost(ladder, v: int, amounts: np.ndarray) -> np.ndarray:
    q, c = ladder.venue_curve(v)  # the whole curve, built first
    out = np.interp(amounts, q, c)
    out[amounts > q[-1] * (1 + 1e-12) + 1e-15] = np.inf
    return out


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_levels=st.integers(0, 400),
    side=st.sampled_from(["buy", "sell"]),
    scale=st.sampled_from([1e-6, 1e-3, 0.3, 1.0, 1.2, 3.0]),
)
def test_cost_on_a_prefix_equals_the_whole_curve(seed, n_levels, side, scale):
    rng = np.random.default_rng(seed)
    steps = rng.uniform(0.01, 0.5, n_levels)
    price = 100 + np.cumsum(steps) if side == "buy" else 100 - np.cumsum(steps) * 0.1
    levels = np.column_stack([price, rng.lognormal(-1, 1.2, n_levels)])
    depth = float(levels[:, 1].sum())
    amounts = np.concatenate(
        [rng.uniform(0, scale * max(depth, 1e-9), 5), [0.0, depth, -1.0], np.cumsum(levels[:3, 1])]
    )
    fee = 0.001
    for order in (amounts, amounts[::-1], amounts[:1]):  # prefixes grown in several steps
        fresh = build_ladder([levels], [fee], side)
        got = fresh.cost(0, order)
        again = fresh.cost(0, order * 1.5)  # a longer reach extends the kept prefix
        full = build_ladder([levels], [fee], side)
        np.testing.assert_array_equal(got, whole_curve_cost(full, 0, order))
        np.testing.assert_array_equal(again, whole_curve_cost(full, 0, order * 1.5))
    for a, c in zip(amounts, build_ladder([levels], [fee], side).cost(0, amounts), strict=True):
        want = oracle_cost(levels, fee, side, float(a))
        if math.isinf(want) or math.isinf(c):
            assert math.isinf(want) and math.isinf(c)
        else:
            assert c == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_the_whole_curve_after_a_prefix_is_the_whole_curve():
    rng = np.random.default_rng(3)
    levels = np.column_stack([100 + np.arange(300) * 0.01, rng.lognormal(0, 1, 300)])
    ladder = build_ladder([levels], [0.0], "buy")
    ladder.cost(0, np.array([0.5]))
    q, _ = ladder._curves[0]
    assert len(q) < 301  # a prefix only
    q, c = ladder.venue_curve(0)
    assert len(q) == 301 and q[-1] == np.cumsum(levels[:, 1])[-1]
    np.testing.assert_array_equal(c[1:], np.cumsum(levels[:, 0] * levels[:, 1]))
