"""Hypothesis strategies and builders for random but valid order books."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from liquidroute.model import DepthSnapshot


def make_book(
    rng: np.random.Generator, venue: str, mid: float, levels: int, symbol: str = "BTC/USDT"
) -> DepthSnapshot:
    """A valid book around `mid`: random spread, random positive gaps and sizes."""
    half = mid * rng.uniform(0.00001, 0.002)
    ask_gaps = mid * rng.uniform(1e-6, 2e-4, levels)
    bid_gaps = mid * rng.uniform(1e-6, 2e-4, levels)
    asks = mid + half + np.concatenate(([0.0], np.cumsum(ask_gaps[1:])))
    bids = mid - half - np.concatenate(([0.0], np.cumsum(bid_gaps[1:])))
    sizes_a = rng.lognormal(-1.0, 1.2, levels)
    sizes_b = rng.lognormal(-1.0, 1.2, levels)
    return DepthSnapshot(
        venue, symbol, np.column_stack([bids, sizes_b]), np.column_stack([asks, sizes_a]), 0
    )


@st.composite
def books_and_order(draw: st.DrawFn, max_venues: int = 6, max_levels: int = 40) -> dict:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, max_venues))
    mid = draw(st.floats(1.0, 100_000.0))
    snaps = [
        make_book(rng, f"v{i}", mid * (1 + rng.normal(0, 0.0005)), draw(st.integers(1, max_levels)))
        for i in range(n)
    ]
    fees = [draw(st.sampled_from([0.0, 0.0002, 0.00075, 0.001, 0.0015, 0.002])) for _ in range(n)]
    side = draw(st.sampled_from(["buy", "sell"]))
    depth = sum(float(s.levels(side)[:, 1].sum()) for s in snaps)
    frac = draw(st.floats(0.001, 1.2))
    return {"snaps": snaps, "fees": fees, "side": side, "amount": depth * frac, "depth": depth}
