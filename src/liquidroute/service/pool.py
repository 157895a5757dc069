"""Routes computed off the event loop, in worker processes that can be stopped.

`RoutePool` keeps `workers` processes (forkserver: forked from a clean, pre-imported
server, so a replacement starts in milliseconds and inherits no sockets or threads). Each
worker holds a copy of the books; a request carries the books' version, and the books
themselves only when that worker's copy is older: only the books put since that worker's
version when the book source says which (`changed`: a live update costs one book per
worker), else all of them (a static book set: one transfer in all).

- At most `workers` routes run at once and at most `queue` more wait for a worker; beyond
  that `submit` raises `PoolBusy` at once (the app answers 503 with Retry-After).
- A route that exceeds `time_limit` seconds (waiting included) is stopped: its worker is
  killed (SIGKILL: a MILP or LP inside a solver cannot be interrupted otherwise) and
  replaced; `RouteTimeout` is raised (504).
- The event loop only waits on pipes (`loop.add_reader`), so /health, /ready and the live
  book refresh never wait behind a route; workers run at a lower CPU priority (nice 10),
  so on a busy machine the loop is scheduled before them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from liquidroute.errors import InvalidInputError
from liquidroute.model import DepthSnapshot, Market

log = logging.getLogger("liquidroute.service")
BookSet = tuple[int, Mapping[tuple[str, str], DepthSnapshot], Mapping[tuple[str, str], Market]]


class PoolBusy(Exception):  # noqa: N818 - a state, answered 503
    """Every worker is busy and the wait queue is full."""


class RouteTimeout(Exception):  # noqa: N818 - answered 504
    """The route took longer than the per-request time limit and was stopped."""


class RouteWorkerError(RuntimeError):
    """An unexpected exception inside a worker (its traceback is the message): a 500."""


COMPUTE = "liquidroute.service.routing:compute_route"
WORKER_NICE = 10


def _serve(conn: Connection, compute_path: str, nice: int = 0) -> None:
    """A worker's loop: (version, books or None, keys, request) in, (kind, payload) out."""
    import importlib
    import os

    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)  # routes are batch work: the event loop (/health) comes first
    from liquidroute import LadderCache

    module, _, name = compute_path.partition(":")
    compute_route = getattr(importlib.import_module(module), name)
    ladders = LadderCache(maxsize=64)  # this process's merged ladders, per book version

    version, books, markets = -1, {}, {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:  # a ping: the worker is up and its imports done
            conn.send(None)
            continue
        new_version, payload, keys, request = message
        if payload is not None:
            kind, new_books, new_markets = payload
            if kind == "all":
                books, markets = new_books, new_markets
            else:  # "changed": only the books put since this worker's version
                books.update(new_books)
                markets.update(new_markets)
            version = new_version
        try:
            result = compute_route(
                request, [books[k] for k in keys if k in books], markets, ladders
            )
            reply: tuple[str, Any] = ("ok", result)
        except InvalidInputError as exc:
            reply = ("bad", str(exc))
        except Exception:  # reported to the parent as a 500 with this traceback
            reply = ("error", traceback.format_exc(limit=20))
        conn.send((version, reply))


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    version: int = -1


class RoutePool:
    """Worker processes for routes; see the module docstring for the guarantees."""

    def __init__(
        self,
        books: Callable[[], BookSet],
        *,
        workers: int = 2,
        queue: int = 8,
        time_limit: float = 10.0,
        compute: str = COMPUTE,
        nice: int = WORKER_NICE,
        changed: Callable[[int], Iterable[tuple[str, str]]] | None = None,
    ) -> None:
        """`compute` ("module:function", called as f(request, snapshots, markets, cache)) is what a
        worker runs; the service's RouteResult by default. `nice` lowers the workers' CPU
        priority (0 keeps the server's). `changed(version)` lists the keys put since that
        version of `books()`: a worker that is behind then gets only those books (live
        books change one at a time), else all of them."""
        if workers < 1 or queue < 0 or not time_limit > 0:
            raise InvalidInputError("workers >= 1, queue >= 0 and time_limit > 0 are required")
        self._books, self._compute, self.nice = books, compute, nice
        self._changed = changed
        self.size, self.queue_limit, self.time_limit = workers, queue, time_limit
        self._ctx = mp.get_context("forkserver")
        with contextlib.suppress(Exception):
            self._ctx.set_forkserver_preload(["liquidroute.service.routing"])
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: list[_Worker] = []
        self._waiting = 0
        self._running = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def busy(self) -> int:
        return self._running

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_serve, args=(child, self._compute, self.nice), daemon=True
        )
        process.start()
        child.close()
        parent.send(None)  # blocks (in a thread) until the worker answers: ready to route
        if not parent.poll(60) or parent.recv() is not None:
            process.kill()
            raise RouteWorkerError("a route worker did not start within 60 s")
        return _Worker(process, parent)

    async def start(self) -> None:
        """Start the workers on this event loop (`submit` calls it; a new loop restarts)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None:  # an app served again on another loop (tests)
            self._stop_all()
        self._loop, self._idle = loop, asyncio.Queue()
        workers = await asyncio.to_thread(lambda: [self._spawn() for _ in range(self.size)])
        for w in workers:
            self._all.append(w)
            self._idle.put_nowait(w)

    async def submit(self, request: Any, keys: list[tuple[str, str]]) -> dict[str, Any]:
        """The worker's RouteResult for `request` on the books `keys`.

        Raises PoolBusy (no worker and no queue room), RouteTimeout (stopped after
        time_limit), InvalidInputError (bad input found while routing) or RouteWorkerError.
        """
        if self._closed:
            raise PoolBusy("the service is shutting down")
        if self._loop is not asyncio.get_running_loop():
            await self.start()
        assert self._idle is not None
        if self._idle.empty() and self._waiting >= self.queue_limit:
            raise PoolBusy(
                f"all {self.size} route workers are busy and {self._waiting} requests wait"
            )
        deadline = time.monotonic() + self.time_limit
        self._waiting += 1
        try:
            worker = await asyncio.wait_for(self._idle.get(), self.time_limit)
        except TimeoutError:
            raise PoolBusy(f"no route worker free within {self.time_limit:g} s") from None
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            reply = await self._ask(worker, request, keys, deadline - time.monotonic())
        except BaseException:
            self._running -= 1
            await self._replace(worker)
            raise
        self._running -= 1
        self._idle.put_nowait(worker)
        kind, payload = reply
        if kind == "ok":
            result: dict[str, Any] = payload
            return result
        if kind == "bad":
            raise InvalidInputError(payload)
        raise RouteWorkerError(payload)

    async def _ask(
        self, worker: _Worker, request: Any, keys: list[tuple[str, str]], budget: float
    ) -> tuple[str, Any]:
        version, books, markets = self._books()
        payload: tuple[str, dict[Any, Any], dict[Any, Any]] | None = None
        if worker.version != version:
            if worker.version >= 0 and self._changed is not None:
                keys_put = [k for k in self._changed(worker.version) if k in books]
                payload = (
                    "changed",
                    {k: books[k] for k in keys_put},
                    {k: markets[k] for k in keys_put},
                )
            else:
                payload = ("all", dict(books), dict(markets))
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        fd = worker.conn.fileno()

        def readable() -> None:
            if not done.done():
                done.set_result(None)

        loop.add_reader(fd, readable)
        try:
            worker.conn.send((version, payload, keys, request))
            try:
                await asyncio.wait_for(done, max(budget, 1e-3))
            except TimeoutError:
                raise RouteTimeout(
                    f"the route took longer than {self.time_limit:g} s and was stopped; narrow "
                    "it (bridges, exchanges, a smaller amount) or raise --route-timeout"
                ) from None
            if not worker.conn.poll():
                raise RouteWorkerError("the route worker exited unexpectedly")
            worker.version, reply = worker.conn.recv()
        except (EOFError, OSError) as exc:
            raise RouteWorkerError(f"the route worker died: {exc}") from exc
        finally:
            loop.remove_reader(fd)
        result: tuple[str, Any] = reply
        return result

    async def _replace(self, worker: _Worker) -> None:
        """Kill `worker` (it may be mid-solve) and put a fresh one in its place."""
        worker.process.kill()
        worker.conn.close()
        await asyncio.to_thread(worker.process.join, 5)
        if worker in self._all:
            self._all.remove(worker)
        if self._closed or self._idle is None:
            return
        fresh = await asyncio.to_thread(self._spawn)
        self._all.append(fresh)
        self._idle.put_nowait(fresh)
        log.warning("route worker %s stopped and replaced", worker.process.pid)

    def close(self) -> None:
        """Stop every worker now; the pool refuses work from then on."""
        self._closed = True
        self._stop_all()

    def _stop_all(self) -> None:
        for w in self._all:
            w.process.kill()
            w.conn.close()
        for w in self._all:
            w.process.join(5)
        self._all.clear()
