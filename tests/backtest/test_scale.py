"""Long runs: windows seeded from snapshots equal one pass; a real Dask scheduler and two
workers equal one process; an interrupted run resumes; memory does not grow with the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmarks.gen_books import generate
from liquidroute.backtest import distributed as dist
from liquidroute.backtest import replay as rp
from liquidroute.book import open_cursor
from liquidroute.cli.app import app
from liquidroute.tardis import TardisFile, scan
from tests.backtest.test_progress import bar_frames

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> list[Path]:
    """Two venues, snapshots every 20 s, many stale crossed levels (repairs happen)."""
    out = tmp_path_factory.mktemp("books")
    a, b = out / "binance_gen.csv.gz", out / "okex_gen.parquet"
    generate(a, 60_000, snapshot_every_s=20, stale=0.05, seed=1)
    generate(b, 60_000, exchange="okex", symbol="BTC-USDT", snapshot_every_s=15, stale=0.05,
             seed=2, start_us=1_723_161_254_206_652 + 3_100_000)  # fmt: skip
    return [a, b]


def spec_for(files: list[Path], latency_ms: float) -> dist.RunSpec:
    return dist.RunSpec(
        tuple(map(str, files)),
        strategies=("optimal", "best_venue", "equal_split"),
        latency_ms=latency_ms,
        depth=50,
    )


def test_a_window_that_starts_at_its_seed_snapshot_enters_the_files_there(books, monkeypatch):
    """A window whose first order needs no order replayed before it (the order right after
    a snapshot): its rows equal the single pass's, and every file is read from the
    window's seed snapshot on, not from its first row (a window at a snapshot once
    replayed the whole file before it). One venue: two venues' snapshots rarely fall
    between the same two orders."""
    spec = spec_for(books[:1], 0.0)
    replay = dist.open_replay(spec).scan()
    orders = rp.schedule(replay, 0.7, "buy", 3.0)
    indexes = [v.index for v in replay.venues]
    ts = [o.t_us for o in orders]
    starts = [
        i for i in range(1, len(orders)) if rp.window_entry(replay, orders, i, 0.0) == i
    ]  # each such order is the first after every file's seed snapshot for it
    assert len(starts) >= 3
    start = starts[len(starts) // 2]
    seeds = [v.index.seed_row(ts[start] - v.shift_us) for v in replay.venues]
    assert min(seeds) > 0
    entered: list[int] = []  # the row each read of the file starts at
    batches = TardisFile.batches

    def spy(self, start_row=0):
        entered.append(start_row)
        return batches(self, start_row)

    monkeypatch.setattr(TardisFile, "batches", spy)
    got = dist.window_rows(spec, indexes, orders, start, start + 40)  # type: ignore[arg-type]
    monkeypatch.undo()
    # the load looks at the first book from row 0; the window's cursor enters at the seed
    assert sorted(entered) == [0, seeds[0]]
    single = [
        r
        for _, rows in rp.iter_rows(
            replay, orders, strategies=spec.strategies, depth=50, stop=start + 40
        )
        for r in rows
    ][3 * start :]
    pd.testing.assert_frame_equal(pd.DataFrame(single), pd.DataFrame(got))


@pytest.mark.parametrize("latency_ms", [0.0, 1300.0])
def test_windows_seeded_from_snapshots_equal_one_pass(books, latency_ms):
    spec = spec_for(books, latency_ms)
    replay = dist.open_replay(spec).scan()
    assert all(len(v.index.snapshot_rows) >= 5 for v in replay.venues if v.index)
    orders = rp.schedule(replay, 0.7, "buy", 3.0)
    passes = rp.iter_rows(
        replay, orders, strategies=spec.strategies, latency_ms=latency_ms, depth=50
    )
    single = [r for _, rows in passes for r in rows]
    indexes = [v.index for v in replay.venues]
    assert all(i is not None for i in indexes)
    windowed = []
    for a, b in dist.windows(len(orders), 23):  # boundaries fall between snapshots
        windowed.extend(dist.window_rows(spec, indexes, orders, a, b))  # type: ignore[arg-type]
    assert len(single) == len(windowed) == 3 * len(orders)
    pd.testing.assert_frame_equal(pd.DataFrame(single), pd.DataFrame(windowed))
    # the seeds really skip: a late window enters each file after its first snapshot
    seeds = [v.index.seed_row(orders[len(orders) - 5].t_us - v.shift_us) for v in replay.venues]
    assert all(s > 0 for s in seeds)
    # and the books do come out crossed, so the reads' repairs are part of what is replayed
    cursor = open_cursor(replay.venues[0].source)
    for order in orders:
        cursor.advance_to(order.t_us - replay.venues[0].shift_us)
        cursor.repair()
    assert cursor.repaired > 0


def test_an_interrupted_run_resumes_from_its_last_window(books, tmp_path, monkeypatch):
    from liquidroute.backtest.store import ResultsStore

    args = ["backtest", *map(str, books), "--every", "1s", "--latency-ms", "400",
            "--strategies", "optimal,best_venue", "--depth", "50", "--window", "9"]  # fmt: skip
    full = runner.invoke(app, [*args, "--out", str(tmp_path / "full"), "--json"])
    assert full.exit_code == 0, full.output
    real_write, written = ResultsStore.write, []

    def crash_after_three(self, window, rows):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(window)
        real_write(self, window, rows)

    monkeypatch.setattr(ResultsStore, "write", crash_after_three)
    cut = runner.invoke(app, [*args, "--out", str(tmp_path / "cut")])
    assert cut.exit_code != 0 and not (tmp_path / "cut" / "results.parquet").exists()
    assert len(list((tmp_path / "cut" / "parts").glob("window-*.parquet"))) == 3
    monkeypatch.setattr(ResultsStore, "write", real_write)
    other = runner.invoke(app, [*args, "--size", "2", "--out", str(tmp_path / "cut"),
                                "--resume"])  # fmt: skip
    assert other.exit_code == 2 and "different run" in other.stderr
    assert args[-2:] == ["--window", "9"]  # resuming takes the run's windows from run.json
    again = runner.invoke(app, [*args[:-2], "--out", str(tmp_path / "cut"), "--resume", "--json"])
    assert again.exit_code == 0, again.output
    a = pd.read_parquet(tmp_path / "full" / "results.parquet")
    b = pd.read_parquet(tmp_path / "cut" / "results.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert json.loads(full.stdout) == json.loads(again.stdout)


def test_a_worker_writes_its_part_only_where_it_sees_the_clients_folder(books, tmp_path):
    """`window_part` writes the window's Parquet part itself when the client's token file
    is there (the same filesystem) and returns the row count; otherwise it returns the
    table for the client to write. Both hold `window_table`'s rows."""
    import pyarrow.parquet as pq

    from liquidroute.backtest.store import ResultsStore

    spec = dist.RunSpec(tuple(map(str, books)), strategies=("optimal", "best_venue"), depth=50)
    replay = dist.open_replay(spec).scan()
    indexes = [v.index for v in replay.venues]
    orders = rp.schedule(replay, 1.0, "buy", 1.0)
    want = dist.window_table(spec, indexes, orders, 10, 30)
    store = ResultsStore(tmp_path / "out", {"run": 1})
    token = store.token()
    assert store.token() == token  # made once
    elsewhere = dist.window_part(spec, indexes, orders, 10, 30, str(store.path(1)),
                                 str(tmp_path / "not-here" / token.name))  # fmt: skip
    assert not isinstance(elsewhere, int) and elsewhere.equals(want)
    assert store.done() == set()
    here = dist.window_part(spec, indexes, orders, 10, 30, str(store.path(1)), str(token))
    assert here == want.num_rows == 40
    assert store.done() == {1}
    assert pq.read_table(store.path(1)).equals(want)


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


@pytest.mark.usefixtures("terminal")
def test_a_real_dask_scheduler_and_two_workers_equal_one_process(books, tmp_path):
    dask = Path(sys.executable).with_name("dask")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    sched_file = tmp_path / "scheduler.json"
    procs = [
        _start([str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                "--scheduler-file", str(sched_file)], env, tmp_path / "scheduler.log")
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), (tmp_path / "scheduler.log").read_text()
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for i in range(2):
            procs.append(
                _start([str(dask), "worker", address, "--nthreads", "1", "--no-dashboard",
                        "--memory-limit", "0", "--name", f"w{i}",
                        "--local-directory", str(tmp_path / f"w{i}")],
                       env, tmp_path / f"worker{i}.log")
            )  # fmt: skip
        from dask.distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            assert len(client.scheduler_info()["workers"]) == 2
        args = ["backtest", *map(str, books), "--every", "700ms", "--latency-ms", "900",
                "--strategies", "optimal,best_venue,pro_rata", "--depth", "50"]  # fmt: skip
        one = runner.invoke(app, [*args, "--out", str(tmp_path / "one")])
        assert one.exit_code == 0, one.output
        from liquidroute.backtest.store import ResultsStore

        client_writes: list[int] = []
        real_write = ResultsStore.write

        def counted(self, window, rows):
            client_writes.append(window)
            real_write(self, window, rows)

        ResultsStore.write = counted  # type: ignore[method-assign]
        try:
            many = runner.invoke(
                app,
                [*args, "--scheduler", address, "--window", "17", "--out", str(tmp_path / "two")],
            )
        finally:
            ResultsStore.write = real_write  # type: ignore[method-assign]
        assert many.exit_code == 0, many.output
        assert client_writes == []  # the workers share this filesystem: they wrote the parts
        a = pd.read_parquet(tmp_path / "one" / "results.parquet")
        b = pd.read_parquet(tmp_path / "two" / "results.parquet")
        assert len(a) > 3 * 100
        pd.testing.assert_frame_equal(a, b)
        frames = bar_frames(many.stderr)  # one bar across the workers, in orders
        n = len(a) // 3
        assert frames and all(f.count("backtest ") == 1 for f in frames)
        assert f" {n}/{n} orders on {address} " in frames[-1]
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


MEMORY_PROBE = """
import sys, json

def hwm_mb():  # this process's peak RSS (ru_maxrss would carry the parent's over exec)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024

from liquidroute.book import open_cursor
from liquidroute.cli.app import app
from typer.testing import CliRunner
import liquidroute.backtest.replay, pandas, pyarrow.parquet, liquidroute.router.route
from liquidroute.venues.ccxt_venue import static_taker_fee
static_taker_fee("binance")  # imports ccxt: a fixed cost, not data
base = hwm_mb()
mode, path = sys.argv[1], sys.argv[2]
if mode == "backtest":
    r = CliRunner().invoke(app, ["backtest", path, "--every", "5s", "--size", "1",
                                 "--strategies", "optimal,best_venue", "--json"])
    assert r.exit_code == 0, r.output
else:  # what the replay held before streaming: the whole file in arrays
    from liquidroute.tardis import read_incremental_l2
    u = read_incremental_l2(path)
    prices, amounts = u.price.tolist(), u.amount.tolist()
print(json.dumps({"base_mb": base, "peak_mb": hwm_mb()}))
"""


def test_replay_memory_does_not_grow_with_the_file(tmp_path):
    """A 3 M-row file: the streaming backtest stays within a fixed bound over the process
    after imports (the reader's blocks, the allocator's pools, the book); holding the file
    (as the old replay did) exceeds it."""
    path = tmp_path / "binance_long.csv.gz"
    generate(path, 3_000_000, snapshot_every_s=300)
    bound_mb = 320.0

    def probe(mode: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, mode, str(path)],
            capture_output=True, text=True, timeout=300, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)])),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        facts = json.loads(out.stdout.strip().splitlines()[-1])
        return float(facts["peak_mb"] - facts["base_mb"])

    streamed = probe("backtest")
    assert streamed < bound_mb, f"streaming replay grew {streamed:.0f} MB"
    loaded = probe("load")
    assert loaded > bound_mb, (
        f"loading the file took only {loaded:.0f} MB: the bound proves nothing"
    )
    assert TardisFile(path).kind == "incremental" and scan(TardisFile(path)).rows >= 3_000_000


def test_a_replay_with_every_fee_given_never_imports_ccxt(books):
    """What a Dask worker opens: the client sends every venue's resolved fee, so the
    worker's replay needs no ccxt fee table (an import of ccxt, ~0.6 s per worker)."""
    code = (
        "import sys; from pathlib import Path; from liquidroute.backtest import replay as rp; "
        f"r = rp.load([Path(p) for p in {[str(b) for b in books]!r}], "
        "fees={'binance': 0.001, 'okx': 0.0008}); "
        "print('ccxt' in sys.modules, sorted((k, m.taker_fee) for k, m in r.markets.items()))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False [('binance', 0.001), ('okx', 0.0008)]"


def test_a_scheduler_that_does_not_answer_is_a_clear_error(books, tmp_path, monkeypatch):
    """A --scheduler address where nothing listens: one line naming --scheduler and what
    to do, exit 1, no traceback and no 'unexpected' error (distributed's connect timeout
    shortened to keep the test quick)."""
    import socket

    import dask.config

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = runner.invoke(
            app,
            ["backtest", *map(str, books), "--every", "10s", "--scheduler", address,
             "--out", str(tmp_path / "out")],
        )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert f"--scheduler {address}: no Dask scheduler answered" in result.output
    assert "dask scheduler" in result.output and "unexpected" not in result.output
    assert "Traceback" not in result.output
