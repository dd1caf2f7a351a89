"""net/pooling.py: shares from many hubs verified here, deduped, counted, matched."""

from __future__ import annotations

import json
import time
from typing import Any

from hainet.net.identity import Identity, SignedRecord
from hainet.net.pooling import NETWORK_TESTED_SIGNERS, nearest_class, pool_records
from hainet.net.records import RESULT_SHARE, record_json
from hainet.net.shares import HardwareClass

SHA = "cd" * 32
HW = {"cpu": "Xeon", "cores": 2, "ram_gib": 16, "gpus": []}


def share(
    me: Identity,
    *,
    subject: str = "s1",
    seq: int = 1,
    decode: float = 40.0,
    hardware: dict[str, Any] | None = None,
    model: str = SHA,
    expires_in: int = 86_400,
    **extra: Any,
) -> str:
    payload = {
        "subject": subject,
        "model": model,
        "model_name": "gemma-3-270m",
        "quantization": "Q4_K_M",
        "capabilities": {"reasoning": 0.5},
        "decode_tps": decode,
        "ttft_s": 0.1,
        "peak_rss_mb": 400.0,
        "hardware": hardware or HW,
        "day": "2026-12-01",
        "expires_at": int(time.time()) + expires_in,
        **extra,
    }
    return record_json(SignedRecord.create(me, RESULT_SHARE, payload, seq))


def test_five_distinct_signers_make_a_model_network_tested_four_do_not() -> None:
    keys = [Identity.generate() for _ in range(NETWORK_TESTED_SIGNERS)]
    four = pool_records([("h1", share(k, decode=10.0 * (i + 1))) for i, k in enumerate(keys[:4])])
    assert four.model(SHA) is not None and not four.model(SHA).network_tested  # type: ignore[union-attr]
    # One key sharing many runs is still one signer.
    many = [("h1", share(keys[0], subject=f"run{i}")) for i in range(10)]
    assert pool_records(many).model(SHA).signers == 1  # type: ignore[union-attr]
    five = pool_records([("h1", share(k, decode=10.0 * (i + 1))) for i, k in enumerate(keys)])
    mp = five.model(SHA)
    assert mp is not None and mp.network_tested and mp.signers == 5
    (group,) = mp.classes
    assert group["signers"] == 5 and group["figures"]["decode_tps"]["median"] == 30.0


def test_the_same_share_from_three_hubs_counts_once_and_the_highest_seq_wins() -> None:
    me = Identity.generate()
    old, new = share(me, seq=1, decode=10.0), share(me, seq=2, decode=50.0)
    pool = pool_records([("h1", old), ("h2", new), ("h3", old), ("h3", new)])
    (only,) = pool.shares
    assert only.seq == 2 and only.result.decode_tps == 50.0 and only.hubs == ("h2", "h3")
    assert pool.dropped == []  # an older copy is superseded, not an error


def test_forged_tampered_expired_and_oversize_records_are_dropped_with_the_hub() -> None:
    me, other = Identity.generate(), Identity.generate()
    good = share(me)
    tampered = json.loads(share(other, subject="t"))
    tampered["payload"]["decode_tps"] = 9999.0  # altered after signing
    forged = json.loads(share(other, subject="f"))
    forged["key_id"], forged["public_key"] = me.key_id, me.public_key_bytes().hex()
    expired = share(other, subject="e", expires_in=-10)
    unknown_field = share(other, subject="u", secret="hostname")
    served = [
        ("good-hub", good),
        ("bad-hub", json.dumps(tampered)),
        ("bad-hub", json.dumps(forged)),
        ("bad-hub", expired),
        ("bad-hub", unknown_field),
        ("bad-hub", "x" * (65 * 1024)),
        ("bad-hub", "[1, 2"),
    ]
    pool = pool_records(served)
    assert [s.signer for s in pool.shares] == [me.key_id]
    assert len(pool.dropped) == 6 and {d.hub for d in pool.dropped} == {"bad-hub"}
    reasons = " | ".join(d.reason for d in pool.dropped)
    for why in ("bad signature", "expired", "secret", "bytes"):
        assert why in reasons, (why, reasons)


def test_two_different_records_under_one_seq_count_for_neither() -> None:
    me = Identity.generate()
    a, b = share(me, seq=7, decode=10.0), share(me, seq=7, decode=99.0)
    pool = pool_records([("h1", a), ("h2", b)])
    assert pool.shares == [] and "same seq" in pool.dropped[0].reason


def test_medians_are_per_hardware_class_and_the_nearest_class_is_found() -> None:
    keys = [Identity.generate() for _ in range(6)]
    small = {"cpu": "Xeon", "cores": 2, "ram_gib": 16, "gpus": []}
    big = {"cpu": "EPYC", "cores": 64, "ram_gib": 256, "gpus": []}
    served = [("h", share(k, hardware=small, decode=40.0 + i)) for i, k in enumerate(keys[:3])]
    served += [("h", share(k, hardware=big, decode=400.0)) for k in keys[3:]]
    mp = pool_records(served).model(SHA)
    assert mp is not None and mp.network_tested and len(mp.classes) == 2
    same = nearest_class(mp.classes, HardwareClass(**small))
    assert same is not None and same.same and same.group["figures"]["decode_tps"]["median"] == 41
    # 4 cores and 32 GiB on another CPU: no class is the same, the 2-core one is nearest.
    near = nearest_class(mp.classes, HardwareClass(cpu="Other", cores=4, ram_gib=32))
    assert near is not None and not near.same and near.group["hardware"]["cores"] == 2
    far = nearest_class(mp.classes, HardwareClass(cpu="Other", cores=48, ram_gib=128))
    assert far is not None and far.group["hardware"]["cores"] == 64
    assert nearest_class([], HardwareClass(**small)) is None
