"""The store's engine: opening and migrating, transactions, errors, owners and heartbeats.

:class:`StoreBase` is what every part of :class:`~hainet.store.Store` builds on
(``runs.py``, ``sweeps.py``; ``agents.py`` and ``hyper.py`` use a store's
transactions too).  See ``db.py`` for the rules it keeps (WAL, ``BEGIN IMMEDIATE``,
one transaction per write, nothing non-finite).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from hainet.errors import StoreError
from hainet.store.finite import NonFinite, json_dumps
from hainet.store.liveness import STALE_AFTER_S, Heartbeat, current_owner, why_dead
from hainet.store.migrations import migrate
from hainet.store.tables import runs, sweeps

__all__ = ["BUSY_TIMEOUT_MS", "StoreBase", "utc"]

BUSY_TIMEOUT_MS = 10_000


def utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _describe(url: sa.URL) -> str:
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


class StoreBase:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
                        utc(row.heartbeat_at),
                        utc(row.created_at) or now,
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


class _StoreErrors:
    """Turn database errors inside a ``with`` block into :class:`StoreError`."""

    def __init__(self, store: StoreBase, what: str) -> None:
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
