"""CLI bad input: one clear line on stderr, a non-zero exit, no traceback, no output."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["BTC/USDT", "buy", "0", "--sample"], 2, "AMOUNT must be a positive"),
        (["BTC/USDT", "buy", "nan", "--sample"], 2, "AMOUNT must be a positive finite"),
        (["BTC/USDT", "buy", "inf", "--sample"], 2, "AMOUNT must be a positive finite"),
        (["BTC/USDT", "buy", "ten", "--sample"], 2, "AMOUNT must be a positive number"),
        (["BTC/USDT", "hold", "1", "--sample"], 2, "side must be 'buy' or 'sell'"),
        (["BTCUSDT", "buy", "1", "--sample"], 2, "BASE/QUOTE"),
        (["BTC/USDT", "buy", "1"], 2, "choose exactly one source"),
        (["BTC/USDT", "buy", "1", "--sample", "--venues", "okx"], 2, "--venues and --sample"),
        (["BTC/USDT", "buy", "1", "--sample", "--at", "2024-01-01"], 2, "--at applies"),
        (["BTC/USDT", "buy", "1", "--sample", "--fee", "okx"], 2, "--fee takes VENUE=NUMBER"),
        (["BTC/USDT", "buy", "1", "--sample", "--fee", "okx=abc"], 2, "--fee takes"),
        (["BTC/USDT", "buy", "1", "--venues", " , "], 2, "--venues needs at least one"),
    ],
)
def test_bad_input(args, code, words):
    result = invoke("quote", *args)
    assert result.exit_code == code, result.output
    assert words in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_bad_time_for_at(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n")
    result = invoke("quote", "BTC/USDT", "buy", "1", "--books", str(f), "--at", "yesterday")
    assert result.exit_code == 2
    assert "--at takes ISO-8601" in result.stderr


def test_help_teaches():
    result = invoke("quote", "--help")
    assert result.exit_code == 0
    for words in ("--sample", "--books", "--spend", "--fee", "Exit codes", "Examples"):
        assert words in result.stdout
    top = invoke("--help")
    assert "quote" in top.stdout and "venues" in top.stdout
