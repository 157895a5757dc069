"""The JSON-RPC client never shows a hosted node's key: errors name scheme://host:port only."""

from __future__ import annotations

import json

import httpx
import pytest

from liquidroute.errors import InvalidInputError, VenueUnavailableError
from liquidroute.venues.pools.rpc import JsonRpc, RpcError

URL = "http://127.0.0.1:9/v3/SECRETPATHKEY?apikey=SECRETQUERY"


def test_an_unreachable_node_is_named_without_its_key() -> None:
    rpc = JsonRpc(URL, timeout_s=0.5)
    with pytest.raises(VenueUnavailableError) as caught:
        rpc.request("eth_chainId", [])
    text = str(caught.value)
    assert "rpc http://127.0.0.1:9" in text and "unreachable" in text
    assert "SECRET" not in text


def test_a_node_error_is_named_without_its_key() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        (call,) = json.loads(request.content)
        error = {"code": -32000, "message": "execution reverted"}
        return httpx.Response(200, json=[{"jsonrpc": "2.0", "id": call["id"], "error": error}])

    rpc = JsonRpc(URL)
    rpc._client = httpx.Client(transport=httpx.MockTransport(answer))
    with pytest.raises(RpcError) as caught:
        rpc.request("eth_call", [{}, "latest"])
    text = str(caught.value)
    assert "eth_call failed: execution reverted" in text and "SECRET" not in text


def test_a_bad_url_is_one_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="--rpc: not a valid http"):
        JsonRpc("http://[::1")
