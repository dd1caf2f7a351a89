"""The README's flow on the bundled model: a hub started here gates a pushed example
agent in its own sandbox on its own model and lists it; another home searches for it
(the bundled MiniLM), pulls it, rates it and opens its pages."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote_plus

import httpx
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
        # The hub's own embedding search (the bundled MiniLM), as the README shows it.
        query = "pull name, age and city out of text"
        res = hainet(reader, "agents", "search", query, "--hub", url, "--json")
        assert res.exit_code == 0 and json.loads(res.output)[0]["name"] == "json-extractor"
        res = hainet(reader, "agents", "rate", "json-extractor", "--stars", "5", "--hub", url)
        assert res.exit_code == 0, res.output
        page = httpx.get(url + "/?q=" + quote_plus(query)).text
        assert "json-extractor" in page
        agent_id = json.loads(hainet(reader, "agents", "show", "json-extractor", "--json").output)
        html = httpx.get(f"{url}/agents/{agent_id['agent']['id']}").text
        assert "gemma-3-270m" in html and 'class="state-listed"' in html
