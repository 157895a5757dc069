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

Every message names the venue, symbol, field or file concerned and says what to do, and
holds no secret: every message passes through `redact` (as does every journal entry, report
and log line), which masks URL query strings (where signed requests carry AccessKeyId,
Signature, timestamp, apiKey...), credential headers and fields, and the values of every
configured key and secret (`register_secret`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: Names under which venues carry keys, signatures and passphrases (query strings, headers,
#: JSON bodies); their values are masked wherever they appear.
SECRET_NAMES = (
    "accesskeyid|access[_-]?key|api[_-]?key|apikey|secret[_-]?key|secret|signature|sign|"
    "passphrase|password|x-mbx-apikey|ok-access-[a-z]+|x-bapi-[a-z-]+|x-bx-apikey|"
    "authorization|bearer|token|x-api-key"
)
MASK = "***"
_URL_QUERY = re.compile(r"(https?://[^\s?#\"']*)\?[^\s#\"']*", re.IGNORECASE)
_NAMED = re.compile(
    r"\b(?P<name>" + SECRET_NAMES + r")\b(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?:bearer\s+)?(?P<value>[^\s\"'&,;}\]]+)",
    re.IGNORECASE,
)
#: Every name in SECRET_NAMES contains one of these: a text without any needs no regex.
_STEMS = ("key", "sign", "secret", "pass", "auth", "bearer", "token", "access", "bapi")
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask `value` (an API key, secret or password) wherever `redact` sees it."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: Any) -> str:
    """`text` with every secret masked: the ONE redaction of liquidroute.

    - every URL's query string (signed requests carry the key, timestamp and signature
      there: `...?AccessKeyId=...&Signature=...`) becomes `?***`;
    - `name=value` / `name: value` / `"name": "value"` for every credential name in
      `SECRET_NAMES` (query strings, headers, JSON bodies) keeps the name, masks the value;
    - every registered key/secret/password value is masked wherever it appears.
    """
    out = str(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    if "://" in out:
        out = _URL_QUERY.sub(r"\1?" + MASK, out)
    if "=" not in out and ":" not in out:
        return out
    lowered = out.lower()
    if not any(stem in lowered for stem in _STEMS):  # the cheap test first (hot path)
        return out
    return _NAMED.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", out)


def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed call: logging reports it when emitting
        return record
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    return record


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record's message through `redact` (for
    handlers that may see records made before liquidroute was imported)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _install_log_redaction() -> None:
    """Every log record made in this process (liquidroute's, ccxt's, aiohttp's, the
    server's) is redacted when it is created, whatever handler emits it."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_liquidroute_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _redact_record(previous(*args, **kwargs))

    factory._liquidroute_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_log_redaction()


class LiquidrouteError(Exception):
    """Root of every error liquidroute raises on purpose; its message is redacted."""

    exit_code: int = 1

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


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
    """The venue rate-limited us; `retry_after` is its Retry-After in seconds, if sent."""

    def __init__(self, venue: str, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(venue, message)


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
