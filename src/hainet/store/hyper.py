"""The hyper loop's records: runs, generations, meta-procedure versions, audit log.

``HyperStore(store)`` borrows the :class:`~hainet.store.Store`'s engine and its
``_write()`` (``BEGIN IMMEDIATE``) / ``_read()`` transactions.  Every generation is
written when it is made, so a crash loses at most the step in flight.  The audit log
has an append method and read methods only; the database refuses UPDATE and DELETE
on it (triggers from migration ``006_hyper``).

Control from another process goes through here too: ``hainet hyper approve`` /
``reject`` decide a pending generation, ``stop`` sets a flag the loop reads between
steps, ``rollback`` points the run back at an earlier generation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from hainet.errors import StoreError
from hainet.store.db import Store

__all__ = [
    "HYPER_SCHEMA_VERSION",
    "AuditEntry",
    "GenerationRecord",
    "GenerationStatus",
    "HyperRun",
    "HyperRunStatus",
    "HyperStore",
    "ProcedureRecord",
]

HYPER_SCHEMA_VERSION = 1

GenerationStatus = Literal["proposed", "pending_approval", "accepted", "rejected", "rolled_back"]
HyperRunStatus = Literal["running", "completed", "stopped", "failed"]

_md = sa.MetaData()
hyper_runs = sa.Table(
    "hyper_runs",
    _md,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20)),
    sa.Column("agent_name", sa.String(200)),
    sa.Column("root_spec_id", sa.String(64)),
    sa.Column("config", sa.JSON),
    sa.Column("current_generation_id", sa.String(32)),
    sa.Column("stop_requested", sa.Boolean),
    sa.Column("final", sa.JSON),
    sa.Column("error", sa.Text),
)
hyper_generations = sa.Table(
    "hyper_generations",
    _md,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("run_id", sa.String(32)),
    sa.Column("number", sa.Integer),
    sa.Column("parent_id", sa.String(32)),
    sa.Column("spec_id", sa.String(64)),
    sa.Column("spec_json", sa.Text),
    sa.Column("procedure_id", sa.String(64)),
    sa.Column("procedure_json", sa.Text),
    sa.Column("score", sa.Float),
    sa.Column("case_scores", sa.JSON),
    sa.Column("self_eval", sa.JSON),
    sa.Column("diff", sa.Text),
    sa.Column("operator", sa.String(40)),
    sa.Column("rationale", sa.Text),
    sa.Column("status", sa.String(20)),
    sa.Column("risk", sa.String(10)),
    sa.Column("reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("decided_by", sa.String(40)),
)
hyper_procedures = sa.Table(
    "hyper_procedures",
    _md,
    sa.Column("row", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(32)),
    sa.Column("procedure_id", sa.String(64)),
    sa.Column("procedure_json", sa.Text),
    sa.Column("parent_id", sa.String(64)),
    sa.Column("at_generation", sa.Integer),
    sa.Column("status", sa.String(20)),
    sa.Column("change", sa.JSON),
    sa.Column("evidence", sa.JSON),
    sa.Column("reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
)
hyper_audit = sa.Table(
    "hyper_audit",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(32)),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("actor", sa.String(40)),
    sa.Column("event", sa.String(40)),
    sa.Column("generation_id", sa.String(32)),
    sa.Column("details", sa.JSON),
)


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _now() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class HyperRun(_Record):
    """One run of the hyper loop over one agent."""

    schema_version: int = Field(default=HYPER_SCHEMA_VERSION, description="Record version.")
    id: str = Field(description="Run id (hex); any unique prefix finds it.")
    created_at: datetime
    finished_at: datetime | None = None
    status: HyperRunStatus = Field(description="running, completed, stopped or failed.")
    agent_name: str
    root_spec_id: str = Field(description="Id of the spec the run started from.")
    config: dict[str, Any] = Field(
        description="Generations, seed, model, risk level, hashes of the data sets, policy."
    )
    current_generation_id: str | None = Field(
        default=None, description="The generation the run stands on (best, or rolled back to)."
    )
    stop_requested: bool = Field(default=False, description="`hainet hyper stop` was given.")
    final: dict[str, Any] | None = Field(
        default=None, description="Baseline and final scores on the test set, with CIs."
    )
    error: str | None = None


class GenerationRecord(_Record):
    """One generation in the archive: a spec, how it was made, how it scored."""

    schema_version: int = Field(default=HYPER_SCHEMA_VERSION)
    id: str = Field(description="Generation id (hex).")
    run_id: str
    number: int = Field(description="0 is the starting spec; then one per loop step.")
    parent_id: str | None = Field(default=None, description="Generation it was derived from.")
    spec_id: str = Field(description="sha256 content id of the task spec.")
    spec_json: str = Field(description="The task spec, exactly as hashed and stored.")
    procedure_id: str = Field(description="Content id of the meta procedure that made it.")
    procedure_json: str = Field(description="The meta procedure at this generation.")
    score: float | None = Field(default=None, description="Mean score on the valset.")
    case_scores: dict[str, float] = Field(default_factory=dict, description="Valset per case.")
    self_eval: dict[str, Any] = Field(
        default_factory=dict,
        description="Efficiency, memory, consistency, calibration (see hyper.history).",
    )
    diff: str = Field(default="", description="Unified diff of the parent's spec to this one.")
    operator: str | None = Field(default=None, description="Evolution operator used.")
    rationale: str = ""
    status: GenerationStatus
    risk: str = Field(default="low", description="low, medium or high.")
    reason: str = Field(default="", description="Why it has its status.")
    created_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, description="loop, human or rollback.")


class ProcedureRecord(_Record):
    """One version of the meta procedure, with the loop's decision on it."""

    row: int
    run_id: str
    procedure_id: str
    procedure_json: str
    parent_id: str | None
    at_generation: int = Field(description="Generation number when it was proposed.")
    status: str = Field(description="initial, trial, kept, reverted or rejected.")
    change: dict[str, Any]
    evidence: dict[str, Any]
    reason: str
    created_at: datetime
    decided_at: datetime | None = None


class AuditEntry(_Record):
    """One line of the append-only audit log."""

    id: int
    run_id: str
    at: datetime
    actor: str = Field(description="loop, meta, control or human.")
    event: str
    generation_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


def _row(row: Any, *dates: str) -> dict[str, Any]:
    data = dict(row)
    for key in dates:
        data[key] = _utc(data[key])
    return data


class HyperStore:
    """Hyper-loop records in ``store``'s database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- runs ---------------------------------------------------------------------

    def create_run(self, *, agent_name: str, root_spec_id: str, config: dict[str, Any]) -> HyperRun:
        run = HyperRun(
            id=uuid.uuid4().hex,
            created_at=_now(),
            status="running",
            agent_name=agent_name,
            root_spec_id=root_spec_id,
            config=config,
        )
        with self.store._guard("create a hyper run"), self.store._write() as conn:
            conn.execute(sa.insert(hyper_runs).values(**run.model_dump()))
        return run

    def resolve_run(self, prefix: str | None) -> str:
        """A run id from a unique prefix; the newest run when ``prefix`` is None."""
        if prefix is None:
            runs = self.list_runs(limit=1)
            if not runs:
                raise StoreError(f"no hyper runs in {self.store.where}")
            return runs[0].id
        return self._resolve(prefix, hyper_runs, "hyper run")

    def _resolve(self, prefix: str, table: sa.Table, what: str) -> str:
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise StoreError(f"not a {what} id: {prefix!r}")
        with self.store._guard(f"look up a {what}"), self.store._read() as conn:
            ids = list(
                conn.scalars(sa.select(table.c.id).where(table.c.id.like(f"{prefix}%")).limit(2))
            )
        if not ids:
            raise StoreError(f"no {what} with id {prefix!r} in {self.store.where}")
        if len(ids) > 1:
            raise StoreError(f"{what} id {prefix!r} is ambiguous; give more characters")
        return str(ids[0])

    def get_run(self, run_id: str) -> HyperRun:
        run_id = self.resolve_run(run_id)
        with self.store._guard(f"read hyper run {run_id[:8]}"), self.store._read() as conn:
            row = conn.execute(sa.select(hyper_runs).where(hyper_runs.c.id == run_id)).mappings()
            data = _row(row.one(), "created_at", "finished_at")
        if data["schema_version"] > HYPER_SCHEMA_VERSION:
            raise StoreError(f"hyper run {run_id[:8]} was written by a newer hainet")
        return HyperRun.model_validate(data)

    def list_runs(self, *, limit: int = 50) -> list[HyperRun]:
        query = sa.select(hyper_runs).order_by(hyper_runs.c.created_at.desc()).limit(limit)
        with self.store._guard("list hyper runs"), self.store._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [HyperRun.model_validate(_row(r, "created_at", "finished_at")) for r in rows]

    def _update_run(self, run_id: str, **values: Any) -> None:
        with self.store._guard(f"update hyper run {run_id[:8]}"), self.store._write() as conn:
            conn.execute(sa.update(hyper_runs).where(hyper_runs.c.id == run_id).values(**values))

    def set_current(self, run_id: str, generation_id: str) -> None:
        self._update_run(run_id, current_generation_id=generation_id)

    def finish_run(
        self,
        run_id: str,
        status: HyperRunStatus,
        *,
        final: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> HyperRun:
        self._update_run(run_id, status=status, final=final, error=error, finished_at=_now())
        return self.get_run(run_id)

    def reopen_run(self, run_id: str) -> None:
        """Mark a run running again to resume it; a stale stop request is cleared."""
        self._update_run(run_id, status="running", finished_at=None, stop_requested=False)

    def request_stop(self, run_id: str, *, actor: str = "human") -> None:
        with self.store._guard(f"stop hyper run {run_id[:8]}"), self.store._write() as conn:
            conn.execute(
                sa.update(hyper_runs).where(hyper_runs.c.id == run_id).values(stop_requested=True)
            )
            self._audit(conn, run_id, actor, "stop_requested", None, {})

    def stop_requested(self, run_id: str) -> bool:
        with self.store._guard("read the stop flag"), self.store._read() as conn:
            value = conn.scalar(
                sa.select(hyper_runs.c.stop_requested).where(hyper_runs.c.id == run_id)
            )
        return bool(value)

    # -- generations ----------------------------------------------------------------

    def add_generation(self, gen: GenerationRecord, *, audit: dict[str, Any] | None = None) -> None:
        """Store a generation and (same transaction) its audit line."""
        with self.store._guard("store a generation"), self.store._write() as conn:
            conn.execute(sa.insert(hyper_generations).values(**gen.model_dump()))
            if audit is not None:
                self._audit(
                    conn, gen.run_id, audit.pop("actor", "loop"), audit.pop("event"), gen.id, audit
                )

    def resolve_generation(self, prefix: str) -> str:
        return self._resolve(prefix, hyper_generations, "generation")

    def get_generation(self, gen_id: str) -> GenerationRecord:
        gen_id = self.resolve_generation(gen_id)
        query = sa.select(hyper_generations).where(hyper_generations.c.id == gen_id)
        with self.store._guard(f"read generation {gen_id[:8]}"), self.store._read() as conn:
            row = conn.execute(query).mappings().one()
        return GenerationRecord.model_validate(_row(row, "created_at", "decided_at"))

    def generations(self, run_id: str) -> list[GenerationRecord]:
        query = (
            sa.select(hyper_generations)
            .where(hyper_generations.c.run_id == run_id)
            .order_by(hyper_generations.c.number, hyper_generations.c.created_at)
        )
        with self.store._guard(f"read generations of {run_id[:8]}"), self.store._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [GenerationRecord.model_validate(_row(r, "created_at", "decided_at")) for r in rows]

    def decide(
        self,
        gen_id: str,
        status: GenerationStatus,
        *,
        actor: str,
        reason: str = "",
        require: GenerationStatus | None = None,
    ) -> GenerationRecord:
        """Set a generation's status (and audit it) in one transaction.

        With ``require``, only a generation currently in that status is changed: two
        humans approving and rejecting at once cannot both win.
        """
        gen_id = self.resolve_generation(gen_id)
        with self.store._guard(f"decide generation {gen_id[:8]}"), self.store._write() as conn:
            row = conn.execute(
                sa.select(hyper_generations.c.run_id, hyper_generations.c.status).where(
                    hyper_generations.c.id == gen_id
                )
            ).one()
            if require is not None and row.status != require:
                raise StoreError(
                    f"generation {gen_id[:8]} is {row.status}, not {require}; nothing changed"
                )
            values: dict[str, Any] = {"status": status, "decided_at": _now(), "decided_by": actor}
            if reason:
                values["reason"] = reason
            conn.execute(
                sa.update(hyper_generations)
                .where(hyper_generations.c.id == gen_id)
                .values(**values)
            )
            self._audit(
                conn,
                row.run_id,
                actor,
                f"generation_{status}",
                gen_id,
                {"from": row.status, "reason": reason},
            )
        return self.get_generation(gen_id)

    def rollback(self, gen_id: str, *, actor: str = "human") -> GenerationRecord:
        """Point the run back at ``gen_id``: later accepted generations become
        ``rolled_back`` (kept in the archive, no longer parents or best)."""
        target = self.get_generation(gen_id)
        if target.status not in ("accepted",):
            raise StoreError(
                f"generation {target.id[:8]} is {target.status}; only an accepted generation "
                "can be rolled back to"
            )
        with self.store._guard(f"roll back to {target.id[:8]}"), self.store._write() as conn:
            undone = list(
                conn.scalars(
                    sa.select(hyper_generations.c.id).where(
                        hyper_generations.c.run_id == target.run_id,
                        hyper_generations.c.number > target.number,
                        hyper_generations.c.status.in_(("accepted", "pending_approval")),
                    )
                )
            )
            if undone:
                conn.execute(
                    sa.update(hyper_generations)
                    .where(hyper_generations.c.id.in_(undone))
                    .values(
                        status="rolled_back",
                        decided_at=_now(),
                        decided_by="rollback",
                        reason=f"rolled back to generation {target.number}",
                    )
                )
            conn.execute(
                sa.update(hyper_runs)
                .where(hyper_runs.c.id == target.run_id)
                .values(current_generation_id=target.id)
            )
            self._audit(
                conn,
                target.run_id,
                actor,
                "rollback",
                target.id,
                {"to_number": target.number, "spec_id": target.spec_id, "undone": undone},
            )
        return target

    # -- meta procedures ------------------------------------------------------------

    def add_procedure(
        self,
        run_id: str,
        *,
        procedure_id: str,
        procedure_json: str,
        parent_id: str | None,
        at_generation: int,
        status: str,
        change: dict[str, Any],
        reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> ProcedureRecord:
        values = {
            "run_id": run_id,
            "procedure_id": procedure_id,
            "procedure_json": procedure_json,
            "parent_id": parent_id,
            "at_generation": at_generation,
            "status": status,
            "change": change,
            "evidence": evidence or {},
            "reason": reason,
            "created_at": _now(),
        }
        with self.store._guard("store a meta procedure"), self.store._write() as conn:
            key = conn.execute(sa.insert(hyper_procedures).values(**values)).inserted_primary_key
            assert key is not None  # an INSERT always has one
            self._audit(
                conn,
                run_id,
                "meta",
                f"procedure_{status}",
                None,
                {
                    "procedure_id": procedure_id,
                    "parent_id": parent_id,
                    "change": change,
                    "reason": reason,
                },
            )
        return ProcedureRecord.model_validate({**values, "row": int(key[0])})

    def decide_procedure(
        self, row: int, status: str, *, reason: str, evidence: dict[str, Any]
    ) -> None:
        with self.store._guard("decide a meta procedure"), self.store._write() as conn:
            rec = conn.execute(
                sa.select(hyper_procedures.c.run_id, hyper_procedures.c.procedure_id).where(
                    hyper_procedures.c.row == row
                )
            ).one()
            conn.execute(
                sa.update(hyper_procedures)
                .where(hyper_procedures.c.row == row)
                .values(status=status, reason=reason, evidence=evidence, decided_at=_now())
            )
            self._audit(
                conn,
                rec.run_id,
                "meta",
                f"procedure_{status}",
                None,
                {"procedure_id": rec.procedure_id, "reason": reason, "evidence": evidence},
            )

    def procedures(self, run_id: str) -> list[ProcedureRecord]:
        query = (
            sa.select(hyper_procedures)
            .where(hyper_procedures.c.run_id == run_id)
            .order_by(hyper_procedures.c.row)
        )
        with self.store._guard("read meta procedures"), self.store._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [ProcedureRecord.model_validate(_row(r, "created_at", "decided_at")) for r in rows]

    # -- audit ------------------------------------------------------------------------

    @staticmethod
    def _audit(
        conn: Any,
        run_id: str,
        actor: str,
        event: str,
        generation_id: str | None,
        details: dict[str, Any],
    ) -> None:
        conn.execute(
            sa.insert(hyper_audit).values(
                run_id=run_id,
                at=_now(),
                actor=actor,
                event=event,
                generation_id=generation_id,
                details=details,
            )
        )

    def append_audit(
        self,
        run_id: str,
        *,
        actor: str,
        event: str,
        generation_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        with self.store._guard("append to the audit log"), self.store._write() as conn:
            self._audit(conn, run_id, actor, event, generation_id, details or {})

    def audit(self, run_id: str | None = None) -> list[AuditEntry]:
        query = sa.select(hyper_audit).order_by(hyper_audit.c.id)
        if run_id is not None:
            query = query.where(hyper_audit.c.run_id == run_id)
        with self.store._guard("read the audit log"), self.store._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [AuditEntry.model_validate(_row(r, "at")) for r in rows]
