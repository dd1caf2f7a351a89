from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import hainet.net
from hainet.agents.spec import canonical_json
from hainet.errors import ConfigError, ValidationError
from hainet.net import Identity, SignedRecord, canonical_bytes, verify
from hainet.net.identity import KEY_FILE


def test_exported_names() -> None:
    identity = ["Identity", "SignedRecord", "canonical_bytes", "key_id_of", "verify"]
    records = ["AGENT_PUBLISH", "AGENT_RATING", "DOMAINS", "HUB_HELLO", "RESULT_SHARE"]
    records += ["CheckedRecord", "Domain", "accept", "check_record", "publish_payload"]
    records += ["record_json"]
    assert sorted(hainet.net.__all__) == sorted(identity + records)


def test_sign_verify_round_trip() -> None:
    ident = Identity.generate()
    payload = {"b": [1, 2.5, "x"], "a": {"z": None, "y": True}, "ü": "é"}
    sig = ident.sign("agent.publish", payload)
    assert len(sig) == 64
    assert verify(ident.public_key_bytes(), "agent.publish", payload, sig)
    # Key order does not matter: the canonical form is signed.
    assert verify(ident.public_key_bytes(), "agent.publish", dict(reversed(payload.items())), sig)


def test_tampered_payload_wrong_domain_wrong_key_fail() -> None:
    ident, other = Identity.generate(), Identity.generate()
    payload = {"score": 0.9, "agent": "abc"}
    sig = ident.sign("agent.rating", payload)
    pub = ident.public_key_bytes()
    assert not verify(pub, "agent.rating", {**payload, "score": 1.0}, sig)
    assert not verify(pub, "agent.publish", payload, sig)
    assert not verify(other.public_key_bytes(), "agent.rating", payload, sig)
    assert not verify(pub, "agent.rating", payload, sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not verify(b"short", "agent.rating", payload, sig)


def test_bad_domain_and_non_json_payload_raise() -> None:
    ident = Identity.generate()
    with pytest.raises(ValidationError, match="domain"):
        ident.sign("Bad Domain", {})
    with pytest.raises(ValidationError, match="canonical JSON"):
        ident.sign("x", {"v": float("nan")})
    with pytest.raises(ValidationError, match="canonical JSON"):
        ident.sign("x", {"v": object()})


def test_canonical_form_matches_agent_specs() -> None:
    data = {"z": [1, {"b": 2, "a": "ü"}], "a": 1.5, "m": None}
    assert canonical_bytes(data) == canonical_json(data).encode("utf-8")
    assert canonical_bytes(data) == '{"a":1.5,"m":null,"z":[1,{"a":"ü","b":2}]}'.encode()


def test_key_id_is_sha256_of_public_key() -> None:
    ident = Identity.generate()
    assert ident.key_id == hashlib.sha256(ident.public_key_bytes()).hexdigest()
    assert len(ident.key_id) == 64
    assert ident.short_id in repr(ident)
    assert Identity.generate().key_id != ident.key_id


def test_load_or_create_persists_with_private_permissions(tmp_path: Path) -> None:
    first = Identity.load_or_create(tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = Identity.load_or_create(tmp_path)
    assert again.key_id == first.key_id
    # No temp files left behind.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_load_or_create_never_clobbers_a_concurrent_key(tmp_path: Path) -> None:
    # Simulate losing the race: the file appears between the check and the link.
    theirs = Identity.generate()
    path = tmp_path / KEY_FILE
    path.parent.mkdir(mode=0o700)
    path.write_bytes(theirs.to_pem())
    path.chmod(0o600)
    mine = Identity.generate()
    assert mine._create(path) is False
    assert Identity.load(path).key_id == theirs.key_id


def test_concurrent_processes_agree_on_one_key(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from hainet.net import Identity; "
        "print(Identity.load_or_create(Path(sys.argv[1])).key_id)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1
    assert ids == {Identity.load(tmp_path / KEY_FILE).key_id}


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\n", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
)
def test_corrupt_key_file_is_an_error_and_kept(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / KEY_FILE
    path.parent.mkdir(mode=0o700)
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not a readable Ed25519 private key") as err:
        Identity.load_or_create(tmp_path)
    assert str(path) in str(err.value)
    assert err.value.hint and "move it aside" in err.value.hint
    assert path.read_bytes() == content


def test_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / KEY_FILE
    path.parent.mkdir(mode=0o700)
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not an Ed25519"):
        Identity.load_or_create(tmp_path)


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    Identity.load_or_create(tmp_path)
    path = tmp_path / KEY_FILE
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="accessible by other users") as err:
        Identity.load_or_create(tmp_path)
    assert err.value.hint == f"chmod 600 {path}"


def test_signed_record_round_trip_through_json() -> None:
    ident = Identity.generate()
    rec = SignedRecord.create(ident, "agent.publish", {"id": "abc", "tags": ("a", "b")}, seq=3)
    assert rec.key_id == ident.key_id
    assert rec.payload == {"id": "abc", "tags": ["a", "b"]}
    back = SignedRecord.model_validate_json(rec.model_dump_json())
    back.verify()
    assert back == rec


def _tampered(rec: SignedRecord, **changes: object) -> SignedRecord:
    return SignedRecord.model_validate({**rec.model_dump(), **changes})


def test_signed_record_detects_tampering() -> None:
    ident, other = Identity.generate(), Identity.generate()
    rec = SignedRecord.create(ident, "agent.rating", {"agent": "abc", "stars": 2}, seq=7)
    rec.verify()
    cases: list[tuple[dict[str, object], str]] = [
        ({"payload": {"agent": "abc", "stars": 5}}, "bad signature"),
        ({"seq": 8}, "bad signature"),
        ({"domain": "agent.publish"}, "bad signature"),
        # Claiming another peer's id with our key is caught before the signature.
        ({"key_id": other.key_id}, "key id does not match"),
        # Swapping in another key (with its matching id) breaks the signature.
        (
            {"public_key": other.public_key_bytes().hex(), "key_id": other.key_id},
            "bad signature",
        ),
        ({"public_key": "zz"}, "public key is not 32 bytes"),
        ({"signature": "not hex"}, "signature is not hex"),
        ({"signature": "00" * 10}, "10 bytes, not 64"),
        ({"schema_version": 99}, "newer than this hainet"),
    ]
    for changes, reason in cases:
        with pytest.raises(ValidationError, match=reason):
            _tampered(rec, **changes).verify()


def test_signed_record_rejects_negative_seq() -> None:
    with pytest.raises(ValidationError, match="seq"):
        SignedRecord.create(Identity.generate(), "x", {}, seq=-1)
