"""Issue 14's list of bad input and abuse, each against a real hub on 127.0.0.1:
each is a 4xx naming the problem, and nothing is stored (no publication, no seq)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from hainet.agents.spec import parse_spec
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import AGENT_PUBLISH, publish_payload, record_json
from hainet.store.ledger import Ledger
from tests.hub.conftest import HubUnderTest
from tests.hub.servers import SHOUT

ME = Identity.generate()
OTHER = Identity.generate()


def record(signer: Identity = ME, seq: int = 5, **spec_changes: Any) -> dict[str, Any]:
    spec = parse_spec({**SHOUT, "author": signer.key_id, **spec_changes})
    rec = SignedRecord.create(signer, AGENT_PUBLISH, publish_payload(spec), seq)
    return json.loads(record_json(rec))


def signed_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(record_json(SignedRecord.create(ME, AGENT_PUBLISH, payload, 5)))


GOOD = record()
TAMPERED_SPEC = {**GOOD["payload"]["spec"], "purpose": "Something else."}
NO_SIG = {k: v for k, v in GOOD.items() if k != "signature"}
DEEP = "[" * 100 + "]" * 100
TEXT = json.dumps(GOOD)

CASES: list[tuple[str, str | bytes, int, str]] = [
    ("bad signature", json.dumps(GOOD | {"signature": "ab" * 64}), 400, "bad signature"),
    ("missing signature", json.dumps(NO_SIG), 400, "signature: Field required"),
    (
        "key id not the key's",
        json.dumps(GOOD | {"public_key": OTHER.public_key_bytes().hex()}),
        400,
        "key id does not match",
    ),
    (
        "content hash mismatch",
        json.dumps(signed_payload({"spec": TAMPERED_SPEC})),
        400,
        "content hash mismatch",
    ),
    (
        "spec claims another author",
        json.dumps(record(ME, author=OTHER.key_id)),
        400,
        "is not the signer",
    ),
    (
        "spec without an author",
        json.dumps(signed_payload(publish_payload(parse_spec(SHOUT)))),
        400,
        "author (nobody)",
    ),
    ("nested past the depth limit", DEEP, 400, "nested deeper than 48"),
    ("NaN", TEXT.replace('"seq": 5', '"seq": NaN'), 400, "NaN"),
    ("Infinity", TEXT.replace('"seq": 5', '"seq": Infinity'), 400, "finite|Infinity|inf"),
    ("duplicate key", TEXT[:-1] + ', "seq": 6}', 400, "appears twice"),
    ("unknown field", json.dumps(GOOD | {"is_admin": True}), 400, "unknown field 'is_admin'"),
    ("unknown domain", json.dumps(GOOD | {"domain": "agent.delete"}), 400, "unknown domain"),
    ("not JSON", b"\xff\xfe not json", 400, "not UTF-8|not valid JSON"),
    ("oversize (declared)", b" " * (1100 * 1024), 413, "request body too large"),
]


@pytest.mark.parametrize(("why", "body", "status", "detail"), CASES, ids=[c[0] for c in CASES])
def test_each_bad_record_is_refused_and_nothing_is_stored(
    hub_server: HubUnderTest, why: str, body: str | bytes, status: int, detail: str
) -> None:
    data = body.encode() if isinstance(body, str) else body
    resp = httpx.post(hub_server.url + "/v1/agents", content=data)
    assert resp.status_code == status, (why, resp.text)
    message = resp.json()["detail"]
    assert any(d in message for d in detail.split("|")), (why, message)
    ledger = Ledger(hub_server.store)
    assert ledger.count() == 0
    assert ledger.highest(ME.key_id, AGENT_PUBLISH, "shout") is None
    assert hub_server.hub.market.agents.list_agents() == []


def test_replayed_and_older_seq_are_refused(hub_server: HubUnderTest) -> None:
    assert httpx.post(hub_server.url + "/v1/agents", content=json.dumps(GOOD)).status_code == 202
    for body in (GOOD, record(seq=4, version="1.0.1")):
        resp = httpx.post(hub_server.url + "/v1/agents", content=json.dumps(body))
        assert resp.status_code == 400 and "replayed or older" in resp.json()["detail"]
    again = httpx.post(hub_server.url + "/v1/agents", content=json.dumps(record(seq=6)))
    assert again.status_code == 409 and "already pushed" in again.json()["detail"]
    changed = record(seq=7, purpose="Shout the input word.")
    again = httpx.post(hub_server.url + "/v1/agents", content=json.dumps(changed))
    assert again.status_code == 409 and "is already on this hub" in again.json()["detail"]
    assert Ledger(hub_server.store).count() == 1
    assert Ledger(hub_server.store).highest(ME.key_id, AGENT_PUBLISH, "shout") == 5


def test_oversize_streamed_without_length(hub_server: HubUnderTest) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b" " * 65536

    resp = httpx.post(hub_server.url + "/v1/agents", content=chunks())
    assert resp.status_code == 413 and "sent" in resp.json()["detail"]
    assert Ledger(hub_server.store).count() == 0


def test_unknown_agent_ids(hub_server: HubUnderTest) -> None:
    for path in ("", "/record", "/status", "/ratings"):
        resp = httpx.get(f"{hub_server.url}/v1/agents/{'e' * 64}{path}")
        assert resp.status_code == 404 and "no agent eeeeeeeeeeee" in resp.json()["detail"]
    resp = httpx.get(f"{hub_server.url}/v1/agents/../../etc/passwd")
    assert resp.status_code == 404
    resp = httpx.get(f"{hub_server.url}/v1/agents/NOTHEX")
    assert resp.status_code == 400 and "not an agent id" in resp.json()["detail"]


@pytest.mark.parametrize("hub_server", [{"per_key": 2}], indirect=True)
def test_a_publish_flood_from_one_key_is_429_with_retry_after(hub_server: HubUnderTest) -> None:
    for i, v in enumerate(("1.0.0", "1.0.1", "1.0.2")):
        resp = httpx.post(
            hub_server.url + "/v1/agents", content=json.dumps(record(seq=10 + i, version=v))
        )
        assert resp.status_code == (202 if i < 2 else 429), resp.text
    assert int(resp.headers["retry-after"]) >= 1 and f"key {ME.key_id[:12]}" in resp.text
    assert Ledger(hub_server.store).count() == 2
    assert Ledger(hub_server.store).highest(ME.key_id, AGENT_PUBLISH, "shout") == 11
    fresh = httpx.post(hub_server.url + "/v1/agents", content=json.dumps(record(OTHER, name="x")))
    assert fresh.status_code == 202  # another key has its own budget


@pytest.mark.parametrize("hub_server", [{"per_address": 3}], indirect=True)
def test_a_flood_from_one_address_is_429_with_retry_after(hub_server: HubUnderTest) -> None:
    codes = [httpx.post(hub_server.url + "/v1/agents", content=b"{}").status_code for _ in range(3)]
    resp = httpx.post(hub_server.url + "/v1/agents", content=json.dumps(GOOD))
    assert codes == [400, 400, 400] and resp.status_code == 429
    assert "address 127.0.0.1" in resp.json()["detail"] and int(resp.headers["retry-after"]) >= 1
    assert Ledger(hub_server.store).count() == 0


def test_a_name_belongs_to_the_first_key_that_published_it(hub_server: HubUnderTest) -> None:
    hub_server.gate_open.clear()  # refused before the gate: nothing waits on it
    assert httpx.post(hub_server.url + "/v1/agents", content=json.dumps(GOOD)).status_code == 202
    theirs = record(OTHER, seq=9, version="2.0.0", purpose="Not shouting at all.")
    resp = httpx.post(hub_server.url + "/v1/agents", content=json.dumps(theirs))
    assert resp.status_code == 409, resp.text
    assert f"belongs to key {ME.key_id[:12]}" in resp.json()["detail"]
    ledger = Ledger(hub_server.store)
    assert ledger.count() == 1 and ledger.owner("shout") == ME.key_id
    assert ledger.highest(OTHER.key_id, AGENT_PUBLISH, "shout") is None
    mine = httpx.post(
        hub_server.url + "/v1/agents", content=json.dumps(record(seq=6, version="1.1.0"))
    )
    assert mine.status_code == 202 and ledger.count() == 2  # the owner publishes new versions
    other_name = record(OTHER, seq=9, name="whisper")
    assert (
        httpx.post(hub_server.url + "/v1/agents", content=json.dumps(other_name)).status_code == 202
    )
    assert ledger.owner("whisper") == OTHER.key_id
    hub_server.gate_open.set()
