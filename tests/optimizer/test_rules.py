"""Routing within venue rules: brute force on small cases, bounds and properties on large."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from liquidroute import DepthSnapshot, InvalidInputError, Market, route
from liquidroute.errors import InfeasibleConstraintsError
from liquidroute.venues.sample import sample_markets, sample_snapshots
from tests.strategies import make_book

A = DepthSnapshot("a", "BTC/USDT", [[99, 5]], [[100, 0.35], [101, 0.4], [103, 2]])
B = DepthSnapshot("b", "BTC/USDT", [[98, 5]], [[100.5, 0.5], [102, 1.0]])
C = DepthSnapshot("c", "BTC/USDT", [[97, 5]], [[100.2, 0.25], [104, 1.0]])


def cost_of(snap: DepthSnapshot, fee: float, q: float) -> float:
    left, cost = q, 0.0
    for price, size in snap.asks.tolist():
        take = min(size, left)
        cost += take * price * (1 + fee)
        left -= take
    return math.inf if left > 1e-12 else cost


def brute_force(snaps, markets, amount, fixed=None, max_venues=None):
    """Every lot-multiple allocation; the most filled, then the cheapest."""
    fixed = fixed or {}
    grids = []
    for s in snaps:
        m = markets[s.venue]
        depth = float(s.asks[:, 1].sum())
        n = math.floor(min(depth, amount) / m.amount_step + 1e-9)
        options = [0.0]
        for k in range(1, n + 1):
            q = round(k * m.amount_step, 12)
            notional = cost_of(s, 0.0, q)
            if q >= (m.min_amount or 0) and notional >= (m.min_notional or 0):
                options.append(q)
        grids.append(options)
    best = None
    for combo in itertools.product(*grids):
        total = sum(combo)
        if total > amount + 1e-9:
            continue
        used = [q > 0 for q in combo]
        if max_venues is not None and sum(used) > max_venues:
            continue
        cost = sum(
            cost_of(s, markets[s.venue].taker_fee, q) + (fixed.get(s.venue, 0) if q > 0 else 0)
            for s, q in zip(snaps, combo, strict=True)
        )
        key = (-round(total, 9), cost)
        if best is None or key < best[0]:
            best = (key, combo)
    return best


def market(venue, step, fee=0.001, min_amount=None, min_notional=None):
    return Market(
        venue,
        "BTC/USDT",
        fee,
        amount_step=step,
        min_amount=min_amount,
        min_notional=min_notional,
        price_tick=0.1,
    )


@pytest.mark.parametrize(
    ("amount", "kwargs"),
    [
        (0.9, {}),
        (1.0, {"fixed": {"b": 2.0}}),
        (1.1, {"max_venues": 1}),
        (0.7, {"fixed": {"a": 0.5, "c": 5.0}, "max_venues": 2}),
        (1.3, {}),
    ],
)
def test_equals_brute_force_on_small_instances(amount, kwargs):
    markets = {
        "a": market("a", 0.05, min_amount=0.1),
        "b": market("b", 0.1, fee=0.0005, min_notional=30.0),
        "c": market("c", 0.05, fee=0.002),
    }
    snaps = [A, B, C]
    (key, _combo) = brute_force(
        snaps, markets, amount, kwargs.get("fixed"), kwargs.get("max_venues")
    )
    q = route(
        snaps,
        "buy",
        amount,
        markets=markets,
        fixed_costs=kwargs.get("fixed"),
        max_venues=kwargs.get("max_venues"),
        baselines=False,
    )
    assert q.solver in ("milp", "rounded-optimal", "exact")
    assert q.filled == pytest.approx(-key[0], abs=1e-9)
    assert q.total_cost == pytest.approx(key[1], rel=1e-9)
    assert q.total_cost >= q.lower_bound - 1e-9


def check_rules(q, markets, balances=None, max_venues=None, max_share=None):
    for leg in q.legs:
        m = markets[leg.venue]
        if m.amount_step:
            lots = leg.amount / m.amount_step
            assert abs(lots - round(lots)) < 1e-6, (leg, m.amount_step)
        assert leg.amount >= (m.min_amount or 0) * (1 - 1e-12)
        assert leg.amount * leg.avg_price >= (m.min_notional or 0) * (1 - 1e-9)
        if m.max_amount:
            assert leg.amount <= m.max_amount * (1 + 1e-12)
        if balances and leg.venue in balances:
            assert leg.cost <= balances[leg.venue] * (1 + 1e-9)
        if max_share:
            assert leg.amount <= max_share * q.requested * (1 + 1e-9)
    if max_venues:
        assert len(q.legs) <= max_venues
    assert sum(leg.amount for leg in q.legs) == pytest.approx(q.filled, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(2, 6),
    side=st.sampled_from(["buy", "sell"]),
    frac=st.floats(0.05, 0.9),
    max_venues=st.one_of(st.none(), st.integers(1, 3)),
    with_fixed=st.booleans(),
)
# found by random draws: an order 3.5e-8 BTC off its 1e-5 lots was snapped onto them (so
# neither complete nor given its reachable amounts), and a MILP window cut off its own
# seed by 5e-12 BTC (so the order fell back to a rounded under-fill)
@example(
    seed=1031301189, n=3, side="sell", frac=0.7403729134740635, max_venues=None, with_fixed=True
)
@example(seed=5, n=2, side="sell", frac=0.17168707400186453, max_venues=2, with_fixed=False)
# a draw whose MILP needs ~1.6 s on a slow machine: past the default 1 s limit, the quote
# says so (a warning and the gap it proved); the test gives the solver time to prove it
@example(seed=399404116, n=5, side="buy", frac=0.5, max_venues=2, with_fixed=False)
def test_rules_hold_and_never_beat_the_bound(seed, n, side, frac, max_venues, with_fixed):
    rng = np.random.default_rng(seed)
    snaps = [make_book(rng, f"v{i}", 60_000 * (1 + rng.normal(0, 2e-4)), 60) for i in range(n)]
    markets = {
        s.venue: Market(
            s.venue,
            "BTC/USDT",
            float(rng.choice([0.0005, 0.001])),
            amount_step=float(rng.choice([1e-5, 1e-3, 0.01])),
            min_amount=float(rng.choice([0.0, 0.01])) or None,
            min_notional=float(rng.choice([0.0, 5.0, 500.0])) or None,
        )
        for s in snaps
    }
    depth = sum(float(s.levels(side)[:, 1].sum()) for s in snaps)
    fixed = {s.venue: float(rng.uniform(0, 20)) for s in snaps} if with_fixed else None
    q = route(
        snaps,
        side,
        depth * frac / 2,
        markets=markets,
        max_venues=max_venues,
        fixed_costs=fixed,
        baselines=False,
        time_limit=30.0,
    )
    check_rules(q, markets, max_venues=max_venues)
    assert q.solver != "rounded-fallback", q.warnings
    assert q.gap is not None and q.gap <= 1e-9
    if not q.complete:  # only the lots can fall short here: the books hold twice the order
        assert q.reachable is not None and q.reachable[0] == pytest.approx(q.filled)
        assert any("cannot add up to exactly" in w for w in q.warnings)
    fixed_total = sum(q.fixed_costs.values())
    book_cost = q.total_cost - fixed_total if side == "buy" else q.total_cost + fixed_total
    if side == "buy":
        assert book_cost >= q.lower_bound * (1 - 1e-9)
    else:
        assert book_cost <= q.lower_bound * (1 + 1e-9)


def test_balances_and_share_on_real_books():
    snaps, markets = sample_snapshots(), sample_markets()
    balances = {"bybit": 100_000.0, "okx": 50_000.0}
    q = route(snaps, "buy", 10, markets=markets, balances=balances, max_share=0.8)
    check_rules(q, markets, balances=balances, max_share=0.8)
    assert any("cut by balance" in leg.notes for leg in q.legs)
    assert q.complete


def test_rules_that_cannot_bind_change_nothing():
    snaps = sample_snapshots()
    plain = {v: Market(v, "BTC/USDT", m.taker_fee) for v, m in sample_markets().items()}
    free = route(snaps, "buy", 7.3, markets=plain)
    forced = route(snaps, "buy", 7.3, markets=plain, rules=True)
    assert free.solver == "exact" and forced.solver == "exact"
    assert forced.total_cost == pytest.approx(free.total_cost, rel=1e-12)
    loose = route(snaps, "buy", 7.3, markets=plain, max_venues=3, max_share=1.0)
    assert loose.total_cost == pytest.approx(free.total_cost, rel=1e-12)


def test_fixed_costs_make_tiny_legs_disappear():
    snaps, markets = sample_snapshots(), sample_markets()
    free = route(snaps, "buy", 12, markets=markets)
    small = min(free.legs, key=lambda leg: leg.amount)
    fixed = {leg.venue: 0.0 for leg in free.legs} | {small.venue: 500.0}
    q = route(snaps, "buy", 12, markets=markets, fixed_costs=fixed)
    assert small.venue not in q.venues or q.fixed_costs.get(small.venue) == 500.0
    assert q.total_cost <= free.total_cost + 500.0


def test_infeasible_rules_say_why():
    m = {"a": market("a", 0.5, min_amount=1.0)}
    with pytest.raises(InfeasibleConstraintsError, match="smallest order 1 BTC"):
        route([A], "buy", 0.6, markets=m)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"balances": {"a": -1.0}}, "balances"),
        ({"fixed_costs": {"a": float("nan")}}, "fixed_costs"),
        ({"max_share": 0.0}, "max_share"),
        ({"max_share": 1.5}, "max_share"),
        ({"max_venues": 0}, "max_venues"),
        ({"balances": {"zz": 1.0}}, "balances"),
    ],
)
def test_bad_rule_input(kwargs, words):
    with pytest.raises(InvalidInputError, match=words):
        route([A, B], "buy", 0.5, markets={"a": market("a", 0.05), "b": market("b", 0.1)}, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"amount_step": 0.0}, "amount_step"),
        ({"amount_step": -0.1}, "amount_step"),
        ({"min_amount": 2.0, "max_amount": 1.0}, "exceeds max_amount"),
        ({"taker_fee": float("nan")}, "taker_fee"),
    ],
)
def test_bad_market_rules(kwargs, words):
    with pytest.raises(InvalidInputError, match=words):
        Market(**{"venue": "x", "symbol": "BTC/USDT", **kwargs})


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    side=st.sampled_from(["buy", "sell"]),
    frac=st.floats(0.05, 0.6),
    shift=st.floats(-5e-4, 5e-4),
)
def test_pruning_unreachable_levels_keeps_the_optimum(seed, side, frac, shift):
    """Pruning with a bound proven by a full fill never cuts the optimum (issue 12 item 10).

    It used to fail ~1 run in 5, one lot short: the slack came from a fallback that filled
    less than the target, measured against the rule-free cost of yet another amount with
    the marginal price of the target, so it was not a bound. Now the slack is UB − D(λ),
    UB a split of exactly the target and D(λ) the weak dual, valid for ANY λ: the test
    shifts λ at random.
    """
    from liquidroute.optimizer.constrained import _objective, _weak_dual, venue_rules
    from liquidroute.optimizer.curves import build_ladder
    from liquidroute.optimizer.exact import allocate, solve_exact
    from liquidroute.optimizer.milp import solve_rules
    from liquidroute.optimizer.rules import lattice

    rng = np.random.default_rng(seed)
    snaps = [make_book(rng, f"v{i}", 60_000, 80) for i in range(4)]
    markets = {
        s.venue: Market(
            s.venue,
            "BTC/USDT",
            0.001,
            amount_step=0.001,
            min_notional=float(rng.choice([5.0, 2_000.0])),
        )
        for s in snaps
    }
    venues = [s.venue for s in snaps]
    ladder = build_ladder([s.levels(side) for s in snaps], [0.001] * 4, side)
    amount = round(float(ladder.depth().sum()) * frac, 3)
    fixed = {v: float(rng.uniform(0, 30)) for v in venues}
    rules = venue_rules(venues, markets, ladder, amount, fixed, None, None)
    lat = lattice(ladder, rules, amount)
    goal = lat.units(amount)
    full = solve_rules(ladder, rules, lat, goal)
    assert full is not None
    ub = allocate(ladder, full.amounts)
    assert ub.filled == pytest.approx(amount, abs=1e-12)  # a full fill: a valid bound
    lam = float(solve_exact(ladder, amount).marginal) * (1 + shift)
    slack = _objective(ladder, ub, rules) - _weak_dual(ladder, lam, amount)
    assert slack >= 0
    pruned = solve_rules(ladder, rules, lat, goal, prune=(lam, slack))
    assert pruned is not None
    b = allocate(ladder, pruned.amounts)
    assert b.filled == pytest.approx(amount, abs=1e-12)
    scale = abs(_objective(ladder, ub, rules))
    assert _objective(ladder, b, rules) == pytest.approx(
        _objective(ladder, ub, rules), abs=2e-9 * scale
    )
