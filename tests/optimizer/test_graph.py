"""Multi-hop routing: the joint LP against an independent LP (scipy), conservation, and
joint versus hop-by-hop."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from liquidroute import DepthSnapshot, InvalidInputError, Market, route, route_graph
from liquidroute.errors import InsufficientLiquidityError
from liquidroute.venues.sample_graph import sample_graph_markets, sample_graph_snapshots

MIDS = {"BTC": 60_000.0, "ETH": 2_500.0, "USDT": 1.0, "USDC": 1.0002}


def book(rng, venue, symbol, levels=8, skew=0.0):
    base, quote = symbol.split("/")
    mid = MIDS[base] / MIDS[quote] * (1 + skew)
    gaps = mid * rng.uniform(1e-5, 5e-4, (2, levels))
    asks = mid * (1 + 1e-4) + np.cumsum(gaps[0])
    bids = mid * (1 - 1e-4) - np.cumsum(gaps[1])
    usdt = rng.lognormal(9, 1, (2, levels))  # notional per level in USDT
    sa = usdt[0] / (asks * MIDS[quote])
    sb = usdt[1] / (bids * MIDS[quote])
    return DepthSnapshot(venue, symbol, np.column_stack([bids, sb]), np.column_stack([asks, sa]))


def scipy_optimum(snaps, fees, source, target, amount_in, hops_allowed):
    """Arc-based LP with explicit matrices, written independently of the library.

    Variables: one per (book side, level), base units. Only book sides that can be part
    of a simple path are included (enumerated here by brute force over assets).
    """
    sides = []
    for s, f in zip(snaps, fees, strict=True):
        base, quote = s.symbol.split("/")
        sides.append((quote, base, s.asks[:, 0] * (1 + f), np.ones(len(s.asks)), s.asks[:, 1]))
        sides.append((base, quote, np.ones(len(s.bids)), s.bids[:, 0] * (1 - f), s.bids[:, 1]))
    # simple paths by brute force DFS
    on_path = set()

    def dfs(node, visited, used, depth):
        if node == target:
            on_path.update(used)
            return
        if depth == hops_allowed:
            return
        for i, (a, b, *_rest) in enumerate(sides):
            if a == node and b not in visited:
                dfs(b, visited | {b}, [*used, i], depth + 1)

    dfs(source, {source}, [], 0)
    sides = [sides[i] for i in sorted(on_path)]
    n = sum(len(sd[4]) for sd in sides)
    assets = sorted({sd[0] for sd in sides} | {sd[1] for sd in sides})
    rows = {a: np.zeros(n) for a in assets}  # net outflow of asset a
    c = np.zeros(n)
    bounds = []
    k = 0
    for a, b, in_rate, out_rate, size in sides:
        for j in range(len(size)):
            rows[a][k] += in_rate[j]
            rows[b][k] -= out_rate[j]
            if b == target:
                c[k] -= out_rate[j]
            if a == target:
                c[k] += in_rate[j]
            bounds.append((0, size[j]))
            k += 1
    a_eq = [rows[source]] + [rows[a] for a in assets if a not in (source, target)]
    b_eq = [amount_in] + [0.0] * (len(a_eq) - 1)
    res = linprog(
        c,
        A_eq=np.array(a_eq),
        b_eq=b_eq,
        bounds=bounds,
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    return -res.fun if res.status == 0 else None


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), amount=st.floats(1_000, 400_000), hops=st.integers(1, 3))
def test_joint_lp_equals_an_independent_formulation(seed, amount, hops):
    rng = np.random.default_rng(seed)
    specs = [
        ("a", "BTC/USDT"),
        ("b", "BTC/USDT"),
        ("a", "ETH/USDT"),
        ("b", "ETH/BTC"),
        ("a", "USDC/USDT"),
        ("b", "ETH/USDC"),
        ("a", "BTC/USDC"),
    ]
    snaps = [book(rng, v, s, skew=float(rng.normal(0, 3e-4))) for v, s in specs]
    fees = [float(rng.choice([0.0, 0.0005, 0.001])) for _ in snaps]
    markets = [Market(s.venue, s.symbol, f) for s, f in zip(snaps, fees, strict=True)]
    expected = scipy_optimum(snaps, fees, "USDT", "ETH", amount, hops)
    if expected is None:
        with pytest.raises(InsufficientLiquidityError):
            route_graph(snaps, "USDT", "ETH", markets=markets, amount_in=amount, max_hops=hops)
        return
    q = route_graph(snaps, "USDT", "ETH", markets=markets, amount_in=amount, max_hops=hops)
    assert q.amount_out == pytest.approx(expected, rel=1e-8)
    assert q.amount_in == pytest.approx(amount, rel=1e-9)
    check_conservation(q)


def check_conservation(q):
    """What arrives at each bridge asset leaves it again, summed over venue legs."""
    net = {}
    for hop in q.hops:
        for leg in hop.legs:
            net[leg.asset_in] = net.get(leg.asset_in, 0.0) - leg.amount_in
            net[leg.asset_out] = net.get(leg.asset_out, 0.0) + leg.amount_out
            assert leg.amount_in > 0 and leg.amount_out > 0
    for asset, value in net.items():
        if asset == q.source:
            assert value == pytest.approx(-q.amount_in, rel=1e-8)
        elif asset == q.target:
            assert value == pytest.approx(q.amount_out, rel=1e-8)
        else:
            scale = max(
                abs(leg.amount_in) for h in q.hops for leg in h.legs if leg.asset_in == asset
            )
            assert abs(value) <= 1e-7 * scale, (asset, value)


def test_direct_only_equals_route():
    rng = np.random.default_rng(1)
    snaps = [book(rng, v, "BTC/USDT") for v in ("a", "b", "c")]
    markets = [
        Market(s.venue, s.symbol, f) for s, f in zip(snaps, (0.001, 0.0005, 0.002), strict=True)
    ]
    by_venue = {m.venue: m for m in markets}
    g = route_graph(snaps, "USDT", "BTC", markets=markets, amount_in=150_000)
    r = route(snaps, "buy", 150_000, amount_in="quote", markets=by_venue)
    assert g.amount_out == pytest.approx(r.filled, rel=1e-9)
    g2 = route_graph(snaps, "BTC", "USDT", markets=markets, amount_in=2.0)
    r2 = route(snaps, "sell", 2.0, markets=by_venue)
    assert g2.amount_out == pytest.approx(r2.total_cost, rel=1e-9)
    g3 = route_graph(snaps, "USDT", "BTC", markets=markets, amount_out=1.5)
    r3 = route(snaps, "buy", 1.5, markets=by_venue)
    assert g3.amount_in == pytest.approx(r3.total_cost, rel=1e-9)


def sequential(snaps, markets, path_assets, amount):
    """Hop by hop: each hop's best output (over all venues) fed into the next."""
    by_venue = {}
    for m in markets:
        by_venue.setdefault(m.symbol, {})[m.venue] = m
    for a, b in itertools.pairwise(path_assets):
        direct = [s for s in snaps if set(s.symbol.split("/")) == {a, b}]
        symbol = direct[0].symbol
        side = "buy" if symbol.split("/")[0] == b else "sell"
        if side == "buy":
            amount = route(
                direct, "buy", amount, amount_in="quote", markets=by_venue[symbol]
            ).filled
        else:
            amount = route(direct, "sell", amount, markets=by_venue[symbol]).total_cost
    return amount


def test_joint_beats_hop_by_hop():
    """USDT -> ETH: half the value is best routed via BTC, half directly. Solving the first
    hop greedily (all USDT into BTC at the best BTC price) then the second cannot split."""
    snaps, markets = sample_graph_snapshots(), sample_graph_markets()
    amount = 500_000.0
    joint = route_graph(snaps, "USDT", "ETH", markets=markets, amount_in=amount, bridges=["BTC"])
    via_btc = sequential(snaps, markets, ["USDT", "BTC", "ETH"], amount)
    assert joint.amount_out > via_btc
    gain_bps = (joint.amount_out / via_btc - 1) * 1e4
    assert gain_bps > 1.0  # strictly and materially better
    check_conservation(joint)


def test_sample_graph_routes_and_reports_paths():
    snaps, markets = sample_graph_snapshots(), sample_graph_markets()
    q = route_graph(snaps, "USDT", "ETH", markets=markets, amount_in=50_000, max_hops=2)
    assert q.paths and all(p["hops"] <= 2 for p in q.paths)
    best_alone = max(p["amount_out"] or 0 for p in q.paths)
    assert q.amount_out >= best_alone * (1 - 1e-9)  # joint >= any single path
    assert q.direct_out is not None and q.amount_out >= q.direct_out * (1 - 1e-9)
    d = q.to_dict()
    assert d["hops"] and d["lp_variables"] > 0


def test_hop_penalty_keeps_direct_unless_it_pays():
    snaps, markets = sample_graph_snapshots(), sample_graph_markets()
    free = route_graph(snaps, "USDC", "ETH", markets=markets, amount_in=150_000)
    strict = route_graph(
        snaps, "USDC", "ETH", markets=markets, amount_in=150_000, hop_penalty_bps=10_000
    )
    assert strict.amount_out == pytest.approx(strict.direct_out, rel=1e-9)
    assert free.amount_out >= strict.amount_out * (1 - 1e-12)
    assert all(len(h.legs) for h in strict.hops) and len(strict.hops) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"source": "XRP"}, InvalidInputError, "unknown source asset XRP"),
        ({"target": "USDT", "source": "USDT"}, InvalidInputError, "both USDT"),
        ({"amount_in": -5.0}, InvalidInputError, "amount_in must be a positive"),
        ({"amount_in": float("nan")}, InvalidInputError, "amount_in"),
        ({"amount_out": 1.0}, InvalidInputError, "exactly one"),
        ({"bridges": ["DOGE"]}, InvalidInputError, "unknown bridge asset DOGE"),
        ({"source": "USDC", "max_hops": 1, "bridges": []}, None, None),
        ({"max_hops": 0}, InvalidInputError, "max_hops"),
    ],
)
def test_bad_input(kwargs, error, words):
    snaps, markets = sample_graph_snapshots(), sample_graph_markets()
    args = {"source": "USDT", "target": "ETH", "amount_in": 1000.0} | kwargs
    if error is None:
        route_graph(snaps, markets=markets, **args)
        return
    with pytest.raises(error, match=words):
        route_graph(snaps, markets=markets, **args)


def test_no_path_within_max_hops_is_not_routable():
    rng = np.random.default_rng(2)
    snaps = [book(rng, "a", "BTC/USDT"), book(rng, "a", "ETH/BTC"), book(rng, "a", "USDC/USDT")]
    markets = [Market("a", s.symbol, 0.001) for s in snaps]
    with pytest.raises(InsufficientLiquidityError, match="no path from USDC to ETH within 2"):
        route_graph(snaps, "USDC", "ETH", markets=markets, amount_in=100.0, max_hops=2)
    ok = route_graph(snaps, "USDC", "ETH", markets=markets, amount_in=100.0, max_hops=3)
    assert len(ok.hops) == 3
