"""Multi-hop against a path-based LP oracle (scipy linprog over explicitly enumerated simple
paths), on small random graphs with and without profitable cycles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from liquidroute import DepthSnapshot, InvalidInputError, Market, route_graph
from liquidroute.errors import InsufficientLiquidityError
from liquidroute.optimizer.graph import profitable_cycles, usable_arcs
from liquidroute.router.graph_route import book_edges

# --- the oracle: written from the problem statement, sharing no code with the library ---------


def sides(snaps, fees):
    """(src, dst, in_rate, out_rate, size, label) per book side, base units per level."""
    out = []
    for s, f in zip(snaps, fees, strict=True):
        base, quote = s.symbol.split("/")
        a, b = np.asarray(s.asks), np.asarray(s.bids)
        out.append((quote, base, a[:, 0] * (1 + f), np.ones(len(a)), a[:, 1], f"{s.venue}:buy"))
        out.append((base, quote, np.ones(len(b)), b[:, 0] * (1 - f), b[:, 1], f"{s.venue}:sell"))
    return out


def all_simple_paths(book_sides, source, target, max_hops):
    """Every simple path (indices into book_sides) by depth-first search."""
    paths = []

    def dfs(node, visited, used):
        if node == target:
            paths.append(used)
            return
        if len(used) == max_hops:
            return
        for i, (a, b, *_rest) in enumerate(book_sides):
            if a == node and b not in visited:
                dfs(b, visited | {b}, [*used, i])

    dfs(source, {source}, [])
    return paths


def path_lp(book_sides, paths, amount, exact_in, caps=None, at_most=False):
    """Path-flow LP: variable z[p, i, l] = base traded on level l of path p's i-th book.

    Along a path, what hop i delivers is what hop i+1 consumes; a book's level is shared by
    every (path, position) using it; spend exactly `amount` (exact_in, maximise output) or
    deliver exactly `amount` (minimise input). `caps` {side index: most input}; with
    `at_most` the amount is a ceiling and the output is maximised. Returns (input, output)
    or None.
    """
    cols = []  # (path, position, side index, level)
    for p, path in enumerate(paths):
        for i, sd in enumerate(path):
            cols += [(p, i, sd, lv) for lv in range(len(book_sides[sd][4]))]
    n = len(cols)
    if n == 0:
        return None
    a_in = np.array([book_sides[sd][2][lv] for _, _, sd, lv in cols])
    a_out = np.array([book_sides[sd][3][lv] for _, _, sd, lv in cols])
    first = np.array([i == 0 for _, i, _, _ in cols])
    last = np.array([i == len(paths[p]) - 1 for p, i, _, _ in cols])
    eq, rhs = [], []
    for p, path in enumerate(paths):
        for i in range(len(path) - 1):
            row = np.zeros(n)
            for c, (q, j, _, _) in enumerate(cols):
                if q == p and j == i:
                    row[c] += a_out[c]
                if q == p and j == i + 1:
                    row[c] -= a_in[c]
            eq.append(row)
            rhs.append(0.0)
    end = np.where(first, a_in, 0.0) if exact_in else np.where(last, a_out, 0.0)
    if not at_most:
        eq.append(end)
        rhs.append(amount)
    levels = {}
    for c, (_, _, sd, lv) in enumerate(cols):
        levels.setdefault((sd, lv), []).append(c)
    ub_rows, ub = [], []
    for (sd, lv), members in levels.items():
        row = np.zeros(n)
        row[members] = 1.0
        ub_rows.append(row)
        ub.append(book_sides[sd][4][lv])
    for sd, cap in (caps or {}).items():
        ub_rows.append(np.array([a_in[c] if col[2] == sd else 0.0 for c, col in enumerate(cols)]))
        ub.append(cap)
    if at_most:
        ub_rows.append(end)
        ub.append(amount)
    cost = -np.where(last, a_out, 0.0) if exact_in or at_most else np.where(first, a_in, 0.0)
    res = linprog(
        cost,
        A_eq=np.array(eq) if eq else None,
        b_eq=rhs if eq else None,
        A_ub=np.array(ub_rows),
        b_ub=ub,
        bounds=(0, None),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if res.status != 0:
        return None
    z = res.x
    return float(np.where(first, a_in, 0.0) @ z), float(np.where(last, a_out, 0.0) @ z)


def cycle_gains(book_sides):
    """The best-rate product of every simple cycle (brute force over start assets)."""
    best = {}
    for a, b, i_r, o_r, _s, _l in book_sides:
        best[(a, b)] = max(best.get((a, b), 0.0), o_r[0] / i_r[0])
    assets = sorted({a for a, _ in best} | {b for _, b in best})
    gains = []

    def dfs(start, node, visited, gain):
        for (a, b), r in best.items():
            if a != node:
                continue
            if b == start:
                gains.append(gain * r)
            elif b not in visited and b > start:
                dfs(start, b, visited | {b}, gain * r)

    for s in assets:
        dfs(s, s, {s}, 1.0)
    return gains


def prefix_gain(book_sides, source, max_hops):
    """Per asset: the best-rate product over simple paths from the source (<= max_hops)."""
    best = {source: 1.0}

    def dfs(node, visited, gain, depth):
        if depth == max_hops:
            return
        for a, b, i_r, o_r, _s, _l in book_sides:
            if a == node and b not in visited:
                g = gain * o_r[0] / i_r[0]
                best[b] = max(best.get(b, 0.0), g)
                dfs(b, visited | {b}, g, depth + 1)

    dfs(source, {source}, 1.0, 0)
    return best


# --- random graphs -------------------------------------------------------------------------


def random_graph(rng, mispricing):
    """3-5 assets with true values; each market's mid is off by up to `mispricing`."""
    names = ["S", "T", "A", "B", "C"][: int(rng.integers(3, 6))]
    value = {a: float(rng.uniform(0.5, 2.0)) for a in names}
    pairs = [(b, q) for i, b in enumerate(names) for q in names[i + 1 :]]
    snaps, fees = [], []
    for b, q in pairs:
        for venue in ("x0", "x1")[: int(rng.integers(0, 3))]:
            mid = value[b] / value[q] * (1 + rng.uniform(-mispricing, mispricing))
            half = rng.uniform(2e-4, 2e-3)
            n = int(rng.integers(1, 4))
            gaps = np.cumsum(rng.uniform(1e-4, 3e-3, (2, n)), axis=1)
            sizes = rng.uniform(0.2, 3.0, (2, n))
            bids = np.column_stack([mid * (1 - half - gaps[0]), sizes[0]])
            asks = np.column_stack([mid * (1 + half + gaps[1]), sizes[1]])
            snaps.append(DepthSnapshot(venue, f"{b}/{q}", bids, asks))
            fees.append(float(rng.choice([0.0, 0.0005, 0.001])))
    markets = [Market(s.venue, s.symbol, f) for s, f in zip(snaps, fees, strict=True)]
    return snaps, fees, markets


def check_route(q, book_sides, max_hops):
    """Simple paths of <= max_hops, conserving flow, summing to the totals."""
    assert q.amount_in > 0 and q.amount_out > 0
    assert sum(p["flow_in"] for p in q.paths) == pytest.approx(q.amount_in, rel=1e-7)
    assert sum(p["flow_out"] for p in q.paths) == pytest.approx(q.amount_out, rel=1e-7)
    for p in q.paths:
        assert p["hops"] <= max_hops
        assert len(set(p["assets"])) == len(p["assets"])  # simple: no asset twice
        assert p["assets"][0] == q.source and p["assets"][-1] == q.target
    net = {}
    for hop in q.hops:
        for leg in hop.legs:
            net[leg.asset_in] = net.get(leg.asset_in, 0.0) - leg.amount_in
            net[leg.asset_out] = net.get(leg.asset_out, 0.0) + leg.amount_out
    assert net.pop(q.source) == pytest.approx(-q.amount_in, rel=1e-7)
    assert net.pop(q.target) == pytest.approx(q.amount_out, rel=1e-7)
    legs_in = max((leg.amount_in for h in q.hops for leg in h.legs), default=1.0)
    assert all(abs(v) <= 1e-7 * max(legs_in, 1.0) for v in net.values()), net


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    hops=st.integers(1, 5),
    exact_in=st.booleans(),
    cyclic=st.booleans(),
    size=st.floats(0.05, 3.0),
)
def test_equals_the_path_lp_oracle(seed, hops, exact_in, cyclic, size):
    rng = np.random.default_rng(seed)
    snaps, fees, markets = random_graph(rng, 0.08 if cyclic else 0.0)
    book_sides = sides(snaps, fees)
    assets = {sd[0] for sd in book_sides} | {sd[1] for sd in book_sides}
    if not {"S", "T"} <= assets:
        return
    paths = all_simple_paths(book_sides, "S", "T", hops)
    expected = path_lp(book_sides, paths, size, exact_in)
    gains = cycle_gains(book_sides)
    kwargs = {"amount_in": size} if exact_in else {"amount_out": size}
    if not paths:
        with pytest.raises(InsufficientLiquidityError, match="no path"):
            route_graph(snaps, "S", "T", markets=markets, max_hops=hops, **kwargs)
        return
    try:
        q = route_graph(snaps, "S", "T", markets=markets, max_hops=hops, **kwargs)
    except InsufficientLiquidityError:
        # refused only when no simple paths can carry it (or, >= 4 hops, after removing
        # arcs that closed a cycle)
        assert expected is None or hops >= 4
        return
    assert expected is not None, "routed an amount no set of simple paths can carry"
    check_route(q, book_sides, hops)
    # <= 3 hops the layered LP is the path LP; beyond, tracking repeated assets (<= 3
    # bridges here) makes it exact: the arc-removing fallback is never needed
    restricted = any("not proven optimal" in w for w in q.warnings)
    assert not restricted
    if exact_in:
        assert q.amount_in == pytest.approx(size, rel=1e-9)
        assert q.amount_out == pytest.approx(expected[1], rel=1e-7)
        # no leg carries more than the order can bring to its asset along simple paths
        reach = prefix_gain(book_sides, "S", hops)
        for hop in q.hops:
            for leg in hop.legs:
                assert leg.amount_in <= size * reach[leg.asset_in] * (1 + 1e-7)
    else:
        assert q.amount_out == pytest.approx(size, rel=1e-9)
        assert q.amount_in > 0 and math.isfinite(q.price)
        assert q.amount_in == pytest.approx(expected[0], rel=1e-7)
    # the books' profitable loops are reported, and only then
    reported = [w for w in q.warnings if w.startswith("profitable cycle")]
    assert bool(reported) == any(g > 1 + 1e-12 for g in gains)
    if not cyclic:
        assert not reported


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), exact_in=st.booleans())
def test_arc_removing_fallback_stays_on_simple_paths(seed, exact_in):
    """With tracking disabled (as past MAX_TRACKED assets), removing the arcs that close a
    repeat still gives simple paths of <= max_hops, never better than the oracle."""
    from liquidroute.optimizer import graph

    rng = np.random.default_rng(seed)
    snaps, fees, markets = random_graph(rng, 0.08)
    book_sides = sides(snaps, fees)
    paths = all_simple_paths(book_sides, "S", "T", 5)
    if not paths:
        return
    expected = path_lp(book_sides, paths, 1.0, exact_in)
    kwargs = {"amount_in": 1.0} if exact_in else {"amount_out": 1.0}
    saved = graph.MAX_TRACKED
    graph.MAX_TRACKED = 0
    try:
        q = route_graph(snaps, "S", "T", markets=markets, max_hops=5, **kwargs)
    except InsufficientLiquidityError:
        return
    finally:
        graph.MAX_TRACKED = saved
    assert expected is not None
    check_route(q, book_sides, 5)
    if exact_in:
        assert q.amount_out <= expected[1] * (1 + 1e-8)
    else:
        assert q.amount_in >= expected[0] * (1 - 1e-8)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), mispricing=st.sampled_from([0.0, 0.03, 0.1]))
def test_reported_cycles_are_real_loops_that_gain(seed, mispricing):
    rng = np.random.default_rng(seed)
    snaps, _fees, markets = random_graph(rng, mispricing)
    if not snaps:
        return
    edges = book_edges(snaps, markets)
    found = profitable_cycles(edges)
    brute = cycle_gains(sides(snaps, [m.taker_fee for m in markets]))
    assert bool(found) == any(g > 1 + 1e-12 for g in brute)
    for c in found:
        assert c.edges[-1].dst == c.edges[0].src
        assert all(a.dst == b.src for a, b in zip(c.edges, c.edges[1:], strict=False))
        assert math.prod(e.rate for e in c.edges) == pytest.approx(c.gain) and c.gain > 1
        assert max(brute) >= c.gain * (1 - 1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), hops=st.integers(1, 3))
def test_usable_books_are_exactly_those_on_short_simple_paths(seed, hops):
    """Forward/backward hop sets select the books of the enumerated paths, no more."""
    rng = np.random.default_rng(seed)
    snaps, fees, markets = random_graph(rng, 0.05)
    if not snaps:
        return
    edges = book_edges(snaps, markets)
    labels = [f"{e.venue}:{e.side}:{e.symbol}" for e in edges]
    book_sides = sides(snaps, fees)
    side_labels = [f"{sd[5]}:{s.symbol}" for s in snaps for sd in sides([s], [0.0])]
    on_paths = {side_labels[i] for p in all_simple_paths(book_sides, "S", "T", hops) for i in p}
    arcs = usable_arcs(edges, "S", "T", hops)
    assert {labels[i] for i, _ in arcs} == on_paths
    assert all(0 <= k < hops for _, k in arcs)


def test_paths_alone_are_valued_by_walking_their_books():
    """Each reported path's standalone value equals the oracle LP on that path alone."""
    rng = np.random.default_rng(11)
    for _ in range(30):
        snaps, fees, markets = random_graph(rng, 0.02)
        book_sides = sides(snaps, fees)
        paths = all_simple_paths(book_sides, "S", "T", 3)
        if not paths:
            continue
        for exact_in in (True, False):
            kwargs = {"amount_in": 0.5} if exact_in else {"amount_out": 0.5}
            try:
                q = route_graph(snaps, "S", "T", markets=markets, **kwargs)
            except InsufficientLiquidityError:
                continue
            for p in q.paths:
                labels = [label.split(":") for label in p["path"]]
                index = [
                    next(
                        i
                        for i, sd in enumerate(book_sides)
                        if sd[5] == f"{v}:{side}" and (sd[0], sd[1]) == pair
                    )
                    for (v, _sym, side), pair in zip(
                        labels, zip(p["assets"], p["assets"][1:], strict=False), strict=True
                    )
                ]
                alone = path_lp(book_sides, [index], 0.5, exact_in)
                if alone is None:
                    assert p["amount_in"] is None and p["amount_out"] is None
                else:
                    assert p["amount_in"] == pytest.approx(alone[0], rel=1e-8)
                    assert p["amount_out"] == pytest.approx(alone[1], rel=1e-8)


def bk(v, sym, mid, half=1e-3, size=10.0):
    return DepthSnapshot(
        v,
        sym,
        [[mid * (1 - half - i * 1e-3), size] for i in range(3)],
        [[mid * (1 + half + i * 1e-3), size] for i in range(3)],
    )


ISSUE_10_ITEM_5 = [
    bk("x0", "A/S", 1),
    bk("x0", "T/A", 1),
    bk("x0", "B/S", 1),
    bk("x0", "T/B", 1),
    bk("x0", "A/B", 1),
    bk("x1", "A/B", 1.05),
]


@pytest.mark.parametrize("hops", [3, 4, 6])
@pytest.mark.parametrize("exact_in", [True, False])
def test_issue_10_item_5_no_pumping(hops, exact_in):
    """A crossed A/B book across venues: the route must not loop it (it used to walk more
    than max_hops, trade 30x the order and answer amount_out=1 with amount_in=0)."""
    snaps = ISSUE_10_ITEM_5
    markets = [Market(s.venue, s.symbol, taker_fee=0.001) for s in snaps]
    kwargs = {"amount_in": 1.0} if exact_in else {"amount_out": 1.0}
    q = route_graph(snaps, "S", "T", markets=markets, max_hops=hops, **kwargs)
    book_sides = sides(snaps, [0.001] * len(snaps))
    check_route(q, book_sides, hops)
    expected = path_lp(book_sides, all_simple_paths(book_sides, "S", "T", hops), 1.0, exact_in)
    assert expected is not None
    assert q.amount_in == pytest.approx(expected[0], rel=1e-7)
    assert q.amount_out == pytest.approx(expected[1], rel=1e-7)
    assert q.amount_in > 0.9 and q.price > 0.9  # never amount_in = 0
    for hop in q.hops:
        for leg in hop.legs:
            assert leg.amount_in < 1.2  # legs of the order's size, not 30x
    cycle = [w for w in q.warnings if w.startswith("profitable cycle")]
    assert len(cycle) == 1 and "x0:A/B:buy" in cycle[0] and "x1:A/B:sell" in cycle[0]


def test_markets_as_route_takes_them():
    """{venue: Market} (as route()), {(venue, symbol): Market} or a list: one answer."""
    snaps = ISSUE_10_ITEM_5
    as_list = [Market(s.venue, s.symbol, taker_fee=0.001) for s in snaps]
    by_pair = {(m.venue, m.symbol): m for m in as_list}
    ref = route_graph(snaps, "S", "T", markets=as_list, amount_in=1.0)
    assert route_graph(snaps, "S", "T", markets=by_pair, amount_in=1.0).amount_out == (
        ref.amount_out
    )
    one = [s for s in snaps if s.symbol in ("A/S", "T/A")]
    one = [DepthSnapshot(f"v{i}", s.symbol, s.bids, s.asks) for i, s in enumerate(one)]
    by_venue = {s.venue: Market(s.venue, s.symbol, taker_fee=0.001) for s in one}
    q = route_graph(one, "S", "T", markets=by_venue, amount_in=1.0)
    assert q.amount_out == pytest.approx(
        route_graph(one, "S", "T", markets=list(by_venue.values()), amount_in=1.0).amount_out
    )
    with pytest.raises(InvalidInputError, match=r"markets\['x1'\] holds x0 A/S"):
        route_graph(snaps, "S", "T", markets={"x1": as_list[0]}, amount_in=1.0)


def test_bound_fixing_equals_the_full_lp_on_deep_books(monkeypatch):
    """Books of 200 levels make LPs of thousands of columns, solved through small restricted
    LPs: each answer's objective equals HiGHS on the whole LP, and is feasible for it."""
    from liquidroute.optimizer import graph
    from liquidroute.venues.sample_graph import sample_graph_markets, sample_graph_snapshots

    seen = []
    original = graph._solve_lp

    def spy(lp, group, rank, tol=1e-12):
        y = original(lp, group, rank, tol)
        seen.append((lp, y))
        return y

    monkeypatch.setattr(graph, "_solve_lp", spy)
    snaps, markets = sample_graph_snapshots(), sample_graph_markets()
    in_usdt = {"USDT": 1.0, "USDC": 1.0, "ETH": 2500.0, "BTC": 60_000.0}
    for value in (2e4, 3e5, 1.5e6):
        for source, target in (("USDT", "ETH"), ("ETH", "USDC"), ("USDC", "BTC")):
            spend, get = value / in_usdt[source], 0.5 * value / in_usdt[target]
            route_graph(snaps, source, target, markets=markets, amount_in=spend)
            route_graph(snaps, source, target, markets=markets, amount_out=get)
    big = [(lp, y) for lp, y in seen if len(lp.cost) > 400]
    assert len(big) >= 6
    for lp, y in big:
        full = graph._run(lp)
        assert full is not None and y is not None
        a = np.zeros(len(lp.row_lo))
        col = np.repeat(np.arange(len(lp.cost)), np.diff(lp.start))
        np.add.at(a, lp.index, lp.value * y[col])
        assert np.all(a >= lp.row_lo - 1e-8) and np.all(a <= lp.row_hi + 1e-8)
        assert np.all(y >= -1e-12) and np.all(y <= lp.upper + 1e-12)
        assert lp.cost @ y == pytest.approx(lp.cost @ full[0], rel=1e-9, abs=1e-12)


def test_direct_books_of_both_orientations():
    """USDC/USDT on one venue, USDT/USDC on another: the direct answer mixes a buy and a
    sell, and equals the path oracle."""
    a = DepthSnapshot(
        "x0", "USDC/USDT", [[0.9995, 500.0], [0.999, 800.0]], [[1.0005, 400.0], [1.001, 900.0]]
    )
    b = DepthSnapshot(
        "x1", "USDT/USDC", [[0.9996, 300.0], [0.9991, 700.0]], [[1.0004, 600.0], [1.002, 900.0]]
    )
    markets = {
        ("x0", "USDC/USDT"): Market("x0", "USDC/USDT", 0.0005),
        ("x1", "USDT/USDC"): Market("x1", "USDT/USDC", 0.001),
    }
    book_sides = sides([a, b], [0.0005, 0.001])
    for exact_in in (True, False):
        kwargs = {"amount_in": 800.0} if exact_in else {"amount_out": 800.0}
        q = route_graph([a, b], "USDT", "USDC", markets=markets, **kwargs)
        expected = path_lp(
            book_sides, all_simple_paths(book_sides, "USDT", "USDC", 1), 800.0, exact_in
        )
        assert q.amount_in == pytest.approx(expected[0], rel=1e-9)
        assert q.amount_out == pytest.approx(expected[1], rel=1e-9)
        assert {leg.side for h in q.hops for leg in h.legs} == {"buy", "sell"}
        assert q.direct_out == pytest.approx(q.amount_out, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    exact_in=st.booleans(),
    at_most=st.booleans(),
    cap_share=st.floats(0.05, 1.0),
)
def test_solve_flow_with_caps_and_ceilings(seed, exact_in, at_most, cap_share):
    """`solve_flow` (the service's entry point): balances cap what a book may consume, and
    with `at_most` the amount is a ceiling (the partial fill); equal to the path oracle."""
    from liquidroute.optimizer.graph import solve_flow

    rng = np.random.default_rng(seed)
    snaps, fees, markets = random_graph(rng, 0.0)
    book_sides = sides(snaps, fees)
    paths = all_simple_paths(book_sides, "S", "T", 3)
    if not paths:
        return
    edges = book_edges(snaps, markets)
    by_label = {(f"{e.venue}:{e.side}", e.src, e.dst): e for e in edges}
    path_edges = [[by_label[(book_sides[i][5], *book_sides[i][:2])] for i in p] for p in paths]
    first = paths[0][0]  # cap the first book of the first path
    cap = cap_share * float(book_sides[first][2] @ book_sides[first][4])
    caps = {by_label[(book_sides[first][5], *book_sides[first][:2])].key: cap}
    amount = 1.5
    kwargs = {"amount_in": amount} if exact_in else {"amount_out": amount}
    got = solve_flow(path_edges, "S", "T", in_caps=caps, at_most=at_most, **kwargs)
    expected = path_lp(book_sides, paths, amount, exact_in, caps={first: cap}, at_most=at_most)
    if expected is None or expected[1] <= 1e-12:
        assert got is None or got.amount_out <= 1e-9
        return
    assert got is not None
    assert got.amount_out == pytest.approx(expected[1], rel=1e-7)
    if not at_most:
        assert got.amount_in == pytest.approx(expected[0], rel=1e-7)
    key = next(iter(caps))
    edge = next(e for e in got.edges if e.key == key) if key in got.x else None
    if edge is not None:
        assert float(edge.in_rate @ got.x[key]) <= cap * (1 + 1e-9)
