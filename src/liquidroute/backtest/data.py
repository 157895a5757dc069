"""Moved: recorded-book files are read by `liquidroute.tardis` (below venues and backtest).

This module re-exports its names so that old imports keep working.
"""

from __future__ import annotations

from liquidroute.tardis import (
    COLUMNS,
    TARDIS_EXCHANGES,
    L2Updates,
    ccxt_id,
    describe,
    format_us,
    parse_time_ms,
    read_incremental_l2,
    unified_symbol,
    write_parquet,
)

__all__ = [
    "COLUMNS",
    "TARDIS_EXCHANGES",
    "L2Updates",
    "ccxt_id",
    "describe",
    "format_us",
    "parse_time_ms",
    "read_incremental_l2",
    "unified_symbol",
    "write_parquet",
]
