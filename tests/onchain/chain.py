"""A real EVM on loopback: anvil (npm @foundry-rs/anvil) with Uniswap's own build artifacts
(npm @uniswap/v2-core, v2-periphery, v3-core, v3-periphery) deployed by anvil's unlocked dev
account.

`.ci/run` installs the npm packages (package.json at the repo root, exact versions); a missing
node_modules or anvil is a test failure with the command that fixes it, never a skip.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import to_checksum_address

from liquidroute.venues.pools.rpc import Call, JsonRpc, encode_call

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
ANVIL = NODE_MODULES / ".bin" / "anvil"
UNISWAP = NODE_MODULES / "@uniswap"
MAX_UINT = (1 << 256) - 1


@cache
def artifact(name: str) -> dict[str, Any]:
    """ABI and creation bytecode of a Uniswap contract from the npm packages."""
    paths = {
        "ERC20": UNISWAP / "v2-core/build/ERC20.json",
        "UniswapV2Factory": UNISWAP / "v2-core/build/UniswapV2Factory.json",
        "UniswapV2Pair": UNISWAP / "v2-core/build/UniswapV2Pair.json",
        "UniswapV3Factory": UNISWAP
        / "v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
        "NonfungiblePositionManager": UNISWAP / "v3-periphery/artifacts/contracts/"
        "NonfungiblePositionManager.sol/NonfungiblePositionManager.json",
        "SwapRouter": UNISWAP / "v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
        "UniswapV2Router02": UNISWAP / "v2-periphery/build/UniswapV2Router02.json",
    }
    path = paths[name]
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `npm ci` at the repository root")
    data = json.loads(path.read_text())
    code = data["bytecode"]
    return {"abi": data["abi"], "bytecode": code if code.startswith("0x") else "0x" + code}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Chain:
    """An anvil node with helpers to deploy, transact (dev account) and call."""

    def __init__(self) -> None:
        if not ANVIL.exists():
            raise RuntimeError(f"{ANVIL} is missing: run `npm ci` at the repository root")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [
                str(ANVIL),
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
                "--disable-code-size-limit",
                "--silent",
                "--accounts",
                "3",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.rpc = JsonRpc(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.accounts = [
                    to_checksum_address(a) for a in self.rpc.request("eth_accounts", [])
                ]
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise
                time.sleep(0.05)
        self.me = self.accounts[0]

    def close(self) -> None:
        self.rpc.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def send(self, to: str | None, data: str, sender: str | None = None) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": sender or self.me, "data": data, "gas": hex(15_000_000)}
        if to is not None:
            tx["to"] = to
        tx_hash = self.rpc.request("eth_sendTransaction", [tx])
        receipt: dict[str, Any] | None = None
        deadline = time.monotonic() + 10
        while receipt is None and time.monotonic() < deadline:  # automine answers in ~ms
            receipt = self.rpc.request("eth_getTransactionReceipt", [tx_hash])
            if receipt is None:
                time.sleep(0.002)
        if receipt is None:
            raise RuntimeError(f"no receipt for {tx_hash}")
        if int(receipt["status"], 16) != 1:
            raise RuntimeError(f"transaction reverted: {receipt}")
        return receipt

    def deploy(self, name: str, types: list[str] | None = None, args: tuple[Any, ...] = ()) -> str:
        data = artifact(name)["bytecode"] + (encode(types, args).hex() if types else "")
        return to_checksum_address(self.send(None, data)["contractAddress"])

    def transact(
        self, to: str, signature: str, *args: Any, sender: str | None = None
    ) -> dict[str, Any]:
        return self.send(to, encode_call(signature, args), sender)

    def call(self, to: str, signature: str, args: tuple[Any, ...], returns: tuple[str, ...]) -> Any:
        return self.rpc.call_many([Call(to, signature, args, returns)], sender=self.me)[0]

    def balance(self, token: str, owner: str) -> int:
        return int(self.call(token, "balanceOf(address)", (owner,), ("uint256",))[0])


class Uniswap:
    """Two tokens, a v2 pair and v3 pools of them, positions, and the v3 SwapRouter."""

    def __init__(self, chain: Chain, supply: int = 10**36) -> None:
        self.chain = chain
        a = chain.deploy("ERC20", ["uint256"], (supply,))
        b = chain.deploy("ERC20", ["uint256"], (supply,))
        self.token0, self.token1 = sorted([a, b], key=lambda t: int(t, 16))
        self.v2_factory = chain.deploy("UniswapV2Factory", ["address"], (chain.me,))
        self.v3_factory = chain.deploy("UniswapV3Factory")
        self.npm = chain.deploy(
            "NonfungiblePositionManager",
            ["address", "address", "address"],
            (self.v3_factory, self.token0, chain.me),
        )
        self.router = chain.deploy(
            "SwapRouter", ["address", "address"], (self.v3_factory, self.token0)
        )
        for token in (self.token0, self.token1):
            for spender in (self.npm, self.router):
                chain.transact(token, "approve(address,uint256)", spender, MAX_UINT)

    def v2_router(self) -> str:
        """UniswapV2Router02 on this factory (its pairFor hashes the npm pair bytecode, the
        mainnet init code), approved by the dev account for both tokens."""
        router = self.chain.deploy(
            "UniswapV2Router02", ["address", "address"], (self.v2_factory, self.token0)
        )
        for token in (self.token0, self.token1):
            self.chain.transact(token, "approve(address,uint256)", router, MAX_UINT)
        return router

    def v2_pair(self, reserve0: int, reserve1: int) -> str:
        c = self.chain
        c.transact(self.v2_factory, "createPair(address,address)", self.token0, self.token1)
        pair = c.call(
            self.v2_factory, "getPair(address,address)", (self.token0, self.token1), ("address",)
        )[0]
        pair = to_checksum_address(pair)
        c.transact(self.token0, "transfer(address,uint256)", pair, reserve0)
        c.transact(self.token1, "transfer(address,uint256)", pair, reserve1)
        c.transact(pair, "mint(address)", c.me)
        return pair

    def v3_pool(self, fee: int, sqrt_price_x96: int) -> str:
        c = self.chain
        c.transact(
            self.v3_factory, "createPool(address,address,uint24)", self.token0, self.token1, fee
        )
        pool = c.call(
            self.v3_factory,
            "getPool(address,address,uint24)",
            (self.token0, self.token1, fee),
            ("address",),
        )[0]
        pool = to_checksum_address(pool)
        c.transact(pool, "initialize(uint160)", sqrt_price_x96)
        return pool

    def add_position(
        self, fee: int, tick_lower: int, tick_upper: int, amount0: int, amount1: int
    ) -> None:
        self.chain.transact(
            self.npm,
            "mint((address,address,uint24,int24,int24,uint256,uint256,uint256,uint256,address,uint256))",
            (
                self.token0,
                self.token1,
                fee,
                tick_lower,
                tick_upper,
                amount0,
                amount1,
                0,
                0,
                self.chain.me,
                2**40,
            ),
        )

    def exact_input_params(
        self, zero_for_one: bool, fee: int, amount_in: int, recipient: str
    ) -> tuple[Any, ...]:
        t_in, t_out = (self.token0, self.token1) if zero_for_one else (self.token1, self.token0)
        return ((t_in, t_out, fee, recipient, 2**40, amount_in, 0, 0),)

    EXACT_IN = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
    EXACT_OUT = (
        "exactOutputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"
    )
