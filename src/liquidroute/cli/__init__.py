"""Command-line interface (typer)."""


def main() -> None:
    raise SystemExit("liquidroute CLI not built yet")
