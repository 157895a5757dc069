"""The batched splits equal the per-order functions (optimizer/batched.py's claims).

- `exact_split` is `solve_exact(...).amount` and the four baselines are `baselines`'s
  functions, bit for bit, on random books (ties across venues, one-sided and empty books,
  amounts on level boundaries and beyond the depth) and on the real recorded books;
- `planned_cost` is `allocate(...).value` and `walk` is `walk_book` summed over venues as
  the backtest fills, to 1e-14 (sequential sums where those take a BLAS dot);
- an order's figures do not depend on the other orders of its batch (bit for bit alone
  and in any batch), so runs cut into windows or batches give the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from liquidroute.book import book_at
from liquidroute.optimizer import batched
from liquidroute.optimizer.baselines import BASELINE_SPLITS
from liquidroute.optimizer.curves import build_ladder, walk_book
from liquidroute.optimizer.exact import allocate, solve_exact
from tests.conftest import BOOK_FILES

NAMES = tuple(BASELINE_SPLITS)


def side_levels(rng: np.random.Generator, n: int, side: str) -> np.ndarray:
    if n == 0:
        return np.zeros((0, 2))
    gaps = rng.uniform(0.01, 0.5, n)
    if rng.random() < 0.4:  # on a tick grid: equal prices across venues
        gaps = np.round(gaps, 1) + 0.1
    price = 100 + np.cumsum(gaps) if side == "buy" else 100 - np.cumsum(gaps)
    size = rng.lognormal(-0.5, 1.2, n)
    if rng.random() < 0.4:
        size = np.round(size, 2) + 0.01
    return np.column_stack([price, size])


@st.composite
def batches(draw: st.DrawFn) -> dict:
    """B orders on V venues, one side, with the awkward cases drawn on purpose."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_venues, n_orders = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    side = draw(st.sampled_from(["buy", "sell"]))
    fees = np.array([draw(st.sampled_from([0.0, 0.0005, 0.001, 0.002])) for _ in range(n_venues)])
    levels, amounts = [], []
    for _ in range(n_orders):
        row = [side_levels(rng, int(rng.integers(0, 3) and rng.integers(1, 40)), side)]
        for _ in range(n_venues - 1):
            same = rng.random() < 0.3 and len(row[0])
            row.append(row[0].copy() if same else side_levels(rng, int(rng.integers(0, 40)), side))
        levels.append(row)
        depth = sum(float(lv[:, 1].sum()) for lv in row)
        kind = draw(st.sampled_from(["inside", "boundary", "beyond", "tiny"]))
        if kind == "boundary" and len(row[0]):
            cum = np.cumsum(row[0][:, 1])
            amount = float(cum[int(rng.integers(len(cum)))]) * float(rng.choice([1, n_venues]))
        elif kind == "beyond":
            amount = depth * 1.5 + 1.0
        elif kind == "tiny":
            amount = 1e-9
        else:
            amount = max(depth, 1.0) * float(rng.uniform(0.001, 1.0))
        amounts.append(amount)
    return {"levels": levels, "amounts": np.array(amounts), "side": side, "fees": fees}


def run_batched(case: dict) -> dict:
    side, fees, amounts = case["side"], case["fees"], case["amounts"]
    books = batched.pack([[(lv[:, 0], lv[:, 1]) for lv in row] for row in case["levels"]])
    factor = 1 + fees if side == "buy" else 1 - fees
    curves = batched.Curves(books.cut(amounts), factor)
    exact = batched.exact_split(curves.books, curves.eff, side, amounts)
    base = batched.baselines(curves, side, amounts, books.depth(), NAMES)
    splits = np.stack([exact] + [base[n][0] for n in NAMES], axis=1)
    found = np.stack([np.ones(len(amounts), bool)] + [base[n][1] for n in NAMES], axis=1)
    reach = np.maximum(amounts, splits.max(axis=(1, 2)))
    plan = batched.planned_cost(batched.Curves(books.cut(reach), factor), splits)
    filled, cost = batched.walk(books, splits, fees, side)
    return {"splits": splits, "found": found, "plan": plan, "filled": filled, "cost": cost}


def check_against_per_order(case: dict, got: dict) -> None:
    side, fees = case["side"], case["fees"]
    factor = 1 + fees if side == "buy" else 1 - fees
    for b, (row, amount) in enumerate(zip(case["levels"], case["amounts"], strict=True)):
        ladder = build_ladder(row, list(fees), side)
        want = [solve_exact(ladder, float(amount)).amount]
        want += [BASELINE_SPLITS[n](ladder, float(amount)) for n in NAMES]
        for k, split in enumerate(want):
            assert got["found"][b, k] == (split is not None), (b, k)
            if split is None:
                continue
            assert np.array_equal(got["splits"][b, k], split), (b, k)  # bit for bit
            if split.sum() <= 0:
                continue
            plan = allocate(ladder, split).value
            assert math.isclose(got["plan"][b, k], plan, rel_tol=1e-14), (b, k)
            filled = cost = 0.0
            for v, lv in enumerate(row):
                walk = walk_book(lv, side, float(split[v]))
                filled, cost = filled + walk.filled, cost + walk.notional * factor[v]
            assert math.isclose(got["filled"][b, k], filled, rel_tol=1e-14, abs_tol=1e-300)
            assert math.isclose(got["cost"][b, k], cost, rel_tol=1e-14, abs_tol=1e-300)


@settings(max_examples=300, deadline=None)
@given(batches())
def test_batched_equals_the_per_order_functions(case):
    check_against_per_order(case, run_batched(case))


@settings(max_examples=150, deadline=None)
@given(batches(), st.data())
def test_an_orders_figures_do_not_depend_on_its_batch(case, data):
    """Order b alone, and in the batch, give the same numbers bit for bit (the padding
    and the cut differ: they must not matter)."""
    whole = run_batched(case)
    b = data.draw(st.integers(0, len(case["amounts"]) - 1))
    one = {"levels": [case["levels"][b]], "amounts": case["amounts"][b : b + 1]}
    alone = run_batched(case | one)
    for key in whole:
        assert np.array_equal(whole[key][b], alone[key][0], equal_nan=True), key


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_on_the_real_recorded_books(side):
    """Binance (1,000 levels a side), Bybit and OKX as recorded, at several instants,
    orders from a sliver of the top level to beyond everything displayed."""
    files = [BOOK_FILES[n] for n in ("binance", "bybit", "okex")]
    snaps = [book_at(f) for f in files]
    row = [s.levels(side) for s in snaps]
    depth = sum(float(lv[:, 1].sum()) for lv in row)
    amounts = np.array([1e-4, 0.003, 0.5, 2.0, 7.337, 25.0, 60.0, depth * 0.9, depth * 1.1])
    fees = np.array([0.001, 0.001, 0.0008])
    case = {"levels": [row] * len(amounts), "amounts": amounts, "side": side, "fees": fees}
    got = run_batched(case)
    check_against_per_order(case, got)
    assert got["found"][:, 0].all() and (got["splits"][:-1, 0].sum(axis=1) > 0).all()


@settings(max_examples=1, deadline=None)
@given(batches())
@example(
    {  # two venues with the same prices: the merge's tie goes to the first venue
        "levels": [[np.array([[100.0, 1.0], [100.5, 2.0]]), np.array([[100.0, 1.0]])]],
        "amounts": np.array([1.5]),
        "side": "buy",
        "fees": np.array([0.0, 0.0]),
    }
)
def test_ties_go_to_the_first_venue(case):
    got = run_batched(case)
    check_against_per_order(case, got)
