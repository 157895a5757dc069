"""Venues: where liquidity comes from (live ccxt exchanges, recorded files, the sample)."""

from liquidroute.venues.base import Venue

__all__ = ["Venue"]
