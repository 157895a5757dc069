"""Record live books through ccxt as tardis `incremental_book_L2` CSV.gz files.

Each venue's book is polled over REST (`fetch_order_book`) every `interval_s`; every poll
is written as a full snapshot (is_snapshot=true rows sharing one local_timestamp), which
by the format's rules replaces the book — so the file replays exactly what was seen, and
reads back with `read_incremental_l2`, `data info`, `quote --books` and `backtest`.
Files: OUT/<tardis exchange id>_incremental_book_L2_<venue-native symbol>.csv.gz. Rows are
flushed after every poll and the gzip stream is closed on exit, including Ctrl-C.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from liquidroute.errors import LiquidrouteError
from liquidroute.tardis import COLUMNS, TARDIS_EXCHANGES
from liquidroute.venues.ccxt_venue import CcxtVenue

_TARDIS_ID = {ccxt: tardis for tardis, (ccxt, deriv) in TARDIS_EXCHANGES.items() if not deriv}


def tardis_name(venue: CcxtVenue, native: str) -> str:
    exchange = _TARDIS_ID.get(venue.exchange.id, venue.exchange.id)
    return f"{exchange}_incremental_book_L2_{native}.csv.gz"


async def record(
    venues: Sequence[CcxtVenue],
    symbol: str,
    out: Path,
    *,
    duration_s: float,
    interval_s: float = 1.0,
    depth: int | None = 100,
    on_poll: Callable[[int], None] | None = None,
) -> list[Path]:
    """Poll every venue until `duration_s` has passed; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[IO[str], str, str]] = {}
    paths = []
    with ExitStack() as stack:  # every gzip stream is closed, even on Ctrl-C
        for venue in venues:
            market = await venue._market_dict(symbol)
            exchange = _TARDIS_ID.get(venue.exchange.id, venue.exchange.id)
            path = out / tardis_name(venue, market["id"])
            fh: IO[str] = stack.enter_context(gzip.open(path, "wt", newline=""))
            fh.write(",".join(COLUMNS) + "\n")
            files[venue.name] = (fh, exchange, market["id"])
            paths.append(path)
        deadline = time.monotonic() + duration_s
        polls = 0
        while True:
            started = time.monotonic()
            books = await asyncio.gather(
                *(v.snapshot(symbol, depth) for v in venues), return_exceptions=True
            )
            for venue, book in zip(venues, books, strict=True):
                if isinstance(book, LiquidrouteError):
                    continue  # a failed poll is a gap in the file, not the end of recording
                if isinstance(book, BaseException):
                    raise book
                out_fh, exchange, native = files[venue.name]
                ts = int((book.timestamp or 0) * 1e3)
                local = int((book.local_timestamp or time.time() * 1e3) * 1e3)
                for side, levels in (("bid", book.bids), ("ask", book.asks)):
                    for price, size in levels.tolist():
                        out_fh.write(
                            f"{exchange},{native},{ts},{local},true,{side},{price!r},{size!r}\n"
                        )
                out_fh.flush()
            polls += 1
            if on_poll is not None:
                on_poll(polls)
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    return paths
