"""net/validation.py, the pure part: the validator set anyone can recompute, the
agent.validation record, and the robust verdict (quorum, median, MAD, flags)."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from typing import Any

import pytest

from hainet.errors import ValidationError
from hainet.net.identity import Identity, SignedRecord
from hainet.net.records import AGENT_VALIDATION, check_record, record_json
from hainet.net.validation import (
    EPOCH_S,
    MAD_FLOOR,
    QUORUM,
    ValidationPayload,
    aggregate,
    epoch_of,
    outcomes_hash,
    validation_target,
    validator_set,
)
from hainet.store import Store
from hainet.store.ledger import Ledger
from hainet.store.validations import ValidationStore

SPEC_ID = hashlib.sha256(b"an agent version").hexdigest()
ORIGIN = Identity.generate().key_id
HW = {"cpu": "Test CPU", "cores": 2, "ram_gib": 16, "gpus": []}


@dataclass(frozen=True)
class P:
    key_id: str
    node_id: bytes


def peer(i: int) -> P:
    key = hashlib.sha256(f"peer {i}".encode()).hexdigest()
    return P(key, hashlib.sha256(bytes.fromhex(key)).digest()[:20])


def payload(rate: float, *, total: int = 10, **over: Any) -> dict[str, Any]:
    passed = round(rate * total)
    out = {
        "spec_id": SPEC_ID,
        "epoch": 100,
        "origin": ORIGIN,
        "success_rate": passed / total,
        "passed": passed,
        "total": total,
        "outcomes_sha256": hashlib.sha256(str(passed).encode()).hexdigest(),
        "model": "a" * 64,
        "model_name": "gemma-3-270m",
        "hardware": HW,
        "expires_at": int(time.time()) + 86_400,
    }
    return out | over


def signed(ident: Identity, rate: float, seq: int = 1, **over: Any) -> SignedRecord:
    return SignedRecord.create(ident, AGENT_VALIDATION, payload(rate, **over), seq)


def verdict(records: list[SignedRecord], members: list[Identity], **kw: Any) -> Any:
    return aggregate(
        records,
        spec_id=SPEC_ID,
        epoch=100,
        origin=ORIGIN,
        validators=[m.key_id for m in members],
        **kw,
    )


# -- the validator set -------------------------------------------------------------------


def test_the_set_is_the_same_whoever_computes_it_and_in_whatever_order() -> None:
    peers = [peer(i) for i in range(40)]
    first = validator_set(peers, SPEC_ID, 7)
    assert len(first) == 10
    for seed in range(5):  # each "hub" knows the peers in another order, some twice
        shuffled = peers + random.Random(seed).sample(peers, 10)
        random.Random(seed).shuffle(shuffled)
        assert validator_set(shuffled, SPEC_ID, 7) == first
    # Closest first, by XOR distance to the recomputable target.
    target = int.from_bytes(hashlib.sha256(f"{SPEC_ID}:7".encode()).digest()[:20], "big")
    dist = [int.from_bytes(p.node_id, "big") ^ target for p in first]
    assert dist == sorted(dist)
    outside = [int.from_bytes(p.node_id, "big") ^ target for p in peers if p not in first]
    assert max(dist) < min(outside)


def test_the_set_changes_with_the_epoch_and_leaves_the_origin_out() -> None:
    peers = [peer(i) for i in range(40)]
    a, b = validator_set(peers, SPEC_ID, 7), validator_set(peers, SPEC_ID, 8)
    assert a != b and validation_target(SPEC_ID, 7) != validation_target(SPEC_ID, 8)
    without = validator_set(peers, SPEC_ID, 7, exclude=[a[0].key_id])
    assert a[0] not in without and without[:9] == a[1:] and len(without) == 10


def test_the_set_refuses_what_it_cannot_place() -> None:
    with pytest.raises(ValidationError, match="not a spec id"):
        validation_target("nope", 1)
    with pytest.raises(ValidationError, match="node id is 3 bytes"):
        validator_set([P("k", b"abc")], SPEC_ID, 1)


def test_the_epoch_is_a_week_of_unix_time() -> None:
    assert epoch_of(0) == 0 and epoch_of(EPOCH_S - 1) == 0 and epoch_of(EPOCH_S) == 1
    assert epoch_of() == int(time.time()) // EPOCH_S


# -- the record --------------------------------------------------------------------------


def test_a_validation_record_passes_the_record_checks_and_is_bounded(tmp_path: Any) -> None:
    ident = Identity.generate()
    rec = signed(ident, 0.9)
    checked = check_record(record_json(rec), Ledger(Store(f"sqlite:///{tmp_path / 'h.db'}")))
    assert checked.subject == SPEC_ID and checked.domain.max_bytes == 4096
    big = signed(ident, 0.9, model_name="x" * 5000)
    with pytest.raises(ValidationError, match="too large|bytes"):
        check_record(record_json(big), None, domain=AGENT_VALIDATION)


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"success_rate": 0.5}, "is not passed/total"),
        ({"passed": 11}, "above total"),
        ({"surprise": 1}, "surprise"),
        ({"spec_id": "short"}, "spec_id"),
        ({"success_rate": 1.5, "passed": 15}, "success_rate"),
    ],
)
def test_a_payload_that_lies_about_itself_is_refused(over: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ValidationPayload.parse(payload(0.9) | over, "validation")


def test_outcomes_hash_changes_with_any_case() -> None:
    @dataclass
    class Outcome:
        test_id: str
        seed: int
        score: float
        scored: bool = True
        holdout: bool = False

    base = [Outcome("a", 0, 1.0), Outcome("b", 0, 0.0)]
    assert outcomes_hash(base) == outcomes_hash([Outcome("a", 0, 1.0), Outcome("b", 0, 0.0)])
    assert outcomes_hash(base) != outcomes_hash([Outcome("a", 0, 1.0), Outcome("b", 0, 1.0)])
    assert outcomes_hash(base) != outcomes_hash([Outcome("a", 0, 1.0), Outcome("b", 0, 0.0, False)])


# -- the verdict -------------------------------------------------------------------------


def test_ten_agreeing_validations_validate() -> None:
    members = [Identity.generate() for _ in range(10)]
    v = verdict([signed(m, 0.9) for m in members], members)
    assert v.status == "validated" and v.median == 0.9 and v.mad == 0.0
    assert v.flagged == () and v.missing == () and "10 of 10" in v.reason
    assert v.to_dict()["validations"][0]["key_id"] == members[0].key_id


def test_seven_give_a_verdict_and_six_are_pending() -> None:
    members = [Identity.generate() for _ in range(10)]
    seven = verdict([signed(m, 0.9) for m in members[:QUORUM]], members)
    assert seven.status == "validated" and len(seven.missing) == 3
    six = verdict([signed(m, 0.9) for m in members[:6]], members)
    assert six.status == "pending" and six.median is None and "needs 7" in six.reason


def test_a_low_median_fails() -> None:
    members = [Identity.generate() for _ in range(10)]
    v = verdict([signed(m, 0.2) for m in members], members)
    assert v.status == "failed" and v.median == 0.2 and "not above" in v.reason


def test_records_from_outside_the_set_do_not_count() -> None:
    members = [Identity.generate() for _ in range(10)]
    outsiders = [Identity.generate() for _ in range(20)]
    records = [signed(m, 0.9) for m in members[:6]] + [signed(o, 1.0) for o in outsiders]
    v = verdict(records, members)
    assert v.status == "pending" and len(v.counted) == 6
    assert {k for k, _ in v.ignored} == {o.key_id for o in outsiders}


def test_one_signer_counts_once_with_its_highest_seq() -> None:
    members = [Identity.generate() for _ in range(10)]
    records = [signed(m, 0.9) for m in members[:6]]
    # Six records of one member: still one validation, the newest one.
    records += [signed(members[6], 0.1, seq=s) for s in range(1, 6)] + [
        signed(members[6], 0.9, seq=9)
    ]
    v = verdict(records, members)
    assert v.status == "validated" and len(v.counted) == 7
    assert next(c for c in v.counted if c.key_id == members[6].key_id).seq == 9


def test_other_versions_epochs_origins_and_expired_records_do_not_count() -> None:
    members = [Identity.generate() for _ in range(10)]
    records = [signed(m, 0.9) for m in members[:6]]
    records += [
        signed(members[6], 0.9, epoch=99),
        signed(members[7], 0.9, origin=members[0].key_id),
        signed(members[8], 0.9, spec_id="b" * 64),
        signed(members[9], 0.9, expires_at=int(time.time()) - 1),
    ]
    v = verdict(records, members)
    assert v.status == "pending" and len(v.ignored) == 4


def test_three_liars_barely_move_the_median_and_are_flagged() -> None:
    members = [Identity.generate() for _ in range(10)]
    honest = [0.2, 0.2, 0.1, 0.2, 0.3, 0.2, 0.2]
    liars = members[7:]
    records = [signed(m, r) for m, r in zip(members, honest, strict=False)]
    records += [signed(m, 1.0) for m in liars]
    v = verdict(records, members)
    truth = verdict(records[:7], members)
    assert truth.median == 0.2
    assert v.median is not None and abs(v.median - truth.median) <= 0.05
    assert set(v.flagged) == {m.key_id for m in liars}
    assert v.status == "disputed" and "3 validator(s)" in v.reason


def test_when_the_mad_is_zero_the_floor_decides_who_is_flagged() -> None:
    members = [Identity.generate() for _ in range(10)]
    # Nine agree exactly (MAD = 0); one is one case of ten off: 0.1 <= 3 * MAD_FLOOR.
    rates = [0.9] * 9 + [0.8]
    v = verdict([signed(m, r) for m, r in zip(members, rates, strict=True)], members)
    assert v.mad == 0.0 and v.flagged == () and v.status == "validated"
    assert 3 * MAD_FLOOR >= 0.1
    # Two cases off (0.2 > 0.15): flagged even though the MAD is still 0.
    rates = [0.9] * 9 + [0.7]
    v = verdict([signed(m, r) for m, r in zip(members, rates, strict=True)], members)
    assert v.mad == 0.0 and v.flagged == (members[9].key_id,) and v.status == "disputed"


def test_a_wide_spread_is_disputed_without_anyone_flagged() -> None:
    members = [Identity.generate() for _ in range(10)]
    rates = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.5, 0.6, 0.9, 1.0]
    v = verdict([signed(m, r) for m, r in zip(members, rates, strict=True)], members)
    assert v.mad is not None and v.mad > 0.1 and v.flagged == ()
    assert v.status == "disputed" and "spread above" in v.reason


# -- the store ---------------------------------------------------------------------------


def test_the_store_keeps_the_highest_seq_and_ignores_repeats(tmp_path: Any) -> None:
    vs = ValidationStore(Store(f"sqlite:///{tmp_path / 'v.db'}"))
    ident = Identity.generate()

    def put(seq: int, rate: float) -> bool:
        rec = signed(ident, rate, seq=seq)
        return vs.put(
            signer=ident.key_id,
            spec_id=SPEC_ID,
            epoch=100,
            origin=ORIGIN,
            seq=seq,
            success_rate=rec.payload["success_rate"],
            record=record_json(rec),
            expires_at=rec.payload["expires_at"],
        )

    assert put(5, 0.9) and not put(5, 0.9) and not put(4, 0.1)
    assert put(6, 0.8)
    rows = vs.rows(SPEC_ID)
    assert len(rows) == 1 and rows[0].seq == 6 and '"success_rate":0.8' in rows[0].record
    assert vs.rows(SPEC_ID, now=time.time() + 2 * 86_400) == []
    rnd = vs.add_round(SPEC_ID, 100, ORIGIN, ["k1", "k2"])
    vs.set_request(SPEC_ID, "k1", "accepted")
    again = vs.round(SPEC_ID)
    assert again is not None and again.validators == ["k1", "k2"]
    assert again.requests == {"k1": "accepted"} and again.epoch == rnd.epoch
    assert vs.round_ids() == [SPEC_ID]
