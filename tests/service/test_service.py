"""The routing service on 127.0.0.1, driven by ccxt's own OrderRouter client."""

from __future__ import annotations

import threading
import time

import pytest
import uvicorn
from ccxt.base.errors import BadRequest
from ccxt.base.order_router import OrderRouter

from liquidroute import route, route_graph
from liquidroute.service.app import BookCache, create_app
from liquidroute.venues.sample_graph import sample_graph_markets, sample_graph_snapshots


@pytest.fixture(scope="module")
def server():
    cache = BookCache(live=False)
    for snap, market in zip(sample_graph_snapshots(), sample_graph_markets(), strict=True):
        cache.put(snap, market)
    config = uvicorn.Config(create_app(cache), host="127.0.0.1", port=0, log_level="error")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


@pytest.fixture
def client(server):
    return OrderRouter({"baseUrl": server, "timeoutMs": 20000})


def test_direct_route_equals_in_process_router(client):
    result = client.fetch_route("USDT", "BTC", {"amountIn": 200_000, "bridges": []})
    snaps = [s for s in sample_graph_snapshots() if s.symbol == "BTC/USDT"]
    markets = {m.venue: m for m in sample_graph_markets() if m.symbol == "BTC/USDT"}
    q = route(snaps, "buy", 200_000, amount_in="quote", markets=markets, rules=False)
    assert result["amountOut"] == pytest.approx(q.filled, rel=1e-8)
    assert result["fullyFillable"] is True and result["unroutableReason"] == ""
    legs = result["hops"][0]["legs"]
    assert {leg["exchangeId"] for leg in legs} == {leg.venue for leg in q.legs}
    assert result["savingVsBestSingleBps"] >= 0


def test_multi_hop_chain_is_jointly_optimal(client):
    result = client.fetch_route("USDC", "ETH", {"amountIn": 150_000, "bridges": "USDT,BTC"})
    assert result["path"][0] == "USDC" and result["path"][-1] == "ETH"
    # never worse than the library's direct-only answer for the same request
    lib = route_graph(
        sample_graph_snapshots(),
        "USDC",
        "ETH",
        markets=sample_graph_markets(),
        amount_in=150_000,
        max_hops=1,
    )
    assert result["amountOut"] >= lib.amount_out * (1 - 1e-9)


def test_plan_and_safety_check_from_the_client(client):
    route_ = client.fetch_route("USDT", "ETH", {"amountIn": 50_000})
    plan = client.build_execution_plan(route_)
    assert plan["stepCount"] >= 1
    markets = {}
    for step in plan["steps"]:
        markets.setdefault(step["exchangeId"], {})[step["symbol"]] = {
            "symbol": step["symbol"],
            "base": step["base"],
            "quote": step["quote"],
            "limits": {"amount": {"min": 1e-8}, "cost": {"min": 1}},
            "precision": {},
        }
    violations = client.check_execution_plan_safety(plan, markets)
    assert [v for v in violations if v["blocking"]] == []
    report = client.execute(plan, {}, {"dryRun": True, "idempotencyKey": "t1"})
    assert report is not None


def test_post_with_balances_is_echoed_and_caps(client):
    result = client.fetch_route(
        "USDT",
        "BTC",
        {
            "amountIn": 300_000,
            "bridges": [],
            "balances": {
                "bybit": {"USDT": 50_000},
                "binance": {"USDT": 400_000},
                "okx": {"USDT": 400_000},
            },
        },
    )
    assert result["balanceEntryCount"] == 3 and "bybit.USDT:50000" in result["balancesApplied"]
    bybit = [leg for leg in result["hops"][0]["legs"] if leg["exchangeId"] == "bybit"]
    assert not bybit or bybit[0]["amountIn"] <= 50_000 * (1 + 1e-9)
    required = client.fetch_route(
        "USDT", "BTC", {"amountIn": 300_000, "balances": {"USDT": 10}, "balanceMode": "require"}
    )
    assert required["unroutableReason"].startswith("insufficient_balance")


def test_strategies_and_unroutable(client):
    single = client.fetch_route(
        "USDT", "BTC", {"amountIn": 300_000, "strategy": "best_single", "bridges": []}
    )
    split = client.fetch_route("USDT", "BTC", {"amountIn": 300_000, "bridges": []})
    assert len(single["hops"][0]["legs"]) == 1
    assert split["amountOut"] >= single["amountOut"] * (1 - 1e-12)
    capped = client.fetch_route(
        "USDT",
        "BTC",
        {"amountIn": 300_000, "strategy": "split_capped", "maxVenues": 2, "bridges": []},
    )
    assert len(capped["hops"][0]["legs"]) <= 2
    unknown = client.fetch_route("USDT", "DOGE", {"amountIn": 10})
    assert unknown["unroutableReason"].startswith("unknown_asset")
    huge = client.fetch_route("USDT", "BTC", {"amountIn": 1e12, "requireFullFill": True})
    assert huge["unroutableReason"].startswith("insufficient_liquidity")
    partial = client.fetch_route("USDT", "BTC", {"amountIn": 1e12, "bridges": []})
    assert partial["fullyFillable"] is False and 0 < partial["fillRatio"] < 1


def test_bad_requests_are_4xx_bad_request(client):
    with pytest.raises(BadRequest, match="strategy"):
        client.fetch_route("USDT", "BTC", {"amountIn": 1, "strategy": "yolo"})
    with pytest.raises(BadRequest, match="amountIn"):
        client.fetch_route("USDT", "BTC", {"amountIn": "ten"})
    with pytest.raises(BadRequest, match="balances"):
        client.fetch_route("USDT", "BTC", {"amountIn": 1, "balances": "garbage"})


def test_health_ready_version_symbols_status_orderbook(client):
    assert client.fetch_health()["status"] == "ok"
    ready = client.fetch_readiness()
    assert ready["status"] == "ready" and ready["freshCount"] == ready["bookCount"] > 0
    assert "version" in client.fetch_version()
    assert "ETH/BTC" in client.fetch_symbols()
    status = client.fetch_exchanges_status()
    assert {s["exchangeId"] for s in status} == {"binance", "okx", "bybit"}
    book = client.fetch_cached_order_book("binance", "BTC/USDT")
    snap = next(
        s for s in sample_graph_snapshots() if s.venue == "binance" and s.symbol == "BTC/USDT"
    )
    assert book["bids"][0] == snap.bids[0].tolist() and len(book["asks"]) == len(snap.asks)


def test_include_quotes_gives_each_venue_alone(client):
    result = client.fetch_route(
        "USDT", "BTC", {"amountIn": 200_000, "bridges": [], "includeQuotes": True}
    )
    quotes = result["quotes"]
    assert {q["exchangeId"] for q in quotes} == {"binance", "okx", "bybit"}  # all books
    for q in quotes:  # the split beats every venue alone
        assert result["amountOut"] >= q["amountOut"] * (1 - 1e-12)


def test_post_balances_as_a_json_object_and_as_ccxt_text(server):
    import httpx

    body = {"from": "USDT", "to": "BTC", "amountIn": 300_000, "bridges": []}
    wallet = {"bybit": {"USDT": 50_000}, "binance": {"USDT": 400_000}}
    as_object = httpx.post(server + "/route", json=body | {"balances": wallet}).json()
    text = "binance.USDT:400000,bybit.USDT:50000"
    as_text = httpx.post(server + "/route", json=body | {"balances": text}).json()
    as_get = httpx.get(server + "/route", params=body | {"balances": text, "bridges": ""}).json()
    assert as_object["balanceEntryCount"] == as_text["balanceEntryCount"] == 2
    assert as_object["hops"] == as_text["hops"] == as_get["hops"]
    flat = httpx.post(server + "/route", json=body | {"balances": {"USDT": 10}}).json()
    assert flat["amountIn"] <= 3 * 10 * (1 + 1e-9)  # 10 USDT held on each of 3 venues


def test_docs_are_served_offline_and_the_schema_documents_every_status(server):
    import re

    import httpx

    page = httpx.get(server + "/docs").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/docs-assets/") for a in assets)  # no CDN
    for asset in assets:
        assert httpx.get(server + asset).status_code == 200
    schema = httpx.get(server + "/openapi.json").json()
    for method in ("get", "post"):
        statuses = set(schema["paths"]["/route"][method]["responses"])
        assert statuses == {"200", "400", "500", "503", "504"}
    assert set(schema["paths"]["/ready"]["get"]["responses"]) == {"200", "503"}
    assert "404" in schema["paths"]["/orderbook/{exchange_id}/{symbol}"]["get"]["responses"]
    body = schema["components"]["schemas"]["RouteBody"]["properties"]["balances"]
    assert {"string", "array", "object"} <= {alt.get("type") for alt in body["anyOf"]}
