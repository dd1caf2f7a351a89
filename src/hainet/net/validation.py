"""Community validation, the pure part: who validates an agent version, what a
validation says, and how many validations become one network verdict.  No I/O:
the hub side (``hainet.hub.validation``) asks the DHT and runs the gate.

**Epoch.**  ``epoch = floor(unix seconds / EPOCH_S)`` (one week, :data:`EPOCH_S`) at
the time the origin hub announces a version to the network.  It is written in the
announcement and in every signed validation record, so anyone holding a record can
recompute the validator set from it; a validator accepts a request only for the
current epoch or the one before (a round that straddles the boundary), so an origin
cannot shop around for an epoch whose set it likes.

**Validator set.**  ``target = validation_target(spec_id, epoch)`` is
``sha256(f"{spec_id}:{epoch}")`` truncated to the DHT's 20-byte node-id width; the
set is the :data:`N_VALIDATORS` peers whose node ids are XOR-closest to it, the
origin hub (which gated the agent already) left out.  The node id of a peer is
derived from its key (``hainet.net.dht.node_id_for``), so the set depends only on
who is in the network, never on who computes it or in what order peers are listed.

**Aggregation** (:func:`aggregate`).  Only validations signed by a member of the
recomputed set count; for the same (spec, epoch, origin) only, one per signer (its
highest seq).  With fewer than :data:`QUORUM` the status is ``pending``.  Otherwise
the network score is the median ``m`` of the success rates and the spread the
median absolute deviation ``d`` (unscaled).  A validator is *flagged* when its rate
is more than ``3 * max(d, MAD_FLOOR)`` from ``m``: ``MAD_FLOOR`` = 0.05 stands in
for ``d`` when it is 0 (honest validators on one model usually agree exactly), so a
rate within 0.15 of the median is never flagged, and one further away always is.
Status::

    pending     fewer than QUORUM (7) validations from the set
    disputed    a quorum, but a validator flagged or the spread d above SPREAD_MAX (0.1)
    validated   a quorum, nobody flagged, d <= SPREAD_MAX, m above the threshold
    failed      a quorum, nobody flagged, d <= SPREAD_MAX, m at or below the threshold

The threshold is :data:`NETWORK_THRESHOLD` (0.8, the default publish threshold of
a hub's own gate), one bar for the whole network whatever a hub sets for its own
gate, so that everyone who aggregates the same records gets the same status.  A
disputed verdict still carries ``m``: the median is what 3 liars among 10 cannot
move far; the flags say who disagreed.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from hainet.errors import ValidationError
from hainet.net.identity import SignedRecord, canonical_bytes
from hainet.net.shares import HardwareClass

__all__ = [
    "EPOCH_S",
    "MAD_FLOOR",
    "NODE_ID_BYTES",
    "NETWORK_THRESHOLD",
    "N_VALIDATORS",
    "QUORUM",
    "SPREAD_MAX",
    "VALIDATION_TTL",
    "Candidate",
    "Status",
    "ValidationPayload",
    "Verdict",
    "aggregate",
    "epoch_of",
    "outcomes_hash",
    "validation_target",
    "validator_set",
]

EPOCH_S = 7 * 86_400
N_VALIDATORS = 10
QUORUM = 7
MAD_FLOOR = 0.05
FLAG_MADS = 3.0
SPREAD_MAX = 0.1
NETWORK_THRESHOLD = 0.8
NODE_ID_BYTES = 20
VALIDATION_TTL = 30 * 86_400
"""How long a validation record is valid; a later epoch's round replaces it."""

Status = Literal["validated", "disputed", "failed", "pending"]
_HEX64 = r"^[0-9a-f]{64}$"


def epoch_of(t: float | None = None) -> int:
    """The validation epoch of unix time ``t`` (now by default)."""
    return int((time.time() if t is None else t) // EPOCH_S)


def validation_target(spec_id: str, epoch: int) -> bytes:
    """The 20-byte XOR target of an agent version's validators in ``epoch``."""
    if len(spec_id) != 64 or any(c not in "0123456789abcdef" for c in spec_id):
        raise ValidationError(f"not a spec id (64 lowercase hex): {spec_id[:80]!r}")
    if epoch < 0:
        raise ValidationError(f"epoch must be >= 0, got {epoch}")
    return hashlib.sha256(f"{spec_id}:{epoch}".encode("ascii")).digest()[:NODE_ID_BYTES]


class Candidate(Protocol):
    """A peer as the DHT lists it (``hainet.net.dht.Peer`` is one)."""

    @property
    def key_id(self) -> str: ...

    @property
    def node_id(self) -> bytes: ...


P = TypeVar("P", bound=Candidate)


def validator_set(
    peers: Iterable[P],
    spec_id: str,
    epoch: int,
    *,
    n: int = N_VALIDATORS,
    exclude: Iterable[str] = (),
) -> list[P]:
    """The ``n`` peers XOR-closest to the version's target, closest first; peers whose
    key id is in ``exclude`` (the origin) are left out, a peer listed twice counts once.
    The order of ``peers`` does not matter (ties cannot happen: distinct node ids)."""
    target = int.from_bytes(validation_target(spec_id, epoch), "big")
    skip = set(exclude)
    unique: dict[str, P] = {}
    for p in peers:
        if len(p.node_id) != NODE_ID_BYTES:
            raise ValidationError(
                f"peer {p.key_id[:12]}: node id is {len(p.node_id)} bytes, not {NODE_ID_BYTES}"
            )
        if p.key_id not in skip:
            unique.setdefault(p.key_id, p)
    ranked = sorted(unique.values(), key=lambda p: int.from_bytes(p.node_id, "big") ^ target)
    return ranked[:n]


def outcomes_hash(outcomes: Iterable[Any]) -> str:
    """sha256 of the per-case outcomes (test id, seed, score, scored, holdout), in
    test order: two validators that saw the same answers scored the same get the
    same hash.  ``outcomes`` are ``CaseOutcome``-like objects."""
    rows = [
        [o.test_id, o.seed, round(float(o.score), 6), bool(o.scored), bool(o.holdout)]
        for o in outcomes
    ]
    return hashlib.sha256(canonical_bytes({"outcomes": rows})).hexdigest()


class ValidationPayload(BaseModel):
    """The payload of an ``agent.validation`` record: one hub's gate run of one agent
    version, on its own model in its own sandbox."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    spec_id: str = Field(pattern=_HEX64, description="The validated agent version.")
    epoch: int = Field(ge=0, le=1 << 40, description="The round's epoch (see EPOCH_S).")
    origin: str = Field(pattern=_HEX64, description="Key id of the hub that asked.")
    success_rate: float = Field(ge=0.0, le=1.0, description="Passed / scored gate cases.")
    passed: int = Field(ge=0, le=1_000_000)
    total: int = Field(ge=0, le=1_000_000, description="Gate cases scored.")
    outcomes_sha256: str = Field(pattern=_HEX64, description="outcomes_hash of the cases.")
    model: str = Field(min_length=1, max_length=200, description="GGUF sha256 or served name.")
    model_name: str = Field(max_length=200, description="The validator's name for it.")
    hardware: HardwareClass
    expires_at: int

    @classmethod
    def parse(cls, payload: dict[str, Any], who: str) -> ValidationPayload:
        try:
            out = cls.model_validate(payload)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationError(f"{who}: payload.{where}: {first['msg']}") from None
        if out.passed > out.total:
            raise ValidationError(f"{who}: passed ({out.passed}) above total ({out.total})")
        if out.total and abs(out.passed / out.total - out.success_rate) > 1e-6:
            raise ValidationError(
                f"{who}: success_rate {out.success_rate} is not passed/total "
                f"({out.passed}/{out.total})"
            )
        return out


@dataclass(frozen=True)
class Counted:
    """One validator's validation as the verdict counts it."""

    key_id: str
    seq: int
    payload: ValidationPayload
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        p = self.payload
        return {
            "key_id": self.key_id,
            "success_rate": p.success_rate,
            "passed": p.passed,
            "total": p.total,
            "model": p.model,
            "model_name": p.model_name,
            "hardware_class": p.hardware.key(),
            "outcomes_sha256": p.outcomes_sha256,
            "flagged": self.flagged,
        }


@dataclass(frozen=True)
class Verdict:
    """The network's status of an agent version, with the evidence."""

    status: Status
    spec_id: str
    epoch: int
    origin: str
    validators: tuple[str, ...]
    """The recomputed set (key ids), closest first."""
    counted: tuple[Counted, ...]
    median: float | None = None
    mad: float | None = None
    threshold: float = NETWORK_THRESHOLD
    ignored: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    """(key id, why) of records that did not count."""

    @property
    def flagged(self) -> tuple[str, ...]:
        return tuple(c.key_id for c in self.counted if c.flagged)

    @property
    def missing(self) -> tuple[str, ...]:
        have = {c.key_id for c in self.counted}
        return tuple(k for k in self.validators if k not in have)

    @property
    def reason(self) -> str:
        got = f"{len(self.counted)} of {len(self.validators)} validators reported"
        if self.status == "pending":
            return f"{got}; a verdict needs {QUORUM}"
        assert self.median is not None and self.mad is not None
        figures = f"median {self.median:.3f}, spread (MAD) {self.mad:.3f}"
        if self.status == "disputed":
            why = []
            if self.flagged:
                why.append(f"{len(self.flagged)} validator(s) more than {FLAG_MADS:g} MADs away")
            if self.mad > SPREAD_MAX:
                why.append(f"spread above {SPREAD_MAX:g}")
            return f"{got}; {figures}; " + " and ".join(why)
        side = "above" if self.status == "validated" else "not above"
        return f"{got}; {figures}, {side} the threshold {self.threshold:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "spec_id": self.spec_id,
            "epoch": self.epoch,
            "origin": self.origin,
            "median": self.median,
            "mad": self.mad,
            "threshold": self.threshold,
            "quorum": QUORUM,
            "validators": list(self.validators),
            "missing": list(self.missing),
            "flagged": list(self.flagged),
            "validations": [c.to_dict() for c in self.counted],
            "ignored": [{"key_id": k, "why": w} for k, w in self.ignored],
        }


def _mad(values: Sequence[float], median: float) -> float:
    return statistics.median(abs(v - median) for v in values)


def aggregate(
    records: Iterable[SignedRecord],
    *,
    spec_id: str,
    epoch: int,
    origin: str,
    validators: Sequence[str],
    threshold: float = NETWORK_THRESHOLD,
    now: float | None = None,
) -> Verdict:
    """The verdict of ``records`` (``agent.validation`` records, already checked for
    signature and expiry by ``net.records.check_record``) given the recomputed set
    ``validators`` (key ids).  Records from outside the set, of another version,
    epoch or origin, or expired, are listed in ``ignored`` and do not count."""
    if not 0.0 <= threshold < 1.0:
        raise ValidationError(f"threshold must be in 0..1 (exclusive), got {threshold}")
    members = set(validators)
    now_s = time.time() if now is None else now
    best: dict[str, tuple[int, ValidationPayload]] = {}
    ignored: list[tuple[str, str]] = []
    for rec in records:
        who = f"validation seq {rec.seq} from {rec.key_id[:12]}"
        try:
            payload = ValidationPayload.parse(rec.payload, who)
        except ValidationError as exc:
            ignored.append((rec.key_id, str(exc)))
            continue
        if rec.key_id not in members:
            ignored.append((rec.key_id, "not in the recomputed validator set"))
        elif (payload.spec_id, payload.epoch, payload.origin) != (spec_id, epoch, origin):
            ignored.append((rec.key_id, "of another version, epoch or origin"))
        elif payload.expires_at <= now_s:
            ignored.append((rec.key_id, "expired"))
        elif rec.key_id not in best or rec.seq > best[rec.key_id][0]:
            best[rec.key_id] = (rec.seq, payload)
    order = {k: i for i, k in enumerate(validators)}
    counted = [Counted(k, s, p) for k, (s, p) in sorted(best.items(), key=lambda i: order[i[0]])]
    base = {
        "spec_id": spec_id,
        "epoch": epoch,
        "origin": origin,
        "validators": tuple(validators),
        "threshold": threshold,
        "ignored": tuple(ignored),
    }
    if len(counted) < QUORUM:
        return Verdict(status="pending", counted=tuple(counted), **base)  # type: ignore[arg-type]
    rates = [c.payload.success_rate for c in counted]
    median = statistics.median(rates)
    mad = _mad(rates, median)
    limit = FLAG_MADS * max(mad, MAD_FLOOR)
    counted = [
        Counted(c.key_id, c.seq, c.payload, abs(c.payload.success_rate - median) > limit)
        for c in counted
    ]
    status: Status
    if any(c.flagged for c in counted) or mad > SPREAD_MAX:
        status = "disputed"
    elif median > threshold:
        status = "validated"
    else:
        status = "failed"
    return Verdict(
        status=status,
        counted=tuple(counted),
        median=median,
        mad=mad,
        **base,  # type: ignore[arg-type]
    )
