"""Bad recorded files get one clear line, fast, in `backtest`, `quote --books` and `data info`."""

from __future__ import annotations

import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app
from liquidroute.errors import DataFileError
from liquidroute.tardis import TardisFile, read_incremental_l2

runner = CliRunner()
HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"


def book_rows(n: int, t0: int = 1_723_161_254_000_000) -> str:
    rows = [
        f"binance,BTCUSDT,{t0},{t0},true,bid,100,1\n",
        f"binance,BTCUSDT,{t0},{t0},true,ask,101,1\n",
    ]
    for i in range(1, n):
        t = t0 + i * 100_000
        rows.append(f"binance,BTCUSDT,{t},{t},false,bid,{100 - (i % 5) * 0.01:.2f},{1 + i % 3}\n")
    return "".join(rows)


def one_line_error(result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def test_a_row_in_year_3000_is_refused_fast(tmp_path):
    path = tmp_path / "binance_far.csv"
    late = 9_223_372_036_854_775_000  # int64-max-ish µs
    path.write_text(HEADER + book_rows(200) + f"binance,BTCUSDT,{late},{late},false,ask,101,2\n")
    started = time.perf_counter()
    bt = runner.invoke(app, ["backtest", str(path), "--every", "1s"])
    one_line_error(bt, "line 203", "local_timestamp", "before 2100")
    quote = runner.invoke(app, ["quote", "BTC/USDT", "buy", "1", "--books", str(path)])
    one_line_error(quote, "line 203", "before 2100")
    assert time.perf_counter() - started < 20  # the old reader hung at 3.5 GB


def test_parquet_with_wrong_column_types(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.table(
            {
                "exchange": ["binance"],
                "symbol": ["BTCUSDT"],
                "timestamp": [1],
                "local_timestamp": [1],
                "is_snapshot": [True],
                "side": ["bid"],
                "price": ["100.0"],  # a string column
                "amount": [1.0],
            }
        ),
        path,
    )
    with pytest.raises(DataFileError, match=r"column 'price' is string, expected double"):
        TardisFile(path)
    result = runner.invoke(app, ["backtest", str(path)])
    one_line_error(result, "column 'price' is string", "data convert")
    info = runner.invoke(app, ["data", "info", str(path)])
    one_line_error(info, "column 'price'")


def test_a_directory_or_a_fifo_says_what_it_is(tmp_path):
    result = runner.invoke(app, ["backtest", str(tmp_path)])
    one_line_error(result, "is a directory")
    quote = runner.invoke(app, ["quote", "BTC/USDT", "buy", "1", "--books", str(tmp_path)])
    one_line_error(quote, "is a directory")
    fifo = tmp_path / "books.csv"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["backtest", str(fifo)])
    one_line_error(result, "is a FIFO")
    info = runner.invoke(app, ["data", "info", str(fifo)])
    one_line_error(info, "is a FIFO")
    missing = runner.invoke(app, ["data", "info", str(tmp_path / "nope.csv")])
    one_line_error(missing, "no such file")


def test_a_crossed_book_shows_in_data_info(tmp_path):
    t = 1_723_161_254_000_000
    path = tmp_path / "crossed.csv"
    path.write_text(
        HEADER
        + f"okex,BTC-USDT,{t},{t},true,bid,100,1\n"
        + f"okex,BTC-USDT,{t},{t},true,ask,101,1\n"
        + f"okex,BTC-USDT,{t + 2_000_000},{t + 2_000_000},false,ask,99,1\n"  # missed deletion
        + f"okex,BTC-USDT,{t + 5_000_000},{t + 5_000_000},false,ask,102,1\n"
    )
    result = runner.invoke(app, ["data", "info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["crossed_books"] == 1 and facts["first_crossed"].startswith("2024-08-08T23:54:16")
    text = runner.invoke(app, ["data", "info", str(path)])
    assert "crossed" in text.stderr and "missed deletions" in text.stderr
    clean = tmp_path / "clean.csv"
    clean.write_text(HEADER + book_rows(50).replace("binance,BTCUSDT", "okex,BTC-USDT"))
    facts = json.loads(runner.invoke(app, ["data", "info", str(clean), "--json"]).stdout)
    assert facts["crossed_books"] == 0 and facts["crossed_checks"] >= 5


def test_errors_name_the_line_in_any_batch(tmp_path):
    """Validation runs batch by batch: a bad row deep in the file still names its line."""
    path = tmp_path / "deep.csv"
    body = book_rows(3000)
    lines = body.splitlines(keepends=True)
    lines[2500] = lines[2500].replace(",false,bid,", ",false,mid,")
    path.write_text(HEADER + "".join(lines))
    source = TardisFile(path, batch_rows=256)
    with pytest.raises(DataFileError, match="line 2502: side must be"):
        for _ in source.batches():
            pass
    lines[2500] = lines[2500].replace(",false,mid,", ",false,bid,")
    t = int(lines[2500].split(",")[3])
    lines[2600] = lines[2600].replace(lines[2600].split(",")[3], str(t - 10**9))
    path.write_text(HEADER + "".join(lines))
    with pytest.raises(DataFileError, match="line 2602: local_timestamp goes backwards"):
        read_incremental_l2(path)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_side_neither_bid_nor_ask_names_its_line(tmp_path, fmt):
    """Our Parquet's text columns are read as dictionaries: a bad word is found there too,
    in a later batch, at its line."""
    import io

    import pyarrow.csv as pcsv

    from liquidroute.tardis import _types

    text = HEADER + book_rows(300)
    lines = text.splitlines(keepends=True)
    lines[250] = lines[250].replace(",bid,", ",buy,")
    path = tmp_path / f"binance_side.{fmt}"
    if fmt == "csv":
        path.write_text("".join(lines))
    else:
        table = pcsv.read_csv(
            io.BytesIO("".join(lines).encode()),
            convert_options=pcsv.ConvertOptions(column_types=_types()),
        )
        pq.write_table(table, path, row_group_size=64)
    source = TardisFile(path, batch_rows=64)
    with pytest.raises(DataFileError, match=r"line 251: side must be 'bid' or 'ask'"):
        sum(len(b) for b in source.batches())
    result = runner.invoke(app, ["backtest", str(path), "--every", "1s"])
    one_line_error(result, "line 251", "side")


def parquet_rows(n: int, symbols: list[str]) -> pa.Table:
    """`book_rows(n)` (n + 1 rows) as a Parquet table, the symbols in equal runs of rows
    (with 3999: 4000 rows, so runs of 2000 fill whole row groups of 1000)."""
    lines = book_rows(n).splitlines()
    cols: dict[str, list] = {c: [] for c in HEADER.strip().split(",")}
    for i, line in enumerate(lines):
        exchange, _, ts, local, snap, side, price, amount = line.split(",")
        values = [exchange, symbols[i * len(symbols) // len(lines)], int(ts), int(local),
                  snap == "true", side, float(price), float(amount)]  # fmt: skip
        for c, v in zip(cols, values, strict=True):
            cols[c].append(v)
    return pa.table(cols)


@pytest.mark.parametrize("statistics", [True, False])
def test_parquet_exchange_and_symbol_proven_by_statistics_or_decoded(tmp_path, statistics):
    """Row-group statistics that show one exchange and one symbol stand in for decoding
    those columns; a later row group with another symbol is refused either way, with or
    without statistics, and the rows read are the same as when they are decoded."""
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    pq.write_table(parquet_rows(3999, ["BTCUSDT"]), one, row_group_size=1000,
                   write_statistics=statistics)  # fmt: skip
    pq.write_table(parquet_rows(3999, ["BTCUSDT", "ETHUSDT"]), two, row_group_size=1000,
                   write_statistics=statistics)  # fmt: skip
    src = TardisFile(one, batch_rows=512)
    assert (src.exchange, src.native_symbol) == ("binance", "BTCUSDT")
    assert src._names_known is statistics
    decoded = TardisFile(one, batch_rows=512)
    decoded._names_known = False  # the columns read and checked batch by batch
    for a, b in zip(src.batches(), decoded.batches(), strict=True):
        assert a.offset == b.offset and (a.price == b.price).all() and (a.is_bid == b.is_bid).all()
    with pytest.raises(DataFileError, match="several exchanges/symbols"):
        for _ in TardisFile(two, batch_rows=512).batches():
            pass
