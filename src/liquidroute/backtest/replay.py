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
"equal_split", "pro_rata", "percent_grid"). Every split is filled at fill time by the book
walk of `liquidroute.optimizer.curves.walk_book` (the walk SimulatedVenue uses; here for a
batch at once, `batched.walk`), taker fee included, with no limit price — what a marketable
order would have paid.
Strategies are independent: each fills against the same book (none sees another's impact).

The arithmetic is done for a batch of consecutive orders at once (`BATCH_ORDERS`, with
`liquidroute.optimizer.batched`): one numpy call covers every order of the batch, where
one order at a time would pay ~50 small calls each. A read keeps each venue's book arrays
as they are at t (`BookCursor.read`; a book never writes into its arrays), and the batch's
reads are cut to the levels the orders can reach, packed and scaled together. On them:
the exact split (bit for bit `exact.solve_exact`, what route() computes when no venue rule
can bind; with a rule that can bind, route() is called order by order on `DepthSnapshot`s
built from the read), the four baselines on one evaluation of every venue's cost curve
(bit for bit the `baselines` functions), what each split costs on the route books (the
planned cost, `exact.allocate`'s) and its walk at fill time (`curves.walk_book`'s); the
last two add the same terms sequentially where those take a BLAS dot, so they agree to
~1e-15. An order's figures do not depend on the other orders of its batch, so windows and
batches give the same numbers. At zero latency the fill is the walk on the route books,
and no fill-clock book is kept. Results come out as columns per batch (`iter_batches`;
`iter_rows` gives them as dicts).

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
import numpy.typing as npt

from liquidroute.backtest.store import COLUMNS
from liquidroute.book import BookCursor, open_cursor
from liquidroute.errors import DataFileError, InvalidInputError, LiquidrouteError
from liquidroute.model import DepthSnapshot, FloatArray, Market, Side
from liquidroute.optimizer import batched
from liquidroute.optimizer.baselines import BASELINE_SPLITS
from liquidroute.optimizer.curves import IntArray
from liquidroute.tardis import FileIndex, TardisFile, format_us, scan

#: route()'s rules setting of each routed strategy (module doc)
_RULES: dict[str, bool | None] = {"optimal": None, "optimal_exact": False}
STRATEGIES: tuple[str, ...] = (*_RULES, *BASELINE_SPLITS)
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
    """One read of every venue's book, as the book's own arrays: `keys` (−price for a bid,
    +price for an ask, ascending: bids then asks, best first), `sizes`, the bids' count,
    and the venue's price scale. A book replaces its arrays on every change and never
    writes into them (`L2Book`), so keeping them is free; the levels are cut to `depth`
    a side and scaled when the batch is packed. `DepthSnapshot`s are built only when a
    strategy asks for them (`route()` when venue rules apply)."""

    __slots__ = ("_meta", "_snaps", "depth", "reads")

    def __init__(
        self,
        reads: list[tuple[FloatArray, FloatArray, int, float]],
        meta: Sequence[tuple[str, str, float | None, float | None]],
        depth: int | None,
    ) -> None:
        self.reads = reads  # (keys, sizes, bids, price scale) per venue
        self.depth = depth
        self._meta = meta  # venue, symbol, exchange and arrival time (ms) of each read
        self._snaps: list[DepthSnapshot] | None = None

    @classmethod
    def of(cls, snaps: Sequence[DepthSnapshot]) -> _Books:
        """Books given as snapshots (all their levels)."""
        reads = [
            (np.concatenate((-s.bids[:, 0], s.asks[:, 0])),
             np.concatenate((s.bids[:, 1], s.asks[:, 1])), len(s.bids), 1.0)
            for s in snaps
        ]  # fmt: skip
        meta = [(s.venue, s.symbol, s.timestamp, s.local_timestamp) for s in snaps]
        return cls(reads, meta, None)

    def side(self, side: Side) -> list[tuple[FloatArray, FloatArray]]:
        """(keys, sizes) of the levels a `side` order walks on each venue (asks for a buy,
        keys = prices; bids for a sell, keys = −prices), best first, unscaled."""
        d = self.depth
        if side == "buy":
            return [(k[nb : None if d is None else nb + d], s[nb : None if d is None else nb + d])
                    for k, s, nb, _ in self.reads]  # fmt: skip
        return [(k[: nb if d is None else min(nb, d)], s[: nb if d is None else min(nb, d)])
                for k, s, nb, _ in self.reads]  # fmt: skip

    def scales(self) -> FloatArray:
        return np.array([scale for *_, scale in self.reads])

    def mid(self) -> float:
        """(best bid across venues + best ask across venues) / 2; nan if a side is empty."""
        bids = [-k.item(0) * scale for k, _, nb, scale in self.reads if nb]
        asks = [k.item(nb) * scale for k, _, nb, scale in self.reads if len(k) > nb]
        return (max(bids) + min(asks)) / 2 if bids and asks else math.nan

    def __len__(self) -> int:
        return len(self.reads)

    @overload
    def __getitem__(self, i: int) -> DepthSnapshot: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[DepthSnapshot]: ...
    def __getitem__(self, i: int | slice) -> DepthSnapshot | Sequence[DepthSnapshot]:
        if self._snaps is None:
            snaps = []
            bids, asks = self.side("sell"), self.side("buy")
            for (venue, symbol, ts, local), b, a, (*_, scale) in zip(
                self._meta, bids, asks, self.reads, strict=True
            ):
                bid_levels = np.column_stack((-b[0] * scale, b[1]))
                ask_levels = np.column_stack((a[0] * scale, a[1]))
                snaps.append(DepthSnapshot(venue, symbol, bid_levels, ask_levels, ts, local))
            self._snaps = snaps
        return self._snaps[i]


def _read(replay: Replay, cursors: Sequence[BookCursor], depth: int, clock: str) -> _Books:
    """Every venue's book as of now on `clock` (a read: stale crossed levels repaired)."""
    reads, meta = [], []
    for v, c in zip(replay.venues, cursors, strict=True):
        keys, sizes, bids = c.read(clock)
        reads.append((keys, sizes, bids, v.price_scale))
        meta.append((c.venue, c.symbol, c.last_ts / 1e3, c.last_local_ts / 1e3))
    return _Books(reads, meta, depth)


def _pack(reads: Sequence[_Books], side: Side) -> batched.SideBooks:
    """One side of several reads as padded arrays (prices scaled)."""
    books = batched.pack([r.side(side) for r in reads], negate=side == "sell")
    scales = reads[0].scales() if reads else np.ones(0)
    if (scales != 1.0).any():
        books.price[...] = books.price * scales[None, :, None]
    return books


BATCH_ORDERS = 256  # parent orders priced together (`optimizer.batched`)


@dataclass(slots=True)
class _Batch:
    """Consecutive routed orders priced together: their reads at route time, then their
    splits (`_price`), then their reads at fill time (latency > 0), then their rows.

    `splits[b, k]` is strategy k's split of order b (x venues), `routed[b, k]` False when
    it could not split the order, `planned[b, k]` what the split costs on the route books
    (`allocate` on them). At zero latency the fill is the walk on the route books."""

    index: list[int] = field(default_factory=list)
    orders: list[ParentOrder] = field(default_factory=list)
    route: list[_Books] = field(default_factory=list)
    mid: list[float] = field(default_factory=list)
    fill: list[_Books | None] = field(default_factory=list)
    waiting: int = 0  # fill reads still to come
    splits: FloatArray | None = None
    routed: npt.NDArray[np.bool_] | None = None
    planned: FloatArray | None = None
    filled: FloatArray | None = None
    cost: FloatArray | None = None

    def add(self, i: int, order: ParentOrder, books: _Books, two_clocks: bool) -> int:
        self.index.append(i)
        self.orders.append(order)
        self.route.append(books)
        self.mid.append(books.mid())
        self.fill.append(None)
        self.waiting += two_clocks
        return len(self.index) - 1

    def sides(self) -> Iterator[tuple[Side, IntArray]]:
        """Each side its orders take, with the orders (positions in the batch) of it."""
        sides = [o.side for o in self.orders]
        for side in ("buy", "sell"):
            at = np.array([j for j, s in enumerate(sides) if s == side], dtype=np.intp)
            if len(at):
                yield side, at


def _route_split(
    books: _Books, side: Side, amount: float, markets: Mapping[str, Market], rules: bool | None
) -> FloatArray | None:
    """route()'s split of one order (venue rules can bind): base amount per venue."""
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


def _price(
    batch: _Batch,
    fees: FloatArray,
    strategies: Sequence[str],
    markets: Mapping[str, Market],
    zero_latency: bool,
) -> None:
    """Every strategy's split of every order of `batch` on its route books, what each
    split costs on them, and at zero latency its fill (the walk on the same books)."""
    n, k_all, n_venues = len(batch.index), len(strategies), len(fees)
    splits = np.zeros((n, k_all, n_venues))
    found = np.ones((n, k_all), dtype=bool)
    planned = np.zeros((n, k_all))
    filled = np.zeros((n, k_all))
    cost = np.zeros((n, k_all))
    rules_bind = any(m.has_rules for m in markets.values())
    names = tuple(name for name in strategies if name in _BASELINES)
    for side, at in batch.sides():
        books = _pack([batch.route[j] for j in at], side)
        amounts = np.array([batch.orders[j].amount for j in at])
        factor = 1.0 + fees if side == "buy" else 1.0 - fees
        curves = batched.Curves(books.cut(amounts), factor)
        shared = batched.baselines(curves, side, amounts, books.depth(), names)
        exact: FloatArray | None = None
        part = np.zeros((len(at), k_all, n_venues))
        for k, name in enumerate(strategies):
            if name in shared:
                part[:, k], found[at, k] = shared[name]
            elif rules_bind:  # route() order by order, with the venue rules
                for row, j in enumerate(at):
                    split = _route_split(
                        batch.route[j], side, batch.orders[j].amount, markets, _RULES[name]
                    )
                    found[j, k] = split is not None
                    if split is not None:
                        part[row, k] = split
            else:  # no rule can bind: route() is the exact split (module doc)
                if exact is None:
                    exact = batched.exact_split(curves.books, curves.eff, side, amounts)
                part[:, k] = exact
        # a strategy that could not split the order (None, or nothing to take) is not routed
        ok = np.add.reduce(part, axis=2) > 0
        part[~ok] = 0.0
        found[at] &= ok
        reach = np.maximum(amounts, part.max(axis=(1, 2)))
        if (reach > amounts).any():  # a rules split takes more than the order: look deeper
            curves = batched.Curves(books.cut(reach), factor)
        splits[at] = part
        planned[at] = batched.planned_cost(curves, part)
        if zero_latency:
            filled[at], cost[at] = batched.walk(books, part, fees, side)
    batch.splits, batch.routed, batch.planned = splits, found, planned
    if zero_latency:
        batch.filled, batch.cost = filled, cost


def price_orders(
    books: Sequence[Sequence[DepthSnapshot]],
    orders: Sequence[ParentOrder],
    markets: Mapping[str, Market],
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray]:
    """What a backtest plans for each order on its books (`books[b]`, one snapshot per
    venue, the same venues in the same order for every order): every strategy's split
    (orders x strategies x venues), whether it has one, and its planned cost."""
    check_options(strategies, 0.0)
    batch = _Batch()
    for i, (snaps, order) in enumerate(zip(books, orders, strict=True)):
        batch.add(i, order, _Books.of(snaps), two_clocks=False)
    venues = [s.venue for s in books[0]] if books else []
    fees = np.array([markets[v].taker_fee for v in venues], dtype=np.float64)
    _price(batch, fees, strategies, {v: markets[v] for v in venues}, zero_latency=False)
    assert batch.splits is not None and batch.routed is not None and batch.planned is not None
    return batch.splits, batch.routed, batch.planned


def _fill(batch: _Batch, fees: FloatArray) -> None:
    """Every split of `batch` walked on its fill books (read at t + latency)."""
    assert batch.splits is not None
    filled = np.zeros(batch.splits.shape[:2])
    cost = np.zeros(batch.splits.shape[:2])
    for side, at in batch.sides():
        reads = [batch.fill[j] for j in at]
        books = _pack([r for r in reads if r is not None], side)
        filled[at], cost[at] = batched.walk(books, batch.splits[at], fees, side)
    batch.filled, batch.cost = filled, cost


Columns = dict[str, Any]  # column name -> values (a numpy array or a list), one per row


def _columns(batch: _Batch, strategies: Sequence[str], names: Sequence[str]) -> Columns:
    """The batch's result rows as columns: one row per (order, strategy), orders in order.
    A routed strategy's row is its split's fill (filled, all-in cost) against its plan;
    one that could not split the order filled nothing (the other figures nan)."""
    splits, routed, plan = batch.splits, batch.routed, batch.planned
    filled, cost = batch.filled, batch.cost
    assert splits is not None and routed is not None and plan is not None
    assert filled is not None and cost is not None
    k = len(strategies)
    orders = batch.orders
    sign = np.array([1.0 if o.side == "buy" else -1.0 for o in orders])[:, None]
    mid = np.array(batch.mid)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(filled != 0, cost / filled, np.nan)
        planned_avg = plan / np.add.reduce(splits, axis=2)
        slippage = sign * (avg - mid[:, None]) / mid[:, None] * 1e4
        shortfall = sign * (avg - planned_avg) / planned_avg * 1e4

    def of_routed(values: FloatArray, otherwise: float) -> FloatArray:
        out: FloatArray = np.where(routed, values, otherwise).ravel()
        return out

    return {
        "t_us": np.repeat(np.array([o.t_us for o in orders], dtype=np.int64), k),
        "strategy": _words(np.tile(np.arange(k), len(orders)), list(strategies)),
        "side": _words(np.repeat([o.side == "sell" for o in orders], k), ["buy", "sell"]),
        "amount": np.repeat(np.array([o.amount for o in orders]), k),
        "mid": np.repeat(mid, k),
        "filled": of_routed(filled, 0.0),
        "cost": of_routed(cost, math.nan),
        "planned_cost": of_routed(plan, math.nan),
        "avg_price": of_routed(avg, math.nan),
        "slippage_bps": of_routed(slippage, math.nan),
        "shortfall_bps": of_routed(shortfall, math.nan),
        "venues": _venues((splits > 0) & routed[:, :, None], names),
    }


def _words(index: npt.NDArray[Any], words: list[str]) -> Any:
    """A text column as a pyarrow dictionary array: row i is words[index[i]] (a few
    distinct words; no Python string per row)."""
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(index.astype(np.int32)), pa.array(words))


def _venues(used: npt.NDArray[np.bool_], names: Sequence[str]) -> Any:
    """Per (order, strategy) the venues its split uses, comma-joined in venue order."""
    flat = used.reshape(-1, len(names))
    codes = (flat * (1 << np.arange(len(names), dtype=np.int64))).sum(axis=1)
    distinct, index = np.unique(codes, return_inverse=True)
    words = [",".join(n for v, n in enumerate(names) if c >> v & 1) for c in distinct.tolist()]
    return _words(index, words)


def column_rows(columns: Columns) -> list[dict[str, Any]]:
    """Result columns as rows (dicts of `COLUMNS`)."""
    values = [columns[c] for c in COLUMNS]
    values = [v.tolist() if isinstance(v, np.ndarray) else v.to_pylist() for v in values]
    return [dict(zip(COLUMNS, row, strict=True)) for row in zip(*values, strict=True)]


def _order_rows(indexes: list[int], columns: Columns) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Columns of whole orders as (order number, its rows as dicts)."""
    rows = column_rows(columns)
    k = len(rows) // len(indexes) if indexes else 0
    for j, i in enumerate(indexes):
        yield i, rows[j * k : (j + 1) * k]


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
    """(order number, its rows as dicts: one per strategy), in order: `iter_batches`
    row by row."""
    for indexes, columns in iter_batches(
        replay, orders, strategies=strategies, latency_ms=latency_ms, depth=depth,
        start=start, stop=stop,
    ):  # fmt: skip
        yield from _order_rows(indexes, columns)


def iter_batches(
    replay: Replay,
    orders: Iterable[ParentOrder],
    *,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    latency_ms: float = 0.0,
    depth: int = 200,
    start: int = 0,
    stop: int | None = None,
    seeded: bool = False,
) -> Iterator[tuple[list[int], Columns]]:
    """(order numbers, their rows as `COLUMNS`: one row per order and strategy, orders in
    order), a batch of consecutive orders at a time, in one pass over the files.

    Orders numbered below `start` are replayed without routing (their reads only; see the
    module doc), and the files are entered at the last snapshot before order `start`
    (needs `replay.scan()`) when `start` > 0 or `seeded` (a window whose first order
    needs no order replayed before it); at their first row otherwise. The pass ends
    before order `stop`, or at the first order after the end of a recording.
    """
    lat_us = check_options(strategies, latency_ms)
    names = [v.name for v in replay.venues]
    fees = np.array([replay.markets[n].taker_fee for n in names], dtype=np.float64)
    cursors = _cursors(replay, orders, start, seeded)
    for c in cursors:
        c.two_clocks = lat_us > 0  # at zero latency the fill clock never reads
    # the reads due at fill time, in time order: (time, the order's batch, its place in
    # it); no batch for an order before the window (its read repairs, nothing more)
    due: deque[tuple[int, _Batch | None, int]] = deque()
    priced: deque[_Batch] = deque()  # batches waiting for their fill reads
    batch = _Batch()
    seed_us = min(
        (c.seed_us + v.shift_us for v, c in zip(replay.venues, cursors, strict=True)),
        default=0,
    )

    def fills_until(t: int) -> Iterator[tuple[list[int], Columns]]:
        while due and due[0][0] <= t:
            at, waiting, slot = due.popleft()
            _advance(replay, cursors, at)
            if waiting is None:
                for c in cursors:
                    c.repair("fill")
                continue
            waiting.fill[slot] = _read(replay, cursors, depth, "fill")
            waiting.waiting -= 1
        while priced and priced[0].waiting == 0:
            done = priced.popleft()
            _fill(done, fees)
            yield done.index, _columns(done, strategies, names)

    def routed(full: _Batch) -> Iterator[tuple[list[int], Columns]]:
        _price(full, fees, strategies, replay.markets, zero_latency=lat_us == 0)
        if lat_us == 0:  # filled on the books it was routed on
            yield full.index, _columns(full, strategies, names)
        else:
            priced.append(full)

    for i, order in enumerate(orders):
        if stop is not None and i >= stop:
            break
        t = order.t_us
        if due or priced:
            yield from fills_until(t)
        if i < start:
            if t + lat_us < seed_us:
                continue  # before every file's seed snapshot: nothing to replay
            if _advance(replay, cursors, t):
                break
            for c in cursors:
                c.repair("route")
            if lat_us:
                due.append((t + lat_us, None, 0))
            continue
        if _advance(replay, cursors, t):
            break
        slot = batch.add(i, order, _read(replay, cursors, depth, "route"), lat_us > 0)
        if lat_us:
            due.append((t + lat_us, batch, slot))
        if len(batch.index) == BATCH_ORDERS:
            yield from routed(batch)
            batch = _Batch()
    if batch.index:
        yield from routed(batch)
    yield from fills_until(np.iinfo(np.int64).max)


def _cursors(
    replay: Replay, orders: Iterable[ParentOrder], start: int, seeded: bool
) -> list[BookCursor]:
    if start == 0 and not seeded:
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
    "COLUMNS",
    "DEFAULT_STRATEGIES",
    "STRATEGIES",
    "ParentOrder",
    "Replay",
    "Schedule",
    "Venue",
    "check_options",
    "column_rows",
    "iter_batches",
    "iter_rows",
    "load",
    "orders_part",
    "price_orders",
    "read_orders",
    "run",
    "schedule",
    "window_entry",
]
