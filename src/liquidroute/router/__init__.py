"""Routing: from venues' books to a quote (and, later, to filled orders)."""
