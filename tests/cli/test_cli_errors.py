"""First contact: offline venues, markup-looking text, negative amounts, a book that runs out.

Every case: the exit code of the README's table, a one-line message that names the venue or
field, and never a traceback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app

runner = CliRunner()


@pytest.fixture
def dead_venues(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """binance and okx pointed at a loopback port where nothing listens (refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("BINANCE", "OKX"):
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv(f"LIQUIDROUTE_{name}_OPTIONS", json.dumps({"fetchCurrencies": False}))
    yield ["binance", "okx"]


def _one_clear_line(result, *words: str) -> None:
    assert "Traceback" not in result.output
    err = result.stderr
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, err)


@pytest.mark.parametrize(
    "args",
    [
        ["quote", "BTC/USDT", "buy", "1", "--venues", "binance,okx", "--timeout", "5"],
        ["convert", "USDT", "ETH", "10000", "--venues", "binance,okx", "--bridges", "BTC,USDC"],
        ["execute", "BTC/USDT", "buy", "1", "--venues", "binance,okx", "--timeout", "5"],
    ],
    ids=["quote", "convert", "execute"],
)
def test_unreachable_venues_exit_1_naming_each_venue_and_cause(dead_venues, args, tmp_path):
    if args[0] == "execute":
        args = [*args, "--journal", str(tmp_path / "j.sqlite3")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # a venue error, not bad input (2)
    _one_clear_line(result, "binance:", "okx:", "unreachable")
    assert "unknown source asset" not in result.stderr


def test_one_unreachable_venue_of_two_is_left_out_not_fatal(dead_venues, loopback, monkeypatch):
    """convert still routes when one venue answers: the other is a note naming it."""
    monkeypatch.setenv("LIQUIDROUTE_BINANCE_URL", loopback.base_url)
    monkeypatch.setenv(
        "LIQUIDROUTE_BINANCE_OPTIONS",
        json.dumps({"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}),
    )
    result = runner.invoke(app, ["convert", "USDT", "BTC", "60015", "--venues", "binance,okx"])
    assert result.exit_code == 0, result.output
    assert "okx left out: okx: unreachable" in result.stderr


@pytest.mark.parametrize("text", ["[/x]", "[bold]BTC[/bold]/USDT", "[binance]/USDT"])
def test_user_text_is_never_read_as_markup(text):
    result = runner.invoke(app, ["quote", text, "buy", "1", "--sample"])
    assert result.exit_code == 2, result.output
    _one_clear_line(result, text.upper())  # symbols are upper-cased, kept literally


def test_error_text_is_never_read_as_markup(tmp_path, monkeypatch):
    """`--live` without keys must show the `[binance]` section name a user has to write."""
    for var in ("LIQUIDROUTE_BINANCE_API_KEY", "LIQUIDROUTE_BINANCE_SECRET"):
        monkeypatch.delenv(var, raising=False)
    result = runner.invoke(
        app,
        [
            "execute",
            "BTC/USDT",
            "buy",
            "0.1",
            "--venues",
            "binance",
            "--live",
            "--config",
            str(tmp_path / "none.toml"),
            "--journal",
            str(tmp_path / "j.sqlite3"),
        ],
    )
    assert result.exit_code != 0
    _one_clear_line(result, "[binance]", "LIQUIDROUTE_BINANCE_API_KEY")


@pytest.mark.parametrize(
    "args",
    [
        ["quote", "BTC/USDT", "buy", "-1", "--sample"],
        ["execute", "BTC/USDT", "sell", "-0.5", "--sample"],
        ["convert", "USDT", "ETH", "-1.5e3", "--sample"],
    ],
)
def test_negative_amount_is_a_clear_usage_error(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"AMOUNT must be a positive number, got {args[3]}" in result.output
    assert "No such option" not in result.output


def test_unknown_option_still_says_so():
    result = runner.invoke(app, ["quote", "BTC/USDT", "buy", "1", "--sampel"])
    assert result.exit_code == 2
    assert "No such option: --sampel" in result.output


def test_execute_beyond_the_book_says_the_book_ran_out(tmp_path):
    result = runner.invoke(
        app,
        ["execute", "BTC/USDT", "buy", "500", "--sample", "--journal", str(tmp_path / "j.db")],
    )
    assert result.exit_code == 3, result.output
    _one_clear_line(result, "the books ran out", "of the 500 BTC")
    assert "rules" not in result.stderr


def test_the_one_console_prints_text_as_is(capsys):
    """Every command prints through `console()`: brackets and angle brackets survive."""
    from liquidroute.cli.common import console, fail

    console().print("[/x] [binance] <VENUE> [bold]b[/bold]")
    assert capsys.readouterr().out.strip() == "[/x] [binance] <VENUE> [bold]b[/bold]"
    exit_ = fail("add a [binance] section")
    assert exit_.exit_code == 2
    assert capsys.readouterr().err.strip() == "error: add a [binance] section"
