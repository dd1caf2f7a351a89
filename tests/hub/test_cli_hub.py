"""``hainet agents push / pull / search --hub`` and ``hainet hub serve``, against real
servers on 127.0.0.1; three homes are three users (the hub, an author, a reader)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from hainet.agents.marketplace import Marketplace
from hainet.agents.spec import parse_spec
from hainet.cli import app
from hainet.net.identity import Identity, SignedRecord
from hainet.store import AgentStore, Store
from hainet.store.ledger import Ledger
from tests.hub.conftest import HubUnderTest
from tests.hub.servers import SHOUT, wait_for

cli = CliRunner()


def hainet(home: Path, *args: str) -> Any:
    return cli.invoke(app, ["--home", str(home), *args])


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "shout.yaml"
    path.write_text(yaml.safe_dump(SHOUT))
    return path


def test_push_then_pull_and_search_from_another_home(
    hub_server: HubUnderTest, spec_file: Path, tmp_path: Path
) -> None:
    author, reader = tmp_path / "author", tmp_path / "reader"
    res = hainet(author, "agents", "push", str(spec_file), "--hub", hub_server.url, "--wait", "10")
    assert res.exit_code == 0, res.output
    key = Identity.load_or_create(author).key_id
    assert f"as {key[:12]}: listed, gate success rate 1.000" in res.output
    assert "shout 1.0.0 as your own:" in res.output  # it had no author: now yours
    res = hainet(reader, "agents", "search", "capital letters", "--hub", hub_server.url, "--json")
    assert res.exit_code == 0, res.output
    (hit,) = json.loads(res.output)
    assert hit["name"] == "shout" and hit["author"] == key
    for ref in ("shout", "shout@1.0.0", hit["id"]):
        res = hainet(reader, "agents", "pull", ref, "--hub", hub_server.url)
        assert res.exit_code == 0, res.output
        assert f"signed by {key[:12]}; stored as a draft" in res.output
    with Store(f"sqlite:///{reader / 'hainet.db'}") as store:
        (prov, *_) = Ledger(store).provenance(hit["id"])
        assert prov.hub == hub_server.url and prov.signer == key
        SignedRecord.model_validate_json(prov.record).verify()
    res = hainet(reader, "agents", "show", "shout", "--json")
    assert res.exit_code == 0 and f'"author": "{key}"' in res.output
    args = ("agents", "rate", "shout", "--stars", "5", "--text", "loud", "--hub", hub_server.url)
    res = hainet(reader, *args)
    assert res.exit_code == 0 and "5/5 on" in res.output, res.output
    (rating,) = httpx.get(f"{hub_server.url}/v1/agents/{hit['id']}/ratings").json()
    assert rating["stars"] == 5 and rating["key_id"] == Identity.load_or_create(reader).key_id
    res = hainet(reader, *args)
    assert res.exit_code != 0 and "already rated" in str(res.exception)


def test_a_failed_pull_touches_nothing_local(hub_server: HubUnderTest, tmp_path: Path) -> None:
    reader = tmp_path / "reader"
    res = hainet(reader, "agents", "pull", "nobody", "--hub", hub_server.url)
    assert res.exit_code != 0 and "no listed agent named 'nobody'" in str(res.exception)
    assert not (reader / "hainet.db").exists()


def test_config_hubs_is_the_default_hub_and_network_errors_name_it(
    spec_file: Path, tmp_path: Path
) -> None:
    home = tmp_path / "author"
    home.mkdir()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    (home / "config.toml").write_text(f'hubs = ["{url}"]\n')
    res = hainet(home, "agents", "push", str(spec_file))
    assert res.exit_code != 0
    message = str(res.exception)
    assert message.startswith(f"hub {url}: POST /v1/agents failed") and "\n" not in message
    res = hainet(tmp_path / "nohub", "agents", "pull", "shout")
    assert "no hub given" in str(res.exception)


def test_push_refuses_a_spec_claiming_another_author(
    hub_server: HubUnderTest, tmp_path: Path
) -> None:
    path = tmp_path / "theirs.yaml"
    path.write_text(yaml.safe_dump({**SHOUT, "author": Identity.generate().key_id}))
    res = hainet(tmp_path / "me", "agents", "push", str(path), "--hub", hub_server.url)
    assert res.exit_code != 0 and "not your key" in str(res.exception)


def test_hub_serve_listens_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, HAINET_HOME=str(tmp_path / "hub"))
    exe = Path(sys.executable).parent / "hainet"
    cmd = [str(exe), "hub", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/.well-known/hainet-hub"

        def up() -> Any:
            try:
                return httpx.get(url).json()
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                return None

        rec = SignedRecord.model_validate(wait_for(up, timeout=60))
        rec.verify()
        key = Identity.load(tmp_path / "hub" / "hub" / "identity" / "ed25519.key")
        assert rec.key_id == key.key_id
    finally:
        proc.terminate()
        proc.wait(10)


def test_push_keeps_the_authored_spec_it_signed_so_its_id_can_be_shown(
    hub_server: HubUnderTest, spec_file: Path, tmp_path: Path
) -> None:
    author = tmp_path / "author"
    res = hainet(author, "agents", "push", str(spec_file), "--hub", hub_server.url, "--json")
    assert res.exit_code == 0, res.output
    pushed = json.loads(res.output)["id"]
    key = Identity.load_or_create(author).key_id
    res = hainet(author, "agents", "show", pushed[:12], "--json")
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)["agent"]
    original = parse_spec(SHOUT).id
    assert shown["id"] == pushed != original and shown["author"] == key
    assert hainet(author, "agents", "show", original[:12]).exit_code == 0
    with Store(f"sqlite:///{author / 'hainet.db'}") as store:
        assert Marketplace(store).get(pushed).lineage == [original]
        assert {r.status for r in AgentStore(store).list_agents()} == {"draft"}
    res = hainet(author, "agents", "push", pushed[:12], "--hub", hub_server.url)
    assert res.exit_code != 0 and "already pushed" in str(res.exception)  # same id, not a new one
    text = hainet(tmp_path / "second", "agents", "push", str(spec_file), "--hub", hub_server.url)
    other = Identity.load_or_create(tmp_path / "second").key_id
    assert text.exit_code != 0 and f"belongs to key {key[:12]}" in str(text.exception), other
