"""HubClient checks what a hub serves: a lying hub is refused before anything is used."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from hainet.agents.spec import parse_spec
from hainet.errors import ValidationError
from hainet.hub.client import HubClient, HubError
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import AGENT_PUBLISH, publish_payload, record_json
from tests.hub.servers import SHOUT

ME = Identity.generate()
SPEC = parse_spec({**SHOUT, "author": ME.key_id})
RECORD = record_json(SignedRecord.create(ME, AGENT_PUBLISH, publish_payload(SPEC), 1))
SPEC_BYTES = json.dumps(SPEC.model_dump(mode="json")).encode()


def hub(record: str = RECORD, spec: bytes = SPEC_BYTES, status: int = 200) -> HubClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if status != 200:
            return httpx.Response(status, json={"detail": "down for maintenance"})
        if request.url.path.endswith("/record"):
            return httpx.Response(200, content=record.encode())
        return httpx.Response(200, content=spec)

    return HubClient("http://hub.test", transport=httpx.MockTransport(handle))


def test_an_honest_hub_is_believed() -> None:
    pulled = hub().pull(SPEC.id)
    assert pulled.spec.id == SPEC.id and pulled.signer == ME.key_id


@pytest.mark.parametrize(
    ("record", "spec", "why"),
    [
        (
            RECORD,
            json.dumps({**SPEC.model_dump(mode="json"), "purpose": "x"}).encode(),
            "content hash",
        ),
        (RECORD.replace('"seq":1', '"seq":2'), SPEC_BYTES, "bad signature"),
        (RECORD, b'{"a": NaN}', "NaN|finite"),
    ],
)
def test_a_lying_hub_is_refused(record: str, spec: bytes, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        hub(record, spec).pull(SPEC.id)


def test_another_agent_than_asked_for_is_refused() -> None:
    other = parse_spec({**SHOUT, "author": ME.key_id, "version": "2.0.0"})
    with pytest.raises(ValidationError, match="another agent"):
        hub().pull(other.id)


def test_hub_errors_are_one_line_naming_the_hub() -> None:
    with pytest.raises(
        HubError, match=r"^hub http://hub.test: GET /v1/agents/\w+/record: 503 down"
    ):
        hub(status=503).pull(SPEC.id)
    with pytest.raises(HubError, match="not an http"):
        HubClient("ftp://x")


def test_push_refuses_a_spec_of_another_author() -> None:
    with pytest.raises(ValidationError, match="not your key"):
        hub().push(SPEC, Identity.generate())


def _unused(*_: Any) -> None: ...
