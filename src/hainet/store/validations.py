"""Community validation as a hub keeps it (migration 012): signed ``agent.validation``
records, one per (signer, spec id) with the highest seq, and the rounds this hub
announced as the origin, with the validator set it recomputed at the time.

The store decides nothing: ``net/records.py`` and ``net/validation.py`` check a
record before it gets here.  :meth:`ValidationStore.put` keeps a record only when
its seq is above the stored one, so collecting the same records from the DHT again
and again is idempotent, and an older record never replaces a newer one.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import NamedTuple

import sqlalchemy as sa

from hainet.errors import StoreError
from hainet.store.base import utc
from hainet.store.db import Store

__all__ = ["Round", "ValidationRow", "ValidationStore"]

_md = sa.MetaData()
validations = sa.Table(
    "net_validations",
    _md,
    sa.Column("signer", sa.String(64), primary_key=True),
    sa.Column("spec_id", sa.String(64), primary_key=True),
    sa.Column("epoch", sa.BigInteger),
    sa.Column("origin", sa.String(64)),
    sa.Column("seq", sa.BigInteger),
    sa.Column("success_rate", sa.Float),
    sa.Column("record", sa.Text),
    sa.Column("expires_at", sa.BigInteger),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
rounds = sa.Table(
    "net_validation_rounds",
    _md,
    sa.Column("spec_id", sa.String(64), primary_key=True),
    sa.Column("epoch", sa.BigInteger),
    sa.Column("origin", sa.String(64)),
    sa.Column("validators", sa.Text),
    sa.Column("requests", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


class ValidationRow(NamedTuple):
    signer: str
    seq: int
    record: str
    """The signed record's JSON as received (or made)."""


class Round(NamedTuple):
    """A validation round this hub announced as the origin."""

    spec_id: str
    epoch: int
    origin: str
    validators: list[str]
    """Key ids of the recomputed set, closest first."""
    requests: dict[str, str]
    """Per validator: what its validation request answered (``accepted``, or why not)."""
    created_at: datetime


class ValidationStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def put(
        self,
        *,
        signer: str,
        spec_id: str,
        epoch: int,
        origin: str,
        seq: int,
        success_rate: float,
        record: str,
        expires_at: int,
    ) -> bool:
        """Keep a checked record unless one with this seq or a higher one is stored;
        True when it was stored."""
        row = {
            "signer": signer,
            "spec_id": spec_id,
            "epoch": epoch,
            "origin": origin,
            "seq": seq,
            "success_rate": success_rate,
            "record": record,
            "expires_at": expires_at,
            "created_at": datetime.now(UTC),
        }
        key = (validations.c.signer == signer, validations.c.spec_id == spec_id)
        with self.store._guard("store a validation"), self.store._write() as conn:
            have = conn.execute(sa.select(validations.c.seq).where(*key)).scalar()
            if have is not None and seq <= int(have):
                return False
            conn.execute(sa.delete(validations).where(*key))
            conn.execute(sa.insert(validations).values(**row))
        return True

    def rows(self, spec_id: str, *, now: float | None = None) -> list[ValidationRow]:
        """The unexpired records of ``spec_id``, by signer."""
        now_s = int(time.time() if now is None else now)
        query = (
            sa.select(validations.c.signer, validations.c.seq, validations.c.record)
            .where(validations.c.spec_id == spec_id, validations.c.expires_at > now_s)
            .order_by(validations.c.signer)
        )
        with self.store._guard("read validations"), self.store._read() as conn:
            return [ValidationRow(r[0], int(r[1]), r[2]) for r in conn.execute(query)]

    def mine(self, signer: str, spec_id: str) -> ValidationRow | None:
        """The record ``signer`` (this hub) made of ``spec_id``, expired or not."""
        query = sa.select(validations.c.signer, validations.c.seq, validations.c.record).where(
            validations.c.signer == signer, validations.c.spec_id == spec_id
        )
        with self.store._guard("read a validation"), self.store._read() as conn:
            r = conn.execute(query).first()
        return None if r is None else ValidationRow(r[0], int(r[1]), r[2])

    # -- rounds this hub announced -------------------------------------------------------

    def add_round(self, spec_id: str, epoch: int, origin: str, validators: list[str]) -> Round:
        """Record a round; an existing round of ``spec_id`` is replaced (a new epoch)."""
        now = datetime.now(UTC)
        row = {
            "spec_id": spec_id,
            "epoch": epoch,
            "origin": origin,
            "validators": json.dumps(validators),
            "requests": "{}",
            "created_at": now,
            "updated_at": now,
        }
        with self.store._guard("store a validation round"), self.store._write() as conn:
            conn.execute(sa.delete(rounds).where(rounds.c.spec_id == spec_id))
            conn.execute(sa.insert(rounds).values(**row))
        return Round(spec_id, epoch, origin, list(validators), {}, now)

    def set_request(self, spec_id: str, validator: str, answer: str) -> None:
        """What ``validator`` answered to this round's request."""
        with self.store._guard("update a validation round"), self.store._write() as conn:
            raw = conn.execute(
                sa.select(rounds.c.requests).where(rounds.c.spec_id == spec_id)
            ).scalar()
            if raw is None:
                raise StoreError(f"no validation round of {spec_id[:12]}")
            requests = json.loads(raw)
            requests[validator] = answer[:500]
            conn.execute(
                sa.update(rounds)
                .where(rounds.c.spec_id == spec_id)
                .values(requests=json.dumps(requests), updated_at=datetime.now(UTC))
            )

    def round(self, spec_id: str) -> Round | None:
        with self.store._guard("read a validation round"), self.store._read() as conn:
            r = conn.execute(sa.select(rounds).where(rounds.c.spec_id == spec_id)).first()
        if r is None:
            return None
        created = utc(r.created_at)
        assert created is not None  # the column is NOT NULL
        return Round(
            r.spec_id,
            int(r.epoch),
            r.origin,
            list(json.loads(r.validators)),
            dict(json.loads(r.requests)),
            created,
        )

    def round_ids(self) -> list[str]:
        """Spec ids of every round this hub announced."""
        with self.store._guard("read validation rounds"), self.store._read() as conn:
            return [r[0] for r in conn.execute(sa.select(rounds.c.spec_id))]
