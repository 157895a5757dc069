"""The bundled sample's spot markets as lists for `route_graph()` (convert, serve).

Not a second data set: the same books as every `--sample` (`liquidroute.venues.sample`),
minus the perpetual, which is not a conversion between assets.
"""

from __future__ import annotations

from liquidroute.model import DepthSnapshot, Market
from liquidroute.venues.sample import HOLDS, sample_spot

SAMPLE_GRAPH_NOTE = (
    f"sample: {HOLDS}; real books re-centred on a common mid, not a simultaneous market"
)


def sample_graph_snapshots() -> list[DepthSnapshot]:
    return sample_spot()[0]


def sample_graph_markets() -> list[Market]:
    return sample_spot()[1]
