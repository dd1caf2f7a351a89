"""Record domains and the checks every signed record from another peer passes.

Every byte that another hub or user sends enters here before anything is stored.
:func:`check_record` runs, in this order, and the first failure is a
:class:`~hainet.errors.ValidationError` naming it:

1. **size before parse**: the raw bytes against the domain's limit (the largest
   domain's when the domain is not known yet), through :mod:`hainet.inputs`, which
   also refuses nesting past :data:`RECORD_DEPTH`, NaN / Infinity, huge integers
   and a key given twice;
2. **shape**: a :class:`~hainet.net.identity.SignedRecord` (unknown fields refused),
   of a known domain, the size of its payload within that domain's limit;
3. **authenticity**: the key id is the hash of the key, and the signature verifies
   over the envelope (payload, seq, key id, schema version) under the domain;
4. **expiry**: ``payload["expires_at"]`` (unix seconds) must be in the future in
   domains that expire, absent in those that do not (a published version is
   immutable), and no further than the domain's ``max_ttl`` ahead;
5. **content**: per domain (an ``agent.publish`` payload is ``{"spec": ...}``; the
   spec's id must be its content hash and its ``author`` the signer's key id);
6. **seq**: strictly above the highest stored for (signer, domain, subject)
   (:class:`~hainet.store.ledger.Ledger`); :func:`accept` claims it atomically once
   the record's content has been stored.

Domains (``DOMAINS``)::

    agent.publish   {"spec": AgentSpec}                     subject: spec name
    agent.rating    {"agent_id", "stars", "text",
                     "rating_signature", "expires_at"}      subject: agent id
    result.share    {"subject", ..., "expires_at"}          subject: payload subject
    hub.hello       {"subject", ..., "expires_at"}          subject: payload subject
    dht.value       {"key", "value", "expires_at", "pow"}   subject: payload key
    agent.validation {"spec_id", "epoch", "origin",
                     "success_rate", ..., "expires_at"}     subject: spec id

A ``dht.value`` record is one pointer in the DHT (:mod:`hainet.net.dht`): ``value`` a
JSON object, ``pow`` the signer's proof of work (checked by the DHT at its own
difficulty), the whole record small enough that a store request fits in one
rpcudp datagram (8 KiB).

An ``agent.validation`` record is one hub's gate run of another hub's agent
(community validation); its content is read by
:class:`hainet.net.validation.ValidationPayload` (unknown fields refused, the rate
equal to passed/total).  It is at most 4 KiB, so that, wrapped whole in a
``dht.value`` record, it still fits in one datagram.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from hainet.agents.spec import AgentSpec, parse_spec
from hainet.errors import StoreError, ValidationError
from hainet.inputs import Limits, parse_json
from hainet.net.identity import SignedRecord, canonical_bytes
from hainet.store.ledger import Ledger

__all__ = [
    "AGENT_PUBLISH",
    "AGENT_RATING",
    "AGENT_VALIDATION",
    "DHT_VALUE",
    "DOMAINS",
    "HUB_HELLO",
    "MAX_RECORD_BYTES",
    "RECORD_DEPTH",
    "RESULT_SHARE",
    "CheckedRecord",
    "Domain",
    "accept",
    "check_record",
    "publish_payload",
    "record_json",
]

KiB = 1024
AGENT_PUBLISH = "agent.publish"
AGENT_RATING = "agent.rating"
RESULT_SHARE = "result.share"
HUB_HELLO = "hub.hello"
AGENT_VALIDATION = "agent.validation"
DHT_VALUE = "dht.value"
DAY = 86_400
RECORD_DEPTH = 48
"""Deepest nesting of a record: a spec's own limit (hainet.inputs, 64) minus nothing a
real spec needs (the deepest example agent nests 9 levels inside the record)."""


@dataclass(frozen=True)
class Domain:
    """What a record of one domain may be."""

    name: str
    max_bytes: int
    """The whole record's JSON, checked before it is parsed."""
    expires: bool
    """True: ``expires_at`` is required (ratings and results may be superseded);
    False: it is refused (a published version is immutable)."""
    max_ttl: int = 0
    """How far ahead ``expires_at`` may be, in seconds."""


# A record's JSON holds the payload plus about 400 bytes of envelope (two 64-hex
# ids, a 128-hex signature); a spec is at most 1 MiB of canonical JSON (spec.py).
DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain(AGENT_PUBLISH, max_bytes=1024 * KiB + 4 * KiB, expires=False),
        Domain(AGENT_RATING, max_bytes=8 * KiB, expires=True, max_ttl=400 * DAY),
        Domain(RESULT_SHARE, max_bytes=64 * KiB, expires=True, max_ttl=400 * DAY),
        Domain(HUB_HELLO, max_bytes=8 * KiB, expires=True, max_ttl=30 * DAY),
        Domain(AGENT_VALIDATION, max_bytes=4 * KiB, expires=True, max_ttl=31 * DAY),
        # rpcudp refuses a request over 8192 bytes; a store request is the record
        # plus about 70 bytes of msgpack framing, method name and two 20-byte ids.
        Domain(DHT_VALUE, max_bytes=8 * KiB - 256, expires=True, max_ttl=7 * DAY),
    )
}
MAX_RECORD_BYTES = max(d.max_bytes for d in DOMAINS.values())


@dataclass(frozen=True)
class CheckedRecord:
    """A record that passed every check but seq's atomic claim (see :func:`accept`)."""

    record: SignedRecord
    domain: Domain
    subject: str
    spec: AgentSpec | None = None
    """The parsed, verified spec of an ``agent.publish`` record."""

    @property
    def who(self) -> str:
        return f"{self.record.domain} seq {self.record.seq} from {self.record.key_id[:12]}"

    def spec_bytes(self) -> str:
        """The canonical JSON of the spec exactly as signed (what the hub serves)."""
        return canonical_bytes(self.record.payload["spec"]).decode("utf-8")


def publish_payload(spec: AgentSpec) -> dict[str, Any]:
    """The payload of an ``agent.publish`` record of ``spec``."""
    return {"spec": spec.model_dump(mode="json", exclude_none=True)}


def _parse(data: bytes | str, domain: str | None) -> SignedRecord:
    cap = DOMAINS[domain].max_bytes if domain in DOMAINS else MAX_RECORD_BYTES
    limits = Limits(max_bytes=cap, max_depth=RECORD_DEPTH)
    value = parse_json(data, where="record", error=ValidationError, limits=limits)
    if not isinstance(value, dict):
        raise ValidationError(f"record: a JSON object, not {type(value).__name__}")
    try:
        return SignedRecord.model_validate(value)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ValidationError(f"record: unknown field {where!r}") from None
        raise ValidationError(f"record: {where}: {first['msg']}") from None


def _expiry(rec: SignedRecord, domain: Domain, now: float, who: str) -> None:
    expires = rec.payload.get("expires_at")
    if not domain.expires:
        if expires is not None:
            raise ValidationError(f"{who}: {domain.name} records do not expire (no expires_at)")
        return
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise ValidationError(f"{who}: expires_at must be unix seconds (an integer)")
    if expires <= now:
        raise ValidationError(f"{who}: expired at {expires} (now {int(now)})")
    if expires > now + domain.max_ttl:
        raise ValidationError(f"{who}: expires_at is more than {domain.max_ttl // DAY} days ahead")


def _spec(rec: SignedRecord, who: str) -> AgentSpec:
    if set(rec.payload) != {"spec"}:
        raise ValidationError(f"{who}: an agent.publish payload is exactly {{'spec': ...}}")
    data = rec.payload["spec"]
    if not isinstance(data, dict) or not data.get("id"):
        raise ValidationError(f"{who}: the spec must carry its id (its content hash)")
    spec = parse_spec(data, source=who)  # verifies the id against the content
    if spec.author != rec.key_id:
        claimed = spec.author[:12] if spec.author else "nobody"
        raise ValidationError(
            f"{who}: the spec's author ({claimed}) is not the signer; a spec can only be "
            "published by the key it names as author"
        )
    return spec


def _dht_value(rec: SignedRecord, who: str) -> None:
    if set(rec.payload) != {"key", "value", "expires_at", "pow"}:
        raise ValidationError(
            f"{who}: a dht.value payload is exactly {{'key', 'value', 'expires_at', 'pow'}}"
        )
    if not isinstance(rec.payload["value"], dict):
        raise ValidationError(f"{who}: payload.value must be a JSON object")
    pow_nonce = rec.payload["pow"]
    if isinstance(pow_nonce, bool) or not isinstance(pow_nonce, int) or pow_nonce < 0:
        raise ValidationError(f"{who}: payload.pow must be a non-negative integer")


def _subject(rec: SignedRecord, spec: AgentSpec | None, who: str) -> str:
    if spec is not None:
        return spec.name
    keys = {AGENT_RATING: "agent_id", DHT_VALUE: "key", AGENT_VALIDATION: "spec_id"}
    key = keys.get(rec.domain, "subject")
    subject = rec.payload.get(key)
    if not isinstance(subject, str) or not 0 < len(subject) <= 256:
        raise ValidationError(f"{who}: payload.{key} must be a string of 1 to 256 characters")
    return subject


def check_record(
    data: bytes | str,
    ledger: Ledger | None,
    *,
    domain: str | None = None,
    now: float | None = None,
) -> CheckedRecord:
    """Every check of the module docstring but the seq claim; nothing is stored.
    Without a ledger (a client verifying what a hub served) seq is not checked."""
    rec = _parse(data, domain)
    who = f"record {rec.domain} seq {rec.seq} from {rec.key_id[:12]}"
    if rec.domain not in DOMAINS:
        raise ValidationError(f"{who}: unknown domain (known: {', '.join(DOMAINS)})")
    if domain is not None and rec.domain != domain:
        raise ValidationError(f"{who}: expected a {domain} record")
    rule = DOMAINS[rec.domain]
    rec.verify()
    _expiry(rec, rule, time.time() if now is None else now, who)
    spec = _spec(rec, who) if rec.domain == AGENT_PUBLISH else None
    if rec.domain == DHT_VALUE:
        _dht_value(rec, who)
    subject = _subject(rec, spec, who)
    highest = None if ledger is None else ledger.highest(rec.key_id, rec.domain, subject)
    if highest is not None and rec.seq <= highest:
        raise ValidationError(
            f"{who}: seq is not above the highest stored for {subject!r} ({highest}): "
            "replayed or older"
        )
    return CheckedRecord(rec, rule, subject, spec)


def accept(checked: CheckedRecord, ledger: Ledger) -> None:
    """Claim the record's seq atomically (a racing equal seq loses)."""
    rec = checked.record
    try:
        ledger.claim(rec.key_id, rec.domain, checked.subject, rec.seq)
    except StoreError as exc:
        raise ValidationError(str(exc)) from None


def record_json(rec: SignedRecord) -> str:
    """The record as JSON, compact (what a client sends)."""
    return json.dumps(rec.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
