"""Every example in README.md and docs/*.md runs (pages added later are covered as well).

Extracted from the fenced blocks of each page:

- ```bash / ```sh / ```console lines that run `liquidroute ...` (backslash continuations
  joined, globs expanded from the repository root, HOME set to a temporary directory):
  - offline ones (`--sample`, `--books`, `../shared/data`, or no source at all) must exit 0;
  - network ones (`--venues`) run with each named venue pointed at a loopback port where
    nothing listens: they must fail fast and clearly (exit 1, every venue named, no
    traceback);
  - `serve` and `record` run until stopped; the service and backtest tests cover them.
- ```python blocks are executed (from the repository root) and must not raise; a block
  marked ```python network needs live venues and is only compiled.
"""

from __future__ import annotations

import glob
import json
import re
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liquidroute.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)[ \t]*([\w-]*)[ \t]*\n(.*?)^```", re.M | re.S)
SHELLS = {"bash", "sh", "shell", "console"}
LONG_RUNNING = {"serve", "record"}
OFFLINE_MARKERS = ("--sample", "--books", "../shared/data")


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    kind: str  # "offline", "network", "python", "python-network"
    text: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def logical_lines(body: str) -> list[tuple[int, str]]:
    """(index of the first physical line, the line) with backslash continuations joined."""
    out: list[tuple[int, str]] = []
    start, parts = 0, []
    for i, raw in enumerate(body.splitlines()):
        if not parts:
            start = i
        if raw.rstrip().endswith("\\"):
            parts.append(raw.rstrip()[:-1].strip())
            continue
        parts.append(raw.strip())
        out.append((start, " ".join(parts)))
        parts = []
    return out


def extract(page: Path) -> list[Example]:
    """The runnable examples of one Markdown page."""
    text = page.read_text()
    name = str(page.relative_to(ROOT))
    out: list[Example] = []
    for match in FENCE.finditer(text):
        lang, tag, body = match.group(1), match.group(2), match.group(3)
        first = text.count("\n", 0, match.start()) + 2  # line of the block's first line
        if lang == "python":
            kind = "python-network" if tag == "network" else "python"
            out.append(Example(name, first, kind, body))
            continue
        if lang not in SHELLS:
            continue
        for line, command in logical_lines(body):
            command = command.removeprefix("$ ").split(" #")[0].strip()
            if not command.startswith("liquidroute "):
                continue
            args = shlex.split(command)[1:]
            if args and args[0] in LONG_RUNNING:
                continue
            offline = "--venues" not in args or any(m in command for m in OFFLINE_MARKERS)
            out.append(Example(name, first + line, "offline" if offline else "network", command))
    return out


EXAMPLES = [ex for page in PAGES for ex in extract(page)]


def test_the_pages_have_examples():
    kinds = {ex.kind for ex in EXAMPLES}
    assert {"offline", "network", "python"} <= kinds
    assert any(ex.page == "README.md" and "--sample" in ex.text for ex in EXAMPLES)


def _args(command: str) -> list[str]:
    args: list[str] = []
    for arg in shlex.split(command)[1:]:
        if any(c in arg for c in "*?["):
            matches = sorted(glob.glob(arg, root_dir=ROOT))  # noqa: PTH207 (a shell glob)
            assert matches, f"the glob {arg} matches no file (from {ROOT})"
            args += matches
        else:
            args.append(arg)
    return args


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "example", [ex for ex in EXAMPLES if ex.kind in ("offline", "network")], ids=lambda e: e.id
)
def test_shell_example(example, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("COLUMNS", raising=False)
    args = _args(example.text)
    env = {"HOME": str(tmp_path)}
    if example.kind == "offline":
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, (example.text, result.output)
        assert "Traceback" not in result.output
        return
    names = [
        spec.split("=")[0].strip() for spec in args[args.index("--venues") + 1].split(",") if spec
    ]
    port = _dead_port()
    for name in names:
        env[f"LIQUIDROUTE_{name.upper().replace('-', '_')}_URL"] = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    result = CliRunner().invoke(app, args, env=env)
    assert time.monotonic() - started < 20, "a network example must fail fast offline"
    assert result.exit_code == 1, (example.text, result.output)
    assert "Traceback" not in result.output
    error = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    for name in names:
        assert name in error, (name, error)


@pytest.mark.parametrize(
    "example", [ex for ex in EXAMPLES if ex.kind.startswith("python")], ids=lambda e: e.id
)
def test_python_example(example, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = compile(example.text, example.id, "exec")
    if example.kind == "python-network":
        return  # compiled: it needs live venues
    exec(code, {"__name__": "__docs__"})
    capsys.readouterr()


def test_readme_shows_the_real_output_and_figures(monkeypatch):
    """The quick start's output block and the backtest's figures are what the commands print."""
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("COLUMNS", raising=False)
    readme = (ROOT / "README.md").read_text()
    shown = next(
        body for lang, _, body in FENCE.findall(readme) if lang == "text" and "sell 50" in body
    )
    result = CliRunner().invoke(app, ["quote", "BTC/USDT", "sell", "50", "--sample"])
    assert result.exit_code == 0, result.output
    printed = {line.rstrip() for line in result.stdout.splitlines()}
    for line in shown.splitlines():
        assert line.rstrip() in printed, line

    backtest = next(ex for ex in EXAMPLES if ex.page == "README.md" and "backtest" in ex.text)
    result = CliRunner().invoke(app, [*_args(backtest.text), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["strategy"]: r for r in json.loads(result.stdout)["strategies"]}
    opt = rows["optimal"]
    n = opt["orders"]
    assert f"Replay {n} parent orders" in readme
    assert f"saves {opt['saved_vs_best_venue_bps_mean']:.2f} bps per order" in readme
    assert f"{opt['saved_vs_best_venue_quote']:,.0f} USDT in total" in readme
    for name in ("equal_split", "pro_rata"):
        assert f"{rows[name]['saved_vs_best_venue_bps_mean']:.2f} bps" in readme
