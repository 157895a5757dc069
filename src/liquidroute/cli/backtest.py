"""`liquidroute backtest` and `liquidroute data info | convert`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from liquidroute.cli.common import (
    console,
    echo_json,
    fail,
    note,
    parse_pairs,
    reported_errors,
)
from liquidroute.cli.sources import FeeOpt, JsonOpt, SymbolArg

data_app = typer.Typer(help="Inspect and convert recorded book files.", no_args_is_help=True)


def parse_duration(text: str) -> float:
    """'10s', '500ms', '2m', '1h' or a number of seconds -> seconds."""
    from liquidroute.errors import InvalidInputError

    units = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip().lower()
    for unit in ("ms", "s", "m", "h"):
        if t.endswith(unit):
            t, factor = t[: -len(unit)], units[unit]
            break
    else:
        factor = 1.0
    try:
        value = float(t) * factor
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InvalidInputError(f"--every takes a duration like 10s, 500ms or 2m, got {text!r}")
    return value


def backtest(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Recorded books: tardis incremental_book_L2 "
            "CSV(.gz) or our Parquet, one per venue."
        ),
    ],
    every: Annotated[
        str, typer.Option(help="A parent order every DURATION (10s, 500ms, 1m).")
    ] = "10s",
    side: Annotated[str, typer.Option(help="buy or sell.")] = "buy",
    size: Annotated[float, typer.Option(min=0, help="Base amount per parent order.")] = 1.0,
    orders: Annotated[
        Path | None,
        typer.Option(
            help="CSV of parent orders (timestamp, side, amount) instead of --every/--side/--size."
        ),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(
            help="Backtest this instrument only (e.g. BTC/USDT or the perpetual BTC/USDT:USDT); "
            "files holding others are left out."
        ),
    ] = None,
    latency_ms: Annotated[
        float, typer.Option(min=0, help="Route at t, fill at t + latency.")
    ] = 0.0,
    strategies: Annotated[
        str,
        typer.Option(
            help="Comma-separated: optimal, optimal_exact, "
            "best_venue, equal_split, pro_rata, percent_grid."
        ),
    ] = "optimal,best_venue,equal_split,pro_rata,percent_grid",
    align: Annotated[
        str | None,
        typer.Option(
            help="'start': overlay recordings from different "
            "windows (clocks shifted, prices re-centred)."
        ),
    ] = None,
    depth: Annotated[int, typer.Option(min=1, help="Book levels per side used.")] = 200,
    skip_bad_rows: Annotated[
        bool,
        typer.Option(
            "--skip-bad-rows", help="Drop malformed CSV rows (counted) instead of failing."
        ),
    ] = False,
    fee: FeeOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write results.parquet/.csv, summary.csv/.json and plot.png here."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue an interrupted run in --out from its missing windows."
        ),
    ] = False,
    window: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Parent orders per window (the unit of --resume and of work sent to workers; "
            "default 10,000, or a quarter of each worker's share).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Run windows on N Dask workers (a local cluster unless --scheduler); "
            "default: one process, no Dask.",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="A running Dask scheduler (tcp://HOST:PORT) to send the windows to."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Replay recorded books and compare routing strategies on real history.

    Every parent order is split by each strategy on the books as of its time and filled on
    the books as of time + --latency-ms (taker fees included). The summary shows all-in
    slippage vs mid (mean, median, p95), implementation shortfall, and what each strategy
    saves against the best single venue, in bps and in quote currency. Files are streamed
    (memory does not grow with their length); results go to disk window by window.

    Examples:

      liquidroute backtest ../shared/data/books/binance_*.csv.gz --every 1s --size 2

      liquidroute backtest ../shared/data/books/*.gz --symbol BTC/USDT:USDT
    """
    with reported_errors():
        import tempfile

        from liquidroute.backtest import distributed as dist
        from liquidroute.backtest import replay as rp
        from liquidroute.backtest.store import (
            ResultsStore,
            fingerprint,
            plot_from_file,
            summary_from_file,
        )
        from liquidroute.errors import InvalidInputError
        from liquidroute.model import check_side

        if resume and out is None:
            raise InvalidInputError("--resume needs --out DIR (the interrupted run's folder)")
        names = tuple(s.strip() for s in strategies.split(",") if s.strip())
        fees = parse_pairs(fee, "--fee")
        spec = dist.RunSpec(
            tuple(str(f) for f in files), align, fees, symbol, skip_bad_rows, names,
            latency_ms, depth,
        )  # fmt: skip
        data = dist.open_replay(spec)
        rp.check_options(names, latency_ms)
        distributed = workers is not None or scheduler is not None
        parents: rp.Orders
        if orders is not None:
            parents = rp.read_orders(orders, data)
        else:
            if distributed or resume or all(v.source.index for v in data.venues):
                data.scan()  # windows need the end and the snapshot index (free for Parquet)
            parents = rp.schedule(data, parse_duration(every), check_side(side), size)
        if window is None and resume and out is not None:
            window = previous_window(out)  # the interrupted run's windows, whatever --workers
        if window is None:
            window = -(-len(parents) // (4 * (workers or 1))) if distributed else 10_000
        size_w = max(1, window)
        run_info = fingerprint(files, spec.options() | {
            "every": every, "side": side, "size": size, "window": size_w,
            "orders": str(orders.resolve()) if orders else None,
        })  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            target = out if out is not None else Path(tmp)
            store = ResultsStore(target, run_info, resume=resume)
            total = len(parents) if data.end_us is not None or orders else None
            cluster = f"on {scheduler or f'{workers} local workers'}" if distributed else None
            with progress_bar(total, cluster) as tick:

                def local_tick(n: int) -> None:
                    tick(n, parents[n - 1].t_us)  # the pass is at this order's time

                def windows_tick(n: int) -> None:
                    tick(n, None)  # windows finish in any order: a count only

                if distributed:
                    n = dist.run_distributed_windows(
                        spec, data, parents, store, workers=workers or 1, scheduler=scheduler,
                        window=size_w, progress=windows_tick,
                    )  # fmt: skip
                else:
                    n = dist.run_local(
                        spec, data, parents, store, window=size_w, progress=local_tick
                    )
            if n == 0 and not store.done():
                data.scan()  # says so when the recordings do not overlap
                raise fail("no parent order falls inside the recordings; shorten --every")
            if out is None:  # a temporary folder: the summary reads the parts, unmerged
                summ = summary_from_file(store.part_files())
            else:
                results = store.finish(data.label)
                summ = summary_from_file(results)
                (out / "summary.csv").write_text(summ.to_csv(index=False))
                (out / "summary.json").write_text(report_json(summ, data.label))
                plot_from_file(results, out / "plot.png", data.label)
            n_orders = int(summ["orders"].max()) if len(summ) else 0
    if json_out:
        echo_json(json.loads(report_json(summ, data.label)))  # float noise removed
    else:
        symbol = data.symbol or next(iter(data.markets.values())).symbol
        render(summ, n_orders, data.label, symbol.split("/")[1].split(":")[0])
    err = console(stderr=True)
    for message in data.notes:
        note(err, message)
    if out is not None:
        err.print(f"wrote {out}/results.parquet, results.csv, summary.csv, summary.json, plot.png")


@contextmanager
def progress_bar(
    total: int | None, cluster: str | None = None
) -> Iterator[Callable[[int, int | None], None]]:
    """One rich progress bar on stderr, in parent orders: done / total when the recordings'
    end is known (Parquet, --orders, --workers, --resume), else a count; and the market
    time the single pass has reached, or `cluster` ("on 2 workers") for windows that finish
    in any order. Yields the callback taking the orders done (and the market time of the
    last one, µs); redraws at most 10 times a second, and once more at the end."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from liquidroute.tardis import format_us

    columns = [
        TextColumn("backtest"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("orders {task.fields[at]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("backtest", total=total, at=cluster or "")
        last: list[float] = [0.0, 0.0]  # when shown, orders done

        def tick(n: int, at_us: int | None = None) -> None:
            last[1] = n
            now = time.monotonic()
            if now - last[0] < 0.1 and n != total:
                return
            last[0] = now
            if at_us is None:
                bar.update(task, completed=n)
            else:
                at = format_us(at_us)[:19].replace("T", " ")
                bar.update(task, completed=n, at=f"market time {at}")

        yield tick
        bar.update(task, completed=last[1])


def previous_window(out: Path) -> int | None:
    """The window size recorded by an interrupted run in `out` (None if there is none)."""
    manifest = out / "parts" / "run.json"
    try:
        value = json.loads(manifest.read_text())["options"]["window"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(value) if isinstance(value, int) else None


def report_json(summ: object, label: str) -> str:
    from liquidroute.backtest import report

    return report.summary_json(summ, label)  # type: ignore[arg-type]


def render(summ: object, n: int, label: str, currency: str = "quote") -> None:
    from liquidroute.cli.render import Col, fixed, print_table

    cols = [
        ("strategy", "Strategy", "{}"),
        ("fill_ratio", "Filled", "{:.1%}"),
        ("slippage_bps_mean", "Slip mean", "{:.2f}"),
        ("slippage_bps_median", "Slip median", "{:.2f}"),
        ("slippage_bps_p95", "Slip p95", "{:.2f}"),
        ("shortfall_bps_mean", "Shortfall", "{:.2f}"),
        ("saved_vs_best_venue_bps_mean", "Saved bps", "{:.2f}"),
        ("saved_vs_best_venue_quote", f"Saved ({currency})", "{:,.2f}"),
    ]

    def cell(value: object, fmt: str) -> str:
        if value is None or value != value:  # None or NaN
            return "—"
        if isinstance(value, float) and fmt.endswith("f}"):
            return fixed(value, int(fmt[-3]))  # never -0.00
        return fmt.format(value)

    rows = [
        [cell(record.get(key), fmt) for key, _, fmt in cols]
        for record in summ.to_dict(orient="records")  # type: ignore[attr-defined]
    ]
    out = console()
    columns = [Col(title, right=title != "Strategy") for _, title, _ in cols]
    print_table(out, f"{n} parent orders — {label}", columns, rows)
    out.print(
        "Slippage: all-in average price vs the consolidated mid at order time, bps "
        "(positive = worse). Shortfall: fill at t + latency vs plan at t."
    )


@data_app.command("info")
def info(
    file: Annotated[
        Path,
        typer.Argument(
            help="A tardis incremental_book_L2 or book_snapshot CSV(.gz), or our Parquet."
        ),
    ],
    skip_bad_rows: Annotated[
        bool, typer.Option("--skip-bad-rows", help="Count malformed rows instead of failing.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Venue, symbol, time span, rows, snapshots, gaps and crossed books of a book file."""
    with reported_errors():
        from liquidroute.book import crossed_checks
        from liquidroute.tardis import TardisFile, describe

        source = TardisFile(file, skip_bad_rows=skip_bad_rows)
        facts = describe(source) | crossed_checks(source)
    if json_out:
        typer.echo(json.dumps(facts, indent=2))
        return
    out = console()
    for key, value in facts.items():
        if key != "gaps":
            out.print(f"{key:<16} {value}", markup=False, highlight=False)
    if facts["crossed_books"]:
        console(stderr=True).print(
            f"warning: the book came out crossed at {facts['crossed_books']} of "
            f"{facts['crossed_checks']} checks (1 s apart; first at {facts['first_crossed']}): "
            "the feed missed deletions; replays drop the stale levels",
            markup=False,
            highlight=False,
        )


@data_app.command("convert")
def convert(
    source: Annotated[Path, typer.Argument(help="tardis incremental_book_L2 CSV(.gz).")],
    target: Annotated[Path, typer.Argument(help="Output .parquet file.")],
) -> None:
    """Convert a tardis CSV(.gz) into our typed Parquet layout (same rows, LZ4, indexed)."""
    with reported_errors():
        from liquidroute.errors import InvalidInputError
        from liquidroute.tardis import TardisFile, write_parquet

        if target.suffix != ".parquet":
            raise InvalidInputError(f"the output must end in .parquet, got {target.name}")
        rows = write_parquet(TardisFile(source), target)
    console(stderr=True).print(f"wrote {target} ({rows} rows)")


def record(
    symbol: SymbolArg,
    venues: Annotated[str, typer.Option(help="ccxt venue ids, comma-separated (NAME=ID ok).")],
    out: Annotated[Path, typer.Option(help="Directory for the CSV.gz files.")],
    duration: Annotated[str, typer.Option(help="How long: 30s, 10m, 1h.")] = "1m",
    interval: Annotated[
        str, typer.Option(help="Flush every DURATION; venues without websocket: poll.")
    ] = "1s",
    depth: Annotated[int, typer.Option(min=1, help="Levels per side.")] = 100,
    timeout: Annotated[float, typer.Option(min=0.1, help="Per-request timeout (s).")] = 10.0,
) -> None:
    """Record live books as tardis incremental_book_L2 CSV.gz, to backtest on later.

    Books are streamed by websocket (ccxt.pro; public data, no keys) and the venue's own
    increments written, with a snapshot block at start and after every resync; venues
    without websocket are polled over REST every --interval.
    """
    with reported_errors():
        import asyncio

        from rich.progress import Progress

        from liquidroute.backtest.record import record as run_record
        from liquidroute.cli.common import parse_venue_list
        from liquidroute.model import split_symbol
        from liquidroute.venues.ccxt_venue import venue_from_spec

        split_symbol(symbol)
        total_s, every_s = parse_duration(duration), parse_duration(interval)
        specs = parse_venue_list(venues)
        if not specs:
            raise fail("--venues needs at least one venue id")
        live = [venue_from_spec(s, timeout_ms=int(timeout * 1e3), websocket=True) for s in specs]

        async def go() -> list[Path]:
            try:
                with Progress(console=console(stderr=True), transient=True) as bar:
                    task = bar.add_task("recording", total=int(total_s / every_s) + 1)
                    return await run_record(
                        live,
                        symbol,
                        out,
                        duration_s=total_s,
                        interval_s=every_s,
                        depth=depth,
                        on_poll=lambda n: bar.update(task, completed=n),
                    )
            finally:
                await asyncio.gather(*(v.close() for v in live), return_exceptions=True)

        paths = asyncio.run(go())
    for path in paths:
        console(stderr=True).print(f"wrote {path}")
