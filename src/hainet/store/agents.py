"""The marketplace's records: agents, their test reports, scores, search vectors,
ratings and the agent x model compatibility matrix.

The store sits below ``hainet.agents`` (ARCHITECTURE.md), so it keeps a spec as the
JSON mapping the agents layer dumped and checks its integrity itself: an agent's id
is the sha256 of its canonical content (``agents/spec.py``, ``content_hash``), and
:meth:`AgentStore.get` recomputes it from the stored JSON.  A row altered behind the
store's back (a raw SQL ``UPDATE``) is reported as a content hash mismatch naming the
agent, never handed out.  The agents layer re-parses what it reads and calls
``spec.verify()`` on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hainet.errors import StoreError
from hainet.store.agent_models import (
    AGENT_SCHEMA_VERSION,
    AgentRecord,
    AgentStatus,
    CompatRecord,
    Incompatibility,
    IndexState,
    RatingRecord,
    ReportRecord,
    ScoreRecord,
    TestReport,
    agent_content_hash,
)
from hainet.store.base import utc as _utc
from hainet.store.db import Store
from hainet.store.ledger import SeqClaim, claim_seq

__all__ = [
    "AGENT_SCHEMA_VERSION",
    "AgentRecord",
    "AgentStatus",
    "AgentStore",
    "CompatRecord",
    "IndexState",
    "Incompatibility",
    "RatingRecord",
    "ReportRecord",
    "ScoreRecord",
    "agent_content_hash",
]


_md = sa.MetaData()
agents = sa.Table(
    "agents",
    _md,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("name", sa.String(200)),
    sa.Column("version", sa.String(50)),
    sa.Column("spec", sa.JSON),
    sa.Column("status", sa.String(20)),
    sa.Column("author", sa.String(200)),
    sa.Column("created_by", sa.String(20)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("published_at", sa.DateTime(timezone=True)),
)
reports = sa.Table(
    "agent_reports",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("agent_id", sa.String(64)),
    sa.Column("model", sa.String(200)),
    sa.Column("purpose", sa.String(20)),
    sa.Column("report", sa.JSON),
    sa.Column("success_rate", sa.Float),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
scores = sa.Table(
    "agent_scores",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("agent_id", sa.String(64)),
    sa.Column("weights", sa.JSON),
    sa.Column("components", sa.JSON),
    sa.Column("total", sa.Float),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
embeddings = sa.Table(
    "agent_embeddings",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("agent_id", sa.String(64)),
    sa.Column("model", sa.String(200)),
    sa.Column("text", sa.Text),
    sa.Column("vector", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
ratings = sa.Table(
    "agent_ratings",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("agent_id", sa.String(64)),
    sa.Column("key_id", sa.String(200)),
    sa.Column("stars", sa.Integer),
    sa.Column("text", sa.Text),
    sa.Column("signature", sa.LargeBinary),
    sa.Column("public_key", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)
compat = sa.Table(
    "agent_compat",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("agent_id", sa.String(64)),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_config", sa.JSON),
    sa.Column("score", sa.Float),
    sa.Column("passed", sa.Integer),
    sa.Column("total", sa.Integer),
    sa.Column("seconds", sa.Float),
    sa.Column("status", sa.String(20)),
    sa.Column("incompatibility", sa.String(40)),
    sa.Column("message", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)


class AgentStore:
    """Agent records on top of a :class:`Store` (its engine and transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- agents -----------------------------------------------------------------

    def add(self, spec: dict[str, Any]) -> AgentRecord:
        """Store a spec as a draft; an agent already stored (same id) is returned."""
        agent_id = str(spec.get("id", ""))
        self._check_hash(agent_id, spec, str(spec.get("name", "?")), str(spec.get("version")))
        row = {
            "id": agent_id,
            "schema_version": AGENT_SCHEMA_VERSION,
            "name": spec["name"],
            "version": spec["version"],
            "spec": spec,
            "status": "draft",
            "author": spec.get("author"),
            "created_by": spec.get("created_by", "human"),
            "created_at": datetime.now(UTC),
            "published_at": None,
        }
        with self.store._guard(f"store agent {spec['name']}"), self.store._write() as conn:
            if conn.execute(sa.select(agents.c.id).where(agents.c.id == agent_id)).first() is None:
                conn.execute(sa.insert(agents).values(**row))
        return self.get(agent_id)

    def add_many(self, specs: Sequence[dict[str, Any]], *, published: bool = False) -> int:
        """Store many specs in one transaction (imports, benchmarks); returns how
        many were new.  ``published`` marks them published without a gate: for data
        that was gated elsewhere."""
        now = datetime.now(UTC)
        rows = []
        for spec in specs:
            self._check_hash(str(spec["id"]), spec, spec["name"], spec["version"])
            rows.append(
                {
                    "id": spec["id"],
                    "schema_version": AGENT_SCHEMA_VERSION,
                    "name": spec["name"],
                    "version": spec["version"],
                    "spec": spec,
                    "status": "published" if published else "draft",
                    "author": spec.get("author"),
                    "created_by": spec.get("created_by", "human"),
                    "created_at": now,
                    "published_at": now if published else None,
                }
            )
        with self.store._guard("store agents"), self.store._write() as conn:
            have = set(conn.scalars(sa.select(agents.c.id)))
            new = [r for r in rows if r["id"] not in have]
            if new:
                conn.execute(sa.insert(agents), new)
        return len(new)

    def publish(self, agent_id: str) -> AgentRecord:
        """Mark an agent published; refused when that name and version already is."""
        rec = self.get(agent_id)
        if rec.status == "published":
            raise StoreError(self._already(rec, rec.id))
        with self.store._write() as conn:
            other = conn.execute(
                sa.select(agents.c.id).where(
                    agents.c.name == rec.name,
                    agents.c.version == rec.version,
                    agents.c.status == "published",
                )
            ).scalar()
            if other is not None:
                raise StoreError(self._already(rec, str(other)))
            try:
                conn.execute(
                    sa.update(agents)
                    .where(agents.c.id == rec.id)
                    .values(status="published", published_at=datetime.now(UTC))
                )
            except IntegrityError:  # a concurrent publisher won the race
                raise StoreError(self._already(rec, "another id")) from None
        return self.get(rec.id)

    @staticmethod
    def _already(rec: AgentRecord, other: str) -> str:
        return (
            f"agent {rec.name} {rec.version} is already published (id {other[:12]}); "
            "a published version is immutable: bump the version to publish a change"
        )

    def get(self, agent_id: str) -> AgentRecord:
        """The agent with this id or unique id prefix, its content hash checked."""
        agent_id = self.resolve_id(agent_id)
        with self.store._guard(f"read agent {agent_id[:12]}"), self.store._read() as conn:
            row = conn.execute(sa.select(agents).where(agents.c.id == agent_id)).mappings().one()
        return self._agent(row)

    def resolve_id(self, prefix: str) -> str:
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise StoreError(f"not an agent id: {prefix!r}")
        with self.store._guard("look up an agent"), self.store._read() as conn:
            ids = list(
                conn.scalars(sa.select(agents.c.id).where(agents.c.id.like(f"{prefix}%")).limit(2))
            )
        if not ids:
            raise StoreError(f"no agent with id {prefix!r} in {self.store.where}")
        if len(ids) > 1:
            raise StoreError(f"agent id {prefix!r} is ambiguous; give more characters")
        return str(ids[0])

    def find(self, ref: str) -> AgentRecord:
        """``ref`` is an id prefix, a name (its newest published version, else its
        newest draft) or ``name@version``."""
        name, _, version = ref.partition("@")
        query = sa.select(agents).where(agents.c.name == name)
        if version:
            query = query.where(agents.c.version == version)
        with self.store._guard(f"look up agent {ref}"), self.store._read() as conn:
            rows = conn.execute(query).mappings().all()
        if rows:
            # Published first, then the newest; versions compare numerically.
            def key(r: Any) -> tuple[bool, tuple[int, ...], datetime]:
                parts = tuple(int(p) for p in str(r["version"]).split(".") if p.isdigit())
                return (r["status"] == "published", parts, _utc(r["created_at"]) or _EPOCH)

            return self._agent(max(rows, key=key))
        if version:
            raise StoreError(f"no agent {name} version {version} in {self.store.where}")
        try:
            return self.get(ref)
        except StoreError:
            raise StoreError(
                f"no agent named or with id {ref!r} in {self.store.where}",
                hint="hainet agents list shows the stored agents",
            ) from None

    def list_agents(
        self, *, status: AgentStatus | None = None, name: str | None = None, limit: int = 200
    ) -> list[AgentRecord]:
        query = sa.select(agents).order_by(agents.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(agents.c.status == status)
        if name:
            query = query.where(agents.c.name == name)
        with self.store._guard("list agents"), self.store._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._agent(r) for r in rows]

    def get_many(self, ids: Sequence[str]) -> dict[str, AgentRecord]:
        """Agents by exact id (search results); missing ids are left out."""
        with self.store._guard("read agents"), self.store._read() as conn:
            rows = conn.execute(sa.select(agents).where(agents.c.id.in_(list(ids)))).mappings()
            return {r["id"]: self._agent(r) for r in rows}

    def _agent(self, row: Any) -> AgentRecord:
        data = dict(row)
        if data.get("schema_version", AGENT_SCHEMA_VERSION) > AGENT_SCHEMA_VERSION:
            raise StoreError(
                f"agent {data['id'][:12]} was written by a newer hainet (schema "
                f"{data['schema_version']}); upgrade hainet to read it"
            )
        spec = data["spec"]
        if not isinstance(spec, dict):
            raise StoreError(
                f"agent {data['name']} {data['version']}: stored spec is not a mapping"
            )
        self._check_hash(data["id"], spec, data["name"], data["version"])
        data["created_at"] = _utc(data["created_at"])
        data["published_at"] = _utc(data["published_at"])
        return AgentRecord.model_validate(data)

    @staticmethod
    def _check_hash(agent_id: str, spec: dict[str, Any], name: str, version: str) -> None:
        actual = agent_content_hash(spec)
        if actual != agent_id or spec.get("id") != agent_id:
            raise StoreError(
                f"agent {name} {version} ({agent_id[:12]}): content hash mismatch (content "
                f"hashes to {actual[:12]}): the record was altered after it was stored",
                hint="re-add the agent from its source file; do not edit the store by hand",
            )

    # -- reports and scores -------------------------------------------------------

    def add_report(
        self,
        agent_id: str,
        *,
        model: str,
        report: TestReport,
        success_rate: float,
        purpose: str = "test",
    ) -> ReportRecord:
        row = {
            "schema_version": AGENT_SCHEMA_VERSION,
            "agent_id": agent_id,
            "model": model,
            "purpose": purpose,
            "report": report.model_dump(),
            "success_rate": success_rate,
            "created_at": datetime.now(UTC),
        }
        with (
            self.store._guard(f"store a report of agent {agent_id[:12]}"),
            self.store._write() as c,
        ):
            row["id"] = _new_id(c.execute(sa.insert(reports).values(**row)))
        return ReportRecord.model_validate(row)

    def reports(self, agent_id: str, *, purpose: str | None = None) -> list[ReportRecord]:
        query = sa.select(reports).where(reports.c.agent_id == agent_id).order_by(reports.c.id)
        if purpose:
            query = query.where(reports.c.purpose == purpose)
        with self.store._guard(f"read reports of agent {agent_id[:12]}"), self.store._read() as c:
            rows = c.execute(query).mappings().all()
        return [
            ReportRecord.model_validate({**r, "created_at": _utc(r["created_at"])}) for r in rows
        ]

    def add_score(
        self, agent_id: str, *, weights: dict[str, float], components: dict[str, Any], total: float
    ) -> ScoreRecord:
        row = {
            "schema_version": AGENT_SCHEMA_VERSION,
            "agent_id": agent_id,
            "weights": weights,
            "components": components,
            "total": total,
            "created_at": datetime.now(UTC),
        }
        with self.store._guard(f"store a score of agent {agent_id[:12]}"), self.store._write() as c:
            row["id"] = _new_id(c.execute(sa.insert(scores).values(**row)))
        return ScoreRecord.model_validate(row)

    def add_scores(
        self, rows: Sequence[tuple[str, dict[str, float], dict[str, Any], float]]
    ) -> None:
        """Many ``(agent_id, weights, components, total)`` in one transaction."""
        now = datetime.now(UTC)
        values = [
            {
                "schema_version": AGENT_SCHEMA_VERSION,
                "agent_id": a,
                "weights": w,
                "components": c,
                "total": t,
                "created_at": now,
            }
            for a, w, c, t in rows
        ]
        with self.store._guard("store scores"), self.store._write() as conn:
            if values:
                conn.execute(sa.insert(scores), values)

    def latest_score(self, agent_id: str) -> ScoreRecord | None:
        query = sa.select(scores).where(scores.c.agent_id == agent_id).order_by(scores.c.id.desc())
        with self.store._guard(f"read the score of agent {agent_id[:12]}"), self.store._read() as c:
            row = c.execute(query.limit(1)).mappings().first()
        return (
            ScoreRecord.model_validate({**row, "created_at": _utc(row["created_at"])})
            if row
            else None
        )

    def totals(self, *, after: int = 0, agent_ids: Sequence[str] | None = None) -> dict[str, float]:
        """The latest total score of every scored agent; only those scored after
        row ``after`` (what changed since an :class:`IndexState`), or only
        ``agent_ids``, when given."""
        query = (
            sa.select(scores.c.agent_id, scores.c.total)
            .where(scores.c.id > after)
            .order_by(scores.c.id)
        )
        if agent_ids is not None:
            query = query.where(scores.c.agent_id.in_(list(agent_ids)))
        with self.store._guard("read scores"), self.store._read() as conn:
            return {a: float(t) for a, t in conn.execute(query)}

    # -- the search index -----------------------------------------------------------

    def set_embedding(
        self, agent_id: str, *, model: str, text: str, vector: npt.NDArray[np.float32]
    ) -> None:
        self.set_embeddings([(agent_id, text, vector)], model=model)

    def set_embeddings(
        self,
        items: Sequence[tuple[str, str, npt.NDArray[np.float32]]],
        *,
        model: str,
    ) -> None:
        """Store (or replace) the search vectors of agents, one transaction."""
        now = datetime.now(UTC)
        rows = [
            {
                "agent_id": a,
                "model": model,
                "text": t,
                "vector": np.asarray(v, dtype="<f4").tobytes(),
                "created_at": now,
            }
            for a, t, v in items
        ]
        ids = [r["agent_id"] for r in rows]
        with self.store._guard("store search vectors"), self.store._write() as conn:
            # Replace rather than update, with ids above every id so far (taken before
            # the delete: SQLite would reuse a deleted max rowid), so that a new max id
            # tells readers the index changed (index_state).  Every insert goes through
            # here, inside the write lock, so explicit ids cannot collide.
            last = int(conn.execute(sa.select(sa.func.max(embeddings.c.id))).scalar() or 0)
            conn.execute(sa.delete(embeddings).where(embeddings.c.agent_id.in_(ids)))
            for i, row in enumerate(rows, start=last + 1):
                row["id"] = i
            if rows:
                conn.execute(sa.insert(embeddings), rows)

    def index_state(self) -> IndexState:
        """Two max() on primary keys: microseconds at any size.  No count(*): it
        scans an index (7 ms at 100,000 agents, 24 ms together with a max()).
        Vectors are only ever replaced with higher ids (set_embeddings), so a
        write always raises a max."""
        with self.store._guard("read the search index state"), self.store._read() as conn:
            last = conn.execute(sa.select(sa.func.max(embeddings.c.id))).scalar()
            last_score = conn.execute(sa.select(sa.func.max(scores.c.id))).scalar()
        return IndexState(int(last or 0), int(last_score or 0))

    def vectors(self, *, after: int = 0) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Stored search vectors (those written after row ``after``): agent ids and
        an ``(n, d)`` float32 matrix."""
        with self.store._guard("read search vectors"), self.store._read() as conn:
            rows = conn.execute(
                sa.select(embeddings.c.agent_id, embeddings.c.vector)
                .where(embeddings.c.id > after)
                .order_by(embeddings.c.id)
            ).all()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        ids = [str(r[0]) for r in rows]
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
        return ids, matrix.astype(np.float32, copy=False)

    # -- ratings ------------------------------------------------------------------

    def add_rating(
        self,
        agent_id: str,
        *,
        key_id: str,
        stars: int,
        text: str,
        signature: bytes,
        public_key: bytes,
        claim: SeqClaim | None = None,
    ) -> RatingRecord:
        """Store a rating (one per key per agent); with ``claim``, the signed record's
        seq is claimed in the same transaction (both are stored, or neither)."""
        rec = RatingRecord(
            agent_id=agent_id,
            key_id=key_id,
            stars=stars,
            text=text,
            signature=signature,
            public_key=public_key,
            created_at=datetime.now(UTC),
        )
        what = f"store a rating of agent {agent_id[:12]}"
        with self.store._guard(what), self.store._write() as conn:
            if claim is not None:
                claim_seq(conn, *claim)
            try:
                conn.execute(sa.insert(ratings).values(**rec.model_dump()))
            except IntegrityError:
                raise StoreError(
                    f"key {key_id} has already rated agent {agent_id[:12]}: "
                    "one rating per key per version"
                ) from None
        return rec

    def ratings(self, agent_id: str) -> list[RatingRecord]:
        query = sa.select(ratings).where(ratings.c.agent_id == agent_id).order_by(ratings.c.id)
        with self.store._guard(f"read ratings of agent {agent_id[:12]}"), self.store._read() as c:
            rows = c.execute(query).mappings().all()
        return [
            RatingRecord.model_validate(
                {k: v for k, v in r.items() if k != "id"} | {"created_at": _utc(r["created_at"])}
            )
            for r in rows
        ]

    # -- compatibility --------------------------------------------------------------

    def add_compat(
        self,
        agent_id: str,
        *,
        model_name: str,
        model_config: dict[str, Any],
        score: float | None,
        passed: int,
        total: int,
        seconds: float,
        incompatibility: Incompatibility | None = None,
        message: str | None = None,
    ) -> CompatRecord:
        row = {
            "schema_version": AGENT_SCHEMA_VERSION,
            "agent_id": agent_id,
            "model_name": model_name,
            "model_config": model_config,
            "score": score,
            "passed": passed,
            "total": total,
            "seconds": seconds,
            "status": "incompatible" if incompatibility else "ok",
            "incompatibility": incompatibility,
            "message": message,
            "created_at": datetime.now(UTC),
        }
        with self.store._guard(f"store compatibility of {agent_id[:12]}"), self.store._write() as c:
            row["id"] = _new_id(c.execute(sa.insert(compat).values(**row)))
        return CompatRecord.model_validate(row)

    def compat(self, agent_id: str) -> list[CompatRecord]:
        """The matrix row of an agent: the latest cell per model configuration."""
        query = sa.select(compat).where(compat.c.agent_id == agent_id).order_by(compat.c.id)
        with self.store._guard(f"read compatibility of {agent_id[:12]}"), self.store._read() as c:
            rows = c.execute(query).mappings().all()
        latest = {r["model_name"]: r for r in rows}
        return [
            CompatRecord.model_validate({**r, "created_at": _utc(r["created_at"])})
            for r in latest.values()
        ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:  # pragma: no cover - every insert here has an autoincrement key
        raise StoreError("the database returned no row id")
    return int(key[0])
