"""The exact split against an LP solved independently (scipy's HiGHS), and its KKT conditions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from liquidroute.optimizer import exact
from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.exact import LadderCache, MergedLadder, solve_exact, solve_touched
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


# --- deep books: the prefix-only running total, and the merged (cached) ladder -------------


def merge_by_hand(levels, fees, side, amount, amount_in="base"):
    """Independent reference: every level in one Python list, sorted, walked in order.

    Returns per-venue (amount, cost) lists and the marginal effective price.
    """
    rows = []
    for v, (lv, fee) in enumerate(zip(levels, fees, strict=True)):
        factor = 1 + fee if side == "buy" else 1 - fee
        rows += [(float(p) * factor, v, float(s)) for p, s in lv]
    rows.sort(key=lambda r: r[0] if side == "buy" else -r[0])  # stable: venue, level order
    got, cost = [0.0] * len(levels), [0.0] * len(levels)
    left, marginal = amount, None
    for e, v, s in rows:
        if left <= amount * 1e-12:  # filled, up to rounding of the running remainder
            break
        unit = e if amount_in == "quote" else 1.0
        t = min(s, left / unit)
        got[v] += t
        cost[v] += t * e
        left -= t * unit
        marginal = e
    return got, cost, marginal


def deep_levels(rng, n_venues, n_levels, growth=1.0):
    """Per-venue ask/bid arrays for a buy: sizes multiplied by `growth` at each level."""
    out = []
    for _ in range(n_venues):
        price = 100 * (1 + rng.normal(0, 1e-3)) + np.cumsum(rng.uniform(1e-4, 1e-2, n_levels))
        size = rng.lognormal(-1, 1, n_levels) * growth ** np.arange(n_levels)
        out.append(np.column_stack([price, size]))
    return out


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_venues=st.integers(1, 12),
    n_levels=st.integers(30, 700),
    growth=st.sampled_from([1.0, 1.005, 1.01]),
    frac=st.floats(1e-6, 1.2),
    amount_in=st.sampled_from(["base", "quote"]),
)
def test_deep_books_equal_the_merge_by_hand(seed, n_venues, n_levels, growth, frac, amount_in):
    """Books above the prefix threshold (and sizes growing with depth, so that the guessed
    prefix is too short and has to be extended) against a plain sorted walk."""
    rng = np.random.default_rng(seed)
    levels = deep_levels(rng, n_venues, n_levels, growth)
    fees = list(rng.choice([0.0, 0.0005, 0.001, 0.002], n_venues))
    ladder = build_ladder(levels, fees, "buy")
    whole = float(ladder.size @ ladder.eff) if amount_in == "quote" else float(ladder.size.sum())
    amount = whole * frac
    alloc = solve_exact(ladder, amount, amount_in)
    got, cost, marginal = merge_by_hand(levels, fees, "buy", amount, amount_in)
    np.testing.assert_allclose(alloc.amount, got, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(alloc.cost, cost, rtol=1e-9, atol=1e-9)
    assert alloc.marginal == pytest.approx(marginal, rel=1e-12)


def test_growing_sizes_need_more_levels_than_the_guess():
    """The case the prefix extension exists for: 30 % of the size is in > 60 % of the levels
    (the guess takes amount/total x 1.1 of them), and the answer is still the full merge."""
    rng = np.random.default_rng(3)
    levels = deep_levels(rng, 10, 500, growth=1.01)
    ladder = build_ladder(levels, [0.001] * 10, "buy")
    amount = 0.3 * float(ladder.size.sum())
    got, cost, _ = merge_by_hand(levels, [0.001] * 10, "buy", amount)
    alloc = solve_exact(ladder, amount)
    assert alloc.levels.sum() > 0.6 * len(ladder.size)  # far beyond the first guess
    np.testing.assert_allclose(alloc.amount, got, rtol=1e-12, atol=1e-12)
    assert alloc.value == pytest.approx(sum(cost), rel=1e-12)


def assert_same_allocation(a, b):
    for name in ("amount", "notional", "fee", "cost", "levels", "worst_price"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.marginal, a.filled, a.value) == (b.marginal, b.filled, b.value)


def books_with_ties(seed, n_venues, n_levels, side, ties):
    """Deep books for `side` and their fees; with `ties`, every venue on one coarse price
    grid at one fee: equal effective prices across venues."""
    rng = np.random.default_rng(seed)
    levels = deep_levels(rng, n_venues, n_levels)
    if ties:
        levels = [np.column_stack([np.round(lv[:, 0], 1), lv[:, 1]]) for lv in levels]
        levels = [lv[np.unique(lv[:, 0], return_index=True)[1]] for lv in levels]
    if side == "sell":  # bids: best (highest) first
        levels = [np.column_stack([200 - lv[:, 0], lv[:, 1]]) for lv in levels]
    fees = [0.001] * n_venues if ties else list(rng.choice([0.0, 0.0005, 0.001], n_venues))
    return levels, fees


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_venues=st.integers(1, 8),
    n_levels=st.integers(1, 400),
    side=st.sampled_from(["buy", "sell"]),
    fracs=st.lists(st.floats(1e-6, 1.2), min_size=3, max_size=6),
    amount_in=st.sampled_from(["base", "quote"]),
)
def test_merged_ladder_answers_exactly_like_solve_exact(
    seed, n_venues, n_levels, side, fracs, amount_in
):
    """Repeated orders on one MergedLadder: bit-for-bit the uncached answer."""
    levels, fees = books_with_ties(seed, n_venues, n_levels, side, ties=False)
    ladder = build_ladder(levels, fees, side)
    merged = MergedLadder(ladder)
    whole = float(ladder.size @ ladder.eff) if amount_in == "quote" else float(ladder.size.sum())
    for frac in fracs:
        assert_same_allocation(
            merged.solve(whole * frac, amount_in), solve_exact(ladder, whole * frac, amount_in)
        )


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_venues=st.integers(1, 8),
    n_levels=st.integers(0, 600),
    side=st.sampled_from(["buy", "sell"]),
    fracs=st.lists(st.floats(1e-9, 1.3), min_size=1, max_size=4),
    amount_in=st.sampled_from(["base", "quote"]),
    ties=st.booleans(),
)
def test_solving_on_the_touched_levels_is_solve_exact_bit_for_bit(
    seed, n_venues, n_levels, side, fracs, amount_in, ties
):
    """`solve_touched` cuts each venue to the levels its own running total needs: the
    answer must be the full merge's, float for float — ties across venues included
    (equal prices on a grid), orders a hair deep and beyond every book."""
    levels, fees = books_with_ties(seed, n_venues, n_levels, side, ties)
    ladder = build_ladder(levels, fees, side)
    whole = float(ladder.size @ ladder.eff) if amount_in == "quote" else float(ladder.size.sum())
    for frac in fracs:
        amount = whole * frac if whole > 0 else frac
        assert_same_allocation(
            solve_touched(levels, fees, side, amount, amount_in),
            solve_exact(ladder, amount, amount_in),
        )


def test_a_cached_book_version_answers_alike_before_and_after_it_is_prepared():
    """LadderCache entries solve their first orders on the touched levels and then
    prepare the whole merge: every answer on the way is solve_exact's."""
    rng = np.random.default_rng(11)
    levels = deep_levels(rng, 5, 1000)
    fees = [0.001, 0.0, 0.0005, 0.001, 0.002]
    ladder = build_ladder(levels, fees, "buy")
    merged = LadderCache().merged(levels, fees, "buy")
    for k in range(12):
        amount = float(ladder.size.sum()) * (0.0005 + 0.09 * k)
        assert_same_allocation(merged.solve(amount), solve_exact(ladder, amount))
    assert merged.ladder.size.shape == ladder.size.shape  # built on demand, whole


def test_ladder_cache_hits_only_on_the_same_books_fees_caps_and_side():
    rng = np.random.default_rng(5)
    levels = deep_levels(rng, 3, 50)
    cache = LadderCache(maxsize=8)
    first = cache.merged(levels, [0.001] * 3, "buy")
    assert cache.merged(list(levels), [0.001] * 3, "buy") is first  # same arrays: a hit
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.merged(levels, [0.001, 0.001, 0.002], "buy") is not first  # fee changed
    assert cache.merged(levels, [0.001] * 3, "buy", [None, 1.0, None]) is not first  # cap
    assert cache.merged(levels, [0.001] * 3, "sell") is not first  # other side
    equal_copy = [lv.copy() for lv in levels]  # equal values, another book version
    assert cache.merged(equal_copy, [0.001] * 3, "buy") is not first
    assert (cache.hits, cache.misses) == (1, 5)


def test_ladder_cache_never_serves_a_changed_book():
    """A book that changed (one size) is a new array: the cache answers for the new book."""
    rng = np.random.default_rng(6)
    levels = deep_levels(rng, 4, 80)
    fees = [0.001] * 4
    cache = LadderCache()
    amount = 0.4 * sum(float(lv[:, 1].sum()) for lv in levels)
    before = cache.merged(levels, fees, "buy").solve(amount)
    changed = list(levels)
    book = levels[1].copy()
    book[0, 1] *= 50  # venue 1's best level grows: the split must move towards it
    changed[1] = book
    after = cache.merged(changed, fees, "buy").solve(amount)
    assert_same_allocation(after, solve_exact(build_ladder(changed, fees, "buy"), amount))
    assert after.amount[1] > before.amount[1]


def test_ladder_cache_drops_the_least_recently_used():
    rng = np.random.default_rng(7)
    books = [deep_levels(rng, 2, 10) for _ in range(3)]
    cache = LadderCache(maxsize=2)
    a = cache.merged(books[0], [0.0, 0.0], "buy")
    cache.merged(books[1], [0.0, 0.0], "buy")
    assert cache.merged(books[0], [0.0, 0.0], "buy") is a  # refreshed: books[1] is oldest
    cache.merged(books[2], [0.0, 0.0], "buy")
    assert len(cache) == 2
    assert cache.merged(books[0], [0.0, 0.0], "buy") is a
    misses = cache.misses
    cache.merged(books[1], [0.0, 0.0], "buy")
    assert cache.misses == misses + 1
    with pytest.raises(ValueError, match="maxsize"):
        LadderCache(maxsize=0)


def test_merged_ladder_with_empty_books():
    """Venues with an empty side (and a ladder with no levels at all) merge like the rest."""
    empty = np.empty((0, 2))
    full = np.array([[100.0, 1.0], [101.0, 2.0]])
    for levels in ([empty, full, empty], [empty, empty]):
        ladder = build_ladder(levels, [0.001] * len(levels), "buy")
        merged = MergedLadder(ladder)
        for amount in (0.5, 1.0, 2.5, 10.0, 0.5):  # the third on uses the prepared tables
            assert_same_allocation(merged.solve(amount), solve_exact(ladder, amount))
    assert merged.solve(1.0).marginal is None and merged.solve(1.0).filled == 0.0


@pytest.mark.parametrize("amount_in", ["base", "quote"])
def test_absurd_amounts_on_deep_books_take_everything(amount_in):
    """1e308 (finite, so a valid amount) must not overflow the prefix guess."""
    levels = deep_levels(np.random.default_rng(8), 4, 300)
    ladder = build_ladder(levels, [0.001] * 4, "buy")
    for amount in (1e308, 1e-300):
        alloc = solve_exact(ladder, amount, amount_in)
        assert_same_allocation(alloc, MergedLadder(ladder).solve(amount, amount_in))
    assert solve_exact(ladder, 1e308, amount_in).filled == pytest.approx(ladder.size.sum())


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_venues=st.integers(1, 12),
    n_levels=st.integers(0, 600),
    side=st.sampled_from(["buy", "sell"]),
    fracs=st.lists(st.floats(0.0, 1.2), min_size=1, max_size=5),
    amount_in=st.sampled_from(["base", "quote"]),
    ties=st.booleans(),
    capped=st.booleans(),
)
def test_a_prepared_ladder_answers_rows_bit_for_bit_like_solve_exact(
    seed, n_venues, n_levels, side, fracs, amount_in, ties, capped
):
    """Once a cached book version is prepared, `solve_rows` answers from Python lists of
    the prepared arrays: the same floats as `solve_exact`, on amounts that stop inside a
    level, exactly on a running total (a level boundary), at zero and beyond the books;
    with ties across venues and with caps."""
    levels, fees = books_with_ties(seed, n_venues, n_levels, side, ties)
    caps = [None if v % 2 else 0.3 * (v + 1) for v in range(n_venues)] if capped else None
    ladder = build_ladder(levels, fees, side, caps)
    merged = LadderCache().merged(levels, fees, side, caps)
    order = exact.merge_order(ladder)
    terms = ladder.size[order] * (ladder.eff[order] if amount_in == "quote" else 1.0)
    cum = np.cumsum(terms)
    whole = float(cum[-1]) if len(cum) else 1.0
    amounts = [whole * f for f in fracs]
    if len(cum):  # exactly on a boundary: the stop level is taken whole, not split
        amounts.append(float(cum[len(cum) // 2]))
    for _ in range(exact._TOUCHED_SOLVES + 2):  # past the touched solves: prepared
        merged.solve(whole / 2, amount_in)
    for amount in amounts:
        rows = merged.solve_rows(amount, amount_in)
        assert_same_allocation(rows.allocation(), solve_exact(ladder, amount, amount_in))
        assert rows.total_fee == float(np.add.reduce(solve_exact(ladder, amount, amount_in).fee))


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_venues=st.integers(1, 12),
    n_levels=st.integers(0, 300),
    side=st.sampled_from(["buy", "sell"]),
    frac=st.floats(0.0, 1.1),
    amount_in=st.sampled_from(["base", "quote"]),
    ties=st.booleans(),
)
def test_the_python_walk_of_the_touched_levels_is_solve_exact_bit_for_bit(
    seed, n_venues, n_levels, side, frac, amount_in, ties
):
    """The plain-float merge `solve_touched` takes for shallow orders (a heap over the
    venues, levels read in chunks) against the numpy merge of the whole ladder: the same
    floats, ties across venues and within a venue's rounded prices included; it declines
    (None) only past `_PY_LEVELS` merged levels."""
    from liquidroute.optimizer import exact

    levels, fees = books_with_ties(seed, n_venues, n_levels, side, ties)
    ladder = build_ladder(levels, fees, side)
    # an amount that stops within the first _PY_LEVELS merged levels, scaled by frac
    order = exact.merge_order(ladder)
    head = order[: exact._PY_LEVELS]
    terms = ladder.size[head] * (ladder.eff[head] if amount_in == "quote" else 1.0)
    amount = float(terms.sum()) * frac
    fast = exact._solve_touched_py(levels, fees, side, amount, amount_in == "quote")
    if frac < 1.0 or len(order) <= exact._PY_LEVELS:
        assert fast is not None
    if fast is not None:
        assert_same_allocation(fast.allocation(), solve_exact(ladder, amount, amount_in))


@given(st.lists(st.floats(0.0, 1e9), max_size=140))
def test_the_python_sum_is_numpys_pairwise_sum(values):
    from liquidroute.optimizer.exact import np_sum

    assert np_sum(values) == float(np.add.reduce(np.array(values, dtype=np.float64)))


def test_an_amount_asked_again_gets_the_rows_it_got_and_no_other_amounts():
    """`solve_rows` keeps its last answers per book version: the same amount (and unit)
    gets the very rows again; another amount, the other unit or a ninth amount are
    solved, each equal to solve_exact on the ladder."""
    levels, fees = books_with_ties(11, 4, 120, "buy", True)
    ladder = build_ladder(levels, fees, "buy")
    merged = LadderCache().merged(levels, fees, "buy")
    first = merged.solve_rows(3.0)
    assert merged.solve_rows(3.0) is first
    for amount, unit in [(3.0, "quote"), (3.5, "base"), (3.0, "base")]:
        rows = merged.solve_rows(amount, unit)
        assert_same_allocation(rows.allocation(), solve_exact(ladder, amount, unit))
    assert merged.solve_rows(3.0, "quote") is not first
    amounts = [1.0 + k / 4 for k in range(exact._ROWS_KEPT + 1)]
    for amount in amounts:  # past what is kept: the first ones are solved again
        merged.solve_rows(amount)
    rows = merged.solve_rows(3.0)
    assert rows is not first
    assert_same_allocation(rows.allocation(), solve_exact(ladder, 3.0))
