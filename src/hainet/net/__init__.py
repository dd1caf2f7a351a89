"""Identity, signed records, the DHT, validation by other hubs, federated learning."""

from hainet.net.identity import Identity, SignedRecord, canonical_bytes, key_id_of, verify

__all__ = ["Identity", "SignedRecord", "canonical_bytes", "key_id_of", "verify"]
