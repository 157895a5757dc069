"""Where liquidroute keeps its files: $LIQUIDROUTE_HOME, default ~/.liquidroute.

journal.sqlite3     the execution journal
credentials.toml    API keys (must be mode 600)
KILL                while this file exists, nothing is sent to any venue
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """$LIQUIDROUTE_HOME, or ~/.liquidroute."""
    return Path(os.environ.get("LIQUIDROUTE_HOME") or Path.home() / ".liquidroute")
