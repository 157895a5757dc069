"""Replay recorded books, route parent orders with several strategies, fill them later.

Files -> per-venue streams of validated batches (`liquidroute.tardis`) -> one forward
pass in time over all venues (`liquidroute.book.BookCursor`) -> parent orders on a
schedule. At each order time t every strategy splits the order on the books as of t
(arrival time); the split is filled on the books as of t + latency. Both clocks are served
by the same pass: the events (route at t_i, fill at t_i + latency) are visited in time
order, and each venue's cursor only moves forward; memory is the books, one batch per
venue, and the orders in flight (latency / spacing of them).

Each strategy is a split of the order across venues: "optimal" is `route()` (rules-aware,
venue rules applied when they can bind), "optimal_exact" is `route(rules=False)`, the
others are the baselines of `liquidroute.optimizer.baselines` ("best_venue",
"equal_split", "pro_rata", "percent_grid"). Every split is filled through the one book walk
(`liquidroute.optimizer.curves.walk_book`, the walk SimulatedVenue uses) at fill time,
taker fee included, with no limit price — what a marketable order would have paid.
Strategies are independent: each fills against the same book (none sees another's impact).

Per order the work is shared: each venue's book is read once per clock as level arrays
(`BookCursor.levels`; `DepthSnapshot`s are built only if a strategy needs them, i.e.
route() with venue rules); one ladder serves every strategy, and the baselines share one
evaluation of every venue's curve (`baselines.baseline_splits`); when no venue rule can bind,
route()'s answer is its exact split (`exact.solve_exact` on that ladder, which is what
route() computes then), so route() is called only when rules apply; the distinct splits
are priced once (`exact.allocate` on the ladder: the planned cost) and walked once per
venue for all of them (`curves.walk_many`, bit for bit `walk_book`). At zero latency the
fill is the walk on the route books, and no fill-clock book is kept.

`align="start"` overlays recordings from different windows: each file's clock is shifted
so that all start together, and each venue's prices are re-centred (multiplied by
common_mid / its mid at the start). Every output says so.

A run can be cut into windows of consecutive orders (`run(..., start=k)`): a window's books
are seeded from each file's last snapshot before the window, and the reads the orders before
it would have made since that snapshot are replayed without routing (a read repairs crossed
books, so it changes state); the rows then equal the single pass exactly.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from liquidroute.book import BookCursor, open_cursor
from liquidroute.errors import DataFileError, InvalidInputError, LiquidrouteError
from liquidroute.model import DepthSnapshot, FloatArray, Market, Side
from liquidroute.optimizer.baselines import BASELINE_SPLITS, baseline_splits
from liquidroute.optimizer.curves import IntArray, Ladder, build_ladder, walk_many
from liquidroute.optimizer.exact import allocate, solve_exact
from liquidroute.tardis import FileIndex, TardisFile, format_us, scan

#: (books at t, ladder built from them, side, amount, markets) -> base amount per venue
Strategy = Callable[
    [Sequence[DepthSnapshot], Ladder, Side, float, Mapping[str, Market]], FloatArray | None
]


def _routed(rules: bool | None) -> Strategy:
    def split(
        books: Sequence[DepthSnapshot],
        ladder: Ladder,
        side: Side,
        amount: float,
        markets: Mapping[str, Market],
    ) -> FloatArray | None:
        if rules is not True and not any(m.has_rules for m in markets.values()):
            # no rule can bind (no lot, minimum or maximum; no balances, caps or fixed
            # costs in a backtest): route() is the exact split of this very ladder
            if not (math.isfinite(amount) and amount > 0):
                return None  # what route()'s check_amount refuses
            return solve_exact(ladder, amount).amount
        from liquidroute.router.route import route

        try:
            quote = route(books, side, amount, markets=markets, baselines=False, rules=rules)
        except LiquidrouteError:
            return None
        out = np.zeros(len(books))
        where = {b.venue: i for i, b in enumerate(books)}
        for leg in quote.legs:
            out[where[leg.venue]] = leg.amount
        return out

    return split


def _baseline(name: str) -> Strategy:
    fn = BASELINE_SPLITS[name]

    def split(
        books: Sequence[DepthSnapshot],
        ladder: Ladder,
        side: Side,
        amount: float,
        markets: Mapping[str, Market],
    ) -> FloatArray | None:
        return fn(ladder, amount)

    return split


STRATEGIES: dict[str, Strategy] = {
    "optimal": _routed(rules=None),
    "optimal_exact": _routed(rules=False),
    **{name: _baseline(name) for name in BASELINE_SPLITS},
}
DEFAULT_STRATEGIES = ("optimal", "best_venue", "equal_split", "pro_rata", "percent_grid")
_BASELINES = frozenset(BASELINE_SPLITS)


@dataclass(frozen=True, slots=True)
class ParentOrder:
    t_us: int
    side: Side
    amount: float


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parent order every `every_us` from `first_us` on, while every recording lasts
    (`end_us` when known, from a scan; otherwise the run stops at the first file's end)."""

    first_us: int
    every_us: int
    side: Side
    amount: float
    end_us: int | None = None

    def __iter__(self) -> Iterator[ParentOrder]:
        t = self.first_us
        while self.end_us is None or t <= self.end_us:
            yield ParentOrder(t, self.side, self.amount)
            t += self.every_us

    def __len__(self) -> int:
        if self.end_us is None:
            raise InvalidInputError("the schedule's length needs the recordings' end (scan)")
        return max(0, (self.end_us - self.first_us) // self.every_us + 1)

    def __getitem__(self, i: int) -> ParentOrder:
        return ParentOrder(self.first_us + i * self.every_us, self.side, self.amount)

    def part(self, start: int, stop: int) -> Schedule:
        """Orders start..stop-1 as a schedule of their own."""
        first = self.first_us + start * self.every_us
        return Schedule(
            first, self.every_us, self.side, self.amount, self.first_us + (stop - 1) * self.every_us
        )


Orders = Schedule | Sequence[ParentOrder]


def orders_part(orders: Orders, start: int, stop: int) -> Orders:
    """Orders start..stop-1 (a schedule stays a schedule: small to send to a worker)."""
    if isinstance(orders, Schedule):
        return orders.part(start, stop)
    return list(orders[start:stop])


def window_entry(replay: Replay, orders: Orders, start: int, latency_ms: float) -> int:
    """The first order a window starting at order `start` must replay (without routing):
    the first whose fill time is at or after the earliest seed snapshot of the window."""
    if start == 0:
        return 0
    if any(v.index is None for v in replay.venues):
        replay.scan()
    lat_us = int(latency_ms * 1e3)
    t0 = orders[start].t_us
    seeds = []
    for v in replay.venues:
        assert v.index is not None
        row = v.index.seed_row(t0 - v.shift_us)
        seeds.append(v.index.snapshot_us[v.index.snapshot_rows.index(row)] + v.shift_us)
    seed = min(seeds)
    lo, hi = 0, start  # first j with t_j + lat >= seed (times are sorted)
    while lo < hi:
        mid = (lo + hi) // 2
        if orders[mid].t_us + lat_us < seed:
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass(slots=True)
class Venue:
    """One recorded venue: its file, clock shift and price scale."""

    source: TardisFile
    start_us: int = 0  # the file's first snapshot, file clock
    shift_us: int = 0
    price_scale: float = 1.0
    index: FileIndex | None = None

    @property
    def name(self) -> str:
        return self.source.venue

    @property
    def path(self) -> Path:
        return self.source.path


@dataclass(slots=True)
class Replay:
    """The files of a backtest, opened (first batch and first book read), not loaded."""

    venues: list[Venue]
    markets: dict[str, Market]
    aligned: bool
    label: str
    symbol: str = ""
    start_us: int = 0
    end_us: int | None = None
    notes: list[str] = field(default_factory=list)

    def scan(self) -> Replay:
        """Read each file's index (a streaming pass, or the Parquet index): `end_us` and the
        snapshot starts that windows seed from."""
        for v in self.venues:
            if v.index is None:
                v.index = scan(v.source)
        self.end_us = min(v.index.end_us + v.shift_us for v in self.venues if v.index)
        if self.end_us <= self.start_us:
            raise DataFileError(
                "the recordings do not overlap in time; use --align start to overlay them"
            )
        return self


def _first_book(source: TardisFile) -> tuple[int, DepthSnapshot]:
    cursor = open_cursor(source)
    if not cursor.advance_to_first_book() or cursor.start_us is None:
        raise DataFileError(f"{source.path}: no snapshot rows; the book is never known")
    return cursor.start_us, cursor.snapshot()


def _pick_symbol(
    sources: list[TardisFile], symbol: str | None
) -> tuple[list[TardisFile], list[str]]:
    held: dict[str, list[str]] = {}
    for s in sources:
        held.setdefault(s.symbol, []).append(s.path.name)
    if symbol is not None:
        want = symbol.strip().upper()
        chosen = [s for s in sources if s.symbol.upper() == want]
        if not chosen:
            raise InvalidInputError(
                f"--symbol {symbol}: no file holds it; the files hold "
                + "; ".join(f"{k} ({', '.join(v)})" for k, v in held.items())
            )
        left = [
            f"{s.path.name} ({s.symbol}) left out: not {chosen[0].symbol}"
            for s in sources
            if s not in chosen
        ]
        return chosen, left
    if len(held) > 1:
        raise DataFileError(
            "the files hold different instruments: "
            + "; ".join(f"{k} in {', '.join(v)}" for k, v in sorted(held.items()))
            + "; choose one with "
            + " or ".join(f"--symbol {k}" for k in sorted(held))
        )
    return sources, []


def load(
    paths: Sequence[Path],
    *,
    align: str | None = None,
    fees: Mapping[str, float] | None = None,
    skip_bad_rows: bool = False,
    symbol: str | None = None,
) -> Replay:
    """Open the files, check they hold one symbol on distinct venues, set up the clocks.

    Only each file's start is read (its first batch and first snapshot); the run streams
    the rest. With `symbol`, files of other instruments are left out (and said so).
    """
    from liquidroute.venues.ccxt_venue import static_taker_fee

    if not paths:
        raise InvalidInputError("give at least one recorded book file")
    if align not in (None, "start"):
        raise InvalidInputError(f"--align takes 'start', got {align!r}")
    sources = [TardisFile(Path(p), skip_bad_rows=skip_bad_rows) for p in paths]
    sources, left_out = _pick_symbol(sources, symbol)
    names = [s.venue for s in sources]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"two files for one venue: {names}; one file per venue")
    sym = sources[0].symbol
    fees = dict(fees or {})
    # ccxt's fee table (an import of ccxt) only for venues without a given fee
    markets = {n: Market(n, sym, fees[n] if n in fees else static_taker_fee(n)) for n in names}
    venues, mids = [], []
    for s in sources:
        start, book = _first_book(s)
        venues.append(Venue(s, start_us=start))
        mids.append(book.mid or 1.0)
    replay = Replay(venues, markets, aligned=align == "start", label="recorded books", symbol=sym)
    replay.notes.extend(left_out)
    if align == "start":
        common_start = max(v.start_us for v in venues)
        common_mid = float(np.median(mids))
        for v, m in zip(venues, mids, strict=True):
            v.shift_us = common_start - v.start_us
            v.price_scale = common_mid / m
        replay.label = (
            "recorded books from different windows, ALIGNED: clocks shifted to a "
            "common start and prices re-centred on a common mid"
        )
        replay.notes.append(replay.label)
    replay.start_us = max(v.start_us + v.shift_us for v in venues)
    return replay


def schedule(replay: Replay, every_s: float, side: Side, amount: float) -> Schedule:
    """A parent order every `every_s` seconds after the common start, while the books last."""
    if not math.isfinite(every_s) or every_s <= 0:
        raise InvalidInputError(f"--every must be a positive duration, got {every_s!r}")
    step = int(every_s * 1e6)
    if step <= 0:
        raise InvalidInputError(f"--every must be at least 1 µs, got {every_s!r} s")
    return Schedule(replay.start_us + step, step, side, amount, replay.end_us)


def read_orders(path: Path, replay: Replay) -> list[ParentOrder]:
    """Parent orders from a CSV with columns timestamp (ISO-8601 or epoch ms), side, amount."""
    import csv

    from liquidroute.model import check_amount, check_side
    from liquidroute.tardis import check_file, parse_time_ms

    check_file(path)
    orders = []
    try:
        with path.open(newline="") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    t = int(parse_time_ms(row["timestamp"], "timestamp") * 1e3)
                    orders.append(
                        ParentOrder(
                            t, check_side(row["side"]), check_amount(row["amount"], "amount")
                        )
                    )
                except (KeyError, LiquidrouteError) as exc:
                    raise DataFileError(f"{path}: line {line}: {exc}") from None
    except OSError as exc:
        raise DataFileError(f"{path}: {exc.strerror}") from None
    if replay.end_us is None:
        replay.scan()
    end = replay.end_us if replay.end_us is not None else replay.start_us
    outside = [o for o in orders if not replay.start_us <= o.t_us <= end]
    if outside:
        raise DataFileError(
            f"{path}: {len(outside)} order(s) outside the recordings' window "
            f"{format_us(replay.start_us)} .. {format_us(end)}"
        )
    return sorted(orders, key=lambda o: o.t_us)


class _Books(Sequence[DepthSnapshot]):
    """One read of every venue's book: its (bids, asks) level arrays (prices scaled), and
    the same books as validated `DepthSnapshot`s, built only when a strategy asks for them
    (`route()` when venue rules apply); the baselines and the exact split need the arrays
    only."""

    __slots__ = ("_meta", "_snaps", "levels")

    def __init__(
        self,
        levels: list[tuple[FloatArray, FloatArray]],
        meta: list[tuple[str, str, float, float]],
    ) -> None:
        self.levels = levels
        self._meta = meta  # venue, symbol, exchange and arrival time (ms) of each read
        self._snaps: list[DepthSnapshot] | None = None

    def side(self, side: Side) -> list[FloatArray]:
        """The levels a `side` order walks on each venue (asks for a buy)."""
        k = 1 if side == "buy" else 0
        return [lv[k] for lv in self.levels]

    def mid(self) -> float:
        """(best bid across venues + best ask across venues) / 2; nan if a side is empty."""
        bids = [b.item(0) for b, _ in self.levels if len(b)]
        asks = [a.item(0) for _, a in self.levels if len(a)]
        return (max(bids) + min(asks)) / 2 if bids and asks else math.nan

    def __len__(self) -> int:
        return len(self.levels)

    @overload
    def __getitem__(self, i: int) -> DepthSnapshot: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[DepthSnapshot]: ...
    def __getitem__(self, i: int | slice) -> DepthSnapshot | Sequence[DepthSnapshot]:
        if self._snaps is None:
            self._snaps = [
                DepthSnapshot(venue, symbol, bids, asks, ts, local)
                for (venue, symbol, ts, local), (bids, asks) in zip(
                    self._meta, self.levels, strict=True
                )
            ]
        return self._snaps[i]


def _read(replay: Replay, cursors: Sequence[BookCursor], depth: int, clock: str) -> _Books:
    """Every venue's book as of now on `clock` (a read: stale crossed levels repaired)."""
    levels, meta = [], []
    for v, c in zip(replay.venues, cursors, strict=True):
        bids, asks = c.levels(depth, clock)
        if v.price_scale != 1.0:
            scale = [v.price_scale, 1.0]
            bids, asks = bids * scale, asks * scale
        levels.append((bids, asks))
        meta.append((c.venue, c.symbol, c.last_ts / 1e3, c.last_local_ts / 1e3))
    return _Books(levels, meta)


def _walk(
    levels: Sequence[FloatArray], amounts: FloatArray, side: Side, fees: Sequence[float]
) -> tuple[FloatArray, FloatArray]:
    """(filled, all-in cost) of each row of `amounts` (splits x venues): each venue's part
    walked on its levels, no limit, taker fee included — `walk_book` for every split at
    once (`curves.walk_many`), summed over the venues in their order."""
    filled = np.zeros(len(amounts))
    cost = np.zeros(len(amounts))
    for v, lv in enumerate(levels):
        q = amounts[:, v]
        if not q.any():
            continue
        f, notional = walk_many(lv, q)
        filled += f
        cost += notional * (1 + fees[v]) if side == "buy" else notional * (1 - fees[v])
    return filled, cost


def _distinct(amounts: FloatArray) -> tuple[FloatArray, IntArray]:
    """The distinct rows of `amounts` (bit for bit) and which of them each row is:
    strategies often split alike (one venue; a venue that dominates), and each split is
    priced once. Rows keep the order of their first appearance."""
    bits = amounts.view(np.uint64)
    n = len(amounts)
    if n == 0 or (bits == bits[0]).all():
        return amounts[:1], np.zeros(n, dtype=np.intp)
    same = (bits[:, None, :] == bits[None, :, :]).all(axis=2)
    first = same.argmax(axis=1)  # the first row equal to each row
    firsts = np.flatnonzero(first == np.arange(n))
    which: IntArray = firsts.searchsorted(first)
    return amounts[firsts], which


@dataclass(slots=True)
class _Planned:
    """An order's splits at route time. `splits` are the distinct splits (x venues; None
    for an order replayed without routing), strategy k's is `splits[which[k]]`, `routed[k]`
    False when it could not split the order; `planned_cost` per split (`allocate` on the
    ladder), `route_walk` the splits walked on the route books (the fill at zero latency)."""

    index: int
    order: ParentOrder
    mid: float
    strategies: Sequence[str]
    splits: FloatArray | None = None
    which: IntArray | None = None
    routed: list[bool] = field(default_factory=list)
    planned_cost: FloatArray | None = None
    route_walk: tuple[FloatArray, FloatArray] | None = None


def check_options(strategies: Sequence[str], latency_ms: float) -> int:
    """Known strategies and a valid latency (µs returned), or a clear error."""
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise InvalidInputError(
            f"unknown strategies {sorted(unknown)}; known: {sorted(STRATEGIES)}"
        )
    if not math.isfinite(latency_ms) or latency_ms < 0:
        raise InvalidInputError(f"--latency-ms must be >= 0, got {latency_ms!r}")
    return int(latency_ms * 1e3)


def iter_rows(
    replay: Replay,
    orders: Iterable[ParentOrder],
    *,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    latency_ms: float = 0.0,
    depth: int = 200,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(order number, its rows: one per strategy), in order, in one pass over the files.

    Orders numbered below `start` are replayed without routing (their reads only; see the
    module doc), and the files are entered at the last snapshot before order `start`
    (needs `replay.scan()`); the pass ends before order `stop`, or at the first order
    after the end of a recording.
    """
    lat_us = check_options(strategies, latency_ms)
    names = [v.name for v in replay.venues]
    fees = [replay.markets[n].taker_fee for n in names]
    cursors = _cursors(replay, orders, start, lat_us)
    for c in cursors:
        c.two_clocks = lat_us > 0  # at zero latency the fill clock never reads
    pending: deque[_Planned] = deque()
    seed_us = min(
        (c.seed_us + v.shift_us for v, c in zip(replay.venues, cursors, strict=True)),
        default=0,
    )
    for i, order in enumerate(orders):
        if stop is not None and i >= stop:
            break
        t = order.t_us
        while pending and pending[0].order.t_us + lat_us <= t:
            first = pending.popleft()
            rows = _filled(replay, cursors, first, lat_us, depth, fees)
            if rows:
                yield first.index, rows
        if i < start:
            if t + lat_us < seed_us:
                continue  # before every file's seed snapshot: nothing to replay
            if _advance(replay, cursors, t):
                break
            for c in cursors:
                c.repair("route")
            if lat_us:
                pending.append(_Planned(i, order, math.nan, strategies))
            continue
        if _advance(replay, cursors, t):
            break
        books = _read(replay, cursors, depth, "route")
        planned = _plan(i, order, books, fees, strategies, replay.markets, lat_us)
        if lat_us == 0:  # filled on the books it was routed on
            assert planned.route_walk is not None
            yield i, _rows(planned, planned.route_walk, names)
        else:
            pending.append(planned)
    while pending:
        first = pending.popleft()
        rows = _filled(replay, cursors, first, lat_us, depth, fees)
        if rows:
            yield first.index, rows


def _cursors(
    replay: Replay, orders: Iterable[ParentOrder], start: int, lat_us: int
) -> list[BookCursor]:
    if start == 0:
        return [open_cursor(v.source) for v in replay.venues]
    if any(v.index is None for v in replay.venues):
        replay.scan()
    first = next(o for i, o in enumerate(orders) if i == start)
    out = []
    for v in replay.venues:
        assert v.index is not None
        row = v.index.seed_row(first.t_us - v.shift_us)
        cursor = open_cursor(v.source, row)
        cursor.seed_us = v.index.snapshot_us[v.index.snapshot_rows.index(row)]
        out.append(cursor)
    return out


def _advance(replay: Replay, cursors: Sequence[BookCursor], t_us: int) -> bool:
    """Move every venue to `t_us`; True when a recording ended before it."""
    for v, c in zip(replay.venues, cursors, strict=True):
        local = t_us - v.shift_us
        c.advance_to(local)
        if c.exhausted and c.last_local_ts < local:
            return True
    return False


def _plan(
    i: int,
    order: ParentOrder,
    books: _Books,
    fees: Sequence[float],
    strategies: Sequence[str],
    markets: Mapping[str, Market],
    lat_us: int,
) -> _Planned:
    """Every strategy's split of `order` on one ladder built once from `books`, and what
    each distinct split costs on it."""
    side = order.side
    levels = books.side(side)
    ladder = build_ladder(levels, fees, side)
    amounts = np.zeros((len(strategies), len(levels)))
    # the baselines on one evaluation of the curves: what STRATEGIES[name] gives each
    shared = baseline_splits(ladder, order.amount, [n for n in strategies if n in _BASELINES])
    found = []
    for k, name in enumerate(strategies):
        if name in shared:
            split = shared[name]
        else:
            split = STRATEGIES[name](books, ladder, side, order.amount, markets)
        if split is not None:
            amounts[k] = split
        found.append(split is not None)
    # a strategy that could not split the order (None, or nothing to take) is not routed
    ok = np.add.reduce(amounts, axis=1) > 0  # each row's sum, as split.sum()
    if not ok.all():
        amounts[~ok] = 0.0
    routed = [f and o for f, o in zip(found, ok.tolist(), strict=True)]
    splits, which = _distinct(amounts)
    planned_cost = np.array([allocate(ladder, s).value for s in splits])
    route_walk = _walk(levels, splits, side, fees) if lat_us == 0 else None
    return _Planned(
        i, order, books.mid(), strategies, splits, which, routed, planned_cost, route_walk
    )


def _filled(
    replay: Replay,
    cursors: Sequence[BookCursor],
    planned: _Planned,
    lat_us: int,
    depth: int,
    fees: Sequence[float],
) -> list[dict[str, Any]]:
    t = planned.order.t_us + lat_us
    _advance(replay, cursors, t)
    if planned.splits is None:  # an order before the window: its read only
        for c in cursors:
            c.repair("fill")
        return []
    books = _read(replay, cursors, depth, "fill")
    fills = _walk(books.side(planned.order.side), planned.splits, planned.order.side, fees)
    return _rows(planned, fills, [v.name for v in replay.venues])


def _rows(
    planned: _Planned, fills: tuple[FloatArray, FloatArray], names: Sequence[str]
) -> list[dict[str, Any]]:
    """One result row per strategy: its split's fill (filled, all-in cost) against its plan."""
    order, mid = planned.order, planned.mid
    splits, which, planned_cost = planned.splits, planned.which, planned.planned_cost
    assert splits is not None and which is not None and planned_cost is not None
    sign = 1.0 if order.side == "buy" else -1.0
    t_us, side, amount = order.t_us, order.side, order.amount
    # per distinct split (of a routed strategy): its figures and venues, computed once
    per_split: list[tuple[float, float, float, float, float, float, str] | None]
    per_split = [None] * len(splits)
    rows: list[dict[str, Any]] = []
    for k, name in enumerate(planned.strategies):
        if not planned.routed[k]:
            rows.append(
                {"t_us": t_us, "strategy": name, "side": side, "amount": amount, "mid": mid}
                | _UNFILLED
            )
            continue
        j = which.item(k)
        figures = per_split[j]
        if figures is None:
            filled, cost, plan = fills[0].item(j), fills[1].item(j), planned_cost.item(j)
            avg = cost / filled if filled else math.nan
            planned_avg = plan / float(splits[j].sum())
            used = ",".join(n for n, q in zip(names, splits[j].tolist(), strict=True) if q > 0)
            figures = per_split[j] = (
                filled,
                cost,
                plan,
                avg,
                sign * (avg - mid) / mid * 1e4,
                sign * (avg - planned_avg) / planned_avg * 1e4,
                used,
            )
        filled, cost, plan, avg, slippage, shortfall, venues = figures
        rows.append(
            {
                "t_us": t_us,
                "strategy": name,
                "side": side,
                "amount": amount,
                "mid": mid,
                "filled": filled,
                "cost": cost,
                "planned_cost": plan,
                "avg_price": avg,
                "slippage_bps": slippage,
                "shortfall_bps": shortfall,
                "venues": venues,
            }
        )
    return rows


_UNFILLED = {
    "filled": 0.0,
    "cost": math.nan,
    "planned_cost": math.nan,
    "avg_price": math.nan,
    "slippage_bps": math.nan,
    "shortfall_bps": math.nan,
    "venues": "",
}


def run(
    replay: Replay,
    orders: Iterable[ParentOrder],
    *,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    latency_ms: float = 0.0,
    depth: int = 200,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (parent order, strategy), in memory (small runs; `iter_rows` streams).
    Orders must be sorted by time."""
    rows: list[dict[str, Any]] = []
    n = 0
    for _, part in iter_rows(
        replay, orders, strategies=strategies, latency_ms=latency_ms, depth=depth
    ):
        rows.extend(part)
        n += 1
        if progress is not None:
            progress(n)
    if n == 0:
        _no_orders(replay)
    return rows


def _no_orders(replay: Replay) -> None:
    replay.scan()  # raises when the recordings do not overlap


__all__ = [
    "DEFAULT_STRATEGIES",
    "STRATEGIES",
    "ParentOrder",
    "Replay",
    "Schedule",
    "Venue",
    "check_options",
    "iter_rows",
    "load",
    "orders_part",
    "read_orders",
    "run",
    "schedule",
    "window_entry",
]
