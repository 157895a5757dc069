"""The exact split, the baselines, the planned cost and the walk for many orders at once.

A backtest prices thousands of parent orders, each on books of a few hundred levels. One
order at a time, the ~50 small numpy calls an order needs cost far more than their
arithmetic (about 200 µs an order); here one call covers a batch of B orders. Order b's
books on the side it takes are row b of padded arrays (`SideBooks`)

    price[b, v, l], size[b, v, l]   (B, V, D): venue v's level l, best first, and size 0
                                    beyond its count[b, v] levels,

and every sum along the levels is sequential (a cumulative sum, the last element kept),
never a blocked reduction (`sum`, a BLAS dot): an order's figures do not depend on the
other orders of its batch nor on the padding, so a run cut into windows or batches gives
the same numbers.

What each function equals (tests/optimizer/test_batched.py):
- `exact_split` is `exact.solve_exact(...).amount`, and `best_venue`, `equal_split`,
  `pro_rata`, `percent_grid` are the `baselines` functions of the same name, bit for bit:
  the same float operations in the same order (the curve C_v as `Ladder.cost` evaluates
  it, `np.interp`'s formula included).
- `planned_cost` is `exact.allocate(...).value` and `walk` is `curves.walk_book` summed over
  the venues as the backtest fills a split; they add the same terms, but sequentially where
  those take a BLAS dot or a pairwise sum, so they agree to a few ulps (1e-15 relative).

Only the levels an order can reach are looked at: venue v's levels up to the first whose
own running size reaches the order (`exact.touched_prefix`'s cut: no optimal split, no
baseline and no walk of at most the order goes deeper), taken a hair beyond the amount so
that a grid point rounded up still lands in the same segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from liquidroute.model import FloatArray, Side
from liquidroute.optimizer.baselines import GRID_MAX_VENUES, GRID_STEPS, _grid_sources, _units
from liquidroute.optimizer.curves import IntArray

BoolArray = npt.NDArray[np.bool_]

_REACH = 1 + 1e-9  # levels are kept until their running size reaches amount · _REACH


@dataclass(frozen=True, slots=True)
class SideBooks:
    """One side of B orders' books on V venues, padded to D levels (module doc)."""

    price: FloatArray  # (B, V, D) book prices, best first
    size: FloatArray  # (B, V, D) base sizes, 0 beyond count
    count: IntArray  # (B, V) levels of each book
    running: FloatArray  # (B, V, D) running size S_l = Σ_{j<=l} s_j (sequential)

    @property
    def shape(self) -> tuple[int, int, int]:
        b, v, d = self.price.shape
        return b, v, d

    def cut(self, amounts: FloatArray) -> SideBooks:
        """The books cut to the levels orders of `amounts` (B,) can reach (module doc)."""
        d = self.shape[2]
        if d == 0:
            return self
        short = self.running < (amounts * _REACH)[:, None, None]
        reach = np.minimum(short.sum(axis=2) + 1, self.count)
        keep = max(1, int(reach.max()))
        if keep >= d:
            return self
        return SideBooks(
            np.ascontiguousarray(self.price[:, :, :keep]),
            np.ascontiguousarray(self.size[:, :, :keep]),
            np.minimum(self.count, keep),
            np.ascontiguousarray(self.running[:, :, :keep]),
        )

    def depth(self) -> FloatArray:
        """Each venue's displayed size (`Ladder.depth`: np.bincount adds a venue's levels
        in order), (B, V); of the levels kept, on cut books."""
        d = self.shape[2]
        out: FloatArray = self.running[:, :, -1] if d else np.zeros(self.count.shape)
        return out


def pack(
    levels: Sequence[Sequence[tuple[FloatArray, FloatArray]]], negate: bool = False
) -> SideBooks:
    """`levels[b][v]` = (prices, sizes) of venue v's levels for order b, best first, as
    padded `SideBooks`; with `negate` the prices given are their negatives (the book
    keys of bids, −price)."""
    n_orders = len(levels)
    n_venues = len(levels[0]) if n_orders else 0
    prices = [p for row in levels for p, _ in row]
    counts = np.fromiter((len(p) for p in prices), dtype=np.intp, count=len(prices))
    depth = int(counts.max()) if len(counts) else 0
    price = np.zeros((len(prices), depth))
    size = np.zeros((len(prices), depth))
    total = int(counts.sum())
    if total:
        book = np.repeat(np.arange(len(prices)), counts)
        first = np.cumsum(counts) - counts
        level = np.arange(total) - np.repeat(first, counts)
        flat = np.concatenate(prices)
        price[book, level] = np.negative(flat, out=flat) if negate else flat
        size[book, level] = np.concatenate([s for row in levels for _, s in row])
    sizes = size.reshape(n_orders, n_venues, depth)
    return SideBooks(
        price.reshape(n_orders, n_venues, depth),
        sizes,
        counts.reshape(n_orders, n_venues),
        np.cumsum(sizes, axis=2),
    )


def _last(a: FloatArray) -> FloatArray:
    """The sequential sum along the last axis: the last element of the cumulative sum
    (0.0 where the axis is empty)."""
    if a.shape[-1] == 0:
        return np.zeros(a.shape[:-1])
    out: FloatArray = np.ascontiguousarray(np.cumsum(a, axis=-1)[..., -1])
    return out


class Curves:
    """C_v of each order's venues (`Ladder.venue_curve`): breakpoints q[b, v, 0..D] (running
    size, q_0 = 0) and c[b, v, 0..D] (running Σ s·e, e = p·factor_v), sequential sums."""

    __slots__ = ("books", "c", "eff", "q")

    def __init__(self, books: SideBooks, factor: FloatArray) -> None:
        b, v, d = books.shape
        self.books = books
        self.eff = books.price * factor[None, :, None]
        self.q = np.zeros((b, v, d + 1))
        self.c = np.zeros((b, v, d + 1))
        self.q[:, :, 1:] = books.running
        np.cumsum(books.size * self.eff, axis=2, out=self.c[:, :, 1:])

    def cost(self, x: FloatArray) -> FloatArray:
        """C_v at amounts x[b, v, :] (>= 0): `Ladder.cost` bit for bit — np.interp on the
        breakpoints (c_j at a breakpoint and beyond the last; else
        slope·(x − q_j) + c_j, slope = (c_{j+1} − c_j)/(q_{j+1} − q_j)), and inf beyond
        the depth, x > q_n·(1 + 1e-12) + 1e-15."""
        q, c, n = self.q, self.c, self.books.count
        points = np.arange(q.shape[2])
        real = points[None, None, :] <= n[:, :, None]
        qr = np.where(real, q, np.inf)
        j = (qr[:, :, :, None] <= x[:, :, None, :]).sum(axis=2) - 1  # last q_j <= x
        j = np.maximum(j, 0)  # x >= 0 = q_0
        up = np.minimum(j + 1, q.shape[2] - 1)
        qj = np.take_along_axis(q, j, axis=2)
        cj = np.take_along_axis(c, j, axis=2)
        q1 = np.take_along_axis(q, up, axis=2)
        c1 = np.take_along_axis(c, up, axis=2)
        inner = (j < n[:, :, None]) & (qj != x)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (c1 - cj) / (q1 - qj)
            out: FloatArray = np.where(inner, slope * (x - qj) + cj, cj)
        last = np.take_along_axis(q, n[:, :, None], axis=2)
        out[x > last * (1 + 1e-12) + 1e-15] = np.inf
        return out


def exact_split(books: SideBooks, eff: FloatArray, side: Side, amounts: FloatArray) -> FloatArray:
    """`solve_exact(ladder, amount).amount` of every order (B, V): levels taken in order
    of effective price (stable: ties to the lower venue, then the better level) until the
    running size reaches the amount, the last one partly; each venue's amount the sum of
    what it gives, in its level order (as `np.bincount` adds them)."""
    b, v, d = books.shape
    if d == 0:
        return np.zeros((b, v))
    size = books.size
    real = np.arange(d)[None, None, :] < books.count[:, :, None]
    if v == 1:
        order = None
        sizes = size.reshape(b, d)
        n_real = books.count.reshape(b)
    else:
        key = np.where(real, eff if side == "buy" else -eff, np.inf).reshape(b, v * d)
        order = key.argsort(axis=1, kind="stable")
        sizes = np.take_along_axis(size.reshape(b, v * d), order, axis=1)
        n_real = books.count.sum(axis=1)
    running = np.cumsum(sizes, axis=1)
    k = np.minimum((running < amounts[:, None]).sum(axis=1), n_real)  # the partial level
    width = sizes.shape[1]
    before = np.take_along_axis(running, np.maximum(k - 1, 0)[:, None], axis=1)[:, 0]
    rest = amounts - np.where(k > 0, before, 0.0)
    at = np.arange(width)[None, :]
    taken = np.where(at < k[:, None], sizes, 0.0)
    partial = (at == k[:, None]) & (k < n_real)[:, None]
    taken = np.where(partial, rest[:, None], taken)
    if order is not None:
        back = np.empty_like(taken)
        np.put_along_axis(back, order, taken, axis=1)
        taken = back
    return _last(taken.reshape(b, v, d))


def grid_points(amounts: FloatArray, steps: int = GRID_STEPS) -> FloatArray:
    """The amounts the baselines evaluate C_v at, per order: the grid j·Q/steps
    (j = 0..steps), then Q, then Q/V_active — `baselines._Evaluation`'s columns."""
    return np.concatenate(
        [_units(steps)[None, :] * (amounts / steps)[:, None], amounts[:, None]], 1
    )


def baselines(
    curves: Curves, side: Side, amounts: FloatArray, displayed: FloatArray, names: tuple[str, ...]
) -> dict[str, tuple[FloatArray, BoolArray]]:
    """Each baseline's split of every order (B, V) and whether it has one (B,): the
    `baselines` functions of those names, bit for bit, on one evaluation of the curves
    (which may be cut to the levels the orders reach); `displayed` (B, V) is every venue's
    whole displayed size (`books.depth()` before the cut), which pro_rata divides."""
    if not names:
        return {}  # no curve is evaluated for nothing
    books = curves.books
    b, v, _ = books.shape
    steps = GRID_STEPS
    active = books.count > 0
    n_active = active.sum(axis=1)
    share = np.where(n_active > 0, amounts / np.maximum(n_active, 1), 0.0)
    points = np.concatenate([grid_points(amounts, steps), share[:, None]], axis=1)
    costs = curves.cost(np.broadcast_to(points[:, None, :], (b, v, steps + 3)).copy())
    out: dict[str, tuple[FloatArray, BoolArray]] = {}
    for name in names:
        if name == "best_venue":
            at_q = costs[:, :, steps + 1]
            key = np.where(np.isfinite(at_q), at_q if side == "buy" else -at_q, np.inf)
            best = key.argmin(axis=1)  # the first of the best
            ok = np.isfinite(key.min(axis=1))
            split = np.zeros((b, v))
            split[np.arange(b), best] = amounts
            out[name] = (np.where(ok[:, None], split, 0.0), ok)
        elif name == "equal_split":
            holds = np.where(active, np.isfinite(costs[:, :, steps + 2]), True).all(axis=1)
            ok = (n_active > 0) & (holds | (share <= 0))
            out[name] = (np.where(ok[:, None] & active, share[:, None], 0.0), ok)
        elif name == "pro_rata":
            total = np.add.reduce(displayed, axis=1)
            ok = (total > 0) & ~(amounts > total * (1 + 1e-12))
            with np.errstate(invalid="ignore", divide="ignore"):
                parts = np.minimum(amounts[:, None] * displayed / total[:, None], displayed)
            out[name] = (np.where(ok[:, None], parts, 0.0), ok)
        elif name == "percent_grid":
            out[name] = _percent_grid(costs, side, points[:, : steps + 1], steps)
        else:
            raise KeyError(f"unknown baseline {name!r}")
    return out


def _percent_grid(
    costs: FloatArray, side: Side, grid: FloatArray, steps: int, max_venues: int = GRID_MAX_VENUES
) -> tuple[FloatArray, BoolArray]:
    """`baselines._percent_grid` for every order at once: the same program with an order
    axis in front (the same additions and comparisons, so the same choices)."""
    b, n, _ = costs.shape
    rows = np.arange(b)
    if n == 1:
        ok = np.isfinite(costs[:, 0, steps])
        return np.where(ok, grid[:, steps], 0.0)[:, None], ok
    bound = min(max_venues, n)
    sign = 1.0 if side == "buy" else -1.0
    c = sign * costs[:, :, 1 : steps + 1]
    c[~np.isfinite(c)] = np.inf
    source = _grid_sources(steps)
    best = np.full((b, steps + 2, bound + 1), np.inf)
    best[:, 0, 0] = 0.0
    picks = []
    for v in range(n):
        used = min(v + 1, bound)
        candidate = best[:, source, :used] + c[:, v, :, None, None]
        j_best = candidate.argmin(axis=1)
        value = candidate.min(axis=1)
        now = best[:, : steps + 1, 1 : used + 1]
        better = value < now
        np.copyto(now, value, where=better)
        picks.append((j_best, better))
    m = best[:, steps].argmin(axis=1)
    ok = np.isfinite(best[rows, steps, m])
    out = np.zeros((b, n))
    k = np.full(b, steps)
    for v in range(n - 1, -1, -1):
        j_best, better = picks[v]
        col = np.maximum(m - 1, 0)
        inside = col < j_best.shape[2]
        col_c = np.minimum(col, j_best.shape[2] - 1)
        take = ok & (m > 0) & inside & better[rows, k, col_c]
        j = j_best[rows, k, col_c] + 1
        out[:, v] = np.where(take, grid[rows, np.where(take, j, 0)], 0.0)
        k = np.where(take, k - j, k)
        m = np.where(take, m - 1, m)
    return out, ok


def _taken(curves: Curves, splits: FloatArray) -> FloatArray:
    """What each venue's part takes from each of its levels, as `exact._venue_take`:
    levels in order until the running size reaches q·(1 − 1e-15), the last one q minus
    the size before it. splits (B, K, V) -> (B, K, V, D). ValueError beyond a depth."""
    q = curves.q[:, None]  # (B, 1, V, D + 1): q_l, the running size before level l
    d = q.shape[-1] - 1
    n = np.broadcast_to(curves.books.count[:, None, :], splits.shape)
    target = splits * (1 - 1e-15)
    real = np.arange(d) < n[..., None]
    k = np.minimum(((q[..., 1:] < target[..., None]) & real).sum(axis=-1), np.maximum(n - 1, 0))
    qb = np.broadcast_to(q, (*splits.shape, d + 1))
    last = np.take_along_axis(qb, n[..., None], axis=-1)[..., 0]
    if np.any((splits > 0) & (splits > last * (1 + 1e-12) + 1e-15)):
        raise ValueError("a split exceeds a venue's depth")
    rest = splits - np.take_along_axis(qb, k[..., None], axis=-1)[..., 0]
    at = np.arange(d)
    take = np.where(at < k[..., None], curves.books.size[:, None], 0.0)
    take = np.where(at == k[..., None], rest[..., None], take)
    out: FloatArray = np.where((splits > 0)[..., None], take, 0.0)
    return out


def planned_cost(curves: Curves, splits: FloatArray) -> FloatArray:
    """Σ_v C_v(q_v) of every split (B, K), as `exact.allocate(ladder, split).value`: each
    venue's part walked on its own levels, Σ take·e."""
    take = _taken(curves, splits)
    per_venue = _last(take * curves.eff[:, None])
    total: FloatArray = np.add.reduce(per_venue, axis=-1)
    return total


def walk(
    books: SideBooks, splits: FloatArray, fees: FloatArray, side: Side
) -> tuple[FloatArray, FloatArray]:
    """(filled, all-in cost) of every split (B, K) filled on `books`: each venue's part
    walked with no limit (take_l = min(s_l, (q − S_{l−1})⁺), `curves.walk_book`), the fee
    added (buy) or deducted (sell), summed over the venues in their order."""
    want = np.maximum(splits, 0.0)
    if want.size:  # no walk goes past the level where its venue's running size reaches it
        books = books.cut(want.max(axis=(1, 2)))
    running = books.running[:, None]  # (B, 1, V, D)
    reach = np.minimum(running, want[..., None])
    take = np.diff(reach, axis=-1, prepend=0.0)
    filled_v = _last(take)
    notional_v = _last(take * books.price[:, None])
    factor = 1 + fees if side == "buy" else 1 - fees
    filled = np.zeros(splits.shape[:2])
    cost = np.zeros(splits.shape[:2])
    for v in range(splits.shape[2]):
        filled += filled_v[:, :, v]
        cost += notional_v[:, :, v] * factor[v]
    return filled, cost


__all__ = [
    "Curves",
    "SideBooks",
    "baselines",
    "exact_split",
    "grid_points",
    "pack",
    "planned_cost",
    "walk",
]
