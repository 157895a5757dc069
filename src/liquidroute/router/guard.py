"""Pre-route venue checks: a stale or outlying book must not attract the order.

A venue is left out, with a reason, when
- its book is older than `max_age_ms` (live venues only; age = now − exchange timestamp), or
- its mid deviates from the reference by more than `max_deviation_bps`. With three or more
  venues the reference is the median of all venues' mids: one broken book cannot move it
  (the median of only the *other* venues can: with three venues it is the mean of a good
  book and the broken one, which would condemn the good books). With two venues the
  reference is the other venue; a deviation cannot be attributed, so both are left out and
  the reason says so.
Crossed and malformed books never get this far: `DepthSnapshot` refuses them.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from liquidroute.model import DepthSnapshot

DEFAULT_MAX_DEVIATION_BPS = 50.0
DEFAULT_MAX_AGE_MS = 10_000.0


@dataclass(frozen=True, slots=True)
class Screened:
    """The snapshots that passed, and why each other venue was left out."""

    kept: list[DepthSnapshot]
    excluded: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def stale_books(
    snapshots: Sequence[DepthSnapshot],
    *,
    now_ms: float,
    live: Collection[str] = (),
    max_age_ms: float | None = DEFAULT_MAX_AGE_MS,
) -> dict[str, str]:
    """The live venues whose book is older than `max_age_ms` (age = now − exchange
    timestamp, else the arrival time), with the reason."""
    excluded: dict[str, str] = {}
    if max_age_ms is None:
        return excluded
    for snap in snapshots:
        stamp = snap.timestamp if snap.timestamp is not None else snap.local_timestamp
        if snap.venue in live and stamp is not None:
            age = now_ms - stamp
            if age > max_age_ms:
                excluded[snap.venue] = (
                    f"stale book: {age / 1e3:.1f} s old (limit {max_age_ms / 1e3:.1f} s, --max-age)"
                )
    return excluded


def outliers(
    snapshots: Sequence[DepthSnapshot],
    max_deviation_bps: float | None = DEFAULT_MAX_DEVIATION_BPS,
) -> tuple[dict[str, str], list[str]]:
    """The venues whose mid is more than `max_deviation_bps` from the reference (see the
    module docstring), with the reason; and notes. Depends on the books only, so a
    caller holding versioned books may reuse it until a version changes."""
    excluded: dict[str, str] = {}
    notes: list[str] = []
    mids = {s.venue: s.mid for s in snapshots if s.mid is not None}
    if max_deviation_bps is not None and len(mids) >= 2:
        if len(mids) == 2:
            notes.append("only two venues: the deviation check compares each with the other")
        median = statistics.median(mids.values())
        for venue, mid in mids.items():
            pair = len(mids) == 2
            ref = next(m for v, m in mids.items() if v != venue) if pair else median
            dev = abs(mid - ref) / ref * 1e4
            if dev > max_deviation_bps:
                what = "the other venue's mid" if pair else "the median mid of all venues"
                excluded[venue] = (
                    f"mid {mid:.8g} is {dev:.0f} bps from {what} ({ref:.8g}); limit "
                    f"{max_deviation_bps:g} bps (--max-deviation-bps, or --no-guard)"
                )
    return excluded, notes


def combine(
    snapshots: Sequence[DepthSnapshot],
    stale: Mapping[str, str],
    outlying: tuple[Mapping[str, str], Sequence[str]],
) -> Screened:
    """The `Screened` of `snapshots` given their stale books and, among the others,
    the outliers (`outliers` of the snapshots not stale)."""
    excluded = {**stale, **outlying[0]}
    kept = [s for s in snapshots if s.venue not in excluded]
    return Screened(kept, excluded, list(outlying[1]))


def screen(
    snapshots: Sequence[DepthSnapshot],
    *,
    now_ms: float,
    live: Collection[str] = (),
    max_age_ms: float | None = DEFAULT_MAX_AGE_MS,
    max_deviation_bps: float | None = DEFAULT_MAX_DEVIATION_BPS,
) -> Screened:
    """Apply the staleness and deviation checks; `live` names the venues age applies to."""
    stale = stale_books(snapshots, now_ms=now_ms, live=live, max_age_ms=max_age_ms)
    fresh = [s for s in snapshots if s.venue not in stale]
    return combine(snapshots, stale, outliers(fresh, max_deviation_bps))
