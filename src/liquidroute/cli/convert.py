"""`liquidroute convert FROM TO AMOUNT`: multi-hop conversion, solved jointly."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from liquidroute.cli.common import (
    console,
    echo_json,
    fail,
    note,
    parse_venue_list,
    reported_errors,
)
from liquidroute.cli.pools import PoolsOpt, RpcOpt, TokenOpt
from liquidroute.cli.sources import JsonOpt, SampleOpt, TimeoutOpt

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rich.console import Console

    from liquidroute.model import DepthSnapshot, GraphQuote, HopLeg, Market
    from liquidroute.venues.pools.rpc import JsonRpc
    from liquidroute.venues.pools.uniswap import Pool, PoolSide

DEFAULT_BRIDGES = "BTC,ETH,USDT,USDC"
#: which token of a pool is the market's quote when no book names the pair (first found)
QUOTE_ORDER = ("USDT", "USDC", "DAI", "USD", "EUR", "BTC", "ETH")
#: route_graph's pool pricing (its defaults): chord levels, refinements of the partly used one
POOL_LEVELS, POOL_REFINEMENTS = 256, 4
POOL_TOLERANCE = 1e-8  # measured: pool legs within ~6e-9 of the integer swap math
POOL_PRICING = (
    "pool legs in multi-hop are priced on the pools' curves (floats, not to the wei): chords "
    f"of each pool's exact curve, the partly used chord refined {POOL_REFINEMENTS} times, so "
    f"each pool leg is within ~{POOL_TOLERANCE:g} relative of the pool's integer swap and the "
    "route is the optimum to that tolerance; gas is not charged (quote --pools charges it "
    "on a single hop)"
)


async def live_books(
    specs: list[str], assets: set[str], timeout_s: float
) -> tuple[list[DepthSnapshot], list[Market], list[str]]:
    """Books of every market whose base and quote are both in `assets`, on each venue.

    A venue that fails is left out (a note says why); when every venue fails, the error
    names each one and its cause (exit 1), so an offline machine is never told that the
    assets are unknown.
    """
    from liquidroute.errors import LiquidrouteError, NoVenueAnsweredError
    from liquidroute.venues.ccxt_venue import venue_from_spec

    venues = [venue_from_spec(s, timeout_ms=int(timeout_s * 1e3)) for s in specs]
    snaps: list[DepthSnapshot] = []
    markets: list[Market] = []
    notes: list[str] = []
    failed: dict[str, LiquidrouteError] = {}
    try:
        for venue in venues:
            try:
                symbols = await venue.symbols()
                wanted = [
                    s for s in symbols if set(s.split(":")[0].split("/")) <= assets and ":" not in s
                ]
                fetched = await asyncio.gather(
                    *(asyncio.gather(venue.snapshot(s), venue.market(s)) for s in wanted),
                    return_exceptions=True,
                )
                for symbol, result in zip(wanted, fetched, strict=True):
                    if isinstance(result, BaseException):
                        notes.append(f"{venue.name} {symbol} left out: {result}")
                        continue
                    snaps.append(result[0])
                    markets.append(result[1])
            except LiquidrouteError as exc:
                failed[venue.name] = exc
                notes.append(f"{venue.name} left out: {exc}")
    finally:
        await asyncio.gather(*(v.close() for v in venues), return_exceptions=True)
    if not snaps and failed:
        if len(failed) == 1:
            raise next(iter(failed.values()))
        raise NoVenueAnsweredError(list(failed.values()), list(failed))
    return snaps, markets, notes


def pool_markets(
    specs: str,
    rpc_url: str | None,
    tokens: list[str] | None,
    snaps: Sequence[DepthSnapshot],
    source: str,
    target: str,
) -> list[tuple[str, PoolSide]]:
    """Each pool of --pools with the market it trades ("ETH/USDC"), for route_graph(pools=).

    `sample`: the synthetic WBTC/USDT pools priced at the BTC/USDT books' mid. Real pools:
    token0()/token1() and the tokens' ERC-20 symbol() (or --token) name each pool's pair
    (a batched round trip each); the pools are then read and oriented by `pool_sides` (gas
    is left out: route_graph does not charge it). A pool token that is neither FROM, TO, an
    asset of the books nor a token of another pool is an error naming --token.
    """
    from liquidroute.cli.pools import load_pools, need_rpc, token_map
    from liquidroute.errors import InvalidInputError
    from liquidroute.model import split_symbol
    from liquidroute.venues.pools.rpc import JsonRpc
    from liquidroute.venues.pools.uniswap import parse_pool_specs, pool_sides

    if specs.strip().lower() == "sample":
        from liquidroute.router.route import consolidated_mid

        btc = [s for s in snaps if s.symbol == "BTC/USDT"]
        mid = consolidated_mid(btc) if btc else None
        sides = load_pools("BTC/USDT", specs, None, tokens, None, 0.0, mid)
        return [("BTC/USDT", side) for side in sides]
    pools = parse_pool_specs(specs)  # bad specs are reported before --rpc is asked for
    names = [p.name.lower() for p in pools]
    if len(set(names)) < len(names):
        twice = next(p.name for p in pools if names.count(p.name.lower()) > 1)
        raise InvalidInputError(f"--pools lists {twice} twice: give each pool once")
    named = token_map(tokens)
    rpc = JsonRpc(need_rpc(rpc_url))
    try:
        pairs = _pool_pairs(rpc, pools, named)
        held = {a for snap in snaps for a in split_symbol(snap.symbol.split(":")[0])}
        held |= {source, target}
        books = {snap.symbol.split(":")[0] for snap in snaps}
        symbols = []
        for i, (pool, pair) in enumerate(zip(pools, pairs, strict=True)):
            others = {a for j, p in enumerate(pairs) if j != i for a in p}
            for asset in pair:
                if asset not in held | others:
                    raise _unknown_token(pool, pair, asset)
            symbols.append(_market_of(pair, books))
        found: dict[str, PoolSide] = {}
        for symbol in dict.fromkeys(symbols):
            group = [p for p, s in zip(pools, symbols, strict=True) if s == symbol]
            base, quote = split_symbol(symbol)
            for side in pool_sides(
                rpc, group, base, quote, tokens=named, gas_price_wei=0, native_price=0.0
            ):
                found[side.name] = side
        return [(s, found[p.name]) for p, s in zip(pools, symbols, strict=True)]
    finally:
        rpc.close()


def _unknown_token(pool: Pool, pair: tuple[str, str], asset: str) -> Exception:
    from liquidroute.errors import InvalidInputError

    return InvalidInputError(
        f"pool {pool.name} trades {pair[0]}/{pair[1]}: {asset} is not FROM, TO, an asset of "
        "the books or of another pool; name its tokens with --token SYMBOL=ADDRESS"
    )


def _pool_pairs(
    rpc: JsonRpc, pools: Sequence[Pool], named: dict[str, str]
) -> list[tuple[str, str]]:
    """(symbol of token0, symbol of token1) of each pool: --token names first, else the
    token's ERC-20 symbol() (WETH counts as ETH, WBTC as BTC, as in `pool_sides`)."""
    from liquidroute.errors import InvalidInputError, LiquidrouteError
    from liquidroute.venues.pools.rpc import Call
    from liquidroute.venues.pools.uniswap import ALIASES

    calls = [Call(p.address, f"token{k}()", returns=("address",)) for p in pools for k in (0, 1)]
    addresses = [str(a[0]) for a in rpc.call_many(calls)]
    by_address = {v.lower(): k for k, v in named.items()}
    unnamed = sorted({a for a in addresses if a.lower() not in by_address})

    def read(tokens: list[str]) -> list[str]:
        calls = [Call(t, "symbol()", returns=("string",)) for t in tokens]
        return [str(a[0]).strip().upper() for a in rpc.call_many(calls)]

    try:
        got = read(unnamed)  # one round trip
    except LiquidrouteError:  # one of them has none: ask each, to name it
        got = []
        for token in unnamed:
            try:
                got += read([token])
            except LiquidrouteError:
                got.append("")
    symbols = dict(zip(unnamed, got, strict=True))
    for token, symbol in symbols.items():
        if not symbol:
            raise InvalidInputError(
                f"pool token {token} has no readable ERC-20 symbol(): name it with "
                f"--token SYMBOL={token}"
            )
    names = [by_address.get(a.lower()) or symbols[a] for a in addresses]
    names = [ALIASES.get(n, n) for n in names]
    pairs = []
    for i, pool in enumerate(pools):
        pair = (names[2 * i], names[2 * i + 1])
        if pair[0] == pair[1]:
            raise InvalidInputError(
                f"pool {pool.name}: both tokens are called {pair[0]}; name them with "
                "--token SYMBOL=ADDRESS"
            )
        pairs.append(pair)
    return pairs


def _market_of(pair: tuple[str, str], books: set[str]) -> str:
    """The pool's market symbol: as a book names the pair, else quoted in the first of
    QUOTE_ORDER it holds (else token1)."""
    a, b = pair
    for symbol in (f"{a}/{b}", f"{b}/{a}"):
        if symbol in books:
            return symbol
    quote = next((q for q in QUOTE_ORDER if q in pair), b)
    return f"{a if quote == b else b}/{quote}"


def check_pools_connect(
    snaps: Sequence[DepthSnapshot],
    markets: Sequence[Market],
    pools: Sequence[tuple[str, PoolSide]],
    source: str,
    target: str,
    max_hops: int,
    bridges: Sequence[str] | None,
) -> None:
    """Every pool lies on some FROM -> TO path within --max-hops and --bridges
    (`usable_arcs`, the LP's own arc test); one that cannot is an error naming it."""
    from liquidroute.errors import InvalidInputError
    from liquidroute.optimizer.graph import pool_edge, pool_grid, usable_arcs
    from liquidroute.router.graph_route import book_edges

    edges = book_edges(snaps, markets)
    first = len(edges)
    for symbol, side in pools:
        curve = side.curve()
        edges += [pool_edge(curve, symbol, d, pool_grid(curve, d, 2)) for d in ("buy", "sell")]
    assets = {e.src for e in edges} | {e.dst for e in edges}
    if source not in assets or target not in assets:
        return  # route_graph names the unknown asset
    used = {i for i, _ in usable_arcs(edges, source, target, max_hops, bridges)}
    for k, (symbol, side) in enumerate(pools):
        if not used & {first + 2 * k, first + 2 * k + 1}:
            via = "" if bridges is None else f" via bridges {','.join(bridges) or '(none)'}"
            raise InvalidInputError(
                f"pool {side.name} ({symbol}) is on no path from {source} to {target} within "
                f"{max_hops} hop(s){via}: pick pools of the route's assets, or widen "
                "--bridges / --max-hops"
            )


def pool_label(side: PoolSide) -> str:
    """A pool leg's venue as `quote --pools` names it, with its fee tier."""
    return f"{side.name} ({side.curve().fee * 100:g} %)"


def leg_fee(leg: HopLeg, pools: Mapping[str, PoolSide]) -> float:
    """A leg's fee in quote currency. A book leg's is its taker fee; a pool leg's is the pool
    fee inside its price (as `route_with_pools` counts it): a buy pays fee·cost, a sell's
    proceeds are net of fee/(1 − fee) of them."""
    side = pools.get(leg.venue)
    if side is None:
        return leg.fee
    f = side.curve().fee
    return leg.amount_in * f if leg.side == "buy" else leg.amount_out * f / (1 - f)


def render(q: GraphQuote, out: Console, pools: Sequence[tuple[str, PoolSide]] = ()) -> None:
    from liquidroute.cli.render import Col, amount, fixed, print_table, quote_currency

    by_name = {side.name: side for _, side in pools}

    def venue(leg_venue: str) -> str:
        return pool_label(by_name[leg_venue]) if leg_venue in by_name else leg_venue

    title = (
        f"{amount(q.amount_in)} {q.source} -> {amount(q.amount_out)} {q.target} (exact {q.exact})"
    )
    rows = [
        [
            f"{hop.asset_in}->{hop.asset_out}",
            venue(leg.venue),
            leg.symbol,
            leg.side,
            f"{amount(leg.amount_in)} {leg.asset_in}",
            f"{amount(leg.amount_out)} {leg.asset_out}",
            f"{leg.avg_price:,.8g}",
            f"{fixed(leg_fee(leg, by_name), 6)} {quote_currency(leg.symbol)}",
        ]
        for hop in q.hops
        for leg in hop.legs
    ]
    columns = [Col("Hop"), Col("Venue"), Col("Market"), Col("Side")]
    columns += [Col(c, right=True) for c in ("In", "Out", "Avg price", "Fee")]
    print_table(out, title, columns, rows)
    if q.direct_out is not None and q.exact == "in":
        gain = (q.amount_out / q.direct_out - 1) * 1e4
        out.print(
            f"Direct markets only: {amount(q.direct_out)} {q.target}; joint route gains "
            f"{fixed(gain)} bps ({amount(q.amount_out - q.direct_out)} {q.target})"
        )
    elif q.direct_in is not None:
        gain = (1 - q.amount_in / q.direct_in) * 1e4
        out.print(
            f"Direct markets only: {amount(q.direct_in)} {q.source}; joint route saves "
            f"{fixed(gain)} bps ({amount(q.direct_in - q.amount_in)} {q.source})"
        )
    else:
        out.print("Direct markets only: cannot fill this amount")
    out.print(
        f"Paths used: {len(q.paths)}; LP {q.lp_variables} variables, "
        f"{q.lp_constraints} constraints; {q.compute_ms:.0f} ms"
    )
    used = sum(leg.venue in by_name for hop in q.hops for leg in hop.legs)
    if pools:
        out.print(f"Pools: {len(pools)} given, {used} leg(s) used; {POOL_PRICING}")


def pools_json(pools: Sequence[tuple[str, PoolSide]]) -> list[dict[str, object]]:
    """The pools of a route for --json: venue name (as in the legs), market, kind, fee."""
    return [
        {
            "venue": side.name,
            "symbol": symbol,
            "kind": side.pool.kind,
            "address": side.pool.address,
            "fee": side.curve().fee,
        }
        for symbol, side in pools
    ]


def convert(
    source: Annotated[
        str, typer.Argument(metavar="FROM", help="Asset to convert from, e.g. USDT.")
    ],
    target: Annotated[str, typer.Argument(metavar="TO", help="Asset to convert to, e.g. ETH.")],
    amount: Annotated[str, typer.Argument(help="Amount of FROM to spend (of TO with --out).")],
    out_: Annotated[
        bool, typer.Option("--out", help="AMOUNT is what to receive in TO, not what to spend.")
    ] = False,
    venues: Annotated[
        str | None, typer.Option(help="Live venues (ccxt ids), comma-separated.")
    ] = None,
    sample: SampleOpt = False,
    bridges: Annotated[
        str,
        typer.Option(help="Assets a route may pass through (comma-separated; 'any' for all)."),
    ] = DEFAULT_BRIDGES,
    max_hops: Annotated[int, typer.Option(min=1, max=6, help="Longest path, in hops.")] = 3,
    hop_penalty_bps: Annotated[
        float, typer.Option(min=0, help="A multi-hop route must beat direct by this per extra hop.")
    ] = 0.0,
    timeout: TimeoutOpt = 10.0,
    json_out: JsonOpt = False,
    pools: PoolsOpt = None,
    rpc: RpcOpt = None,
    token: TokenOpt = None,
) -> None:
    """Convert one asset into another over every market and path, solved as ONE LP.

    All hops are optimised jointly (a book shared by two paths counted once), so the
    answer is provably optimal — not hop by hop. Stablecoins are different assets, met
    only through their own books. Exit 3 when no path within --max-hops can fill it.

    With --pools, AMM pools are edges of the same graph (e.g. USDC -> USDT on a book, USDT
    -> BTC on a pool): priced on each pool's curve, the partly used chord refined, to
    ~1e-8 relative; gas is not charged in multi-hop.

    Examples:

      liquidroute convert USDT ETH 500000 --sample

      liquidroute convert USDC ETH 25 --out --sample --bridges BTC --max-hops 2

      liquidroute convert USDT ETH 10000 --venues binance,okx --hop-penalty-bps 2

      liquidroute convert USDC BTC 2000000 --sample --pools sample
    """
    with reported_errors():
        from liquidroute.model import check_amount
        from liquidroute.router.graph_route import route_graph

        value = check_amount(amount, "AMOUNT")
        src, dst = source.upper(), target.upper()
        bridge_list = (
            None
            if bridges.lower() == "any"
            else [b.strip().upper() for b in bridges.split(",") if b.strip()]
        )
        notes: list[str] = []
        if (sample and venues) or not (sample or venues or pools):
            raise fail("choose exactly one source: --venues a,b,c or --sample")
        snaps: list[DepthSnapshot] = []
        markets: list[Market] = []
        if sample:
            from liquidroute.venues.sample import sample_spot
            from liquidroute.venues.sample_graph import SAMPLE_GRAPH_NOTE

            snaps, markets = sample_spot()
            notes.append(SAMPLE_GRAPH_NOTE)
        elif venues:
            assets = {src, dst, *(bridge_list or [])}
            if bridge_list is None:
                assets |= set(DEFAULT_BRIDGES.split(","))
            snaps, markets, fetched_notes = asyncio.run(
                live_books(parse_venue_list(venues), assets, timeout)
            )
            notes += fetched_notes
        chosen: list[tuple[str, PoolSide]] = []
        if pools is not None:
            chosen = pool_markets(pools, rpc, token, snaps, src, dst)
        if bridge_list is not None:
            held = {a for snap in snaps for a in snap.symbol.split(":")[0].split("/")}
            held |= {a for symbol, _ in chosen for a in symbol.split("/")}
            default = bridges == DEFAULT_BRIDGES  # the defaults only where books hold them
            bridge_list = [
                b for b in bridge_list if b not in (src, dst) and (not default or b in held)
            ]
        check_pools_connect(snaps, markets, chosen, src, dst, max_hops, bridge_list)
        quote = route_graph(
            snaps,
            src,
            dst,
            markets=markets,
            amount_in=None if out_ else value,
            amount_out=value if out_ else None,
            bridges=bridge_list,
            max_hops=max_hops,
            hop_penalty_bps=hop_penalty_bps,
            pools=[(symbol, side.curve()) for symbol, side in chosen],
            pool_levels=POOL_LEVELS,
            pool_refinements=POOL_REFINEMENTS,
        )
    if json_out:
        data = quote.to_dict()
        if pools is not None:
            by_name = {side.name: side for _, side in chosen}
            for hop, hop_d in zip(quote.hops, data["hops"], strict=True):
                for leg, leg_d in zip(hop.legs, hop_d["legs"], strict=True):
                    leg_d["fee"] = leg_fee(leg, by_name)
            data["pools"] = pools_json(chosen)
            data["pool_pricing"] = POOL_PRICING
        echo_json(data)
    else:
        render(quote, console(), chosen)
    err = console(stderr=True)
    for message in [*notes, *quote.warnings]:
        note(err, message)
