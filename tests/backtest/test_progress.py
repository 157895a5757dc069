"""A long backtest shows one rich progress bar: orders done (of the total when the end is
known), the market time reached, and the workers when windows run on Dask."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from benchmarks.gen_books import generate
from liquidroute.cli.app import app
from liquidroute.tardis import format_us
from tests.conftest import BOOK_FILES

_CODES = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def bar_frames(stderr: str) -> list[str]:
    """The bar's redraws in a terminal's stderr stream (escape codes removed)."""
    lines = [_CODES.sub("", f) for f in re.split(r"[\r\n]", stderr)]
    return [f for f in lines if f.startswith("backtest ")]


@pytest.mark.usefixtures("terminal")
def test_one_bar_with_orders_and_market_time_on_a_csv():
    path = str(BOOK_FILES["binance"])
    r = CliRunner().invoke(app, ["backtest", path, "--every", "1s", "--size", "2", "--json"])
    assert r.exit_code == 0, r.output
    n = json.loads(r.stdout)["strategies"][0]["orders"]
    frames = bar_frames(r.stderr)
    assert frames and all(f.count("backtest ") == 1 for f in frames)
    assert f" {n}/? orders market time 20" in frames[-1]  # the end of a CSV is not known
    assert re.search(r" \d+/\? orders market time \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", frames[-1])
    counts = [int(m.group(1)) for f in frames if (m := re.search(r" (\d+)/\? orders", f))]
    assert counts[0] < n and counts == sorted(counts)  # it counts up from the start


@pytest.mark.usefixtures("terminal")
def test_the_total_is_known_for_parquet(tmp_path):
    path = tmp_path / "binance_gen.parquet"
    generate(path, 40_000, snapshot_every_s=20, seed=4)
    r = CliRunner().invoke(app, ["backtest", str(path), "--every", "1s", "--json"])
    assert r.exit_code == 0, r.output
    n = json.loads(r.stdout)["strategies"][0]["orders"]
    last = bar_frames(r.stderr)[-1]
    assert f" {n}/{n} orders market time " in last
    from liquidroute.backtest import replay as rp

    data = rp.load([path]).scan()
    end = rp.schedule(data, 1.0, "buy", 1.0)[n - 1].t_us
    assert format_us(end)[:16].replace("T", " ") in " ".join(bar_frames(r.stderr)[-3:])
