"""The store: the only code that writes SQL.

SQLite by default (``HAINET_HOME/hainet.db``), any SQLAlchemy URL through
``HAINET_DB`` (PostgreSQL included).  On SQLite: WAL, ``synchronous=FULL``,
``busy_timeout`` and ``BEGIN IMMEDIATE`` for every write transaction, because a plain
``BEGIN`` that upgrades to a write lock fails with "database is locked" under
concurrent writers (FIELD-NOTES.md: 1059 of 1200 lost; none with IMMEDIATE).
Each write is one transaction, so a crash never leaves a half-written record.

Runs and sweeps record their owner (host, pid, process start time) and a heartbeat;
opening the store or listing runs marks those whose owner is gone ``abandoned``
(``liveness.py`` says how it is judged).  Nothing non-finite is stored: NaN and
infinity in any JSON or float column are refused with a :class:`StoreError` naming
the field (JSON has no such numbers, and SQLite's ``json_extract`` fails on the
row).  The pydantic models stay lenient on reading so rows written before this
rule still load.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from hainet.errors import StoreError
from hainet.store.finite import NonFinite, check_finite, json_dumps
from hainet.store.liveness import STALE_AFTER_S, Heartbeat, current_owner, why_dead
from hainet.store.migrations import migrate
from hainet.store.models import SCHEMA_VERSION, CaseResult, Run, RunStatus, Sweep, SweepStatus

__all__ = ["Reuse", "Store"]

BUSY_TIMEOUT_MS = 10_000

_md = sa.MetaData()
runs = sa.Table(
    "runs",
    _md,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20)),
    sa.Column("model_name", sa.String(200)),
    sa.Column("backend", sa.String(50)),
    sa.Column("model", sa.JSON),
    sa.Column("params", sa.JSON),
    sa.Column("suites", sa.JSON),
    sa.Column("quick", sa.Boolean),
    sa.Column("load_s", sa.Float),
    sa.Column("peak_rss_mb", sa.Float),
    sa.Column("model_rss_mb", sa.Float),
    sa.Column("hardware", sa.JSON),
    sa.Column("versions", sa.JSON),
    sa.Column("summary", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("sweep_id", sa.String(32)),
    sa.Column("cell", sa.String(300)),
    sa.Column("owner_host", sa.String(255)),
    sa.Column("owner_pid", sa.Integer),
    sa.Column("owner_started", sa.Float),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
    sa.Column("superseded_by", sa.String(32)),
)
sweeps = sa.Table(
    "sweeps",
    _md,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("schema_version", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20)),
    sa.Column("plan", sa.JSON),
    sa.Column("plan_hash", sa.String(64)),
    sa.Column("cells", sa.Integer),
    sa.Column("loads", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("owner_host", sa.String(255)),
    sa.Column("owner_pid", sa.Integer),
    sa.Column("owner_started", sa.Float),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
)
results = sa.Table(
    "results",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(32)),
    sa.Column("schema_version", sa.Integer),
    sa.Column("suite", sa.String(100)),
    sa.Column("suite_version", sa.String(50)),
    sa.Column("case_id", sa.String(200)),
    sa.Column("prompt", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("score", sa.Float),
    sa.Column("explanation", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("ttft_s", sa.Float),
    sa.Column("prefill_tps", sa.Float),
    sa.Column("decode_tps", sa.Float),
    sa.Column("wall_s", sa.Float),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("details", sa.JSON),
    sa.Column("capability", sa.String(100)),
)

_RESULT_FIELDS = [c.name for c in results.columns if c.name not in ("id", "run_id")]
# Statuses of a run that ended without completing: resume may take its finished cases.
_UNFINISHED = ("abandoned", "interrupted", "failed")


class Reuse(NamedTuple):
    """Finished cases a new run takes over from an unfinished run of its cell."""

    run_id: str
    """The unfinished run (abandoned, interrupted or failed)."""
    cases: Collection[tuple[str, str, str, str]]
    """(suite, suite version, case id, rendered prompt) of every case the new run
    would send; only a stored, scored, error-free result matching one exactly is taken."""


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _describe(url: sa.URL) -> str:
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


class Store:
    """Open (creating and migrating if needed) the store at ``url``."""

    def __init__(self, url: str) -> None:
        try:
            self.url = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"not a database URL: {url!r} ({exc})") from None
        self.where = _describe(self.url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = self._make_engine()
            with self._write() as conn:
                self.migrations_run = migrate(conn)
            self._heart = Heartbeat(self.beat)
            self.reap()
        except StoreError:
            raise
        except ModuleNotFoundError as exc:
            raise StoreError(
                f"no database driver for {self.url.drivername}: {exc}",
                hint="pip install 'hainet[postgres]'" if "postgres" in url else None,
            ) from None
        except DBAPIError as exc:
            raise StoreError(self._explain(exc)) from None
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the store at {self.where}: {exc}") from None

    def _explain(self, exc: DBAPIError) -> str:
        msg = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if "file is not a database" in msg or "file is encrypted" in msg:
            return f"{self.where} is not a SQLite database ({msg}); it was left untouched"
        return f"cannot open the store at {self.where}: {msg}"

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self.url, pool_pre_ping=True, json_serializer=json_dumps)
        engine = sa.create_engine(
            self.url,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
            json_serializer=json_dumps,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's `begin` event below emit BEGIN; pysqlite's own
            # implicit transactions would start with a deferred BEGIN.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("hainet_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(hainet_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _guard(self, what: str) -> Any:
        return _StoreErrors(self, what)

    def close(self) -> None:
        self._heart.stop()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------

    def create_run(
        self,
        *,
        model_name: str,
        backend: str,
        model: dict[str, Any],
        params: dict[str, Any],
        suites: list[str],
        quick: bool = False,
        hardware: dict[str, Any] | None = None,
        versions: dict[str, str] | None = None,
        sweep_id: str | None = None,
        cell: str | None = None,
        reuse: Reuse | None = None,
    ) -> Run:
        """A new ``running`` run owned by this process.

        With ``reuse``, in the same transaction: the matching finished cases of that
        unfinished run are copied into the new one (returned as its ``results``), and
        the old run is closed for good: it keeps its status (abandoned, interrupted or
        failed) and its cases, gains ``superseded_by`` and a note in its error, and is
        never taken again.  Copying rather than reopening keeps every run one attempt
        with one owner and one hardware fingerprint, and keeps the old run's record as
        it was; the new run is the cell's one completed run, with every case.
        """
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
            model=model,
            params=params,
            suites=suites,
            quick=quick,
            hardware=hardware or {},
            versions=versions or {},
            owner_host=owner.host,
            owner_pid=owner.pid,
            owner_started=owner.started,
            heartbeat_at=now,
        )
        values = run.model_dump(exclude={"results"})
        check_finite("create a run", values)
        copied: list[CaseResult] | None = None
        with self._guard("create a run"), self._write() as conn:
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
        allowed = {"load_s", "peak_rss_mb", "model_rss_mb", "summary", "model"}
        bad = set(fields) - allowed
        if bad:
            raise StoreError(f"cannot update run fields {sorted(bad)}")
        check_finite(f"update run {run_id[:8]}", fields)
        with self._guard(f"update run {run_id[:8]}"), self._write() as conn:
            conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**fields))

    def finish_run(
        self, run_id: str, status: RunStatus, *, error: str | None = None, **fields: Any
    ) -> Run:
        check_finite(f"finish run {run_id[:8]}", fields)
        with self._guard(f"finish run {run_id[:8]}"), self._write() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, error=error, finished_at=datetime.now(UTC), **fields)
            )
        return self.get_run(run_id)

    # -- owners and heartbeats ----------------------------------------------------

    def beat(self) -> int:
        """Set the heartbeat of every running run and sweep this process owns; how many."""
        owner, now = current_owner(), datetime.now(UTC)
        n = 0
        with self._guard("record a heartbeat"), self._write() as conn:
            for table in (runs, sweeps):
                n += conn.execute(
                    sa.update(table)
                    .where(
                        table.c.status == "running",
                        table.c.owner_host == owner.host,
                        table.c.owner_pid == owner.pid,
                        table.c.owner_started == owner.started,
                    )
                    .values(heartbeat_at=now)
                ).rowcount
        return n

    def reap(self, *, stale_after_s: float = STALE_AFTER_S) -> list[str]:
        """Mark ``abandoned`` every running run and sweep whose owner is gone (see
        ``liveness.py``); return their ids.  Called when the store opens and before
        runs or sweeps are listed."""
        now = datetime.now(UTC)
        found: list[tuple[sa.Table, str, Any, str]] = []
        with self._guard("check running runs"), self._read() as conn:
            for table in (runs, sweeps):
                rows = conn.execute(
                    sa.select(
                        table.c.id,
                        table.c.owner_host,
                        table.c.owner_pid,
                        table.c.owner_started,
                        table.c.heartbeat_at,
                        table.c.created_at,
                    ).where(table.c.status == "running")
                ).all()
                for row in rows:
                    why = why_dead(
                        row.owner_host,
                        row.owner_pid,
                        row.owner_started,
                        _utc(row.heartbeat_at),
                        _utc(row.created_at) or now,
                        now,
                        stale_after_s,
                    )
                    if why is not None:
                        found.append((table, row.id, row.heartbeat_at, why))
        if not found:
            return []
        marked = []
        with self._guard("mark abandoned runs"), self._write() as conn:
            for table, row_id, heartbeat, why in found:
                # Unless it changed meanwhile (a heartbeat came, or it finished).
                done = conn.execute(
                    sa.update(table)
                    .where(
                        table.c.id == row_id,
                        table.c.status == "running",
                        table.c.heartbeat_at.is_not_distinct_from(heartbeat),
                    )
                    .values(status="abandoned", finished_at=now, error=why)
                ).rowcount
                if done:
                    marked.append(row_id)
        return marked

    def resolve_id(self, prefix: str, *, table: sa.Table = runs) -> str:
        what = "run" if table is runs else "sweep"
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise StoreError(f"not a {what} id: {prefix!r}")
        with self._guard(f"look up a {what}"), self._read() as conn:
            ids = list(
                conn.scalars(sa.select(table.c.id).where(table.c.id.like(f"{prefix}%")).limit(2))
            )
        if not ids:
            raise StoreError(f"no {what} with id {prefix!r} in {self.where}")
        if len(ids) > 1:
            raise StoreError(f"{what} id {prefix!r} is ambiguous; give more characters")
        return str(ids[0])

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

    # -- sweeps -----------------------------------------------------------------

    def create_sweep(self, *, plan: dict[str, Any], plan_hash: str, cells: int) -> Sweep:
        owner, now = current_owner(), datetime.now(UTC)
        sweep = Sweep(
            id=uuid.uuid4().hex,
            created_at=now,
            status="running",
            plan=plan,
            plan_hash=plan_hash,
            cells=cells,
            loads=0,
            owner_host=owner.host,
            owner_pid=owner.pid,
            owner_started=owner.started,
            heartbeat_at=now,
        )
        values = sweep.model_dump()
        check_finite("create a sweep", values)
        with self._guard("create a sweep"), self._write() as conn:
            conn.execute(sa.insert(sweeps).values(**values))
        self._heart.wanted()
        return sweep

    def get_sweep(self, sweep_id: str) -> Sweep:
        sweep_id = self.resolve_id(sweep_id, table=sweeps)
        with self._guard(f"read sweep {sweep_id[:8]}"), self._read() as conn:
            row = conn.execute(sa.select(sweeps).where(sweeps.c.id == sweep_id)).mappings().one()
        return self._sweep(row)

    def resumable_sweep(self, plan_hash: str) -> Sweep | None:
        """The newest sweep with this plan that did not complete, if any."""
        self.reap()
        query = (
            sa.select(sweeps)
            .where(sweeps.c.plan_hash == plan_hash, sweeps.c.status != "completed")
            .order_by(sweeps.c.created_at.desc())
            .limit(1)
        )
        with self._guard("look for a sweep to resume"), self._read() as conn:
            row = conn.execute(query).mappings().first()
        return self._sweep(row) if row else None

    def list_sweeps(self, *, limit: int = 20) -> list[Sweep]:
        self.reap()
        query = sa.select(sweeps).order_by(sweeps.c.created_at.desc()).limit(limit)
        with self._guard("list sweeps"), self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._sweep(r) for r in rows]

    def count_load(self, sweep_id: str) -> None:
        """One more model load in this sweep (atomic: workers may share the sweep)."""
        with self._guard(f"update sweep {sweep_id[:8]}"), self._write() as conn:
            conn.execute(
                sa.update(sweeps).where(sweeps.c.id == sweep_id).values(loads=sweeps.c.loads + 1)
            )

    def set_sweep_status(
        self, sweep_id: str, status: SweepStatus, *, error: str | None = None
    ) -> Sweep:
        """Set a sweep's status; ``running`` (a resume) makes this process its owner."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status, "error": error, "finished_at": now}
        if status == "running":
            owner = current_owner()
            values.update(
                finished_at=None,
                owner_host=owner.host,
                owner_pid=owner.pid,
                owner_started=owner.started,
                heartbeat_at=now,
            )
        with self._guard(f"update sweep {sweep_id[:8]}"), self._write() as conn:
            conn.execute(sa.update(sweeps).where(sweeps.c.id == sweep_id).values(**values))
        if status == "running":
            self._heart.wanted()
        return self.get_sweep(sweep_id)

    @staticmethod
    def _sweep(row: Any) -> Sweep:
        data = dict(row)
        for key in ("created_at", "finished_at", "heartbeat_at"):
            data[key] = _utc(data[key])
        return Sweep.model_validate(data)

    def results(self, run_id: str) -> list[CaseResult]:
        with self._guard(f"read results of run {run_id[:8]}"), self._read() as conn:
            return self._results(conn, run_id)

    @staticmethod
    def _results(conn: Connection, run_id: str) -> list[CaseResult]:
        rows = conn.execute(
            sa.select(*[results.c[f] for f in _RESULT_FIELDS])
            .where(results.c.run_id == run_id)
            .order_by(results.c.id)
        ).mappings()
        return [CaseResult.model_validate(dict(r)) for r in rows]

    @staticmethod
    def _run(row: Any, res: list[CaseResult] | None) -> Run:
        data = dict(row)
        for key in ("created_at", "finished_at", "heartbeat_at"):
            data[key] = _utc(data[key])
        if data.get("schema_version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise StoreError(
                f"run {data['id'][:8]} was written by a newer hainet (schema "
                f"{data['schema_version']}); upgrade hainet to read it"
            )
        return Run.model_validate({**data, "results": res})


class _StoreErrors:
    """Turn database errors inside a ``with`` block into :class:`StoreError`."""

    def __init__(self, store: Store, what: str) -> None:
        self.store, self.what = store, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if isinstance(exc, StatementError) and isinstance(exc.orig, NonFinite):
            raise StoreError(f"cannot {self.what}: {exc.orig}") from None
        if isinstance(exc, IntegrityError):
            raise StoreError(f"cannot {self.what}: {exc.orig}") from None
        if isinstance(exc, DBAPIError):
            raise StoreError(f"cannot {self.what}: {self.store._explain(exc)}") from None
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"cannot {self.what} in {self.store.where}: {exc}") from None
        return False
