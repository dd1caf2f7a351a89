"""The root's global options (``--home``, ``--db``) belong to one invocation.

They travel in typer's ``ctx.obj``, not in module state: a later invocation in the
same process, through the root or a sub-app, never sees an earlier one's options
(a hyper CLI test once inherited an earlier test's ``--db``).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hainet.agents.spec import parse_spec
from hainet.cli import agents as agents_cli
from hainet.cli import app
from hainet.config import load_settings
from hainet.store import AgentStore, Store

SPEC = {
    "name": "shout",
    "purpose": "Write the input word in capital letters.",
    "workflow": [{"id": "say", "kind": "generate", "template": "{input}", "output": "out"}],
    "output": "out",
}


def names(result: object) -> list[str]:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return [a["name"] for a in json.loads(result.stdout)]  # type: ignore[attr-defined]


def test_two_invocations_do_not_share_global_options(tmp_path: Path) -> None:
    with Store(load_settings().db_url) as store:  # the default store, in HAINET_HOME
        AgentStore(store).add(parse_spec(SPEC).model_dump(mode="json"))
    other = tmp_path / "other.db"
    cli = CliRunner()

    assert names(cli.invoke(app, ["--db", f"sqlite:///{other}", "agents", "list", "--json"])) == []
    assert other.exists()
    # Same process, no --db: the default store again.  First the earlier bug's path,
    # a sub-app invoked on its own right after a root invocation with --db; then the root.
    assert names(cli.invoke(agents_cli.app, ["list", "--json"])) == ["shout"]
    assert names(cli.invoke(app, ["agents", "list", "--json"])) == ["shout"]


def test_home_given_to_the_root_reaches_the_command(tmp_path: Path) -> None:
    home = tmp_path / "elsewhere"
    cli = CliRunner()
    assert names(cli.invoke(app, ["--home", str(home), "agents", "list", "--json"])) == []
    assert (home / "hainet.db").exists()
    assert not (load_settings().home / "hainet.db").exists()
    # and the next invocation, a sub-app on its own, is back in HAINET_HOME
    assert names(cli.invoke(agents_cli.app, ["list", "--json"])) == []
    assert (load_settings().home / "hainet.db").exists()
