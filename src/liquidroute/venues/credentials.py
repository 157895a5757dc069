"""API credentials for live trading: environment variables or a private config file.

For venue `okx`, the environment variables LIQUIDROUTE_OKX_API_KEY, LIQUIDROUTE_OKX_SECRET
and (where the venue needs one) LIQUIDROUTE_OKX_PASSWORD win; otherwise the TOML file
(default `~/.liquidroute/credentials.toml`, which must be mode 0600) is read:

    [okx]
    apiKey = "..."
    secret = "..."
    password = "..."

Secrets are never printed, logged or journalled: `Credentials.__repr__` masks them, and
their values are registered with `liquidroute.errors.redact`, which every error message,
journal entry, report and log line passes through.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from liquidroute.errors import AuthenticationError, RiskLimitError, register_secret
from liquidroute.paths import home


def default_config_path() -> Path:
    return home() / "credentials.toml"


@dataclass(frozen=True, slots=True)
class Credentials:
    """One venue's API key; `repr` never shows the secret parts."""

    venue: str
    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for value in (self.api_key, self.secret, self.password):
            register_secret(value)  # masked wherever liquidroute.errors.redact runs

    def ccxt_config(self) -> dict[str, str]:
        config = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            config["password"] = self.password
        return config


def _read_config(path: Path) -> dict[str, dict[str, str]]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise RiskLimitError(
            f"credentials file {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AuthenticationError("config", f"cannot read {path}: {type(exc).__name__}") from None
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def load_credentials(venue: str, config: Path | None = None) -> Credentials:
    """Credentials for `venue` from the environment, else from the config file."""
    prefix = f"LIQUIDROUTE_{venue.upper().replace('-', '_')}_"
    key, secret = os.environ.get(prefix + "API_KEY"), os.environ.get(prefix + "SECRET")
    if key and secret:
        return Credentials(venue, key, secret, os.environ.get(prefix + "PASSWORD"))
    path = config or default_config_path()
    if path.exists():
        entry = _read_config(path).get(venue, {})
        if entry.get("apiKey") and entry.get("secret"):
            return Credentials(venue, entry["apiKey"], entry["secret"], entry.get("password"))
    raise AuthenticationError(
        venue,
        f"no credentials: set {prefix}API_KEY and {prefix}SECRET, or add a [{venue}] "
        f"section with apiKey and secret to {path} (mode 600)",
    )
