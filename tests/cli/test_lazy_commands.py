"""The CLI imports a command's module only when that command runs (issue 17, start-up)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
import typer.testing

import hainet
from hainet.cli import COMMANDS, app, load_command

HEAVY = ["matplotlib", "hainet.report", "hainet.agents", "hainet.hyper", "hainet.hub", "torch"]


def _imported_after(argv: list[str]) -> list[str]:
    code = (
        "import json, sys\n"
        "from hainet.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {HEAVY + ['hainet.store', 'sqlalchemy']!r}"
        " if m in sys.modules]), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


def test_top_level_help_imports_no_command_module() -> None:
    assert _imported_after(["--help"]) == []


def test_bench_help_imports_neither_the_report_nor_the_agents() -> None:
    loaded = _imported_after(["bench", "--help"])
    assert not set(loaded) & set(HEAVY), loaded


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_help_line_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert command.get_short_help_str(limit=200) == COMMANDS[name].help


def test_help_lists_every_command_in_order() -> None:
    result = typer.testing.CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    positions = [result.output.find(f"│ {name} ") for name in COMMANDS]
    assert -1 not in positions and positions == sorted(positions)


def test_a_mistyped_command_is_answered_with_the_nearest_one() -> None:
    result = typer.testing.CliRunner().invoke(app, ["bnech"])
    assert result.exit_code == 2
    assert "Did you mean 'bench'?" in result.output


def test_every_exported_name_resolves_and_select_stays_the_function() -> None:
    for name in hainet.__all__:
        assert getattr(hainet, name) is not None, name
    import hainet.select as _  # binds nothing over the function

    assert callable(hainet.select) and not isinstance(hainet.select, type(hainet))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = hainet.nope  # type: ignore[attr-defined]
