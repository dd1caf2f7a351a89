"""The real flow on the bundled model: a hub started here gates a pushed example agent
in its own sandbox on its own model, lists it, and another home pulls it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hainet.config import load_settings
from hainet.hub.serve import build_app
from tests.hub.servers import running
from tests.hub.test_cli_hub import hainet

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agents" / "json-extractor.yaml"


@pytest.mark.model
def test_an_example_agent_is_listed_after_the_hubs_own_gate(
    hainet_home: Path, tmp_path: Path
) -> None:
    app = build_app(load_settings(home=hainet_home))  # the bundled model is linked in
    author, reader = tmp_path / "author", tmp_path / "reader"
    with running(app) as url:
        res = hainet(author, "agents", "push", str(EXAMPLE), "--hub", url, "--wait", "300")
        assert res.exit_code == 0, res.output
        assert ": listed, gate success rate" in res.output
        res = hainet(reader, "agents", "pull", "json-extractor", "--hub", url)
        assert res.exit_code == 0 and "stored as a draft" in res.output, res.output
