"""Replay recorded books, route parent orders with several strategies, fill them later.

Loader -> per-venue book replay -> parent orders on a schedule -> at each order time t,
every strategy splits the order on the books as of t (arrival time); the split is then
filled on the books as of t + latency (a second replay per venue, so the two clocks never
interfere). Each fill walks the venue's levels at fill time, taker fee included, with no
limit price — what a marketable order would have paid. Strategies are independent: each
fills against the same book (none sees another's impact).

A strategy is a function `(ladder, amount, markets, venues) -> amounts per venue`; the
built-ins are "optimal" (rules-aware `route`), "optimal_exact" (rule-free),
"best_venue", "equal_split", "pro_rata" and "percent_grid".

`align="start"` overlays recordings from different windows: each file's clock is shifted
so that all start together, and each venue's prices are re-centred (multiplied by
common_mid / its mid at the start). Every output says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liquidroute.backtest.book import BookReplay
from liquidroute.backtest.data import L2Updates, read_incremental_l2
from liquidroute.errors import DataFileError, InvalidInputError, LiquidrouteError
from liquidroute.model import DepthSnapshot, FloatArray, Market, Side
from liquidroute.optimizer.baselines import BASELINE_SPLITS
from liquidroute.optimizer.curves import Ladder, build_ladder, walk_book
from liquidroute.optimizer.exact import allocate

Strategy = Callable[[Ladder, float, Mapping[str, Market], Sequence[str]], FloatArray | None]


def _optimal(rules: bool) -> Strategy:
    def split(
        ladder: Ladder, amount: float, markets: Mapping[str, Market], venues: Sequence[str]
    ) -> FloatArray | None:
        from liquidroute.optimizer.constrained import apply_rules, venue_rules
        from liquidroute.optimizer.exact import solve_exact

        alloc = solve_exact(ladder, amount)
        if rules and alloc.filled > 0:
            vr = venue_rules(venues, markets, ladder, alloc.filled, None, None, None)
            if vr.can_bind():
                try:
                    alloc = apply_rules(ladder, alloc, vr, venues, [False] * len(venues), 1.0).alloc
                except LiquidrouteError:
                    return None
        return alloc.amount

    return split


def _baseline(name: str) -> Strategy:
    fn = BASELINE_SPLITS[name]

    def split(
        ladder: Ladder, amount: float, markets: Mapping[str, Market], venues: Sequence[str]
    ) -> FloatArray | None:
        return fn(ladder, amount)

    return split


STRATEGIES: dict[str, Strategy] = {
    "optimal": _optimal(rules=True),
    "optimal_exact": _optimal(rules=False),
    **{name: _baseline(name) for name in BASELINE_SPLITS},
}
DEFAULT_STRATEGIES = ("optimal", "best_venue", "equal_split", "pro_rata", "percent_grid")


@dataclass(frozen=True, slots=True)
class ParentOrder:
    t_us: int
    side: Side
    amount: float


@dataclass(slots=True)
class Venue:
    """One recorded venue: two replays (route time, fill time), clock shift, price scale."""

    updates: L2Updates
    route_book: BookReplay
    fill_book: BookReplay
    shift_us: int = 0
    price_scale: float = 1.0

    @property
    def name(self) -> str:
        return self.updates.venue

    def snapshot(self, replay: BookReplay, t_us: int, depth: int) -> DepthSnapshot:
        replay.advance_to(t_us - self.shift_us)
        snap = replay.snapshot(depth)
        if self.price_scale == 1.0:
            return snap
        scale = [self.price_scale, 1.0]
        return DepthSnapshot(
            snap.venue,
            snap.symbol,
            snap.bids * scale,
            snap.asks * scale,
            snap.timestamp,
            snap.local_timestamp,
        )


@dataclass(slots=True)
class Replay:
    """Everything a backtest needs, loaded once."""

    venues: list[Venue]
    markets: dict[str, Market]
    aligned: bool
    label: str
    start_us: int = 0
    end_us: int = 0
    notes: list[str] = field(default_factory=list)


def load(
    paths: Sequence[Path],
    *,
    align: str | None = None,
    fees: Mapping[str, float] | None = None,
    skip_bad_rows: bool = False,
) -> Replay:
    """Read the files, check they hold one symbol on distinct venues, set up the clocks."""
    from liquidroute.venues.recorded import static_taker_fee

    if not paths:
        raise InvalidInputError("give at least one recorded book file")
    if align not in (None, "start"):
        raise InvalidInputError(f"--align takes 'start', got {align!r}")
    venues = []
    for path in paths:
        updates = read_incremental_l2(path, skip_bad_rows=skip_bad_rows)
        venues.append(Venue(updates, BookReplay(updates), BookReplay(updates)))
    symbols = {v.updates.symbol for v in venues}
    if len(symbols) > 1:
        raise DataFileError(f"the files hold different symbols {sorted(symbols)}")
    names = [v.name for v in venues]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"two files for one venue: {names}; one file per venue")
    symbol = symbols.pop()
    fees = dict(fees or {})
    markets = {
        v.name: Market(v.name, symbol, fees.get(v.name, static_taker_fee(v.name))) for v in venues
    }
    replay = Replay(venues, markets, aligned=align == "start", label="recorded books")
    starts = [v.route_book.start_us for v in venues]
    if align == "start":
        common_start = max(starts)
        mids = []
        for v, s in zip(venues, starts, strict=True):
            v.shift_us = common_start - s
            mid = BookReplay(v.updates)
            mid.advance_to(s)
            m = mid.snapshot().mid
            mids.append(m or 1.0)
        common_mid = float(np.median(mids))
        for v, m in zip(venues, mids, strict=True):
            v.price_scale = common_mid / m
        replay.label = (
            "recorded books from different windows, ALIGNED: clocks shifted to a "
            "common start and prices re-centred on a common mid"
        )
        replay.notes.append(replay.label)
    for v in venues:
        if v.updates.skipped_rows:
            replay.notes.append(f"{v.updates.path.name}: {v.updates.skipped_rows} bad rows skipped")
    replay.start_us = max(v.route_book.start_us + v.shift_us for v in venues)
    replay.end_us = min(v.route_book.end_us + v.shift_us for v in venues)
    if replay.end_us <= replay.start_us:
        raise DataFileError(
            "the recordings do not overlap in time; use --align start to overlay them"
        )
    return replay


def schedule(replay: Replay, every_s: float, side: Side, amount: float) -> list[ParentOrder]:
    if not math.isfinite(every_s) or every_s <= 0:
        raise InvalidInputError(f"--every must be a positive duration, got {every_s!r}")
    step = int(every_s * 1e6)
    times = range(replay.start_us + step, replay.end_us + 1, step)
    return [ParentOrder(t, side, amount) for t in times]


def read_orders(path: Path, replay: Replay) -> list[ParentOrder]:
    """Parent orders from a CSV with columns timestamp (ISO-8601 or epoch ms), side, amount."""
    import csv

    from liquidroute.backtest.data import parse_time_ms
    from liquidroute.model import check_amount, check_side

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
    outside = [o for o in orders if not replay.start_us <= o.t_us <= replay.end_us]
    if outside:
        raise DataFileError(f"{path}: {len(outside)} order(s) outside the recordings' window")
    return sorted(orders, key=lambda o: o.t_us)


def _fill(snap: DepthSnapshot, side: Side, amount: float, fee: float) -> tuple[float, float]:
    """(filled, all-in cost) walking `snap` for `amount` base, no limit."""
    walk = walk_book(snap.levels(side), side, amount)
    return walk.filled, walk.all_in(side, fee)


def run(
    replay: Replay,
    orders: Sequence[ParentOrder],
    *,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    latency_ms: float = 0.0,
    depth: int = 200,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (parent order, strategy). Orders must be sorted by time."""
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise InvalidInputError(
            f"unknown strategies {sorted(unknown)}; known: {sorted(STRATEGIES)}"
        )
    if not math.isfinite(latency_ms) or latency_ms < 0:
        raise InvalidInputError(f"--latency-ms must be >= 0, got {latency_ms!r}")
    lat_us = int(latency_ms * 1e3)
    names = [v.name for v in replay.venues]
    fees = [replay.markets[n].taker_fee for n in names]
    rows: list[dict[str, Any]] = []
    for i, order in enumerate(orders):
        books = [v.snapshot(v.route_book, order.t_us, depth) for v in replay.venues]
        fill_books = [v.snapshot(v.fill_book, order.t_us + lat_us, depth) for v in replay.venues]
        ladder = build_ladder([b.levels(order.side) for b in books], fees, order.side)
        bids = [b.best_bid for b in books if b.best_bid is not None]
        asks = [b.best_ask for b in books if b.best_ask is not None]
        mid = (max(bids) + min(asks)) / 2 if bids and asks else math.nan
        for name in strategies:
            amounts = STRATEGIES[name](ladder, order.amount, replay.markets, names)
            row: dict[str, Any] = {
                "t_us": order.t_us,
                "strategy": name,
                "side": order.side,
                "amount": order.amount,
                "mid": mid,
            }
            if amounts is None or amounts.sum() <= 0:
                rows.append(
                    row
                    | {
                        "filled": 0.0,
                        "cost": math.nan,
                        "planned_cost": math.nan,
                        "avg_price": math.nan,
                        "slippage_bps": math.nan,
                        "shortfall_bps": math.nan,
                        "venues": "",
                    }
                )
                continue
            planned = allocate(ladder, amounts).value
            filled, cost = 0.0, 0.0
            for v, q in enumerate(amounts):
                if q > 0:
                    f, c = _fill(fill_books[v], order.side, float(q), fees[v])
                    filled += f
                    cost += c
            avg = cost / filled if filled else math.nan
            sign = 1.0 if order.side == "buy" else -1.0
            planned_avg = planned / float(amounts.sum())
            rows.append(
                row
                | {
                    "filled": filled,
                    "cost": cost,
                    "planned_cost": planned,
                    "avg_price": avg,
                    "slippage_bps": sign * (avg - mid) / mid * 1e4,
                    "shortfall_bps": sign * (avg - planned_avg) / planned_avg * 1e4,
                    "venues": ",".join(n for n, q in zip(names, amounts, strict=True) if q > 0),
                }
            )
        if progress is not None:
            progress(i + 1)
    return rows
