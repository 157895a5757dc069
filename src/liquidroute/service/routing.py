"""RouteResult answers in the shape ccxt's `OrderRouter` client reads, from cached books.

A route is a chain of hops (the client requires hop i to spend what hop i-1 produced),
each hop one market split across venues. For every chain of assets from `from` to `to`
(at most 3 hops, via the allowed bridges) the venues' books on every hop are optimised
JOINTLY in one LP (`optimizer.graph.solve_flow`: the output of hop 1 is exactly the input
of hop 2, split across venues on both); the best chain wins. Strategies:

- split_optimal: every venue on every hop (the provable optimum for that chain);
- split_capped:  at most `maxVenues` venues per hop (best subset, exhaustively);
- best_single:   one venue per hop (best combination).

`savingVsBestSingleBps` compares the answer with best_single. Balances
("[exchangeId.]ASSET:amount,...") cap what a venue may spend of the source asset
(balanceMode=cap) or must cover the whole input (balanceMode=require). An unroutable
request is a RouteResult with `unroutableReason`, never an exception.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from liquidroute.errors import InvalidInputError
from liquidroute.model import DepthSnapshot, Market, split_symbol
from liquidroute.optimizer.curves import build_ladder
from liquidroute.optimizer.exact import solve_exact
from liquidroute.optimizer.graph import Edge, FlowSolution, solve_flow
from liquidroute.router.graph_route import book_edges

STRATEGIES = ("split_optimal", "split_capped", "best_single")
MAX_HOPS = 3


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """The client's parameters, validated (names as on the wire)."""

    source: str
    target: str
    amount_in: float | None = None
    amount_out: float | None = None
    strategy: str = "split_optimal"
    max_venues: int | None = None
    exchanges: tuple[str, ...] = ()
    bridges: tuple[str, ...] | None = None
    balances: tuple[tuple[str, str, float], ...] | None = None  # (exchange or "", asset, amount)
    balance_mode: str = "cap"
    include_quotes: bool = False
    include_fees: bool = True
    require_full_fill: bool = False
    hop_penalty_bps: float = 0.0
    min_leg_notional: float = 0.0
    request_id: str = ""
    warnings: tuple[str, ...] = field(default=())


def _number(name: str, text: Any, *, integer: bool = False) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (integer and value != int(value)):
        raise InvalidInputError(f"{name} must be a finite non-negative number, got {text!r}")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise InvalidInputError(f"{name} must be true or false, got {value!r}")


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def parse_balances(text: str) -> tuple[tuple[str, str, float], ...]:
    """'binance.USDT:1000,ETH:2' -> ((binance, USDT, 1000), ('', ETH, 2))."""
    out = []
    for entry in _list(text):
        holder, _, amount = entry.rpartition(":")
        exchange, _, asset = holder.rpartition(".")
        if not asset:
            raise InvalidInputError(
                f"balances entry {entry!r} must be [exchangeId.]ASSET:amount, e.g. binance.USDT:100"
            )
        out.append((exchange.lower(), asset.upper(), _number("balances amount", amount)))
    if len(out) > 64:
        raise InvalidInputError("balances: at most 64 entries")
    return tuple(out)


def parse_request(params: Mapping[str, Any], request_id: str = "") -> RouteRequest:
    """Validate the wire parameters (query or JSON body)."""
    known = {
        "from",
        "to",
        "amountIn",
        "amountOut",
        "strategy",
        "maxVenues",
        "bridges",
        "exchanges",
        "balances",
        "balanceMode",
        "includeQuotes",
        "includeFees",
        "certified",
        "requireFullFill",
        "hopPenaltyBps",
        "minLegNotional",
        "requestId",
    }
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidInputError(f"unknown parameter(s) {unknown}; known: {sorted(known)}")
    source, target = str(params.get("from") or "").upper(), str(params.get("to") or "").upper()
    if not source or not target:
        raise InvalidInputError("from and to are required (assets, e.g. from=USDT&to=BTC)")
    has_in, has_out = params.get("amountIn") is not None, params.get("amountOut") is not None
    if has_in == has_out:
        raise InvalidInputError("give exactly one of amountIn or amountOut")
    amount = _number(
        "amountIn" if has_in else "amountOut", params["amountIn"] if has_in else params["amountOut"]
    )
    if not 0 < amount < 1e15:
        raise InvalidInputError("the amount must be positive and below 1e15")
    strategy = str(params.get("strategy") or "split_optimal")
    if strategy not in STRATEGIES:
        raise InvalidInputError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    max_venues = None
    if params.get("maxVenues") is not None:
        max_venues = int(_number("maxVenues", params["maxVenues"], integer=True))
        if max_venues < 1:
            raise InvalidInputError("maxVenues must be at least 1")
    mode = str(params.get("balanceMode") or "cap")
    if mode not in ("cap", "require"):
        raise InvalidInputError(f"balanceMode must be cap or require, got {mode!r}")
    warnings = []
    if _bool("includeQuotes", params.get("includeQuotes", False)):
        warnings.append("includeQuotes: per-venue diagnostics are not provided; see /orderbook")
    if _bool("certified", params.get("certified", False)):
        warnings.append("certified: liquidroute does not rate venues; all configured venues used")
    return RouteRequest(
        source=source,
        target=target,
        amount_in=amount if has_in else None,
        amount_out=None if has_in else amount,
        strategy=strategy,
        max_venues=max_venues,
        exchanges=tuple(e.lower() for e in _list(params.get("exchanges") or "")),
        bridges=None
        if params.get("bridges") is None
        else tuple(b.upper() for b in _list(params["bridges"])),
        balances=None
        if params.get("balances") is None
        else parse_balances(str(params["balances"])),
        balance_mode=mode,
        include_quotes=_bool("includeQuotes", params.get("includeQuotes", False)),
        include_fees=_bool("includeFees", params.get("includeFees", True)),
        require_full_fill=_bool("requireFullFill", params.get("requireFullFill", False)),
        hop_penalty_bps=_number("hopPenaltyBps", params.get("hopPenaltyBps", 0)),
        min_leg_notional=_number("minLegNotional", params.get("minLegNotional", 0)),
        request_id=str(params.get("requestId") or request_id)[:200],
        warnings=tuple(warnings),
    )


def asset_chains(
    edges: Sequence[Edge], source: str, target: str, bridges: Sequence[str] | None
) -> list[list[str]]:
    """Asset sequences source -> ... -> target of at most MAX_HOPS hops."""
    links = {(e.src, e.dst) for e in edges}
    allowed = None if bridges is None else set(bridges)
    chains: list[list[str]] = []

    def walk(chain: list[str]) -> None:
        last = chain[-1]
        if last == target:
            chains.append(chain)
            return
        if len(chain) > MAX_HOPS:
            return
        for a, b in sorted(links):
            if a == last and b not in chain and (b == target or allowed is None or b in allowed):
                walk([*chain, b])

    walk([source])
    return chains


def _merge(hop: Sequence[Edge], req: RouteRequest) -> tuple[FlowSolution, bool]:
    """One hop, no caps: the exact merge (no solver), as a FlowSolution."""
    side = hop[0].side
    ladder = build_ladder(
        [np.column_stack([e.price, e.size]) for e in hop],
        [e.fee for e in hop],
        side,  # type: ignore[arg-type]
    )
    if req.amount_in is not None:  # buy: spend quote; sell: sell base
        amount, unit = req.amount_in, ("quote" if side == "buy" else "base")
    else:  # buy: receive base; sell: receive quote
        amount, unit = float(req.amount_out or 0.0), ("base" if side == "buy" else "quote")
    alloc = solve_exact(ladder, amount, unit)  # type: ignore[arg-type]
    x = {}
    for v, e in enumerate(hop):
        cum = np.minimum(np.cumsum(e.size), alloc.amount[v])
        x[e.key] = np.diff(cum, prepend=0.0)
    spent = sum(float(e.in_rate @ x[e.key]) for e in hop)
    got = sum(float(e.out_rate @ x[e.key]) for e in hop)
    asked, achieved = (req.amount_in, spent) if req.amount_in is not None else (req.amount_out, got)
    full = achieved >= float(asked or 0.0) * (1 - 1e-12)
    n = sum(len(e.price) for e in hop)
    return FlowSolution(x, spent, got, "exact merge", n, 0, list(hop)), full


def _solve(
    hops: Sequence[Sequence[Edge]], req: RouteRequest, caps: Mapping[tuple[str, str, str], float]
) -> tuple[FlowSolution | None, bool]:
    """The joint LP over one chain (the exact merge for one uncapped hop); (solution, full)."""
    if len(hops) == 1 and not caps:
        return _merge(hops[0], req)
    paths = [list(combo) for combo in itertools.product(*hops)]
    kwargs: dict[str, Any] = {
        "amount_in": req.amount_in,
        "amount_out": req.amount_out,
        "in_caps": caps,
    }
    full = solve_flow(paths, req.source, req.target, **kwargs)
    if full is not None:
        return full, True
    partial = solve_flow(paths, req.source, req.target, at_most=True, **kwargs)
    if partial is not None and req.amount_out is not None and partial.amount_out > 0:
        exact = solve_flow(
            paths, req.source, req.target, amount_out=partial.amount_out * (1 - 1e-9), in_caps=caps
        )
        partial = exact or partial
    return partial, False


def _better(a: FlowSolution, b: FlowSolution | None, req: RouteRequest) -> bool:
    if b is None:
        return True
    if req.amount_in is not None:
        return a.amount_out > b.amount_out * (1 + 1e-12)
    if abs(a.amount_out - b.amount_out) > 1e-9 * max(b.amount_out, 1e-12):
        return a.amount_out > b.amount_out
    return a.amount_in < b.amount_in * (1 - 1e-12)


def _finite(value: Any) -> Any:
    """Every non-finite float (an overflow on an absurd amount) as 0, ccxt's 'unknown'."""
    if isinstance(value, float):
        return value if math.isfinite(value) else 0.0
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class RouteService:
    """Routes over a set of cached books. `snapshots()` is read on every request."""

    def __init__(self, books: Any, markets: Any) -> None:
        self._books = books  # callable -> list[DepthSnapshot]
        self._markets = markets  # callable -> list[Market]

    def route(self, req: RouteRequest) -> dict[str, Any]:
        """The RouteResult for `req`: JSON-safe, no nulls, non-finite numbers as 0."""
        result: dict[str, Any] = _finite(self._route(req))
        return result

    def _route(self, req: RouteRequest) -> dict[str, Any]:
        started = time.time()
        snaps: list[DepthSnapshot] = [
            s for s in self._books() if not req.exchanges or s.venue in req.exchanges
        ]
        markets: list[Market] = list(self._markets())
        if not req.include_fees:
            markets = [Market(m.venue, m.symbol, 0.0) for m in markets]
        edges = book_edges(
            snaps,
            [m for m in markets if any(s.venue == m.venue and s.symbol == m.symbol for s in snaps)],
        )
        base = self._result_base(req, started)
        assets = {e.src for e in edges} | {e.dst for e in edges}
        for name, asset in (("from", req.source), ("to", req.target)):
            if asset not in assets:
                return base | {"unroutableReason": f"unknown_asset: no book holds {name}={asset}"}
        if req.source == req.target:
            return base | {"unroutableReason": "same_asset: from and to are the same"}
        caps, balance_note = self._caps(req, edges)
        if balance_note:
            return base | {"unroutableReason": balance_note}
        chains = asset_chains(edges, req.source, req.target, req.bridges)
        best: tuple[FlowSolution, bool, list[str]] | None = None
        single: FlowSolution | None = None
        direct: FlowSolution | None = None
        for chain in chains:
            hops = [
                [e for e in edges if (e.src, e.dst) == (a, b)] for a, b in itertools.pairwise(chain)
            ]
            for sol, full in self._candidates(hops, req, caps):
                if (
                    best is None
                    or (full and not best[1])
                    or (full == best[1] and _better(sol, best[0], req))
                ):
                    best = (sol, full, chain)
                if len(chain) == 2 and full:
                    direct = sol
            for sol, full in self._combos(hops, req, caps, 1):
                if full and _better(sol, single, req):
                    single = sol
        if best is None:
            return base | {
                "unroutableReason": f"no_path: no route from {req.source} to "
                f"{req.target} within {MAX_HOPS} hops",
                "pathsConsidered": len(chains),
            }
        sol, full, chain = best
        warnings = list(req.warnings)
        if (
            direct is not None
            and len(chain) > 2
            and req.hop_penalty_bps > 0
            and not self._beats(sol, direct, req, len(chain) - 2)
        ):
            sol, full, chain = direct, True, [req.source, req.target]
            warnings.append("multi-hop gain below hopPenaltyBps: direct route used")
        if not full and req.require_full_fill:
            return base | {
                "unroutableReason": "insufficient_liquidity: the books cannot fill "
                "the whole amount and requireFullFill is set",
                "unroutableHopIndex": 0,
                "pathsConsidered": len(chains),
            }
        return base | self._render(sol, full, chain, req, caps, single, warnings, len(chains))

    def _beats(
        self, sol: FlowSolution, direct: FlowSolution, req: RouteRequest, extra: int
    ) -> bool:
        need = 1 + req.hop_penalty_bps / 1e4 * extra
        if req.amount_in is not None:
            return sol.amount_out >= direct.amount_out * need
        return sol.amount_in * need <= direct.amount_in

    def _candidates(
        self, hops: list[list[Edge]], req: RouteRequest, caps: Mapping[tuple[str, str, str], float]
    ) -> list[tuple[FlowSolution, bool]]:
        if req.strategy == "split_optimal":
            sol, full = _solve(hops, req, caps)
            out = [] if sol is None else [(sol, full)]
        else:
            limit = 1 if req.strategy == "best_single" else (req.max_venues or 1)
            out = self._combos(hops, req, caps, limit)
        if req.min_leg_notional > 0:
            out = [self._drop_small(s, f, hops, req, caps) for s, f in out]
        return out

    def _combos(
        self,
        hops: list[list[Edge]],
        req: RouteRequest,
        caps: Mapping[tuple[str, str, str], float],
        k: int,
    ) -> list[tuple[FlowSolution, bool]]:
        choices = [
            [list(c) for r in range(1, min(k, len(h)) + 1) for c in itertools.combinations(h, r)]
            for h in hops
        ]
        results = []
        for combo in itertools.product(*choices):
            sol, full = _solve(list(combo), req, caps)
            if sol is not None:
                results.append((sol, full))
        best: list[tuple[FlowSolution, bool]] = []
        for sol, full in results:
            if (
                not best
                or (full and not best[0][1])
                or (full == best[0][1] and _better(sol, best[0][0], req))
            ):
                best = [(sol, full)]
        return best

    def _drop_small(
        self,
        sol: FlowSolution,
        full: bool,
        hops: list[list[Edge]],
        req: RouteRequest,
        caps: Mapping[tuple[str, str, str], float],
    ) -> tuple[FlowSolution, bool]:
        small = {
            e.key for e in sol.edges if 0 < float(e.price @ sol.x[e.key]) < req.min_leg_notional
        }
        if not small:
            return sol, full
        kept = [[e for e in hop if e.key not in small] or hop for hop in hops]
        again, again_full = _solve(kept, req, caps)
        return (again, again_full) if again is not None else (sol, full)

    def _caps(
        self, req: RouteRequest, edges: Sequence[Edge]
    ) -> tuple[dict[tuple[str, str, str], float], str]:
        if req.balances is None:
            return {}, ""
        caps: dict[tuple[str, str, str], float] = {}
        first = [e for e in edges if e.src == req.source]
        for exchange, asset, amount in req.balances:
            if asset != req.source:
                continue
            for e in first:
                if not exchange or e.venue == exchange:
                    caps[e.key] = min(caps.get(e.key, math.inf), amount)
        if req.balance_mode == "require" and req.amount_in is not None:
            held = sum(a for ex, asset, a in req.balances if asset == req.source)
            if held < req.amount_in:
                return caps, (
                    f"insufficient_balance: {held:g} {req.source} held, "
                    f"{req.amount_in:g} needed (balanceMode=require)"
                )
        return caps, ""

    def _result_base(self, req: RouteRequest, started: float) -> dict[str, Any]:
        base: dict[str, Any] = {
            "requestId": req.request_id,
            "calculatedAt": int(started * 1000),
            "from": req.source,
            "to": req.target,
            "strategy": req.strategy,
            "exactSide": "in" if req.amount_in is not None else "out",
            "amountIn": req.amount_in or 0.0,
            "amountOut": req.amount_out or 0.0,
            "fullyFillable": False,
            "fillRatio": 0.0,
            "unfilledAmount": req.amount_in or req.amount_out or 0.0,
            "unroutableReason": "",
            "unroutableHopIndex": -1,
            "hops": [],
            "path": [],
            "warnings": list(req.warnings),
            "pathsConsidered": 0,
            "savingVsBestSingleBps": 0.0,
            "solver": "liquidroute joint LP (cvxpy/HiGHS)",
        }
        if req.balances is not None:
            base["balancesApplied"] = ",".join(
                f"{ex + '.' if ex else ''}{a}:{v:g}" for ex, a, v in req.balances
            )
            base["balanceEntryCount"] = len(req.balances)
            base["balanceMode"] = req.balance_mode
        return base

    def _render(
        self,
        sol: FlowSolution,
        full: bool,
        chain: list[str],
        req: RouteRequest,
        caps: Mapping[tuple[str, str, str], float],
        single: FlowSolution | None,
        warnings: list[str],
        considered: int,
    ) -> dict[str, Any]:
        hops = []
        for a, b in itertools.pairwise(chain):
            legs: list[dict[str, Any]] = []
            for e in sol.edges:
                x = sol.x[e.key]
                amount = float(x.sum())
                if (e.src, e.dst) != (a, b) or amount <= 1e-15:
                    continue
                notional = float(e.price @ x)
                spent = float(e.in_rate @ x)
                got = float(e.out_rate @ x)
                legs.append(
                    {
                        "exchangeId": e.venue,
                        "symbol": e.symbol,
                        "amount": amount,
                        "averagePrice": notional / amount,
                        "takerFeeRate": e.fee,
                        "feeCost": notional * e.fee,
                        "effectivePrice": (spent / amount) if e.side == "buy" else (got / amount),
                        "amountIn": spent,
                        "amountOut": got,
                        "balanceLimited": e.key in caps and spent >= caps[e.key] * (1 - 1e-9),
                    }
                )
            sample = next(e for e in sol.edges if (e.src, e.dst) == (a, b))
            base_ccy, quote_ccy = split_symbol(sample.symbol)
            hops.append(
                {
                    "pair": sample.symbol,
                    "side": sample.side,
                    "base": base_ccy,
                    "quote": quote_ccy,
                    "from": a,
                    "to": b,
                    "amountIn": sum(leg["amountIn"] for leg in legs),
                    "amountOut": sum(leg["amountOut"] for leg in legs),
                    "legs": legs,
                }
            )
        asked = req.amount_in if req.amount_in is not None else req.amount_out
        achieved = sol.amount_in if req.amount_in is not None else sol.amount_out
        assert asked is not None
        saving = 0.0
        if single is not None:
            if req.amount_in is not None and single.amount_out > 0:
                saving = (sol.amount_out / single.amount_out - 1) * 1e4
            elif req.amount_out is not None and sol.amount_in > 0:
                saving = (single.amount_in / sol.amount_in - 1) * 1e4
        result: dict[str, Any] = {}
        if req.include_quotes:  # each hop's whole input on each venue alone
            result["quotes"] = [
                {
                    "hop": i,
                    "exchangeId": e.venue,
                    "pair": e.symbol,
                    "amountIn": hop["amountIn"],
                    "amountOut": _merge(
                        [e],
                        replace(
                            req,
                            source=e.src,
                            target=e.dst,
                            amount_in=hop["amountIn"],
                            amount_out=None,
                        ),
                    )[0].amount_out,
                }
                for i, (hop, (a, b)) in enumerate(zip(hops, itertools.pairwise(chain), strict=True))
                for e in sol.edges
                if (e.src, e.dst) == (a, b) and hop["amountIn"] > 0
            ]
        return result | {
            "amountIn": sol.amount_in,
            "amountOut": sol.amount_out,
            "fullyFillable": full,
            "fillRatio": min(achieved / asked, 1.0) if full else achieved / asked,
            "unfilledAmount": 0.0 if full else max(asked - achieved, 0.0),
            "hops": hops,
            "path": chain,
            "pathsConsidered": considered,
            "savingVsBestSingleBps": saving,
            "warnings": warnings,
            "lpVariables": sol.variables,
        }
