"""route()'s hot-path construction of Legs (slot descriptors, no frozen __setattr__) is the
public constructor's, field for field.

The oracle is the public `Leg(...)` built from the same optimizer output (`solve_exact` on
`build_ladder`), computed here without route(): if the fast path swapped, dropped or
mis-divided a field, the legs would differ.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liquidroute import DepthSnapshot, Market
from liquidroute.model import Leg, _leg_unchecked
from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.exact import LadderCache, solve_exact
from liquidroute.router.route import route

FIELDS = ("v1", "sell", 0.25, 61_000.5, 60_990.0, 12.2, 15_237.9, 0.4, 3, ("a note",))


def test_unchecked_leg_is_the_public_leg() -> None:
    fast, public = _leg_unchecked(*FIELDS), Leg(*FIELDS)
    assert type(fast) is Leg
    assert fast == public and hash(fast) == hash(public)
    assert fast.to_dict() == public.to_dict()
    assert [getattr(fast, f.name) for f in dataclasses.fields(Leg)] == list(FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.amount = 1.0  # type: ignore[misc]


def _books(seed: int, n_venues: int, n_levels: int) -> list[DepthSnapshot]:
    rng = np.random.default_rng(seed)
    out = []
    for v in range(n_venues):
        mid = 100.0 * (1 + rng.normal(0, 1e-3))
        asks = mid + 0.01 + np.cumsum(rng.uniform(1e-4, 1e-2, n_levels))
        bids = mid - 0.01 - np.cumsum(rng.uniform(1e-4, 1e-2, n_levels))
        sizes = rng.lognormal(0.0, 1.0, (2, n_levels))
        out.append(
            DepthSnapshot(
                f"v{v}", "X/Y", np.column_stack([bids, sizes[0]]), np.column_stack([asks, sizes[1]])
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_venues=st.integers(1, 6),
    n_levels=st.integers(1, 30),
    side=st.sampled_from(["buy", "sell"]),
    share=st.floats(0.01, 1.2),
)
def test_route_legs_are_the_public_legs_of_the_optimum(
    seed: int, n_venues: int, n_levels: int, side: str, share: float
) -> None:
    snaps = _books(seed, n_venues, n_levels)
    fees = [0.0002 * (i + 1) for i in range(n_venues)]
    markets = {s.venue: Market(s.venue, "X/Y", f) for s, f in zip(snaps, fees, strict=True)}
    levels = [s.levels(side) for s in snaps]  # type: ignore[arg-type]
    amount = share * sum(float(lv[:, 1].sum()) for lv in levels)
    alloc = solve_exact(build_ladder(levels, fees, side), amount)  # type: ignore[arg-type]
    expected = tuple(
        Leg(
            s.venue,
            side,  # type: ignore[arg-type]
            float(q),
            float(alloc.notional[i]) / float(q),
            float(alloc.worst_price[i]),
            float(alloc.fee[i]),
            float(alloc.cost[i]),
            float(q) / alloc.filled,
            int(alloc.levels[i]),
        )
        for i, (s, q) in enumerate(zip(snaps, alloc.amount, strict=True))
        if q > 0
    )
    cache = LadderCache()
    for _ in range(3):  # uncached, then the cache's first solve, then its prepared solve
        quote = route(snaps, side, amount, markets=markets, baselines=False, cache=cache)
        assert quote.legs == expected
        assert all(type(leg) is Leg for leg in quote.legs)
        assert quote.filled == alloc.filled and quote.total_cost == alloc.value
    plain = route(snaps, side, amount, markets=markets, baselines=False)
    assert plain.legs == expected


def test_unchecked_quote_takes_every_field_in_order() -> None:
    """A field added to Quote must be added to `_quote_unchecked` (else it is left unset)."""
    import inspect

    from liquidroute.model import Quote, _quote_unchecked

    params = list(inspect.signature(_quote_unchecked).parameters)
    assert params == [f.name for f in dataclasses.fields(Quote)]
    leg = Leg(*FIELDS[:-1])
    values = {name: i for i, name in enumerate(params)} | {"legs": (leg,), "warnings": ("w",)}
    fast, public = _quote_unchecked(**values), Quote(**values)
    assert type(fast) is Quote and fast == public
    assert [getattr(fast, name) for name in params] == list(values.values())


def test_route_quote_fields_match_their_definitions() -> None:
    """mid, timestamps and total_fees gathered in route()'s one venue pass are the
    consolidated mid, each snapshot's timestamp and the legs' fees."""
    from liquidroute.router.route import consolidated_mid

    snaps = _books(3, 4, 12)
    snaps = [
        DepthSnapshot(s.venue, s.symbol, s.bids, s.asks if i else [], 1000.0 + i)
        for i, s in enumerate(snaps)
    ]
    quote = route(snaps, "sell", 3.0, baselines=False)
    assert quote.mid == consolidated_mid(snaps)
    best_bid = max(float(s.bids[0, 0]) for s in snaps)
    best_ask = min(float(s.asks[0, 0]) for s in snaps if len(s.asks))
    assert quote.mid == (best_bid + best_ask) / 2
    assert quote.timestamps == {s.venue: 1000.0 + i for i, s in enumerate(snaps)}
    assert quote.total_fees == pytest.approx(sum(leg.fee for leg in quote.legs), rel=1e-12)
