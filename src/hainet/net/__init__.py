"""Identity, signed records and their checks (the DHT, validation by other hubs and
federated learning are planned)."""

from hainet.net.identity import Identity, SignedRecord, canonical_bytes, key_id_of, verify
from hainet.net.records import (
    AGENT_PUBLISH,
    AGENT_RATING,
    DOMAINS,
    HUB_HELLO,
    RESULT_SHARE,
    CheckedRecord,
    Domain,
    accept,
    check_record,
    publish_payload,
    record_json,
)

__all__ = [
    "AGENT_PUBLISH",
    "AGENT_RATING",
    "DOMAINS",
    "HUB_HELLO",
    "RESULT_SHARE",
    "CheckedRecord",
    "Domain",
    "Identity",
    "SignedRecord",
    "accept",
    "canonical_bytes",
    "check_record",
    "key_id_of",
    "publish_payload",
    "record_json",
    "verify",
]
