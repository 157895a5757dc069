"""The number formats every table uses: no -0.00, no float noise, currency on totals."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app
from liquidroute.cli.common import clean_floats
from liquidroute.cli.render import amount, fixed, lot_amount, money, step_decimals


@pytest.mark.parametrize(
    ("value", "text"),
    [(-0.001, "0.00"), (-0.0, "0.00"), (-0.006, "-0.01"), (1234.5, "1,234.50"), (None, "—")],
)
def test_fixed_never_prints_minus_zero(value, text):
    assert fixed(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.9999999999999998, "1"),
        (999.9999999999999, "1,000"),
        (29.94115, "29.94115"),
        (1e-8, "0.00000001"),
        (-1e-12, "0"),
        (math.nan, "—"),
    ],
)
def test_amount_drops_noise_keeps_the_finest_lot(value, text):
    assert amount(value) == text


def test_money_says_the_currency():
    assert money(3080049.3, "USDT") == "3,080,049.30 USDT"


def test_clean_floats_removes_noise_only():
    data = {"a": 999.9999999999999, "b": [0.9999999999999998, 1540491.9298079195], "c": "x"}
    assert clean_floats(data) == {"a": 1000.0, "b": [1.0, 1540491.92980792], "c": "x"}
    assert clean_floats(1540491.9298079195) == pytest.approx(1540491.9298079195, rel=1e-14)


def test_json_outputs_have_no_float_noise():
    result = CliRunner().invoke(app, ["quote", "BTC/USDT", "sell", "50", "--sample", "--json"])
    assert result.exit_code == 0, result.output
    for token in json.loads(result.stdout, parse_float=str).values():
        if isinstance(token, str) and token.replace(".", "").isdigit():
            assert "99999999" not in token and "00000000" not in token, token
    assert "99999999999" not in result.stdout


@pytest.mark.parametrize(("step", "decimals"), [(1e-5, 5), (0.001, 3), (2.5e-5, 6), (1.0, 0)])
def test_step_decimals(step, decimals):
    assert step_decimals(step) == decimals


def test_lot_amount_pads_to_the_lot_only_when_on_it():
    assert lot_amount(1.955946, 1e-8) == "1.95594600"
    assert lot_amount(30.21539, 1e-5) == "30.21539"
    assert lot_amount(14.0, 1e-5) == "14.00000"
    assert lot_amount(1.2345678, 1e-3) == "1.2345678"  # off the lot (--no-rules): as computed
    assert lot_amount(2.5, None) == "2.5"
