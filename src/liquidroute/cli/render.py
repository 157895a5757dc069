"""Rich rendering of a Quote: the split table, the totals, the baselines."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from liquidroute.model import Quote

BASELINE_LABELS = {
    "best_venue": "best single venue",
    "equal_split": "equal split",
    "pro_rata": "pro-rata by depth",
    "percent_grid": "5 % grid (≤ 7 venues)",
}


def _num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _amount(x: float) -> str:
    return f"{x:,.8f}".rstrip("0").rstrip(".")


def render_quote(quote: Quote, out: Console) -> None:
    from rich.table import Table

    symbol_quote = quote.symbol.split("/")[1].split(":")[0]
    verb = "spend" if quote.side == "buy" else "receive"
    asked = (
        f"{verb} {_num(quote.requested)} {symbol_quote}"
        if quote.amount_in == "quote"
        else f"{quote.side} {_amount(quote.requested)}"
    )
    title = f"{quote.symbol} {asked}: optimal split over {len(quote.legs)} venue(s)"
    table = Table(title=title, title_justify="left")
    for name in ("Venue", "Amount", "Share", "Avg price", "Worst price", "Fee", "Cost"):
        table.add_column(name, justify="left" if name == "Venue" else "right")
    with_notes = any(leg.notes for leg in quote.legs)
    if with_notes:
        table.add_column("Rules")
    for leg in quote.legs:
        row = [
            leg.venue,
            _amount(leg.amount),
            f"{leg.share:.1%}",
            _num(leg.avg_price),
            _num(leg.worst_price),
            _num(leg.fee),
            _num(leg.cost),
        ]
        if with_notes:
            row.append(", ".join(leg.notes))
        table.add_row(*row)
    out.print(table)

    paid = "Total cost" if quote.side == "buy" else "Total proceeds"
    lines = [
        f"Filled          {_amount(quote.filled)}"
        + (
            f"   [bold red]unfilled {_amount(quote.unfilled)} "
            f"{symbol_quote if quote.amount_in == 'quote' else quote.symbol.split('/')[0]}[/]"
            if quote.unfilled
            else ""
        ),
        f"{paid:<16}{_num(quote.total_cost)} {symbol_quote} (fees {_num(quote.total_fees)})",
        f"All-in price    {_num(quote.avg_price)}   mid {_num(quote.mid)}   "
        f"slippage {_num(quote.slippage_bps)} bps",
    ]
    if quote.solver == "exact":
        lines.append(
            f"Marginal price  {_num(quote.marginal_price)} (fee-adjusted; the optimality "
            "certificate: every cheaper level is taken, none dearer)"
        )
    else:
        gap = "—" if quote.gap is None else f"{quote.gap:.1e}"
        lines.append(
            f"Solved          {quote.solver} within the venues' rules (proven gap {gap}); "
            f"rule-free bound {_num(quote.lower_bound)} {symbol_quote}"
        )
    if quote.fixed_costs:
        fixed = ", ".join(f"{v} {c:,.2f}" for v, c in quote.fixed_costs.items())
        lines.append(f"Fixed costs     {fixed} (included)")
    for line in lines:
        out.print(line)

    if quote.baselines:
        base = Table(title="Against simple strategies (same amount)", title_justify="left")
        base.add_column("Strategy")
        base.add_column(paid, justify="right")
        base.add_column("Optimal saves (bps)", justify="right")
        for key, cost in quote.baselines.items():
            saved = quote.savings_bps.get(key)
            base.add_row(
                BASELINE_LABELS.get(key, key),
                "cannot fill" if cost is None else _num(cost),
                "—" if saved is None else f"{saved:.2f}",
            )
        out.print(base)


def render_diagnostics(quote: Quote, err: Console) -> None:
    """Excluded venues, warnings and the data label, for stderr (after stdout is flushed)."""
    sys.stdout.flush()
    for venue, reason in quote.excluded.items():
        err.print(f"[yellow]left out[/] {venue}: {reason}")
    for note in quote.warnings:
        err.print(f"[yellow]note:[/] {note}")
    if quote.source:
        err.print(f"[dim]data: {quote.source}[/]")
