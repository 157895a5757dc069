"""Every command's table at COLUMNS=80 (a narrow terminal) and in a pipe (no limit).

Oracle: the same command's --json output. Every id and number it holds must appear WHOLE
in the text output (never `bd4bcaf…`, never a number broken over two lines), no line is
wider than the terminal, and a pipe gets full-width lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app
from liquidroute.cli.render import amount, fixed

runner = CliRunner()
BOOKS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "books"


def run(args: list[str], columns: int | None) -> tuple[str, str]:
    env = {"COLUMNS": str(columns)} if columns else {}
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def check_text(text: str, columns: int | None, whole: list[str]) -> None:
    assert "…" not in text
    if columns:
        widths = [len(line.rstrip()) for line in text.splitlines()]
        assert max(widths) <= columns, text
    for token in whole:
        assert token in text, (token, text)


WIDTHS = [80, None]


@pytest.mark.parametrize("columns", WIDTHS)
def test_quote(columns):
    args = ["quote", "BTC/USDT", "sell", "50", "--sample"]
    text, _ = run(args, columns)
    data = json.loads(run([*args, "--json"], None)[0])
    whole = [leg["venue"] for leg in data["legs"]]
    whole += [amount(leg["amount"]) for leg in data["legs"]]
    whole += [fixed(leg[k]) for leg in data["legs"] for k in ("avg_price", "worst_price", "cost")]
    whole += [fixed(cost) for cost in data["baselines"].values()]
    whole += [f"{fixed(data['total_cost'])} USDT"]
    check_text(text, columns, whole)


@pytest.mark.parametrize("columns", WIDTHS)
def test_convert(columns):
    args = ["convert", "USDT", "ETH", "200000", "--sample"]
    text, _ = run(args, columns)
    data = json.loads(run([*args, "--json"], None)[0])
    legs = [leg for hop in data["hops"] for leg in hop["legs"]]
    whole = [f"{leg['asset_in']}->{leg['asset_out']}" for leg in legs]
    whole += [f"{amount(leg['amount_in'])} {leg['asset_in']}" for leg in legs]
    whole += [f"{amount(leg['amount_out'])} {leg['asset_out']}" for leg in legs]
    whole += [f"{amount(data['amount_out'])} ETH"]
    check_text(text, columns, whole)


@pytest.mark.parametrize("columns", WIDTHS)
def test_execute_and_orders(columns, tmp_path):
    journal = str(tmp_path / "journal.sqlite3")
    args = ["execute", "BTC/USDT", "sell", "20", "--sample", "--journal", journal]
    data = json.loads(run([*args, "--json"], None)[0])
    text, _ = run(args, columns)  # the same order again: same fills, a new parent id
    parent = next(line for line in text.splitlines() if line.startswith("Parent id"))
    parent_id = parent.split()[-1]
    assert len(parent_id) == len(data["parent_id"])
    prefix = data["parent_id"]
    whole = [c["client_id"].replace(prefix, parent_id) for c in data["children"]]
    whole += [amount(c["filled"]) for c in data["children"]]
    check_text(text, columns, whole)
    listing, _ = run(["orders", "--journal", journal], columns)
    rows = json.loads(run(["orders", "--journal", journal, "--json"], None)[0])
    assert parent_id in {r["parent_id"] for r in rows}
    check_text(listing, columns, [r["parent_id"] for r in rows] + [journal])


@pytest.mark.parametrize("columns", WIDTHS)
def test_backtest(columns):
    files = [
        str(BOOKS / "binance_incremental_book_L2_BTCUSDT.csv.gz"),
        str(BOOKS / "bybit-spot_incremental_book_L2_BTCUSDT.csv.gz"),
    ]
    args = ["backtest", *files, "--align", "start", "--every", "5s", "--size", "20"]
    text, _ = run(args, columns)
    data = json.loads(run([*args, "--json"], None)[0])
    rows = data["strategies"] if isinstance(data, dict) and "strategies" in data else data
    names = [r["strategy"] for r in rows] if isinstance(rows, list) else list(rows)
    assert "optimal" in names and "best_venue" in names
    check_text(text, columns, [*names, "Saved (USDT)"])


def test_a_pipe_gets_full_width_lines():
    text, _ = run(["quote", "BTC/USDT", "sell", "50", "--sample"], None)
    header = next(line for line in text.splitlines() if "Venue" in line)
    assert len(header.rstrip()) > 80  # one table row per leg, not the narrow layout
