"""Hashcash-style proof of work over a key id: what a DHT node id costs.

A node proves work by a ``nonce`` such that
``sha256(b"hainet-dht-pow-v1\\0" + key_id + b"\\0" + nonce as decimal)`` starts with
``bits`` zero bits.  Finding one takes about ``2**bits`` hashes; checking one takes
one.  The work is bound to the key id, so it cannot be reused for another key, and
the key id is bound to the Ed25519 key (:mod:`hainet.net.identity`), so a Sybil pays
it once per identity.  ``benchmarks/dht.py`` measures the cost at the default
difficulty.
"""

from __future__ import annotations

import hashlib
import itertools
import re

from hainet.errors import ValidationError

__all__ = ["MAX_BITS", "check", "leading_zero_bits", "solve"]

MAX_BITS = 40
"""Above this a solve would run for days; a config asking for more is a mistake."""
_PREFIX = b"hainet-dht-pow-v1\x00"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _base(key_id: str) -> hashlib._Hash:
    if not _HEX64.match(key_id):
        raise ValidationError(f"proof of work: {key_id[:16]!r} is not a 64-hex key id")
    h = hashlib.sha256(_PREFIX)
    h.update(key_id.encode("ascii") + b"\x00")
    return h


def _bits_ok(bits: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits <= MAX_BITS:
        raise ValidationError(f"proof of work: difficulty must be 0..{MAX_BITS} bits, got {bits!r}")


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solve(key_id: str, bits: int) -> int:
    """The smallest nonce proving ``bits`` of work for ``key_id`` (about 2**bits hashes)."""
    _bits_ok(bits)
    base = _base(key_id)
    limit = 1 << (256 - bits)  # a digest below this has `bits` leading zeros
    for nonce in itertools.count():
        h = base.copy()
        h.update(str(nonce).encode("ascii"))
        if int.from_bytes(h.digest(), "big") < limit:
            return nonce
    raise AssertionError("unreachable")  # pragma: no cover


def check(key_id: str, nonce: object, bits: int) -> bool:
    """True when ``nonce`` proves ``bits`` of work for ``key_id`` (one hash)."""
    _bits_ok(bits)
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce < 2**63:
        return False
    if not _HEX64.match(key_id):
        return False
    h = _base(key_id)
    h.update(str(nonce).encode("ascii"))
    return int.from_bytes(h.digest(), "big") < (1 << (256 - bits))
