"""`liquidroute quote SYMBOL SIDE AMOUNT`: the optimal split, printed or as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from liquidroute.cli.common import (
    EXIT_NOT_ROUTABLE,
    console,
    echo_json,
    fail,
    parse_pairs,
    reported_errors,
)
from liquidroute.cli.sources import (
    ROUTING,
    RULES,
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
    from liquidroute.venues.base import Venue


def lot_steps(venues: list[Venue], symbol: str, used: Sequence[str]) -> dict[str, float]:
    """venue -> its amount step, for printing amounts at the venue's precision.

    Markets are already loaded (the quote used them), so this asks no venue anything new;
    a venue whose market cannot be read is simply printed at the default precision.
    """
    import asyncio

    async def steps() -> dict[str, float]:
        out: dict[str, float] = {}
        for venue in venues:
            if venue.name in used:
                try:
                    step = (await venue.market(symbol)).amount_step
                except Exception:  # display only: never fail a quote over it
                    continue
                if step:
                    out[venue.name] = step
        return out

    return asyncio.run(steps())


def quote(
    symbol: SymbolArg,
    side: SideArg,
    amount: Annotated[
        str, typer.Argument(help="Base amount (e.g. 2.5 BTC); quote amount with --spend.")
    ],
    venues: VenuesOpt = None,
    sample: SampleOpt = False,
    books: BooksOpt = None,
    at: AtOpt = None,
    spend: Annotated[
        bool,
        typer.Option(
            "--spend",
            help="AMOUNT is in quote currency: spend it (buy) or receive it (sell).",
            rich_help_panel=ROUTING,
        ),
    ] = False,
    fee: FeeOpt = None,
    cap: Annotated[
        list[str] | None,
        typer.Option(
            help="Max base amount on a venue: VENUE=AMOUNT; repeatable.", rich_help_panel=ROUTING
        ),
    ] = None,
    balance: Annotated[
        list[str] | None,
        typer.Option(
            help="Balance on a venue: VENUE=AMOUNT, in quote currency for a buy (e.g. USDT), "
            "base for a sell; repeatable.",
            rich_help_panel=RULES,
        ),
    ] = None,
    fixed_cost: Annotated[
        list[str] | None,
        typer.Option(
            help="A cost charged once if a venue is used (withdrawal, flat fee): VENUE=COST "
            "in quote currency; repeatable.",
            rich_help_panel=RULES,
        ),
    ] = None,
    max_venues: Annotated[
        int | None, typer.Option(min=1, help="Use at most K venues.", rich_help_panel=RULES)
    ] = None,
    max_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="At most this share of the order on one venue (0.5 = half).",
            rich_help_panel=RULES,
        ),
    ] = None,
    no_rules: Annotated[
        bool,
        typer.Option(
            "--no-rules",
            help="Ignore lot sizes, minimums and limits (the continuous optimum).",
            rich_help_panel=RULES,
        ),
    ] = False,
    time_limit: Annotated[
        float,
        typer.Option(min=0.01, help="Solver time budget (s) for the rules.", rich_help_panel=RULES),
    ] = 1.0,
    depth: DepthOpt = None,
    no_guard: NoGuardOpt = False,
    max_age: MaxAgeOpt = 10.0,
    max_deviation_bps: MaxDeviationOpt = 50.0,
    timeout: TimeoutOpt = 10.0,
    json_out: JsonOpt = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep the --venues books live by websocket and redraw the split whenever "
            "it changes, until Ctrl-C (--json: one quote per line).",
        ),
    ] = False,
) -> None:
    """Quote the cheapest split of an order across venues, taker fees included.

    The split is exact: levels are taken across all venues in order of fee-adjusted price,
    so no other split costs less. Beside it: the best single venue, an equal split, a
    depth pro-rata split and a 5 % grid, with what the optimum saves against each.

    Legs obey each venue's rules (lot size, minimum amount and notional, max order size)
    and your limits (--balance, --max-share, --max-venues, --fixed-cost); the table says
    which rule shaped a leg. That problem is solved exactly as a mixed-integer program.

    Exit codes: 0 ok; 1 venue/data error; 2 bad input; 3 not fully routable.

    Examples:

      liquidroute quote BTC/USDT sell 50 --sample

      liquidroute quote BTC/USDT sell 2 --venues binance,okx,bybit --json

      liquidroute quote BTC/USDT buy 250000 --spend --sample --fee okx=0.0008

      liquidroute quote BTC/USDT sell 20 --sample --max-venues 2 --max-share 0.7

      liquidroute quote btc/usdt buy 1 --books binance.csv.gz --at 1723161480000
    """
    with reported_errors():
        from liquidroute.model import check_amount, check_side, split_symbol
        from liquidroute.router.router import Router

        split_symbol(symbol)
        side_ = check_side(side)
        value = check_amount(amount, "AMOUNT")
        fees = parse_pairs(fee, "--fee")
        caps = parse_pairs(cap, "--cap")
        if watch:
            from liquidroute.cli.watch import watch_quote

            watch_quote(
                venues,
                symbol,
                side_,
                value,
                other_source=bool(sample or books),
                router={
                    "guard": not no_guard,
                    "max_age_ms": max_age * 1e3,
                    "max_deviation_bps": max_deviation_bps,
                    "timeout_s": timeout,
                    "depth": depth,
                    "source": "live order books (websocket)",
                },
                options={
                    "amount_in": "quote" if spend else "base",
                    "caps": caps,
                    "fees": fees,
                    "rules": False if no_rules else None,
                    "balances": parse_pairs(balance, "--balance"),
                    "fixed_costs": parse_pairs(fixed_cost, "--fixed-cost"),
                    "max_venues": max_venues,
                    "max_share": max_share,
                    "time_limit": time_limit,
                },
                max_age_s=max_age,
                json_out=json_out,
            )
            return
        sources, label = select_venues(venues, sample, books, at, timeout_s=timeout, symbol=symbol)
        router = Router(
            sources,
            guard=not no_guard,
            max_age_ms=max_age * 1e3,
            max_deviation_bps=max_deviation_bps,
            timeout_s=timeout,
            depth=depth,
            source=label,
        )
        result = router.quote_sync(
            symbol,
            side_,
            value,
            amount_in="quote" if spend else "base",
            caps=caps,
            fees=fees,
            rules=False if no_rules else None,
            balances=parse_pairs(balance, "--balance"),
            fixed_costs=parse_pairs(fixed_cost, "--fixed-cost"),
            max_venues=max_venues,
            max_share=max_share,
            time_limit=time_limit,
        )

    from liquidroute.cli.render import render_diagnostics, render_quote

    if json_out:
        echo_json(result.to_dict())
    else:
        render_quote(result, console(), steps=lot_steps(sources, symbol, result.venues))
    render_diagnostics(result, console(stderr=True))
    lots_only = result.reachable is not None and result.reachable[1] is not None
    if not result.complete and not lots_only:  # a lot-lattice shortfall is a note, not an error
        unit = "quote" if spend else "base"
        raise fail(
            f"insufficient liquidity: the books (within your caps and balances) fill "
            f"{result.filled:.8g} base, {result.unfilled:.8g} {unit} short of {value:.8g}; "
            "add venues, raise limits or reduce AMOUNT",
            EXIT_NOT_ROUTABLE,
        )
