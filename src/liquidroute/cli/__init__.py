"""Command-line interface: `liquidroute COMMAND` (typer + rich).

Heavy modules (numpy, ccxt, pandas) are imported inside the commands, so `--help` is fast.
"""

from __future__ import annotations


def main() -> None:
    """Console-script entry point."""
    from liquidroute.cli.app import app

    app()
