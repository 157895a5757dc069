"""`liquidroute quote ... --watch` against the loopback exchange: a real process, Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from typer.testing import CliRunner

from liquidroute.cli.app import app
from tests.loopback.binance_server import client_options
from tests.loopback.binance_ws import BinanceWsLoopback
from tests.venues.test_live import ASKS, BIDS

ROOT = Path(__file__).resolve().parents[2]


def lines_of(stream) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def test_watch_streams_a_quote_per_change_until_ctrl_c():
    ex = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()
    env = os.environ | {
        "LIQUIDROUTE_BINANCE_URL": ex.base_url,
        "LIQUIDROUTE_BINANCE_WS_URL": ex.ws_base_url,
        "LIQUIDROUTE_BINANCE_OPTIONS": json.dumps(client_options()),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    cmd = [sys.executable, "-m", "liquidroute", "quote", "BTC/USDT", "buy", "1.5"]
    cmd += ["--venues", "binance", "--watch", "--json", "--no-rules"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = lines_of(proc.stdout)
        first = json.loads(lines.get(timeout=30))
        assert first["legs"][0]["worst_price"] == 60015.0  # 1 at 60010, 0.5 at 60015
        ex.update(asks=[(60010.0, 2.0)])  # now 1.5 fills at the best ask
        second = json.loads(lines.get(timeout=10))
        assert second["legs"][0]["worst_price"] == 60010.0
        assert second["total_cost"] < first["total_cost"]
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        ex.stop()
    assert code == 0, err
    assert "Traceback" not in err


def test_watch_needs_live_venues():
    result = CliRunner().invoke(app, ["quote", "BTC/USDT", "buy", "1", "--sample", "--watch"])
    assert result.exit_code == 2
    assert "--watch keeps live books" in result.output
    assert "Traceback" not in result.output


def test_watch_table_shows_the_split_and_each_books_status(monkeypatch, capsys):
    import asyncio

    from liquidroute.cli.watch import run_watch
    from tests.venues.test_live import live

    ex = BinanceWsLoopback(bids=BIDS, asks=ASKS).start()
    try:
        venue = live(monkeypatch, ex)
        count = asyncio.run(
            run_watch(
                [venue],
                "BTC/USDT",
                "buy",
                1.5,
                router={},
                options={"rules": False},
                max_updates=1,
            )
        )
    finally:
        ex.stop()
    out = capsys.readouterr().out
    assert count == 1
    assert "optimal split" in out and "Live books" in out
    assert "websocket" in out and "live" in out
    assert "60,015.00" in out  # the worst price of 1.5 BTC on the loopback book
