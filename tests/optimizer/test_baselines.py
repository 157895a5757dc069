"""Baselines: each is a feasible split, so the optimum is never worse than any of them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings

from liquidroute.optimizer.baselines import all_baselines, split_cost
from liquidroute.optimizer.baselines import best_venue as best_venue_split
from liquidroute.optimizer.baselines import equal_split as equal_split_split
from liquidroute.optimizer.baselines import percent_grid as percent_grid_split
from liquidroute.optimizer.baselines import pro_rata as pro_rata_split
from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.exact import solve_exact
from tests.strategies import books_and_order


def priced(split):
    def cost(ladder, amount, **kw):
        amounts = split(ladder, amount, **kw)
        if amounts is not None:
            assert amounts.sum() == pytest.approx(amount, rel=1e-12)
        return None if amounts is None else split_cost(ladder, amounts)

    return cost


best_venue = priced(best_venue_split)
equal_split = priced(equal_split_split)
pro_rata = priced(pro_rata_split)
percent_grid = priced(percent_grid_split)


@settings(max_examples=150, deadline=None)
@given(books_and_order())
def test_optimum_never_worse_than_any_baseline(case):
    levels = [s.levels(case["side"]) for s in case["snaps"]]
    ladder = build_ladder(levels, case["fees"], case["side"])
    alloc = solve_exact(ladder, case["amount"])
    for name, cost in all_baselines(ladder, alloc.filled).items():
        if cost is None:
            continue
        tol = 1e-9 * abs(cost)
        if case["side"] == "buy":
            assert alloc.value <= cost + tol, name
        else:
            assert alloc.value >= cost - tol, name


def _ladder():
    a = np.array([[100.0, 1.0], [110.0, 10.0]])
    b = np.array([[101.0, 1.0], [111.0, 10.0]])
    c = np.array([[105.0, 0.5]])
    return build_ladder([a, b, c], [0.0, 0.0, 0.0], "buy")


def test_baselines_by_hand():
    ladder = _ladder()
    # best venue for 2 units: a = 100 + 110 = 210, b = 101 + 111 = 212, c cannot
    assert best_venue(ladder, 2.0) == pytest.approx(210.0)
    # equal split of 3 = 1 each: c holds only 0.5 -> None
    assert equal_split(ladder, 3.0) is None
    assert equal_split(ladder, 0.3) == pytest.approx(0.1 * 100 + 0.1 * 101 + 0.1 * 105)
    # pro rata by depth 11 : 11 : 0.5 for 2.25 units -> 1.1, 1.1, 0.05
    assert pro_rata(ladder, 2.25) == pytest.approx(100 + 0.1 * 110 + 101 + 0.1 * 111 + 0.05 * 105)
    assert pro_rata(ladder, 100.0) is None


def test_percent_grid_matches_brute_force():
    ladder = _ladder()
    amount, steps = 2.0, 20
    best = np.inf
    for j in itertools.product(range(steps + 1), repeat=2):
        k = steps - sum(j)
        if k < 0:
            continue
        parts = [j[0], j[1], k]
        cost = sum(
            float(ladder.cost(v, np.array([parts[v] * amount / steps]))[0]) for v in range(3)
        )
        best = min(best, cost)
    assert percent_grid(ladder, amount) == pytest.approx(best, rel=1e-12)


def test_percent_grid_respects_max_venues():
    flat = [np.array([[100.0 + i * 1e-3, 0.1]]) for i in range(10)]
    ladder = build_ladder(flat, [0.0] * 10, "buy")
    # 1.0 in 5 % steps (0.05): each venue holds 2 steps, so 10 venues are needed
    assert percent_grid(ladder, 1.0, max_venues=7) is None
    assert percent_grid(ladder, 1.0, max_venues=10) is not None
    assert percent_grid(ladder, 0.5, max_venues=7) is not None
