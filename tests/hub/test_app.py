"""The hub's HTTP API against a real uvicorn server on 127.0.0.1 (mock gate model)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import httpx

from hainet.agents.marketplace import RATING_DOMAIN, rating_payload
from hainet.agents.spec import parse_spec
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import AGENT_PUBLISH, AGENT_RATING, publish_payload, record_json
from tests.hub.conftest import HubUnderTest
from tests.hub.servers import SHOUT, wait_for

_seq = iter(range(1, 10**6))


def signed(me: Identity, seq: int | None = None, **changes: Any) -> bytes:
    spec = parse_spec({**SHOUT, "author": me.key_id, **changes})
    rec = SignedRecord.create(me, AGENT_PUBLISH, publish_payload(spec), seq or next(_seq))
    return record_json(rec).encode()


def post(url: str, body: bytes, path: str = "/v1/agents", **kw: Any) -> httpx.Response:
    return httpx.post(url + path, content=body, headers={"content-type": "application/json"}, **kw)


def listed(h: HubUnderTest, agent_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        item = httpx.get(f"{h.url}/v1/agents/{agent_id}/status").json()
        return item if item["state"] != "pending" else None

    return wait_for(done)


def test_well_known_is_signed_by_the_hubs_own_key(hub_server: HubUnderTest) -> None:
    data = httpx.get(hub_server.url + "/.well-known/hainet-hub").json()
    rec = SignedRecord.model_validate(data)
    rec.verify()
    assert rec.domain == "hub.hello" and rec.key_id == hub_server.hub.identity.key_id
    assert rec.payload["api_version"] == "v1" and "/v1/agents" in rec.payload["endpoints"]


def test_publish_returns_at_once_then_the_hubs_gate_lists_it(hub_server: HubUnderTest) -> None:
    me = Identity.generate()
    hub_server.gate_open.clear()
    resp = post(hub_server.url, signed(me))
    assert resp.status_code == 202, resp.text
    agent_id = resp.json()["id"]
    assert resp.json()["state"] == "pending"
    status = httpx.get(f"{hub_server.url}/v1/agents/{agent_id}/status").json()
    assert status["state"] == "pending" and status["author"] == me.key_id
    assert httpx.get(hub_server.url + "/v1/agents").json()["items"] == []  # not yet listed
    hub_server.gate_open.set()
    item = listed(hub_server, agent_id)
    assert item["state"] == "listed" and item["success_rate"] == 1.0
    body = httpx.get(f"{hub_server.url}/v1/agents/{agent_id}").content
    spec = parse_spec(json.loads(body))
    assert spec.id == agent_id  # the exact bytes hash to the id
    checks = httpx.get(f"{hub_server.url}/v1/agents/{agent_id}/validations").json()
    assert checks["hub"] == hub_server.hub.identity.key_id
    assert [(v["model"], v["passed"], v["total"]) for v in checks["items"]] == [("upper", 5, 5)]
    record = httpx.get(f"{hub_server.url}/v1/agents/{agent_id}/record").content
    SignedRecord.model_validate_json(record).verify()
    listing = httpx.get(hub_server.url + "/v1/agents").json()
    assert listing["metadata"] == {"next_cursor": None, "count": 1}
    assert listing["items"][0]["id"] == agent_id
    hits = httpx.get(hub_server.url + "/v1/agents", params={"q": "capital letters"}).json()
    assert [h["id"] for h in hits["items"]] == [agent_id] and hits["items"][0]["rank"] > 0


def test_the_gate_refuses_with_its_measured_rate(hub_server: HubUnderTest) -> None:
    me = Identity.generate()
    tests = [{"id": "t0", "input": "a", "target": "A"}, {"id": "t1", "input": "b", "target": "x"}]
    agent_id = post(hub_server.url, signed(me, tests=tests)).json()["id"]
    item = listed(hub_server, agent_id)
    assert item["state"] == "refused" and item["success_rate"] == 0.5
    assert "not above the threshold" in item["message"]
    assert httpx.get(hub_server.url + "/v1/agents").json()["items"] == []
    refused = httpx.get(hub_server.url + "/v1/agents", params={"state": "refused"}).json()
    assert [i["id"] for i in refused["items"]] == [agent_id]


def test_pagination_versions_and_lineage(hub_server: HubUnderTest) -> None:
    me = Identity.generate()
    first = post(hub_server.url, signed(me)).json()["id"]
    second = post(hub_server.url, signed(me, version="1.1.0", lineage=[first])).json()["id"]
    third = post(hub_server.url, signed(me, name="yell")).json()["id"]
    for agent_id in (first, second, third):
        assert listed(hub_server, agent_id)["state"] == "listed"
    page = httpx.get(hub_server.url + "/v1/agents", params={"limit": 2}).json()
    assert page["metadata"]["count"] == 2 and page["metadata"]["next_cursor"]
    rest = httpx.get(
        hub_server.url + "/v1/agents",
        params={"limit": 2, "cursor": page["metadata"]["next_cursor"]},
    ).json()
    assert rest["metadata"] == {"next_cursor": None, "count": 1}
    seen = [i["id"] for i in page["items"] + rest["items"]]
    assert sorted(seen) == sorted([first, second, third])
    versions = httpx.get(hub_server.url + "/v1/names/shout/versions").json()["items"]
    assert [(v["version"], v["lineage"]) for v in versions] == [("1.0.0", []), ("1.1.0", [first])]
    bad = httpx.get(hub_server.url + "/v1/agents", params={"cursor": "nonsense"})
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]


def test_ratings_are_signed_records(hub_server: HubUnderTest) -> None:
    author, fan = Identity.generate(), Identity.generate()
    agent_id = post(hub_server.url, signed(author)).json()["id"]
    assert listed(hub_server, agent_id)["state"] == "listed"

    def rating(stars: int, seq: int, expires: int = int(time.time()) + 3600) -> bytes:
        inner = fan.sign(RATING_DOMAIN, rating_payload(agent_id, fan.key_id, stars, "good"))
        payload = {"agent_id": agent_id, "stars": stars, "text": "good"}
        payload |= {"rating_signature": inner.hex(), "expires_at": expires}
        return record_json(SignedRecord.create(fan, AGENT_RATING, payload, seq)).encode()

    path = f"/v1/agents/{agent_id}/ratings"
    resp = post(hub_server.url, rating(4, 1), path)
    assert resp.status_code == 201, resp.text
    assert [r["stars"] for r in httpx.get(hub_server.url + path).json()] == [4]
    again = post(hub_server.url, rating(5, 2), path)
    assert again.status_code == 409 and "already rated" in again.json()["detail"]
    expired = post(hub_server.url, rating(5, 3, expires=1), path)
    assert expired.status_code == 400 and "expired" in expired.json()["detail"]
    elsewhere = post(hub_server.url, rating(4, 9), "/v1/agents/" + "1" * 64 + "/ratings")
    assert (
        elsewhere.status_code == 400 and "not the agent of this URL" in elsewhere.json()["detail"]
    )


def test_the_checked_in_openapi_document_is_current(hub_server: HubUnderTest) -> None:
    from tests.hub.openapi import OPENAPI_FILE, current_openapi

    served = httpx.get(hub_server.url + "/openapi.json").json()
    assert served == current_openapi()
    checked_in = json.loads(OPENAPI_FILE.read_text())
    assert checked_in == served, "regenerate: python -m tests.hub.openapi"
    digest = hashlib.sha256(OPENAPI_FILE.read_bytes()).hexdigest()
    assert digest  # the file exists and is read whole


def test_concurrent_searches_while_agents_are_listed(hub_server: HubUnderTest) -> None:
    from concurrent.futures import ThreadPoolExecutor

    me = Identity.generate()
    ids = [post(hub_server.url, signed(me, name=f"shout{i}")).json()["id"] for i in range(4)]

    def search(_: int) -> int:
        resp = httpx.get(hub_server.url + "/v1/agents", params={"q": "capital letters"})
        return resp.status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(search, range(60)))
    assert set(codes) == {200}
    for agent_id in ids:
        assert listed(hub_server, agent_id)["state"] == "listed"
    hits = httpx.get(hub_server.url + "/v1/agents", params={"q": "capital letters"}).json()
    assert sorted(h["id"] for h in hits["items"]) == sorted(ids)
