"""Running a backtest in windows: one process, or Dask workers on a cluster.

A run's parent orders are cut into windows of consecutive orders. `window_columns` computes
one window anywhere: it opens the files, enters each at its last snapshot before the
window (`FileIndex.seed_row`, found by the client's scan and sent along), replays the
reads of the orders between that snapshot and the window without routing them, and routes
the window's orders (`replay.iter_batches(start=...)`). Its rows equal the single pass's
rows for those orders exactly, so the windows can run in any order, on any worker, and be
resumed. `run_local` is the single pass, writing each window as it completes;
`run_distributed` submits the windows to Dask (a LocalCluster with `workers` processes
unless `scheduler` names a running scheduler); a worker that shares the client's
filesystem writes its window's Parquet part itself (`window_part`), otherwise the client
writes it as it arrives. Dask is imported only here, only when asked for.

Dask's nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536, so that glibc hands
freed memory back to the system at once. It also fixes the mmap threshold at 128 KiB:
every array above it is mapped on allocation and unmapped on free, and a window's
batches (64 Ki rows) then fault their pages in again on every batch: ten times the page
faults and about 12 % more CPU than the same window in a plain process. A window lifts
both thresholds while it runs and puts Dask's back afterwards, trimming the heap
(`_untrimmed_heap`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from liquidroute.backtest import replay as rp
from liquidroute.backtest.store import ResultsStore
from liquidroute.errors import LiquidrouteError
from liquidroute.tardis import FileIndex

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything a worker needs to open the same replay as the client."""

    files: tuple[str, ...]
    align: str | None = None
    fees: dict[str, float] = field(default_factory=dict)
    symbol: str | None = None
    skip_bad_rows: bool = False
    strategies: tuple[str, ...] = rp.DEFAULT_STRATEGIES
    latency_ms: float = 0.0
    depth: int = 200

    def options(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("files")
        out["strategies"] = list(self.strategies)
        return out


def open_replay(spec: RunSpec, indexes: Sequence[FileIndex] | None = None) -> rp.Replay:
    replay = rp.load(
        [Path(f) for f in spec.files],
        align=spec.align,
        fees=spec.fees,
        skip_bad_rows=spec.skip_bad_rows,
        symbol=spec.symbol,
    )
    if indexes is not None:
        for v, index in zip(replay.venues, indexes, strict=True):
            v.index = index
        replay.scan()
    return replay


def window_table(
    spec: RunSpec,
    indexes: Sequence[FileIndex] | None,
    orders: rp.Orders,
    start: int,
    stop: int,
) -> Any:
    """`window_columns` as a pyarrow Table: what a worker sends back (columnar, compact)."""
    from liquidroute.backtest.store import columns_table

    return columns_table(window_columns(spec, indexes, orders, start, stop))


# glibc's mallopt parameters (malloc.h) and its defaults
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT_THRESHOLD = 128 * 1024
_WINDOW_TRIM, _WINDOW_MMAP = 1 << 30, 32 << 20  # 32 MiB: glibc's largest mmap threshold


@contextlib.contextmanager
def _untrimmed_heap() -> Iterator[None]:
    """In a process started with MALLOC_TRIM_THRESHOLD_ (a Dask nanny's worker): glibc
    keeps freed memory and maps only arrays above 32 MiB while the block runs, then
    gets the process's thresholds back and trims the heap. Elsewhere (no such variable,
    no glibc), nothing changes."""
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = _glibc() if trim is not None else None
    if libc is None:
        yield
        return
    libc.mallopt(_M_TRIM_THRESHOLD, _WINDOW_TRIM)
    libc.mallopt(_M_MMAP_THRESHOLD, _WINDOW_MMAP)
    try:
        yield
    finally:
        mmap = os.environ.get("MALLOC_MMAP_THRESHOLD_")
        libc.mallopt(_M_TRIM_THRESHOLD, _int_or(trim, _DEFAULT_THRESHOLD))
        libc.mallopt(_M_MMAP_THRESHOLD, _int_or(mmap, _DEFAULT_THRESHOLD))
        libc.malloc_trim(0)


def _int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _glibc() -> Any:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


def window_part(
    spec: RunSpec,
    indexes: Sequence[FileIndex] | None,
    orders: rp.Orders,
    start: int,
    stop: int,
    part: str,
    token: str,
) -> Any:
    """`window_table`, written by the worker itself to the client's `part` file when it
    sees the client's `token` file (the same filesystem: a local cluster, or workers on
    the client's machine); then only the row count goes back. Otherwise the table does,
    and the client writes it. Either way the client does no Parquet work it can avoid."""
    from liquidroute.backtest.store import write_part

    with _untrimmed_heap():
        table = window_table(spec, indexes, orders, start, stop)
    if Path(token).is_file():
        write_part(Path(part), table)
        return int(table.num_rows)
    return table


def window_columns(
    spec: RunSpec,
    indexes: Sequence[FileIndex] | None,
    orders: rp.Orders,
    start: int,
    stop: int,
) -> rp.Columns:
    """The result columns of orders start..stop-1 (module doc)."""
    from liquidroute.backtest.store import concat_columns

    replay = open_replay(spec, indexes)
    entry = rp.window_entry(replay, orders, start, spec.latency_ms)
    part = rp.orders_part(orders, entry, stop)
    batches = rp.iter_batches(
        replay,
        part,
        strategies=spec.strategies,
        latency_ms=spec.latency_ms,
        depth=spec.depth,
        start=start - entry,
        seeded=start > 0,  # entered at its seed snapshot, even with no order before it
    )
    return concat_columns([columns for _, columns in batches])


def window_rows(
    spec: RunSpec,
    indexes: Sequence[FileIndex] | None,
    orders: rp.Orders,
    start: int,
    stop: int,
) -> list[dict[str, Any]]:
    """`window_columns` as rows (dicts)."""
    return rp.column_rows(window_columns(spec, indexes, orders, start, stop))


def windows(n_orders: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n_orders)) for i in range(0, n_orders, size)]


def run_local(
    spec: RunSpec,
    replay: rp.Replay,
    orders: rp.Orders,
    store: ResultsStore,
    *,
    window: int,
    progress: Progress | None = None,
) -> int:
    """One pass (from the first missing window on), each window written as it completes.
    Returns the orders routed."""
    done = store.done()
    first = 0
    while first in done:
        first += 1
    start = first * window
    if start and replay.end_us is None:
        replay.scan()  # resuming: the seeds come from the index
    from liquidroute.backtest.store import concat_columns, slice_columns

    buffer: list[rp.Columns] = []  # the current window's batches (or parts of them)
    current, count = first, start
    k = len(spec.strategies)
    for indexes, columns in rp.iter_batches(
        replay,
        orders,
        strategies=spec.strategies,
        latency_ms=spec.latency_ms,
        depth=spec.depth,
        start=start,
    ):
        at = 0  # the batch's orders are consecutive: cut it where a window ends
        while at < len(indexes):
            w = indexes[at] // window
            end = min(len(indexes), at + (w + 1) * window - indexes[at])
            if w != current:
                if current not in done and buffer:
                    store.write(current, concat_columns(buffer))
                buffer, current = [], w
            buffer.append(slice_columns(columns, at * k, end * k))
            at = end
        count = indexes[-1] + 1
        if progress is not None:
            progress(count)
    if buffer and current not in done:
        store.write(current, concat_columns(buffer))
    return count


def run_distributed_windows(
    spec: RunSpec,
    replay: rp.Replay,
    orders: rp.Orders,
    store: ResultsStore,
    *,
    workers: int,
    scheduler: str | None = None,
    window: int | None = None,
    progress: Progress | None = None,
) -> int:
    """The windows on Dask workers; each written by the client as it arrives."""
    from dask.distributed import Client, LocalCluster, as_completed

    if replay.end_us is None:
        replay.scan()
    if isinstance(orders, rp.Schedule) and orders.end_us is None:
        orders = dataclasses.replace(orders, end_us=replay.end_us)
    indexes = [v.index for v in replay.venues]
    # every venue's fee as the client resolved it: the workers need not import ccxt
    spec = dataclasses.replace(spec, fees={k: m.taker_fee for k, m in replay.markets.items()})
    n = len(orders)
    size = window or max(1, -(-n // (4 * max(1, workers))))
    todo = [(k, w) for k, w in enumerate(windows(n, size)) if k not in store.done()]
    cluster = None
    if not scheduler:
        import dask.config

        # the workers' statistical profiler samples every thread's stack each 10 ms: off in
        # the cluster started here (a running scheduler's workers keep their own settings)
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(
                n_workers=max(1, workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
    try:
        client = Client(scheduler or cluster)
    except OSError as exc:  # distributed's connect timed out: nothing listens there
        if cluster is not None:
            raise
        raise LiquidrouteError(
            f"--scheduler {scheduler}: no Dask scheduler answered ({exc}); start one "
            "(`dask scheduler`, then `dask worker ADDRESS`) or leave out --scheduler to "
            "run a local cluster"
        ) from None
    finished = n - sum(b - a for _, (a, b) in todo)
    token = str(store.token())
    try:
        futures = {
            client.submit(
                window_part, spec, indexes, orders, a, b, str(store.path(k)), token, pure=False
            ): (k, b - a)
            for k, (a, b) in todo
        }
        for future in as_completed(futures):
            k, count = futures[future]
            result = future.result()
            if not isinstance(result, int):  # the worker could not reach the folder
                store.write(k, result)
            finished += count
            if progress is not None:
                progress(finished)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return n


def run_distributed(
    files: Sequence[Path],
    parents: rp.Orders,
    *,
    align: str | None,
    fees: Mapping[str, float],
    strategies: Sequence[str],
    latency_ms: float,
    depth: int,
    workers: int,
    scheduler: str | None = None,
    symbol: str | None = None,
    window: int | None = None,
) -> list[dict[str, Any]]:
    """The rows of a run on Dask, in memory (small runs and tests; the CLI streams them to
    disk with `run_distributed_windows`)."""
    import tempfile

    import pyarrow.parquet as pq

    spec = RunSpec(
        tuple(str(f) for f in files),
        align,
        dict(fees),
        symbol,
        False,
        tuple(strategies),
        latency_ms,
        depth,
    )
    replay = open_replay(spec)
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp), {"spec": spec.options()})
        run_distributed_windows(
            spec, replay, parents, store, workers=workers, scheduler=scheduler, window=window
        )
        path = store.finish("", keep_files=False)
        return list(pq.read_table(path).to_pylist())
