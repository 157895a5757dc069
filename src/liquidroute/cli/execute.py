"""`liquidroute execute | resume | orders`: fill a parent order (dry run by default)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from liquidroute.cli.common import (
    EXIT_NOT_ROUTABLE,
    EXIT_USAGE,
    console,
    echo_json,
    fail,
    note,
    parse_pairs,
    parse_venue_list,
    reported_errors,
    styled,
)
from liquidroute.cli.pools import (
    V2_ROUTER02,
    V3_SWAP_ROUTER,
    GasPriceOpt,
    NativePriceOpt,
    PoolsOpt,
    PoolTrading,
    RpcOpt,
    SwapRouterOpt,
    TokenOpt,
    V2RouterOpt,
    WalletOpt,
    need_rpc,
    trading_pools,
)
from liquidroute.cli.sources import (
    AtOpt,
    BooksOpt,
    DepthOpt,
    FeeOpt,
    JsonOpt,
    MaxAgeOpt,
    MaxDeviationOpt,
    NoGuardOpt,
    SampleOpt,
    SideArg,
    SymbolArg,
    TimeoutOpt,
    VenuesOpt,
    select_venues,
)

if TYPE_CHECKING:
    from rich.console import Console

    from liquidroute.model import ExecutionReport
    from liquidroute.router.executor import ExecutionPolicy, Executor, Quoter
    from liquidroute.router.journal import Journal
    from liquidroute.router.router import Router
    from liquidroute.venues.base import Venue

RISK = "Risk limits"
SAFETY = "Live trading"

JournalOpt = Annotated[
    Path | None,
    typer.Option(help="Execution journal (SQLite). Default: ~/.liquidroute/journal.sqlite3."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        help="Credentials TOML (mode 600). Default: ~/.liquidroute/credentials.toml; "
        "the variables LIQUIDROUTE_{VENUE}_API_KEY, _SECRET and _PASSWORD win.",
        rich_help_panel=SAFETY,
    ),
]


def live_venues(
    specs: list[str],
    config: Path | None,
    timeout_s: float,
    ioc_timeout_s: float = 2.0,
    *,
    books_of: str | None = None,
    max_age_s: float = 10.0,
    notes: list[str] | None = None,
) -> list[Venue]:
    """ccxt venues with credentials; refuses (before anything is sent) when any is missing.

    With `books_of` (a symbol), each venue whose ccxt.pro client streams order books
    (`watchOrderBook`) keeps that symbol's book by websocket (`LiveVenue`, started by
    the router before the first quote); its orders still go out by REST. The others
    fetch their books by REST, as without it, and `notes` says why: no websocket book
    in ccxt.pro, or LIQUIDROUTE_<NAME>_URL set without _WS_URL (a testnet or proxy
    whose stream is unknown: never books from one server and orders on another).
    """
    import os

    from liquidroute.venues.ccxt_venue import env_key, venue_from_spec
    from liquidroute.venues.credentials import load_credentials
    from liquidroute.venues.live import LiveVenue

    creds = [load_credentials(spec.partition("=")[0], config) for spec in specs]
    venues: list[Venue] = []
    for spec, c in zip(specs, creds, strict=True):
        prefix = env_key(spec.partition("=")[0].strip())
        why = None
        if os.environ.get(prefix + "URL") and not os.environ.get(prefix + "WS_URL"):
            why = f"{prefix}URL is set without {prefix}WS_URL"
        stream = books_of is not None and why is None
        venue = venue_from_spec(
            spec,
            credentials=c,
            timeout_ms=int(timeout_s * 1e3),
            ioc_timeout_s=ioc_timeout_s,
            websocket=stream,
        )
        if stream and not (getattr(venue.exchange, "has", None) or {}).get("watchOrderBook"):
            stream, why = False, "no websocket order book in ccxt.pro"
        if stream:
            assert books_of is not None
            venues.append(
                LiveVenue(venue, [books_of], max_age_s=max_age_s, start_timeout_s=timeout_s)
            )
            continue
        if books_of is not None and why is not None and notes is not None:
            notes.append(f"{venue.name}: books by REST ({why})")
        venues.append(venue)
    return venues


def run_executor(
    executor: Executor, job: str, *args: object, start: Router | None = None
) -> ExecutionReport:
    """Run `job` on its own event loop; `start` (the router of the books, whatever quoter
    wraps it) is started first: live books' feeds running, first books in."""

    async def go() -> ExecutionReport:
        try:
            if start is not None:
                await start.start()
            if job == "execute":
                return await executor.execute(*args)  # type: ignore[arg-type]
            if job == "continue":
                return await executor.continue_parent(*args)  # type: ignore[arg-type]
            return await executor.resume(*args)  # type: ignore[arg-type]
        finally:
            await executor.quoter.close()

    return asyncio.run(go())


def render_report(report: ExecutionReport, out: Console) -> None:
    from liquidroute.cli.render import Col, amount, fixed, money, print_table, quote_currency

    cur = quote_currency(report.symbol)
    base = report.symbol.split("/")[0]
    mode = "LIVE" if report.live else "DRY RUN (simulated fills, nothing sent)"
    title = f"{report.symbol} {report.side} {amount(report.requested)} — {mode}"
    columns = [Col("Venue"), Col("Client id"), Col("Round", right=True), Col("State")]
    columns += [Col(c, right=True) for c in ("Requested", "Filled", "Avg price", f"Fee ({cur})")]
    rows = [
        [
            c.venue,
            c.client_id,
            str(c.round),
            c.state,
            amount(c.amount),
            amount(c.filled),
            fixed(c.avg_price),
            fixed(c.fee, 4),
        ]
        for c in report.children
    ]
    print_table(out, title, columns, rows)
    paid = "Total cost" if report.side == "buy" else "Total proceeds"
    filled = f"Filled          {amount(report.filled)} of {amount(report.requested)} {base}"
    out.print(
        styled(filled, ("   remainder " + amount(report.unfilled), "bold red"))
        if report.unfilled
        else styled(filled)
    )
    out.print(f"{paid:<16}{money(report.total_cost, cur)} (fees {money(report.total_fees, cur)})")
    if report.fees_by_asset:
        charged = ", ".join(f"{v:.8g} {a}" for a, v in sorted(report.fees_by_asset.items()))
        out.print(f"Fees charged    {charged}")
    base, quote = report.symbol.split(":")[0].split("/")
    out.print(f"Balances        {report.net_base:+.8g} {base}, {report.net_quote:+,.2f} {quote}")
    if report.avg_price is not None:
        out.print(
            f"All-in price    {money(report.avg_price, cur, 4)} vs quoted "
            f"{money(report.quoted_avg_price, cur, 4)}: shortfall "
            f"{fixed(report.shortfall_bps)} bps"
        )
    out.print(f"Rounds          {report.rounds}; stopped: {report.stop_detail}")
    timings = ", ".join(f"{k} {v:.1f}" for k, v in report.timings_ms.items())
    out.print(f"Timings (ms)    {timings}")
    out.print(f"Parent id       {report.parent_id}")
    if report.continues:
        out.print(f"Continues       {report.continues}")


def finish(report: ExecutionReport, json_out: bool) -> None:
    if json_out:
        echo_json(report.to_dict())
    else:
        render_report(report, console())
    err = console(stderr=True)
    for warning in report.warnings:
        note(err, warning)
    if not report.live:
        err.print(styled(("dry run: nothing was sent to any venue (use --live to trade)", "dim")))
    if not report.complete:
        from liquidroute.model import StopReason

        code = EXIT_USAGE if report.stop_reason is StopReason.RISK_LIMIT else EXIT_NOT_ROUTABLE
        raise fail(
            f"{report.unfilled:g} of {report.requested:g} not filled: {report.stop_detail}"
            + (
                ""
                if not report.live
                else f" (continue with: liquidroute resume --continue {report.parent_id})"
                if report.stop_reason.parent_state == "stopped"
                else ""
            ),
            code,
        )


def open_journal(path: Path | None) -> Journal:
    from liquidroute.router.journal import Journal

    return Journal(path)


def execute(
    symbol: SymbolArg,
    side: SideArg,
    amount: Annotated[str, typer.Argument(help="Base amount to buy or sell, e.g. 2.5.")],
    venues: VenuesOpt = None,
    sample: SampleOpt = False,
    books: BooksOpt = None,
    at: AtOpt = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Send real orders (needs credentials). Default: dry run.",
            rich_help_panel=SAFETY,
        ),
    ] = False,
    config: ConfigOpt = None,
    live_books: Annotated[
        bool | None,
        typer.Option(
            "--live-books/--no-live-books",
            help="With --live: keep each venue's book by websocket (ccxt.pro watchOrderBook) "
            "and re-route fallbacks from those books in memory, not by REST. "
            "Default: on with --live.",
            rich_help_panel=SAFETY,
        ),
    ] = None,
    slippage_bps: Annotated[
        float,
        typer.Option(
            min=0,
            help="IOC limit = worst planned price moved this far (bps).",
            rich_help_panel=RISK,
        ),
    ] = 25.0,
    max_rounds: Annotated[
        int, typer.Option(min=1, help="Re-routing rounds at most.", rich_help_panel=RISK)
    ] = 3,
    deadline: Annotated[
        float,
        typer.Option(
            min=0.1, help="Stop re-routing after this many seconds.", rich_help_panel=RISK
        ),
    ] = 30.0,
    limit_price: Annotated[
        float | None,
        typer.Option(min=0, help="Never buy above / sell below this price.", rich_help_panel=RISK),
    ] = None,
    max_slippage_bps: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Stop when a round is this much worse than the first quote (bps).",
            rich_help_panel=RISK,
        ),
    ] = None,
    max_notional: Annotated[
        float | None,
        typer.Option(
            min=0, help="Refuse orders above this notional (quote).", rich_help_panel=RISK
        ),
    ] = None,
    kill_switch: Annotated[
        Path | None,
        typer.Option(
            help="If this file exists, nothing is dispatched. Default: ~/.liquidroute/KILL.",
            rich_help_panel=RISK,
        ),
    ] = None,
    ioc_timeout: Annotated[
        float,
        typer.Option(
            min=0.05,
            help="Venues without IOC: cancel what rests of a limit order after this (s).",
            rich_help_panel=SAFETY,
        ),
    ] = 2.0,
    latency_ms: Annotated[
        float, typer.Option(min=0, help="Dry run: simulated latency before each fill (ms).")
    ] = 0.0,
    journal: JournalOpt = None,
    fee: FeeOpt = None,
    fee_price: Annotated[
        list[str] | None,
        typer.Option(
            help="Value commissions charged in a third asset: ASSET=PRICE in quote, "
            "e.g. --fee-price BNB=600."
        ),
    ] = None,
    depth: DepthOpt = None,
    no_guard: NoGuardOpt = False,
    max_age: MaxAgeOpt = 10.0,
    max_deviation_bps: MaxDeviationOpt = 50.0,
    timeout: TimeoutOpt = 10.0,
    json_out: JsonOpt = False,
    pools: PoolsOpt = None,
    rpc: RpcOpt = None,
    token: TokenOpt = None,
    gas_price_gwei: GasPriceOpt = None,
    native_price: NativePriceOpt = 0.0,
    swap_router: SwapRouterOpt = None,
    v2_router: V2RouterOpt = None,
    wallet: WalletOpt = None,
) -> None:
    """Fill an order across venues: route, send IOC child orders, re-route what fails.

    Dry run by default: fills are simulated against the books and nothing is sent.
    --live (with credentials) is the only way an order leaves this machine; the sample
    and recorded sources are dry-run only. Every intent, ack and fill is journalled
    before/after it happens, so `liquidroute resume` can finish an interrupted order
    without sending anything twice.

    Examples:

      liquidroute execute BTC/USDT buy 2 --sample

      liquidroute execute BTC/USDT sell 1 --venues binance,okx --max-slippage-bps 20

      liquidroute execute BTC/USDT buy 0.5 --venues okx --live --max-notional 5e4

    With --pools (and --rpc), Uniswap pool legs are swaps: a dry run simulates each with
    eth_call from --wallet; --live signs it with LIQUIDROUTE_EVM_PRIVATE_KEY, limited by
    --max-slippage-bps (else --slippage-bps) and a deadline, its hash journalled before it
    is sent; the receipt is the fill. A swap that reverts is re-routed.

      liquidroute execute ETH/USDC sell 5 --pools uniswap-v3:0x88e6... --rpc URL
    """
    with reported_errors():
        from liquidroute.model import check_amount, check_side, split_symbol
        from liquidroute.router.executor import Executor
        from liquidroute.router.router import Router
        from liquidroute.venues.simulated import SimulatedVenue

        split_symbol(symbol)
        side_ = check_side(side)
        value = check_amount(amount, "AMOUNT")
        fees = parse_pairs(fee, "--fee")
        if live and (sample or books):
            raise fail(
                "--sample and --books are dry-run only; use --venues to trade live", EXIT_USAGE
            )
        policy = make_policy(
            slippage_bps,
            max_rounds,
            deadline,
            limit_price,
            max_slippage_bps,
            max_notional,
            kill_switch,
        )
        if live_books and not live:
            raise fail(
                "--live-books needs --live: a dry run fills against its own copy of the books",
                EXIT_USAGE,
            )
        has_books = bool(venues or sample or books) or pools is None
        trading: list[Venue] = []
        label = ""
        if live:
            names = parse_venue_list(venues)
            if not names and pools is None:
                raise fail("--live needs --venues a,b,c", EXIT_USAGE)
            if names:
                notes: list[str] = []
                trading = live_venues(
                    names,
                    config,
                    timeout,
                    ioc_timeout,
                    books_of=symbol if live_books is not False else None,
                    max_age_s=max_age,
                    notes=notes,
                )
                for line in notes:
                    note(console(stderr=True), line)
            label = "live venues: " + ", ".join(names)
        elif has_books:
            sources, label = select_venues(
                venues, sample, books, at, timeout_s=timeout, symbol=symbol
            )
            trading = [SimulatedVenue(s, latency_ms=latency_ms) for s in sources]
        router = (
            Router(
                trading,
                guard=not no_guard,
                max_age_ms=max_age * 1e3,
                max_deviation_bps=max_deviation_bps,
                timeout_s=timeout,
                depth=depth,
                source=label,
            )
            if trading
            else None
        )
        pool_config = None
        if pools is not None:
            pool_config = PoolTrading(
                pools,
                token or [],
                gas_price_gwei,
                native_price,
                swap_router or V3_SWAP_ROUTER,
                v2_router or V2_ROUTER02,
                wallet or "",
                slippage_bps if max_slippage_bps is None else max_slippage_bps,
            )
        with pool_quoter(symbol, router, pool_config, rpc, live, policy) as quoter:
            executor = Executor(
                quoter,
                open_journal(journal),
                live=live,
                policy=policy,
                fees=fees,
                venue_specs=parse_venue_list(venues) if live else None,
                fee_prices=parse_pairs(fee_price, "--fee-price"),
                request_extra={"pools": pool_config.to_dict()} if pool_config else None,
            )
            report = run_executor(executor, "execute", symbol, side_, value, start=router)
    finish(report, json_out)


@contextmanager
def pool_quoter(
    symbol: str,
    router: Router | None,
    config: PoolTrading | None,
    rpc_url: str | None,
    live: bool,
    policy: ExecutionPolicy,
    resume: bool = False,
) -> Iterator[Quoter]:
    """`router` alone, or with pools: a `PoolQuoter` over its books and the pools read over
    `rpc_url` (closed on exit)."""
    from liquidroute.router.pool_route import PoolQuoter
    from liquidroute.venues.pools.rpc import JsonRpc

    if config is None:
        assert router is not None
        yield router
        return
    why = "this parent has pool legs: resume needs" if resume else "--pools needs"
    client = JsonRpc(need_rpc(rpc_url, why), timeout_s=policy.order_timeout_s)
    try:
        venues = trading_pools(
            symbol,
            config,
            client,
            live=live,
            receipt_timeout_s=policy.order_timeout_s * 0.8,
        )
        yield PoolQuoter(router, venues)
    finally:
        client.close()


def make_policy(
    slippage_bps: float,
    max_rounds: int,
    deadline: float,
    limit_price: float | None,
    max_slippage_bps: float | None,
    max_notional: float | None,
    kill_switch: Path | None,
) -> ExecutionPolicy:
    from liquidroute.router.executor import ExecutionPolicy, default_kill_switch

    return ExecutionPolicy(
        slippage_bps=slippage_bps,
        max_rounds=max_rounds,
        deadline_s=deadline,
        limit_price=limit_price,
        max_slippage_bps=max_slippage_bps,
        max_notional=max_notional,
        kill_switch=kill_switch or default_kill_switch(),
    )


def resume(
    parent_id: Annotated[
        str | None, typer.Argument(help="Parent order id (default: the latest unfinished one).")
    ] = None,
    continue_: Annotated[
        str | None,
        typer.Option(
            "--continue",
            metavar="PARENT",
            help="Route the remainder of this STOPPED parent as a new parent linked to it "
            "(the notional cap counts what it spent).",
        ),
    ] = None,
    journal: JournalOpt = None,
    config: ConfigOpt = None,
    timeout: TimeoutOpt = 10.0,
    json_out: JsonOpt = False,
    rpc: RpcOpt = None,
) -> None:
    """Reconcile an interrupted live parent order with the venues, then finish it.

    Every child order whose fate is not final is looked up at its venue by client order
    id first (a pool swap by its journalled transaction hash: mined -> its receipt; not
    mined and past its deadline or nonce -> it can no longer fill); nothing is re-sent.
    A parent with pool legs needs --rpc (or LIQUIDROUTE_RPC_URL) again. Then the
    remainder is routed within the order's original limits. With --continue PARENT, a
    parent that stopped with a remainder (max rounds, deadline, a price or risk limit) is
    continued as a new parent.
    """
    with reported_errors():
        from liquidroute.errors import InvalidInputError
        from liquidroute.router.executor import ExecutionPolicy, Executor
        from liquidroute.router.router import Router

        store = open_journal(journal)
        if continue_ is not None:
            if parent_id is not None and parent_id != continue_:
                raise InvalidInputError(
                    "give the parent id once: liquidroute resume --continue PARENT"
                )
            parent_id = continue_
        if parent_id is None:
            pending = [p for p in store.parents(1000) if p.state in ("running", "unknown")]
            if not pending:
                raise InvalidInputError(f"no unfinished parent order in {store.path}")
            parent_id = pending[0].parent_id
        parent = store.parent(parent_id)
        if parent is None:
            raise InvalidInputError(f"no parent order {parent_id!r} in {store.path}")
        if not parent.live:
            raise InvalidInputError(
                f"parent {parent_id} was a dry run: nothing was sent, nothing to resume"
            )
        request = parent.request
        policy = ExecutionPolicy.from_dict(request.get("policy", {}))
        trading = live_venues(list(request["venue_specs"]), config, timeout)
        router = (
            Router(trading, timeout_s=timeout, source="live venues (resume)") if trading else None
        )
        pool_config = PoolTrading.from_dict(request["pools"]) if request.get("pools") else None
        with pool_quoter(
            parent.symbol, router, pool_config, rpc, True, policy, resume=True
        ) as quoter:
            executor = Executor(
                quoter,
                store,
                live=True,
                policy=policy,
                venue_specs=request["venue_specs"],
                fee_prices=request.get("fee_prices") or {},
                request_extra={"pools": request["pools"]} if pool_config else None,
            )
            job = "continue" if continue_ is not None else "resume"
            report = run_executor(executor, job, parent_id)
    finish(report, json_out)


def orders(
    journal: JournalOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """List parent orders in the journal and their state."""
    with reported_errors():
        store = open_journal(journal)
        parents = store.parents(limit)
    rows = []
    for p in parents:
        filled = (p.report or {}).get("filled")
        rows.append(
            {
                "parent_id": p.parent_id,
                "created": datetime.fromtimestamp(p.created, UTC).isoformat(timespec="seconds"),
                "symbol": p.symbol,
                "side": p.side,
                "amount": p.amount,
                "mode": "live" if p.live else "dry-run",
                "state": p.state,
                "filled": filled,
                "continues": p.request.get("continues"),
            }
        )
    if json_out:
        echo_json(rows)
        return
    from liquidroute.cli.render import Col, print_table

    columns = [Col(c) for c in ("Parent id", "Created (UTC)", "Symbol", "Side")]
    columns += [Col("Amount", right=True), Col("Mode"), Col("State"), Col("Filled", right=True)]
    columns += [Col("Continues")]
    print_table(
        console(),
        f"Parent orders in {store.path}",
        columns,
        [
            [
                "—" if v is None else f"{v:.12g}" if isinstance(v, float) else str(v)
                for v in r.values()
            ]
            for r in rows
        ],
    )
