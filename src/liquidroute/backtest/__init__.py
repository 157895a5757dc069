"""Backtesting routes on recorded books: readers, book reconstruction, replay, reports."""
