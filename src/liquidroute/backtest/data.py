"""Readers for recorded books: tardis `incremental_book_L2` CSV(.gz).

Format (tardis.dev "downloadable CSV files"), one row per level change:

    exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount

- `timestamp` is exchange time, `local_timestamp` arrival time, both µs since the epoch;
- rows with `is_snapshot=true` form a full snapshot; a snapshot that follows update rows
  replaces the book; update rows before the first snapshot are skipped;
- `side` is bid/ask; `amount` is the new total size at `price` (0 deletes the level);
- rows with the same `local_timestamp` came in one message.

Parsing is pyarrow's multi-threaded CSV reader (imported lazily); a malformed file is a
`DataFileError` naming the file and, where it can be found, the line.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from liquidroute.errors import DataFileError, InvalidInputError

COLUMNS = (
    "exchange",
    "symbol",
    "timestamp",
    "local_timestamp",
    "is_snapshot",
    "side",
    "price",
    "amount",
)

#: tardis exchange id -> (ccxt id, derivative?)
TARDIS_EXCHANGES: dict[str, tuple[str, bool]] = {
    "binance": ("binance", False),
    "binance-us": ("binanceus", False),
    "binance-futures": ("binanceusdm", True),
    "binance-delivery": ("binancecoinm", True),
    "okex": ("okx", False),
    "okex-swap": ("okx", True),
    "okex-futures": ("okx", True),
    "bybit-spot": ("bybit", False),
    "bybit": ("bybit", True),
    "coinbase": ("coinbase", False),
    "kraken": ("kraken", False),
    "bitstamp": ("bitstamp", False),
    "gate-io": ("gateio", False),
    "huobi": ("huobi", False),
    "kucoin": ("kucoin", False),
    "bitfinex": ("bitfinex", False),
}

QUOTE_CURRENCIES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDD", "DAI", "USD", "EUR", "GBP", "TRY",
    "BRL", "JPY", "BTC", "ETH", "BNB",
)  # fmt: skip

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def ccxt_id(exchange: str) -> tuple[str, bool]:
    """tardis exchange id -> (ccxt id, is a derivative)."""
    try:
        return TARDIS_EXCHANGES[exchange]
    except KeyError:
        known = ", ".join(sorted(TARDIS_EXCHANGES))
        raise DataFileError(f"unknown tardis exchange id {exchange!r}; known: {known}") from None


def unified_symbol(native: str, derivative: bool = False) -> str:
    """Venue-native symbol -> ccxt unified: BTCUSDT / BTC-USDT -> BTC/USDT; a linear
    perpetual gets ccxt's settle suffix (BTC/USDT:USDT)."""
    text = native.upper().replace("_", "-")
    parts = [p for p in text.split("-") if p not in ("SWAP", "PERP")]
    if len(parts) >= 2:
        base, quote = parts[0], parts[1]
    else:
        quote = next((q for q in QUOTE_CURRENCIES if text.endswith(q) and text != q), "")
        if not quote:
            raise DataFileError(f"cannot split symbol {native!r} into base and quote")
        base = text[: -len(quote)]
    symbol = f"{base}/{quote}"
    return f"{symbol}:{quote}" if derivative else symbol


@dataclass(frozen=True, slots=True)
class L2Updates:
    """A tardis incremental_book_L2 file as arrays (one element per row, file order)."""

    path: Path
    exchange: str
    native_symbol: str
    timestamp: IntArray
    local_timestamp: IntArray
    is_snapshot: BoolArray
    is_bid: BoolArray
    price: FloatArray
    amount: FloatArray
    skipped_rows: int = 0

    @property
    def venue(self) -> str:
        return ccxt_id(self.exchange)[0]

    @property
    def symbol(self) -> str:
        return unified_symbol(self.native_symbol, ccxt_id(self.exchange)[1])

    def __len__(self) -> int:
        return len(self.price)


def _find_bad_line(path: Path) -> str:
    """Slow path, only after a parse error: the first line that does not parse."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            for line_no, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    return f"line {line_no}: {len(row)} fields, expected {len(header)}"
                try:
                    int(row[2]), int(row[3]), float(row[6]), float(row[7])
                except (ValueError, IndexError):
                    return f"line {line_no}: not a number in {row!r}"
                if row[4] not in ("true", "false") or row[5] not in ("bid", "ask"):
                    return f"line {line_no}: is_snapshot/side must be true|false / bid|ask"
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        return f"unreadable ({type(exc).__name__}: {exc}); truncated or not gzip?"
    return "malformed CSV"


def _header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="") as fh:
            return next(csv.reader(fh), [])
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise DataFileError(
            f"{path}: unreadable ({type(exc).__name__}); truncated or not gzip?"
        ) from None


def _clean_csv(path: Path) -> tuple[bytes, int]:
    """The file's valid rows only (for --skip-bad-rows), and how many were skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    out, skipped = io.StringIO(), 0
    writer = csv.writer(out, lineterminator="\n")
    try:
        with opener(path, "rt", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            writer.writerow(header)
            for row in reader:
                try:
                    ok = (
                        len(row) == len(header)
                        and row[4] in ("true", "false")
                        and row[5] in ("bid", "ask")
                    )
                    int(row[2]), int(row[3]), float(row[6]), float(row[7])
                except (ValueError, IndexError):
                    ok = False
                if ok:
                    writer.writerow(row)
                else:
                    skipped += 1
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFileError(f"{path}: unreadable ({type(exc).__name__}); truncated?") from None
    return out.getvalue().encode(), skipped


def _snapshot_rows(path: Path, table: object) -> object:
    """A book_snapshot_N table (asks[i].price, asks[i].amount, bids[i]...) as incremental rows:
    each row becomes one full snapshot (is_snapshot=true), bids then asks, best first."""
    import pyarrow as pa

    t: pa.Table = table
    n = sum(1 for c in t.column_names if c.startswith("asks[") and c.endswith("].price"))
    rows = t.num_rows
    parts = []
    for label, name in (("bid", "bids"), ("ask", "asks")):
        price = np.column_stack(
            [t.column(f"{name}[{i}].price").to_numpy(zero_copy_only=False) for i in range(n)]
        ).astype(np.float64)
        amount = np.column_stack(
            [t.column(f"{name}[{i}].amount").to_numpy(zero_copy_only=False) for i in range(n)]
        ).astype(np.float64)
        parts.append((label, price, amount))
    row_idx = np.repeat(np.arange(rows), 2 * n)
    price = np.concatenate([parts[0][1], parts[1][1]], axis=1).ravel()
    amount = np.concatenate([parts[0][2], parts[1][2]], axis=1).ravel()
    side = np.tile(np.repeat(["bid", "ask"], n), rows)
    keep = np.isfinite(price) & np.isfinite(amount) & (amount > 0)
    ex = t.column("exchange").to_numpy(zero_copy_only=False)[row_idx][keep]
    return pa.table(
        {
            "exchange": ex,
            "symbol": t.column("symbol").to_numpy(zero_copy_only=False)[row_idx][keep],
            "timestamp": t.column("timestamp").to_numpy()[row_idx][keep],
            "local_timestamp": t.column("local_timestamp").to_numpy()[row_idx][keep],
            "is_snapshot": np.ones(int(keep.sum()), dtype=bool),
            "side": side[keep],
            "price": price[keep],
            "amount": amount[keep],
        }
    )


def read_incremental_l2(path: Path | str, *, skip_bad_rows: bool = False) -> L2Updates:
    """Read and validate a recorded book file into incremental rows.

    Accepts tardis incremental_book_L2 CSV(.gz); tardis book_snapshot_25 / book_snapshot_5
    CSV(.gz) (each row becomes one full snapshot, which by the rules replaces the book);
    and our Parquet layout: the eight incremental columns, typed (exchange, symbol:
    string; timestamp, local_timestamp: int64 µs; is_snapshot: bool; side: string
    bid|ask; price, amount: float64), one venue and symbol per file, rows in file order
    (`liquidroute data convert` writes it). With `skip_bad_rows`, malformed CSV rows are
    dropped and counted (`L2Updates.skipped_rows`) instead of failing the file.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    types = {
        "exchange": pa.string(),
        "symbol": pa.string(),
        "timestamp": pa.int64(),
        "local_timestamp": pa.int64(),
        "is_snapshot": pa.bool_(),
        "side": pa.string(),
        "price": pa.float64(),
        "amount": pa.float64(),
    }
    skipped = 0
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataFileError(f"{path}: not a readable Parquet file ({exc})") from None
    elif "asks[0].price" in _header(path):
        try:
            table = _snapshot_rows(path, pcsv.read_csv(path))
        except (pa.ArrowInvalid, OSError, EOFError, KeyError, ValueError) as exc:
            raise DataFileError(f"{path}: not a valid tardis book_snapshot CSV ({exc})") from None
    else:
        options = pcsv.ConvertOptions(column_types=types)
        try:
            table = pcsv.read_csv(path, convert_options=options)
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            if "Empty CSV file" in str(exc):
                raise DataFileError(f"{path}: empty file") from None
            if not skip_bad_rows:
                raise DataFileError(
                    f"{path}: not a valid tardis CSV: {_find_bad_line(path)} "
                    "(--skip-bad-rows drops such rows and counts them)"
                ) from None
            data, skipped = _clean_csv(path)
            table = pcsv.read_csv(io.BytesIO(data), convert_options=options)
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise DataFileError(
            f"{path}: missing columns {missing}; expected a tardis incremental_book_L2 CSV "
            f"with {', '.join(COLUMNS)}"
        )
    if table.num_rows == 0:
        raise DataFileError(f"{path}: no rows")
    for name in COLUMNS:
        if table.column(name).null_count:
            raise DataFileError(f"{path}: empty values in column {name!r}")
    exchanges = table.column("exchange").unique().to_pylist()
    symbols = table.column("symbol").unique().to_pylist()
    if len(exchanges) != 1 or len(symbols) != 1:
        raise DataFileError(
            f"{path}: holds several exchanges/symbols ({exchanges} / {symbols}); "
            "one venue and one symbol per file"
        )
    sides = table.column("side").to_numpy(zero_copy_only=False)
    is_bid = sides == "bid"
    bad_side = ~is_bid & (sides != "ask")
    if bad_side.any():
        line = int(np.argmax(bad_side)) + 2
        raise DataFileError(f"{path}: line {line}: side must be 'bid' or 'ask'")
    local_ts = table.column("local_timestamp").to_numpy()
    steps = np.diff(local_ts)
    if (steps < 0).any():
        line = int(np.argmax(steps < 0)) + 3
        raise DataFileError(f"{path}: line {line}: local_timestamp goes backwards (unsorted file)")
    price = table.column("price").to_numpy()
    amount = table.column("amount").to_numpy()
    bad = ~np.isfinite(price) | (price <= 0) | ~np.isfinite(amount) | (amount < 0)
    if bad.any():
        line = int(np.argmax(bad)) + 2
        raise DataFileError(f"{path}: line {line}: price must be > 0 and amount >= 0")
    ccxt_id(exchanges[0])  # unknown exchange ids are refused here
    return L2Updates(
        skipped_rows=skipped,
        path=path,
        exchange=exchanges[0],
        native_symbol=symbols[0],
        timestamp=table.column("timestamp").to_numpy(),
        local_timestamp=local_ts,
        is_snapshot=table.column("is_snapshot").to_numpy(zero_copy_only=False),
        is_bid=is_bid,
        price=price,
        amount=amount,
    )


def format_us(us: float) -> str:
    """µs since the epoch -> ISO-8601 UTC (for messages)."""
    from datetime import UTC, datetime

    if not math.isfinite(us):
        return str(us)
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds")


__all__ = [
    "COLUMNS",
    "L2Updates",
    "ccxt_id",
    "format_us",
    "parse_time_ms",
    "read_incremental_l2",
    "unified_symbol",
]


def parse_time_ms(value: str, option: str = "--at") -> float:
    """ISO-8601 (UTC when no offset is given) or epoch milliseconds -> epoch milliseconds."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number) and number >= 0:
            return number
        raise InvalidInputError(f"{option}: {value!r} is not a valid time")
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"{option} takes ISO-8601 UTC (2024-08-08T23:59:00Z) or epoch milliseconds, "
            f"got {value!r}"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp() * 1e3


def write_parquet(updates: L2Updates, out: Path) -> None:
    """Our Parquet layout (see read_incremental_l2), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(updates)
    table = pa.table(
        {
            "exchange": pa.array([updates.exchange] * n, pa.string()),
            "symbol": pa.array([updates.native_symbol] * n, pa.string()),
            "timestamp": updates.timestamp,
            "local_timestamp": updates.local_timestamp,
            "is_snapshot": updates.is_snapshot,
            "side": pa.array(np.where(updates.is_bid, "bid", "ask")),
            "price": updates.price,
            "amount": updates.amount,
        }
    )
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(out)


def describe(updates: L2Updates, gap_s: float = 5.0) -> dict[str, object]:
    """Venue, symbol, time span, rows, snapshots, and arrival gaps longer than `gap_s`."""
    ts = updates.local_timestamp
    starts = np.flatnonzero(
        updates.is_snapshot
        & np.concatenate(([True], ~updates.is_snapshot[:-1] | (ts[1:] != ts[:-1])))
    )
    messages = np.unique(ts)
    gaps = np.diff(messages)
    long_gaps = np.flatnonzero(gaps > gap_s * 1e6)
    return {
        "file": str(updates.path),
        "exchange": updates.exchange,
        "venue": updates.venue,
        "symbol": updates.symbol,
        "native_symbol": updates.native_symbol,
        "start": format_us(float(ts[0])),
        "end": format_us(float(ts[-1])),
        "duration_s": float(ts[-1] - ts[0]) / 1e6,
        "rows": len(updates),
        "messages": len(messages),
        "snapshots": len(starts),
        "snapshot_rows": int(updates.is_snapshot.sum()),
        "gaps_over_s": gap_s,
        "gaps": [
            {"from": format_us(float(messages[i])), "seconds": float(gaps[i]) / 1e6}
            for i in long_gaps[:20]
        ],
    }
