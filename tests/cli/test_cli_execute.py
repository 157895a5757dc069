"""`liquidroute execute/resume/orders` as a user runs them, against loopback exchanges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app
from tests.loopback.binance_server import API_KEY, SECRET, BinanceLoopback

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
SPOT_ONLY = json.dumps({"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False})


def venue_env(name: str, ex: BinanceLoopback, keys: bool = True) -> dict[str, str]:
    env = {f"LIQUIDROUTE_{name}_URL": ex.base_url, f"LIQUIDROUTE_{name}_OPTIONS": SPOT_ONLY}
    if keys:
        env |= {f"LIQUIDROUTE_{name}_API_KEY": API_KEY, f"LIQUIDROUTE_{name}_SECRET": SECRET}
    return env


@pytest.fixture
def two(tmp_path, monkeypatch):
    bids = [[59990.0, 1.0]]
    a = BinanceLoopback(hang_s=6.0, bids=bids, asks=[[60000.0, 1.0], [60030.0, 4.0]]).start()
    b = BinanceLoopback(hang_s=6.0, bids=bids, asks=[[60005.0, 1.0], [60040.0, 4.0]]).start()
    monkeypatch.setenv("LIQUIDROUTE_HOME", str(tmp_path / "home"))
    yield a, b
    a.stop()
    b.stop()


def test_sample_dry_run_and_orders_listing(tmp_path):
    journal = str(tmp_path / "j.sqlite3")
    result = runner.invoke(
        app, ["execute", "BTC/USDT", "buy", "3", "--sample", "--journal", journal, "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["live"] is False and report["complete"] is True
    assert "dry run: nothing was sent" in result.stderr
    listing = runner.invoke(app, ["orders", "--journal", journal, "--json"])
    rows = json.loads(listing.stdout)
    assert rows[0]["parent_id"] == report["parent_id"] and rows[0]["mode"] == "dry-run"
    table = runner.invoke(
        app, ["execute", "BTC/USDT", "sell", "1", "--sample", "--journal", journal]
    )
    assert "DRY RUN" in table.stdout and "Client id" in table.stdout


def test_dry_run_on_live_books_sends_no_order(two, monkeypatch, tmp_path):
    a, b = two
    for name, ex in (("A", a), ("B", b)):
        for k, v in venue_env(name, ex, keys=False).items():
            monkeypatch.setenv(k, v)
    result = runner.invoke(
        app,
        [
            "execute",
            "BTC/USDT",
            "buy",
            "2",
            "--venues",
            "a=binance,b=binance",
            "--journal",
            str(tmp_path / "j"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["filled"] == pytest.approx(2.0)
    assert a.count("/api/v3/depth") == 1 and b.count("/api/v3/depth") == 1
    assert a.count("/api/v3/order") == 0 and b.count("/api/v3/order") == 0


def live_args(tmp_path, *extra):
    return [
        "execute",
        "BTC/USDT",
        "buy",
        "2",
        "--venues",
        "a=binance,b=binance",
        "--live",
        "--journal",
        str(tmp_path / "j"),
        *extra,
    ]


def test_live_refusals_before_anything_is_sent(two, monkeypatch, tmp_path):
    a, b = two
    for name, ex in (("A", a), ("B", b)):
        for k, v in venue_env(name, ex, keys=False).items():
            monkeypatch.setenv(k, v)
    no_keys = runner.invoke(app, live_args(tmp_path))
    assert no_keys.exit_code == 1 and "no credentials" in no_keys.stderr
    assert "LIQUIDROUTE_A_API_KEY" in no_keys.stderr

    config = tmp_path / "creds.toml"
    config.write_text(f'[a]\napiKey = "{API_KEY}"\nsecret = "{SECRET}"\n')
    config.chmod(0o644)
    readable = runner.invoke(app, live_args(tmp_path, "--config", str(config)))
    assert readable.exit_code == 2 and "chmod 600" in readable.stderr
    assert SECRET not in readable.output

    use_venues(monkeypatch, two)
    switch = tmp_path / "KILL"
    switch.touch()
    killed = runner.invoke(app, live_args(tmp_path, "--kill-switch", str(switch)))
    assert killed.exit_code == 2 and "kill switch" in killed.stderr
    big = runner.invoke(app, live_args(tmp_path, "--max-notional", "1000"))
    assert big.exit_code == 2 and "max-notional" in big.stderr
    sample_live = runner.invoke(app, ["execute", "BTC/USDT", "buy", "1", "--sample", "--live"])
    assert sample_live.exit_code == 2 and "dry-run only" in sample_live.stderr
    assert a.posted_ids == [] and b.posted_ids == []
    for out in (no_keys, readable, killed, big):
        assert SECRET not in out.output and "Traceback" not in out.output


def cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "liquidroute", *args],
        env=os.environ | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_crash_after_first_submission_then_resume(two, tmp_path):
    a, b = two
    env = venue_env("A", a) | venue_env("B", b) | {"LIQUIDROUTE_HOME": str(tmp_path / "home")}
    journal = str(tmp_path / "journal.sqlite3")
    a.fail("/api/v3/order", "accept_then_hang")  # a takes the order, never answers
    proc = cli(
        "execute",
        "BTC/USDT",
        "buy",
        "2.5",
        "--venues",
        "a=binance,b=binance",
        "--live",
        "--journal",
        journal,
        "--timeout",
        "30",
        "--json",
        env=env,
    )
    deadline = time.monotonic() + 20
    while not (a.posted_ids and b.orders) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert a.posted_ids and b.orders, "the first round was never sent"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    resumed = cli("resume", "--journal", journal, "--json", env=env)
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    report = json.loads(out)
    server_filled = sum(o["executedQty"] for ex in two for o in ex.orders.values())
    assert report["complete"] and report["filled"] == pytest.approx(2.5)
    assert report["filled"] == pytest.approx(server_filled)
    posted = a.posted_ids + b.posted_ids
    assert len(posted) == len(set(posted)), "an order was sent twice"
    states = {c["client_id"]: c["state"] for c in report["children"]}
    assert set(states) == set(posted) and set(states.values()) == {"filled"}
    listing = runner.invoke(app, ["orders", "--journal", journal, "--json"])
    assert json.loads(listing.stdout)[0]["state"] == "filled"


def use_venues(monkeypatch, two, keys: bool = True) -> None:
    """Point venues A and B at the two loopback exchanges (with keys by default)."""
    for name, ex in zip("AB", two, strict=True):
        for k, v in venue_env(name, ex, keys).items():
            monkeypatch.setenv(k, v)


def journal_dump(path: Path) -> str:
    """Every row of every table of the journal, as SQL text."""
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


def test_secrets_never_reach_output_journal_or_orders(two, monkeypatch, tmp_path):
    a, _ = two
    use_venues(monkeypatch, two)
    # A's gateway echoes the signed request (query string, body, key header) in its errors:
    # on the order itself (fate unknown) and on every lookup (it stays unknown)
    a.fail("POST /api/v3/order", "echo500")
    a.fail("GET /api/v3/order", "echo500", times=20)
    journal = tmp_path / "j"
    runs = [
        runner.invoke(app, [*live_args(tmp_path, "--json"), "--timeout", "5"]),
        runner.invoke(app, live_args(tmp_path)),
    ]
    runs.append(runner.invoke(app, ["orders", "--journal", str(journal), "--json"]))
    runs.append(runner.invoke(app, ["orders", "--journal", str(journal)]))
    assert runs[0].exit_code == 3 and "fate is unknown" in runs[0].stderr
    report = json.loads(runs[0].stdout)
    lost = [c for c in report["children"] if c["venue"] == "a"]
    assert lost and lost[0]["state"] == "unknown" and "500" in lost[0]["error"]
    signatures = [s for ex in two for s in ex.signatures if s]
    assert len(signatures) > 5  # the requests were signed, and echoed
    texts = {
        f"run {i} {s}": getattr(r, s) for i, r in enumerate(runs) for s in ("stdout", "stderr")
    }
    texts["journal"] = journal_dump(journal)
    assert "lookup_failed" in texts["journal"] and "internal error handling" in texts["journal"]
    for where, text in texts.items():
        assert API_KEY not in text, where
        assert SECRET not in text, where
        assert "signature=" not in text.lower() or "signature=***" in text.lower(), where
        for signature in signatures:
            assert signature not in text, where


def test_journal_is_private_even_for_a_dry_run(tmp_path, monkeypatch):
    import stat

    home = tmp_path / "fresh" / "home"
    monkeypatch.setenv("LIQUIDROUTE_HOME", str(home))
    monkeypatch.setattr(os, "umask", os.umask)  # restored below
    old = os.umask(0o022)
    try:
        result = runner.invoke(app, ["execute", "BTC/USDT", "buy", "1", "--sample", "--json"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700
    files = list(home.iterdir())
    assert home / "journal.sqlite3" in files
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    # an existing, too-open journal is tightened
    loose = tmp_path / "loose.sqlite3"
    loose.touch(mode=0o644)
    loose.chmod(0o644)
    runner.invoke(app, ["orders", "--journal", str(loose)])
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_cap_refusal_in_a_fallback_round_exits_2_saying_what_was_spent(two, monkeypatch, tmp_path):
    a, _ = two
    use_venues(monkeypatch, two)
    a.fail("/api/v3/order", "insufficient_balance")
    # 2 BTC: A 1 @ 60000 + B 1 @ 60005 = 120,125 with fees; after A refuses, B's
    # next level (60040) would take it to 120,205: over the cap
    result = runner.invoke(
        app, live_args(tmp_path, "--max-notional", "120150", "--slippage-bps", "0")
    )
    assert result.exit_code == 2, result.output
    assert "spent 60,065.0" in result.stderr and "max-notional" in result.stderr
    spent = sum(o["cummulativeQuoteQty"] * (1 + 0.001) for ex in two for o in ex.orders.values())
    assert spent <= 120_150


def test_resume_continue_fills_a_stopped_parents_remainder(two, monkeypatch, tmp_path):
    _, b = two
    use_venues(monkeypatch, two)
    b.fail("/api/v3/order", "insufficient_balance")
    first = runner.invoke(app, live_args(tmp_path, "--max-rounds", "1", "--json"))
    assert first.exit_code == 3
    parent = json.loads(first.stdout)["parent_id"]
    assert f"resume --continue {parent}" in first.stderr
    journal = str(tmp_path / "j")
    second = runner.invoke(app, ["resume", "--continue", parent, "--journal", journal, "--json"])
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert report["continues"] == parent and report["complete"]
    assert report["requested"] == pytest.approx(1.0)
    server = sum(o["executedQty"] for ex in two for o in ex.orders.values())
    assert server == pytest.approx(2.0)
    rows = json.loads(runner.invoke(app, ["orders", "--journal", journal, "--json"]).stdout)
    assert rows[0]["continues"] == parent and rows[1]["state"] == "continued"
    again = runner.invoke(app, ["resume", "--continue", report["parent_id"], "--journal", journal])
    assert again.exit_code == 2 and "only a stopped parent" in again.stderr
    # the stopped parent was continued once: neither continued nor resumed again
    twice = runner.invoke(app, ["resume", "--continue", parent, "--journal", journal])
    assert twice.exit_code == 2 and "continued already" in twice.stderr
    resumed = runner.invoke(app, ["resume", parent, "--journal", journal])
    assert resumed.exit_code == 2 and "resume that one instead" in resumed.stderr
    assert sum(o["executedQty"] for ex in two for o in ex.orders.values()) == pytest.approx(2.0)


def test_htx_query_string_signatures_never_leak(monkeypatch, tmp_path):
    """HTX signs in the query string: the key and signature are in every private URL."""
    from urllib.parse import quote

    from tests.loopback.htx_server import HTX_KEY, HTX_SECRET, OPTIONS, HtxLoopback

    monkeypatch.setenv("LIQUIDROUTE_HOME", str(tmp_path / "home"))
    with HtxLoopback(bids=[[59990.0, 1.0]], asks=[[60000.0, 1.0], [60010.0, 2.0]]) as ex:
        env = {
            "LIQUIDROUTE_H_URL": ex.base_url,
            "LIQUIDROUTE_H_OPTIONS": json.dumps(OPTIONS),
            "LIQUIDROUTE_H_API_KEY": HTX_KEY,
            "LIQUIDROUTE_H_SECRET": HTX_SECRET,
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        journal = tmp_path / "j"
        args = ["execute", "BTC/USDT", "buy", "0.5", "--venues", "h=htx", "--live"]
        runs = [
            runner.invoke(app, [*args, "--journal", str(journal), "--json"]),
            runner.invoke(app, [*args, "--journal", str(journal)]),
            runner.invoke(app, ["orders", "--journal", str(journal), "--json"]),
            runner.invoke(app, ["orders", "--journal", str(journal)]),
        ]
    assert runs[0].exit_code == 3 and "fate is unknown" in runs[0].stderr, runs[0].output
    assert ex.access_keys and set(ex.access_keys) == {HTX_KEY}  # signed in the URL, echoed
    assert len(ex.signatures) >= 4
    texts = {
        f"run {i} {s}": getattr(r, s) for i, r in enumerate(runs) for s in ("stdout", "stderr")
    }
    texts["journal"] = journal_dump(journal)
    assert "internal error handling" in texts["journal"]  # the errors were journalled...
    for where, text in texts.items():  # ...without a key, a secret or a signature
        assert HTX_KEY not in text and HTX_SECRET not in text, where
        assert "AccessKeyId=AKID" not in text, where
        for signature in ex.signatures:  # as sent (URL-encoded) and decoded
            assert signature not in text and quote(signature, safe="") not in text, where
