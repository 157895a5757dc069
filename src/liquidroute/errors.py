"""The exceptions liquidroute raises: one root, three families, one exit code each.

    LiquidrouteError                     root; `exit_code` is what the CLI exits with
    ├── InvalidInputError (ValueError)   a bad argument, option or file name     -> 2
    ├── VenueError                       a venue failed or refused             -> 1
    │   ├── UnknownVenueError            no such exchange id
    │   ├── UnknownSymbolError           the venue does not list the symbol
    │   ├── VenueUnavailableError        unreachable, timed out, 5xx
    │   │   └── NoVenueAnsweredError     every venue asked failed (each one named)
    │   ├── RateLimitedError             the venue asked us to slow down
    │   ├── AuthenticationError          credentials missing or refused
    │   └── OrderRejectedError           the venue refused an order
    ├── DataError                        a book or file we cannot trust        -> 1
    │   ├── MalformedBookError           NaN/inf/non-positive, unsorted, crossed
    │   ├── StaleBookError               older than the allowed age
    │   └── DataFileError                unreadable, empty or mismatched file
    ├── RoutingError                     nothing (or not enough) can be routed -> 3
    │   ├── InsufficientLiquidityError   the books cannot fill the order
    │   └── InfeasibleConstraintsError   the rules/caps admit no split
    ├── RiskLimitError                   a risk limit refused the order          -> 2
    └── OrderStateError                  an illegal child-order transition (a bug) -> 1

Every message names the venue, symbol, field or file concerned and says what to do.
"""

from __future__ import annotations


class LiquidrouteError(Exception):
    """Root of every error liquidroute raises on purpose."""

    exit_code: int = 1


class InvalidInputError(LiquidrouteError, ValueError):
    """A caller-supplied value is invalid; the message names the field and the fix."""

    exit_code = 2


class VenueError(LiquidrouteError):
    """A venue could not be reached, or refused what we asked."""

    def __init__(self, venue: str, message: str) -> None:
        self.venue = venue
        super().__init__(f"{venue}: {message}")


class UnknownVenueError(VenueError):
    """The venue id is not one we can route to."""

    exit_code = 2


class UnknownSymbolError(VenueError):
    """The venue does not list the symbol."""

    exit_code = 2


class VenueUnavailableError(VenueError):
    """Network failure, timeout or server error at the venue."""


class NoVenueAnsweredError(VenueUnavailableError):
    """Every venue asked failed; `errors` holds each one, and the message names them all."""

    def __init__(self, errors: list[LiquidrouteError], venues: list[str]) -> None:
        self.errors = list(errors)
        self.venue = ", ".join(venues)
        codes = {e.exit_code for e in errors}
        self.exit_code = codes.pop() if len(codes) == 1 else 1
        LiquidrouteError.__init__(
            self,
            f"no venue answered: {'; '.join(map(str, errors))}; check the network or the "
            "venue ids (liquidroute venues), or use --sample / --books offline",
        )


class RateLimitedError(VenueError):
    """The venue rate-limited us."""


class AuthenticationError(VenueError):
    """Credentials are missing, malformed or refused."""


class OrderRejectedError(VenueError):
    """The venue refused an order (funds, filters, precision)."""


class DataError(LiquidrouteError):
    """A book or data file that cannot be trusted."""


class MalformedBookError(DataError):
    """A depth snapshot violates the book invariants."""


class StaleBookError(DataError):
    """A depth snapshot is older than allowed."""


class DataFileError(DataError):
    """A data file is unreadable, empty, or not what was asked for."""


class RoutingError(LiquidrouteError):
    """The order cannot be routed as asked."""

    exit_code = 3


class InsufficientLiquidityError(RoutingError):
    """The books on the venues given cannot fill the order."""


class InfeasibleConstraintsError(RoutingError):
    """The venue rules, caps and limits admit no feasible split."""


class OrderStateError(LiquidrouteError):
    """A child order was asked to make a transition its state table forbids (a bug)."""


class RiskLimitError(LiquidrouteError):
    """A risk limit or safety rule refused the order before anything was sent."""

    exit_code = 2
