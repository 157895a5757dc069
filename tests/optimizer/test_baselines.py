"""Baselines: each is a feasible split, so the optimum is never worse than any of them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# -- the fast paths against the general code they stand in for -----------------------


def _random_ladder(rng: np.random.Generator, n: int, side: str, twins: bool):
    """n venues of 1..30 levels; with `twins`, venue pairs share one book and fee (exact
    cost ties between allocations, which the tie rules must settle alike)."""
    from tests.strategies import make_book

    books, fees = [], []
    for v in range(n):
        if twins and v % 2 == 1:
            books.append(books[-1])
            fees.append(fees[-1])
            continue
        snap = make_book(rng, f"v{v}", 100.0 * (1 + rng.normal(0, 5e-4)), int(rng.integers(1, 31)))
        books.append(snap.levels(side))
        fees.append(float(rng.choice([0.0, 0.0005, 0.001])))
    return build_ladder(books, fees, side)


def _oracle_best_venue(ladder, amount):
    """best_venue as first written: one C_v(Q) per venue, the first strictly better kept."""
    best = None
    for v in range(ladder.n_venues):
        c = float(ladder.cost(v, np.array([amount]))[0])
        better = best is None or (c < best[0] if ladder.side == "buy" else c > best[0])
        if np.isfinite(c) and better:
            best = (c, v)
    if best is None:
        return None
    out = np.zeros(ladder.n_venues)
    out[best[1]] = amount
    return out


def _oracle_equal_split(ladder, amount):
    active = np.diff(ladder.offsets) > 0
    if not active.any():
        return None
    out = np.where(active, amount / active.sum(), 0.0)
    return out if split_cost(ladder, out) is not None else None


def _oracle_percent_grid(ladder, amount, steps=20, max_venues=7):
    """percent_grid as first written: the DP over (units, venues used) with the bound of
    `max_venues` columns whatever the venue count, one C_v evaluation per venue."""
    sign = 1.0 if ladder.side == "buy" else -1.0
    grid = np.arange(steps + 1, dtype=np.float64) * (amount / steps)
    n = ladder.n_venues
    best = np.full((steps + 1, max_venues + 1), np.inf)
    best[0, 0] = 0.0
    choice = np.zeros((n, steps + 1, max_venues + 1), dtype=np.intp)
    units = np.arange(1, steps + 1)[:, None]
    totals = np.arange(steps + 1)[None, :]
    valid = units <= totals
    source = np.where(valid, totals - units, 0)
    for v in range(n):
        c = sign * ladder.cost(v, grid.copy())
        c[~np.isfinite(c)] = np.inf
        candidate = best[source, :-1] + c[1:, None, None]
        candidate[~valid] = np.inf
        j_best = np.argmin(candidate, axis=0)
        value = np.take_along_axis(candidate, j_best[None], axis=0)[0]
        better = value < best[:, 1:]
        choice[v, :, 1:] = np.where(better, j_best + 1, 0)
        new = best.copy()
        new[:, 1:] = np.where(better, value, best[:, 1:])
        best = new
    m = int(np.argmin(best[steps]))
    if not np.isfinite(best[steps, m]):
        return None
    out = np.zeros(n)
    k = steps
    for v in range(n - 1, -1, -1):
        j = int(choice[v, k, m])
        if j:
            out[v] = grid[j]
            k, m = k - j, m - 1
    return out


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 10),
    side=st.sampled_from(["buy", "sell"]),
    frac=st.floats(0.001, 1.5),
    twins=st.booleans(),
)
def test_fast_baselines_equal_the_general_programs(seed, n, side, frac, twins):
    """The shared evaluation (one np.interp per venue) and the grid table bounded by
    min(7, V) venues used give what the baselines gave with one evaluation each and the
    full table, bit for bit, on 1..10 venues (over 7: the bound binds), both sides,
    amounts beyond the depth included (frac > 1)."""
    from liquidroute.optimizer import baselines as bl

    rng = np.random.default_rng(seed)
    ladder = _random_ladder(rng, n, side, twins)
    amount = float(ladder.depth().sum()) * frac
    splits = bl.baseline_splits(ladder, amount)
    for name, want in [
        ("best_venue", _oracle_best_venue(ladder, amount)),
        ("equal_split", _oracle_equal_split(ladder, amount)),
        ("pro_rata", bl.pro_rata(ladder, amount)),
        ("percent_grid", _oracle_percent_grid(ladder, amount)),
    ]:
        got = splits[name]
        assert (got is None) == (want is None), name
        if got is not None:
            np.testing.assert_array_equal(got, want, err_msg=name)
        single = bl.BASELINE_SPLITS[name](ladder, amount)
        assert (single is None) == (want is None), name
        if single is not None:
            np.testing.assert_array_equal(single, want, err_msg=name)


def test_ladder_curves_are_computed_once_and_read_only():
    ladder = _ladder()
    q, c = ladder.venue_curve(0)
    assert ladder.venue_curve(0)[0] is q
    assert q.tolist() == [0.0, 1.0, 11.0] and c.tolist() == [0.0, 100.0, 1200.0]
    with pytest.raises(ValueError):
        q[0] = 1.0


@pytest.mark.parametrize("seed", range(200))
def test_grid_settles_exact_ties_as_first_written(seed):
    """Flat books at a few shared prices: many grid allocations cost exactly the same (or
    within an ulp), and the bounded table must pick what the full one picked (fewest
    venues, then not using the later venue, then the smallest part)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 10))
    side = "buy" if seed % 2 else "sell"
    prices = rng.choice([100.0, 100.0, 100.5, 101.0], n)
    sizes = rng.choice([0.3, 1.0, 50.0], n)
    books = [np.array([[p, s]]) for p, s in zip(prices, sizes, strict=True)]
    ladder = build_ladder(books, [0.0] * n, side)
    amount = float(rng.choice([0.7, 1.0, 2.0, 3.0]))
    want = _oracle_percent_grid(ladder, amount)
    got = percent_grid_split(ladder, amount)
    assert (got is None) == (want is None)
    if got is not None:
        np.testing.assert_array_equal(got, want)


def test_grid_keeps_the_state_an_ulp_dearer_that_ties_later():
    """Why the table keeps the venues-used dimension even when the bound cannot bind: a
    1-D program over units alone keeps, for 8 units, {v0: 7, v3: 1} (one ulp cheaper than
    {v0: 8}); after v5 adds 12 units both cost exactly 69.99999999999999, and the 1-D
    program ends on {v0: 7, v5: 13} where the DP as first written gives {v0: 8, v5: 12}."""
    prices = [100.0, 100.5, 100.5, 100.0, 100.0, 100.0, 100.0]
    sizes = [0.3, 1.0, 1.0, 0.3, 0.3, 50.0, 1.0]
    ladder = build_ladder([np.array([[p, s]]) for p, s in zip(prices, sizes, strict=True)],
                          [0.0] * 7, "buy")  # fmt: skip
    got = percent_grid_split(ladder, 0.7)
    assert got is not None
    np.testing.assert_array_equal(got, _oracle_percent_grid(ladder, 0.7))
    assert (np.round(got / 0.035)).tolist() == [8, 0, 0, 0, 0, 12, 0]
