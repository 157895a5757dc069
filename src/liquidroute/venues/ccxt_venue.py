"""Any ccxt exchange as a venue: books, markets, and (with credentials) IOC orders.

This is the only module that imports ccxt for live use and the ONLY place ccxt exceptions
are translated into liquidroute errors (`translate`). ccxt is imported lazily so that
`import liquidroute` and `liquidroute --help` stay fast.

    venue = CcxtVenue("okx")                       # public data, no keys
    book = await venue.snapshot("BTC/USDT", 100)
    market = await venue.market("BTC/USDT")        # fee, lot, tick, limits
    await venue.close()

Markets are loaded once per venue (concurrent first calls wait on one load); the
exchange's rate limit is respected (`enableRateLimit`). With `base_url`, every URL in
`exchange.urls['api']` is rewritten to it (paths kept): for testnets, proxies and the
loopback test exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from liquidroute.errors import (
    AuthenticationError,
    LiquidrouteError,
    MalformedBookError,
    OrderRejectedError,
    RateLimitedError,
    UnknownSymbolError,
    UnknownVenueError,
    VenueError,
    VenueUnavailableError,
)
from liquidroute.model import ChildOrder, DepthSnapshot, Market
from liquidroute.venues.base import OrderUpdate
from liquidroute.venues.credentials import Credentials

T = TypeVar("T")

# ccxt precision modes (ccxt.base.decimal_to_precision)
DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE = 2, 3, 4


def supported_venues() -> list[str]:
    """Every exchange id ccxt knows."""
    import ccxt

    return list(ccxt.exchanges)


def _step(value: Any, precision_mode: int) -> float | None:
    """ccxt precision value -> a step size (None when the mode has no fixed step)."""
    if value is None:
        return None
    if precision_mode == TICK_SIZE:
        return float(value)
    if precision_mode == DECIMAL_PLACES:
        return 10.0 ** -int(value)
    return None  # SIGNIFICANT_DIGITS: the step depends on the number


def _limit(market: dict[str, Any], group: str, bound: str) -> float | None:
    value = (market.get("limits") or {}).get(group, {}).get(bound)
    return float(value) if value else None


def market_from_ccxt(venue: str, market: dict[str, Any], precision_mode: int) -> Market:
    """A `Market` from a ccxt unified market (fee, lot, tick, amount and cost limits)."""
    precision = market.get("precision") or {}
    taker = market.get("taker")
    return Market(
        venue=venue,
        symbol=market["symbol"],
        taker_fee=float(taker) if taker is not None else 0.0,
        amount_step=_step(precision.get("amount"), precision_mode),
        price_tick=_step(precision.get("price"), precision_mode),
        min_amount=_limit(market, "amount", "min"),
        max_amount=_limit(market, "amount", "max"),
        min_notional=_limit(market, "cost", "min"),
        base=market.get("base") or "",
        quote=market.get("quote") or "",
    )


def rewrite_urls(urls: Any, base_url: str) -> Any:
    """Every URL string in a (nested) ccxt `urls['api']` with its host replaced by base_url."""
    if isinstance(urls, dict):
        return {k: rewrite_urls(v, base_url) for k, v in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        path = urlsplit(urls).path
        return base_url.rstrip("/") + path
    return urls


def translate(venue: str, exc: Exception) -> LiquidrouteError:
    """The one place ccxt exceptions become liquidroute errors (one line, no secrets)."""
    import ccxt

    text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if isinstance(exc, ccxt.BadSymbol):
        return UnknownSymbolError(venue, f"unknown symbol ({text})")
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return RateLimitedError(venue, f"rate limited ({text})")
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return AuthenticationError(venue, f"credentials refused ({type(exc).__name__})")
    if isinstance(exc, ccxt.InsufficientFunds | ccxt.InvalidOrder):
        return OrderRejectedError(venue, f"order rejected: {text}")
    if isinstance(exc, ccxt.NetworkError):
        return VenueUnavailableError(venue, f"unreachable: {type(exc).__name__} {text}")
    return VenueError(venue, f"{type(exc).__name__}: {text}")


class CcxtVenue:
    """A live venue through ccxt's async client."""

    live = True

    def __init__(
        self,
        exchange_id: str,
        *,
        exchange: Any | None = None,
        credentials: Credentials | None = None,
        options: dict[str, Any] | None = None,
        timeout_ms: int = 10_000,
        base_url: str | None = None,
        name: str | None = None,
        ioc_timeout_s: float = 2.0,
    ) -> None:
        """`name` (default: the exchange id) tells two accounts on one exchange apart.

        Where the venue has no IOC (ccxt `features`), an order is sent as a plain limit
        order and whatever rests after `ioc_timeout_s` is cancelled.
        """
        import ccxt.async_support as ccxt_async

        if exchange is None:
            if exchange_id not in ccxt_async.exchanges:
                raise UnknownVenueError(
                    exchange_id, "not a ccxt exchange id; run `liquidroute venues` to list them"
                )
            config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
            if options:
                config["options"] = options
            if credentials is not None:
                config.update(credentials.ccxt_config())
            exchange = getattr(ccxt_async, exchange_id)(config)
        if base_url:
            exchange.urls["api"] = rewrite_urls(exchange.urls["api"], base_url)
        self.name = name or exchange_id
        self.exchange = exchange
        self.ioc_timeout_s = ioc_timeout_s
        self._markets_loaded = False
        self._lock = asyncio.Lock()

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        import ccxt

        try:
            return await fn(*args, **kwargs)
        except ccxt.BaseError as exc:
            raise translate(self.name, exc) from None

    async def _load_markets(self) -> None:
        async with self._lock:
            if not self._markets_loaded:
                await self._call(self.exchange.load_markets)
                self._markets_loaded = True

    async def _market_dict(self, symbol: str) -> dict[str, Any]:
        await self._load_markets()
        market = self.exchange.markets.get(symbol)
        if market is None:
            base = symbol.split("/")[0]
            similar = sorted(s for s in self.exchange.markets if s.startswith(base + "/"))[:5]
            hint = f"; similar: {', '.join(similar)}" if similar else ""
            raise UnknownSymbolError(self.name, f"does not list {symbol}{hint}")
        return dict(market)

    async def symbols(self) -> list[str]:
        """Every symbol the venue lists (markets loaded once)."""
        await self._load_markets()
        return list(self.exchange.symbols or [])

    async def market(self, symbol: str) -> Market:
        raw = await self._market_dict(symbol)
        return market_from_ccxt(self.name, raw, int(self.exchange.precisionMode))

    async def snapshot(self, symbol: str, depth: int | None = None) -> DepthSnapshot:
        await self._market_dict(symbol)
        book = await self._call(self.exchange.fetch_order_book, symbol, depth)
        received = time.time() * 1e3
        if not book or not (book.get("bids") or book.get("asks")):
            raise MalformedBookError(f"{self.name} {symbol}: empty or unreadable order book")
        return DepthSnapshot(
            self.name,
            symbol,
            [level[:2] for level in book.get("bids") or []],
            [level[:2] for level in book.get("asks") or []],
            timestamp=book.get("timestamp") or received,
            local_timestamp=received,
        )

    def _update(self, order: ChildOrder, raw: dict[str, Any]) -> OrderUpdate:
        status = raw.get("status")
        filled = float(raw.get("filled") or 0.0)
        average = raw.get("average")
        if average is None and filled:
            cost = raw.get("cost")
            average = float(cost) / filled if cost else None
        fee = raw.get("fee") or {}
        if fee.get("cost") is not None:
            fee_cost = float(fee["cost"])
        else:  # order lookups often omit commissions: charge the market's taker rate
            taker = (self.exchange.markets or {}).get(order.symbol, {}).get("taker") or 0.0
            fee_cost = filled * float(average or 0.0) * float(taker)
        normal: Any
        if status == "closed" or (filled and filled >= order.amount * (1 - 1e-12)):
            normal = "filled"
        elif status in ("canceled", "cancelled", "expired"):
            normal = "cancelled"
        elif status == "rejected":
            normal = "rejected"
        else:
            normal = "open"
        return OrderUpdate(
            order.client_id,
            normal,
            filled,
            float(average) if average is not None else None,
            fee_cost,
            str(raw.get("id")) if raw.get("id") is not None else None,
        )

    def supports_ioc(self) -> bool:
        """ccxt's `features` say whether spot orders take timeInForce=IOC (assume yes)."""
        features = getattr(self.exchange, "features", None) or {}
        tif = ((features.get("spot") or {}).get("createOrder") or {}).get("timeInForce") or {}
        return bool(tif.get("IOC", True))

    async def place_order(self, order: ChildOrder) -> OrderUpdate:
        """An IOC limit order carrying the deterministic client order id; on a venue
        without IOC, a limit order whose rest is cancelled after `ioc_timeout_s`."""
        ioc = self.supports_ioc()
        params = {"clientOrderId": order.client_id} | ({"timeInForce": "IOC"} if ioc else {})
        raw = await self._call(
            self.exchange.create_order,
            order.symbol,
            "limit",
            order.side,
            order.amount,
            order.limit_price,
            params,
        )
        update = self._update(order, raw)
        if ioc or update.status != "open":
            return update
        await asyncio.sleep(self.ioc_timeout_s)
        return await self.cancel_order(order) or update

    async def cancel_order(self, order: ChildOrder) -> OrderUpdate | None:
        """Cancel what rests of `order` (by client id) and return its final state."""
        import ccxt

        try:
            await self.exchange.cancel_order(
                order.venue_order_id or "", order.symbol, {"clientOrderId": order.client_id}
            )
        except ccxt.OrderNotFound:
            pass  # filled or already cancelled: the lookup below says which
        except ccxt.BaseError as exc:
            raise translate(self.name, exc) from None
        return await self.fetch_order(order)

    async def fetch_order(self, order: ChildOrder) -> OrderUpdate | None:
        """Look the order up by client id; None when the venue never saw it.

        Venues that cannot fetch one order are asked for their open and closed orders and
        the client id is matched there; when the closed ones cannot be listed either, the
        fate stays unknown (VenueError) rather than guessed.
        """
        import ccxt

        has = self.exchange.has or {}
        try:
            if has.get("fetchOrder", True):
                raw = await self.exchange.fetch_order(
                    order.venue_order_id or "", order.symbol, {"clientOrderId": order.client_id}
                )
                return self._update(order, raw)
            listed = list(await self.exchange.fetch_open_orders(order.symbol))
            sees_closed = bool(has.get("fetchClosedOrders") or has.get("fetchOrders"))
            if has.get("fetchClosedOrders"):
                listed += await self.exchange.fetch_closed_orders(order.symbol)
            elif has.get("fetchOrders"):
                listed += await self.exchange.fetch_orders(order.symbol)
        except ccxt.OrderNotFound:
            return None
        except ccxt.BaseError as exc:
            raise translate(self.name, exc) from None
        for raw in listed:
            if raw.get("clientOrderId") == order.client_id:
                return self._update(order, raw)
        if not sees_closed:
            raise VenueError(self.name, f"cannot look up {order.client_id}: check it by hand")
        return None

    async def close(self) -> None:
        try:
            await self.exchange.close()
        except Exception:  # closing twice or a dead session: nothing left to release
            return

    async def __aenter__(self) -> CcxtVenue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def env_key(name: str) -> str:
    return "LIQUIDROUTE_" + name.upper().replace("-", "_") + "_"


def venue_from_spec(
    spec: str,
    *,
    credentials: Credentials | None = None,
    timeout_ms: int = 10_000,
    ioc_timeout_s: float = 2.0,
) -> CcxtVenue:
    """A venue from a CLI spec: `okx`, or `NAME=EXCHANGE_ID` for a second account.

    Environment, per venue NAME: LIQUIDROUTE_<NAME>_URL points the client at another base
    URL (testnet, proxy, loopback); LIQUIDROUTE_<NAME>_OPTIONS is JSON merged into the
    ccxt options (e.g. {"fetchMarkets": {"types": ["spot"]}}).
    """
    import json
    import os

    from liquidroute.errors import InvalidInputError

    name, _, exchange_id = spec.partition("=")
    name, exchange_id = name.strip(), (exchange_id or name).strip()
    prefix = env_key(name)
    options = None
    if os.environ.get(prefix + "OPTIONS"):
        try:
            options = json.loads(os.environ[prefix + "OPTIONS"])
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{prefix}OPTIONS is not valid JSON ({exc})") from None
    return CcxtVenue(
        exchange_id,
        name=name,
        credentials=credentials,
        options=options,
        timeout_ms=timeout_ms,
        base_url=os.environ.get(prefix + "URL") or None,
        ioc_timeout_s=ioc_timeout_s,
    )


def static_taker_fee(venue: str) -> float:
    """The taker fee from ccxt's static fee table for `venue` (0.001 when it has none)."""
    import ccxt

    exchange = getattr(ccxt, venue)()
    fee = exchange.fees.get("trading", {}).get("taker")
    return float(fee) if fee is not None else 0.001
