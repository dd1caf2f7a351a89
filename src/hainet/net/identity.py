"""A pseudonymous identity: one Ed25519 key, and records signed with it.

**Peer id.**  ``key_id`` is the full hex sha256 (64 characters) of the 32 raw bytes
of the public key.  Anyone holding the public key can recompute it, so a record
cannot claim one peer id and carry another peer's key.  ``short_id`` (12
characters) is for display only.

**Key file.**  ``HAINET_HOME/identity/ed25519.key``: the private key as unencrypted
PKCS#8 PEM, mode 0600, in a 0700 directory.  It is created without ever
overwriting an existing file (temp file + fsync + hard link), so two processes
starting at once end up with the same key.  A key file that cannot be read as an
Ed25519 key is an error, never silently replaced: replacing it would change the
peer id and orphan everything signed before.

**What is signed.**  ``sign(domain, payload)`` signs
``b"hainet-sig-v1\\0" + domain + b"\\0" + canonical_json(payload)``.  The domain tag
(``"agent.publish"``, ``"agent.rating"``...) keeps a signature made for one purpose
from being replayed as another.  Canonical JSON is sorted keys, no spaces, UTF-8,
no NaN or infinity: :func:`hainet.types.canonical_json` with ``allow_nan=False``,
the form agent specs are hashed in.

:class:`SignedRecord` signs an envelope of the payload with its sequence number,
key id and schema version, so none of those can be changed without breaking the
signature either.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, Field

from hainet.errors import ConfigError, ValidationError
from hainet.types import canonical_json

__all__ = [
    "KEY_FILE",
    "RECORD_SCHEMA_VERSION",
    "Identity",
    "SignedRecord",
    "canonical_bytes",
    "key_id_of",
    "verify",
]

KEY_FILE = Path("identity") / "ed25519.key"
RECORD_SCHEMA_VERSION = 1
_SIG_PREFIX = b"hainet-sig-v1\x00"
_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9_.:/-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def canonical_bytes(data: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, finite numbers only: one byte string per value."""
    try:
        text = canonical_json(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"payload is not canonical JSON: {exc}") from None
    return text.encode("utf-8")


def _message(domain: str, payload: dict[str, Any]) -> bytes:
    if not _DOMAIN.match(domain):
        raise ValidationError(
            f"bad signature domain {domain!r}: lowercase letters, digits and _.:/- only"
        )
    return _SIG_PREFIX + domain.encode("ascii") + b"\x00" + canonical_bytes(payload)


def key_id_of(public_key: bytes) -> str:
    """The peer id of a raw 32-byte Ed25519 public key (full hex sha256)."""
    return hashlib.sha256(public_key).hexdigest()


def verify(public_key: bytes, domain: str, payload: dict[str, Any], signature: bytes) -> bool:
    """True when ``signature`` is ``public_key``'s signature of (domain, payload).

    A malformed key or signature is simply not a valid signature (False); only a
    payload that has no canonical form or a malformed domain raises ValidationError.
    """
    message = _message(domain, payload)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class Identity:
    """An Ed25519 key pair; the peer id is the hash of its public key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes, *, source: str = "key") -> Identity:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(
                f"{source}: not a readable Ed25519 private key ({exc})",
                hint="restore it from a backup, or move it aside to create a new identity "
                "(the old peer id and its signatures are then lost)",
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                f"{source}: holds a {type(key).__name__}, not an Ed25519 private key",
                hint="move it aside to create a new identity",
            )
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def load(cls, path: Path) -> Identity:
        """Read a key file; refuse one that others can read, as ssh does."""
        try:
            st = path.stat()
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read identity key {path}: {exc.strerror or exc}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"identity key {path} is accessible by other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o})",
                hint=f"chmod 600 {path}",
            )
        return cls.from_pem(data, source=str(path))

    @classmethod
    def load_or_create(cls, home: Path) -> Identity:
        """The identity of ``home`` (HAINET_HOME), created on first use."""
        path = home / KEY_FILE
        if path.exists():
            return cls.load(path)
        identity = cls.generate()
        if identity._create(path):
            return identity
        # Another process created it between our check and our link: use theirs.
        return cls.load(path)

    def _create(self, path: Path) -> bool:
        """Write the key to ``path`` unless it exists; False when it already did."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as exc:
            raise ConfigError(f"cannot create identity key in {path.parent}: {exc}") from None
        try:
            # mkstemp already makes it 0600; say so explicitly against a strange umask.
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.to_pem())
                fh.flush()
                os.fsync(fh.fileno())
            # link() fails when the target exists, unlike replace(): never clobber a key.
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return True
        except OSError as exc:
            raise ConfigError(f"cannot write identity key {path}: {exc}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    @property
    def key_id(self) -> str:
        """Peer id: full hex sha256 of the raw public key."""
        return key_id_of(self._public)

    @property
    def short_id(self) -> str:
        return self.key_id[:12]

    def public_key_bytes(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return self._public

    def sign(self, domain: str, payload: dict[str, Any]) -> bytes:
        """A 64-byte signature of (domain, canonical JSON of payload)."""
        return self._key.sign(_message(domain, payload))

    def __repr__(self) -> str:
        # Never show key material.
        return f"Identity(key_id={self.short_id}...)"


class SignedRecord(BaseModel):
    """A payload signed by a peer under a domain tag, with a sequence number.

    The signature covers :meth:`envelope` (payload, seq, key id, schema version)
    under ``domain``.  Receivers call :meth:`verify` before trusting anything in it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(default=RECORD_SCHEMA_VERSION, description="Record format.")
    domain: str = Field(description="What the signature is for, e.g. 'agent.publish'.")
    payload: dict[str, Any] = Field(description="The signed content (JSON object).")
    seq: int = Field(ge=0, description="Per-signer sequence number; higher replaces lower.")
    key_id: str = Field(description="Signer's peer id: hex sha256 of public_key.")
    public_key: str = Field(description="Signer's raw Ed25519 public key, hex.")
    signature: str = Field(description="Ed25519 signature of the envelope, hex.")

    @staticmethod
    def _envelope(
        payload: dict[str, Any], seq: int, key_id: str, schema_version: int
    ) -> dict[str, Any]:
        return {
            "key_id": key_id,
            "payload": payload,
            "schema_version": schema_version,
            "seq": seq,
        }

    def envelope(self) -> dict[str, Any]:
        """What the signature is over (under ``domain``)."""
        return self._envelope(self.payload, self.seq, self.key_id, self.schema_version)

    @classmethod
    def create(
        cls, identity: Identity, domain: str, payload: dict[str, Any], seq: int
    ) -> SignedRecord:
        if seq < 0:
            raise ValidationError(f"seq must be >= 0, got {seq}")
        envelope = cls._envelope(payload, seq, identity.key_id, RECORD_SCHEMA_VERSION)
        signature = identity.sign(domain, envelope)
        # Round-trip the payload through its canonical form, so the record holds
        # exactly what was signed (tuples become lists, and so on).
        return cls(
            domain=domain,
            payload=json.loads(canonical_bytes(payload)),
            seq=seq,
            key_id=identity.key_id,
            public_key=identity.public_key_bytes().hex(),
            signature=signature.hex(),
        )

    def verify(self) -> None:
        """Raise ValidationError naming the reason unless the record is authentic."""
        who = f"record {self.domain} seq {self.seq} from {self.key_id[:12]}"
        if self.schema_version > RECORD_SCHEMA_VERSION:
            raise ValidationError(
                f"{who}: schema {self.schema_version} is newer than this hainet "
                f"({RECORD_SCHEMA_VERSION})"
            )
        if not _HEX64.match(self.public_key):
            raise ValidationError(f"{who}: public key is not 32 bytes of lowercase hex")
        public = bytes.fromhex(self.public_key)
        if key_id_of(public) != self.key_id:
            raise ValidationError(
                f"{who}: key id does not match the public key "
                f"(the key hashes to {key_id_of(public)[:12]})"
            )
        try:
            signature = bytes.fromhex(self.signature)
        except ValueError:
            raise ValidationError(f"{who}: signature is not hex") from None
        if len(signature) != 64:
            raise ValidationError(f"{who}: signature is {len(signature)} bytes, not 64")
        if not verify(public, self.domain, self.envelope(), signature):
            raise ValidationError(
                f"{who}: bad signature (payload, seq or domain altered after signing, "
                "or not signed by this key)"
            )
