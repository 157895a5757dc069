"""A quote as an execution plan in the shape ccxt's own OrderRouter produces.

`execution_plan(quote)` returns the dict `ccxt.base.order_router.OrderRouter.
build_execution_plan` returns (flat ordered steps with exchangeId, symbol, side, amount,
expectedPrice, limitPrice, notionalQuote, ...), so ccxt's pure checks —
`check_execution_plan_safety(plan, markets)` — and any tool built on that contract can
consume liquidroute's routes. Unlike ccxt's builder, the limit price starts from the leg's
*worst* planned price (not its average) and is rounded to the venue's tick away from the
book, exactly as the executor's child orders are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liquidroute.model import Market, Quote
from liquidroute.optimizer.rules import round_limit_price


def execution_plan(
    quote: Quote,
    markets: Mapping[str, Market] | None = None,
    *,
    slippage_bps: float = 25.0,
    request_id: str = "",
) -> dict[str, Any]:
    """The ccxt-style plan of `quote` (one hop; one step per leg). No nulls, as ccxt's."""
    markets = markets or {}
    sign = 1.0 if quote.side == "buy" else -1.0
    base, _, rest = quote.symbol.partition("/")
    quote_ccy = rest.split(":")[0]
    steps = []
    for i, leg in enumerate(quote.legs):
        market = markets.get(leg.venue)
        tick = market.price_tick if market else None
        limit = round_limit_price(
            leg.worst_price * (1 + sign * slippage_bps / 1e4), tick, quote.side
        )
        steps.append(
            {
                "stepIndex": i,
                "hopIndex": 0,
                "legIndex": i,
                "exchangeId": leg.venue,
                "symbol": quote.symbol,
                "side": quote.side,
                "base": base,
                "quote": quote_ccy,
                "amount": leg.amount,
                "expectedPrice": leg.avg_price,
                "effectivePrice": leg.cost / leg.amount,
                "limitPrice": limit,
                "notionalQuote": leg.amount * leg.avg_price,
                "expectedFeeCost": leg.fee,
                "balanceLimited": "cut by balance" in leg.notes,
            }
        )
    buy = quote.side == "buy"
    return {
        "requestId": request_id,
        "calculatedAt": max((t or 0.0) for t in quote.timestamps.values())
        if quote.timestamps
        else 0,
        "from": quote_ccy if buy else base,
        "to": base if buy else quote_ccy,
        "routingStrategy": "split_optimal",
        "exactSide": "in" if (quote.amount_in == "quote") == buy else "out",
        "amountIn": quote.total_cost if buy else quote.filled,
        "amountOut": quote.filled if buy else quote.total_cost,
        "fullyFillable": quote.complete,
        "fillRatio": quote.filled / quote.requested if quote.amount_in == "base" else 1.0,
        "unroutableReason": "" if quote.legs else "no liquidity",
        "unroutableHopIndex": -1 if quote.legs else 0,
        "requireFullFill": False,
        "hopCount": 1,
        "stepCount": len(steps),
        "slippageBps": slippage_bps,
        "reconcileToleranceRatio": 0.02,
        "steps": steps,
    }
