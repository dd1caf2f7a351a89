"""What the network layer keeps: the highest sequence number per (signer, domain,
subject), the hub's publications (the exact bytes received, the gate's state) and
who owns each name on this hub (the first key to publish it).

``net/records.py`` decides what is valid; this module only stores it, in one
transaction per write like the rest of the store.  :meth:`Ledger.claim` is the
atomic half of the seq check: it refuses a seq not strictly above the stored one
even when two requests race past the read-only :meth:`Ledger.highest`.  Other store
modules claim a seq inside their own write transaction with :func:`claim_seq` (a
rating, a share), so the record and its seq are stored together or not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from hainet.errors import StoreError
from hainet.store.base import utc
from hainet.store.db import Store

__all__ = [
    "Ledger",
    "NameTaken",
    "Provenance",
    "Publication",
    "PublicationState",
    "SeqClaim",
    "claim_seq",
]

PublicationState = Literal["pending", "listed", "refused"]

_md = sa.MetaData()
seqs = sa.Table(
    "net_seqs",
    _md,
    sa.Column("signer", sa.String(64), primary_key=True),
    sa.Column("domain", sa.String(128), primary_key=True),
    sa.Column("subject", sa.String(256), primary_key=True),
    sa.Column("seq", sa.BigInteger),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
publications = sa.Table(
    "hub_publications",
    _md,
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("version", sa.String(50)),
    sa.Column("signer", sa.String(64)),
    sa.Column("seq", sa.BigInteger),
    sa.Column("record", sa.Text),
    sa.Column("spec_bytes", sa.Text),
    sa.Column("state", sa.String(20)),
    sa.Column("success_rate", sa.Float),
    sa.Column("message", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
names = sa.Table(
    "hub_names",
    _md,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(64)),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
)
provenance = sa.Table(
    "net_provenance",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("agent_id", sa.String(64)),
    sa.Column("hub", sa.String(2000)),
    sa.Column("signer", sa.String(64)),
    sa.Column("record", sa.Text),
    sa.Column("pulled_at", sa.DateTime(timezone=True)),
)


class SeqClaim(NamedTuple):
    """A record's seq to claim for (signer, domain, subject)."""

    signer: str
    domain: str
    subject: str
    seq: int


class NameTaken(StoreError):
    """Another key owns this name on this hub."""

    def __init__(self, name: str, owner: str) -> None:
        super().__init__(
            f"the name {name!r} belongs to key {owner[:12]} on this hub (the first key to "
            "publish it); publish under another name"
        )
        self.name, self.owner = name, owner


class Provenance(BaseModel):
    """Where a pulled agent came from."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    hub: str = Field(description="URL of the hub it was pulled from.")
    signer: str = Field(description="Key id that signed the publish record.")
    record: str = Field(description="The signed record as received.")
    pulled_at: datetime


class Publication(BaseModel):
    """An agent published to this hub: the signed record as received and its gate."""

    model_config = ConfigDict(frozen=True)

    agent_id: str = Field(description="Content hash of the spec.")
    name: str
    version: str
    signer: str = Field(description="Key id of the record's signer (the spec's author).")
    seq: int
    record: str = Field(description="The SignedRecord's JSON as it was received.")
    spec_bytes: str = Field(description="Canonical JSON of the spec, served as is.")
    state: PublicationState = Field(description="pending, then listed or refused.")
    success_rate: float | None = Field(default=None, description="The hub's gate rate.")
    message: str | None = Field(default=None, description="Why it was refused.")
    created_at: datetime
    updated_at: datetime


class Ledger:
    """Sequence numbers and publications on top of a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- sequence numbers ------------------------------------------------------------

    def highest(self, signer: str, domain: str, subject: str) -> int | None:
        """The highest seq stored for (signer, domain, subject), None if none."""
        query = sa.select(seqs.c.seq).where(
            seqs.c.signer == signer, seqs.c.domain == domain, seqs.c.subject == subject
        )
        with self.store._guard("read a sequence number"), self.store._read() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def claim(self, signer: str, domain: str, subject: str, seq: int) -> None:
        """Store ``seq`` as the highest; StoreError unless strictly above the stored."""
        with self.store._guard("record a sequence number"), self.store._write() as conn:
            claim_seq(conn, signer, domain, subject, seq)

    # -- names -----------------------------------------------------------------------

    def owner(self, name: str) -> str | None:
        """The key id that owns ``name`` on this hub, None if nobody published it."""
        query = sa.select(names.c.owner).where(names.c.name == name)
        with self.store._guard("read a name's owner"), self.store._read() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else str(value)

    # -- publications ------------------------------------------------------------------

    def add_publication(
        self,
        *,
        domain: str,
        subject: str,
        agent_id: str,
        name: str,
        version: str,
        signer: str,
        seq: int,
        record: str,
        spec_bytes: str,
    ) -> Publication:
        """Store a checked publish record as ``pending``, claim its seq for (signer,
        ``domain``, ``subject``) and, if nobody owns it yet, its name for the signer:
        in one transaction.  :class:`NameTaken` if another key owns the name."""
        now = datetime.now(UTC)
        row: dict[str, Any] = {
            "agent_id": agent_id,
            "name": name,
            "version": version,
            "signer": signer,
            "seq": seq,
            "record": record,
            "spec_bytes": spec_bytes,
            "state": "pending",
            "success_rate": None,
            "message": None,
            "created_at": now,
            "updated_at": now,
        }
        with self.store._guard(f"store publication of {name} {version}"), self.store._write() as c:
            if c.execute(
                sa.select(publications.c.agent_id).where(publications.c.agent_id == agent_id)
            ).first():
                raise StoreError(f"agent {name} {version} ({agent_id[:12]}) was already pushed")
            # The seq and the name are claimed in the same transaction: all three are
            # stored, or none.
            claim_seq(c, signer, domain, subject, seq)
            _claim_name(c, name, signer, now)
            c.execute(sa.insert(publications).values(**row))
        return Publication.model_validate(row)

    def set_state(
        self,
        agent_id: str,
        state: PublicationState,
        *,
        success_rate: float | None = None,
        message: str | None = None,
    ) -> None:
        with self.store._guard("record a gate result"), self.store._write() as conn:
            conn.execute(
                sa.update(publications)
                .where(publications.c.agent_id == agent_id)
                .values(
                    state=state,
                    success_rate=success_rate,
                    message=message,
                    updated_at=datetime.now(UTC),
                )
            )

    def publication(self, agent_id: str) -> Publication | None:
        query = sa.select(publications).where(publications.c.agent_id == agent_id)
        with self.store._guard("read a publication"), self.store._read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else self._pub(row)

    def publications(
        self,
        *,
        state: PublicationState | None = None,
        name: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Publication]:
        """Ordered by agent id; ``after`` is the cursor (the last id of a page)."""
        query = sa.select(publications).order_by(publications.c.agent_id).limit(limit)
        if state:
            query = query.where(publications.c.state == state)
        if name:
            query = query.where(publications.c.name == name)
        if after:
            query = query.where(publications.c.agent_id > after)
        with self.store._guard("list publications"), self.store._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._pub(r) for r in rows]

    def count(self, *, state: PublicationState | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(publications)
        if state:
            query = query.where(publications.c.state == state)
        with self.store._guard("count publications"), self.store._read() as conn:
            return int(conn.execute(query).scalar() or 0)

    # -- provenance of pulled agents ----------------------------------------------------

    def add_provenance(self, agent_id: str, *, hub: str, signer: str, record: str) -> None:
        row = {
            "agent_id": agent_id,
            "hub": hub,
            "signer": signer,
            "record": record,
            "pulled_at": datetime.now(UTC),
        }
        with self.store._guard("record where an agent came from"), self.store._write() as conn:
            conn.execute(sa.insert(provenance).values(**row))

    def provenance(self, agent_id: str) -> list[Provenance]:
        query = (
            sa.select(provenance).where(provenance.c.agent_id == agent_id).order_by(provenance.c.id)
        )
        with self.store._guard("read provenance"), self.store._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Provenance.model_validate(
                {k: v for k, v in r.items() if k != "id"} | {"pulled_at": utc(r["pulled_at"])}
            )
            for r in rows
        ]

    @staticmethod
    def _pub(row: Any) -> Publication:
        data = dict(row)
        data["created_at"] = utc(data["created_at"])
        data["updated_at"] = utc(data["updated_at"])
        return Publication.model_validate(data)


def _claim_name(conn: Any, name: str, signer: str, now: datetime) -> None:
    owner = conn.execute(sa.select(names.c.owner).where(names.c.name == name)).scalar()
    if owner is None:
        try:
            # A savepoint: on PostgreSQL a failed statement would abort the whole
            # transaction; a racing first claim of the name lands here.
            with conn.begin_nested():
                conn.execute(sa.insert(names).values(name=name, owner=signer, claimed_at=now))
            return
        except IntegrityError:
            owner = conn.execute(sa.select(names.c.owner).where(names.c.name == name)).scalar()
    if owner != signer:
        raise NameTaken(name, str(owner))


def claim_seq(conn: Any, signer: str, domain: str, subject: str, seq: int) -> None:
    """The seq claim inside a caller's write transaction (store modules only).

    StoreError ("replayed or older") unless ``seq`` is strictly above the stored
    one, also when a concurrent transaction claims the same key first (PostgreSQL
    reports that as a unique violation on commit order, SQLite serialises writers)."""
    key = (seqs.c.signer == signer, seqs.c.domain == domain, seqs.c.subject == subject)
    have = conn.execute(sa.select(seqs.c.seq).where(*key)).scalar()
    if have is not None and seq <= int(have):
        raise StoreError(
            f"{domain} seq {seq} from {signer[:12]} for {subject!r} is not above "
            f"the highest stored ({have}): replayed or older"
        )
    now = datetime.now(UTC)
    if have is None:
        try:
            conn.execute(
                sa.insert(seqs).values(
                    signer=signer, domain=domain, subject=subject, seq=seq, updated_at=now
                )
            )
        except IntegrityError:
            raise StoreError(
                f"{domain} seq {seq} from {signer[:12]} for {subject!r}: another record "
                "of this signer and subject was stored at the same time: replayed or older"
            ) from None
    else:
        # Compare-and-set: a concurrent update between our read and this write
        # (PostgreSQL, READ COMMITTED) leaves no row matching the old seq.
        done = conn.execute(
            sa.update(seqs).where(*key, seqs.c.seq == have).values(seq=seq, updated_at=now)
        )
        if done.rowcount != 1:
            raise StoreError(
                f"{domain} seq {seq} from {signer[:12]} for {subject!r}: a newer record "
                "of this signer and subject was stored at the same time: replayed or older"
            )
