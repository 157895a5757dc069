"""A real uvicorn server on 127.0.0.1 (an ephemeral port) over the bundled sample books."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from liquidroute.service.app import BookCache
from liquidroute.venues.sample_graph import sample_graph_markets, sample_graph_snapshots


def sample_cache() -> BookCache:
    cache = BookCache(live=False)
    for snap, market in zip(sample_graph_snapshots(), sample_graph_markets(), strict=True):
        cache.put(snap, market)
    return cache


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    # as `serve` does before serving: the heap so far (here every earlier test's, 600 k
    # objects and more in a full run) is left out of the collector's full scans, which
    # would otherwise stall the in-process server 0.3-0.5 s at random
    gc.freeze()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the test server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        gc.unfreeze()
