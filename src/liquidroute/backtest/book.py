"""Moved: L2 reconstruction lives in `liquidroute.book` (below venues and backtest).

This module re-exports its names so that old imports keep working.
"""

from __future__ import annotations

from liquidroute.book import BookReplay, book_at

__all__ = ["BookReplay", "book_at"]
