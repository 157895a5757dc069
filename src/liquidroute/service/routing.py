"""Parse a /route request and render `route()` / `route_graph()` as ccxt's RouteResult.

The service solves nothing itself. A request becomes one of two library calls:

- **one hop** (a market joins `from` and `to` directly, and either `bridges` is empty or the
  joint multi-hop optimum uses the direct market only): `router.route.route()` on that
  market's books: the exact merge, with the venues' rules solved in when the request brings
  rules (`balances` -> per-venue caps in the source asset, `maxVenues` for split_capped,
  1 for best_single, `minLegNotional` -> each market's minimum notional);
- **multi-hop**: `router.graph_route.route_graph()`, the joint optimum over every path.

ccxt's RouteResult is ONE chain of hops (hop i spends what hop i-1 produced), while the joint
optimum may split across several asset chains (say USDT->ETH and USDT->BTC->ETH at once).
Then each chain used by the joint optimum is solved alone by `route_graph()` on that chain's
books and the best is returned, with a warning giving the joint optimum it gave up. Venue
caps per hop (split_capped, best_single) on a multi-hop chain are applied greedily: keep the
k venues carrying most flow on each hop and re-solve the chain (one-hop caps are exact,
through the MILP in route()). Balances on a multi-hop route restrict the first hop to venues
holding the source asset; if the chain then spends more than a venue holds, the direct
route (exactly capped) is answered instead, or the request is unroutable.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from liquidroute import LadderCache
from liquidroute.errors import InsufficientLiquidityError, InvalidInputError, LiquidrouteError
from liquidroute.model import DepthSnapshot, GraphQuote, Market, Quote, split_symbol
from liquidroute.router.graph_route import route_graph
from liquidroute.router.route import route
from liquidroute.service.models import STRATEGIES, RouteBody, RouteParams

MAX_HOPS = 3
MAX_BALANCE_ENTRIES = 64
Key = tuple[str, str]  # (venue, symbol)


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """The client's parameters, validated (plain data: it crosses to the worker processes)."""

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
    warnings: tuple[str, ...] = ()

    @property
    def venue_cap(self) -> int | None:
        """Venues per hop: 1 for best_single, maxVenues for split_capped, else none."""
        if self.strategy == "best_single":
            return 1
        return self.max_venues if self.strategy == "split_capped" else None


def _items(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(p.strip() for p in parts if p.strip())


def _amount(entry: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(
            f"balances entry {entry!r}: the amount must be a non-negative number, "
            "e.g. binance.USDT:100"
        )
    return value


def parse_balances(value: Any) -> tuple[tuple[str, str, float], ...]:
    """Balances in any accepted form -> ((exchange or '', ASSET, amount), ...).

    Forms: ccxt's string 'binance.USDT:1000,ETH:2' (a list of such entries too), a per-venue
    wallet {"binance": {"USDT": 1000}} or a flat wallet {"USDT": 1000} (held on every venue).
    """
    out: list[tuple[str, str, float]] = []
    if isinstance(value, Mapping):
        for outer, inner in value.items():
            if isinstance(inner, Mapping):
                out += [(str(outer).lower(), str(a).upper(), float(v)) for a, v in inner.items()]
            else:
                out.append(("", str(outer).upper(), float(inner)))
    else:
        for entry in _items(value):
            holder, _, amount = entry.rpartition(":")
            exchange, _, asset = holder.rpartition(".")
            if not asset:
                raise InvalidInputError(
                    f"balances entry {entry!r} must be [exchangeId.]ASSET:amount, "
                    "e.g. binance.USDT:100"
                )
            out.append((exchange.lower(), asset.upper(), _amount(entry, amount)))
    if len(out) > MAX_BALANCE_ENTRIES:
        raise InvalidInputError(f"balances: at most {MAX_BALANCE_ENTRIES} entries")
    return tuple(out)


def parse_request(params: RouteParams | RouteBody, request_id: str = "") -> RouteRequest:
    """The validated wire model -> a RouteRequest (cross-field rules checked here)."""
    if (params.amountIn is None) == (params.amountOut is None):
        raise InvalidInputError("give exactly one of amountIn or amountOut, e.g. amountIn=1000")
    warnings = []
    if params.strategy == "split_capped" and params.maxVenues is None:
        warnings.append("split_capped without maxVenues: no venue cap applied")
    if params.maxVenues is not None and params.strategy != "split_capped":
        warnings.append(f"maxVenues applies to strategy=split_capped; {params.strategy} used")
    if params.certified:
        warnings.append("certified: liquidroute does not rate venues; all configured venues used")
    return RouteRequest(
        source=params.from_.upper(),
        target=params.to.upper(),
        amount_in=params.amountIn,
        amount_out=params.amountOut,
        strategy=params.strategy,
        max_venues=params.maxVenues,
        exchanges=tuple(e.lower() for e in _items(params.exchanges)),
        bridges=None
        if params.bridges is None
        else tuple(b.upper() for b in _items(params.bridges)),
        balances=None if params.balances is None else parse_balances(params.balances),
        balance_mode=params.balanceMode,
        include_quotes=params.includeQuotes,
        include_fees=params.includeFees,
        require_full_fill=params.requireFullFill,
        hop_penalty_bps=params.hopPenaltyBps,
        min_leg_notional=params.minLegNotional,
        request_id=params.requestId or request_id[:200],
        warnings=tuple(warnings),
    )


PATTERN_HINTS = {
    "from": "an asset code such as USDT",
    "to": "an asset code such as BTC",
    "bridges": "asset codes such as BTC",
    "balances": "[exchangeId.]ASSET:amount entries, e.g. binance.USDT:100,okx.USDT:50",
}


def field_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic's errors as one line: 'amountIn: Input should be a valid number (got 'ten')'."""
    parts = []
    for err in errors[:3]:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("query", "body", "path")]
        name = ".".join(loc) or "request"
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {ascii(got)[:60]})"
        if err.get("type") == "extra_forbidden":
            parts.append(f"{name}: unknown parameter; see /docs for the parameters of /route")
        elif err.get("type") == "string_pattern_mismatch":
            hint = PATTERN_HINTS.get(loc[0] if loc else "", "see /docs for its format")
            parts.append(f"{name}: must be {hint}{shown}")
        else:
            parts.append(f"{name}: {err.get('msg', 'invalid')}{shown}")
    return "invalid request: " + "; ".join(parts)


def wire_json(content: Any) -> str:
    """The service's JSON: every non-ASCII character escaped (a lone surrogate echoed from
    the input cannot break the encoding), non-finite numbers refused (never NaN)."""
    return json.dumps(content, ensure_ascii=True, allow_nan=False)


def finite(value: dict[str, Any]) -> dict[str, Any]:
    """Every non-finite float (an overflow on an absurd amount) as 0, ccxt's 'unknown'."""
    out: dict[str, Any] = _finite(value)
    return out


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else 0.0
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class _Unroutable(Exception):  # noqa: N818 - control flow, never leaves this module
    def __init__(self, reason: str, hop: int = -1) -> None:
        super().__init__(reason)
        self.reason, self.hop = reason, hop


@dataclass(slots=True)
class _Answer:
    """A routed chain: `one` (route() on one market) or `graph` (route_graph())."""

    path: list[str]
    one: Quote | None = None
    graph: GraphQuote | None = None
    saving_bps: float = 0.0
    considered: int = 1

    @property
    def amounts(self) -> tuple[float, float]:
        if self.graph is not None:
            return self.graph.amount_in, self.graph.amount_out
        assert self.one is not None
        q = self.one
        spent = sum(_leg_in_out(q.side, leg.amount, leg.cost)[0] for leg in q.legs)
        got = sum(_leg_in_out(q.side, leg.amount, leg.cost)[1] for leg in q.legs)
        return spent, got


def _leg_in_out(side: str, base: float, quote_cost: float) -> tuple[float, float]:
    return (quote_cost, base) if side == "buy" else (base, quote_cost)


def _better(a: _Answer, b: _Answer | None, exact_in: bool) -> bool:
    if b is None:
        return True
    (a_in, a_out), (b_in, b_out) = a.amounts, b.amounts
    return a_out > b_out * (1 + 1e-12) if exact_in else a_in < b_in * (1 - 1e-12)


class Books:
    """The books and markets one request routes on (already filtered to fresh, allowed)."""

    def __init__(self, snapshots: Sequence[DepthSnapshot], markets: Mapping[Key, Market]):
        self.snapshots = list(snapshots)
        self.markets = dict(markets)
        self.assets: set[str] = set()
        for s in self.snapshots:
            self.assets.update(split_symbol(s.symbol))

    def pair(self, a: str, b: str) -> list[DepthSnapshot]:
        """The books of the markets joining assets a and b (one symbol: the most venues)."""
        by_symbol: dict[str, list[DepthSnapshot]] = {}
        for s in self.snapshots:
            if set(split_symbol(s.symbol)) == {a, b}:
                by_symbol.setdefault(s.symbol, []).append(s)
        if not by_symbol:
            return []
        return max(by_symbol.values(), key=lambda snaps: (len(snaps), snaps[0].symbol))

    def on_chain(self, chain: Sequence[str]) -> list[DepthSnapshot]:
        return [s for a, b in itertools.pairwise(chain) for s in self.pair(a, b)]


class Router:
    """Routes one request over `Books` with route()/route_graph(), rendered for the wire."""

    def __init__(self, books: Books, req: RouteRequest, cache: LadderCache | None = None) -> None:
        self.books, self.req, self.cache = books, req, cache
        self.exact_in = req.amount_in is not None
        self.warnings: list[str] = list(req.warnings)
        self.caps = self._caps()
        self.cycle_seen = False  # a chain's answer had flow off the chain (a cycle)

    # -- inputs -------------------------------------------------------------------------
    def market(self, snap: DepthSnapshot) -> Market:
        m = self.books.markets[(snap.venue, snap.symbol)]
        if not self.req.include_fees and m.taker_fee:
            m = replace(m, taker_fee=0.0)
        if self.req.min_leg_notional > (m.min_notional or 0.0):
            m = replace(m, min_notional=self.req.min_leg_notional)
        return m

    def _caps(self) -> dict[str, float] | None:
        """Per-venue holdings of the source asset (a bare entry counts on every venue)."""
        if self.req.balances is None:
            return None
        venues = {s.venue for s in self.books.snapshots}
        caps: dict[str, float] = {}
        for exchange, asset, amount in self.req.balances:
            if asset != self.req.source:
                continue
            for v in venues if not exchange else [exchange] if exchange in venues else []:
                caps[v] = caps.get(v, 0.0) + amount
        return caps

    # -- one hop: route() ---------------------------------------------------------------
    def one_hop(self, snaps: Sequence[DepthSnapshot], amount_in: float | None = None) -> Quote:
        """route() on one market's books; `amount_in` overrides the request (includeQuotes)."""
        base, _ = split_symbol(snaps[0].symbol)
        side = "buy" if base == self.req.target else "sell"
        spend = self.req.amount_in if amount_in is None else amount_in
        if spend is not None:
            amount, unit = spend, "quote" if side == "buy" else "base"
        else:
            amount, unit = float(self.req.amount_out or 0.0), "base" if side == "buy" else "quote"
        diag = amount_in is not None
        balances = None if diag or self.caps is None else {s.venue: 0.0 for s in snaps}
        if balances is not None and self.caps is not None:
            balances.update({v: c for v, c in self.caps.items() if v in balances})
        cap = None if diag else self.req.venue_cap
        has_rules = balances is not None or cap is not None or self.req.min_leg_notional > 0
        return route(
            snaps,
            side,
            amount,
            amount_in=unit,  # type: ignore[arg-type]
            markets={s.venue: self.market(s) for s in snaps},
            balances=balances,
            max_venues=cap,
            rules=None if has_rules and not diag else False,
            baselines=not diag,
            cache=self.cache,
        )

    def direct(self) -> _Answer | None:
        snaps = self.books.pair(self.req.source, self.req.target)
        if not snaps:
            return None
        q = self.one_hop(snaps)
        saving = q.savings_bps.get("best_venue") or 0.0
        return _Answer([self.req.source, self.req.target], one=q, saving_bps=max(saving, 0.0))

    # -- multi-hop: route_graph() -------------------------------------------------------
    def graph(
        self,
        snaps: Sequence[DepthSnapshot],
        bridges: Sequence[str] | None,
        hops: int,
        penalty: float = 0.0,
    ) -> GraphQuote:
        return route_graph(
            snaps,
            self.req.source,
            self.req.target,
            markets=[self.market(s) for s in snaps],
            amount_in=self.req.amount_in,
            amount_out=self.req.amount_out,
            bridges=bridges,
            max_hops=hops,
            hop_penalty_bps=penalty,
        )

    def _first_hop_allowed(self, snaps: Sequence[DepthSnapshot]) -> list[DepthSnapshot]:
        """With balances, the source asset is spent only on venues that hold some."""
        if self.caps is None:
            return list(snaps)
        return [
            s
            for s in snaps
            if self.req.source not in split_symbol(s.symbol) or self.caps.get(s.venue, 0.0) > 0
        ]

    def _chain_answer(self, chain: list[str], allowed: Sequence[DepthSnapshot]) -> _Answer | None:
        """route_graph() on one asset chain's books, venue caps per hop applied greedily."""
        keys = {(s.venue, s.symbol) for s in allowed}
        snaps = [s for s in self.books.on_chain(chain) if (s.venue, s.symbol) in keys]
        try:
            q = self.graph(snaps, chain[1:-1], len(chain) - 1)
            k = self.req.venue_cap
            while k is not None and any(len(h.legs) > k for h in q.hops):
                keep = {
                    (leg.venue, leg.symbol)
                    for h in q.hops
                    for leg in sorted(h.legs, key=lambda leg: -leg.amount_in)[:k]
                }
                snaps = [s for s in snaps if (s.venue, s.symbol) in keep]
                q = self.graph(snaps, chain[1:-1], len(chain) - 1)
        except InsufficientLiquidityError:
            return None
        if not _is_chain(q, chain):
            self.cycle_seen = True
            return None
        return _Answer(chain, graph=q)

    def multi_hop(self, direct: _Answer | None) -> _Answer | None:
        """The joint optimum when it is one chain, else the best chain it uses."""
        bridges = (
            None
            if self.req.bridges is None
            else [b for b in self.req.bridges if b in self.books.assets]
        )
        if self.req.bridges is not None and bridges is not None:
            unknown = sorted(set(self.req.bridges) - set(bridges))
            if unknown:
                self.warnings.append(f"bridges {unknown} are in no book: ignored")
        allowed = self._first_hop_allowed(self.books.snapshots)
        try:
            joint = self.graph(allowed, bridges, MAX_HOPS, self.req.hop_penalty_bps)
        except InsufficientLiquidityError:
            return None
        chains = _chains(joint)
        if chains == [[self.req.source, self.req.target]]:
            return None  # the direct market alone is optimal: route() answers it
        one_chain = len(chains) == 1 and len(joint.hops) == len(chains[0]) - 1  # no side flow
        if one_chain and self.req.venue_cap is None and _is_chain(joint, chains[0]):
            best: _Answer | None = _Answer(chains[0], graph=joint)
        else:
            best = None
            for chain in chains:
                candidate = direct if len(chain) == 2 else self._chain_answer(chain, allowed)
                if candidate is not None and _better(candidate, best, self.exact_in):
                    best = candidate
            if best is not None and len(chains) > 1:
                j_in, j_out = joint.amount_in, joint.amount_out
                self.warnings.append(
                    f"the joint optimum splits over {len(chains)} asset chains "
                    f"({j_in:.10g} {self.req.source} -> {j_out:.10g} {self.req.target}); "
                    "a RouteResult holds one chain: the best single chain is returned"
                )
        if best is None and direct is None and joint.hops:  # flow, but on no usable chain
            if self.cycle_seen or not chains:
                raise _Unroutable(
                    "cycle: the books hold a profitable cycle and no single chain from "
                    f"{self.req.source} to {self.req.target} routes without it; see /orderbook"
                )
            raise _Unroutable(
                f"insufficient_liquidity: no single chain of at most {MAX_HOPS} hops fills "
                f"the amount with strategy={self.req.strategy}; lower the amount or allow "
                "more venues"
            )
        if best is None or best.graph is None:
            return best
        best.considered = len(joint.paths)
        if direct is not None and self.req.hop_penalty_bps > 0:
            need = 1 + self.req.hop_penalty_bps / 1e4 * (len(best.path) - 2)
            (b_in, b_out), (d_in, d_out) = best.amounts, direct.amounts
            beats = b_out >= d_out * need if self.exact_in else b_in * need <= d_in
            if not beats and direct.one is not None and direct.one.unfilled == 0:
                self.warnings.append("multi-hop gain below hopPenaltyBps: direct route used")
                return direct
        return best

    def _over_balance(self, answer: _Answer) -> list[str]:
        if self.caps is None or answer.graph is None or not answer.graph.hops:
            return []
        spent: dict[str, float] = {}
        for leg in answer.graph.hops[0].legs:
            spent[leg.venue] = spent.get(leg.venue, 0.0) + leg.amount_in
        return [v for v, x in spent.items() if x > self.caps.get(v, 0.0) * (1 + 1e-9)]

    def _single_chain_saving(self, answer: _Answer) -> float:
        if answer.graph is None:
            return answer.saving_bps
        if self.req.strategy == "best_single":
            return 0.0
        single = Router(self.books, replace(self.req, strategy="best_single"))
        alone = single._chain_answer(answer.path, self.books.snapshots)
        if alone is None:
            return 0.0
        (a_in, a_out), (s_in, s_out) = answer.amounts, alone.amounts
        if self.exact_in:
            return (a_out / s_out - 1) * 1e4 if s_out > 0 else 0.0
        return (s_in / a_in - 1) * 1e4 if a_in > 0 else 0.0

    # -- the answer ---------------------------------------------------------------------
    def solve(self) -> _Answer:
        req = self.req
        for name, asset in (("from", req.source), ("to", req.target)):
            if asset not in self.books.assets:
                raise _Unroutable(f"unknown_asset: no book holds {name}={asset}")
        if req.source == req.target:
            raise _Unroutable("same_asset: from and to are the same")
        if req.balance_mode == "require" and req.amount_in is not None and req.balances:
            held = sum(a for _, asset, a in req.balances if asset == req.source)
            if held < req.amount_in:
                raise _Unroutable(
                    f"insufficient_balance: {held:g} {req.source} held, "
                    f"{req.amount_in:g} needed (balanceMode=require)"
                )
        direct = self.direct()
        answer = None if req.bridges == () else self.multi_hop(direct)
        if answer is not None and self._over_balance(answer):
            over = self._over_balance(answer)
            self.warnings.append(
                f"the multi-hop route spends more {req.source} than held on {over} "
                "(multi-hop routes are not capped per venue): the direct route is used"
            )
            answer = direct
            if answer is None:
                raise _Unroutable(
                    f"insufficient_balance: the route needs more {req.source} than held on "
                    f"{over}; add balances there or allow a direct market"
                )
        if answer is None:
            answer = direct
        if answer is None:
            via = "direct markets only (bridges empty)" if req.bridges == () else f"{MAX_HOPS} hops"
            raise _Unroutable(f"no_path: no route from {req.source} to {req.target} within {via}")
        if answer.graph is not None:
            answer.saving_bps = self._single_chain_saving(answer)
        return answer


def _is_chain(q: GraphQuote, chain: Sequence[str]) -> bool:
    """True when the quote's hops are exactly the chain's, in order (no flow elsewhere)."""
    return [(h.asset_in, h.asset_out) for h in q.hops] == list(itertools.pairwise(chain))


def _chains(q: GraphQuote) -> list[list[str]]:
    """Every source -> target asset chain through the hops the quote uses."""
    nxt: dict[str, list[str]] = {}
    for hop in q.hops:
        nxt.setdefault(hop.asset_in, []).append(hop.asset_out)
    out: list[list[str]] = []

    def walk(chain: list[str]) -> None:
        if chain[-1] == q.target:
            out.append(chain)
            return
        for b in nxt.get(chain[-1], []):
            if b not in chain:
                walk([*chain, b])

    walk([q.source])
    return out


def _legs_from_quote(router: Router, q: Quote, snaps: Sequence[DepthSnapshot]) -> dict[str, Any]:
    symbol = snaps[0].symbol
    base, quote = split_symbol(symbol)
    caps = router.caps or {}
    legs = []
    for leg in q.legs:
        spent, got = _leg_in_out(q.side, leg.amount, leg.cost)
        legs.append(
            {
                "exchangeId": leg.venue,
                "symbol": symbol,
                "amount": leg.amount,
                "averagePrice": leg.avg_price,
                "takerFeeRate": router.market(
                    next(s for s in snaps if s.venue == leg.venue)
                ).taker_fee,
                "feeCost": leg.fee,
                "effectivePrice": leg.cost / leg.amount,
                "amountIn": spent,
                "amountOut": got,
                "balanceLimited": leg.venue in caps and spent >= caps[leg.venue] * (1 - 1e-9),
            }
        )
    return {
        "pair": symbol,
        "side": q.side,
        "base": base,
        "quote": quote,
        "from": router.req.source,
        "to": router.req.target,
        "amountIn": sum(leg["amountIn"] for leg in legs),
        "amountOut": sum(leg["amountOut"] for leg in legs),
        "legs": legs,
    }


def _hops_from_graph(router: Router, q: GraphQuote) -> list[dict[str, Any]]:
    hops = []
    caps = router.caps or {}
    for i, hop in enumerate(q.hops):
        legs = []
        for leg in hop.legs:
            fee = router.books.markets[(leg.venue, leg.symbol)]
            net = leg.amount_in if leg.side == "buy" else leg.amount_out
            legs.append(
                {
                    "exchangeId": leg.venue,
                    "symbol": leg.symbol,
                    "amount": leg.base_amount,
                    "averagePrice": leg.avg_price,
                    "takerFeeRate": fee.taker_fee if router.req.include_fees else 0.0,
                    "feeCost": leg.fee,
                    "effectivePrice": net / leg.base_amount,
                    "amountIn": leg.amount_in,
                    "amountOut": leg.amount_out,
                    "balanceLimited": i == 0
                    and leg.venue in caps
                    and leg.amount_in >= caps[leg.venue] * (1 - 1e-9),
                }
            )
        base, quote = split_symbol(hop.legs[0].symbol)
        hops.append(
            {
                "pair": hop.legs[0].symbol,
                "side": hop.legs[0].side,
                "base": base,
                "quote": quote,
                "from": hop.asset_in,
                "to": hop.asset_out,
                "amountIn": hop.amount_in,
                "amountOut": hop.amount_out,
                "legs": legs,
            }
        )
    return hops


def _venue_quotes(router: Router, hops: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """includeQuotes: each hop's whole input on each venue of its market alone (route())."""
    out = []
    for i, hop in enumerate(hops):
        a, b = hop["from"], hop["to"]
        alone = Router(router.books, replace(router.req, source=a, target=b), router.cache)
        for snap in router.books.pair(a, b):
            if hop["amountIn"] <= 0:
                continue
            q = alone.one_hop([snap], amount_in=hop["amountIn"])
            out.append(
                {
                    "hop": i,
                    "exchangeId": snap.venue,
                    "pair": snap.symbol,
                    "amountIn": hop["amountIn"],
                    "amountOut": alone_amounts(q)[1],
                }
            )
    return out


def alone_amounts(q: Quote) -> tuple[float, float]:
    return _Answer([], one=q).amounts


def result_base(req: RouteRequest, started: float) -> dict[str, Any]:
    """The RouteResult fields every answer carries (an unroutable one is only these)."""
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
        "solver": "",
    }
    if req.balances is not None:
        base["balancesApplied"] = ",".join(
            f"{ex + '.' if ex else ''}{a}:{v:g}" for ex, a, v in req.balances
        )
        base["balanceEntryCount"] = len(req.balances)
        base["balanceMode"] = req.balance_mode
    return base


def compute_route(
    req: RouteRequest,
    snapshots: Iterable[DepthSnapshot],
    markets: Mapping[Key, Market],
    cache: LadderCache | None = None,
) -> dict[str, Any]:
    """The RouteResult for `req` on these books: JSON-safe, non-finite numbers as 0.

    `cache` (a LadderCache, one per worker process) keeps each book version's merged
    ladders, so a repeated one-hop order on unchanged books skips the build and the sort.

    Bad input raises `InvalidInputError`; an unroutable request is a RouteResult with
    `unroutableReason`.
    """
    started = time.time()
    t0 = time.perf_counter()
    snaps = [s for s in snapshots if not req.exchanges or s.venue in req.exchanges]
    base = result_base(req, started)
    router = Router(Books(snaps, markets), req, cache)
    try:
        answer = router.solve()
    except _Unroutable as exc:
        return finite(base | {"unroutableReason": exc.reason, "unroutableHopIndex": exc.hop})
    except LiquidrouteError as exc:
        if isinstance(exc, InvalidInputError):
            raise
        return finite(base | {"unroutableReason": f"not_routable: {exc}"})
    if answer.one is not None:
        q = answer.one
        hops = [_legs_from_quote(router, q, router.books.pair(req.source, req.target))]
        full = q.unfilled == 0
        router.warnings += list(q.warnings)
        solver = f"liquidroute route() ({q.solver})"
    else:
        assert answer.graph is not None
        hops = _hops_from_graph(router, answer.graph)
        full = True
        router.warnings += list(answer.graph.warnings)
        solver = f"liquidroute route_graph() ({answer.graph.solver})"
    spent, got = answer.amounts
    asked = float(req.amount_in if req.amount_in is not None else req.amount_out or 0.0)
    achieved = spent if req.amount_in is not None else got
    if not full and req.require_full_fill:
        return finite(
            base
            | {
                "unroutableReason": "insufficient_liquidity: the books cannot fill the whole "
                "amount and requireFullFill is set",
                "unroutableHopIndex": 0,
                "pathsConsidered": answer.considered,
            }
        )
    result = base | {
        "amountIn": spent,
        "amountOut": got,
        "fullyFillable": full,
        "fillRatio": 1.0 if full else achieved / asked,
        "unfilledAmount": 0.0 if full else max(asked - achieved, 0.0),
        "hops": hops,
        "path": answer.path,
        "pathsConsidered": answer.considered,
        "savingVsBestSingleBps": answer.saving_bps,
        "warnings": router.warnings,
        "solver": solver,
        "computeMs": (time.perf_counter() - t0) * 1e3,
    }
    if req.include_quotes:
        result["quotes"] = _venue_quotes(router, hops)
    return finite(result)


__all__ = [
    "STRATEGIES",
    "RouteRequest",
    "compute_route",
    "field_errors",
    "parse_balances",
    "parse_request",
    "wire_json",
]
