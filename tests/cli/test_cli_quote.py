"""`liquidroute quote` end to end on the real sample and recorded files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from liquidroute import route
from liquidroute.cli.app import app
from liquidroute.venues.sample import sample_markets, sample_snapshots
from tests.conftest import BOOK_FILES

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_quick_start_quote_splits_and_shows_savings_in_bps_and_quote():
    """The README's first command: several venues, savings per baseline in bps AND USDT."""
    result = invoke("quote", "BTC/USDT", "sell", "50", "--sample")
    assert result.exit_code == 0, result.output
    out = result.stdout
    direct = route(sample_snapshots(), "sell", 50, markets=sample_markets())
    assert len(direct.legs) >= 3  # the point of the demo: depth matters at this size
    for leg in direct.legs:
        assert leg.venue in out and f"{leg.cost:,.2f}" in out
    for words in ("optimal split over 3 venues", "Worst price", "Optimal saves (USDT)"):
        assert words in out
    best = direct.baselines["best_venue"]
    assert best is not None
    saved = direct.total_cost - best  # a sell: more proceeds
    assert saved > 100  # USDT, against the best single venue
    row = next(line for line in out.splitlines() if "best single venue" in line)
    assert f"{saved:,.2f}" in row and f"{direct.savings_bps['best_venue']:.2f}" in row
    assert "Total proceeds  " in out and " USDT (fees " in out
    assert "re-centred on a common mid" in result.stderr


def test_amounts_at_each_venues_precision():
    """On its lot, a leg prints with the venue's decimals (what would be sent)."""
    out = invoke("quote", "BTC/USDT", "sell", "50", "--sample").stdout
    direct = route(sample_snapshots(), "sell", 50, markets=sample_markets())
    markets = sample_markets()
    for leg in direct.legs:
        step = markets[leg.venue].amount_step
        assert step is not None
        decimals = len(f"{step:.10f}".rstrip("0").split(".")[1])  # 1e-05 -> 5
        row = next(line for line in out.splitlines() if line.startswith(leg.venue))
        assert f"{leg.amount:,.{decimals}f}" in row.split(), (leg.venue, row)


def test_sample_quote_table_certificate():
    result = invoke("quote", "BTC/USDT", "buy", "5", "--sample", "--no-rules")
    assert result.exit_code == 0, result.output
    assert "Marginal price" in result.stdout and "5 % grid" in result.stdout


def test_symbols_any_case_and_every_sample_symbol():
    lower = invoke("quote", "btc/usdt", "BUY", "2", "--sample", "--json")
    upper = invoke("quote", "BTC/USDT", "buy", "2", "--sample", "--json")
    assert lower.exit_code == 0, lower.output
    assert json.loads(lower.stdout)["total_cost"] == json.loads(upper.stdout)["total_cost"]
    eth = invoke("quote", "eth/usdt", "buy", "20", "--sample", "--json")
    assert eth.exit_code == 0, eth.output
    assert json.loads(eth.stdout)["symbol"] == "ETH/USDT"
    assert "DERIVED" in eth.stderr  # never passed off as recorded
    perp = invoke("quote", "BTC/USDT:USDT", "sell", "3", "--sample", "--json")
    assert perp.exit_code == 0, perp.output
    assert [leg["venue"] for leg in json.loads(perp.stdout)["legs"]] == ["bybit"]


def test_sample_quote_json_is_the_library_quote():
    result = invoke("quote", "BTC/USDT", "sell", "25", "--sample", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    direct = route(sample_snapshots(), "sell", 25, markets=sample_markets())
    assert data["total_cost"] == pytest.approx(direct.total_cost, rel=1e-12)
    assert [leg["venue"] for leg in data["legs"]] == [leg.venue for leg in direct.legs]
    assert data["complete"] is True and data["source"].startswith("sample")
    assert set(data["baselines"]) == {"best_venue", "equal_split", "pro_rata", "percent_grid"}


def test_spend_and_fee_override():
    result = invoke(
        "quote",
        "BTC/USDT",
        "buy",
        "100000",
        "--sample",
        "--spend",
        "--json",
        "--fee",
        "okx=0",
        "--fee",
        "binance=0",
    )
    data = json.loads(result.stdout)
    assert result.exit_code == 0
    # lots: a spend lands on the lot grid, at most one (Binance 1e-5 BTC) lot short
    assert 100000 - 1.0 <= data["total_cost"] <= 100000 * (1 + 1e-9)
    assert data["total_fees"] == pytest.approx(
        sum(leg["fee"] for leg in data["legs"] if leg["venue"] == "bybit")
    )


def test_insufficient_liquidity_exits_3_with_the_quote():
    result = invoke("quote", "BTC/USDT", "buy", "100000", "--sample", "--json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["unfilled"] > 0 and data["complete"] is False
    assert "insufficient liquidity" in result.stderr


def test_books_quote_and_time():
    result = invoke(
        "quote",
        "BTC/USDT",
        "buy",
        "1",
        "--books",
        str(BOOK_FILES["okex"]),
        "--at",
        "2022-05-13T16:27:10Z",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["legs"][0]["venue"] == "okx"
    assert data["timestamps"]["okx"] <= 1652459230000


def test_books_with_wrong_symbol():
    result = invoke("quote", "BTC/USDT", "buy", "1", "--books", str(BOOK_FILES["bybit"]))
    assert result.exit_code == 1
    assert "holds BTC/USDT:USDT" in result.stderr and "Traceback" not in result.output


def test_books_from_different_windows_are_left_out_by_the_guard():
    args = [
        "quote",
        "BTC/USDT",
        "buy",
        "1",
        "--books",
        str(BOOK_FILES["okex"]),
        "--books",
        str(BOOK_FILES["binance"]),
    ]
    result = invoke(*args)
    assert result.exit_code == 1
    assert "left out by the guard" in result.stderr and "other venue" in result.stderr
    ok = invoke(*args, "--no-guard", "--json")
    assert ok.exit_code == 0
    assert [leg["venue"] for leg in json.loads(ok.stdout)["legs"]] == ["okx"]  # 30k < 61k


def test_bad_files_exit_cleanly(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    garbled = tmp_path / "g.csv.gz"
    garbled.write_bytes(b"\x1f\x8b not really gzip")
    for path, words in (
        (empty, "empty"),
        (garbled, "g.csv.gz"),
        (tmp_path / "missing.csv", "no such file"),
    ):
        result = invoke("quote", "BTC/USDT", "buy", "1", "--books", str(path))
        assert result.exit_code == 1, result.output
        assert words in result.stderr and "Traceback" not in result.output
        assert result.stdout == ""


def test_unknown_symbol_in_sample():
    result = invoke("quote", "SOL/USDT", "buy", "1", "--sample")
    assert result.exit_code == 2
    assert "the sample holds BTC/USDT, BTC/USDT:USDT, ETH/USDT" in result.stderr


def test_venues_lists_live_and_sample():
    result = invoke("venues")
    assert result.exit_code == 0
    assert "binance" in result.stdout and "okx" in result.stdout and "Sample" in result.stdout


def test_rule_flags_shape_the_route():
    result = invoke(
        "quote",
        "BTC/USDT",
        "buy",
        "10",
        "--sample",
        "--json",
        "--balance",
        "bybit=100000",
        "--max-venues",
        "2",
        "--fixed-cost",
        "okx=20",
        "--max-share",
        "0.9",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    legs = {leg["venue"]: leg for leg in data["legs"]}
    assert len(legs) <= 2
    assert legs["bybit"]["cost"] <= 100000 * (1 + 1e-9)
    assert "cut by balance" in legs["bybit"]["notes"]
    assert all(leg["amount"] <= 9.0 + 1e-9 for leg in legs.values())
    assert data["solver"] in ("milp", "rounded-optimal", "rounded-fallback")
    assert data["total_cost"] >= data["lower_bound"] - 1e-6
    table = invoke("quote", "BTC/USDT", "buy", "10", "--sample", "--balance", "bybit=100000")
    assert "Rules" in table.stdout and "cut by" in table.stdout


def test_no_rules_gives_the_continuous_optimum():
    result = invoke("quote", "BTC/USDT", "buy", "20", "--sample", "--json", "--no-rules")
    data = json.loads(result.stdout)
    assert data["solver"] == "exact" and data["filled"] == pytest.approx(20)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--balance", "bybit=-5"], "balances['bybit'] must be a non-negative"),
        (["--fixed-cost", "okx=nan"], "--fixed-cost takes VENUE=NUMBER"),
        (["--balance", "kraken=5"], "balances name venue(s) not routed to"),
        (["--max-venues", "0"], "max-venues"),
    ],
)
def test_bad_rule_flags(args, words):
    result = invoke("quote", "BTC/USDT", "buy", "1", "--sample", *args)
    assert result.exit_code == 2, result.output
    assert words in result.stderr or words in result.output


def test_impossible_rules_exit_3():
    result = invoke(
        "quote",
        "BTC/USDT",
        "buy",
        "0.5",
        "--sample",
        "--balance",
        "binance=0.1",
        "--balance",
        "bybit=0.1",
        "--balance",
        "okx=0.1",
    )
    assert result.exit_code == 3, result.output
    assert "no split" in result.stderr
