"""The wire format of the service, as pydantic models (OpenAPI documents exactly these).

Requests: `RouteParams` are GET /route's query parameters; `RouteBody` is POST /route's
JSON body, the same fields by the same names, where `bridges`/`exchanges` may also be JSON
lists and `balances` a JSON object. Responses: `RouteResult` (with `RouteHop` and
`RouteLeg`) in the shape ccxt's `OrderRouter` client reads, `ErrorBody` for every non-2xx
answer, and the small status bodies of /health, /ready, /version, /symbols,
/exchanges/status and /orderbook.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Strategy = Literal["split_optimal", "split_capped", "best_single"]
STRATEGIES: tuple[str, ...] = ("split_optimal", "split_capped", "best_single")
ASSET = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
Asset = Annotated[str, Field(pattern=ASSET, description="An asset code, e.g. USDT")]
Amount = Annotated[float, Field(gt=0, lt=1e15, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, lt=1e15, allow_inf_nan=False)]
# an asset amount, or {asset: amount} for one venue
Wallet = dict[str, NonNegative | dict[str, NonNegative]]
_NUMBER = r"[0-9]{1,20}(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?"  # finite as a float
_ENTRY = rf"([A-Za-z0-9_-]+\.)?[A-Za-z0-9_-]+:{_NUMBER}"
BALANCE_ENTRY = Annotated[str, Field(pattern=rf"^{_ENTRY}$")]
BALANCES_TEXT = Annotated[
    str,
    Field(
        pattern=rf"^({_ENTRY}(,{_ENTRY}){{0,63}})?$",
        description="[exchangeId.]ASSET:amount,... e.g. binance.USDT:1000,okx.USDT:500 "
        "(a bare ASSET:amount is held on every venue); at most 64 entries",
    ),
]


class _RouteFields(BaseModel):
    """The parameters GET and POST share (names as ccxt's client sends them)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Asset = Field(alias="from", description="Asset spent, e.g. USDT")
    to: Asset = Field(description="Asset acquired, e.g. BTC")
    amountIn: Amount | None = Field(  # noqa: N815
        None, description="Exact amount of `from` to spend (give this or amountOut)"
    )
    amountOut: Amount | None = Field(  # noqa: N815
        None, description="Exact amount of `to` to receive (give this or amountIn)"
    )
    strategy: Strategy = Field(
        "split_optimal",
        description="split_optimal: every venue; split_capped: at most maxVenues venues per "
        "hop; best_single: one venue per hop",
    )
    maxVenues: int | None = Field(  # noqa: N815
        None, ge=1, le=64, description="Venues per hop for strategy=split_capped"
    )
    balanceMode: Literal["cap", "require"] = Field(  # noqa: N815
        "cap",
        description="cap: a venue spends at most what you hold there; require: refuse "
        "when the holdings cannot pay the whole amountIn",
    )
    includeQuotes: bool = Field(  # noqa: N815
        False, description="Add `quotes`: each hop's input on each venue alone"
    )
    includeFees: bool = Field(True, description="Rank on fee-adjusted prices")  # noqa: N815
    certified: bool = Field(False, description="Accepted; liquidroute does not rate venues")
    requireFullFill: bool = Field(  # noqa: N815
        False, description="Answer unroutable instead of a partial fill"
    )
    hopPenaltyBps: NonNegative = Field(  # noqa: N815
        0.0, description="How much better (bps per extra hop) a bridged route must be"
    )
    minLegNotional: NonNegative = Field(  # noqa: N815
        0.0, description="No leg below this notional (quote currency of its market)"
    )
    requestId: str | None = Field(  # noqa: N815
        None, max_length=200, description="Audit id echoed back (else x-request-id)"
    )


class RouteParams(_RouteFields):
    """GET /route query parameters; lists are comma-separated."""

    bridges: str | None = Field(
        None,
        description="Comma-separated assets allowed in between; empty = direct markets only; "
        "absent = any asset",
    )
    exchanges: str | None = Field(None, description="Comma-separated venue allowlist")
    balances: BALANCES_TEXT | None = Field(None, description="What you hold")


EXACTLY_ONE_AMOUNT: dict[str, Any] = {
    "oneOf": [
        {"required": [have], "not": {"required": [other]}, "properties": {have: {"type": "number"}}}
        for have, other in (("amountIn", "amountOut"), ("amountOut", "amountIn"))
    ]
}


def _whole(value: Any) -> Any:
    """JSON Schema's integer includes 46.0: accept a float that is a whole number."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class RouteBody(_RouteFields):
    """POST /route JSON body: the GET parameters, by the same names (exactly one amount);
    JSON types are strict (a number is a JSON number, a flag true or false)."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, strict=True, json_schema_extra=EXACTLY_ONE_AMOUNT
    )

    maxVenues: Annotated[int, Field(ge=1, le=64), BeforeValidator(_whole)] | None = Field(  # noqa: N815
        None, description="Venues per hop for strategy=split_capped"
    )
    bridges: str | list[Asset] | None = Field(
        None, description="Assets allowed in between (list or comma-separated)"
    )
    exchanges: str | list[str] | None = Field(None, description="Venue allowlist")
    balances: (
        BALANCES_TEXT | Annotated[list[BALANCE_ENTRY], Field(max_length=64)] | Wallet | None
    ) = Field(
        None,
        description="What you hold: ccxt's string form '[exchangeId.]ASSET:amount,...', a "
        'list of such entries, a per-venue wallet {"binance": {"USDT": 1000}} or a flat '
        'wallet {"USDT": 1000} (held on every venue)',
    )


class RouteLeg(BaseModel):
    """One venue's part of a hop; `amount` is in base units on both sides."""

    exchangeId: str  # noqa: N815
    symbol: str
    amount: float
    averagePrice: float  # noqa: N815
    takerFeeRate: float  # noqa: N815
    feeCost: float = Field(description="Taker fee in the market's quote currency")  # noqa: N815
    effectivePrice: float = Field(description="Quote per base, fee included")  # noqa: N815
    amountIn: float  # noqa: N815
    amountOut: float  # noqa: N815
    balanceLimited: bool = Field(  # noqa: N815
        description="The leg is cut short by the balance held there, not by the book"
    )


class RouteHop(BaseModel):
    """One market of the chain; hop i spends exactly what hop i-1 produced."""

    pair: str
    side: Literal["buy", "sell"]
    base: str
    quote: str
    from_: str = Field(alias="from")
    to: str
    amountIn: float  # noqa: N815
    amountOut: float  # noqa: N815
    legs: list[RouteLeg]


class VenueQuote(BaseModel):
    """includeQuotes: what this venue alone would give for the hop's whole input."""

    hop: int
    exchangeId: str  # noqa: N815
    pair: str
    amountIn: float  # noqa: N815
    amountOut: float  # noqa: N815


class BookAge(BaseModel):
    """One cached book a route stands on: how old it is, how it is kept, and whether it
    was left out (and why)."""

    exchangeId: str  # noqa: N815
    symbol: str
    ageMs: float = Field(description="Milliseconds since this book last changed")  # noqa: N815
    feed: Literal["websocket", "polling", "static"] = Field(
        description="websocket: kept live from the venue's stream; polling: fetched every "
        "--refresh seconds (the venue has no stream); static: --sample / --books"
    )
    excludedReason: str = Field(  # noqa: N815
        description="Why the book was left out of the route ('' when it was routed on): "
        "stale (no update within --stale-ms) or withdrawn (the feed is resyncing or "
        "reconnecting)"
    )


class RouteResult(BaseModel):
    """The answer to /route (and each frame of /stream/route). An unroutable request is a
    RouteResult with `unroutableReason` (then `hops` is empty), never an error status."""

    requestId: str  # noqa: N815
    calculatedAt: int  # noqa: N815
    from_: str = Field(alias="from")
    to: str
    strategy: str
    exactSide: Literal["in", "out"]  # noqa: N815
    amountIn: float  # noqa: N815
    amountOut: float  # noqa: N815
    fullyFillable: bool  # noqa: N815
    fillRatio: float  # noqa: N815
    unfilledAmount: float  # noqa: N815
    unroutableReason: str  # noqa: N815
    unroutableHopIndex: int  # noqa: N815
    hops: list[RouteHop]
    path: list[str]
    warnings: list[str]
    pathsConsidered: int  # noqa: N815
    savingVsBestSingleBps: float  # noqa: N815
    solver: str
    computeMs: float = 0.0  # noqa: N815
    quotes: list[VenueQuote] | None = None
    balancesApplied: str | None = None  # noqa: N815
    balanceEntryCount: int | None = None  # noqa: N815
    balanceMode: str | None = None  # noqa: N815
    books: list[BookAge] = Field(
        default_factory=list,
        description="Every cached book of the markets the route trades (of the markets "
        "holding from or to when unroutable), with its age and feed",
    )


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: one line saying what is wrong and how to fix it."""

    error: str


class Health(BaseModel):
    status: Literal["ok"]
    uptimeSec: float  # noqa: N815
    busyWorkers: int  # noqa: N815
    workers: int
    openStreams: int = 0  # noqa: N815


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    bookCount: int  # noqa: N815
    freshCount: int  # noqa: N815
    staleCount: int  # noqa: N815
    minFreshBooksForReady: int  # noqa: N815
    staleBookMs: float  # noqa: N815


class Version(BaseModel):
    version: str
    commit: str
    commitShort: str  # noqa: N815
    builtAt: str  # noqa: N815
    builtBy: str  # noqa: N815
    startedAt: float  # noqa: N815
    uptimeSec: float  # noqa: N815


class Symbols(BaseModel):
    symbols: list[str]


class ExchangeStatus(BaseModel):
    exchangeId: str  # noqa: N815
    connected: bool
    books: int
    freshBooks: int  # noqa: N815
    lastUpdateAgeMs: float  # noqa: N815
    error: str
    feed: Literal["websocket", "polling", "static"] = "static"


class ExchangesStatus(BaseModel):
    exchanges: list[ExchangeStatus]


class OrderBook(BaseModel):
    exchangeId: str  # noqa: N815
    symbol: str
    timestamp: float | None
    fetchedAt: float | None  # noqa: N815
    fresh: bool
    bids: list[list[float]]
    asks: list[list[float]]
