"""liquidroute: provably optimal smart order routing across crypto venues.

    from liquidroute import DepthSnapshot, Market, route
    quote = route(snapshots, side="buy", amount=2.5, markets=markets)
    quote = route(snapshots, "buy", 2.5, markets=markets, options=RouteOptions(max_venues=2))

Public names are imported lazily (PEP 562) so that `liquidroute --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from liquidroute.errors import (
        DataError,
        InsufficientLiquidityError,
        InvalidInputError,
        LiquidrouteError,
        RoutingError,
        VenueError,
    )
    from liquidroute.model import DepthSnapshot, GraphQuote, Leg, Market, Quote
    from liquidroute.optimizer.exact import LadderCache
    from liquidroute.router.executor import ExecutionPolicy, Executor, execute, execute_sync
    from liquidroute.router.graph_route import route_graph
    from liquidroute.router.options import RouteOptions
    from liquidroute.router.route import route
    from liquidroute.router.router import Router

__version__ = "0.1.0"

_EXPORTS = {
    "DataError": "liquidroute.errors",
    "InsufficientLiquidityError": "liquidroute.errors",
    "InvalidInputError": "liquidroute.errors",
    "LiquidrouteError": "liquidroute.errors",
    "RoutingError": "liquidroute.errors",
    "VenueError": "liquidroute.errors",
    "DepthSnapshot": "liquidroute.model",
    "Leg": "liquidroute.model",
    "Market": "liquidroute.model",
    "Quote": "liquidroute.model",
    "GraphQuote": "liquidroute.model",
    "route_graph": "liquidroute.router.graph_route",
    "LadderCache": "liquidroute.optimizer.exact",
    "RouteOptions": "liquidroute.router.options",
    "route": "liquidroute.router.route",
    "Router": "liquidroute.router.router",
    "ExecutionPolicy": "liquidroute.router.executor",
    "Executor": "liquidroute.router.executor",
    "execute": "liquidroute.router.executor",
    "execute_sync": "liquidroute.router.executor",
}

__all__ = [
    "DataError",
    "DepthSnapshot",
    "ExecutionPolicy",
    "Executor",
    "GraphQuote",
    "InsufficientLiquidityError",
    "InvalidInputError",
    "LadderCache",
    "Leg",
    "LiquidrouteError",
    "Market",
    "Quote",
    "RouteOptions",
    "Router",
    "RoutingError",
    "VenueError",
    "__version__",
    "execute",
    "execute_sync",
    "route",
    "route_graph",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'liquidroute' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
