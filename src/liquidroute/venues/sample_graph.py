"""The bundled multi-market sample (BTC, ETH, USDT, USDC on three venues), offline.

Derived from the real recorded BTC/USDT books' shapes — see scripts/build_sample_graph.py
and `SAMPLE_GRAPH_NOTE`. JSON + numpy only.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from liquidroute.model import DepthSnapshot, Market


@cache
def _data() -> dict[str, Any]:
    text = resources.files("liquidroute.data").joinpath("sample_graph.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


SAMPLE_GRAPH_NOTE = (
    "sample graph: markets derived from real recorded BTC/USDT book shapes at fixed "
    "reference prices; not recorded markets"
)


def sample_graph_snapshots() -> list[DepthSnapshot]:
    return [DepthSnapshot(b["venue"], b["symbol"], b["bids"], b["asks"]) for b in _data()["books"]]


def sample_graph_markets() -> list[Market]:
    return [Market(b["venue"], b["symbol"], b["taker_fee"]) for b in _data()["books"]]
