"""The child-order state machine: every (state, event) pair, and no way around the table."""

from __future__ import annotations

import itertools

import pytest

from liquidroute.errors import OrderStateError
from liquidroute.model import (
    TERMINAL_STATES,
    TRANSITIONS,
    ChildOrder,
    OrderEvent,
    OrderState,
    StopReason,
)

# The specification, written out independently of model.TRANSITIONS: the rows are the
# state, the columns the events, "-" = refused. (DESIGN: planned -> submitted ->
# (partially_filled) -> filled | cancelled | rejected | failed | unknown; unknown is
# resolved by asking the venue, never by sending again.)
EVENTS = [
    "submit", "not_sent", "recover", "accept", "partial_fill",
    "fill", "cancel", "reject", "lose", "not_found",
]  # fmt: skip
_ = "-"
SPEC = {
    #          submit       not_sent  recover    accept       partial_fill
    #          fill      cancel       reject      lose       not_found
    "planned": ["submitted", "failed", "unknown", _, _,
                _, _, _, _, _],
    "submitted": [_, _, _, "submitted", "partially_filled",
                  "filled", "cancelled", "rejected", "unknown", "failed"],
    "partially_filled": [_, _, _, _, "partially_filled",
                         "filled", "cancelled", _, "unknown", _],
    "unknown": [_, _, _, "submitted", "partially_filled",
                "filled", "cancelled", "rejected", _, "failed"],
    "filled": [_] * 10,
    "cancelled": [_] * 10,
    "rejected": [_] * 10,
    "failed": [_] * 10,
}  # fmt: skip

FILL_EVENTS = {"accept", "partial_fill", "fill", "cancel"}


def order_in(state: OrderState) -> ChildOrder:
    """A child order brought to `state` through the table itself."""
    c = ChildOrder("p", "cid", "a", "BTC/USDT", "buy", 1.0, 100.0)
    path = {
        OrderState.PLANNED: [],
        OrderState.SUBMITTED: [OrderEvent.SUBMIT],
        OrderState.PARTIALLY_FILLED: [OrderEvent.SUBMIT, OrderEvent.PARTIAL_FILL],
        OrderState.UNKNOWN: [OrderEvent.SUBMIT, OrderEvent.LOSE],
        OrderState.FILLED: [OrderEvent.SUBMIT, OrderEvent.FILL],
        OrderState.CANCELLED: [OrderEvent.SUBMIT, OrderEvent.CANCEL],
        OrderState.REJECTED: [OrderEvent.SUBMIT, OrderEvent.REJECT],
        OrderState.FAILED: [OrderEvent.NOT_SENT],
    }[state]
    for event in path:
        kw = {"filled": 0.5} if event in (OrderEvent.PARTIAL_FILL,) else {}
        c.apply(event, **kw)
    assert c.state is state
    return c


@pytest.mark.parametrize(
    ("state", "event"), list(itertools.product(list(OrderState), list(OrderEvent)))
)
def test_every_state_event_pair(state, event):
    expected = SPEC[state.value][EVENTS.index(event.value)]
    c = order_in(state)
    kw = {"filled": 0.5} if event.value in FILL_EVENTS else {}
    if expected == "-":
        before = (c.state, c.filled, c.error)
        with pytest.raises(OrderStateError, match=event.value):
            c.apply(event, **kw)
        assert (c.state, c.filled, c.error) == before  # a refused event changes nothing
    else:
        assert c.apply(event, **kw) == expected
        assert c.state == expected


def test_the_table_is_exactly_the_spec():
    spec = {
        (OrderState(s), OrderEvent(e)): OrderState(nxt)
        for s, row in SPEC.items()
        for e, nxt in zip(EVENTS, row, strict=True)
        if nxt != "-"
    }
    assert dict(TRANSITIONS) == spec
    assert {"filled", "cancelled", "rejected", "failed"} == TERMINAL_STATES


def test_safety_invariants_of_the_table():
    # only a planned order is ever sent; nothing goes back to planned
    assert {s for (s, e) in TRANSITIONS if e is OrderEvent.SUBMIT} == {OrderState.PLANNED}
    assert OrderState.PLANNED not in TRANSITIONS.values()
    # unknown is left only by what the venue says, never by a new send
    out_of_unknown = {e for (s, e) in TRANSITIONS if s is OrderState.UNKNOWN}
    assert OrderEvent.SUBMIT not in out_of_unknown and OrderEvent.NOT_SENT not in out_of_unknown


def test_state_and_fills_cannot_be_set_directly():
    c = ChildOrder("p", "cid", "a", "BTC/USDT", "buy", 1.0, 100.0)
    for name, value in [
        ("state", "filled"),
        ("filled", 1.0),
        ("avg_price", 1.0),
        ("fees", {}),
        ("error", "x"),
    ]:
        with pytest.raises(AttributeError):
            setattr(c, name, value)
    with pytest.raises(AttributeError):
        c.new_field = 1  # slots: no arbitrary fields
    assert not hasattr(c, "transition")
    assert c.state is OrderState.PLANNED


def test_fill_reports_must_be_possible():
    c = order_in(OrderState.SUBMITTED)
    c.apply(OrderEvent.PARTIAL_FILL, filled=0.6, avg_price=100.0)
    with pytest.raises(OrderStateError, match="after"):
        c.apply(OrderEvent.PARTIAL_FILL, filled=0.5)  # fills never shrink
    with pytest.raises(OrderStateError, match="> amount"):
        c.apply(OrderEvent.FILL, filled=1.5)
    with pytest.raises(OrderStateError, match="carries no fills"):
        order_in(OrderState.SUBMITTED).apply(OrderEvent.REJECT, filled=0.1)
    assert c.state is OrderState.PARTIALLY_FILLED and c.filled == 0.6


def test_stop_reasons_are_an_enum_with_a_parent_state():
    assert {r.parent_state for r in StopReason} == {"filled", "unknown", "stopped"}
    assert StopReason.UNKNOWN_FATE.parent_state == "unknown"
    assert StopReason("risk_limit") is StopReason.RISK_LIMIT
