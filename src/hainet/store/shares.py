"""Bench results shared with a hub: one row per (signer, subject), stored with its
seq claim in one transaction (see ``ledger.py``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from hainet.store.db import Store
from hainet.store.ledger import claim_seq

__all__ = ["RecordRow", "ShareRow", "ShareStore"]

_md = sa.MetaData()
shares = sa.Table(
    "hub_shares",
    _md,
    sa.Column("signer", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger),
    sa.Column("model", sa.String(200)),
    sa.Column("quantization", sa.String(50)),
    sa.Column("hardware_class", sa.String(1000)),
    sa.Column("payload", sa.Text),
    sa.Column("record", sa.Text),
    sa.Column("expires_at", sa.BigInteger),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)


class ShareRow(NamedTuple):
    signer: str
    payload: str
    """The signed payload's canonical JSON."""


class RecordRow(NamedTuple):
    signer: str
    subject: str
    record: str
    """The signed record exactly as the hub received it."""


class ShareStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    def put(
        self,
        *,
        domain: str,
        signer: str,
        subject: str,
        seq: int,
        model: str,
        quantization: str | None,
        hardware_class: str,
        payload: str,
        record: str,
        expires_at: int,
    ) -> None:
        """Store a share (replacing the signer's earlier one of this subject) and claim
        its seq, in one transaction."""
        row: dict[str, Any] = {
            "signer": signer,
            "subject": subject,
            "seq": seq,
            "model": model,
            "quantization": quantization,
            "hardware_class": hardware_class,
            "payload": payload,
            "record": record,
            "expires_at": expires_at,
            "created_at": datetime.now(UTC),
        }
        key = (shares.c.signer == signer, shares.c.subject == subject)
        with self.store._guard("store a shared result"), self.store._write() as conn:
            claim_seq(conn, signer, domain, subject, seq)
            conn.execute(sa.delete(shares).where(*key))
            conn.execute(sa.insert(shares).values(**row))

    def rows(
        self, *, model: str | None = None, now: float | None = None, limit: int = 100_000
    ) -> list[ShareRow]:
        """Unexpired shares, optionally of one model."""
        now_s = int(time.time() if now is None else now)
        query = (
            sa.select(shares.c.signer, shares.c.payload)
            .where(shares.c.expires_at > now_s)
            .order_by(shares.c.model, shares.c.signer, shares.c.subject)
            .limit(limit)
        )
        if model:
            query = query.where(shares.c.model == model)
        with self.store._guard("read shared results"), self.store._read() as conn:
            return [ShareRow(r[0], r[1]) for r in conn.execute(query)]

    def records(
        self,
        *,
        model: str,
        after: tuple[str, str] | None = None,
        limit: int = 50,
        now: float | None = None,
    ) -> list[RecordRow]:
        """Unexpired shares of ``model`` as received, by (signer, subject), from
        after the ``after`` key (a page's last)."""
        now_s = int(time.time() if now is None else now)
        query = (
            sa.select(shares.c.signer, shares.c.subject, shares.c.record)
            .where(shares.c.model == model, shares.c.expires_at > now_s)
            .order_by(shares.c.signer, shares.c.subject)
            .limit(limit)
        )
        if after is not None:
            signer, subject = after
            query = query.where(
                sa.or_(
                    shares.c.signer > signer,
                    sa.and_(shares.c.signer == signer, shares.c.subject > subject),
                )
            )
        with self.store._guard("read shared records"), self.store._read() as conn:
            return [RecordRow(r[0], r[1], r[2]) for r in conn.execute(query)]

    def models(self, *, now: float | None = None, limit: int = 10_000) -> list[str]:
        """The distinct models of unexpired shares (what a hub announces it holds)."""
        now_s = int(time.time() if now is None else now)
        query = (
            sa.select(shares.c.model)
            .where(shares.c.expires_at > now_s)
            .distinct()
            .order_by(shares.c.model)
            .limit(limit)
        )
        with self.store._guard("list shared models"), self.store._read() as conn:
            return [str(r[0]) for r in conn.execute(query)]
