"""The joint book + pool split against an independent convex program (cvxpy, Clarabel).

The oracle models each pool range separately: buying t base inside a range that starts at
√p = a with liquidity L costs L/(1−f)·(1/(1/a − t/L) − a), convex in t (`inv_pos`), capped
at the range's base content; sells mirror it. It shares nothing with `solve_joint` but the
inputs. With gas, the oracle enumerates pool subsets itself.
"""

from __future__ import annotations

import itertools
import warnings

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.pools import PoolCurve, solve_joint


def _book(rng: np.random.Generator, side: str, mid: float, n: int) -> np.ndarray:
    steps = rng.uniform(0.5, 3.0, n).cumsum() * mid * 1e-4
    prices = mid + steps if side == "buy" else mid - steps
    return np.column_stack([prices, rng.uniform(0.05, 2.0, n)])


def _pool(rng: np.random.Generator, name: str, mid: float, gas: float = 0.0) -> PoolCurve:
    n = int(rng.integers(1, 5))
    centre = np.sqrt(mid * rng.uniform(0.998, 1.002))
    inner = np.sort(centre * np.exp(rng.uniform(-0.02, 0.02, n * 2)))
    roots = np.concatenate(([centre * 0.5], inner, [centre * 2.0]))
    roots = np.unique(roots)
    liquidity = rng.uniform(2_000.0, 30_000.0, len(roots) - 1)  # ~1-10 base per ±1 %
    root = float(np.clip(centre, roots[0] * 1.0001, roots[-1] * 0.9999))
    return PoolCurve(name, roots, liquidity, root, float(rng.choice([0.0005, 0.003, 0.01])), gas)


def _oracle(ladder, pools, side: str, amount: float, members) -> tuple[float, float]:
    """(filled base, cost) of the convex program restricted to `members` pools.

    A buy of t base inside a range that starts at √p = a (liquidity L, fee f) costs
    L/(1−f)·(1/(1/a − t/L) − a); with u = t·a/L that is K·(u + u²/(1−u)), K = a·L/(1−f):
    a linear term and a small convex `quad_over_lin` term, so the solver's tolerances act on
    the curvature, not on the whole cost. A sell of t (fee included) pays, with
    w = t(1−f)·a/L, L·a·(w − w²/(1+w)).
    """
    ref = float(np.median(ladder.eff))  # Σ amounts is fixed: costs measured from ref
    x = cp.Variable(len(ladder.size))
    cons = [x >= 0, x <= ladder.size]
    supplied = cp.sum(x)
    cost = (ladder.eff - ref) @ x
    for i in members:
        p = pools[i]
        for lo, hi, liq in zip(p.roots[:-1], p.roots[1:], p.liquidity, strict=True):
            if side == "buy":
                a, b = max(lo, p.root), hi
                if b <= a:
                    continue
                u = cp.Variable(nonneg=True)
                cons.append(u <= 1 - a / b)
                k = a * liq / (1 - p.fee)
                cost += k * (u + cp.quad_over_lin(u, 1 - u)) - ref * u * liq / a
                supplied += u * liq / a
            else:
                a, b = min(hi, p.root), lo
                if a <= b:
                    continue
                w = cp.Variable(nonneg=True)
                cons.append(w <= a / b - 1)
                cost += liq * a * (w - cp.quad_over_lin(w, 1 + w)) - ref * w * liq / (
                    a * (1 - p.fee)
                )
                supplied += w * liq / (a * (1 - p.fee))
    cons.append(supplied == amount)
    problem = cp.Problem(cp.Minimize(cost) if side == "buy" else cp.Maximize(cost), cons)
    with warnings.catch_warnings():  # "inaccurate" at these tolerances still agrees to 1e-11
        warnings.simplefilter("ignore", UserWarning)
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-12, tol_feas=1e-12)
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status
    return amount, float(problem.value) + ref * amount


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.sampled_from(["buy", "sell"]))
def test_joint_split_equals_the_convex_program(seed: int, side: str) -> None:
    rng = np.random.default_rng(seed)
    mid = 2000.0
    books = [
        _book(rng, side, mid, int(rng.integers(3, 30))) for _ in range(int(rng.integers(1, 4)))
    ]
    fees = [float(rng.choice([0.0005, 0.001, 0.002])) for _ in books]
    ladder = build_ladder(books, fees, side)  # type: ignore[arg-type]
    pools = [_pool(rng, f"p{i}", mid) for i in range(int(rng.integers(1, 4)))]
    amount = float(ladder.size.sum() * rng.uniform(0.1, 1.5))
    got = solve_joint(ladder, pools, amount)
    assert got.filled == pytest.approx(amount, rel=1e-12)
    _, want = _oracle(ladder, pools, side, amount, range(len(pools)))
    assert got.value == pytest.approx(want, rel=1e-9)
    # KKT: every pool ends at the common marginal price or did not trade
    lam = got.marginal
    assert lam is not None
    for p, base in zip(pools, got.pool_base, strict=True):
        if base > 0:
            b_at, _ = p.trade(side, np.array([lam]))  # type: ignore[arg-type]
            assert b_at[0] == pytest.approx(base, rel=1e-9)
    cheaper = ladder.eff < lam if side == "buy" else ladder.eff > lam
    assert np.allclose(got.take[cheaper], ladder.size[cheaper])
    dearer = ladder.eff > lam if side == "buy" else ladder.eff < lam
    assert not got.take[dearer].any()


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.sampled_from(["buy", "sell"]))
def test_gas_decision_equals_subset_enumeration(seed: int, side: str) -> None:
    rng = np.random.default_rng(seed)
    mid = 2000.0
    books = [_book(rng, side, mid, 15)]
    ladder = build_ladder(books, [0.001], side)  # type: ignore[arg-type]
    pools = [_pool(rng, f"p{i}", mid, gas=float(rng.uniform(0.0, 4.0))) for i in range(3)]
    amount = float(ladder.size.sum() * rng.uniform(0.2, 0.9))
    got = solve_joint(ladder, pools, amount)
    best = None
    for r in range(4):
        for subset in itertools.combinations(range(3), r):
            _, value = _oracle(ladder, pools, side, amount, subset)
            total = value + sum(pools[i].gas for i in subset) * (1 if side == "buy" else -1)
            if best is None or (total < best if side == "buy" else total > best):
                best = total
    assert best is not None
    assert got.value == pytest.approx(best, rel=1e-9)


def test_quote_amount_orders_spend_exactly() -> None:
    rng = np.random.default_rng(3)
    ladder = build_ladder([_book(rng, "buy", 2000.0, 20)], [0.001], "buy")
    pools = [_pool(rng, "p0", 2000.0), _pool(rng, "p1", 2000.0)]
    got = solve_joint(ladder, pools, 50_000.0, amount_in="quote")
    assert got.book_cost + got.pool_quote.sum() == pytest.approx(50_000.0, rel=1e-12)
    by_base = solve_joint(ladder, pools, got.filled)
    assert by_base.value == pytest.approx(50_000.0, rel=1e-9)
