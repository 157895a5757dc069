"""Backtests on the real recorded books: strategies, latency, Dask, files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from liquidroute.backtest import replay as rp
from liquidroute.backtest import report
from liquidroute.cli.app import app
from liquidroute.errors import DataFileError, InvalidInputError
from liquidroute.tardis import read_incremental_l2, write_parquet
from tests.conftest import BOOK_FILES

SPOT = [BOOK_FILES["binance"], BOOK_FILES["bybit-spot"], BOOK_FILES["okex"]]
runner = CliRunner()


@pytest.fixture(scope="module")
def aligned():
    return rp.load(SPOT, align="start")


def test_optimal_never_costs_more_than_a_baseline_at_zero_latency(aligned):
    parents = rp.schedule(aligned, 1.0, "buy", 3.0)
    rows = rp.run(aligned, parents, strategies=["optimal_exact", *rp.BASELINE_SPLITS])
    df = report.frame(rows)
    wide = df.pivot(index="t_us", columns="strategy", values="cost")
    for name in rp.BASELINE_SPLITS:
        ok = wide[name].isna() | (wide["optimal_exact"] <= wide[name] * (1 + 1e-9))
        assert ok.all(), name
    assert (df["shortfall_bps"].abs() < 1e-9).all()  # no latency: fills are the plan
    assert df["t_us"].nunique() >= 5


def test_latency_shows_shortfall_honestly(aligned):
    parents = rp.schedule(aligned, 1.0, "sell", 2.0)
    rows = rp.run(aligned, parents, strategies=["optimal"], latency_ms=900)
    df = report.frame(rows)
    assert df["shortfall_bps"].notna().all()
    assert (df["shortfall_bps"] != 0).any()  # the books moved within 900 ms


def test_summary_and_files(aligned, tmp_path):
    parents = rp.schedule(aligned, 2.0, "buy", 1.0)
    df = report.frame(rp.run(aligned, parents))
    summ = report.summary(df)
    assert set(summ["strategy"]) == set(rp.DEFAULT_STRATEGIES)
    best = summ.set_index("strategy").loc["best_venue"]
    assert best["saved_vs_best_venue_quote"] == pytest.approx(0.0)
    written = report.save(df, summ, tmp_path / "out", aligned.label)
    assert {p.name for p in written} == {
        "results.parquet",
        "results.csv",
        "summary.csv",
        "summary.json",
        "plot.png",
    }
    back = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(back) == len(df)
    assert (tmp_path / "out" / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert "ALIGNED" in json.loads((tmp_path / "out" / "summary.json").read_text())["data"]


def test_dask_equals_single_process():
    from liquidroute.backtest.distributed import run_distributed

    data = rp.load(SPOT, align="start")
    parents = rp.schedule(data, 1.0, "buy", 2.0)
    single = rp.run(data, parents, strategies=["optimal", "best_venue"])
    spread = run_distributed(
        SPOT,
        parents,
        align="start",
        fees={},
        strategies=["optimal", "best_venue"],
        latency_ms=0.0,
        depth=200,
        workers=2,
    )
    a = pd.DataFrame(single)
    b = pd.DataFrame(spread)
    pd.testing.assert_frame_equal(a, b)


def test_orders_csv(aligned, tmp_path):
    t0 = aligned.start_us // 1000 + 500
    path = tmp_path / "orders.csv"
    path.write_text(f"timestamp,side,amount\n{t0},buy,1.5\n{t0 + 2000},sell,0.5\n")
    orders = rp.read_orders(path, aligned)
    assert [(o.side, o.amount) for o in orders] == [("buy", 1.5), ("sell", 0.5)]
    path.write_text("timestamp,side,amount\n1,buy,1\n")
    with pytest.raises(DataFileError, match="outside"):
        rp.read_orders(path, aligned)
    path.write_text(f"timestamp,side,amount\n{t0},hold,1\n")
    with pytest.raises(DataFileError, match="line 2"):
        rp.read_orders(path, aligned)


def test_bad_inputs():
    with pytest.raises(DataFileError, match=r"different instruments.*--symbol"):
        rp.load([BOOK_FILES["bybit-spot"], BOOK_FILES["bybit"]])
    with pytest.raises(DataFileError, match="do not overlap"):
        data = rp.load(SPOT)
        rp.run(data, rp.schedule(data, 1.0, "buy", 1.0))
    with pytest.raises(DataFileError, match="do not overlap"):
        rp.load(SPOT).scan()
    with pytest.raises(InvalidInputError, match="unknown strategies"):
        data = rp.load(SPOT, align="start")
        rp.run(data, rp.schedule(data, 1.0, "buy", 1.0), strategies=["magic"])


def test_parquet_round_trip(tmp_path):
    updates = read_incremental_l2(BOOK_FILES["okex"])
    out = tmp_path / "okx.parquet"
    write_parquet(updates, out)
    back = read_incremental_l2(out)
    assert back.symbol == updates.symbol and back.venue == updates.venue
    for name in ("timestamp", "local_timestamp", "is_snapshot", "is_bid", "price", "amount"):
        np.testing.assert_array_equal(getattr(back, name), getattr(updates, name))


def test_cli_backtest_data_info_and_convert(tmp_path):
    result = runner.invoke(
        app,
        [
            "backtest",
            *map(str, SPOT),
            "--align",
            "start",
            "--every",
            "2s",
            "--size",
            "1",
            "--out",
            str(tmp_path / "bt"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {s["strategy"] for s in summary["strategies"]} == set(rp.DEFAULT_STRATEGIES)
    assert (tmp_path / "bt" / "plot.png").exists()
    info = runner.invoke(app, ["data", "info", str(BOOK_FILES["binance"]), "--json"])
    facts = json.loads(info.stdout)
    assert facts["venue"] == "binance" and facts["rows"] == 126057 and facts["snapshots"] == 1
    conv = runner.invoke(
        app, ["data", "convert", str(BOOK_FILES["okex"]), str(tmp_path / "o.parquet")]
    )
    assert conv.exit_code == 0 and (tmp_path / "o.parquet").exists()
    bad = runner.invoke(app, ["backtest", str(BOOK_FILES["okex"]), "--every", "soon"])
    assert bad.exit_code == 2 and "--every takes a duration" in bad.stderr
    magic = runner.invoke(
        app,
        [
            "backtest",
            str(BOOK_FILES["okex"]),
            "--strategies",
            "magic",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert magic.exit_code == 2 and "unknown strategies ['magic']" in magic.stderr
    assert not (tmp_path / "m").exists()  # refused before anything is written
    mixed = runner.invoke(
        app, ["backtest", str(BOOK_FILES["bybit-spot"]), str(BOOK_FILES["bybit"])]
    )
    assert mixed.exit_code == 1 and "different instruments" in mixed.stderr


def test_spot_and_perp_files_are_told_apart_and_chosen_with_symbol():
    every = [str(BOOK_FILES[n]) for n in sorted(BOOK_FILES)]
    mixed = runner.invoke(app, ["backtest", *every, "--align", "start"])
    assert mixed.exit_code == 1
    err = mixed.stderr
    assert "BTC/USDT in binance_incremental_book_L2_BTCUSDT.csv.gz" in err
    assert "BTC/USDT:USDT in bybit_incremental_book_L2_BTCUSDT.csv.gz" in err
    assert "--symbol BTC/USDT or --symbol BTC/USDT:USDT" in err
    spot = runner.invoke(
        app, ["backtest", *every, "--align", "start", "--symbol", "btc/usdt", "--json"]
    )
    assert spot.exit_code == 0, spot.output
    assert "bybit_incremental_book_L2_BTCUSDT.csv.gz (BTC/USDT:USDT) left out" in spot.stderr
    perp = runner.invoke(app, ["backtest", *every, "--symbol", "BTC/USDT:USDT", "--json"])
    assert perp.exit_code == 0, perp.output
    assert json.loads(perp.stdout)["strategies"][0]["orders"] >= 4  # one venue, 45 s
    none = runner.invoke(app, ["backtest", *every, "--symbol", "ETH/USDT"])
    assert none.exit_code == 2 and "no file holds it" in none.stderr


def test_the_help_examples_run_on_the_shared_data(tmp_path, monkeypatch):
    import glob
    import shlex

    from tests.conftest import SHARED_DATA

    text = runner.invoke(app, ["backtest", "--help"], env={"COLUMNS": "300"}).stdout
    lines = [line.strip("│ \n") for line in text.splitlines()]
    examples = [line for line in lines if line.startswith("liquidroute backtest ")]
    assert len(examples) >= 2
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the examples use ../shared/data
    assert (Path("..") / "shared" / "data").resolve() == SHARED_DATA.resolve()
    for example in examples:
        example = example.replace("--out out/", f"--out {tmp_path}/out")
        args = []
        for word in shlex.split(example)[1:]:
            args.extend(sorted(glob.glob(word)) if "*" in word else [word])  # noqa: PTH207
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (example, result.output)


def test_record_from_a_loopback_exchange_reads_back(tmp_path, loopback, monkeypatch):
    import asyncio

    from liquidroute.backtest.record import record
    from liquidroute.book import book_at
    from liquidroute.venues.ccxt_venue import CcxtVenue
    from tests.conftest import binance_client

    venue = CcxtVenue("binance", exchange=binance_client(loopback.base_url, keys=False))

    async def go():
        try:
            return await record([venue], "BTC/USDT", tmp_path, duration_s=0.3, interval_s=0.1)
        finally:
            await venue.close()

    (path,) = asyncio.run(go())
    assert path.name == "binance_incremental_book_L2_BTCUSDT.csv.gz"
    updates = read_incremental_l2(path)
    assert updates.venue == "binance" and updates.symbol == "BTC/USDT"
    assert loopback.count("/api/v3/depth") >= 3
    snap = book_at(updates)
    assert snap.bids.tolist() == loopback.bids and snap.asks.tolist() == loopback.asks


def test_book_snapshot_files_read_as_snapshots(tmp_path):
    """A book_snapshot_5 file written from the real OKX book replays to the same top 5."""
    from liquidroute.book import BookReplay, book_at

    updates = read_incremental_l2(BOOK_FILES["okex"])
    replay = BookReplay(updates)
    stamps = np.unique(updates.local_timestamp)[::20][1:6]
    header = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for i in range(5):
        header += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    lines = [",".join(header)]
    tops = []
    for t in stamps:
        replay.advance_to(int(t))
        snap = replay.snapshot(5)
        tops.append(snap)
        row = ["okex", "BTC-USDT", str(int(t)), str(int(t))]
        for i in range(5):
            row += [
                repr(float(snap.asks[i, 0])),
                repr(float(snap.asks[i, 1])),
                repr(float(snap.bids[i, 0])),
                repr(float(snap.bids[i, 1])),
            ]
        lines.append(",".join(row))
    path = tmp_path / "okex_book_snapshot_5.csv"
    path.write_text("\n".join(lines) + "\n")
    back = read_incremental_l2(path)
    assert back.venue == "okx" and back.is_snapshot.all()
    for t, top in zip(stamps, tops, strict=True):
        got = book_at(back, at_ms=float(t) / 1e3)
        np.testing.assert_array_equal(got.asks, top.asks)
        np.testing.assert_array_equal(got.bids, top.bids)


def test_skip_bad_rows_counts_them(tmp_path):
    text = (
        "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
        "okex,BTC-USDT,1,20,true,bid,100,1\n"
        "okex,BTC-USDT,1,20,true,ask,oops,1\n"
        "okex,BTC-USDT,1,20,true,ask,101,1\n"
        "okex,BTC-USDT,1,21\n"
    )
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataFileError, match="line 3"):
        read_incremental_l2(path)
    updates = read_incremental_l2(path, skip_bad_rows=True)
    assert updates.skipped_rows == 2 and len(updates) == 2
    result = runner.invoke(app, ["data", "info", str(path), "--skip-bad-rows", "--json"])
    assert json.loads(result.stdout)["skipped_rows"] == 2
