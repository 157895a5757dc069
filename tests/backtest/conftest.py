"""Fixtures of the backtest tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich draws its live display as on a 140-column terminal (into CliRunner's stderr)."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    monkeypatch.setenv("COLUMNS", "140")
