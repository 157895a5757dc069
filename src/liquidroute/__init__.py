"""liquidroute: provably optimal smart order routing across crypto venues."""

from liquidroute.errors import LiquidrouteError
from liquidroute.model import DepthSnapshot, Leg, Market, Quote

__version__ = "0.1.0"

__all__ = ["DepthSnapshot", "Leg", "LiquidrouteError", "Market", "Quote", "__version__"]
