"""`RouteOptions`: every option of a route, validated and defaulted in one place.

`route()`, `Router.quote` and `Router.quote_sync` take `options=RouteOptions(...)`, and
still take each option as a keyword argument; `resolve_options` merges the two (a keyword
given, i.e. not None, wins over the options object) and is the only place the values are
checked. Venue names in the mappings are checked against the books by `check_venues`.

    opts = RouteOptions(caps={"okx": 1.0}, max_venues=2, baselines=False)
    route(snaps, "buy", 2.5, markets=mk, options=opts)
    router.quote_sync("BTC/USDT", "buy", 2.5, options=opts)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from liquidroute.errors import InvalidInputError
from liquidroute.model import AmountUnit

_EMPTY: Mapping[str, float] = MappingProxyType({})

#: The option names, in declaration order (the keyword arguments that map onto them).
OPTION_NAMES = (
    "amount_in",
    "caps",
    "balances",
    "fixed_costs",
    "fees",
    "rules",
    "max_venues",
    "max_share",
    "time_limit",
    "mip_gap",
    "baselines",
)


def _amounts(name: str, given: Mapping[str, Any] | None, what: str) -> Mapping[str, float]:
    """A read-only copy of `given` with every value a finite number >= 0."""
    if not given:
        return _EMPTY
    if not isinstance(given, Mapping):
        raise InvalidInputError(f"{name} must map venue names to {what}, got {given!r}")
    out: dict[str, float] = {}
    for venue, value in given.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise InvalidInputError(
                f"{name}[{venue!r}] must be a non-negative {what}, got {value!r}"
            )
        out[str(venue)] = number
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """How to route one order (every field optional; the defaults route rule-aware).

    - `amount_in`: "base" (amount in base units) or "quote" (spend / receive exactly X).
    - `caps`: venue -> most base units to route there.
    - `balances`: venue -> what you hold there (quote currency for a buy, base for a sell).
    - `fixed_costs`: venue -> quote charged once if the venue is used (withdrawal, gas).
    - `fees`: venue -> taker fee rate overriding the market's (0.001 = 10 bps).
    - `rules`: None applies venue rules when one could bind, True forces, False ignores.
    - `max_venues`: at most this many venues; `max_share`: at most this fraction of the
      order on one venue, in (0, 1].
    - `time_limit` (seconds) bounds the rules solver; `mip_gap` is the relative gap in
      cost it must prove (1e-9).
    - `baselines`: also price the comparison strategies (False is the hot path for bots).
    """

    amount_in: AmountUnit = "base"
    caps: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    balances: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    fixed_costs: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    fees: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    rules: bool | None = None
    max_venues: int | None = None
    max_share: float | None = None
    time_limit: float = 1.0
    mip_gap: float = 1e-9
    baselines: bool = True

    def __post_init__(self) -> None:
        if self.amount_in not in ("base", "quote"):
            raise InvalidInputError(f"amount_in must be 'base' or 'quote', got {self.amount_in!r}")
        setattr_ = object.__setattr__
        setattr_(self, "caps", _amounts("caps", self.caps, "base amount"))
        setattr_(self, "balances", _amounts("balances", self.balances, "number"))
        setattr_(self, "fixed_costs", _amounts("fixed_costs", self.fixed_costs, "number"))
        fees = _amounts("fees", self.fees, "fee rate")
        for venue, rate in fees.items():
            if rate >= 0.1:
                raise InvalidInputError(
                    f"fees[{venue!r}] must be a rate in [0, 0.1) (0.001 = 10 bps), got {rate!r}"
                )
        setattr_(self, "fees", fees)
        for name in ("rules", "baselines"):
            value = getattr(self, name)
            if not (isinstance(value, bool) or (name == "rules" and value is None)):
                raise InvalidInputError(f"{name} must be True or False, got {value!r}")
        k = self.max_venues
        if k is not None and (
            isinstance(k, bool)
            or not isinstance(k, int | float)
            or not float(k).is_integer()  # also refuses nan and inf
            or k < 1
        ):
            raise InvalidInputError(f"max_venues must be a whole number >= 1, got {k!r}")
        if k is not None:
            setattr_(self, "max_venues", int(k))
        share = self.max_share
        if share is not None and not (isinstance(share, int | float) and 0 < share <= 1):
            raise InvalidInputError(f"max_share must be in (0, 1] (0.5 = half), got {share!r}")
        limit = self.time_limit
        if not (isinstance(limit, int | float) and math.isfinite(limit) and limit > 0):
            raise InvalidInputError(
                f"time_limit must be a positive number of seconds, got {limit!r}"
            )
        gap = self.mip_gap
        if not (isinstance(gap, int | float) and math.isfinite(gap) and gap >= 0):
            raise InvalidInputError(f"mip_gap must be a relative gap >= 0 (1e-9), got {gap!r}")

    def replace(self, **changes: Any) -> RouteOptions:
        """A copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def check_venues(
        self,
        venues: Collection[str],
        where: str = "with no snapshot",
        names: Sequence[str] = ("caps", "balances", "fixed_costs", "fees"),
    ) -> None:
        """Every venue named in the mappings `names` is in `venues`, or InvalidInputError."""
        for name in names:
            unknown = set(getattr(self, name)) - set(venues)
            if unknown:
                raise InvalidInputError(
                    f"{name} name venue(s) {where}: {sorted(unknown)}; venues: {sorted(venues)}"
                )

    def only(self, venues: Collection[str]) -> RouteOptions:
        """The same options with the per-venue mappings cut to `venues`."""

        def keep(given: Mapping[str, float]) -> dict[str, float]:
            return {v: x for v, x in given.items() if v in venues}

        return dataclasses.replace(
            self,
            caps=keep(self.caps),
            balances=keep(self.balances),
            fixed_costs=keep(self.fixed_costs),
            fees=keep(self.fees),
        )


DEFAULT_OPTIONS = RouteOptions()
_NO_BASELINES = RouteOptions(baselines=False)


def resolve_options(options: RouteOptions | None = None, **given: Any) -> RouteOptions:
    """`options` (or the defaults) with every keyword in `given` that is not None applied.

    `given` holds route()'s keyword arguments, named as RouteOptions' fields; unknown names
    raise InvalidInputError naming them.
    """
    base = DEFAULT_OPTIONS if options is None else options
    if not isinstance(base, RouteOptions):
        raise InvalidInputError(f"options must be a RouteOptions, got {type(options).__name__}")
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        return base
    if options is None and len(changes) == 1 and isinstance(changes.get("baselines"), bool):
        # the hot path's only keyword: two validated instances, made once
        return base if changes["baselines"] else _NO_BASELINES
    unknown = set(changes) - set(OPTION_NAMES)
    if unknown:
        raise InvalidInputError(
            f"unknown route option(s) {sorted(unknown)}; options: {', '.join(OPTION_NAMES)}"
        )
    return dataclasses.replace(base, **changes)
