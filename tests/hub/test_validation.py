"""Community validation between real hubs in this process: 12 uvicorn servers on
127.0.0.1, each on the DHT (ksize 4), on the mock gate model that answers in
capitals.  An agent pushed to one is validated by 10 of the
11 others; the checks a
validator makes before it runs anything refuse what they should."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hainet.hub.validation import aggregate_from_dht
from hainet.net.dht import target_id
from hainet.net.validation import epoch_of, validation_target, validator_set
from tests.hub.netserve import NetHub, network
from tests.hub.servers import SHOUT, upper_runner
from tests.hub.test_cli_hub import hainet


def wait_status(
    url: str, agent_id: str, want: set[str], count: int = 10, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        resp = httpx.get(f"{url}/v1/agents/{agent_id}/network", timeout=10)
        if resp.status_code == 200:
            last = resp.json()
            verdict = last["verdict"]
            if verdict and verdict["status"] in want and len(verdict["validations"]) >= count:
                return dict(last)
        time.sleep(0.1)
    raise AssertionError(f"no {want} verdict in {timeout} s; last: {last}")


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with network(tmp_path_factory.mktemp("net"), 12, upper_runner()) as hubs:
        yield hubs


@pytest.mark.slow
def test_an_agent_pushed_to_one_hub_is_validated_by_the_ten_others(
    hubs: list[NetHub], tmp_path: Path
) -> None:
    origin, author = hubs[0], tmp_path / "author"
    spec_file = tmp_path / "shout.yaml"
    spec_file.write_text(yaml.safe_dump(SHOUT))
    res = hainet(author, "agents", "push", str(spec_file), "--hub", origin.url, "--json")
    assert res.exit_code == 0, res.output
    agent_id = json.loads(res.output)["id"]
    out = wait_status(origin.url, agent_id, {"validated"})
    verdict = out["verdict"]
    others = {h.key_id for h in hubs[1:]}
    # 10 of the 11 other hubs: the origin is left out, whoever is closest is in.
    assert len(verdict["validators"]) == 10 and set(verdict["validators"]) < others
    assert len(verdict["validations"]) == 10 and verdict["flagged"] == []
    assert verdict["median"] == 1.0 and verdict["mad"] == 0.0
    assert all(r == "accepted" for r in verdict["requests"].values())
    assert {v["model_name"] for v in verdict["validations"]} == {"upper"}
    # Each validator serves its own signed record of it.
    own = httpx.get(f"{hubs[3].url}/v1/agents/{agent_id}/network").json()["own"]
    assert own["domain"] == "agent.validation" and own["key_id"] == hubs[3].key_id
    assert own["payload"]["origin"] == origin.key_id
    # Anyone recomputes the set and gets the same verdict from the DHT alone.
    epoch = verdict["epoch"]
    again = hubs[5].call(
        aggregate_from_dht(hubs[5].app.state.dht, agent_id, origin=origin.key_id, epoch=epoch)
    )
    assert again.status == "validated" and again.validators == tuple(verdict["validators"])
    assert len(again.counted) == 10
    # The author's `agents show --hub` shows it.
    res = hainet(author, "agents", "show", agent_id[:12], "--hub", origin.url, "--json")
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)["network"]
    assert shown["status"] == "validated" and len(shown["validations"]) == 10
    res = hainet(author, "agents", "show", agent_id[:12], "--hub", origin.url)
    assert "network (" in res.output and ": validated: 10 of 10 validators" in res.output
    res = hainet(author, "agents", "show", agent_id[:12], "--hub", hubs[4].url)
    assert "not announced by this hub" in res.output  # a validator is not the origin
    # The agent's page shows it.
    page = httpx.get(f"{origin.url}/agents/{agent_id}").text
    assert 'id="network"' in page and "validated" in page and "10 of 10" in page


def test_the_target_is_the_dhts_own_target_of_spec_id_and_epoch() -> None:
    spec_id = "ab" * 32
    assert validation_target(spec_id, 5) == target_id(f"{spec_id}:5".encode())


@pytest.mark.slow
def test_a_validator_refuses_requests_it_should_not_run(hubs: list[NetHub]) -> None:
    origin, other = hubs[0], hubs[1]
    spec_id = "cd" * 32
    base = {"agent_id": spec_id, "origin": origin.key_id, "source": origin.url}
    base["epoch"] = epoch_of()

    def post(hub: NetHub, body: Any) -> httpx.Response:
        return httpx.post(f"{hub.url}/v1/validations", json=body, timeout=30)

    # Shape and size first.
    assert post(other, base | {"extra": 1}).status_code == 400
    assert post(other, base | {"epoch": 3}).status_code == 400  # not this epoch
    big = httpx.post(f"{other.url}/v1/validations", content=b"{" + b" " * 9000 + b"}")
    assert big.status_code == 400 and "bytes" in big.json()["detail"]
    # A source URL that is not the one the origin announces: refused, nothing fetched.
    resp = post(other, base | {"source": "http://127.0.0.1:9/elsewhere"})
    assert resp.status_code == 409 and "announces in the DHT" in resp.json()["detail"]
    # The origin does not validate its own.
    assert post(origin, base).status_code == 403
    # A hub outside the version's set refuses; the set decides, not the asker.
    node = other.app.state.dht
    peers = other.call(node.closest(validation_target(spec_id, base["epoch"]), 11))

    members = {
        p.key_id for p in validator_set(peers, spec_id, base["epoch"], exclude=[origin.key_id])
    }
    outsider = next(h for h in hubs[1:] if h.key_id not in members)
    resp = post(outsider, base)
    assert resp.status_code == 403 and "not in the validator set" in resp.json()["detail"]


@pytest.mark.slow
def test_a_validator_rate_limits_each_origin(hubs: list[NetHub]) -> None:
    origin, other = hubs[0], hubs[2]
    body = {"agent_id": "ef" * 32, "origin": origin.key_id, "source": origin.url}
    body["epoch"] = 3  # refused as stale, but only after the origin's budget is counted
    codes = [
        httpx.post(f"{other.url}/v1/validations", json=body, timeout=30).status_code
        for _ in range(40)
    ]
    assert codes[:29] == [400] * 29 and codes[30:] == [429] * 10
