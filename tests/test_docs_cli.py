"""docs/cli.md is generated from the typer app; this fails when it is stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_the_app_help(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts/gen_cli_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.render()
    assert (ROOT / "docs" / "cli.md").read_text() == page, (
        "docs/cli.md is stale: run python scripts/gen_cli_docs.py"
    )
    for path in module.command_paths()[1:]:  # every command has its section
        assert f"## liquidroute {' '.join(path)}\n" in page
