"""`liquidroute execute --pools ... --rpc ...` and `resume` as a user runs them, on anvil.

The kill test runs `execute --live` in a subprocess while anvil's automine is off: the swap
is signed, journalled and broadcast, then sits in the mempool; the process is SIGKILLed
there (after the broadcast, before any receipt). `resume` must then decide the swap's fate
from the chain alone — unknown while it is pending, filled from its receipt once mined —
and never send a second swap (the account's nonce and the pool's Swap events say so).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app
from liquidroute.router.journal import Journal
from tests.onchain.conftest import DEV_KEY, E18, World, nonce, swaps_by_me

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def pool_args(w: World, *extra: str, pools: str | None = None) -> list[str]:
    return [
        "--pools",
        pools or f"uniswap-v3:{w.v3},uniswap-v2:{w.v2}",
        "--rpc",
        w.chain.url,
        "--token",
        f"BTC={w.uni.token0}",
        "--token",
        f"USDT={w.uni.token1}",
        "--swap-router",
        w.uni.router,
        "--v2-router",
        w.v2_router,
        *extra,
    ]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIQUIDROUTE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIQUIDROUTE_EVM_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("LIQUIDROUTE_EVM_WALLET", raising=False)
    monkeypatch.delenv("LIQUIDROUTE_RPC_URL", raising=False)
    return tmp_path


def test_dry_run_execute_simulates_each_swap_with_eth_call(world, home) -> None:
    w = world
    n0 = nonce(w)
    args = ["execute", "BTC/USDT", "buy", "1.5", "--wallet", w.chain.me, "--json"]
    result = runner.invoke(app, [*args, *pool_args(w)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["live"] is False and report["complete"] is True
    venues = {c["venue"] for c in report["children"]}
    assert venues == {f"uniswap-v3:{w.v3}", f"uniswap-v2:{w.v2}"}
    for venue in venues:
        assert f"{venue}: eth_call of the swap pays" in result.stderr
    assert result.stderr.count("(equal to the wei)") == 2
    assert "dry run: nothing was sent" in result.stderr
    assert nonce(w) == n0


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (["--live"], {}, "--live pool swaps need a key: set LIQUIDROUTE_EVM_PRIVATE_KEY"),
        ([], {}, "pass --wallet ADDRESS or set LIQUIDROUTE_EVM_PRIVATE_KEY"),
        (["--live"], {"LIQUIDROUTE_EVM_PRIVATE_KEY": "0x1234"}, "is not a valid hex private"),
    ],
)
def test_pool_execute_refusals_are_one_line(world, home, monkeypatch, extra, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    n0 = nonce(world)
    result = runner.invoke(app, ["execute", "BTC/USDT", "buy", "1", *extra, *pool_args(world)])
    assert result.exit_code != 0 and message in result.stderr
    assert "Traceback" not in result.output and nonce(world) == n0
    assert "0x1234" not in result.output  # a bad key is not echoed either


def test_sample_pools_and_a_missing_rpc_are_refused(world, home) -> None:
    sample = runner.invoke(app, ["execute", "BTC/USDT", "buy", "1", "--pools", "sample"])
    assert sample.exit_code == 2 and "quote-only" in sample.stderr
    args = ["execute", "BTC/USDT", "buy", "1", "--pools", f"uniswap-v3:{world.v3}"]
    no_rpc = runner.invoke(app, args)
    assert no_rpc.exit_code == 2 and "--pools needs --rpc URL" in no_rpc.stderr


def _signed(journal: Path) -> list[str]:
    """The journalled swap hashes (read as a restarted process would)."""
    try:
        db = sqlite3.connect(journal)
        rows = db.execute("SELECT detail FROM events WHERE kind = 'signed'").fetchall()
        db.close()
    except sqlite3.Error:
        return []
    return [json.loads(r[0])["tx_hash"] for r in rows]


def test_a_killed_execute_resumes_from_the_receipt_without_a_second_swap(
    world, home, monkeypatch
) -> None:
    w = world
    journal = home / "journal.sqlite3"
    env = {
        **os.environ,
        "LIQUIDROUTE_EVM_PRIVATE_KEY": DEV_KEY,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    n0 = nonce(w)
    w.rpc.request("evm_setAutomine", [False])  # the swap waits in the mempool
    args = ["execute", "BTC/USDT", "buy", "1", "--live", "--journal", str(journal)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "liquidroute", *args, *pool_args(w, pools=f"uniswap-v3:{w.v3}")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        tx_hash = None
        while time.monotonic() < deadline and proc.poll() is None:
            hashes = _signed(journal)
            if hashes and w.rpc.request("eth_getTransactionByHash", [hashes[0]]):
                tx_hash = hashes[0]  # journalled, then broadcast: in the node's mempool
                break
            time.sleep(0.02)
        assert tx_hash is not None, proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)  # after the broadcast, before the receipt
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert DEV_KEY[2:] not in (out + err).decode()
    (parent,) = Journal(journal).parents()
    assert parent.state == "running"
    (child,) = Journal(journal).children(parent.parent_id)
    assert child.venue_order_id == tx_hash and child.state.value == "submitted"

    monkeypatch.setenv("LIQUIDROUTE_EVM_PRIVATE_KEY", DEV_KEY)
    resume = ["resume", parent.parent_id, "--journal", str(journal), "--rpc", w.chain.url]
    pending = runner.invoke(app, [*resume, "--json"])
    assert pending.exit_code == 3, pending.output  # still in the mempool: unknown, not resent
    assert json.loads(pending.stdout)["stop_reason"] == "unknown_fate"
    assert w.rpc.request("eth_getTransactionCount", [w.chain.me, "pending"]) == hex(n0 + 1)

    w.rpc.request("evm_mine", [])  # the broadcast swap is mined now
    w.rpc.request("evm_setAutomine", [True])
    done = runner.invoke(app, [*resume, "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["complete"] and report["stop_reason"] == "filled"
    (filled,) = report["children"]
    assert filled["venue_order_id"] == tx_hash and filled["state"] == "filled"
    (log,) = swaps_by_me(w, w.v3)  # one swap on chain, the journalled one
    assert log["transactionHash"] == tx_hash
    assert nonce(w) == n0 + 1
    amount0 = int.from_bytes(bytes.fromhex(log["data"][2:66]), "big", signed=True)
    assert filled["filled"] == pytest.approx(-amount0 / E18, rel=1e-15)  # the receipt's fill
    text = done.output + pending.output + journal.read_bytes().decode("latin-1")
    assert DEV_KEY[2:] not in text


def test_live_execute_across_a_loopback_exchange_and_the_pools(world, home, monkeypatch):
    """`execute --venues a --pools ... --live`: exchange keys and the EVM key from the
    environment, one parent filled across the exchange and both pools, nothing leaked."""
    from tests.cli.test_cli_execute import venue_env
    from tests.loopback.binance_server import SECRET, BinanceLoopback
    from tests.onchain.conftest import BOOK_ASKS, BOOK_BIDS

    w = world
    ex = BinanceLoopback(asks=BOOK_ASKS, bids=BOOK_BIDS).start()
    try:
        for k, v in {**venue_env("A", ex), "LIQUIDROUTE_EVM_PRIVATE_KEY": DEV_KEY}.items():
            monkeypatch.setenv(k, v)
        journal = home / "j.sqlite3"
        n0 = nonce(w)
        args = ["execute", "BTC/USDT", "buy", "4", "--venues", "a=binance", "--live", "--json"]
        args += ["--journal", str(journal), "--max-rounds", "4"]
        result = runner.invoke(app, [*args, *pool_args(w)])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["live"] and report["complete"]
        venues = {c["venue"] for c in report["children"]}
        assert {"a", f"uniswap-v3:{w.v3}", f"uniswap-v2:{w.v2}"} <= venues
        swaps = [c for c in report["children"] if c["venue"].startswith("uniswap")]
        assert nonce(w) == n0 + len(swaps)
        assert all(c["venue_order_id"].startswith("0x") for c in swaps)  # the tx hashes
        exchange = sum(o["executedQty"] for o in ex.orders.values())
        assert sum(c["filled"] for c in report["children"] if c["venue"] == "a") == (
            pytest.approx(exchange)
        )
        text = result.output + journal.read_bytes().decode("latin-1")
        assert DEV_KEY[2:] not in text and SECRET not in text
    finally:
        ex.stop()
