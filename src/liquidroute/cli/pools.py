"""Options and loading for on-chain pools beside the books (`quote --pools ... --rpc ...`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from liquidroute.venues.pools.uniswap import PoolSide

POOLS = "On-chain pools"

PoolsOpt = Annotated[
    str | None,
    typer.Option(
        "--pools",
        metavar="KIND:ADDRESS,...",
        help="AMM pools to route through beside the books: uniswap-v3:0x...,uniswap-v2:0x... "
        "(read over --rpc; each pool's swap output is computed with the contract's own "
        "integer math), or 'sample' for two SYNTHETIC offline WBTC/USDT pools priced at "
        "the books' mid.",
        rich_help_panel=POOLS,
    ),
]
RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc",
        envvar="LIQUIDROUTE_RPC_URL",
        metavar="URL",
        help="Ethereum JSON-RPC endpoint for --pools (or LIQUIDROUTE_RPC_URL).",
        rich_help_panel=POOLS,
    ),
]
TokenOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--token",
        metavar="SYMBOL=ADDRESS",
        help="Name a pool token (when its ERC-20 symbol() does not match the market's "
        "base or quote); repeatable.",
        rich_help_panel=POOLS,
    ),
]
GasPriceOpt = Annotated[
    float | None,
    typer.Option(
        "--gas-price-gwei",
        min=0.0,
        help="Gas price for each pool swap (default: the node's eth_gasPrice).",
        rich_help_panel=POOLS,
    ),
]
NativePriceOpt = Annotated[
    float,
    typer.Option(
        "--native-price",
        min=0.0,
        help="Price of the chain's native token (ETH) in quote currency, to charge each "
        "pool swap its gas; 0 leaves gas out (said in the notes).",
        rich_help_panel=POOLS,
    ),
]


def load_pools(
    symbol: str,
    specs: str,
    rpc_url: str | None,
    tokens: list[str] | None,
    gas_price_gwei: float | None,
    native_price: float,
    mid: float | None = None,
) -> list[PoolSide]:
    """Read the pools named by `specs` and orient them for `symbol` (base/quote);
    `specs == "sample"` gives the synthetic offline pools priced at `mid`."""
    from liquidroute.errors import InvalidInputError
    from liquidroute.model import split_symbol
    from liquidroute.venues.pools.rpc import JsonRpc
    from liquidroute.venues.pools.uniswap import GAS_UNITS, parse_pool_specs, pool_sides

    if specs.strip().lower() == "sample":
        from liquidroute.venues.pools.sample import sample_pools

        if split_symbol(symbol) != ("BTC", "USDT"):
            raise InvalidInputError("--pools sample holds WBTC/USDT pools: quote BTC/USDT")
        if mid is None:
            raise InvalidInputError(
                "--pools sample is priced at the books' mid: add a book source (--sample)"
            )
        gas = GAS_UNITS["uniswap-v3"] * (gas_price_gwei or 0.0) * 1e-9 * native_price
        return sample_pools(mid, gas)
    pools = parse_pool_specs(specs)
    if not rpc_url:
        raise InvalidInputError("--pools needs --rpc URL (or LIQUIDROUTE_RPC_URL) to read them")
    base, quote = split_symbol(symbol)
    named: dict[str, str] = {}
    for item in tokens or []:
        for part in item.split(","):
            name, sep, address = part.partition("=")
            if not sep or not name.strip() or not address.strip().startswith("0x"):
                raise InvalidInputError(
                    f"--token takes SYMBOL=0xADDRESS (e.g. --token ETH=0xC02a...), got {part!r}"
                )
            named[name.strip().upper()] = address.strip()
    rpc = JsonRpc(rpc_url)
    try:
        gas_wei = None if gas_price_gwei is None else int(gas_price_gwei * 1e9)
        return pool_sides(
            rpc, pools, base, quote, tokens=named, gas_price_wei=gas_wei, native_price=native_price
        )
    finally:
        rpc.close()
