"""``hainet net peers / find agent / find model`` against three real hubs on the DHT."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from hainet.cli import app
from hainet.net.identity import Identity
from tests.hub.networked import (
    DHT_ENV,
    NetHub,
    announced,
    hubs_on_network,
    post_share,
    push,
    share_record,
)

cli = CliRunner()
SHA = "c3" * 32


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[NetHub]]:
    with hubs_on_network(tmp_path_factory.mktemp("net"), 3) as out:
        yield out


@pytest.fixture(autouse=True)
def small_dht(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in DHT_ENV.items():
        monkeypatch.setenv(k, v)


def boot(h: NetHub) -> list[str]:
    return ["--bootstrap", f"{h.dht[0]}:{h.dht[1]}"]


def test_net_peers_lists_the_hubs_dht_nodes(hubs: list[NetHub]) -> None:
    out = cli.invoke(app, ["net", "peers", *boot(hubs[1]), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert {r["key_id"] for r in rows} == {h.hub.identity.key_id for h in hubs}
    assert {(r["host"], r["port"]) for r in rows} == {h.dht for h in hubs}
    table = cli.invoke(app, ["net", "peers", *boot(hubs[1])])
    assert table.exit_code == 0 and "3 peers" in table.output


def test_net_find_agent_by_name_and_id_and_model_through_a_hubs_hello(
    hubs: list[NetHub],
) -> None:
    a, b, c = hubs
    agent_id = push(c, Identity.generate(), name="finder")
    announced(c, "name:finder")
    for ref in ("finder", agent_id):
        out = cli.invoke(app, ["net", "find", "agent", ref, *boot(a), "--json"])
        assert out.exit_code == 0, out.output
        (row,) = json.loads(out.output)
        assert row == {
            "key": f"agent:{agent_id}" if ref == agent_id else "name:finder",
            "hub": c.hub.identity.key_id,
            "url": c.url,
            "spec_id": agent_id,
        }
    missing = cli.invoke(app, ["net", "find", "agent", "nobody-has-this", *boot(a)])
    assert missing.exit_code == 1 and "no hub on the network" in missing.output

    keys = [Identity.generate() for _ in range(5)]
    for k, h in zip(keys, [a, b, c, a, b], strict=True):
        post_share(h, share_record(k, SHA, name="found-model"))
    for h in hubs:
        announced(h, f"model:{SHA}")
    # No --bootstrap: join through the DHT address in a hub's signed hello.
    out = cli.invoke(app, ["net", "find", "model", SHA, "--hub", b.url, "--json"])
    assert out.exit_code == 0, out.output
    found = json.loads(out.output)
    assert {p["url"] for p in found["pointers"]} == {h.url for h in hubs}
    (model,) = found["models"]
    assert model["signers"] == 5 and model["network_tested"] and found["dropped"] == []
    text = cli.invoke(app, ["net", "find", "model", SHA, "--hub", b.url])
    assert text.exit_code == 0 and "network-tested" in text.output and "found-model" in text.output


def test_net_without_a_way_in_says_what_to_give() -> None:
    out = cli.invoke(app, ["net", "peers"])
    assert out.exit_code != 0
    assert "--bootstrap" in str(out.exception) or "--bootstrap" in out.output
    bad = cli.invoke(app, ["net", "peers", "--bootstrap", "nohostport"])
    assert bad.exit_code != 0 and "HOST:PORT" in str(bad.exception)
