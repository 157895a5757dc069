"""A small Ethereum JSON-RPC client over httpx: batched `eth_call`s with eth-abi codecs.

One `call_many` is one HTTP round trip whatever the number of calls (a JSON-RPC batch), so a
refresh of several pools costs one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from liquidroute.errors import VenueUnavailableError


@dataclass(frozen=True, slots=True)
class Call:
    """`to.signature(*args)` decoded as `returns` (ABI type strings)."""

    to: str
    signature: str
    args: tuple[Any, ...] = ()
    returns: tuple[str, ...] = ()

    def data(self) -> str:
        return encode_call(self.signature, self.args)

    def decode(self, result: str) -> tuple[Any, ...]:
        from eth_abi.abi import decode

        return tuple(decode(list(self.returns), bytes.fromhex(result.removeprefix("0x"))))


def arg_types(signature: str) -> list[str]:
    """The ABI argument types of `name(t1,(t2,t3),...)`, tuples kept whole."""
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    out, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
            continue
        depth += (ch == "(") - (ch == ")")
        current += ch
    return [*out, current] if current else out


def encode_call(signature: str, args: Sequence[Any]) -> str:
    """Calldata: the 4-byte selector of `signature` and its ABI-encoded arguments."""
    from eth_abi.abi import encode
    from eth_utils.abi import function_signature_to_4byte_selector

    selector = function_signature_to_4byte_selector(signature)
    return "0x" + (selector + encode(arg_types(signature), tuple(args))).hex()


def node_label(url: str) -> str:
    """The node as errors name it: scheme://host[:port] only. Hosted nodes put the API key
    in the path or the query (https://mainnet.infura.io/v3/KEY), so neither is shown."""
    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}" if parts.host else "the JSON-RPC node"


class JsonRpc:
    """JSON-RPC over HTTP (httpx). Errors become `VenueUnavailableError` naming the node
    by `label` (scheme, host and port: never the URL's path or query, where keys live)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        try:
            self.label = node_label(url)
        except httpx.InvalidURL:
            from liquidroute.errors import InvalidInputError

            raise InvalidInputError("--rpc: not a valid http(s) URL") from None
        self._client = httpx.Client(timeout=timeout_s)
        self._id = 0
        self.round_trips = 0

    def close(self) -> None:
        self._client.close()

    def batch(self, requests: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Send [(method, params), ...] as one JSON-RPC batch; results in order."""
        if not requests:
            return []
        payload = []
        for method, params in requests:
            self._id += 1
            payload.append({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        first = self._id - len(requests) + 1
        try:
            response = self._client.post(self.url, json=payload)
            response.raise_for_status()
            answers = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise VenueUnavailableError(
                f"rpc {self.label}", f"JSON-RPC node unreachable ({type(exc).__name__})"
            ) from exc
        self.round_trips += 1
        if isinstance(answers, dict):  # some nodes answer a failed batch with one error object
            answers = [answers]
        by_id = {a.get("id"): a for a in answers}
        out = []
        for i, (method, _) in enumerate(requests):
            answer = by_id.get(first + i)
            if answer is None or "error" in answer:
                error = (answer or {}).get("error", {"message": "no answer"})
                raise RpcError(self.label, method, error)
            out.append(answer["result"])
        return out

    def request(self, method: str, params: list[Any]) -> Any:
        return self.batch([(method, params)])[0]

    def call_many(
        self, calls: Sequence[Call], block: str = "latest", sender: str | None = None
    ) -> list[tuple[Any, ...]]:
        """eth_call each `Call` at `block` (as `sender`, when given) in one round trip."""
        extra = {"from": sender} if sender else {}
        results = self.batch(
            [("eth_call", [{"to": c.to, "data": c.data(), **extra}, block]) for c in calls]
        )
        return [c.decode(r) for c, r in zip(calls, results, strict=True)]


class RpcError(VenueUnavailableError):
    """The node answered a request with an error (a revert, an unknown method)."""

    def __init__(self, node: str, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.error = error
        message = str(error.get("message", error))[:200]
        super().__init__(f"rpc {node}", f"JSON-RPC {method} failed: {message}")
