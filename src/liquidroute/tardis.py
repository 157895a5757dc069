"""Recorded books on disk: tardis `incremental_book_L2` CSV(.gz), book_snapshot CSV, our Parquet.

Format (tardis.dev "downloadable CSV files"), one row per level change:

    exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount

- `timestamp` is exchange time, `local_timestamp` arrival time, both µs since the epoch;
- rows with `is_snapshot=true` form a full snapshot; a snapshot that follows update rows
  replaces the book; update rows before the first snapshot are skipped;
- `side` is bid/ask; `amount` is the new total size at `price` (0 deletes the level);
- rows with the same `local_timestamp` came in one message.

Files are read as a stream of record batches (`TardisFile.batches()`): pyarrow's streaming
CSV reader, or Parquet row groups; sides and flags are decoded with pyarrow compute, and
every batch is validated as it arrives (one venue and symbol, sides, sorted arrival times,
timestamps before 2100, finite positive prices, non-negative amounts). Memory is one batch,
whatever the file's length. A bad file is a `DataFileError` naming the file, the line and
the fix. `read_incremental_l2` still loads a whole (small) file into arrays.

Our Parquet layout: the eight columns, typed (exchange, symbol: string; timestamp,
local_timestamp: int64 µs; is_snapshot: bool; side: string bid|ask; price, amount:
float64), one venue and symbol per file, rows in file order, written in row groups with an
index in the file's metadata (`liquidroute.index`: rows, first snapshot, end, and the row
and arrival time of every snapshot start) so that a time window can seek to the last
snapshot before it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

#: 2100-01-01T00:00:00Z in µs: a later arrival time is a corrupt row, not data
MAX_US = 4_102_444_800 * 10**6
#: rows per batch read (CSV blocks are sized to give about this many)
BATCH_ROWS = 1 << 16
INDEX_KEY = b"liquidroute.index"

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


def format_us(us: float) -> str:
    """µs since the epoch -> ISO-8601 UTC (for messages)."""
    if not math.isfinite(us):
        return str(us)
    if not 0 <= us < 253_402_300_800e6:  # datetime stops at year 9999
        return f"year {1970 + us / 31_556_952e6:.0f}"
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds")


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


def check_file(path: Path) -> None:
    """A regular file, or a clear error saying what `path` is instead."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise DataFileError(
            f"{path}: is a directory, not a book file; give the files in it (e.g. {path}/*.csv.gz)"
        )
    if stat.S_ISFIFO(mode):
        raise DataFileError(
            f"{path}: is a FIFO (named pipe), not a regular file; books are read more than "
            "once, so save the stream to a file first"
        )
    if not stat.S_ISREG(mode):
        raise DataFileError(f"{path}: is not a regular file (a device or socket?)")
    if not os.access(path, os.R_OK):
        raise DataFileError(f"{path}: permission denied")


@dataclass(frozen=True, slots=True)
class Rows:
    """One decoded, validated batch of rows; `offset` is the file row of the first one."""

    offset: int
    timestamp: IntArray
    local_timestamp: IntArray
    is_snapshot: BoolArray
    is_bid: BoolArray
    price: FloatArray
    amount: FloatArray

    def __len__(self) -> int:
        return len(self.price)


def _opener(path: Path) -> Any:
    return gzip.open if path.suffix == ".gz" else open


def _find_bad_line(path: Path) -> str:
    """Slow path, only after a parse error: the first line that does not parse."""
    try:
        with _opener(path)(path, "rt", newline="") as fh:
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
    try:
        with _opener(path)(path, "rt", newline="") as fh:
            return next(csv.reader(fh), [])
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise DataFileError(
            f"{path}: unreadable ({type(exc).__name__}); truncated or not gzip?"
        ) from None


def _types() -> dict[str, Any]:
    import pyarrow as pa

    return {
        "exchange": pa.string(),
        "symbol": pa.string(),
        "timestamp": pa.int64(),
        "local_timestamp": pa.int64(),
        "is_snapshot": pa.bool_(),
        "side": pa.string(),
        "price": pa.float64(),
        "amount": pa.float64(),
    }


def _snapshot_rows(table: Any) -> Any:
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
    return pa.table(
        {
            "exchange": t.column("exchange").to_numpy(zero_copy_only=False)[row_idx][keep],
            "symbol": t.column("symbol").to_numpy(zero_copy_only=False)[row_idx][keep],
            "timestamp": t.column("timestamp").to_numpy()[row_idx][keep],
            "local_timestamp": t.column("local_timestamp").to_numpy()[row_idx][keep],
            "is_snapshot": np.ones(int(keep.sum()), dtype=bool),
            "side": side[keep],
            "price": price[keep],
            "amount": amount[keep],
        }
    )


def _clean_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[bytes, int]]:
    """The file's valid rows (for --skip-bad-rows) as CSV chunks, with the rows skipped."""
    try:
        with _opener(path)(path, "rt", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            while True:
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(header)
                kept = skipped = 0
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
                        kept += 1
                    else:
                        skipped += 1
                    if kept + skipped >= chunk_rows:
                        break
                if kept + skipped == 0:
                    return
                yield out.getvalue().encode(), skipped
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFileError(f"{path}: unreadable ({type(exc).__name__}); truncated?") from None


_KIND_NAMES = {"string", "large_string"}


_NAME_COLUMNS = ("exchange", "symbol")


def _names_in_statistics(meta: Any) -> tuple[str, str] | None:
    """(exchange, symbol) when every row group's statistics prove the file holds one of
    each and no empty value (min = max, no nulls); None when they cannot (no statistics,
    several values, or long values whose statistics may be cut short)."""
    where = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
    found = []
    for name in _NAME_COLUMNS:
        values = set()
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(where[name]).statistics
            if stats is None or not stats.has_min_max or stats.null_count != 0:
                return None
            low, high = stats.min, stats.max
            if not isinstance(low, str) or low != high or len(low) >= 32:
                return None
            values.add(low)
        if len(values) != 1:
            return None
        found.append(values.pop())
    return found[0], found[1]


def _check_parquet_schema(path: Path, schema: Any) -> None:
    """Column presence and types of our Parquet layout, with the fix in the message."""
    import pyarrow as pa

    missing = [c for c in COLUMNS if c not in schema.names]
    if missing:
        raise DataFileError(
            f"{path}: missing columns {missing}; expected {', '.join(COLUMNS)} "
            "(`liquidroute data convert FILE.csv.gz OUT.parquet` writes the layout)"
        )
    for name, want in _types().items():
        got = schema.field(name).type
        if pa.types.is_dictionary(got):
            got = got.value_type
        ok = got == want or (want == pa.string() and pa.types.is_large_string(got))
        if not ok:
            raise DataFileError(
                f"{path}: column {name!r} is {got}, expected {want}; write the file with "
                "`liquidroute data convert` (or cast the column)"
            )


class _Named:
    """ccxt venue and unified symbol from a file's tardis exchange id and native symbol."""

    __slots__ = ()
    exchange: str
    native_symbol: str

    @property
    def venue(self) -> str:
        return ccxt_id(self.exchange)[0]

    @property
    def symbol(self) -> str:
        return unified_symbol(self.native_symbol, ccxt_id(self.exchange)[1])


@dataclass(slots=True)
class TardisFile(_Named):
    """One recorded book file, read as a stream of validated `Rows` batches.

    `exchange`/`native_symbol` come from the first batch (read on construction); every call
    to `batches()` reads the file again from the start (or from row `start_row`).
    """

    path: Path
    skip_bad_rows: bool = False
    batch_rows: int = BATCH_ROWS
    kind: str = ""
    exchange: str = ""
    native_symbol: str = ""
    skipped_rows: int = 0
    index: dict[str, Any] | None = None
    _row_groups: list[int] = field(default_factory=list)
    _first_row: int = 0
    _names_known: bool = False  # Parquet: exchange and symbol proven by the statistics

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        check_file(self.path)
        if self.path.suffix == ".parquet":
            self.kind = "parquet"
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                meta = pq.ParquetFile(self.path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataFileError(f"{self.path}: not a readable Parquet file ({exc})") from None
            _check_parquet_schema(self.path, meta.schema_arrow)
            raw = (meta.schema_arrow.metadata or {}).get(INDEX_KEY)
            self.index = json.loads(raw) if raw else None
            self._row_groups = [
                meta.metadata.row_group(i).num_rows for i in range(meta.num_row_groups)
            ]
            names = _names_in_statistics(meta.metadata)
            if names is not None:
                self.exchange, self.native_symbol = names
                self._names_known = True
        elif "asks[0].price" in _header(self.path):
            self.kind = "book_snapshot"
        else:
            self.kind = "incremental"
        first = next(self._raw(0), None)
        if first is None or first.num_rows == 0:
            raise DataFileError(f"{self.path}: no rows")
        if not self._names_known:
            self.exchange, self.native_symbol = self._names(first, 0)
        ccxt_id(self.exchange)  # unknown exchange ids are refused here

    # -- raw pyarrow batches -------------------------------------------------------------

    def _raw(self, start_row: int) -> Iterator[Any]:
        """pyarrow tables/batches with the eight columns, from about `start_row` on (the
        first one yielded starts at or before it; see `_first_row`)."""
        import pyarrow as pa
        import pyarrow.csv as pcsv

        path = self.path
        self._first_row = 0
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            groups, first = [], 0
            for i, n in enumerate(self._row_groups):
                if first + n > start_row:
                    groups.append(i)
                elif not groups:
                    first += n
            self._first_row = first
            # the text columns as dictionaries: a few distinct words, decoded once per batch;
            # one thread, as the CSV reader: decoding is not worth a pool's CPU (about 25 %
            # more CPU time per row with threads, for a little wall time on a spare core)
            # streamed through a 1 MB buffer, a column chunk at a time (not pre-buffered):
            # a 1 M-row group held whole costs ~220 MB more for no speed (20 M rows: 0.68 s,
            # 129 MB peak, against 0.8-1.3 s and 353-373 MB)
            pf = pq.ParquetFile(
                path,
                read_dictionary=["exchange", "symbol", "side"],
                buffer_size=1 << 20,
                pre_buffer=False,
            )
            # exchange and symbol proven by the statistics are not decoded (a third of
            # the decoding: two of eight columns, text)
            columns = [c for c in COLUMNS if not (self._names_known and c in _NAME_COLUMNS)]
            try:
                yield from pf.iter_batches(
                    batch_size=self.batch_rows,
                    row_groups=groups,
                    columns=columns,
                    use_threads=False,
                )
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataFileError(f"{path}: not a readable Parquet file ({exc})") from None
            return
        if self.skip_bad_rows and self.kind == "incremental":
            options = pcsv.ConvertOptions(column_types=_types())
            self.skipped_rows = 0
            for data, skipped in _clean_chunks(path, self.batch_rows):
                self.skipped_rows += skipped
                yield pcsv.read_csv(io.BytesIO(data), convert_options=options)
            return
        read = pcsv.ReadOptions(block_size=max(1 << 16, self.batch_rows * 96), use_threads=False)
        if self.kind == "book_snapshot":
            header = _header(path)
            types = {c: pa.float64() for c in header if c.endswith(("].price", "].amount"))}
            types |= {"timestamp": pa.int64(), "local_timestamp": pa.int64()}
            convert = pcsv.ConvertOptions(column_types=types)
        else:
            convert = pcsv.ConvertOptions(column_types=_types())
        try:
            reader = pcsv.open_csv(path, read_options=read, convert_options=convert)
            for batch in reader:
                if self.kind == "book_snapshot":
                    yield _snapshot_rows(pa.Table.from_batches([batch]))
                else:
                    yield batch
        except (pa.ArrowInvalid, OSError, EOFError, KeyError, ValueError) as exc:
            if "Empty CSV file" in str(exc):
                raise DataFileError(f"{path}: empty file") from None
            if self.kind == "book_snapshot":
                raise DataFileError(
                    f"{path}: not a valid tardis book_snapshot CSV ({exc})"
                ) from None
            raise DataFileError(
                f"{path}: not a valid tardis CSV: {_find_bad_line(path)} "
                "(--skip-bad-rows drops such rows and counts them)"
            ) from None

    def _names(self, batch: Any, offset: int) -> tuple[str, str]:
        import pyarrow.compute as pc

        missing = [c for c in COLUMNS if c not in batch.schema.names]
        if missing:
            raise DataFileError(
                f"{self.path}: missing columns {missing}; expected a tardis "
                f"incremental_book_L2 CSV with {', '.join(COLUMNS)}"
            )
        names = []
        for col in ("exchange", "symbol"):
            values = pc.unique(batch.column(col)).to_pylist()
            if len(values) != 1 or (self.exchange and values[0] != self._expected(col)):
                raise DataFileError(
                    f"{self.path}: holds several exchanges/symbols (from line ~{offset + 2}: "
                    f"{values[:4]}); one venue and one symbol per file"
                )
            names.append(str(values[0]))
        return names[0], names[1]

    def _expected(self, col: str) -> str:
        return self.exchange if col == "exchange" else self.native_symbol

    # -- validated batches ---------------------------------------------------------------

    def batches(self, start_row: int = 0) -> Iterator[Rows]:
        """Validated batches from file row `start_row` on (all when 0)."""
        import pyarrow.compute as pc

        path = self.path
        offset, prev_ts = 0, None
        raw = self._raw(start_row)
        for batch in raw:
            if offset == 0:
                offset = self._first_row
            n = batch.num_rows
            if n == 0:
                continue
            if offset + n <= start_row:  # before the window's seed: not decoded
                offset += n
                continue
            for name in batch.schema.names:
                if batch.column(name).null_count:
                    raise DataFileError(f"{path}: empty values in column {name!r}")
            if not self._names_known:
                self._names(batch, offset)
            is_bid = _bids(batch.column("side"))
            if is_bid is None:
                side = batch.column("side")
                bid = pc.equal(side, "bid")
                bad_side = pc.invert(pc.or_(bid, pc.equal(side, "ask")))
                line = offset + int(np.argmax(bad_side.to_numpy(zero_copy_only=False))) + 2
                raise DataFileError(f"{path}: line {line}: side must be 'bid' or 'ask'")
            local_ts = _ints(batch.column("local_timestamp"))
            ts = _ints(batch.column("timestamp"))
            self._check_times(local_ts, ts, offset, prev_ts)
            price = _floats(batch.column("price"))
            amount = _floats(batch.column("amount"))
            bad = ~np.isfinite(price) | (price <= 0) | ~np.isfinite(amount) | (amount < 0)
            if bad.any():
                line = offset + int(np.argmax(bad)) + 2
                raise DataFileError(f"{path}: line {line}: price must be > 0 and amount >= 0")
            rows = Rows(
                offset,
                ts,
                local_ts,
                batch.column("is_snapshot").to_numpy(zero_copy_only=False),
                is_bid,
                price,
                amount,
            )
            prev_ts = int(local_ts[-1])
            offset += n
            if offset <= start_row:
                continue
            if rows.offset < start_row:
                k = start_row - rows.offset
                rows = Rows(
                    start_row,
                    rows.timestamp[k:],
                    rows.local_timestamp[k:],
                    rows.is_snapshot[k:],
                    rows.is_bid[k:],
                    rows.price[k:],
                    rows.amount[k:],
                )
            yield rows

    def _check_times(self, local_ts: IntArray, ts: IntArray, offset: int, prev: int | None) -> None:
        path = self.path
        for name, values in (("local_timestamp", local_ts), ("timestamp", ts)):
            late = values > MAX_US
            if late.any() or (name == "local_timestamp" and (values < 0).any()):
                i = int(np.argmax(late | (values < 0)))
                raise DataFileError(
                    f"{path}: line {offset + i + 2}: {name} {int(values[i])} is "
                    f"{format_us(float(values[i]))}; stamps must be µs since the epoch before "
                    "2100 (a corrupt row: fix or drop it)"
                )
        steps = np.diff(local_ts)
        if (steps < 0).any() or (prev is not None and local_ts[0] < prev):
            i = 0 if prev is not None and local_ts[0] < prev else int(np.argmax(steps < 0)) + 1
            raise DataFileError(
                f"{path}: line {offset + i + 2}: local_timestamp goes backwards (unsorted file)"
            )


def _bids(side: Any) -> BoolArray | None:
    """`side == "bid"` as a numpy array, or None when a value is neither bid nor ask.
    A dictionary column (our Parquet) is decoded through its few words."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(side.type):
        words = side.dictionary.to_pylist()
        index = side.indices.to_numpy(zero_copy_only=False)
        known = np.array([w in ("bid", "ask") for w in words], dtype=bool)
        if not known.all() and not known[index].all():  # an unknown word, and it is used
            return None
        # a dictionary's words are distinct: "bid" is at most one of them
        bid: BoolArray = index == words.index("bid") if "bid" in words else index < 0
        return bid
    is_bid = pc.equal(side, "bid")
    if pc.any(pc.invert(pc.or_(is_bid, pc.equal(side, "ask")))).as_py():
        return None
    out: BoolArray = is_bid.to_numpy(zero_copy_only=False)
    return out


def _ints(col: Any) -> IntArray:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)


def _floats(col: Any) -> FloatArray:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def starts_snapshot(
    is_snapshot: BoolArray, local_ts: IntArray, prev: tuple[bool, int] | None
) -> BoolArray:
    """Rows that start a new snapshot (and so clear the book): a snapshot row that is the
    file's first, follows an update row, or has a new local_timestamp. `prev` is the
    (is_snapshot, local_timestamp) of the row before the batch (None at the file start)."""
    prev_snap = np.empty_like(is_snapshot)
    new_ts = np.empty_like(is_snapshot)
    if len(is_snapshot):
        prev_snap[0] = prev[0] if prev else False
        new_ts[0] = True if prev is None else bool(local_ts[0] != prev[1])
        prev_snap[1:] = is_snapshot[:-1]
        new_ts[1:] = local_ts[1:] != local_ts[:-1]
    return is_snapshot & (~prev_snap | new_ts)


@dataclass(frozen=True, slots=True)
class L2Updates(_Named):
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

    def __len__(self) -> int:
        return len(self.price)

    def rows(self) -> Rows:
        """The whole file as one batch."""
        return Rows(
            0,
            self.timestamp,
            self.local_timestamp,
            self.is_snapshot,
            self.is_bid,
            self.price,
            self.amount,
        )


def read_incremental_l2(path: Path | str, *, skip_bad_rows: bool = False) -> L2Updates:
    """Read and validate a whole recorded book file into arrays (small files; backtests
    stream with `TardisFile.batches()` instead).

    Accepts tardis incremental_book_L2 CSV(.gz); tardis book_snapshot_25 / book_snapshot_5
    CSV(.gz) (each row becomes one full snapshot, which by the rules replaces the book);
    and our Parquet layout (module doc). With `skip_bad_rows`, malformed CSV rows are
    dropped and counted (`L2Updates.skipped_rows`) instead of failing the file.
    """
    source = TardisFile(Path(path), skip_bad_rows=skip_bad_rows)
    parts = list(source.batches())
    cat = np.concatenate
    return L2Updates(
        path=source.path,
        exchange=source.exchange,
        native_symbol=source.native_symbol,
        timestamp=cat([p.timestamp for p in parts]),
        local_timestamp=cat([p.local_timestamp for p in parts]),
        is_snapshot=cat([p.is_snapshot for p in parts]),
        is_bid=cat([p.is_bid for p in parts]),
        price=cat([p.price for p in parts]),
        amount=cat([p.amount for p in parts]),
        skipped_rows=source.skipped_rows,
    )


@dataclass(frozen=True, slots=True)
class FileIndex:
    """Where a file's books start: rows, first snapshot, last arrival time, and the
    (row, local_timestamp) of every snapshot start (a row that clears the book)."""

    rows: int
    start_us: int
    end_us: int
    snapshot_rows: tuple[int, ...]
    snapshot_us: tuple[int, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "rows": self.rows,
                "start_us": self.start_us,
                "end_us": self.end_us,
                "snapshot_rows": list(self.snapshot_rows),
                "snapshot_us": list(self.snapshot_us),
            }
        )

    def seed_row(self, t_us: int) -> int:
        """The row of the last snapshot start at or before `t_us` (the first one if none)."""
        i = int(np.searchsorted(np.asarray(self.snapshot_us), t_us, side="right")) - 1
        return self.snapshot_rows[max(i, 0)]


class _IndexBuilder:
    """Collects a `FileIndex` batch by batch."""

    def __init__(self) -> None:
        self.rows, self.end = 0, -1
        self.prev: tuple[bool, int] | None = None
        self.snap_rows: list[int] = []
        self.snap_us: list[int] = []

    def add(self, b: Rows) -> None:
        starts = np.flatnonzero(starts_snapshot(b.is_snapshot, b.local_timestamp, self.prev))
        self.snap_rows.extend((starts + b.offset).tolist())
        self.snap_us.extend(b.local_timestamp[starts].tolist())
        self.prev = (bool(b.is_snapshot[-1]), int(b.local_timestamp[-1]))
        self.end = int(b.local_timestamp[-1])
        self.rows = b.offset + len(b)

    def index(self) -> FileIndex | None:
        if not self.snap_rows:
            return None
        return FileIndex(
            self.rows, self.snap_us[0], self.end, tuple(self.snap_rows), tuple(self.snap_us)
        )


def scan(source: TardisFile) -> FileIndex:
    """One streaming pass (or the Parquet file's stored index): the file's `FileIndex`."""
    if source.index:
        i = source.index
        return FileIndex(
            int(i["rows"]),
            int(i["start_us"]),
            int(i["end_us"]),
            tuple(i["snapshot_rows"]),
            tuple(i["snapshot_us"]),
        )
    builder = _IndexBuilder()
    for b in source.batches():
        builder.add(b)
    index = builder.index()
    if index is None:
        raise DataFileError(f"{source.path}: no snapshot rows; the book is never known")
    return index


#: our Parquet's codec: LZ4 decodes ~1.9x faster than zstd (20 M rows: 0.84 vs 1.58 s on one
#: core) for files ~1.4x larger; a replay is bound by decoding, disk is cheap
PARQUET_CODEC = "lz4"


def write_parquet(updates: L2Updates | TardisFile, out: Path, row_group_rows: int = 1 << 20) -> int:
    """Our Parquet layout (module doc), streamed batch by batch, with its index in the
    metadata; written atomically. Returns the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = updates if isinstance(updates, TardisFile) else None
    batches: Iterator[Rows] = source.batches() if source else iter([updates.rows()])  # type: ignore[union-attr]
    exchange, native = updates.exchange, updates.native_symbol
    schema = pa.schema([(c, t) for c, t in _types().items()])
    tmp = out.with_name(f".{out.name}.tmp")
    builder = _IndexBuilder()
    writer = pq.ParquetWriter(tmp, schema, compression=PARQUET_CODEC)
    try:
        for b in batches:
            n = len(b)
            builder.add(b)
            table = pa.table(
                {
                    "exchange": pa.array([exchange] * n, pa.string()),
                    "symbol": pa.array([native] * n, pa.string()),
                    "timestamp": b.timestamp,
                    "local_timestamp": b.local_timestamp,
                    "is_snapshot": b.is_snapshot,
                    "side": pa.array(np.where(b.is_bid, "bid", "ask")),
                    "price": b.price,
                    "amount": b.amount,
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=row_group_rows)
    finally:
        writer.close()
    index = builder.index()
    if index is not None:  # the index goes in the footer: the finished file is rewritten
        _attach_index(tmp, index)
    tmp.replace(out)
    return builder.rows


def _attach_index(path: Path, index: FileIndex) -> None:
    """Re-write `path` with `index` in its schema metadata, row group by row group."""
    import pyarrow.parquet as pq

    src = pq.ParquetFile(path)
    schema = src.schema_arrow.with_metadata({INDEX_KEY: index.to_json().encode()})
    final = path.with_name(path.name + ".idx")
    with pq.ParquetWriter(final, schema, compression=PARQUET_CODEC) as writer:
        for i in range(src.num_row_groups):
            writer.write_table(src.read_row_group(i).replace_schema_metadata(schema.metadata))
    final.replace(path)


def describe(source: TardisFile, gap_s: float = 5.0) -> dict[str, object]:
    """Venue, symbol, time span, rows, messages, snapshots, and arrival gaps longer than
    `gap_s` (the first 20), in one streaming pass."""
    rows = messages = snapshots = snapshot_rows = 0
    prev: tuple[bool, int] | None = None
    first = last = -1
    gaps: list[dict[str, object]] = []
    n_gaps = 0
    for b in source.batches():
        ts = b.local_timestamp
        if first < 0:
            first = int(ts[0])
        new = np.empty(len(ts), dtype=bool)
        new[0] = prev is None or ts[0] != prev[1]
        new[1:] = ts[1:] != ts[:-1]
        stamps = ts[new]
        messages += len(stamps)
        chain = np.concatenate(([prev[1]], stamps)) if prev is not None else stamps
        steps = np.diff(chain)
        long = np.flatnonzero(steps > gap_s * 1e6)
        n_gaps += len(long)
        for i in long[: max(0, 20 - len(gaps))]:
            gaps.append({"from": format_us(float(chain[i])), "seconds": float(steps[i]) / 1e6})
        snapshots += int(starts_snapshot(b.is_snapshot, ts, prev).sum())
        snapshot_rows += int(b.is_snapshot.sum())
        prev = (bool(b.is_snapshot[-1]), int(ts[-1]))
        last = int(ts[-1])
        rows = b.offset + len(b)
    return {
        "file": str(source.path),
        "exchange": source.exchange,
        "venue": source.venue,
        "symbol": source.symbol,
        "native_symbol": source.native_symbol,
        "start": format_us(float(first)),
        "end": format_us(float(last)),
        "duration_s": float(last - first) / 1e6,
        "rows": rows,
        "messages": messages,
        "snapshots": snapshots,
        "snapshot_rows": snapshot_rows,
        "gaps_over_s": gap_s,
        "long_gaps": n_gaps,
        "gaps": gaps,
        "skipped_rows": source.skipped_rows,
    }


__all__ = [
    "COLUMNS",
    "MAX_US",
    "TARDIS_EXCHANGES",
    "FileIndex",
    "L2Updates",
    "Rows",
    "TardisFile",
    "ccxt_id",
    "check_file",
    "describe",
    "format_us",
    "parse_time_ms",
    "read_incremental_l2",
    "scan",
    "starts_snapshot",
    "unified_symbol",
    "write_parquet",
]
