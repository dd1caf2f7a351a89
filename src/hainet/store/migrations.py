"""Append-only, named migrations, applied in order when the store opens.

Never edit or reorder a migration that has shipped: add a new one at the end.  Each
migration defines the tables it creates with its own ``MetaData`` so that later
changes to ``tables.py`` do not rewrite history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["MIGRATIONS", "applied", "migrate"]

Migration = Callable[[Connection], None]

_ledger = sa.Table(
    "hainet_migrations",
    sa.MetaData(),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


def m001_runs_and_results(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "runs",
        md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("backend", sa.String(50), nullable=False),
        sa.Column("model", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("suites", sa.JSON, nullable=False),
        sa.Column("quick", sa.Boolean, nullable=False),
        sa.Column("load_s", sa.Float),
        sa.Column("peak_rss_mb", sa.Float),
        sa.Column("model_rss_mb", sa.Float),
        sa.Column("hardware", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
    )
    sa.Table(
        "results",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("suite", sa.String(100), nullable=False),
        sa.Column("suite_version", sa.String(50), nullable=False),
        sa.Column("case_id", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("ttft_s", sa.Float),
        sa.Column("prefill_tps", sa.Float),
        sa.Column("decode_tps", sa.Float),
        sa.Column("wall_s", sa.Float),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.UniqueConstraint("run_id", "suite", "case_id", name="uq_results_case"),
    )
    md.create_all(conn)


def m002_index_runs_by_time(conn: Connection) -> None:
    # `hainet runs list` orders by time; without this it scans every run.
    conn.execute(sa.text("CREATE INDEX ix_runs_created_at ON runs (created_at)"))


def m003_result_details(conn: Connection) -> None:
    # Samples, sub-checks and pass@k of a case; capability of its suite.
    conn.execute(sa.text("ALTER TABLE results ADD COLUMN details JSON"))
    conn.execute(sa.text("ALTER TABLE results ADD COLUMN capability VARCHAR(100)"))


def m004_sweeps(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "sweeps",
        md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False, index=True),
        sa.Column("cells", sa.Integer, nullable=False),
        sa.Column("loads", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
    )
    md.create_all(conn)
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN sweep_id VARCHAR(32)"))
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN cell VARCHAR(300)"))
    conn.execute(sa.text("CREATE INDEX ix_runs_sweep ON runs (sweep_id)"))


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_runs_and_results", m001_runs_and_results),
    ("002_index_runs_by_time", m002_index_runs_by_time),
    ("003_result_details", m003_result_details),
    ("004_sweeps", m004_sweeps),
]


def applied(conn: Connection) -> list[str]:
    _ledger.create(conn, checkfirst=True)
    return [r[0] for r in conn.execute(sa.select(_ledger.c.name).order_by(_ledger.c.name))]


def migrate(
    conn: Connection, migrations: Sequence[tuple[str, Migration]] = MIGRATIONS
) -> list[str]:
    """Apply the migrations not yet in the ledger; return their names.  Run inside a
    write transaction so that two processes opening the store do not race."""
    done = set(applied(conn))
    ran = []
    for name, fn in migrations:
        if name in done:
            continue
        fn(conn)
        conn.execute(sa.insert(_ledger).values(name=name, applied_at=datetime.now(UTC)))
        ran.append(name)
    return ran
