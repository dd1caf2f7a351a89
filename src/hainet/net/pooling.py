"""Model results from many hubs: verify every shared record locally, dedupe, pool.

A hub serves the ``result.share`` records it holds exactly as it received them
(``GET /v1/results/records``).  Nothing a hub says about them is believed:
:func:`pool_records` runs each raw record through
:func:`hainet.net.records.check_record` (size before parse, shape, key id, signature,
expiry) and :class:`~hainet.net.shares.SharedResult` (unknown fields refused, finite
bounded numbers), drops what fails with the reason and the hub that served it, and
keeps one share per (signer, subject): the highest seq seen across all hubs, so a
hub that serves an older copy cannot count a run twice or roll it back.

A model (GGUF sha256 + quantization) is **network-tested** once at least
:data:`NETWORK_TESTED_SIGNERS` distinct keys shared results for it.  Its figures are
medians per hardware class, each with the number of signers behind it
(:func:`hainet.net.shares.aggregate`), and :func:`nearest_class` picks the class of
a machine like the user's: the same class, else the nearest by cores and memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hainet.errors import HainetError
from hainet.net.identity import canonical_bytes
from hainet.net.records import RESULT_SHARE, check_record
from hainet.net.shares import HardwareClass, SharedResult, aggregate

__all__ = [
    "NETWORK_TESTED_SIGNERS",
    "ClassMatch",
    "Dropped",
    "ModelPool",
    "Pool",
    "PooledShare",
    "nearest_class",
    "pool_records",
]

NETWORK_TESTED_SIGNERS = 5
"""Distinct signers a model needs before the network's figures for it are used."""


@dataclass(frozen=True)
class Dropped:
    """A record a hub served that was not counted, and why."""

    hub: str
    reason: str


@dataclass(frozen=True)
class PooledShare:
    """One verified share: the highest seq of its (signer, subject) across hubs."""

    signer: str
    subject: str
    seq: int
    result: SharedResult
    hubs: tuple[str, ...]
    """Every hub that served this very record (this signer, subject and seq)."""


@dataclass(frozen=True)
class ModelPool:
    """What the network measured of one (model, quantization)."""

    model: str
    quantization: str | None
    model_names: list[str]
    signers: int
    """Distinct keys that shared results of it, over every hardware class."""
    classes: list[dict[str, Any]]
    """:func:`~hainet.net.shares.aggregate` groups: medians per hardware class, each
    with its own ``signers`` and ``runs``."""
    hubs: list[str]

    @property
    def network_tested(self) -> bool:
        return self.signers >= NETWORK_TESTED_SIGNERS

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "quantization": self.quantization,
            "model_names": self.model_names,
            "signers": self.signers,
            "network_tested": self.network_tested,
            "hubs": self.hubs,
            "classes": self.classes,
        }


@dataclass
class Pool:
    shares: list[PooledShare] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def models(self) -> list[ModelPool]:
        """One entry per (model, quantization), most signers first."""
        groups: dict[tuple[str, str | None], list[PooledShare]] = {}
        for s in self.shares:
            groups.setdefault((s.result.model, s.result.quantization), []).append(s)
        out = []
        for (model, quant), items in groups.items():
            out.append(
                ModelPool(
                    model=model,
                    quantization=quant,
                    model_names=sorted({s.result.model_name for s in items}),
                    signers=len({s.signer for s in items}),
                    classes=aggregate([(s.signer, s.result) for s in items]),
                    hubs=sorted({h for s in items for h in s.hubs}),
                )
            )
        out.sort(key=lambda m: (-m.signers, m.model, m.quantization or ""))
        return out

    def model(self, model: str, quantization: str | None = None) -> ModelPool | None:
        """The pool of ``model`` (of this quantization, or the one with most signers)."""
        for m in self.models():
            if m.model == model and (quantization is None or m.quantization == quantization):
                return m
        return None


def pool_records(served: Iterable[tuple[str, bytes | str]], *, now: float | None = None) -> Pool:
    """Verify and dedupe ``(hub, raw record)`` pairs, as fetched from many hubs.

    Nothing raises for a bad record: it is listed in ``Pool.dropped`` with the hub
    that served it.  Two different records under one (signer, subject, seq) are an
    equivocation by the signer: neither is counted.
    """
    now = time.time() if now is None else now
    pool = Pool()
    best: dict[tuple[str, str], tuple[PooledShare, bytes]] = {}
    equivocated: set[tuple[str, str, int]] = set()
    for hub, raw in served:
        try:
            checked = check_record(raw, None, domain=RESULT_SHARE, now=now)
            rec = checked.record
            result = SharedResult.parse(rec.payload, checked.who)
        except HainetError as exc:
            pool.dropped.append(Dropped(hub, str(exc)))
            continue
        key = (rec.key_id, checked.subject)
        content = canonical_bytes(rec.payload)
        held = best.get(key)
        if held is None or rec.seq > held[0].seq:
            share = PooledShare(rec.key_id, checked.subject, rec.seq, result, (hub,))
            best[key] = (share, content)
        elif rec.seq == held[0].seq:
            if content != held[1]:
                equivocated.add((*key, rec.seq))
                pool.dropped.append(
                    Dropped(hub, f"{checked.who}: another record with the same seq differs")
                )
            elif hub not in held[0].hubs:
                share = held[0]
                best[key] = (
                    PooledShare(
                        share.signer, share.subject, share.seq, share.result, (*share.hubs, hub)
                    ),
                    content,
                )
        # A lower seq is an older copy: superseded, not an error.
    pool.shares = [s for s, _ in best.values() if (s.signer, s.subject, s.seq) not in equivocated]
    pool.shares.sort(key=lambda s: (s.result.model, s.signer, s.subject))
    return pool


@dataclass(frozen=True)
class ClassMatch:
    """The network's figures for hardware like the user's."""

    group: dict[str, Any]
    """One :func:`~hainet.net.shares.aggregate` group."""
    same: bool
    """True: the user's own hardware class; False: the nearest one."""
    distance: float

    def describe(self) -> str:
        how = "your hardware class" if self.same else "the nearest hardware class to yours"
        return f"{how} ({self.group['hardware_class']})"


def _log_gap(a: int | None, b: int | None) -> float:
    if not a or not b:
        return 8.0  # unknown: farther than any known difference up to 256x
    return abs(math.log2(a / b))


def _distance(mine: HardwareClass, other: HardwareClass) -> float:
    d = _log_gap(mine.cores, other.cores) + _log_gap(mine.ram_gib, other.ram_gib)
    # Ties by CPU and GPU model: a small nudge, never more than a core count's gap.
    d += 0.0 if mine.cpu == other.cpu else 0.1
    d += 0.0 if mine.gpus == other.gpus else 0.2
    return d


def nearest_class(classes: Iterable[dict[str, Any]], mine: HardwareClass) -> ClassMatch | None:
    """The group of ``mine``'s hardware class, else the nearest by cores and memory
    (log2 ratios, so 2 vs 4 cores is as far as 8 vs 16), CPU and GPU models breaking
    ties; None when there are no groups."""
    best: ClassMatch | None = None
    for group in classes:
        other = HardwareClass.model_validate(group["hardware"])
        if other.key() == mine.key():
            return ClassMatch(group, True, 0.0)
        d = _distance(mine, other)
        if best is None or d < best.distance:
            best = ClassMatch(group, False, d)
    return best
