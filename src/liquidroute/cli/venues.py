"""`liquidroute venues`: what can be routed to."""

from __future__ import annotations

from liquidroute.cli.common import console, reported_errors, styled


def venues() -> None:
    """List the venues liquidroute can route to: every ccxt exchange (live public order
    books, no keys needed for quotes) and the bundled sample venues (offline)."""
    with reported_errors():
        from liquidroute.venues.ccxt_venue import supported_venues
        from liquidroute.venues.sample import HOLDS, SAMPLE_NOTE, sample_venues

        out = console()
        live = supported_venues()
        out.print(styled(("Live venues", "bold"), f" (ccxt, {len(live)}): use --venues a,b,c"))
        out.print(", ".join(live))
        names = ", ".join(v.name for v in sample_venues())
        out.print(styled("\n", ("Sample venues", "bold"), f" (--sample, offline): {names}"))
        out.print(f"It holds {HOLDS}.")
        out.print(SAMPLE_NOTE)
