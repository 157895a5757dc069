"""route() under venue rules against an independent oracle: a DP over every lot allocation.

The oracle knows nothing of the code under test: it walks each book itself, lists every
lot count a venue may take (lot, minimum amount and notional, max amount, balance,
max share) with its cost (+ fixed cost), and runs a DP over venues on the grid of the
finest common lot, with the number of venues used as a second state (max_venues). The
answer is lexicographic: the largest amount ≤ the order that the lots can reach, then the
cheapest split of it. route() must match it: same amount, same cost to 1e-9, every leg on
its rules, `complete` exactly when the whole order is filled, and the nearest reachable
amounts when it is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liquidroute import DepthSnapshot, Market, route
from liquidroute.errors import InfeasibleConstraintsError


def walk(levels: list[tuple[float, float]], q: float) -> tuple[float, float] | None:
    """(notional, filled) taking q from best-first (price, size) levels; None beyond depth."""
    left, notional = q, 0.0
    for price, size in levels:
        take = min(size, left)
        notional += take * price
        left -= take
        if left <= 1e-12:
            return notional, q
    return None if left > 1e-9 else (notional, q)


@dataclass
class Instance:
    side: str
    amount: float
    books: list[DepthSnapshot]
    markets: dict[str, Market]
    fixed: dict[str, float]
    balances: dict[str, float]
    max_share: float | None
    max_venues: int | None


def options(inst: Instance, v: int, grid: Fraction, top: int) -> dict[int, float]:
    """Every grid-unit amount venue v may take (0 included) -> its objective value."""
    snap = inst.books[v]
    m = inst.markets[snap.venue]
    levels = [tuple(x) for x in snap.levels(inst.side).tolist()]
    lot = int(Fraction(repr(m.amount_step)) / grid)
    out = {0: 0.0}
    for n in range(1, top // lot + 1):
        q = float(n * lot * grid)
        got = walk(levels, q)
        if got is None:
            break
        notional = got[0]
        if q < (m.min_amount or 0) * (1 - 1e-12) or notional < (m.min_notional or 0):
            continue
        if m.max_amount and q > m.max_amount * (1 + 1e-12):
            break
        if inst.max_share and q > inst.max_share * inst.amount * (1 + 1e-12):
            break
        fee = m.taker_fee
        value = notional * (1 + fee) if inst.side == "buy" else -notional * (1 - fee)
        if snap.venue in inst.balances:  # quote for a buy, base for a sell
            spent = value if inst.side == "buy" else q
            if spent > inst.balances[snap.venue] * (1 + 1e-9):
                break
        out[n * lot] = value + inst.fixed.get(snap.venue, 0.0)
    return out


def oracle(inst: Instance) -> tuple[int, float | None, Fraction, list[int]]:
    """(best reachable units ≤ order, its optimal objective, grid, all reachable units)."""
    scale = 10**12
    steps = [int(Fraction(repr(m.amount_step)) * scale) for m in inst.markets.values()]
    grid = Fraction(math.gcd(*steps), scale)
    order = Fraction(repr(inst.amount)) / grid
    reach_top = int(order) + 2 * max(
        int(Fraction(repr(max(m.min_amount or 0, m.amount_step))) / grid) + 1
        for m in inst.markets.values()
    )
    k_max = inst.max_venues or len(inst.books)
    inf = math.inf
    best = np.full((k_max + 1, reach_top + 1), inf)
    best[0, 0] = 0.0
    for v in range(len(inst.books)):
        opts = options(inst, v, grid, reach_top)
        new = best.copy()
        for units, value in opts.items():
            if units == 0:
                continue
            # using venue v with `units`: one more venue
            cand = best[:-1, : reach_top + 1 - units] + value
            new[1:, units:] = np.minimum(new[1:, units:], cand)
        best = new
    per_total = best.min(axis=0)
    reachable = [t for t in range(reach_top + 1) if math.isfinite(per_total[t]) and t > 0]
    below = [t for t in reachable if t <= order]
    if not below:
        return 0, None, grid, reachable
    t = max(below)
    return t, float(per_total[t]), grid, reachable


def check(inst: Instance) -> None:
    units, value, grid, reachable = oracle(inst)
    kwargs = dict(
        markets=inst.markets,
        fixed_costs=inst.fixed or None,
        balances=inst.balances or None,
        max_share=inst.max_share,
        max_venues=inst.max_venues,
        baselines=False,
        rules=True,
    )
    if value is None:
        with pytest.raises(InfeasibleConstraintsError):
            route(inst.books, inst.side, inst.amount, **kwargs)
        return
    q = route(inst.books, inst.side, inst.amount, **kwargs)
    filled = Fraction(repr(q.filled)) / grid
    assert abs(float(filled) - units) < 1e-6, (q.filled, float(units * grid), q.legs)
    got = q.total_cost if inst.side == "buy" else -q.total_cost  # fixed costs included
    assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (q.legs, q.solver, q.warnings)
    assert q.solver != "rounded-fallback"
    whole = Fraction(repr(inst.amount)) / grid
    assert q.complete == (units == whole)
    if not q.complete:
        assert q.unfilled > 0
        depth = sum(float(b.levels(inst.side)[:, 1].sum()) for b in inst.books)
        if depth < inst.amount and float(units * grid) == pytest.approx(depth, rel=1e-9):
            # the books end before the order and the lots take all of them: the shortfall
            # is the books' depth, and `reachable` is for the lots alone (None otherwise)
            assert q.reachable is None
            obey(q, inst)
            return
        assert q.reachable is not None
        assert q.reachable[0] == pytest.approx(float(units * grid), rel=1e-12)
        above = [t for t in reachable if t > whole]
        if q.reachable[1] is not None and above:
            assert q.reachable[1] == pytest.approx(float(min(above) * grid), rel=1e-12)
    obey(q, inst)


def obey(q, inst: Instance) -> None:
    for leg in q.legs:
        m = inst.markets[leg.venue]
        lots = Fraction(repr(leg.amount)) / Fraction(repr(m.amount_step))
        assert lots.denominator == 1, (leg.venue, leg.amount, m.amount_step)
        assert leg.amount >= (m.min_amount or 0) * (1 - 1e-12)
        assert leg.amount * leg.avg_price >= (m.min_notional or 0) * (1 - 1e-9)
        if m.max_amount:
            assert leg.amount <= m.max_amount * (1 + 1e-12)
        if inst.max_share:
            assert leg.amount <= inst.max_share * inst.amount * (1 + 1e-9)
        if leg.venue in inst.balances:
            spent = leg.cost if inst.side == "buy" else leg.amount
            assert spent <= inst.balances[leg.venue] * (1 + 1e-9)
    if inst.max_venues:
        assert len(q.legs) <= inst.max_venues


@st.composite
def instances(
    draw: st.DrawFn,
    lots: tuple[float, ...],
    amount_lots: int,
    n_max: int = 4,
    deep: int = 0,
    whole_lots: bool = False,
):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(2, n_max))
    side = draw(st.sampled_from(["buy", "sell"]))
    books, markets = [], {}
    finest = min(lots)
    for i in range(n):
        name = f"v{i}"
        k = int(rng.integers(1, 6)) + deep
        gaps = rng.uniform(0.001, 0.3, k)
        sizes = rng.uniform(0.2, 1.5, k) * finest * amount_lots / n
        asks = np.column_stack([100.0 + np.cumsum(gaps), sizes])
        bids = np.column_stack([99.9 - np.cumsum(gaps), sizes])
        step = float(rng.choice(lots))
        if whole_lots:  # as on a real venue: every level a whole number of its lots
            lot = Fraction(repr(step))
            sizes = np.array([float(max(1, round(x / step)) * lot) for x in sizes])
            asks[:, 1] = bids[:, 1] = sizes
        books.append(DepthSnapshot(name, "X/Y", bids, asks))
        min_amount = float(rng.choice([0.0, 0.0, step * rng.integers(2, 6)]))
        min_notional = float(rng.choice([0.0, 0.0, 100 * finest * amount_lots * 0.1]))
        max_amount = float(rng.choice([0.0, 0.0, 0.0, step * rng.integers(3, 40)]))
        markets[name] = Market(
            name,
            "X/Y",
            float(rng.choice([0.0, 0.001, 0.004])),
            amount_step=step,
            min_amount=min_amount or None,
            min_notional=min_notional or None,
            max_amount=max_amount if max_amount > min_amount else None,
        )
    fixed = {
        b.venue: float(rng.uniform(0, 0.5) * finest * amount_lots)
        for b in books
        if not whole_lots and draw(st.booleans())
    }
    balances = {}
    if not whole_lots and draw(st.booleans()):
        b = books[0]
        balances[b.venue] = float(
            rng.uniform(0.1, 0.8) * finest * amount_lots * (100.0 if side == "buy" else 1.0)
        )
    share = draw(st.sampled_from([None, None, 0.6, 0.9]))
    max_venues = draw(st.sampled_from([None, None, 1, 2]))
    on_grid = whole_lots or draw(st.booleans())
    units = draw(st.integers(1, amount_lots))
    amount = float(Fraction(units) * Fraction(repr(finest)))
    if not on_grid:  # an amount the lots may not reach
        amount = float(Fraction(repr(amount)) + Fraction(repr(finest)) / 3)
    return Instance(side, amount, books, markets, fixed, balances, share, max_venues)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(lots=(0.01, 0.02, 0.05, 0.1), amount_lots=120))
def test_coarse_lots_equal_the_dp(inst):
    check(inst)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(lots=(0.01, 0.01, 0.05), amount_lots=120, whole_lots=True))
def test_books_in_whole_lots_equal_the_dp(inst):
    """Levels in whole lots, as real venues' are, an order in whole lots, no fixed costs or
    balances: the exact split then often obeys the rules as it is
    (`constrained.exact_on_lots` answers, no rounding or search); where a lot, a minimum,
    a cap or max_venues is broken it must not."""
    check(inst)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(lots=(1e-5, 1e-5, 1e-4), amount_lots=7000, n_max=3))
def test_fine_lots_above_5000_per_venue_equal_the_dp(inst):
    """Binance-like 1e-5 lots with orders of ~0.07: thousands of lots on a venue."""
    check(inst)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances(lots=(0.01, 0.02, 0.05, 0.1), amount_lots=120, deep=300))
def test_deep_books_equal_the_dp(inst):
    """Books hundreds of levels deeper than any order: route() cuts them to the levels the
    rules can use (`route._rules_reach`); the answer must still be the DP's on every level."""
    assert min(len(b.asks) for b in inst.books) > 300
    check(inst)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_real_books_and_lots_cut_or_whole_give_the_same_quote(side):
    """The real recorded books (Binance 1,000 levels a side, Bybit, OKX) with the venues'
    real lots (1e-5, 1e-6, 1e-8) and minimums: without baselines route() runs the rules on
    books cut to what the legs can use, with baselines on the whole books. Same quote."""
    from liquidroute.venues.sample import sample_markets, sample_snapshots

    snaps, markets = sample_snapshots(), sample_markets()
    for amount in (0.003, 0.05, 0.7, 4.0, 25.0, 60.0):
        cut = route(snaps, side, amount, markets=markets, baselines=False)
        whole = route(snaps, side, amount, markets=markets, baselines=True)
        assert [(g.venue, g.amount, g.cost) for g in cut.legs] == [
            (g.venue, g.amount, g.cost) for g in whole.legs
        ], amount
        assert (cut.total_cost, cut.solver, cut.complete, cut.reachable) == (
            whole.total_cost,
            whole.solver,
            whole.complete,
            whole.reachable,
        )


def test_max_share_is_a_share_of_the_order_when_the_books_fall_short():
    """max_share caps a leg at a share of the order asked, also when balances and depth
    cannot fill it: 60 % of 1.0 lets v1 give its whole 0.5 (it once capped at 60 % of
    what the exact split filled, 0.8: 0.48, an under-fill the DP caught)."""
    v0 = DepthSnapshot("v0", "X/Y", [[99.0, 10.0]], [[100.0, 10.0]])
    v1 = DepthSnapshot("v1", "X/Y", [[99.0, 10.0]], [[100.0, 0.5]])
    markets = {v: Market(v, "X/Y", 0.0, amount_step=0.01) for v in ("v0", "v1")}
    q = route(
        [v0, v1], "buy", 1.0, markets=markets, balances={"v0": 30.0}, max_share=0.6,
        baselines=False,
    )  # fmt: skip
    legs = {leg.venue: leg.amount for leg in q.legs}
    assert legs == {"v0": pytest.approx(0.3), "v1": pytest.approx(0.5)}
    assert q.filled == pytest.approx(0.8) and not q.complete


def test_an_exact_split_on_its_lots_is_the_answer_in_exact_decimals():
    """Levels of 0.1 and 0.2 lots: the exact split gives v0 0.1 + 0.2 =
    0.30000000000000004 in floats. It obeys every rule as it is, so it is the answer
    (solver "exact", no search), with the leg on its lots exactly (0.3) and the cost of
    walking the books for 0.3, as the DP finds it."""
    v0 = DepthSnapshot("v0", "X/Y", [[99.0, 1.0]], [[100.0, 0.1], [101.0, 0.2], [103.0, 5.0]])
    v1 = DepthSnapshot("v1", "X/Y", [[99.0, 1.0]], [[100.5, 0.3], [102.0, 5.0]])
    markets = {
        v: Market(v, "X/Y", 0.001, amount_step=0.1, min_amount=0.1, min_notional=10.0)
        for v in ("v0", "v1")
    }
    inst = Instance("buy", 0.6, [v0, v1], markets, {}, {}, None, None)
    q = route(inst.books, "buy", 0.6, markets=markets, baselines=False)
    assert q.solver == "exact" and q.complete
    assert {leg.venue: leg.amount for leg in q.legs} == {"v0": 0.3, "v1": 0.3}
    assert q.total_cost == pytest.approx((100.0 * 0.1 + 101.0 * 0.2 + 100.5 * 0.3) * 1.001)
    check(inst)
    # a minimum notional the exact split's v1 leg misses: not the answer as it is
    markets["v1"] = Market("v1", "X/Y", 0.001, amount_step=0.1, min_notional=40.0)
    q = route(inst.books, "buy", 0.6, markets=markets, baselines=False)
    assert q.solver != "exact"
    check(inst)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_cached_cut_serves_new_amounts_and_gives_the_same_quote(side):
    """Through a LadderCache the rules' cut of a book reaches the power of two above r_v
    (`LadderCache.reaching`): a new amount in the same octave gets the very same cut, a
    larger one a cut at least as deep, and every quote equals route() on whole books."""
    from liquidroute.optimizer.exact import LadderCache
    from liquidroute.venues.sample import sample_markets, sample_snapshots

    snaps, markets = sample_snapshots(), sample_markets()
    cache = LadderCache()
    for amount in (0.003, 0.05, 0.7, 0.75, 4.0, 25.0, 60.0):
        cut = route(snaps, side, amount, markets=markets, baselines=False, cache=cache)
        whole = route(snaps, side, amount, markets=markets, baselines=True)
        assert [(g.venue, g.amount, g.cost) for g in cut.legs] == [
            (g.venue, g.amount, g.cost) for g in whole.legs
        ], amount
        assert (cut.total_cost, cut.solver, cut.complete) == (
            whole.total_cost,
            whole.solver,
            whole.complete,
        )
    levels = snaps[0].levels(side)
    a, b, c = (cache.reaching(levels, size) for size in (9.0, 15.9, 16.1))
    assert a is b and len(c) >= len(a)
    assert a[:, 1].sum() >= 16.0 or len(a) == len(levels)  # reaches 2^4 >= 9 and 15.9
    assert c[:, 1].sum() >= 32.0 or len(c) == len(levels)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_on_real_books_the_split_taken_as_it_is_equals_the_searched_one(side, monkeypatch):
    """The real recorded books with the venues' real lots (1e-5, 1e-6, 1e-8) and
    minimums: where the exact split is taken as it is (`exact_on_lots`), the rounding and
    the search it skips (run here by switching it off) find the same legs at the same
    cost; it answers on these books for small and large orders alike."""
    import liquidroute.optimizer.constrained as constrained
    from liquidroute.venues.sample import sample_markets, sample_snapshots

    snaps, markets = sample_snapshots(), sample_markets()
    taken_as_is = constrained.exact_on_lots
    answered = 0
    for amount in (0.003, 0.05, 0.7, 1.0, 4.0, 25.0, 60.0):
        calls: list[bool] = []

        def spy(*args, calls=calls):
            got = taken_as_is(*args)
            calls.append(got is not None)
            return got

        monkeypatch.setattr(constrained, "exact_on_lots", spy)
        fast = route(snaps, side, amount, markets=markets, baselines=False)
        monkeypatch.setattr(constrained, "exact_on_lots", lambda *args: None)
        searched = route(snaps, side, amount, markets=markets, baselines=False)
        if any(calls):
            answered += 1
            assert fast.solver == "exact"
        assert [(g.venue, g.amount) for g in fast.legs] == [
            (g.venue, g.amount) for g in searched.legs
        ], amount
        assert fast.total_cost == pytest.approx(searched.total_cost, rel=1e-12)
        assert (fast.filled, fast.complete) == (searched.filled, searched.complete)
    assert answered >= 4
