"""A loopback exchange speaking Binance spot's diff-depth websocket dialect, for tests.

It is `BinanceLoopback` (REST: exchangeInfo, depth, orders...) plus a websocket endpoint
on the same port, so the real `ccxt.pro.binance` client keeps a book from it exactly as
it does from Binance ("how to manage a local order book correctly"):

- `GET /api/v3/depth` answers the current book with its `lastUpdateId`;
- a websocket under `/stream/ws/...` takes `{"method": "SUBSCRIBE", ...}`, answers
  `{"result": null, "id": ...}` and then pushes one `depthUpdate` event per book change:
  `{"e": "depthUpdate", "E": ms, "s": "BTCUSDT", "U": first id, "u": last id,
  "b": [[price, size], ...], "a": [...]}` (size "0" deletes the level).

ccxt.pro.binance tells spot streams from futures ones by `/stream` in the URL, hence the
websocket base `ws_base_url` = `ws://127.0.0.1:PORT/stream` (the client keeps its `/ws`).

    with BinanceWsLoopback(bids=..., asks=...) as ex:
        ex.update(bids=[(60000.0, 2.0)], asks=[(60010.0, 0.0)])   # one event, id + 1
        ex.book()                                                  # the server's book now

Faults (each one shot unless said otherwise):

    ex.gap()               # the next event skips an update id (U = last + 2)
    ex.drop()              # every websocket connection is closed now
    ex.stall(True/False)   # stop pushing events (the book still changes); False flushes them
    ex.stale_snapshot(k)   # the next REST snapshot is the book as of k updates before the
                           # last SUBSCRIBE: older than every event the client buffered
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import WSMsgType, web

from tests.loopback.binance_server import SYMBOL, BinanceLoopback, _fmt

Levels = list[tuple[float, float]]


class BinanceWsLoopback(BinanceLoopback):
    """BinanceLoopback with a diff-depth stream and a sequenced book."""

    def __init__(self, *, history: int = 1000, stamp: bool = False, **kwargs: Any) -> None:
        """`stamp`: each event carries "T", time.time() when sent (ccxt ignores it;
        benchmarks measure update-to-quote latency with it)."""
        super().__init__(**kwargs)
        self.stamp = stamp
        self._bid_map: dict[float, float] = {p: s for p, s in self.bids}
        self._ask_map: dict[float, float] = {p: s for p, s in self.asks}
        self.update_id = 100
        self.history: deque[tuple[int, Levels, Levels]] = deque(maxlen=history)
        self.history.append((self.update_id, *self.book()))
        self.sockets: list[web.WebSocketResponse] = []
        self.subscribed: list[web.WebSocketResponse] = []
        self.subscribe_count = 0
        self.subscribed_ids: list[int] = []  # the update id at each SUBSCRIBE
        self.connect_count = 0
        self.events_sent = 0
        self._gap_next = False
        self._stalled = False
        self._held: list[dict[str, Any]] = []
        self._stale_by = 0
        self._subscribed_at = self.update_id

    # ------------------------------------------------------------------ server
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/stream/ws"):
            return await self._websocket(request)
        return await super()._dispatch(request)

    def stop(self) -> None:
        if self._loop is not None:
            self._run(self._close_all())
        super().stop()

    @property
    def ws_base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connect_count += 1
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                if payload.get("method") == "SUBSCRIBE":
                    self.subscribe_count += 1
                    with self._lock:
                        self._subscribed_at = self.update_id
                        self.subscribed_ids.append(self.update_id)
                    await ws.send_str(json.dumps({"result": None, "id": payload.get("id")}))
                    if ws not in self.subscribed:
                        self.subscribed.append(ws)
                elif payload.get("method") == "UNSUBSCRIBE":
                    await ws.send_str(json.dumps({"result": None, "id": payload.get("id")}))
        finally:
            for group in (self.sockets, self.subscribed):
                if ws in group:
                    group.remove(ws)
        return ws

    async def _close_all(self) -> None:
        for ws in list(self.sockets):
            await ws.close()

    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _depth(self, params: dict[str, str], fault: str | None) -> Any:
        limit = int(params.get("limit", 100))
        with self._lock:
            if self._stale_by:
                cut = self._subscribed_at - self._stale_by
                old = [entry for entry in self.history if entry[0] <= cut] or [self.history[0]]
                self._stale_by = 0
                last_id, bids, asks = old[-1]
            else:
                last_id, bids, asks = self.update_id, *self.book()
        return {
            "lastUpdateId": last_id,
            "bids": [[_fmt(p), _fmt(s)] for p, s in bids[:limit]],
            "asks": [[_fmt(p), _fmt(s)] for p, s in asks[:limit]],
        }

    # ------------------------------------------------------------------ the book
    def book(self) -> tuple[Levels, Levels]:
        """The server's (bids best first, asks best first) now."""
        bids = sorted(self._bid_map.items(), key=lambda x: -x[0])
        asks = sorted(self._ask_map.items())
        return bids, asks

    def update(
        self,
        bids: Iterable[Sequence[float]] = (),
        asks: Iterable[Sequence[float]] = (),
        *,
        ids: int = 1,
    ) -> int:
        """Apply one change (size 0 deletes a level) as one event spanning `ids` ids."""
        event = self._change(bids, asks, ids)
        if event is not None:
            self._run(self._broadcast([event]))
        return self.update_id

    def burst(self, changes: Sequence[dict[str, Any]]) -> int:
        """Apply several changes (`update`'s keywords each) and send their events back to
        back in one write: the client reads them all at once."""
        events = [self._change(**change) for change in changes]
        self._run(self._broadcast([e for e in events if e is not None]))
        return self.update_id

    def _change(
        self,
        bids: Iterable[Sequence[float]] = (),
        asks: Iterable[Sequence[float]] = (),
        ids: int = 1,
    ) -> dict[str, Any] | None:
        """Apply one change; its event, or None when a stall holds it back."""
        bids, asks = [tuple(map(float, b)) for b in bids], [tuple(map(float, a)) for a in asks]
        with self._lock:
            for side_map, levels in ((self._bid_map, bids), (self._ask_map, asks)):
                for price, size in levels:
                    if size > 0:
                        side_map[price] = size
                    else:
                        side_map.pop(price, None)
            if self.history.maxlen:  # history=0 (benchmarks): no copies, no order matching
                self.bids = [list(b) for b in sorted(self._bid_map.items(), key=lambda x: -x[0])]
                self.asks = [list(a) for a in sorted(self._ask_map.items())]
            first = self.update_id + 1 + (1 if self._gap_next else 0)
            self._gap_next = False
            self.update_id = first + ids - 1
            if self.history.maxlen:
                self.history.append((self.update_id, *self.book()))
            event = {
                "e": "depthUpdate",
                "E": int(time.time() * 1000),
                "s": SYMBOL,
                "U": first,
                "u": self.update_id,
                "b": [[_fmt(p), _fmt(s)] for p, s in bids],
                "a": [[_fmt(p), _fmt(s)] for p, s in asks],
            }
            if self._stalled:
                self._held.append(event)
                return None
        return event

    async def _broadcast(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if self.stamp:
                event["T"] = time.time()
            text = json.dumps(event)
            for ws in list(self.subscribed):
                if not ws.closed:
                    await ws.send_str(text)
            self.events_sent += 1

    # ------------------------------------------------------------------ faults
    def gap(self) -> None:
        """The next event's U skips one update id (a lost message)."""
        with self._lock:
            self._gap_next = True

    def drop(self) -> None:
        """Close every websocket connection now (the client must reconnect)."""
        self._run(self._close_all())

    def stall(self, on: bool) -> None:
        """Stop pushing events (the connection stays open); off flushes what was held."""
        with self._lock:
            self._stalled = on
            held, self._held = (self._held, []) if not on else ([], self._held)
        if held:
            self._run(self._broadcast(held))

    def stale_snapshot(self, updates_ago: int) -> None:
        """The next REST depth snapshot is the book `updates_ago` updates before the last
        SUBSCRIBE: every event the client buffered since is newer than it."""
        with self._lock:
            self._stale_by = updates_ago


__all__ = ["BinanceWsLoopback"]
