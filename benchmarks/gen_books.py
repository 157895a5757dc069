"""Generate large, realistic tardis `incremental_book_L2` files for backtest benchmarks.

    python benchmarks/gen_books.py OUT.csv.gz --rows 20000000 [--exchange binance]
        [--symbol BTCUSDT] [--snapshot-every 600] [--depth 200] [--seed 0]
    python benchmarks/gen_books.py OUT.parquet --rows 20000000     # our Parquet layout

What the file holds (seeded, so anyone gets the same bytes for the same arguments):

- a full snapshot (`is_snapshot=true`, `depth` levels a side on a 0.01 tick grid around
  the mid) at the start and then every `--snapshot-every` seconds of arrival time;
- messages arriving every ~25 ms (exponential gaps) with 1-20 level changes each: new
  sizes (log-normal) or deletions (amount 0) at prices a geometric number of ticks from
  the mid, so activity concentrates near the top of the book like real feeds;
- a mid that random-walks by whole ticks; when it moves, the levels it crossed are deleted
  in the same message, except with probability `--stale` (default 0.002), which leaves a
  stale crossed level behind, as when a real feed drops a message;
- exchange time a few ms before arrival time.

At the defaults 20 M rows are about 12 hours of a busy venue. Rows are generated and
written in chunks of 1 M, so memory stays flat; a 20 M-row CSV.gz is ~0.5 GB and takes a
minute or two. The shared real files are the format reference (`../shared/data/README.md`).
"""

from __future__ import annotations

import argparse
import gzip
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from liquidroute.tardis import PARQUET_CODEC

TICK = 0.01


def _snapshot(rng: np.random.Generator, mid: int, depth: int, t: int) -> dict[str, np.ndarray]:
    offs = np.arange(1, depth + 1)
    price = np.concatenate([mid - offs, mid + offs])
    n = len(price)
    return {
        "local_timestamp": np.full(n, t, dtype=np.int64),
        "is_snapshot": np.ones(n, dtype=bool),
        "is_bid": np.repeat([True, False], depth),
        "ticks": price,
        "amount": np.round(rng.lognormal(-1.0, 1.2, n), 5),
    }


def _messages(
    rng: np.random.Generator, mid: int, t: int, n_msgs: int, depth: int, stale: float
) -> tuple[dict[str, np.ndarray], int, int]:
    """n_msgs messages of updates; returns their rows, the last mid and the last time."""
    gaps = rng.exponential(25_000.0, n_msgs).astype(np.int64) + 1
    times = t + np.cumsum(gaps)
    moves = rng.choice([-1, 0, 0, 0, 0, 0, 0, 1], n_msgs)
    mids = mid + np.cumsum(moves)
    counts = rng.integers(1, 21, n_msgs)
    msg = np.repeat(np.arange(n_msgs), counts)
    n = len(msg)
    is_bid = rng.random(n) < 0.5
    off = np.minimum(rng.geometric(0.08, n), depth)
    ticks = np.where(is_bid, mids[msg] - off, mids[msg] + off)
    amount = np.where(rng.random(n) < 0.3, 0.0, np.round(rng.lognormal(-1.0, 1.2, n), 5))
    # the level the mid crossed is deleted in the same message (mostly)
    moved = np.flatnonzero((moves != 0) & (rng.random(n_msgs) >= stale))
    del_bid = moves[moved] < 0  # mid went down: the bid at the old mid - 1 is now above it
    del_ticks = mids[moved]
    rows = {
        "msg": np.concatenate([msg, moved]),
        "is_bid": np.concatenate([is_bid, del_bid]),
        "ticks": np.concatenate([ticks, del_ticks]),
        "amount": np.concatenate([amount, np.zeros(len(moved))]),
    }
    order = np.argsort(rows["msg"], kind="stable")
    rows = {k: v[order] for k, v in rows.items()}
    out = {
        "local_timestamp": times[rows["msg"]],
        "is_snapshot": np.zeros(len(order), dtype=bool),
        "is_bid": rows["is_bid"],
        "ticks": rows["ticks"],
        "amount": rows["amount"],
    }
    return out, int(mids[-1]), int(times[-1])


def generate(
    out: Path,
    rows: int,
    *,
    exchange: str = "binance",
    symbol: str = "BTCUSDT",
    snapshot_every_s: float = 600.0,
    depth: int = 200,
    stale: float = 0.002,
    seed: int = 0,
    start_us: int = 1_723_161_254_206_652,
    chunk_rows: int = 1_000_000,
) -> int:
    """Write `rows` (about) rows to `out` (.csv.gz, .csv or .parquet); returns the rows."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    mid = 6_183_763  # ticks
    t = start_us
    next_snap = t
    written = 0
    schema = pa.schema(
        [
            ("exchange", pa.string()),
            ("symbol", pa.string()),
            ("timestamp", pa.int64()),
            ("local_timestamp", pa.int64()),
            ("is_snapshot", pa.bool_()),
            ("side", pa.string()),
            ("price", pa.float64()),
            ("amount", pa.float64()),
        ]
    )
    tmp = out.with_name(f".tmp-{out.name}")  # keeps the suffix
    with ExitStack() as stack:
        if out.suffix == ".parquet":
            writer = stack.enter_context(pq.ParquetWriter(tmp, schema, compression=PARQUET_CODEC))
        else:
            sink = stack.enter_context(
                gzip.open(tmp, "wb", compresslevel=1)  # noqa: SIM115
                if out.suffix == ".gz"
                else tmp.open("wb")
            )
            sink.write((",".join(schema.names) + "\n").encode())  # tardis: a bare header
            options = pcsv.WriteOptions(quoting_style="none", include_header=False)
            writer = stack.enter_context(pcsv.CSVWriter(sink, schema, write_options=options))
        write = writer.write_table
        while written < rows:
            parts = []
            n_chunk = 0
            while n_chunk < chunk_rows and written + n_chunk < rows:
                if t >= next_snap:
                    part = _snapshot(rng, mid, depth, t)
                    next_snap += int(snapshot_every_s * 1e6)
                else:
                    n_msgs = max(1, min(5_000, (chunk_rows - n_chunk) // 11))
                    part, mid, t_end = _messages(rng, mid, t, n_msgs, depth, stale)
                    if t_end >= next_snap:  # cut at the snapshot time
                        keep = part["local_timestamp"] < next_snap
                        part = {k: v[keep] for k, v in part.items()}
                        t = next_snap
                    else:
                        t = t_end
                parts.append(part)
                n_chunk += len(part["ticks"])
            cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            n = len(cat["ticks"])
            local = cat["local_timestamp"]
            table = pa.table(
                {
                    "exchange": pa.array([exchange] * n, pa.string()),
                    "symbol": pa.array([symbol] * n, pa.string()),
                    "timestamp": local - rng.integers(500, 5_000, n),
                    "local_timestamp": local,
                    "is_snapshot": cat["is_snapshot"],
                    "side": pa.array(np.where(cat["is_bid"], "bid", "ask")),
                    "price": np.round(cat["ticks"] * TICK, 2),
                    "amount": cat["amount"],
                },
                schema=schema,
            )
            write(table)
            written += n
    if out.suffix == ".parquet":  # our layout carries its snapshot index (windows seek)
        from liquidroute.tardis import TardisFile, _attach_index, scan

        _attach_index(tmp, scan(TardisFile(tmp)))
    tmp.replace(out)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--exchange", default="binance")
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--snapshot-every", type=float, default=600.0, help="seconds")
    ap.add_argument("--depth", type=int, default=200)
    ap.add_argument("--stale", type=float, default=0.002)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    n = generate(
        args.out,
        args.rows,
        exchange=args.exchange,
        symbol=args.symbol,
        snapshot_every_s=args.snapshot_every,
        depth=args.depth,
        stale=args.stale,
        seed=args.seed,
    )
    print(f"wrote {args.out}: {n:,} rows in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
