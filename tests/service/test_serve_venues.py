"""`serve --venues`: unreachable venues are named with their cause at start-up; none
reachable is exit 1 (not a server that answers unknown_asset)."""

from __future__ import annotations

import json
import socket

from typer.testing import CliRunner

from liquidroute.cli.app import app
from liquidroute.cli.serve import reachable_venues

SPOT_ONLY = json.dumps({"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once closed


def test_each_unreachable_venue_is_named_with_its_cause(loopback, monkeypatch, capsys):
    monkeypatch.setenv("LIQUIDROUTE_BINANCE_URL", loopback.base_url)
    monkeypatch.setenv("LIQUIDROUTE_BINANCE_OPTIONS", SPOT_ONLY)
    monkeypatch.setenv("LIQUIDROUTE_DEAD_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("LIQUIDROUTE_DEAD_OPTIONS", SPOT_ONLY)
    assert reachable_venues(["binance", "dead=binance"]) == ["binance"]
    err = capsys.readouterr().err
    assert "warning: venue dead=binance is unreachable:" in err
    assert "binance is unreachable" not in err.replace("dead=binance is unreachable", "")


def test_no_reachable_venue_is_exit_1_naming_them(monkeypatch):
    for name in ("DEAD", "GONE"):
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_URL", f"http://127.0.0.1:{closed_port()}")
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_OPTIONS", SPOT_ONLY)
    result = CliRunner().invoke(app, ["serve", "--venues", "dead=binance,gone=okx"])
    assert result.exit_code == 1, result.output
    assert "warning: venue dead=binance is unreachable" in result.stderr
    assert "warning: venue gone=okx is unreachable" in result.stderr
    assert "no venue is reachable" in result.stderr and "Traceback" not in result.output
