"""Runs and their per-case results: creating, resuming, updating, finishing, reading."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hainet.errors import StoreError
from hainet.store.base import StoreBase, utc
from hainet.store.finite import check_finite
from hainet.store.liveness import current_owner
from hainet.store.models import SCHEMA_VERSION, CaseResult, Run, RunStatus
from hainet.store.records import Hardware, Record, RunParams, RunSummary, StoredModel, coerce
from hainet.store.tables import RESULT_FIELDS, results, runs

__all__ = ["Reuse", "RunsStore"]

# Statuses of a run that ended without completing: resume may take its finished cases.
_UNFINISHED = ("abandoned", "interrupted", "failed")
# The JSON columns of a run that hold a record, and the record each holds.
_RECORDS: dict[str, type[Record]] = {
    "summary": RunSummary,
    "model": StoredModel,
    "params": RunParams,
    "hardware": Hardware,
}


class Reuse(NamedTuple):
    """Finished cases a new run takes over from an unfinished run of its cell."""

    run_id: str
    """The unfinished run (abandoned, interrupted or failed)."""
    cases: Collection[tuple[str, str, str, str]]
    """(suite, suite version, case id, rendered prompt) of every case the new run
    would send; only a stored, scored, error-free result matching one exactly is taken."""


def _columns(what: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` as column values: a record (or its dict form) as its dict form."""
    out = dict(fields)
    for name, kind in _RECORDS.items():
        if name in out:
            out[name] = coerce(kind, out[name], what, name).model_dump()
    return out


class RunsStore(StoreBase):
    """The runs part of :class:`~hainet.store.Store`."""

    def create_run(
        self,
        *,
        model_name: str,
        backend: str,
        model: StoredModel | Mapping[str, Any],
        params: RunParams | Mapping[str, Any],
        suites: list[str],
        quick: bool = False,
        hardware: Hardware | Mapping[str, Any] | None = None,
        versions: dict[str, str] | None = None,
        sweep_id: str | None = None,
        cell: str | None = None,
        reuse: Reuse | None = None,
    ) -> Run:
        """A new ``running`` run owned by this process.

        ``model``, ``params`` and ``hardware`` are records or their dict form (checked
        against the record; what was given is what is stored).  With ``reuse``, in
        the same transaction: the matching finished cases of that unfinished run are
        copied into the new one (returned as its ``results``), and the old run is
        closed for good: it keeps its status (abandoned, interrupted or failed) and
        its cases, gains ``superseded_by`` and a note in its error, and is never taken
        again.  Copying rather than reopening keeps every run one attempt with one
        owner and one hardware fingerprint, and keeps the old run's record as it was;
        the new run is the cell's one completed run, with every case.
        """
        what = "create a run"
        owner = current_owner()
        now = datetime.now(UTC)
        run = Run(
            sweep_id=sweep_id,
            cell=cell,
            id=uuid.uuid4().hex,
            created_at=now,
            status="running",
            model_name=model_name,
            backend=backend,
            model=coerce(StoredModel, model, what, "model"),
            params=coerce(RunParams, params, what, "params"),
            suites=suites,
            quick=quick,
            hardware=coerce(Hardware, hardware or {}, what, "hardware"),
            versions=versions or {},
            owner_host=owner.host,
            owner_pid=owner.pid,
            owner_started=owner.started,
            heartbeat_at=now,
        )
        values = run.model_dump(exclude={"results"})
        check_finite(what, values)
        copied: list[CaseResult] | None = None
        with self._guard(what), self._write() as conn:
            conn.execute(sa.insert(runs).values(**values))
            if reuse is not None:
                copied = self._take_over(conn, reuse, run.id)
        self._heart.wanted()
        return run.model_copy(update={"results": copied}) if copied is not None else run

    def _take_over(self, conn: Connection, reuse: Reuse, new_id: str) -> list[CaseResult]:
        old = conn.execute(
            sa.select(runs.c.status, runs.c.error, runs.c.superseded_by).where(
                runs.c.id == reuse.run_id
            )
        ).one_or_none()
        if old is None or old.status not in _UNFINISHED:
            raise StoreError(f"run {reuse.run_id[:8]} is not an unfinished run to resume from")
        if old.superseded_by is not None:
            raise StoreError(
                f"run {reuse.run_id[:8]} was already resumed by run {old.superseded_by[:8]}"
            )
        wanted = set(reuse.cases)
        taken = [
            r
            for r in self._results(conn, reuse.run_id)
            if r.error is None
            and r.score is not None
            and (r.suite, r.suite_version, r.case_id, r.prompt) in wanted
        ]
        if taken:
            conn.execute(sa.insert(results), [{"run_id": new_id, **r.model_dump()} for r in taken])
        note = f"superseded by run {new_id[:8]}, which took its {len(taken)} finished cases"
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == reuse.run_id)
            .values(superseded_by=new_id, error=f"{old.error}; {note}" if old.error else note)
        )
        return taken

    def resumable_run(self, sweep_id: str, cell: str) -> Run | None:
        """The newest unfinished, not yet superseded run of this cell that has finished,
        scored cases: what a resumed cell takes its cases from (see ``create_run``)."""
        self.reap()
        has_cases = (
            sa.select(results.c.id)
            .where(
                results.c.run_id == runs.c.id,
                results.c.error.is_(None),
                results.c.score.is_not(None),
            )
            .exists()
        )
        query = (
            sa.select(runs)
            .where(
                runs.c.sweep_id == sweep_id,
                runs.c.cell == cell,
                runs.c.status.in_(_UNFINISHED),
                runs.c.superseded_by.is_(None),
                has_cases,
            )
            .order_by(runs.c.created_at.desc())
            .limit(1)
        )
        with self._guard(f"look for a run of {cell} to resume"), self._read() as conn:
            row = conn.execute(query).mappings().first()
        return self._run(row, None) if row else None

    def add_result(self, run_id: str, result: CaseResult) -> None:
        """Store one case's result in its own transaction (a crash loses at most it).

        The run's heartbeat is set in the same transaction: no extra commit."""
        values = result.model_dump()
        check_finite(f"store a result of run {run_id[:8]}", values)
        with self._guard(f"store a result of run {run_id[:8]}"), self._write() as conn:
            conn.execute(sa.insert(results).values(run_id=run_id, **values))
            conn.execute(
                sa.update(runs).where(runs.c.id == run_id).values(heartbeat_at=datetime.now(UTC))
            )

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set ``load_s``, ``peak_rss_mb``, ``model_rss_mb``, ``summary`` (a
        :class:`RunSummary` or its dict form) or ``model`` (a :class:`StoredModel`)."""
        allowed = {"load_s", "peak_rss_mb", "model_rss_mb", "summary", "model"}
        bad = set(fields) - allowed
        if bad:
            raise StoreError(f"cannot update run fields {sorted(bad)}")
        what = f"update run {run_id[:8]}"
        values = _columns(what, fields)
        check_finite(what, values)
        with self._guard(what), self._write() as conn:
            conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))

    def finish_run(
        self, run_id: str, status: RunStatus, *, error: str | None = None, **fields: Any
    ) -> Run:
        """Close a run with its status; ``fields`` as :meth:`update_run` takes them."""
        what = f"finish run {run_id[:8]}"
        values = _columns(what, fields)
        check_finite(what, values)
        with self._guard(what), self._write() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, error=error, finished_at=datetime.now(UTC), **values)
            )
        return self.get_run(run_id)

    def get_run(self, run_id: str, *, with_results: bool = False) -> Run:
        run_id = self.resolve_id(run_id)
        with self._guard(f"read run {run_id[:8]}"), self._read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()
            res = self._results(conn, run_id) if with_results else None
        return self._run(row, res)

    def list_runs(self, *, limit: int = 50, status: RunStatus | None = None) -> list[Run]:
        self.reap()
        query = sa.select(runs).order_by(runs.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(runs.c.status == status)
        with self._guard("list runs"), self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._run(r, None) for r in rows]

    def runs_of_sweep(self, sweep_id: str) -> list[Run]:
        self.reap()
        query = sa.select(runs).where(runs.c.sweep_id == sweep_id).order_by(runs.c.created_at)
        with self._guard(f"list runs of sweep {sweep_id[:8]}"), self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._run(r, None) for r in rows]

    def count_results(self, sweep_id: str) -> int:
        """Cases stored so far by every run of a sweep (progress of worker processes)."""
        query = (
            sa.select(sa.func.count())
            .select_from(results.join(runs, results.c.run_id == runs.c.id))
            .where(runs.c.sweep_id == sweep_id)
        )
        with self._guard(f"count results of sweep {sweep_id[:8]}"), self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def results(self, run_id: str) -> list[CaseResult]:
        with self._guard(f"read results of run {run_id[:8]}"), self._read() as conn:
            return self._results(conn, run_id)

    @staticmethod
    def _results(conn: Connection, run_id: str) -> list[CaseResult]:
        rows = conn.execute(
            sa.select(*[results.c[f] for f in RESULT_FIELDS])
            .where(results.c.run_id == run_id)
            .order_by(results.c.id)
        ).mappings()
        return [CaseResult.model_validate(dict(r)) for r in rows]

    @staticmethod
    def _run(row: Any, res: list[CaseResult] | None) -> Run:
        data = dict(row)
        for key in ("created_at", "finished_at", "heartbeat_at"):
            data[key] = utc(data[key])
        if data.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise StoreError(
                f"run {data['id'][:8]} was written by a newer hainet (schema "
                f"{data['schema_version']}); upgrade hainet to read it"
            )
        return Run.model_validate({**data, "results": res})
