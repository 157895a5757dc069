"""The examples of issues 10, 11 and 12 that the rules got wrong, with their right answers."""

from __future__ import annotations

import itertools
import json
import math
import re
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from liquidroute import DepthSnapshot, Market, route
from liquidroute.cli.app import app
from liquidroute.errors import InfeasibleConstraintsError
from liquidroute.optimizer.constrained import venue_rules
from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.milp import solve_rules
from liquidroute.optimizer.rules import lattice
from liquidroute.venues.sample import sample_markets, sample_snapshots


def legs(q) -> dict[str, float]:
    return {leg.venue: leg.amount for leg in q.legs}


def test_issue10_item1_full_fill_exists_and_is_found():
    """Was: 0.77 of 0.82 filled, `complete=True`, `unfilled=0` (a pruned full fill)."""
    a = DepthSnapshot(
        "a", "BTC/USDT", [[60000, 1]], [[62126.784, 0.02], [62170.065, 0.1], [62182.431, 0.09]]
    )
    b = DepthSnapshot(
        "b", "BTC/USDT", [[60000, 1]], [[62058.771, 0.2375943], [62114.418, 0.8619089]]
    )
    mk = {
        "a": Market("a", "BTC/USDT", taker_fee=0.01, amount_step=0.05, min_notional=6923.39),
        "b": Market(
            "b", "BTC/USDT", taker_fee=0.002, amount_step=0.01, min_amount=0.15, max_amount=0.77
        ),
    }
    q = route([a, b], "buy", 0.82, markets=mk, fixed_costs={"a": 7.55}, balances={"a": 25597})
    assert q.complete and q.unfilled == 0
    assert legs(q) == pytest.approx({"a": 0.15, "b": 0.67})
    assert q.total_cost == pytest.approx(51112.46, abs=0.005)
    assert q.solver == "milp" and q.gap is not None and q.gap <= 1e-9


def test_issue10_item2_fine_lots_are_not_floored():
    """Was: v0=0.06454, complete=False (relax 1e-5 lots, floor, drop the leg, refill)."""

    def bk(v, bids):
        return DepthSnapshot(v, "X/Y", bids, [[200.0, 1.0]])

    s = [
        bk(
            "v0",
            [
                [99.92, 0.06211323134280565],
                [99.73, 0.0033092238436219826],
                [99.59, 0.012504583799134708],
                [99.58, 0.011960956214499729],
            ],
        ),
        bk("v1", [[99.66, 0.04905]]),
        bk("v2", [[99.76, 0.09002012533543571], [99.5, 0.0023532766343763883]]),
    ]
    mk = {
        "v0": Market("v0", "X/Y", taker_fee=0.001, amount_step=1e-05),
        "v1": Market(
            "v1", "X/Y", taker_fee=0.0005, amount_step=1e-05, min_notional=2.5443071552914995
        ),
        "v2": Market(
            "v2",
            "X/Y",
            taker_fee=0.01,
            amount_step=1e-05,
            min_amount=0.02124,
            min_notional=3.328835215441597,
        ),
    }
    q = route(
        s,
        "sell",
        0.06723,
        markets=mk,
        fixed_costs={"v0": 0.007964952844902987},
        balances={"v0": 0.06454770625229841},
        caps={"v1": 0.05173},
    )
    assert q.complete
    assert legs(q) == pytest.approx({"v0": 0.04170, "v1": 0.02553}, abs=1e-12)
    # the answer beats every other split of the lots: brute force over v0's lot count
    # (v1 takes the rest; v2 would have to take ≥ 0.02124 at a 1 % fee)
    best = -math.inf
    for n0 in range(0, 6455):
        q0, q1 = n0 * 1e-5, 0.06723 - n0 * 1e-5
        if q1 > 0.04905 + 1e-12 or (0 < q1 * 99.66 < 2.5443071552914995):
            continue
        p0 = _proceeds(s[0].bids.tolist(), q0, 0.001) - (0.007964952844902987 if n0 else 0)
        best = max(best, p0 + q1 * 99.66 * (1 - 0.0005))
    assert q.total_cost == pytest.approx(best, rel=1e-12)


def _proceeds(bids, q, fee):
    left, out = q, 0.0
    for price, size in bids:
        take = min(size, left)
        out += take * price * (1 - fee)
        left -= take
    return out


def test_issue10_item3_tolerance_finds_the_better_lot():
    """Was: v0=0.05/v1=0.066 where v0=0.051/v1=0.065 nets 0.0089 bps more (tolerance 1e-6)."""
    s = [
        DepthSnapshot("v0", "X/Y", [[100.0, 0.05], [99.99, 1.0]], [[101, 1]]),
        DepthSnapshot("v1", "X/Y", [[100.0, 0.065], [99.98, 1.0]], [[101, 1]]),
    ]
    mk = {
        v: Market(v, "X/Y", taker_fee=0.0, amount_step=0.001, min_notional=1.0)
        for v in ("v0", "v1")
    }
    q = route(s, "sell", 0.116, markets=mk, fixed_costs={"v1": 1e-9})
    options = {}
    for n0 in range(0, 117):
        q0, q1 = n0 / 1000, (116 - n0) / 1000
        if (0 < q0 < 0.01) or (0 < q1 < 0.01):
            continue
        options[(q0, q1)] = (
            _proceeds(s[0].bids.tolist(), q0, 0)
            + _proceeds(s[1].bids.tolist(), q1, 0)
            - (1e-9 if q1 else 0)
        )
    best = max(options, key=options.__getitem__)
    assert best == (0.051, 0.065)
    assert (options[best] - options[(0.05, 0.066)]) / options[best] * 1e4 == pytest.approx(
        0.0086, abs=0.0005
    )
    assert legs(q) == pytest.approx({"v0": 0.051, "v1": 0.065}, abs=1e-12)
    assert q.total_cost == pytest.approx(options[best], rel=1e-12)
    # the MILP alone, at the tolerances mip_gap sets, finds it too
    ladder = build_ladder([x.levels("sell") for x in s], [0.0, 0.0], "sell")
    rules = venue_rules(["v0", "v1"], mk, ladder, 0.116, {"v1": 1e-9}, None, None)
    lat = lattice(ladder, rules, 0.116)
    result = solve_rules(ladder, rules, lat, lat.units(0.116), mip_gap=1e-9)
    assert result is not None and result.lots == (51, 65)


def test_issue10_unreachable_amount_is_said_never_relabelled():
    """0.83 with lots of 0.05 and 0.1 cannot be hit: the nearest amounts are 0.8 and 0.85."""
    a = DepthSnapshot("a", "X/Y", [[99, 5]], [[100, 2.0]])
    b = DepthSnapshot("b", "X/Y", [[99, 5]], [[100.1, 0.4]])
    mk = {
        "a": Market("a", "X/Y", 0.0, amount_step=0.05),
        "b": Market("b", "X/Y", 0.0, amount_step=0.1),
    }
    q = route([a, b], "buy", 0.83, markets=mk, baselines=False)
    reach = set()
    for na, nb in itertools.product(range(41), range(5)):
        reach.add(Fraction(na * 5 + nb * 10, 100))
    below = max(r for r in reach if r <= Fraction("0.83"))
    above = min(r for r in reach if r > Fraction("0.83"))
    assert not q.complete and q.unfilled == pytest.approx(0.83 - float(below))
    assert q.filled == pytest.approx(float(below)) and q.reachable is not None
    assert q.reachable == pytest.approx((float(below), float(above)))
    assert any("cannot add up to exactly 0.83 X" in w for w in q.warnings)
    assert q.to_dict()["complete"] is False


def test_issue11_item9_tiny_amount_is_a_clear_error():
    with pytest.raises(InfeasibleConstraintsError, match=r"smallest order .* BTC") as err:
        route(sample_snapshots(), "buy", 1e-30, markets=sample_markets())
    assert "nearest amount they accept is 1e-05 BTC" in str(err.value)
    result = CliRunner().invoke(app, ["quote", "BTC/USDT", "buy", "1e-30", "--sample"])
    assert result.exit_code == 3
    assert "smallest order" in result.output and "Traceback" not in result.output
    assert "unexpected" not in result.output


def test_issue12_item5_readme_spend_example_is_honest():
    """Was: rounded-fallback, bound without currency, a unitless note and complete=true."""
    runner = CliRunner()
    args = ["quote", "BTC/USDT", "buy", "250000", "--spend", "--sample"]
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert data["solver"] == "milp" and data["gap"] <= 1e-9
    assert data["total_cost"] <= 250000
    notes = [w for w in data["warnings"] if "lots" in w]
    assert data["complete"] is (not notes)
    if notes:
        assert "USDT" in notes[0] and "BTC" in notes[0]
        assert data["unfilled"] == pytest.approx(250000 - data["total_cost"])
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert re.search(r"rule-free bound [\d,.]+ USDT", table.stdout)
    assert "rounded-fallback" not in table.output
