"""Help reads like the docs for every command: real metavars, no type tags, nothing eaten."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest
import typer.main
from typer.testing import CliRunner

from liquidroute.cli.app import app

runner = CliRunner()


def commands() -> list[tuple[list[str], object]]:
    """(path, click command) for every command and group, found by walking the app."""
    out: list[tuple[list[str], object]] = []

    def walk(path: list[str], cmd: object) -> None:
        out.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk([*path, name], sub)

    walk([], typer.main.get_command(app))
    return out


def squash(text: str) -> str:
    """The words of `text` without layout: whitespace and panel borders removed."""
    return re.sub(r"[\s│╭╮╰╯─]+", "", text)


@pytest.mark.parametrize(
    ("path", "cmd"), commands(), ids=[" ".join(p) or "root" for p, _ in commands()]
)
def test_help_at_80_columns(path, cmd):
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    for tag in ("<bool>", "<str>", "<int", "<float", "<path>", "<list", "range]", "x>="):
        assert tag not in text, (tag, path)
    assert "…" not in text  # no default or value cut
    assert max(len(line) for line in text.splitlines()) <= 80
    lines = [line.strip(" │") for line in text.splitlines()]
    for example in re.findall(r"^\s*(liquidroute .+)$", cmd.help or "", re.M):
        assert example.strip() in lines, ("example wrapped", example)  # one line, whole
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage
    for param in getattr(cmd, "params", []):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            assert param.metavar and param.metavar.isupper() and param.metavar in usage
        # every help string survives whole: no `<VENUE>` or `[binance]` eaten as markup
        assert squash(param.help or "") in squash(text), (path, param.name)


def test_usage_metavars():
    quote = runner.invoke(app, ["quote", "--help"]).stdout
    assert "quote [OPTIONS] SYMBOL SIDE AMOUNT" in quote
    backtest = runner.invoke(app, ["backtest", "--help"]).stdout
    assert "backtest [OPTIONS] FILES..." in backtest
    execute = runner.invoke(app, ["execute", "--help"], env={"COLUMNS": "200"}).stdout
    assert "LIQUIDROUTE_{VENUE}_API_KEY" in execute


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"liquidroute {version('liquidroute')}"


def test_sample_help_says_what_it_holds():
    text = squash(runner.invoke(app, ["quote", "--help"]).stdout)
    for words in ("binance,bybitandokx", "BTC/USDT:USDTperpetual", "ETH/USDT", "derived"):
        assert words in text


def help_examples() -> list[str]:
    """The offline examples in every command's help (`serve` runs until stopped)."""
    out = []
    for _, cmd in commands():
        for example in re.findall(r"^\s*(liquidroute .+)$", getattr(cmd, "help", "") or "", re.M):
            offline = "--sample" in example or "../shared/data" in example
            if offline and " serve " not in example:
                out.append(example.strip())
    return out


@pytest.mark.parametrize("example", help_examples())
def test_offline_help_examples_work(example, tmp_path, monkeypatch):
    from tests.test_docs_examples import ROOT, _args

    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, _args(example), env={"HOME": str(tmp_path)})
    assert result.exit_code == 0, (example, result.output)
