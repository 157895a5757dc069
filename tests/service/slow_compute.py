"""Deliberately slow route functions for the pool tests (run inside the worker processes)."""

from __future__ import annotations

import time
from typing import Any


def compute(request: Any, snapshots: Any, markets: Any, cache: Any = None) -> dict[str, Any]:
    """Spins (CPU, uninterruptible from outside) for request.hop_penalty_bps seconds;
    9999 means forever, like a solver that never returns."""
    until = time.monotonic() + float(request.hop_penalty_bps)
    while request.hop_penalty_bps >= 9999 or time.monotonic() < until:
        pass
    return {"slept": float(request.hop_penalty_bps), "books": len(list(snapshots))}


def boom(request: Any, snapshots: Any, markets: Any, cache: Any = None) -> dict[str, Any]:
    """A bug in the routing code."""
    return {"ratio": 1 / 0}
