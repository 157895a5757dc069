"""Options and loading for on-chain pools beside the books (`quote --pools ... --rpc ...`,
`execute --pools ... --rpc ...`)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from liquidroute.venues.pools.rpc import JsonRpc
    from liquidroute.venues.pools.trading import PoolTradingVenue
    from liquidroute.venues.pools.uniswap import PoolSide

KEY_ENV = "LIQUIDROUTE_EVM_PRIVATE_KEY"
#: Ethereum mainnet deployments (override with --swap-router / --v2-router on other chains)
V3_SWAP_ROUTER = "0xE592427A0AEce92De3Edc1F18E0a2C27E8BB9c8E"
V2_ROUTER02 = "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"

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


SwapRouterOpt = Annotated[
    str | None,
    typer.Option(
        "--swap-router",
        metavar="ADDRESS",
        help="Uniswap v3 SwapRouter that executes v3 pool legs (default: Ethereum "
        "mainnet's, see docs/pools.md).",
        rich_help_panel=POOLS,
    ),
]
V2RouterOpt = Annotated[
    str | None,
    typer.Option(
        "--v2-router",
        metavar="ADDRESS",
        help="UniswapV2Router02 that executes v2 pool legs (default: Ethereum mainnet's, "
        "see docs/pools.md).",
        rich_help_panel=POOLS,
    ),
]
WalletOpt = Annotated[
    str | None,
    typer.Option(
        "--wallet",
        envvar="LIQUIDROUTE_EVM_WALLET",
        metavar="ADDRESS",
        help="Account a dry run simulates pool swaps from (its balances and approvals); "
        f"default: the address of {KEY_ENV}, the key --live signs swaps with.",
        rich_help_panel=POOLS,
    ),
]


@dataclass(frozen=True, slots=True)
class PoolTrading:
    """How pool legs are read and executed; journalled so that `resume` rebuilds them
    (the RPC URL is not: it may hold an API key — resume takes --rpc again)."""

    specs: str
    tokens: list[str]
    gas_price_gwei: float | None
    native_price: float
    swap_router: str
    v2_router: str
    wallet: str
    slippage_bps: float

    def __post_init__(self) -> None:
        from liquidroute.errors import InvalidInputError

        if self.specs.strip().lower() == "sample":
            raise InvalidInputError(
                "--pools sample is synthetic and quote-only: execute on real pools "
                "(--pools uniswap-v3:0x... --rpc URL)"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PoolTrading:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def evm_signer(required: bool) -> Any:
    """The swap signer from LIQUIDROUTE_EVM_PRIVATE_KEY (None when absent and not required).
    The key is registered with `redact` and never printed."""
    from liquidroute.errors import AuthenticationError, register_secret
    from liquidroute.venues.pools.swap import Signer

    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        if required:
            raise AuthenticationError(
                "evm", f"--live pool swaps need a key: set {KEY_ENV} (hex private key)"
            )
        return None
    register_secret(key)
    register_secret(key.removeprefix("0x"))
    try:
        return Signer(key)
    except Exception:
        raise AuthenticationError(
            "evm", f"{KEY_ENV} is not a valid hex private key (32 bytes)"
        ) from None


def trading_pools(
    symbol: str,
    config: PoolTrading,
    rpc: JsonRpc,
    *,
    live: bool,
    deadline_s: float = 120.0,
    receipt_timeout_s: float = 30.0,
) -> list[PoolTradingVenue]:
    """The pools of `config.specs` read over `rpc` as venues the executor trades on: a dry
    run simulates each swap with eth_call from the wallet; --live signs with the key."""
    from liquidroute.errors import InvalidInputError
    from liquidroute.venues.pools.trading import PoolTradingVenue

    signer = evm_signer(required=live)
    wallet = signer.address if signer is not None else config.wallet
    if not wallet:
        raise InvalidInputError(
            f"pool legs are simulated from an account: pass --wallet ADDRESS or set {KEY_ENV}"
        )
    sides = _read(symbol, config, rpc)
    return [
        PoolTradingVenue(
            side,
            rpc,
            router=config.v2_router if side.pool.kind == "uniswap-v2" else config.swap_router,
            wallet=wallet,
            signer=signer,
            live=live,
            slippage_bps=config.slippage_bps,
            deadline_s=deadline_s,
            receipt_timeout_s=receipt_timeout_s,
        )
        for side in sides
    ]


def _read(symbol: str, config: PoolTrading, rpc: JsonRpc) -> list[PoolSide]:
    from liquidroute.model import split_symbol
    from liquidroute.venues.pools.uniswap import parse_pool_specs, pool_sides

    pools = parse_pool_specs(config.specs)
    base, quote = split_symbol(symbol)
    gwei = config.gas_price_gwei
    return pool_sides(
        rpc,
        pools,
        base,
        quote,
        tokens=token_map(config.tokens),
        gas_price_wei=None if gwei is None else int(gwei * 1e9),
        native_price=config.native_price,
    )


def token_map(tokens: list[str] | None) -> dict[str, str]:
    """--token SYMBOL=ADDRESS (repeatable, or comma-separated) -> {SYMBOL: ADDRESS}."""
    from liquidroute.errors import InvalidInputError

    named: dict[str, str] = {}
    for item in tokens or []:
        for part in item.split(","):
            name, sep, address = part.partition("=")
            if not sep or not name.strip() or not address.strip().startswith("0x"):
                raise InvalidInputError(
                    f"--token takes SYMBOL=0xADDRESS (e.g. --token ETH=0xC02a...), got {part!r}"
                )
            named[name.strip().upper()] = address.strip()
    return named


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
    from liquidroute.venues.pools.uniswap import GAS_UNITS, parse_pool_specs

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
    parse_pool_specs(specs)  # bad specs are reported before --rpc is asked for
    rpc = JsonRpc(need_rpc(rpc_url))
    config = PoolTrading(specs, tokens or [], gas_price_gwei, native_price, "", "", "", 0.0)
    try:
        return _read(symbol, config, rpc)
    finally:
        rpc.close()


def need_rpc(rpc_url: str | None, why: str = "--pools needs") -> str:
    from liquidroute.errors import InvalidInputError

    if not rpc_url:
        raise InvalidInputError(f"{why} --rpc URL (or LIQUIDROUTE_RPC_URL) to read the pools")
    return rpc_url
