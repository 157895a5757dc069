"""Rich rendering for every command: numbers, tables that never cut a value, the quote.

One table helper (`print_table`): at its natural width when it fits the console (a pipe or
a log has no width limit, see `common.output_width`), else a compact layout with one block
per row — an id, an amount or a price is never truncated or broken at any width.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from liquidroute.cli.common import styled

if TYPE_CHECKING:
    from rich.console import Console

    from liquidroute.model import Quote

BASELINE_LABELS = {
    "best_venue": "best single venue",
    "equal_split": "equal split",
    "pro_rata": "pro-rata by depth",
    "percent_grid": "5 % grid (≤ 7 venues)",
}
DASH = "—"


def fixed(x: float | None, digits: int = 2, sign: bool = False) -> str:
    """`x` with thousands separators and `digits` decimals; never `-0.00`; `—` for None."""
    if x is None or not math.isfinite(x):
        return DASH
    if round(x, digits) == 0:
        x = 0.0
    return f"{x:+,.{digits}f}" if sign and x != 0 else f"{x:,.{digits}f}"


def amount(x: float | None, decimals: int = 8) -> str:
    """A base amount at up to `decimals` places (the finest venue lot is 1e-8), float noise
    and trailing zeros dropped: 0.9999999999999998 -> 1, 29.94115 -> 29.94115."""
    if x is None or not math.isfinite(x):
        return DASH
    text = f"{x:,.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def step_decimals(step: float) -> int:
    """Decimal places of a lot step: 1e-05 -> 5, 0.001 -> 3, 2.5e-05 -> 6, 1 -> 0."""
    from decimal import Decimal

    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 8


def lot_amount(x: float, step: float | None) -> str:
    """An amount at the venue's precision when it sits on the venue's lot (what is sent);
    otherwise (`--no-rules`, no market rules) at up to 8 places, as `amount`."""
    if step and math.isfinite(x) and abs(x / step - round(x / step)) < 1e-6:
        return f"{x:,.{step_decimals(step)}f}"
    return amount(x)


def money(x: float | None, currency: str, digits: int = 2) -> str:
    """A total with its currency: `3,088,049.60 USDT`."""
    return f"{fixed(x, digits)} {currency}" if x is not None else DASH


def quote_currency(symbol: str) -> str:
    """BTC/USDT -> USDT; BTC/USDT:USDT (a perpetual) -> USDT."""
    return symbol.split("/")[1].split(":")[0] if "/" in symbol else ""


@dataclass(frozen=True, slots=True)
class Col:
    """A table column: `right` for numbers; `wrap` lets free text wrap between words."""

    name: str
    right: bool = False
    wrap: bool = False


def print_table(
    out: Console, title: str, columns: Sequence[Col], rows: Sequence[Sequence[str]]
) -> None:
    """Print rows as a table if it fits `out.width`, else one block per row (never cut)."""
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table

    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False
    )
    for i, col in enumerate(columns):
        whole = max([cell_len(col.name), *(cell_len(row[i]) for row in rows)])
        table.add_column(
            col.name,
            justify="right" if col.right else "left",
            no_wrap=not col.wrap,
            min_width=None if col.wrap else whole,  # so the measure below knows it
        )
    for row in rows:
        table.add_row(*row)
    if table.__rich_measure__(out, out.options).minimum <= out.width:  # unclamped
        out.print(table)
        return
    out.print(styled((title, "italic")))
    key_width = max(len(col.name) for col in columns[1:])
    for row in rows:
        out.print(styled((f"{columns[0].name}: {row[0]}", "bold")))
        for col, value in zip(columns[1:], row[1:], strict=True):
            out.print(f"  {col.name:<{key_width}}  {value}")


def render_quote(quote: Quote, out: Console, steps: Mapping[str, float] | None = None) -> None:
    """The split, the totals (with currency) and the savings against each baseline.

    `steps` (venue -> lot step) prints each leg's amount at its venue's precision.
    """
    steps = steps or {}
    cur = quote_currency(quote.symbol)
    verb = "spend" if quote.side == "buy" else "receive"
    asked = (
        f"{verb} {fixed(quote.requested)} {cur}"
        if quote.amount_in == "quote"
        else f"{quote.side} {amount(quote.requested)}"
    )
    n = len(quote.legs)
    title = f"{quote.symbol} {asked}: optimal split over {n} venue{'s' if n != 1 else ''}"
    with_notes = any(leg.notes for leg in quote.legs)
    columns = [
        Col("Venue"),
        Col("Amount", right=True),
        Col("Share", right=True),
        Col("Avg price", right=True),
        Col("Worst price", right=True),
        Col(f"Fee ({cur})", right=True),
        Col(f"Cost ({cur})" if quote.side == "buy" else f"Proceeds ({cur})", right=True),
    ]
    if with_notes:
        columns.append(Col("Rules", wrap=True))
    rows = []
    for leg in quote.legs:
        row = [
            leg.venue,
            lot_amount(leg.amount, steps.get(leg.venue)),
            f"{leg.share:.1%}",
            fixed(leg.avg_price),
            fixed(leg.worst_price),
            fixed(leg.fee),
            fixed(leg.cost),
        ]
        if with_notes:
            row.append(", ".join(leg.notes))
        rows.append(row)
    print_table(out, title, columns, rows)

    paid = "Total cost" if quote.side == "buy" else "Total proceeds"
    base = quote.symbol.split("/")[0]
    filled = f"Filled          {amount(quote.filled)} {base}"
    unfilled_unit = cur if quote.amount_in == "quote" else base
    lines = [
        styled(filled, (f"   unfilled {amount(quote.unfilled)} {unfilled_unit}", "bold red"))
        if quote.unfilled
        else styled(filled),
        styled(f"{paid:<16}{money(quote.total_cost, cur)} (fees {money(quote.total_fees, cur)})"),
        styled(
            f"All-in price    {money(quote.avg_price, cur)}   mid {money(quote.mid, cur)}   "
            f"slippage {fixed(quote.slippage_bps)} bps"
        ),
    ]
    if quote.solver == "exact":
        lines.append(
            styled(
                f"Marginal price  {money(quote.marginal_price, cur)} (fee-adjusted; the "
                "optimality certificate: every cheaper level is taken, none dearer)"
            )
        )
    else:
        gap = DASH if quote.gap is None else f"{quote.gap:.1e}"
        lines.append(
            styled(
                f"Solved          {quote.solver} within the venues' rules (proven gap {gap}); "
                f"rule-free bound {money(quote.lower_bound, cur)}"
            )
        )
    if quote.fixed_costs:
        fixed_costs = ", ".join(f"{v} {money(c, cur)}" for v, c in quote.fixed_costs.items())
        lines.append(styled(f"Fixed costs     {fixed_costs} (included)"))
    for line in lines:
        out.print(line)

    if quote.baselines:
        sign = 1.0 if quote.side == "buy" else -1.0
        brows = []
        for key, cost in quote.baselines.items():
            saved_bps = quote.savings_bps.get(key)
            saved = None if cost is None else sign * (cost - quote.total_cost)
            brows.append(
                [
                    BASELINE_LABELS.get(key, key),
                    "cannot fill" if cost is None else fixed(cost),
                    fixed(saved_bps),
                    fixed(saved),
                ]
            )
        print_table(
            out,
            "Against simple strategies (same amount)",
            [
                Col("Strategy"),
                Col(f"{paid} ({cur})", right=True),
                Col("Optimal saves (bps)", right=True),
                Col(f"Optimal saves ({cur})", right=True),
            ],
            brows,
        )


def render_diagnostics(quote: Quote, err: Console) -> None:
    """Excluded venues, warnings and the data label, for stderr (after stdout is flushed)."""
    from liquidroute.cli.common import note

    sys.stdout.flush()
    for venue, reason in quote.excluded.items():
        note(err, f"{venue}: {reason}", label="left out")
    for warning in quote.warnings:
        note(err, warning)
    if quote.source:
        err.print(styled((f"data: {quote.source}", "dim")))
