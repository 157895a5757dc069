"""A small exchange that speaks Binance spot API v3's REST dialect, for tests.

It runs on 127.0.0.1 in a background thread (its own event loop), so async tests, sync
tests and subprocesses can all talk to it with the real `ccxt.binance` client:

    with BinanceLoopback(book=..., balances={"USDT": 1e6}) as ex:
        client = ccxt.async_support.binance({...}); client.urls["api"] = ex.api_urls(client)

Endpoints: ping, time, exchangeInfo, depth (public); order POST/GET (IOC limit orders
with newClientOrderId, lookup by origClientOrderId), openOrders, allOrders, myTrades,
account (signed with HMAC-SHA256 as Binance does), the margin pair lists ccxt asks for at
load time.
Matching walks the loopback's own book (fills remove liquidity) and charges the taker
fee. Faults are queued per path and consumed one per request:

    ex.fail("/api/v3/order", "429")      # HTTP 429 + Retry-After
    ex.fail("/api/v3/order", "500")      # server error
    ex.fail("/api/v3/order", "accept_then_hang")  # the order is placed; no answer
    ex.fail("/api/v3/order", "drop")     # connection closed, order NOT placed
    ex.fail("/api/v3/order", "insufficient_balance" | "filter_failure")
    ex.fail("/api/v3/order", "partial:0.5")       # fill at most half
    ex.fail("/api/v3/depth", "crossed" | "garbage" | "hang")
    ex.fail("/api/v3/order", "echo500")  # 500 whose body echoes the signed request + key
    ex.fail("POST /api/v3/order", "500")  # this method only (lookups unaffected)

Commissions are charged as Binance does: a buy pays its commission in the base asset
(BTC), a sell in the quote asset (USDT); `commission="quote"` charges every fill in quote,
`commission="bnb"` in BNB at `bnb_price` USDT. Balances move accordingly, so a test can
check that the executor's per-asset totals equal what the exchange booked.

Every request is logged (`requests`), every order kept (`orders`, by client id),
`posted_ids` lists the client id of every order POST (faulted or not), and
`order_posts` counts the POSTs that reached the matching engine.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections import defaultdict, deque
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

API_KEY = "loopback-key"
SECRET = "loopback-secret"
SYMBOL = "BTCUSDT"


def _fmt(x: float) -> str:
    return f"{x:.8f}".rstrip("0").rstrip(".") or "0"


class BinanceLoopback:
    """One exchange instance on a free loopback port."""

    def __init__(
        self,
        *,
        bids: list[list[float]] | None = None,
        asks: list[list[float]] | None = None,
        balances: dict[str, float] | None = None,
        fee: float = 0.001,
        tick: float = 0.01,
        step: float = 0.00001,
        min_qty: float = 0.00001,
        min_notional: float = 5.0,
        hang_s: float = 3.0,
        commission: str = "base",
        bnb_price: float = 600.0,
    ) -> None:
        self.bids = [list(map(float, b)) for b in (bids or [[60000.0, 1.0], [59990.0, 5.0]])]
        self.asks = [list(map(float, a)) for a in (asks or [[60010.0, 1.0], [60020.0, 5.0]])]
        self.balances = dict(balances or {"USDT": 10_000_000.0, "BTC": 1000.0})
        self.fee, self.tick, self.step = fee, tick, step
        self.min_qty, self.min_notional = min_qty, min_notional
        self.hang_s = hang_s
        self.commission, self.bnb_price = commission, bnb_price
        self.signatures: list[str] = []  # every signature the server was sent
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.requests: list[tuple[str, str]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.order_posts = 0
        self.posted_ids: list[str] = []  # newClientOrderId of every POST /api/v3/order
        self._next_id = 1000
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> BinanceLoopback:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("loopback exchange did not start")
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> BinanceLoopback:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, path: str, fault: str, times: int = 1) -> None:
        for _ in range(times):
            self.faults[path].append(fault)

    def count(self, path: str, method: str | None = None) -> int:
        return sum(1 for m, p in self.requests if p == path and (method is None or m == method))

    # ------------------------------------------------------------------ plumbing
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        body = await request.text()
        params = dict(parse_qsl(request.query_string)) | dict(parse_qsl(body))
        with self._lock:
            self.requests.append((request.method, path))
            if request.method == "POST" and path == "/api/v3/order":
                self.posted_ids.append(params.get("newClientOrderId", ""))
            keyed = f"{request.method} {path}"  # "POST /api/v3/order": that method only
            queue = self.faults[keyed] if self.faults[keyed] else self.faults[path]
            fault = queue.popleft() if queue else None
        if fault == "429":
            return web.json_response(
                {"code": -1003, "msg": "Too many requests."},
                status=429,
                headers={"Retry-After": "1"},
            )
        if fault == "500":
            return web.Response(status=500, text="internal error")
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(self.hang_s)
            return web.Response(status=500)
        if fault == "hang":
            await asyncio.sleep(self.hang_s)
        if fault == "echo500":  # a careless gateway: the signed request comes back in the error
            echoed = f"{request.method} {request.url} body={body} X-MBX-APIKEY=" + str(
                request.headers.get("X-MBX-APIKEY")
            )
            return web.Response(status=500, text=f"internal error handling {echoed}")
        route = {
            ("GET", "/api/v3/ping"): self._ping,
            ("GET", "/api/v3/time"): self._time,
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
            ("GET", "/api/v3/depth"): self._depth,
            ("POST", "/api/v3/order"): self._post_order,
            ("GET", "/api/v3/order"): self._get_order,
            ("DELETE", "/api/v3/order"): self._cancel_order,
            ("GET", "/api/v3/openOrders"): self._open_orders,
            ("GET", "/api/v3/allOrders"): self._all_orders,
            ("GET", "/api/v3/myTrades"): self._my_trades,
            ("GET", "/api/v3/account"): self._account,
            ("GET", "/sapi/v1/margin/allPairs"): self._empty_list,
            ("GET", "/sapi/v1/margin/isolated/allPairs"): self._empty_list,
        }.get((request.method, path))
        if route is None:
            return web.json_response({"code": -1000, "msg": f"unknown path {path}"}, status=404)
        signed = (
            "/api/v3/order",
            "/api/v3/openOrders",
            "/api/v3/allOrders",
            "/api/v3/account",
            "/api/v3/myTrades",
        )
        if path.startswith((*signed, "/sapi")):
            problem = self._check_signature(request, body)
            if problem:
                return web.json_response({"code": -1022, "msg": problem}, status=401)
        result = await route(params, fault)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result)

    def _check_signature(self, request: web.Request, body: str) -> str:
        if request.headers.get("X-MBX-APIKEY") != API_KEY:
            return "API-key format invalid."
        payload = "&".join(part for part in (request.query_string, body) if part)
        unsigned, _, signature = payload.rpartition("&signature=")
        self.signatures.append(signature)
        expected = hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
        if signature != expected:
            return "Signature for this request is not valid."
        return ""

    # ------------------------------------------------------------------ public
    async def _ping(self, params: dict[str, str], fault: str | None) -> Any:
        return {}

    async def _time(self, params: dict[str, str], fault: str | None) -> Any:
        return {"serverTime": int(time.time() * 1000)}

    async def _empty_list(self, params: dict[str, str], fault: str | None) -> Any:
        return []

    async def _exchange_info(self, params: dict[str, str], fault: str | None) -> Any:
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [
                {
                    "symbol": SYMBOL,
                    "status": "TRADING",
                    "baseAsset": "BTC",
                    "baseAssetPrecision": 8,
                    "quoteAsset": "USDT",
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": _fmt(self.tick),
                            "maxPrice": "1000000.00000000",
                            "tickSize": _fmt(self.tick),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": _fmt(self.min_qty),
                            "maxQty": "9000.00000000",
                            "stepSize": _fmt(self.step),
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": _fmt(self.min_notional),
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": ["SPOT"],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
                }
            ],
        }

    async def _depth(self, params: dict[str, str], fault: str | None) -> Any:
        limit = int(params.get("limit", 100))
        with self._lock:
            bids, asks = self.bids[:limit], self.asks[:limit]
        if fault == "crossed":
            bids = [[asks[0][0] + 10, 1.0], *bids]
        if fault == "garbage":
            return web.Response(text="<html>gateway</html>", content_type="text/html", status=200)
        return {
            "lastUpdateId": 1,
            "bids": [[_fmt(p), _fmt(s)] for p, s in bids],
            "asks": [[_fmt(p), _fmt(s)] for p, s in asks],
        }

    # ------------------------------------------------------------------ trading
    def _error(self, code: int, msg: str, status: int = 400) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status)

    async def _post_order(self, params: dict[str, str], fault: str | None) -> Any:
        with self._lock:
            self.order_posts += 1
        cid = params.get("newClientOrderId") or f"auto{self._next_id}"
        if cid in self.orders:
            return self._error(-2010, "Duplicate order sent.")
        if fault == "insufficient_balance":
            return self._error(-2010, "Account has insufficient balance for requested action.")
        if fault == "filter_failure":
            return self._error(-1013, "Filter failure: LOT_SIZE")
        side = params["side"].lower()
        qty, price = float(params["quantity"]), float(params["price"])
        n = qty / self.step
        if abs(n - round(n)) > 1e-9 or qty < self.min_qty:
            return self._error(-1013, "Filter failure: LOT_SIZE")
        if abs(price / self.tick - round(price / self.tick)) > 1e-9:
            return self._error(-1013, "Filter failure: PRICE_FILTER")
        if qty * price < self.min_notional:
            return self._error(-1013, "Filter failure: NOTIONAL")
        cap = qty
        if fault and fault.startswith("partial:"):
            cap = qty * float(fault.split(":")[1])
        order = self._match(cid, side, qty, price, cap, params.get("timeInForce", "GTC"))
        if isinstance(order, web.Response):
            return order
        if fault == "accept_then_hang":
            await asyncio.sleep(self.hang_s)
        return self._order_json(order, full=True)

    def _match(
        self, cid: str, side: str, qty: float, price: float, cap: float, tif: str
    ) -> dict[str, Any] | web.Response:
        with self._lock:
            book = self.asks if side == "buy" else self.bids
            fills, left = [], cap
            for level_price, level_size in book:
                crosses = level_price <= price if side == "buy" else level_price >= price
                if left <= 1e-12 or not crosses:
                    break
                take = min(level_size, left)
                fills.append((level_price, take))
                left -= take
            filled = sum(q for _, q in fills)
            quote = sum(p * q for p, q in fills)
            base_ccy, quote_ccy = "BTC", "USDT"
            asset = {"bnb": "BNB", "quote": quote_ccy}.get(self.commission)
            asset = asset or (base_ccy if side == "buy" else quote_ccy)
            price_of = {base_ccy: None, quote_ccy: 1.0, "BNB": self.bnb_price}
            short = (
                self.balances.get(quote_ccy, 0)
                < quote * (1 + (self.fee if asset == quote_ccy else 0.0))
                if side == "buy"
                else self.balances.get(base_ccy, 0) < filled
            )
            if short:
                return self._error(-2010, "Account has insufficient balance for requested action.")
            for level, (_, take) in zip(book, fills, strict=False):
                level[1] -= take
            book[:] = [lv for lv in book if lv[1] > 1e-12]
            # per fill: commission = fee rate x what the fill is worth, in `asset`
            commissions = [
                q * self.fee if asset == base_ccy else p * q * self.fee / (price_of[asset] or 1.0)
                for p, q in fills
            ]
            if side == "buy":
                self.balances[quote_ccy] -= quote
                self.balances[base_ccy] = self.balances.get(base_ccy, 0) + filled
            else:
                self.balances[base_ccy] -= filled
                self.balances[quote_ccy] = self.balances.get(quote_ccy, 0) + quote
            self.balances[asset] = self.balances.get(asset, 0) - sum(commissions)
            self._next_id += 1
            status = "FILLED" if filled >= qty - 1e-12 else ("EXPIRED" if tif == "IOC" else "NEW")
            if status == "NEW" and filled > 0:
                status = "PARTIALLY_FILLED"
            order = {
                "orderId": self._next_id,
                "clientOrderId": cid,
                "side": side.upper(),
                "price": price,
                "origQty": qty,
                "executedQty": filled,
                "cummulativeQuoteQty": quote,
                "status": status,
                "timeInForce": tif,
                "fills": [(p, q, c) for (p, q), c in zip(fills, commissions, strict=True)],
                "commissionAsset": asset,
                "time": int(time.time() * 1000),
            }
            self.orders[cid] = order
            return order

    def _order_json(self, order: dict[str, Any], full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbol": SYMBOL,
            "orderId": order["orderId"],
            "orderListId": -1,
            "clientOrderId": order["clientOrderId"],
            "price": _fmt(order["price"]),
            "origQty": _fmt(order["origQty"]),
            "executedQty": _fmt(order["executedQty"]),
            "cummulativeQuoteQty": _fmt(order["cummulativeQuoteQty"]),
            "status": order["status"],
            "timeInForce": order["timeInForce"],
            "type": "LIMIT",
            "side": order["side"],
            "time": order["time"],
            "updateTime": order["time"],
            "transactTime": order["time"],
            "workingTime": order["time"],
            "selfTradePreventionMode": "NONE",
        }
        if full:
            out["fills"] = [
                {
                    "price": _fmt(p),
                    "qty": _fmt(q),
                    "commission": f"{c:.12f}",
                    "commissionAsset": order["commissionAsset"],
                    "tradeId": 1,
                }
                for p, q, c in order["fills"]
            ]
        return out

    async def _get_order(self, params: dict[str, str], fault: str | None) -> Any:
        cid = params.get("origClientOrderId")
        order = self.orders.get(cid or "")
        if order is None:
            return self._error(-2013, "Order does not exist.")
        return self._order_json(order)

    async def _cancel_order(self, params: dict[str, str], fault: str | None) -> Any:
        with self._lock:
            order = self.orders.get(params.get("origClientOrderId") or "")
            if order is None or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                return self._error(-2011, "Unknown order sent.")
            order["status"] = "CANCELED"
        return self._order_json(order)

    async def _open_orders(self, params: dict[str, str], fault: str | None) -> Any:
        return [self._order_json(o) for o in self.orders.values() if o["status"] == "NEW"]

    async def _all_orders(self, params: dict[str, str], fault: str | None) -> Any:
        return [self._order_json(o) for o in self.orders.values()]

    async def _my_trades(self, params: dict[str, str], fault: str | None) -> Any:
        """The account's trades (one per fill), of one order when `orderId` is given."""
        wanted = params.get("orderId")
        out = []
        for o in self.orders.values():
            if wanted and str(o["orderId"]) != wanted:
                continue
            for i, (p, q, c) in enumerate(o["fills"]):
                out.append(
                    {
                        "symbol": SYMBOL,
                        "id": o["orderId"] * 100 + i,
                        "orderId": o["orderId"],
                        "orderListId": -1,
                        "price": _fmt(p),
                        "qty": _fmt(q),
                        "quoteQty": _fmt(p * q),
                        "commission": f"{c:.12f}",
                        "commissionAsset": o["commissionAsset"],
                        "time": o["time"],
                        "isBuyer": o["side"] == "BUY",
                        "isMaker": False,
                        "isBestMatch": True,
                    }
                )
        return out

    async def _account(self, params: dict[str, str], fault: str | None) -> Any:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": _fmt(v), "locked": "0"} for a, v in self.balances.items()
            ],
            "permissions": ["SPOT"],
        }


def api_urls(client: Any, base_url: str) -> dict[str, Any]:
    """The client's urls['api'] with every host replaced by the loopback (paths kept)."""
    from liquidroute.venues.ccxt_venue import rewrite_urls

    return dict(rewrite_urls(client.urls["api"], base_url))


def client_options() -> dict[str, Any]:
    return {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}


__all__ = ["API_KEY", "SECRET", "BinanceLoopback", "api_urls", "client_options"]
