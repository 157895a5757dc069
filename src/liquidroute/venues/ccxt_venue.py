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

Precision: the executor rounds every child order with `order_precision` (ccxt's
`decimal_to_precision` under the market's own precision mode: DECIMAL_PLACES,
SIGNIFICANT_DIGITS or TICK_SIZE; amounts truncated, limit prices away from the book), and
`place_order` formats them once more with the live exchange's `amount_to_precision` /
`price_to_precision`, refusing to send if that would change the order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
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
    redact,
    register_secret,
)
from liquidroute.model import ChildOrder, DepthSnapshot, Market, Side
from liquidroute.venues.base import OrderUpdate
from liquidroute.venues.credentials import Credentials

T = TypeVar("T")


def supported_venues() -> list[str]:
    """Every exchange id ccxt knows."""
    import ccxt

    return list(ccxt.exchanges)


def _step(value: Any, precision_mode: int) -> float | None:
    """ccxt precision value -> a step size (None when the mode has no fixed step)."""
    from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

    if value is None:
        return None
    if precision_mode == TICK_SIZE:
        return float(value)
    if precision_mode == DECIMAL_PLACES:
        return 10.0 ** -int(value)
    return None  # SIGNIFICANT_DIGITS: the step depends on the number


def _unit(value: Decimal, precision: float, mode: int) -> Decimal:
    """One unit of the last place `value` may hold under `precision` in `mode`."""
    from ccxt.base.decimal_to_precision import DECIMAL_PLACES, TICK_SIZE

    if mode == TICK_SIZE:
        return Decimal(repr(float(precision)))
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(precision))
    # SIGNIFICANT_DIGITS: the place of the last significant digit depends on the number
    lead = value.adjusted() if value else 0
    return Decimal(1).scaleb(lead - int(precision) + 1)


def to_precision(value: float, precision: float | None, mode: int | None, *, up: bool) -> float:
    """`value` on the venue's precision grid with ccxt's `decimal_to_precision`: truncated
    (`up=False`), or the smallest grid value >= `value` (`up=True`).

    `mode` is ccxt's precision mode (None: TICK_SIZE, how offline markets state their
    lot and tick); `precision` None leaves `value` as is. Float noise within 1e-9 of a
    grid value counts as that value (it comes from summing levels, not from the order).
    """
    from ccxt.base.decimal_to_precision import (
        NO_PADDING,
        TICK_SIZE,
        TRUNCATE,
        decimal_to_precision,
    )

    if precision is None or not value:
        return value
    mode = TICK_SIZE if mode is None else int(mode)
    digits: str | int = repr(float(precision)) if mode == TICK_SIZE else int(precision)
    exact = Decimal(repr(float(value)))
    unit = _unit(exact, precision, mode)
    nudged = exact - unit * Decimal("1e-9") if up else exact + unit * Decimal("1e-9")
    grid = Decimal(decimal_to_precision(str(nudged), TRUNCATE, digits, mode, NO_PADDING))
    if up and grid < nudged:
        above = grid + _unit(grid, precision, mode)
        grid = Decimal(decimal_to_precision(str(above), TRUNCATE, digits, mode, NO_PADDING))
    return float(grid)


def order_precision(market: Market, side: Side, amount: float, price: float) -> tuple[float, float]:
    """A child order's (amount, limit price) on the market's precision grid: the amount
    truncated, the limit price rounded away from the book (up for a buy, down for a
    sell), so the order never asks for more than planned nor less than its limit."""
    mode = market.precision_mode
    amount_p = market.amount_precision if mode is not None else market.amount_step
    price_p = market.price_precision if mode is not None else market.price_tick
    return (
        to_precision(amount, amount_p, mode, up=False),
        to_precision(price, price_p, mode, up=side == "buy"),
    )


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
        precision_mode=int(precision_mode),
        amount_precision=_number(precision.get("amount")),
        price_precision=_number(precision.get("price")),
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def rewrite_urls(urls: Any, base_url: str, schemes: tuple[str, ...] = ("http",)) -> Any:
    """Every URL string in a (nested) ccxt `urls['api']` with its host replaced by base_url.

    Only URLs starting with one of `schemes` are rewritten: REST ones by default, the
    websocket ones (`urls['api']['ws']`) with `schemes=("ws",)`.
    """
    if isinstance(urls, dict):
        return {k: rewrite_urls(v, base_url, schemes) for k, v in urls.items()}
    if isinstance(urls, str) and urls.startswith(schemes):
        path = urlsplit(urls).path
        return base_url.rstrip("/") + path
    return urls


def translate(venue: str, exc: Exception, retry_after: float | None = None) -> LiquidrouteError:
    """The one place ccxt exceptions become liquidroute errors (one line, no secrets).

    ccxt's messages hold the request URL, signed query string included, and the venue's
    answer: the text is redacted (`liquidroute.errors.redact`) before it is cut to one line.
    """
    import ccxt

    text = redact(str(exc)).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if isinstance(exc, ccxt.BadSymbol):
        return UnknownSymbolError(venue, f"unknown symbol ({text})")
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return RateLimitedError(venue, f"rate limited ({text})", retry_after=retry_after)
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
        websocket: bool = False,
        ws_url: str | None = None,
    ) -> None:
        """`name` (default: the exchange id) tells two accounts on one exchange apart.

        Where the venue has no IOC (ccxt `features`), an order is sent as a plain limit
        order and whatever rests after `ioc_timeout_s` is cancelled. With `websocket`, the
        client is ccxt.pro's (where ccxt.pro has the exchange) and `ws_url` replaces the
        host of its websocket URLs (`urls['api']['ws']`, paths kept).
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
            module: Any = ccxt_async
            if websocket:
                import ccxt.pro as ccxt_pro

                module = ccxt_pro if exchange_id in ccxt_pro.exchanges else ccxt_async
            exchange = getattr(module, exchange_id)(config)
        for attr in ("apiKey", "secret", "password", "uid", "privateKey"):
            value = getattr(exchange, attr, None)
            if isinstance(value, str):
                register_secret(value)  # however the client got its keys, redact masks them
        if base_url:
            exchange.urls["api"] = rewrite_urls(exchange.urls["api"], base_url)
        api = exchange.urls.get("api")
        if ws_url and isinstance(api, dict) and "ws" in api:
            api["ws"] = rewrite_urls(api["ws"], ws_url, ("ws",))
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
            raise translate(self.name, exc, self._retry_after()) from None

    def _retry_after(self) -> float | None:
        """The Retry-After (seconds) of the venue's last answer, when it sent one."""
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        for key, value in dict(headers).items():
            if str(key).lower() == "retry-after":
                try:
                    return max(float(value), 0.0)
                except (TypeError, ValueError):
                    return None
        return None

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
        fees: dict[str, float] = {}
        listed = raw.get("fees") or ([raw["fee"]] if raw.get("fee") else [])
        for fee in listed:
            if fee and fee.get("cost") is not None:
                asset = str(fee.get("currency") or order.quote)
                fees[asset] = fees.get(asset, 0.0) + float(fee["cost"])
        if not any(f and f.get("cost") is not None for f in listed):
            # order lookups often omit commissions: charge the market's taker rate in quote
            taker = (self.exchange.markets or {}).get(order.symbol, {}).get("taker") or 0.0
            fees = {order.quote: filled * float(average or 0.0) * float(taker)}
        fee_quote = fees.get(order.quote, 0.0) + fees.get(order.base, 0.0) * float(average or 0)
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
            fee_quote,
            str(raw.get("id")) if raw.get("id") is not None else None,
            fees={k: v for k, v in fees.items() if v},
        )

    async def _with_trade_fees(self, order: ChildOrder, raw: dict[str, Any]) -> dict[str, Any]:
        """`raw` with its commissions taken from the order's trades when the lookup gave
        none (Binance's order lookup has no commission; its trades say which asset paid)."""
        import ccxt

        charged = any(f and f.get("cost") is not None for f in raw.get("fees") or [raw.get("fee")])
        if (
            charged
            or not raw.get("filled")
            or not (self.exchange.has or {}).get("fetchOrderTrades")
        ):
            return raw
        try:
            trades = await self.exchange.fetch_order_trades(str(raw.get("id")), order.symbol)
        except ccxt.BaseError:
            return raw  # the lookup's answer stands; the fee is estimated from the taker rate
        fees = [t["fee"] for t in trades if t.get("fee") and t["fee"].get("cost") is not None]
        return raw | {"fees": fees} if fees else raw

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
        amount, price = await self._precise(order)
        raw = await self._call(
            self.exchange.create_order, order.symbol, "limit", order.side, amount, price, params
        )
        update = self._update(order, raw)
        if ioc or update.status != "open":
            return update
        await asyncio.sleep(self.ioc_timeout_s)
        return await self.cancel_order(order) or update

    async def _precise(self, order: ChildOrder) -> tuple[float, float]:
        """The order as ccxt formats it (`amount_to_precision`, `price_to_precision`);
        refused when that is not the planned order (it would buy more or cross the limit)."""
        import ccxt

        await self._load_markets()
        try:
            amount = float(self.exchange.amount_to_precision(order.symbol, order.amount))
            price = float(self.exchange.price_to_precision(order.symbol, order.limit_price))
        except ccxt.BaseError as exc:
            raise translate(self.name, exc) from None
        for name, sent, planned in (
            ("amount", amount, order.amount),
            ("price", price, order.limit_price),
        ):
            if abs(sent - planned) > 1e-9 * abs(planned):
                raise OrderRejectedError(
                    self.name,
                    f"{order.client_id}: {name} {planned!r} is off the venue's precision "
                    f"(it would be sent as {sent!r}); not sent",
                )
        return amount, price

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
            raise translate(self.name, exc, self._retry_after()) from None
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
                return self._update(order, await self._with_trade_fees(order, raw))
            listed = list(await self.exchange.fetch_open_orders(order.symbol))
            sees_closed = bool(has.get("fetchClosedOrders") or has.get("fetchOrders"))
            if has.get("fetchClosedOrders"):
                listed += await self.exchange.fetch_closed_orders(order.symbol)
            elif has.get("fetchOrders"):
                listed += await self.exchange.fetch_orders(order.symbol)
        except ccxt.OrderNotFound:
            return None
        except ccxt.BaseError as exc:
            raise translate(self.name, exc, self._retry_after()) from None
        for raw in listed:
            if raw.get("clientOrderId") == order.client_id:
                return self._update(order, await self._with_trade_fees(order, raw))
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
    websocket: bool = False,
) -> CcxtVenue:
    """A venue from a CLI spec: `okx`, or `NAME=EXCHANGE_ID` for a second account.

    Environment, per venue NAME: LIQUIDROUTE_<NAME>_URL points the client at another base
    URL (testnet, proxy, loopback), LIQUIDROUTE_<NAME>_WS_URL does the same for its
    websocket URLs (with `websocket`: a ccxt.pro client); LIQUIDROUTE_<NAME>_OPTIONS is
    JSON merged into the ccxt options (e.g. {"fetchMarkets": {"types": ["spot"]}}).
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
        websocket=websocket,
        ws_url=os.environ.get(prefix + "WS_URL") or None,
    )
