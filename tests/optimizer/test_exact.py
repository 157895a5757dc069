"""The exact split against an LP solved independently (scipy's HiGHS), and its KKT conditions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.exact import solve_exact
from tests.strategies import books_and_order


def lp_optimum(levels, fees, side, amount, caps=None, amount_in="base"):
    """Solve the level LP with scipy: x_{v,l} in [0, s], Σx = Q (or Σ e·x = X).

    Built directly from the books, independent of the ladder code. Returns the objective
    (cost for a buy, proceeds for a sell, base amount for amount_in="quote") or None when
    the amount cannot be reached.
    """
    e, s, owner = [], [], []
    for v, (lv, fee) in enumerate(zip(levels, fees, strict=True)):
        factor = 1 + fee if side == "buy" else 1 - fee
        e += list(lv[:, 0] * factor)
        s += list(lv[:, 1])
        owner += [v] * len(lv)
    e, s, owner = np.array(e), np.array(s), np.array(owner)
    a_ub, b_ub = [], []
    for v, cap in enumerate(caps or []):
        if cap is not None:
            a_ub.append((owner == v).astype(float))
            b_ub.append(cap)
    sign = 1.0 if side == "buy" else -1.0
    if amount_in == "base":
        c, a_eq = sign * e, [np.ones_like(e)]
    else:  # scaled so the solver sees O(1) numbers: Σ (e/m)·x = X/m
        m = float(e.mean())
        c, a_eq, amount = -np.ones_like(e) * (1.0 if side == "buy" else -1.0), [e / m], amount / m
    res = linprog(
        c,
        A_ub=np.array(a_ub) if a_ub else None,
        b_ub=np.array(b_ub) if b_ub else None,
        A_eq=np.array(a_eq),
        b_eq=[amount],
        bounds=list(zip(np.zeros_like(s), s, strict=True)),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if res.status == 2:
        return None
    assert res.status == 0, res.message
    x = res.x
    return float(e @ x) if amount_in == "base" else float(x.sum())


def check_kkt(ladder, alloc, side):
    """Levels cheaper than λ are full, dearer ones empty; per-venue within depth."""
    lam = alloc.marginal
    taken = np.zeros(len(ladder.size))
    # reconstruct per-level takes: each venue takes a prefix of its own levels
    for v in range(ladder.n_venues):
        lo, hi = ladder.offsets[v], ladder.offsets[v + 1]
        left = alloc.amount[v]
        for i in range(lo, hi):
            t = min(ladder.size[i], left)
            taken[i] = t
            left -= t
        assert left <= 1e-9 * max(1.0, alloc.amount[v])
    better = ladder.eff < lam if side == "buy" else ladder.eff > lam
    worse = ladder.eff > lam if side == "buy" else ladder.eff < lam
    np.testing.assert_allclose(taken[better], ladder.size[better], rtol=1e-9, atol=1e-12)
    assert np.all(taken[worse] <= 1e-12)


@settings(max_examples=150, deadline=None)
@given(books_and_order())
def test_exact_equals_independent_lp(case):
    levels = [s.levels(case["side"]) for s in case["snaps"]]
    ladder = build_ladder(levels, case["fees"], case["side"])
    alloc = solve_exact(ladder, case["amount"])
    assert alloc.filled == pytest.approx(min(case["amount"], case["depth"]), rel=1e-12)
    if case["amount"] <= case["depth"] * (1 - 1e-9):
        lp = lp_optimum(levels, case["fees"], case["side"], case["amount"])
        assert alloc.value == pytest.approx(lp, rel=1e-9)
        check_kkt(ladder, alloc, case["side"])
    elif case["amount"] > case["depth"] * (1 + 1e-9):
        assert lp_optimum(levels, case["fees"], case["side"], case["amount"]) is None
        np.testing.assert_allclose(alloc.amount, ladder.depth(), rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(books_and_order(), st.data())
def test_exact_with_caps_equals_lp(case, data):
    levels = [s.levels(case["side"]) for s in case["snaps"]]
    caps = [
        data.draw(st.one_of(st.none(), st.floats(0.0, float(lv[:, 1].sum()) * 1.5)))
        for lv in levels
    ]
    ladder = build_ladder(levels, case["fees"], case["side"], caps)
    room = float(ladder.depth().sum())
    amount = case["amount"]
    alloc = solve_exact(ladder, amount)
    for v, cap in enumerate(caps):
        if cap is not None:
            assert alloc.amount[v] <= cap * (1 + 1e-12) + 1e-15
    if amount <= room * (1 - 1e-9):
        lp = lp_optimum(levels, case["fees"], case["side"], amount, caps)
        assert alloc.value == pytest.approx(lp, rel=1e-9)
        assert alloc.filled == pytest.approx(amount, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(books_and_order())
def test_spend_quote_equals_lp(case):
    levels = [s.levels(case["side"]) for s in case["snaps"]]
    ladder = build_ladder(levels, case["fees"], case["side"])
    notional = float((ladder.eff * ladder.size).sum())
    budget = notional * min(case["amount"] / case["depth"], 0.999)
    alloc = solve_exact(ladder, budget, "quote")
    assert alloc.value == pytest.approx(budget, rel=1e-9)
    lp = lp_optimum(levels, case["fees"], case["side"], budget, amount_in="quote")
    # buy: most base for the budget; sell: least base to raise the budget
    assert alloc.filled == pytest.approx(lp, rel=1e-9)


def test_equal_marginal_prices_across_partially_filled_venues():
    """Two venues with identical fee-adjusted prices: the stop price is the same for both."""
    a = np.array([[100.0, 1.0], [101.0, 1.0], [102.0, 1.0]])
    b = np.array([[100.5, 1.0], [101.0, 3.0]])
    ladder = build_ladder([a, b], [0.0, 0.0], "buy")
    alloc = solve_exact(ladder, 3.5)
    assert alloc.marginal == 101.0
    # everything below 101 is taken (2 units), 1.5 of the 4 units at 101
    assert alloc.amount.sum() == pytest.approx(3.5)
    assert alloc.value == pytest.approx(100 + 100.5 + 1.5 * 101)
    assert list(alloc.worst_price) == [101.0, 101.0]


def test_fees_change_the_order_of_levels():
    """A cheaper book with a higher fee loses to a dearer book with no fee."""
    a = np.array([[100.0, 1.0]])
    b = np.array([[100.05, 1.0]])
    ladder = build_ladder([a, b], [0.001, 0.0], "buy")  # 100.1 vs 100.05 all-in
    alloc = solve_exact(ladder, 1.0)
    assert list(alloc.amount) == [0.0, 1.0]
    assert alloc.fee.sum() == 0.0


def test_insufficient_depth_takes_everything():
    a = np.array([[100.0, 1.0], [101.0, 1.0]])
    ladder = build_ladder([a], [0.001], "buy")
    alloc = solve_exact(ladder, 5.0)
    assert alloc.filled == 2.0
    assert alloc.value == pytest.approx((100 + 101) * 1.001)
    assert alloc.marginal == pytest.approx(101 * 1.001)
