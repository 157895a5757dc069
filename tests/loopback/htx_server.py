"""A sliver of HTX's spot REST dialect, for tests: HTX signs in the QUERY STRING.

Every private request carries `AccessKeyId=<key>&SignatureMethod=...&Timestamp=...&
Signature=...` in its URL, so an error message that quotes the URL quotes the key. This
loopback serves what the real `ccxt.htx` client needs to load markets and read a book
(`/v1/common/symbols`, `/v2/reference/currencies`, `/market/depth`) and answers every
signed request as a careless gateway would: HTTP 500 with the full signed URL in the body.
It records the API keys and signatures it was sent (`access_keys`, `signatures`).

    with HtxLoopback(asks=[[60000.0, 1.0]]) as ex: ...   # lifecycle of BinanceLoopback
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.loopback.binance_server import BinanceLoopback

HTX_KEY = "AKID-htx-0123456789"
HTX_SECRET = "htx-secret-9876543210"
OPTIONS = {
    "fetchMarkets": {"types": {"spot": True, "linear": False, "inverse": False}},
}


class HtxLoopback(BinanceLoopback):
    """An HTX-dialect exchange on 127.0.0.1 whose private endpoints all fail loudly."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.access_keys: list[str] = []

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        params = dict(parse_qsl(request.query_string))
        with self._lock:
            self.requests.append((request.method, request.path))
        if "Signature" in params:
            self.signatures.append(params["Signature"])
            self.access_keys.append(params.get("AccessKeyId", ""))
            return web.Response(
                status=500, text=f"internal error handling {request.method} {request.url}"
            )
        if request.path == "/v1/common/symbols":
            return web.json_response({"status": "ok", "data": [_SYMBOL]})
        if request.path == "/v2/reference/currencies":
            return web.json_response({"code": 200, "data": []})
        if request.path == "/market/depth":
            with self._lock:
                bids, asks = [list(b) for b in self.bids], [list(a) for a in self.asks]
            now = int(time.time() * 1000)
            return web.json_response(
                {
                    "ch": "market.btcusdt.depth.step0",
                    "status": "ok",
                    "ts": now,
                    "tick": {"bids": bids, "asks": asks, "ts": now, "version": 1},
                }
            )
        return web.json_response({"status": "error", "err-msg": "not found"}, status=404)


_SYMBOL = {
    "base-currency": "btc",
    "quote-currency": "usdt",
    "price-precision": 2,
    "amount-precision": 6,
    "symbol-partition": "main",
    "symbol": "btcusdt",
    "state": "online",
    "value-precision": 8,
    "min-order-amt": 0.0001,
    "max-order-amt": 1000,
    "min-order-value": 5,
    "limit-order-min-order-amt": 0.0001,
    "limit-order-max-order-amt": 1000,
    "sell-market-min-order-amt": 0.0001,
    "api-trading": "enabled",
}

__all__ = ["HTX_KEY", "HTX_SECRET", "OPTIONS", "HtxLoopback"]
