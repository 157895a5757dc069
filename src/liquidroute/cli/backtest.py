"""`liquidroute backtest` and `liquidroute data info | convert`."""

from __future__ import annotations

import json
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
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Run chunks on N Dask workers (a local cluster unless --scheduler)."
        ),
    ] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="An existing Dask scheduler address.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Replay recorded books and compare routing strategies on real history.

    Every parent order is split by each strategy on the books as of its time and filled on
    the books as of time + --latency-ms (taker fees included). The summary shows all-in
    slippage vs mid (mean, median, p95), implementation shortfall, and what each strategy
    saves against the best single venue, in bps and in quote currency.

    Examples:

      liquidroute backtest ../shared/data/books/binance_*.csv.gz --every 1s --size 2

      liquidroute backtest binance.csv.gz bybit-spot.csv.gz --align start --size 20
    """
    with reported_errors():
        from rich.progress import Progress

        from liquidroute.backtest import replay as rp
        from liquidroute.backtest import report
        from liquidroute.model import check_side

        names = [s.strip() for s in strategies.split(",") if s.strip()]
        data = rp.load(
            files, align=align, fees=parse_pairs(fee, "--fee"), skip_bad_rows=skip_bad_rows
        )
        if orders is not None:
            parents = rp.read_orders(orders, data)
        else:
            parents = rp.schedule(data, parse_duration(every), check_side(side), size)
        if not parents:
            raise fail("no parent order falls inside the recordings; shorten --every")
        if workers > 1 or scheduler:
            from liquidroute.backtest.distributed import run_distributed

            rows = run_distributed(
                files,
                parents,
                align=align,
                fees=parse_pairs(fee, "--fee"),
                strategies=names,
                latency_ms=latency_ms,
                depth=depth,
                workers=workers,
                scheduler=scheduler,
            )
        else:
            with Progress(console=console(stderr=True), transient=True) as bar:
                task = bar.add_task("replaying", total=len(parents))
                rows = rp.run(
                    data,
                    parents,
                    strategies=names,
                    latency_ms=latency_ms,
                    depth=depth,
                    progress=lambda n: bar.update(task, completed=n),
                )
        df = report.frame(rows)
        summ = report.summary(df)
        if out is not None:
            report.save(df, summ, out, data.label)
    if json_out:
        echo_json(json.loads(report.summary_json(summ, data.label)))  # float noise removed
    else:
        symbol = next(iter(data.markets.values())).symbol
        render(summ, len(parents), data.label, symbol.split("/")[1].split(":")[0])
    err = console(stderr=True)
    for message in data.notes:
        note(err, message)
    if out is not None:
        err.print(f"wrote {out}/results.parquet, results.csv, summary.csv, summary.json, plot.png")


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
    """Venue, symbol, time span, rows, snapshots and gaps of a recorded book file."""
    with reported_errors():
        from liquidroute.backtest.data import describe, read_incremental_l2

        updates = read_incremental_l2(file, skip_bad_rows=skip_bad_rows)
        facts = describe(updates) | {"skipped_rows": updates.skipped_rows}
    if json_out:
        typer.echo(json.dumps(facts, indent=2))
        return
    out = console()
    for key, value in facts.items():
        if key != "gaps":
            out.print(f"{key:<14} {value}")
    gaps = facts["gaps"]
    out.print(f"{'gaps > 5 s':<14} {len(gaps) if isinstance(gaps, list) else 0}")


@data_app.command("convert")
def convert(
    source: Annotated[Path, typer.Argument(help="tardis incremental_book_L2 CSV(.gz).")],
    target: Annotated[Path, typer.Argument(help="Output .parquet file.")],
) -> None:
    """Convert a tardis CSV(.gz) into our typed Parquet layout (same rows, ~zstd)."""
    with reported_errors():
        from liquidroute.backtest.data import read_incremental_l2, write_parquet
        from liquidroute.errors import InvalidInputError

        if target.suffix != ".parquet":
            raise InvalidInputError(f"the output must end in .parquet, got {target.name}")
        updates = read_incremental_l2(source)
        write_parquet(updates, target)
    console(stderr=True).print(f"wrote {target} ({len(updates)} rows)")


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
