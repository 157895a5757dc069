"""Exact optimal split for separable convex costs: a merge of all venues' levels.

Buy Q base units (sell: mirror) across venues v with convex piecewise-linear costs C_v
(see `curves`) and caps u_v:

    minimise  Σ_v C_v(q_v)   s.t.  Σ_v q_v = Q,   0 ≤ q_v ≤ u_v.

Writing q_v = Σ_l x_{v,l} with 0 ≤ x_{v,l} ≤ s_{v,l} turns this into the LP
min Σ e_{v,l} x_{v,l} s.t. Σ x = Q, whose optimum takes levels in increasing order of
effective price e until Q is reached (a fractional knapsack). The effective price λ of the
last level taken is the dual of Σ x = Q and certifies optimality (KKT): every level with
e < λ is full, every level with e > λ is empty, so no reallocation lowers the cost. For a
sell, maximise proceeds: take levels in *decreasing* e.

The quote-denominated form (spend exactly X quote on a buy; receive exactly X quote on a
sell) is the same merge with the running total measured in e·x instead of x.

Complexity: one stable argsort of the L levels (each venue's levels are already a sorted
run, so it is a k-way merge of runs), then work on the prefix that is taken only: the
running total is cumulated over a guessed prefix (doubled when short), not all L levels.

Repeated orders on unchanged books reuse the merge: `MergedLadder` keeps the merged order,
its running totals and per-venue sums, so an order is a binary search plus O(V + 64)
bookkeeping, with the same answer bit for bit; `LadderCache` keeps one per book version
(the level arrays' identity), fees and caps.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar, cast

import numpy as np

from liquidroute.model import AmountUnit, FloatArray, Side
from liquidroute.optimizer.curves import IntArray, Ladder, build_ladder

_MIN_PREFIX = 256  # below this many levels the whole ladder is cumulated at once


@dataclass(frozen=True, slots=True)
class Allocation:
    """The optimum per venue (arrays indexed like the ladder's venues).

    `amount` base units, `notional` = Σ price·x (fees excluded), `fee` = notional·f_v,
    `cost` = Σ e·x (quote paid for a buy, received for a sell), `levels` touched and
    `worst_price` (book price of the deepest level touched; nan where unused).
    `marginal` is λ, `filled` Σ amount, `value` Σ cost.
    """

    amount: FloatArray
    notional: FloatArray
    fee: FloatArray
    cost: FloatArray
    levels: IntArray
    worst_price: FloatArray
    marginal: float | None
    filled: float
    value: float


class AllocationRows(NamedTuple):
    """An `Allocation` as Python lists, indexed like the ladder's venues: what a Quote's
    legs are made of. `total_fee` is Σ fee as np.add.reduce sums it. The Python merge
    (`solve_touched` on shallow orders) makes these without any numpy array; `of` and
    `allocation` convert either way, bit for bit. A named tuple: made on every quote,
    at a third of a frozen dataclass's cost."""

    amount: list[float]
    notional: list[float]
    fee: list[float]
    cost: list[float]
    levels: list[int]
    worst_price: list[float]
    marginal: float | None
    filled: float
    value: float
    total_fee: float

    @classmethod
    def of(cls, alloc: Allocation) -> AllocationRows:
        return cls(
            alloc.amount.tolist(),
            alloc.notional.tolist(),
            alloc.fee.tolist(),
            alloc.cost.tolist(),
            alloc.levels.tolist(),
            alloc.worst_price.tolist(),
            alloc.marginal,
            alloc.filled,
            alloc.value,
            float(np.add.reduce(alloc.fee)),
        )

    @classmethod
    def priced(
        cls,
        amount: list[float],
        notional: list[float],
        levels: list[int],
        worst_price: list[float],
        marginal: float | None,
        factor: Sequence[float],
        fees: Sequence[float],
    ) -> AllocationRows:
        """The rows of legs `amount` of pre-fee `notional`: cost_v = notional_v·factor_v
        (1 ± f_v, `fee_factors`), fee_v = notional_v·f_v; filled, value and Σ fee added
        as np.add.reduce adds them (`np_sum`)."""
        cost = list(map(operator.mul, notional, factor))
        fee = list(map(operator.mul, notional, fees))
        return cls(
            amount,
            notional,
            fee,
            cost,
            levels,
            worst_price,
            marginal,
            np_sum(amount),
            np_sum(cost),
            np_sum(fee),
        )

    def allocation(self) -> Allocation:
        return Allocation(
            amount=np.array(self.amount, dtype=np.float64),
            notional=np.array(self.notional, dtype=np.float64),
            fee=np.array(self.fee, dtype=np.float64),
            cost=np.array(self.cost, dtype=np.float64),
            levels=np.array(self.levels, dtype=np.intp),
            worst_price=np.array(self.worst_price, dtype=np.float64),
            marginal=self.marginal,
            filled=self.filled,
            value=self.value,
        )


def merge_order(ladder: Ladder) -> IntArray:
    """Level indices in the order the optimum takes them: best effective price first.

    Stable, so ties go to the lower venue index (then the better level of that venue).
    """
    key = ladder.eff if ladder.side == "buy" else -ladder.eff
    order: IntArray = key.argsort(kind="stable")
    return order


def _take(
    ladder: Ladder,
    order: IntArray,
    size: FloatArray,
    cum: FloatArray,
    amount: float,
    amount_in: AmountUnit,
) -> Allocation:
    """The allocation that takes merged levels `order` (sizes `size`, running total `cum`
    in base or quote units) until `amount`; every level when `cum` ends short of it.

    `order`, `size` and `cum` may be a prefix of the merge, as long as `cum` reaches
    `amount` or the prefix is the whole ladder. Per venue, the sums add its levels in
    level order (the merge keeps each venue's order), the partial level last.
    """
    n_venues = ladder.n_venues
    k = int(cum.searchsorted(amount))  # first level whose running total reaches amount
    n_take = min(k + 1, len(cum))
    idx = order[:n_take]
    take = size[:n_take]
    if k < len(cum):  # the last level taken is partial; otherwise the books run out
        take = take.copy()
        rest = amount - (float(cum[k - 1]) if k > 0 else 0.0)
        take[k] = rest / float(ladder.eff[idx[k]]) if amount_in == "quote" else rest
    v = ladder.venue[idx]
    amounts = cast(FloatArray, np.bincount(v, take, n_venues))  # float64 with weights
    notional = cast(FloatArray, np.bincount(v, take * ladder.price[idx], n_venues))
    levels = np.bincount(v, minlength=n_venues)
    fees = ladder.fees
    cost = notional * ladder.factor  # Σ e·x = factor_v · Σ p·x within venue v
    marginal = float(ladder.eff[idx[-1]]) if n_take else None
    return Allocation(
        amount=amounts,
        notional=notional,
        fee=notional * fees,
        cost=cost,
        levels=levels,
        worst_price=_worst(ladder, levels),
        marginal=marginal,
        filled=float(np.add.reduce(amounts)),
        value=float(np.add.reduce(cost)),
    )


def _worst(ladder: Ladder, levels: IntArray) -> FloatArray:
    """Book price of each venue's deepest level taken (its level levels_v − 1): each venue
    takes a prefix of its levels. nan where it takes none."""
    price, nan = ladder.price, np.nan
    return np.array(
        [
            price.item(start + n - 1) if n else nan
            for start, n in zip(ladder.offsets.tolist(), levels.tolist(), strict=False)
        ]
    )


def _check_unit(amount_in: str) -> None:
    if amount_in not in ("base", "quote"):
        raise ValueError(f"amount_in must be 'base' or 'quote', got {amount_in!r}")


def solve_exact(
    ladder: Ladder,
    amount: float,
    amount_in: AmountUnit = "base",
    order: IntArray | None = None,
) -> Allocation:
    """The optimal split of `amount` (base units, or quote units when amount_in="quote").

    When the ladder cannot supply `amount`, every level is taken and `filled`/`value`
    say how much that is. Only a prefix of the merged levels is cumulated: its length is
    guessed from amount / total (in the same units) and doubled until it reaches `amount`.
    `order` is the ladder's `merge_order`, when the caller has it already.
    """
    _check_unit(amount_in)
    if order is None:
        order = merge_order(ladder)
    n = len(order)
    quote = amount_in == "quote"
    eff, all_size = ladder.eff, ladder.size
    if n <= _MIN_PREFIX:
        m = n
    else:
        # the share of the ladder's total the order needs, estimated on every 8th level
        total = float(all_size[::8] @ eff[::8] if quote else np.add.reduce(all_size[::8]))
        share = amount / (8 * total) if total > 0 else 1.0
        m = min(n, int(n * share * 1.1) + 64) if share < 1 else n
    head = order[:m]
    size = all_size[head]
    cum = np.cumsum(size * eff[head] if quote else size)
    while m < n and not cum[-1] >= amount:  # short: cumulate further, continuing the sum
        more = order[m : min(n, 2 * m)]
        extra = all_size[more]
        cum = np.concatenate(
            (cum, np.cumsum(np.concatenate((cum[-1:], extra * eff[more] if quote else extra)))[1:])
        )
        size = np.concatenate((size, extra))
        m += len(more)
        head = order[:m]
    return _take(ladder, head, size, cum, amount, amount_in)


def touched_prefix(
    levels: FloatArray, factor: float, amount: float, amount_in: AmountUnit = "base"
) -> FloatArray:
    """The levels (best first) of one venue that the optimal split of `amount` can take
    from: up to and including the first level l whose own running total reaches it,
    S_{v,l} = Σ_{j≤l} s_{v,j} ≥ amount (Σ s·e, e = p·factor, for a quote amount); all
    of them when none does.

    Why no deeper level is ever taken: the merge (`solve_exact`) takes levels in order of
    e until its running total, over every venue, reaches the amount; when it takes venue
    v's level l it has taken v's levels before l, so its total before l is at least
    S_{v,l−1} (float addition of non-negative terms is monotone, so this holds bit for
    bit), and it takes l only while that total is below the amount.

    The cut is meant to be cheap: only the first `_TOUCHED_SCAN` levels are cumulated,
    and a venue whose first levels do not reach the amount is kept whole (any longer
    prefix is as exact; a deep order gains little from cutting).
    """
    n = touched_count(levels, factor, amount, amount_in)
    return levels if n == len(levels) else levels[:n]


_TOUCHED_SCAN = 128  # levels of a venue `touched_count` looks at


def touched_count(
    levels: FloatArray, factor: float, amount: float, amount_in: AmountUnit = "base"
) -> int:
    """How many levels `touched_prefix` keeps."""
    n = len(levels)
    if n <= 1:
        return n
    head = levels[:_TOUCHED_SCAN]
    size = head[:, 1]
    if amount_in == "quote":
        size = size * (head[:, 0] * factor)  # the terms solve_exact adds: s·e
    cum = size.cumsum()
    if not cum[-1] >= amount:
        return n
    return int(cum.searchsorted(amount)) + 1


def solve_touched(
    levels: Sequence[FloatArray],
    fees: Sequence[float],
    side: Side,
    amount: float,
    amount_in: AmountUnit = "base",
) -> Allocation:
    """`solve_exact(build_ladder(levels, fees, side), amount, amount_in)`, bit for bit,
    with the ladder built from each venue's `touched_prefix` only: an order a few levels
    deep on books of thousands merges tens of levels, not all of them.

    Bit for bit because the merge of the prefixes is the full merge's first levels in the
    same order (a stable sort keeps the relative order of any subset), so the running
    total, the stop level and every per-venue sum are the same floats.
    """
    _check_unit(amount_in)
    fast = _solve_touched_py(levels, fees, side, amount, amount_in == "quote")
    if fast is not None:
        return fast.allocation()
    return _solve_touched_np(levels, fees, side, amount, amount_in)


def _solve_touched_np(
    levels: Sequence[FloatArray],
    fees: Sequence[float],
    side: Side,
    amount: float,
    amount_in: AmountUnit,
) -> Allocation:
    """`solve_touched` by numpy: each venue cut to its `touched_prefix`, then merged."""
    cut = [
        touched_prefix(lv, factor, amount, amount_in)
        for lv, factor in zip(levels, fee_factors(fees, side), strict=True)
    ]
    return solve_exact(build_ladder(cut, fees, side), amount, amount_in)


_PY_LEVELS = 256  # merged levels up to which `solve_touched` walks in Python
_PY_CHUNK = 8  # a venue's levels read per step by the Python walk (doubling)
_PY_HEAD = 16  # a level array's first rows kept as Python lists by `LadderCache.heads`


def fee_factors(fees: Sequence[float], side: Side) -> list[float]:
    """Each venue's fee factor 1 + f (a buy pays the fee) or 1 − f (a sell's proceeds
    lose it), as `Ladder.factor` computes it."""
    return [1.0 + f for f in fees] if side == "buy" else [1.0 - f for f in fees]


def np_sum(values: list[float]) -> float:
    """`float(np.add.reduce(np.array(values)))`, bit for bit, in Python for up to 128
    values: numpy sums fewer than 8 in order, and up to 128 with 8 interleaved partial
    sums combined pairwise, then the remainder in order (its pairwise summation)."""
    n = len(values)
    if n < 8:
        total = 0.0
        for x in values:
            total += x
        return total
    if n > 128:
        return float(np.add.reduce(np.array(values, dtype=np.float64)))
    r0, r1, r2, r3, r4, r5, r6, r7 = values[:8]
    m = n - n % 8
    for i in range(8, m, 8):
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(m, n):
        total += values[i]
    return total


def _solve_touched_py(
    levels: Sequence[FloatArray],
    fees: Sequence[float],
    side: Side,
    amount: float,
    quote: bool,
    heads: Callable[[FloatArray], list[list[float]]] | None = None,
) -> AllocationRows | None:
    """`solve_exact(build_ladder(levels, fees, side), amount)` in plain Python floats, by
    a lazy k-way merge that reads each venue's levels only as far as the merge gets
    (chunks of 8, 16, ... rows); None when the merge would pass `_PY_LEVELS` levels
    (the numpy path is then cheaper). A quote's first solve on a new book version
    merges a few dozen levels; numpy's per-call overhead, several times larger on a
    core that has just woken from idle, would dominate it.

    The same floats as the numpy merge, operation for operation: e = p·(1 ± f); levels
    leave a heap keyed (e, venue) (−e for a sell), which is `merge_order`'s stable
    argsort of the flattened ladder: each venue's levels are sorted, one per venue is
    in the heap, ties go to the lower venue, then to the venue's better level; the
    running total adds the terms in merge order (cumsum: s, or s·e for a quote
    amount); the stop level is the first whose running total reaches the amount
    (searchsorted, left) and takes rest = amount − the total before it (÷ e for a quote
    amount); per-venue sums add in merge order (bincount); cost = notional·(1 ± f),
    fee = notional·f; filled and value add the venues as np.add.reduce does
    (`np_sum`). `heads(levels)`: a level array's first rows as Python lists, when the
    caller keeps them (`LadderCache.heads`); they are read, never changed."""
    buy = side == "buy"
    n_venues = len(levels)
    factors = fee_factors(fees, side)
    if len(factors) != n_venues:
        raise ValueError(f"{n_venues} level arrays but {len(factors)} fees")
    rows: list[list[list[float]]] = []  # each venue's rows read so far
    heap: list[tuple[float, int, int, float, float]] = []  # (key, venue, row, p, s)
    for v, lv in enumerate(levels):
        head = heads(lv) if heads else cast("list[list[float]]", lv[:_PY_CHUNK].tolist())
        rows.append(head)
        if head:
            p, s = head[0]
            e = p * factors[v]
            heap.append((e if buy else -e, v, 0, p, s))
    heapq.heapify(heap)
    amounts = [0.0] * n_venues
    notional = [0.0] * n_venues
    counts = [0] * n_venues
    worst = [math.nan] * n_venues
    marginal: float | None = None
    total = 0.0
    pop, push = heapq.heappop, heapq.heappush
    for _ in range(_PY_LEVELS):
        if not heap:
            break
        key, v, i, p, s = pop(heap)
        e = key if buy else -key
        reached = total + (s * e if quote else s)
        stop = reached >= amount
        if stop:  # the stop level, partly
            rest = amount - total
            s = rest / e if quote else rest
        amounts[v] += s
        notional[v] += s * p
        counts[v] += 1
        worst[v] = p
        marginal = e
        if stop:
            break
        total = reached
        i += 1
        got = rows[v]
        if i == len(got):  # read further into venue v (a new list: heads stay as given)
            lv = levels[v]
            if i < len(lv):
                got = rows[v] = got + cast("list[list[float]]", lv[i : 2 * i].tolist())
        if i < len(got):
            p, s = got[i]
            e = p * factors[v]
            push(heap, (e if buy else -e, v, i, p, s))
    else:
        if heap:
            return None  # deeper than _PY_LEVELS: the numpy merge
    return AllocationRows.priced(amounts, notional, counts, worst, marginal, factors, fees)


_BLOCK = 64  # merged positions per stored row of per-venue level counts
# a book version's first orders are solved on the levels they touch; preparing the whole
# merge (about ten touched solves' worth at 5 x 1,000 levels) pays only when more follow
_TOUCHED_SOLVES = 4
_ROWS_KEPT = 8  # answers of solve_rows kept per merged ladder (the amounts asked again)

#: what `build_ladder` takes: levels, fees, side, caps
_Books = tuple[list[FloatArray], list[float], Side, Sequence[float | None] | None]


def _no_caps(caps: Sequence[float | None] | None) -> bool:
    return caps is None or all(c is None for c in caps)


@dataclass(frozen=True, slots=True)
class _PreparedLists:
    """The small parts of a prepared `MergedLadder` as Python lists, for
    `_solve_prepared_py`: each venue's level count at every `_BLOCK`-th merged position,
    where its running totals start, and its fee factor and fee (a few dozen numbers; the
    arrays of the ladder's length stay numpy, read value by value)."""

    counts: list[list[int]]
    starts: list[int]
    factor: list[float]
    fees: list[float]

    @classmethod
    def of(cls, merged: MergedLadder) -> _PreparedLists:
        ladder = merged.ladder
        return cls(
            merged._counts.tolist(),
            merged._starts.tolist(),
            np.broadcast_to(ladder.factor, (ladder.n_venues,)).tolist(),
            np.broadcast_to(ladder.fees, (ladder.n_venues,)).tolist(),
        )


class MergedLadder:
    """A ladder with its merge done once: repeated orders skip the build and the sort.

    The first `solve` is `solve_exact` with the stored merge order. The second prepares,
    once, the running totals in merge order (base; quote lazily), each venue's own running
    totals of size and notional, and each venue's level count at every 64th merged
    position. From then on an order costs a binary search for the stop level k, the
    per-venue counts n_v(k) (a stored row plus < 64 levels), and
    q_v = S_v[n_v] (+ the partial level), N_v likewise — O(log L + V + 64), and bit for bit
    `solve_exact`'s answer: S_v adds venue v's sizes in level order, exactly as the
    merge's per-venue sums do.

    Made from the books (`of_books`, as `LadderCache` does), the ladder and its merge are
    built only when needed: the first `_TOUCHED_SOLVES` orders on a book version (a live
    book's every new version) are `solve_touched` on the levels they can reach, without
    caps; the next builds and prepares everything.
    """

    __slots__ = (
        "_books",
        "_counts",
        "_cum",
        "_cum_quote",
        "_factor",
        "_heads",
        "_ladder",
        "_lists",
        "_notional_sums",
        "_order",
        "_prepared",
        "_price",
        "_rows",
        "_size",
        "_size_sums",
        "_solves",
        "_starts",
        "_venue",
        "_worst",
    )

    def __init__(
        self,
        ladder: Ladder | None,
        order: IntArray | None = None,
        books: _Books | None = None,
        heads: Callable[[FloatArray], list[list[float]]] | None = None,
    ) -> None:
        """From a built `ladder`, or (ladder None) from the `books` to build it from;
        `heads`: where the books' first rows are kept as Python lists
        (`LadderCache.heads`), read only if an order is merged in Python."""
        assert ladder is not None or books is not None
        self._heads = heads
        self._ladder = ladder
        self._order = order
        self._books = books
        self._solves = 0
        self._prepared = False
        self._cum_quote: FloatArray | None = None
        self._lists: _PreparedLists | None = None
        self._rows: dict[tuple[float, str], AllocationRows] = {}

    @classmethod
    def of_books(
        cls,
        levels: Sequence[FloatArray],
        fees: Sequence[float],
        side: Side,
        caps: Sequence[float | None] | None = None,
        heads: Callable[[FloatArray], list[list[float]]] | None = None,
    ) -> MergedLadder:
        """The merged ladder of `build_ladder(levels, fees, side, caps)`, built on demand."""
        return cls(None, books=(list(levels), list(fees), side, caps), heads=heads)

    @property
    def ladder(self) -> Ladder:
        if self._ladder is None:
            assert self._books is not None
            self._ladder = build_ladder(*self._books)
        return self._ladder

    @property
    def order(self) -> IntArray:
        """The ladder's `merge_order`."""
        if self._order is None:
            self._order = merge_order(self.ladder)
        return self._order

    def _prepare(self) -> None:
        self._prepared = True
        ladder, order = self.ladder, self.order
        n_venues, n = ladder.n_venues, len(order)
        self._size: FloatArray = ladder.size[order]
        self._venue: IntArray = ladder.venue[order]
        self._price: FloatArray = ladder.price[order]
        self._cum: FloatArray = np.cumsum(self._size)
        # venue v's running totals live at starts[v] .. starts[v] + n_v, from a leading 0
        self._starts: IntArray = ladder.offsets[:-1] + np.arange(n_venues, dtype=np.intp)
        # and venue v's worst price after n levels at starts[v] + n (nan for none)
        self._size_sums: FloatArray = np.zeros(n + n_venues)
        self._notional_sums: FloatArray = np.zeros(n + n_venues)
        self._worst: FloatArray = np.full(n + n_venues, np.nan)
        notional = ladder.size * ladder.price
        for v in range(n_venues):
            lo, hi, at = int(ladder.offsets[v]), int(ladder.offsets[v + 1]), int(self._starts[v])
            np.cumsum(ladder.size[lo:hi], out=self._size_sums[at + 1 : at + 1 + hi - lo])
            np.cumsum(notional[lo:hi], out=self._notional_sums[at + 1 : at + 1 + hi - lo])
            self._worst[at + 1 : at + 1 + hi - lo] = ladder.price[lo:hi]
        self._factor = ladder.factor
        n_blocks = -(-n // _BLOCK)
        block = np.arange(n, dtype=np.intp) // _BLOCK
        per_block = np.bincount(block * n_venues + self._venue, minlength=n_blocks * n_venues)
        self._counts: IntArray = np.zeros((n_blocks + 1, n_venues), dtype=np.intp)
        np.cumsum(per_block.reshape(n_blocks, n_venues), axis=0, out=self._counts[1:])

    def _touched(self) -> _Books | None:
        """The books, while the next solve is to be `solve_touched` on them."""
        books = self._books
        if (
            not self._prepared
            and self._solves < _TOUCHED_SOLVES
            and self._ladder is None
            and books is not None
            and _no_caps(books[3])
        ):
            return books
        return None

    def solve_rows(self, amount: float, amount_in: AmountUnit = "base") -> AllocationRows:
        """`solve` as Python lists (`AllocationRows.of(self.solve(...))`, bit for bit):
        a shallow order on a new book version is merged in Python floats and never
        becomes numpy arrays (what a quote without rules or baselines needs). An amount
        asked again gets the rows it got (up to `_ROWS_KEPT` amounts are kept, then
        forgotten together): shared, so callers must not change the lists."""
        key = (amount, amount_in)
        hit = self._rows.get(key)
        if hit is not None:
            return hit
        if len(self._rows) >= _ROWS_KEPT:
            self._rows.clear()
        rows = self._rows[key] = self._solve(amount, amount_in)
        return rows

    def _solve(self, amount: float, amount_in: AmountUnit) -> AllocationRows:
        """`solve_rows` without the kept answers."""
        books = self._touched()
        if books is not None:
            _check_unit(amount_in)
            fast = _solve_touched_py(*books[:3], amount, amount_in == "quote", self._heads)
            if fast is not None:
                self._solves += 1
                return fast
            self._solves += 1
            return AllocationRows.of(_solve_touched_np(*books[:3], amount, amount_in))
        if not self._prepared:
            return AllocationRows.of(self.solve(amount, amount_in))
        self._solves += 1
        return self._solve_prepared_py(amount, amount_in)

    def _solve_prepared_py(self, amount: float, amount_in: AmountUnit) -> AllocationRows:
        """The prepared `solve` in Python floats: the same indexing and the same float
        operations, bit for bit, with values read one by one (`ndarray.item`) instead of
        the dozen numpy calls (and their arrays) that cost more than the arithmetic at
        V venues. filled, value and Σ fee add the venues as np.add.reduce does
        (`np_sum`)."""
        lists = self._lists
        if lists is None:
            lists = self._lists = _PreparedLists.of(self)
        cum = self._cum if amount_in == "base" else self._quote_cum(amount_in)
        n = len(cum)
        k = int(cum.searchsorted(amount))  # the stop level: running total reaches amount
        full = min(k, n)
        b = full // _BLOCK
        levels = list(lists.counts[b])
        for u in self._venue[b * _BLOCK : full].tolist():
            levels[u] += 1
        at = list(map(operator.add, lists.starts, levels))
        amounts = list(map(self._size_sums.item, at))
        notional = list(map(self._notional_sums.item, at))
        marginal: float | None = None
        eff = self.ladder.eff
        if k < n:  # the stop level, partly
            u = int(self._venue[k])
            e = eff.item(self.order[k])
            rest = amount - (cum.item(k - 1) if k > 0 else 0.0)
            take = rest / e if amount_in == "quote" else rest
            amounts[u] += take
            notional[u] += take * self._price.item(k)
            levels[u] += 1
            at[u] += 1
            marginal = e
        elif n:
            marginal = eff.item(self.order[n - 1])
        worst = list(map(self._worst.item, at))
        return AllocationRows.priced(
            amounts, notional, levels, worst, marginal, lists.factor, lists.fees
        )

    def _quote_cum(self, amount_in: str) -> FloatArray:
        """The running totals in quote units (Σ size · effective price), made once."""
        _check_unit(amount_in)
        if self._cum_quote is None:
            self._cum_quote = np.cumsum(self._size * self.ladder.eff[self.order])
        return self._cum_quote

    def solve(self, amount: float, amount_in: AmountUnit = "base") -> Allocation:
        """The optimal split of `amount`, as `solve_exact` (see there), bit for bit."""
        books = self._touched()
        self._solves += 1
        if not self._prepared:
            if books is not None:
                _check_unit(amount_in)
                fast = _solve_touched_py(*books[:3], amount, amount_in == "quote", self._heads)
                if fast is not None:
                    return fast.allocation()
                return _solve_touched_np(*books[:3], amount, amount_in)
            if self._solves == 1:  # one order on these books so far: no preparation yet
                return solve_exact(self.ladder, amount, amount_in, self.order)
            self._prepare()
        ladder = self.ladder
        cum = self._cum if amount_in == "base" else self._quote_cum(amount_in)
        n = len(cum)
        k = int(cum.searchsorted(amount))  # the stop level: running total reaches amount
        full = min(k, n)  # merged levels taken whole
        b = full // _BLOCK
        levels = self._counts[b] + np.bincount(
            self._venue[b * _BLOCK : full], minlength=ladder.n_venues
        )
        at = self._starts + levels
        amounts = self._size_sums[at]
        notional = self._notional_sums[at]
        marginal: float | None = None
        if k < n:  # the stop level, partly
            u = int(self._venue[k])
            rest = amount - (float(cum[k - 1]) if k > 0 else 0.0)
            take = rest / float(ladder.eff[self.order[k]]) if amount_in == "quote" else rest
            amounts[u] += take
            notional[u] += take * float(self._price[k])
            levels[u] += 1
            at[u] += 1
            marginal = float(ladder.eff[self.order[k]])
        elif n:
            marginal = float(ladder.eff[self.order[n - 1]])
        cost = notional * self._factor
        return Allocation(
            amount=amounts,
            notional=notional,
            fee=notional * ladder.fees,
            cost=cost,
            levels=levels,
            worst_price=self._worst[at],
            marginal=marginal,
            filled=float(np.add.reduce(amounts)),
            value=float(np.add.reduce(cost)),
        )


CacheKey = tuple[object, ...]
T = TypeVar("T")


class LadderCache:
    """Merged ladders per book version, for repeated orders on unchanged books.

    The key is the side, each venue's fee and cap, and the identity of each venue's level
    array (`DepthSnapshot.asks`/`bids`, read-only arrays: a changed book is a new array).
    An entry holds the arrays it was built from, so while it is kept no other object can
    have their ids: a key that matches is those very arrays (never a stale ladder). At most
    `maxsize` entries are kept, least recently used dropped first (a prepared entry of L
    levels holds about 7·L floats). One cache per thread: it is not locked.

        cache = LadderCache()
        route(snaps, "buy", 2.5, markets=mk, cache=cache)  # builds and merges
        route(snaps, "buy", 4.0, markets=mk, cache=cache)  # same books: no build, no sort
    """

    def __init__(self, maxsize: int = 16) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[CacheKey, tuple[tuple[FloatArray, ...], MergedLadder]] = (
            OrderedDict()
        )
        self._prefixes: dict[tuple[int, int], tuple[FloatArray, FloatArray]] = {}
        self._reaching: dict[tuple[int, int], tuple[FloatArray, FloatArray]] = {}
        self._heads: dict[int, tuple[FloatArray, list[list[float]]]] = {}
        self._facts: OrderedDict[tuple[int, ...], tuple[tuple[object, ...], object]] = OrderedDict()

    def facts(self, objects: tuple[object, ...], make: Callable[[], T]) -> T:
        """`make()` for these `objects` (book snapshots, markets: compared by identity,
        like the level arrays), made once while kept (at most `maxsize`, least recently
        used dropped first): what a caller reads from the same book versions on every
        order. An entry holds its objects, so while it is kept no other object can have
        their ids: a key of ids that matches is those very objects."""
        key = tuple(map(id, objects))
        hit = self._facts.get(key)
        if hit is not None:  # it holds its objects: these ids are theirs, no one else's
            self._facts.move_to_end(key)
            return cast("T", hit[1])
        value = make()
        self._facts[key] = (objects, value)
        if len(self._facts) > self.maxsize:
            self._facts.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def prefix(self, levels: FloatArray, n: int) -> FloatArray:
        """`levels[:n]`, the same view object each time for the same array and n while
        kept (at most 4 · maxsize are), so that a ladder built on cut books is found
        again here; `levels` itself when n covers it."""
        if n >= len(levels):
            return levels
        key = (id(levels), n)
        hit = self._prefixes.get(key)
        if hit is not None and hit[0] is levels:
            return hit[1]
        cut = levels[:n]
        self._prefixes[key] = (levels, cut)
        if len(self._prefixes) > 4 * self.maxsize:
            del self._prefixes[next(iter(self._prefixes))]  # the oldest
        return cut

    def reaching(self, levels: FloatArray, size: float) -> FloatArray:
        """`levels` cut after the first level whose running size reaches 2^e >= `size`,
        the power of two at or above it (all of them when none does, `touched_count`):
        the same view object for the same array and any size in the same octave, so a
        new amount on the same book finds its cut, and the ladder merged from it, again.
        """
        octave = math.frexp(size)[1] if size > 0 else 0  # size <= 2^octave
        key = (id(levels), octave)
        hit = self._reaching.get(key)
        if hit is not None and hit[0] is levels:
            return hit[1]
        cut = self.prefix(levels, touched_count(levels, 1.0, math.ldexp(1.0, octave)))
        self._reaching[key] = (levels, cut)
        if len(self._reaching) > 4 * self.maxsize:
            del self._reaching[next(iter(self._reaching))]  # the oldest
        return cut

    def heads(self, levels: FloatArray) -> list[list[float]]:
        """The first `_PY_HEAD` rows of `levels` as Python [price, size] lists, read once
        per array while kept (at most 4 · maxsize arrays): a live book's update changes
        one venue's side, and the Python merge reads the other venues' rows from here,
        without a numpy call. Shared: callers must not change the lists."""
        key = id(levels)
        hit = self._heads.get(key)
        if hit is not None and hit[0] is levels:
            return hit[1]
        rows = cast("list[list[float]]", levels[:_PY_HEAD].tolist())
        self._heads[key] = (levels, rows)
        if len(self._heads) > 4 * self.maxsize:
            del self._heads[next(iter(self._heads))]  # the oldest
        return rows

    def clear(self) -> None:
        self._entries.clear()
        self._prefixes.clear()
        self._reaching.clear()
        self._heads.clear()
        self._facts.clear()

    def merged(
        self,
        levels: Sequence[FloatArray],
        fees: Sequence[float],
        side: Side,
        caps: Sequence[float | None] | None = None,
    ) -> MergedLadder:
        """The merged ladder of `build_ladder(levels, fees, side, caps)`, built once."""
        key: CacheKey = (
            side,
            tuple(fees),
            None if caps is None else tuple(caps),
            *map(id, levels),
        )
        entry = self._entries.get(key)
        if entry is not None:  # it holds its arrays: these ids are theirs, no one else's
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        merged = MergedLadder.of_books(levels, fees, side, caps, self.heads)  # built on reuse
        self._entries[key] = (tuple(levels), merged)
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return merged


def _cum_reaching(size: FloatArray, target: float) -> FloatArray:
    """The running total of `size` over a prefix that reaches `target` (all of it when
    none does). A prefix of a cumsum is the cumsum of the prefix, bit for bit, so a walk
    that stops early needs only the levels it touches (plus a doubling margin)."""
    n = len(size)
    m = min(n, 32)
    cum: FloatArray = np.cumsum(size[:m])
    while m < n and not cum[-1] >= target:
        m = min(n, 4 * m)
        cum = np.cumsum(size[:m])
    return cum


def _venue_take(ladder: Ladder, v: int, q: float) -> tuple[int, FloatArray]:
    """(first level index, base taken from each level) when venue v alone takes q > 0
    from its own levels, best first; ValueError beyond its depth."""
    lo, hi = int(ladder.offsets[v]), int(ladder.offsets[v + 1])
    size = ladder.size[lo:hi]
    cum = _cum_reaching(size, q * (1 - 1e-15))
    if len(cum) == len(size) and q > cum[-1] * (1 + 1e-12) + 1e-15:
        raise ValueError(f"venue {v}: amount {q} exceeds its depth {cum[-1]}")
    k = min(int(np.searchsorted(cum, q * (1 - 1e-15), side="left")), len(size) - 1)
    take = size[: k + 1].copy()
    take[k] = q - (cum[k - 1] if k else 0.0)
    return lo, take


def venue_notional(ladder: Ladder, v: int, q: float) -> float:
    """Σ p·x when venue v takes q base (fees excluded): `allocate`'s notional of v alone."""
    if q <= 0:
        return 0.0
    lo, take = _venue_take(ladder, v, q)
    return float(take @ ladder.price[lo : lo + len(take)])


def allocate(ladder: Ladder, amounts: FloatArray) -> Allocation:
    """The `Allocation` of given per-venue amounts, each venue walking its own levels.

    Used for splits found by other means (rules, rounding): costs, fees and worst prices
    are computed exactly from the ladder. `marginal` is the dearest fee-adjusted level
    touched (cheapest, for a sell). Amounts beyond a venue's depth raise ValueError.
    """
    n_venues = ladder.n_venues
    notional = np.zeros(n_venues)
    cost = np.zeros(n_venues)
    levels = np.zeros(n_venues, dtype=np.intp)
    worst = np.full(n_venues, np.nan)
    marginal: float | None = None
    for v in range(n_venues):
        q = float(amounts[v])
        if q <= 0:
            continue
        lo, take = _venue_take(ladder, v, q)
        k = len(take) - 1
        notional[v] = float(take @ ladder.price[lo : lo + k + 1])
        cost[v] = float(take @ ladder.eff[lo : lo + k + 1])
        levels[v] = k + 1
        worst[v] = ladder.price[lo + k]
        e = float(ladder.eff[lo + k])
        if marginal is None or (e > marginal if ladder.side == "buy" else e < marginal):
            marginal = e
    return Allocation(
        amount=np.asarray(amounts, dtype=np.float64).copy(),
        notional=notional,
        fee=notional * ladder.fees,
        cost=cost,
        levels=levels,
        worst_price=worst,
        marginal=marginal,
        filled=float(np.sum(amounts)),
        value=float(cost.sum()),
    )
