"""Scale-out: run chunks of the parent orders on Dask workers.

The orders are cut into contiguous time chunks; each worker loads the files and replays
its chunk from the start of the recordings, so every chunk sees exactly the books the
single-process run sees, and the concatenated rows are identical to it. A LocalCluster
with `workers` processes is started unless `scheduler` names an existing one. Dask is
imported only here, only when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from liquidroute.backtest.replay import ParentOrder, load, run


def _chunk(
    files: Sequence[Path],
    parents: Sequence[ParentOrder],
    align: str | None,
    fees: Mapping[str, float],
    strategies: Sequence[str],
    latency_ms: float,
    depth: int,
) -> list[dict[str, Any]]:
    data = load(files, align=align, fees=fees)
    return run(data, parents, strategies=strategies, latency_ms=latency_ms, depth=depth)


def run_distributed(
    files: Sequence[Path],
    parents: Sequence[ParentOrder],
    *,
    align: str | None,
    fees: Mapping[str, float],
    strategies: Sequence[str],
    latency_ms: float,
    depth: int,
    workers: int,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    from dask.distributed import Client, LocalCluster

    n = max(1, workers)
    size = -(-len(parents) // n)
    chunks = [list(parents[i : i + size]) for i in range(0, len(parents), size)]
    cluster = (
        None
        if scheduler
        else LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
    )
    client = Client(scheduler or cluster)
    try:
        futures = [
            client.submit(
                _chunk,
                list(files),
                c,
                align,
                dict(fees),
                list(strategies),
                latency_ms,
                depth,
                pure=False,
            )
            for c in chunks
        ]
        rows: list[dict[str, Any]] = []
        for part in client.gather(futures):
            rows.extend(part)
        return rows
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
