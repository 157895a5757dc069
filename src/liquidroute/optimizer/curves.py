"""Cost curves built from book levels.

For a taker walking venue v's book on one side, level l has book price p_{v,l} and size
s_{v,l}. With taker fee f_v, its *effective* price is

    e_{v,l} = p_{v,l} · (1 + f_v)   for a buy  (quote paid per base unit)
    e_{v,l} = p_{v,l} · (1 − f_v)   for a sell (quote received per base unit)

and the venue's cost curve C_v(q) = Σ_l e_{v,l} · min(s_{v,l}, (q − S_{v,l−1})⁺), with
S_{v,l} the cumulative size, is piecewise linear: convex for a buy (asks rise), concave for
a sell (bids fall). A per-venue cap u_v truncates the curve at q = u_v.

`Ladder` holds all venues' (capped) levels for one side, flattened into parallel arrays,
each venue's levels contiguous and best first: the input every optimizer shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np
import numpy.typing as npt

from liquidroute.model import FloatArray, Side

IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Ladder:
    """One side's levels across venues, fee-adjusted and capped.

    Level i belongs to venue `venue[i]`; venue v's levels are `offsets[v]:offsets[v+1]`,
    best first. `price` is the book price, `eff` the fee-adjusted price, `size` the base size.

    Each venue's cumulative curve (`venue_curve`) is computed on first use and kept: the
    baselines, the rules and the caps evaluate C_v, often several times per ladder. The
    kept arrays are read-only (shared by every caller).
    """

    side: Side
    price: FloatArray
    eff: FloatArray
    size: FloatArray
    venue: IntArray
    offsets: IntArray
    fees: FloatArray
    # filled by venue_curve (a slot left unset until then: construction stays as cheap)
    _curves: list[tuple[FloatArray, FloatArray] | None] = field(
        init=False, repr=False, compare=False
    )

    @property
    def n_venues(self) -> int:
        return len(self.offsets) - 1

    @property
    def factor(self) -> FloatArray:
        """Per venue e/p: 1 + f_v for a buy, 1 − f_v for a sell."""
        factor: FloatArray = 1.0 + self.fees if self.side == "buy" else 1.0 - self.fees
        return factor

    def depth(self) -> FloatArray:
        """Total base size available per venue (after caps)."""
        depth: FloatArray = np.bincount(self.venue, self.size, minlength=self.n_venues).astype(
            np.float64, copy=False
        )
        return depth

    def venue_curve(self, v: int) -> tuple[FloatArray, FloatArray]:
        """Breakpoints (cumulative size, cumulative effective cost) of C_v, from (0, 0):
        q_0 = c_0 = 0, q_l = Σ_{i<l} s_i, c_l = Σ_{i<l} s_i·e_i (sequential sums).
        Computed once per venue and ladder (read-only arrays)."""
        return self._curve(v, math.inf)

    def _curve(self, v: int, reach: float) -> tuple[FloatArray, FloatArray]:
        """`venue_curve(v)`, or a prefix of it whose last q exceeds `reach` (kept and
        extended on demand). A prefix of a sequential cumulative sum is the cumulative sum
        of the prefix, bit for bit, so the kept arrays are the full curve's first points."""
        curves: list[tuple[FloatArray, FloatArray] | None] | None = getattr(self, "_curves", None)
        if curves is None:
            curves = [None] * (len(self.offsets) - 1)
            object.__setattr__(self, "_curves", curves)
        curve = curves[v]
        lo, hi = int(self.offsets[v]), int(self.offsets[v + 1])
        if curve is not None and (len(curve[0]) > hi - lo or curve[0][-1] > reach):
            return curve
        n = hi - lo
        m = n if reach == math.inf else min(n, _PREFIX if curve is None else 4 * len(curve[0]))
        while True:
            size = self.size[lo : lo + m]
            q = np.zeros(m + 1)
            np.cumsum(size, out=q[1:])
            if m == n or q[-1] > reach:
                break
            m = min(n, 4 * m)
        c = np.zeros(m + 1)
        np.cumsum(size * self.eff[lo : lo + m], out=c[1:])
        q.flags.writeable = False
        c.flags.writeable = False
        curve = curves[v] = (q, c)
        return curve

    def cost(self, v: int, amounts: FloatArray) -> FloatArray:
        """C_v at each amount (exact: linear between breakpoints); inf beyond the depth.

        Only the prefix of the curve that the largest amount reaches is built (np.interp
        picks the same segment, so the same number, on the prefix as on the whole curve).
        """
        reach = float(amounts.max()) if len(amounts) else 0.0
        q, c = self._curve(v, reach if reach == reach else math.inf)  # nan: the whole curve
        out = np.interp(amounts, q, c)
        if len(q) > int(self.offsets[v + 1]) - int(self.offsets[v]):  # the whole curve
            out[amounts > q[-1] * (1 + 1e-12) + 1e-15] = np.inf
        return out


_PREFIX = 32  # levels of a curve built first for an evaluation (x4 until it reaches)


def take_prefix(size: FloatArray, amount: float) -> FloatArray:
    """What taking `amount` from levels of `size` (in order) takes from each:
    take_l = min(s_l, (amount − S_{l−1})⁺), S the cumulative size. The core of every walk."""
    taken: FloatArray = np.diff(np.minimum(np.cumsum(size), amount), prepend=0.0)
    return taken


def _cap_levels(size: FloatArray, cap: float | None) -> FloatArray:
    """Sizes truncated so that their cumulative sum never exceeds `cap`."""
    return size if cap is None else take_prefix(size, cap)


def build_ladder(
    levels: Sequence[FloatArray],
    fees: Sequence[float],
    side: Side,
    caps: Sequence[float | None] | None = None,
) -> Ladder:
    """Flatten per-venue (n_v, 2) level arrays (best first) into one fee-adjusted Ladder.

    e_{v,l} = p_{v,l}·(1 + f_v) for a buy, p_{v,l}·(1 − f_v) for a sell; with caps, each
    venue's sizes are cut so that their cumulative sum stays within u_v (levels cut to
    zero are dropped).
    """
    n_venues = len(levels)
    if caps is not None and any(c is not None for c in caps):
        sizes = [_cap_levels(lv[:, 1], c) for lv, c in zip(levels, caps, strict=True)]
        keeps = [s > 0 for s in sizes]
        levels = [
            np.column_stack([lv[k, 0], s[k]]) for lv, s, k in zip(levels, sizes, keeps, strict=True)
        ]
    counts = [len(lv) for lv in levels]
    offsets = np.array([0, *accumulate(counts)], dtype=np.intp)
    fee_arr = np.asarray(fees, dtype=np.float64)
    if n_venues:  # one copy into an (L, 2) block; price and size are its columns
        flat = np.concatenate(levels)
        price, size = flat[:, 0], flat[:, 1]
    else:
        price = size = np.empty(0)
    factor = 1.0 + fee_arr if side == "buy" else 1.0 - fee_arr
    eff = price * factor.repeat(counts)
    venue = np.arange(n_venues, dtype=np.intp).repeat(counts)
    return Ladder(side, price, eff, size, venue, offsets, fee_arr)


@dataclass(frozen=True, slots=True)
class Walk:
    """What a taker gets walking one side of a book: the one book walk of the project.

    `take[l]` is the base taken at level l (a prefix of the levels, best first),
    `filled = Σ take`, `notional = Σ take·price` (quote, before fees), `worst_price` the price
    of the last level touched (None when nothing fills).
    """

    take: FloatArray
    filled: float
    notional: float
    worst_price: float | None

    def all_in(self, side: Side, fee_rate: float) -> float:
        """Quote paid (buy, fee added) or received (sell, fee deducted)."""
        return self.notional * (1 + fee_rate) if side == "buy" else self.notional * (1 - fee_rate)


def walk_book(
    levels: FloatArray, side: Side, amount: float, limit_price: float | None = None
) -> Walk:
    """Walk (n, 2) `levels` (price, size; best first) for `amount` base, up to `limit_price`.

    take_l = min(s_l, (amount − S_{l−1})⁺) over the levels priced within the limit
    (p_l ≤ limit for a buy, p_l ≥ limit for a sell) — a prefix, since the book is sorted.
    """
    price, size = levels[:, 0], levels[:, 1]
    if limit_price is not None:
        within = price <= limit_price if side == "buy" else price >= limit_price
        reach = int(within.sum())
        price, size = price[:reach], size[:reach]
    take = take_prefix(size, max(amount, 0.0))
    filled = float(take.sum())
    touched = np.flatnonzero(take > 0)
    worst = float(price[touched[-1]]) if len(touched) else None
    return Walk(take, filled, float(take @ price), worst)
