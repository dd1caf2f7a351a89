"""net/records.py: every refusal of an incoming signed record, and nothing stored."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from hainet.agents.spec import parse_spec
from hainet.errors import ValidationError
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import (
    AGENT_PUBLISH,
    AGENT_RATING,
    DOMAINS,
    accept,
    check_record,
    publish_payload,
    record_json,
)
from hainet.store import Store
from hainet.store.ledger import Ledger

SPEC: dict[str, Any] = {
    "name": "shout",
    "purpose": "Write the input word in capital letters.",
    "workflow": [{"id": "say", "kind": "generate", "template": "{input}", "output": "out"}],
    "output": "out",
    "tests": [{"id": "t0", "input": "a", "target": "A"}],
}


@pytest.fixture
def ledger(tmp_path: Any) -> Ledger:
    return Ledger(Store(f"sqlite:///{tmp_path / 'hub.db'}"))


@pytest.fixture
def me() -> Identity:
    return Identity.generate()


def publish(me: Identity, seq: int = 1, **changes: Any) -> SignedRecord:
    spec = parse_spec({**SPEC, "author": me.key_id, **changes})
    return SignedRecord.create(me, AGENT_PUBLISH, publish_payload(spec), seq)


def raw(rec: SignedRecord, **changes: Any) -> str:
    return json.dumps(rec.model_dump(mode="json") | changes)


def refused(data: str | bytes, ledger: Ledger, match: str, **kw: Any) -> None:
    with pytest.raises(ValidationError, match=match):
        check_record(data, ledger, **kw)


def test_a_valid_publish_passes_and_its_seq_is_claimed(me: Identity, ledger: Ledger) -> None:
    rec = publish(me)
    checked = check_record(record_json(rec), ledger, domain=AGENT_PUBLISH)
    assert checked.spec is not None and checked.spec.author == me.key_id
    assert checked.subject == "shout" and json.loads(checked.spec_bytes())["id"] == checked.spec.id
    assert ledger.highest(me.key_id, AGENT_PUBLISH, "shout") is None  # check stores nothing
    accept(checked, ledger)
    assert ledger.highest(me.key_id, AGENT_PUBLISH, "shout") == 1


def test_replayed_and_older_seq_are_refused(me: Identity, ledger: Ledger) -> None:
    accept(check_record(record_json(publish(me, 5)), ledger), ledger)
    refused(record_json(publish(me, 5)), ledger, "replayed or older")
    refused(record_json(publish(me, 4, version="1.0.1")), ledger, "replayed or older")
    # The claim itself is atomic: a racing record that passed the read loses.
    late = check_record(record_json(publish(me, 6, version="1.0.2")), ledger)
    accept(check_record(record_json(publish(me, 7, version="1.0.3")), ledger), ledger)
    with pytest.raises(ValidationError, match="not above the highest stored"):
        accept(late, ledger)
    # Another subject (name) or another signer has its own counter.
    other = Identity.generate()
    check_record(record_json(publish(other, 1)), ledger)
    check_record(record_json(publish(me, 1, name="whisper")), ledger)


def test_oversize_is_refused_before_parsing(me: Identity, ledger: Ledger) -> None:
    cap = DOMAINS[AGENT_RATING].max_bytes
    refused(b"{" * (cap + 1), ledger, "over the limit", domain=AGENT_RATING)
    big = b'{"x": "' + b"a" * (DOMAINS[AGENT_PUBLISH].max_bytes) + b'"}'
    refused(big, ledger, "over the limit")


def test_depth_nan_duplicate_keys_and_unknown_fields(me: Identity, ledger: Ledger) -> None:
    refused("[" * 100 + "]" * 100, ledger, "nested deeper")
    good = raw(publish(me))
    refused(good.replace('"seq": 1', '"seq": NaN'), ledger, "NaN|not finite|infinit")
    refused(good[:-1] + ', "seq": 2}', ledger, "appears twice")
    refused(raw(publish(me), extra=1), ledger, "unknown field .extra.")
    refused("[1]", ledger, "a JSON object")
    refused("{not json", ledger, "not valid JSON")


def test_bad_signature_and_key_mismatch(me: Identity, ledger: Ledger) -> None:
    rec = publish(me)
    refused(raw(rec, seq=2), ledger, "bad signature")
    refused(raw(rec, signature="00" * 64), ledger, "bad signature")
    refused(raw(rec, signature="zz"), ledger, "not hex")
    other = Identity.generate()
    refused(raw(rec, public_key=other.public_key_bytes().hex()), ledger, "key id does not match")
    refused(raw(rec, domain="agent.unknown"), ledger, "unknown domain")
    refused(record_json(rec), ledger, "expected a agent.rating", domain=AGENT_RATING)


def test_content_hash_and_author(me: Identity, ledger: Ledger) -> None:
    spec = parse_spec({**SPEC, "author": me.key_id}).model_dump(mode="json")
    tampered = {**spec, "purpose": "Something else entirely."}
    rec = SignedRecord.create(me, AGENT_PUBLISH, {"spec": tampered}, 1)
    refused(record_json(rec), ledger, "content hash mismatch")
    no_id = {k: v for k, v in spec.items() if k != "id"}
    refused(
        record_json(SignedRecord.create(me, AGENT_PUBLISH, {"spec": no_id}, 1)),
        ledger,
        "carry its id",
    )
    someone = Identity.generate()
    claims_other = parse_spec({**SPEC, "author": someone.key_id})
    rec = SignedRecord.create(me, AGENT_PUBLISH, publish_payload(claims_other), 1)
    refused(record_json(rec), ledger, "is not the signer")
    anonymous = parse_spec(SPEC)
    rec = SignedRecord.create(me, AGENT_PUBLISH, publish_payload(anonymous), 1)
    refused(record_json(rec), ledger, r"author \(nobody\)")
    rec = SignedRecord.create(me, AGENT_PUBLISH, {"spec": spec, "more": 1}, 1)
    refused(record_json(rec), ledger, "exactly")


def test_expiry(me: Identity, ledger: Ledger) -> None:
    now = time.time()

    def rating(**payload: Any) -> str:
        body = {"agent_id": "ab" * 32, "stars": 4, "text": "", "rating_signature": ""} | payload
        return record_json(SignedRecord.create(me, AGENT_RATING, body, 1))

    assert check_record(rating(expires_at=int(now) + 3600), ledger).subject == "ab" * 32
    refused(rating(expires_at=int(now) - 1), ledger, "expired at")
    refused(rating(), ledger, "expires_at must be")
    refused(rating(expires_at=int(now) + 10_000 * 86_400), ledger, "days ahead")
    refused(rating(expires_at=1.5), ledger, "expires_at must be")
    spec = parse_spec({**SPEC, "author": me.key_id}).model_dump(mode="json")
    rec = SignedRecord.create(me, AGENT_PUBLISH, {"spec": spec, "expires_at": int(now) + 60}, 1)
    refused(record_json(rec), ledger, "do not expire")
