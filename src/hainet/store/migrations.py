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


def m005_agents(conn: Connection) -> None:
    # The agent marketplace.  An agent's id is the sha256 of its canonical content, so
    # a row is one exact version; (name, version) is unique only among published rows
    # (drafts of the same version may coexist while being edited).
    md = sa.MetaData()
    agents = sa.Table(
        "agents",
        md,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("created_by", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    sa.Index("ix_agents_name", agents.c.name)
    sa.Index(
        "uq_agents_published_version",
        agents.c.name,
        agents.c.version,
        unique=True,
        sqlite_where=agents.c.status == "published",
        postgresql_where=agents.c.status == "published",
    )
    sa.Table(
        "agent_reports",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column(
            "agent_id",
            sa.String(64),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("success_rate", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "agent_scores",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column(
            "agent_id",
            sa.String(64),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("weights", sa.JSON, nullable=False),
        sa.Column("components", sa.JSON, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "agent_embeddings",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "agent_id",
            sa.String(64),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "agent_ratings",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column(
            "agent_id",
            sa.String(64),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("key_id", sa.String(200), nullable=False),
        sa.Column("stars", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("agent_id", "key_id", name="uq_agent_ratings_key"),
    )
    sa.Table(
        "agent_compat",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column(
            "agent_id",
            sa.String(64),
            sa.ForeignKey("agents.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_config", sa.JSON, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("incompatibility", sa.String(40)),
        sa.Column("message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    md.create_all(conn)


def m006_hyper(conn: Connection) -> None:
    # Self-improving agents: runs of the hyper loop, every generation they made, the
    # meta procedure's versions, and an append-only audit log.  Specs and procedures
    # are kept as the exact JSON text that was hashed, so a rollback restores them
    # byte for byte (a JSON column may re-serialize).
    md = sa.MetaData()
    sa.Table(
        "hyper_runs",
        md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("agent_name", sa.String(200), nullable=False),
        sa.Column("root_spec_id", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("current_generation_id", sa.String(32)),
        sa.Column("stop_requested", sa.Boolean, nullable=False),
        sa.Column("final", sa.JSON),
        sa.Column("error", sa.Text),
    )
    sa.Table(
        "hyper_generations",
        md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("schema_version", sa.Integer, nullable=False),
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("hyper_runs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("parent_id", sa.String(32)),
        sa.Column("spec_id", sa.String(64), nullable=False),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("procedure_id", sa.String(64), nullable=False),
        sa.Column("procedure_json", sa.Text, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("case_scores", sa.JSON, nullable=False),
        sa.Column("self_eval", sa.JSON, nullable=False),
        sa.Column("diff", sa.Text, nullable=False),
        sa.Column("operator", sa.String(40)),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("risk", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.String(40)),
    )
    sa.Table(
        "hyper_procedures",
        md,
        sa.Column("row", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("hyper_runs.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("procedure_id", sa.String(64), nullable=False),
        sa.Column("procedure_json", sa.Text, nullable=False),
        sa.Column("parent_id", sa.String(64)),
        sa.Column("at_generation", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("change", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    sa.Table(
        "hyper_audit",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False, index=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("generation_id", sa.String(32)),
        sa.Column("details", sa.JSON, nullable=False),
    )
    md.create_all(conn)
    # The audit log is append-only in the database too, not only in the API.
    if conn.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER hyper_audit_no_{op.lower()} BEFORE {op} ON hyper_audit "
                    "BEGIN SELECT RAISE(ABORT, 'hyper_audit is append-only'); END"
                )
            )
    elif conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                "CREATE FUNCTION hyper_audit_append_only() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'hyper_audit is append-only'; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            sa.text(
                "CREATE TRIGGER hyper_audit_append_only BEFORE UPDATE OR DELETE ON hyper_audit "
                "FOR EACH ROW EXECUTE FUNCTION hyper_audit_append_only()"
            )
        )


def m007_run_owners(conn: Connection) -> None:
    # Who runs a run or sweep (host, pid, process start time) and its last sign of
    # life, so one whose process died can be told from one still going; the run a
    # resume started in place of an unfinished one.  Rows from before stay NULL: the
    # store judges them by their creation time (store/liveness.py).
    stamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "TIMESTAMP"
    for table in ("runs", "sweeps"):
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN owner_host VARCHAR(255)"))
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN owner_pid INTEGER"))
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN owner_started FLOAT"))
        conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN heartbeat_at {stamp}"))
        # Opening the store looks for running rows: an index, not a scan.
        conn.execute(sa.text(f"CREATE INDEX ix_{table}_status ON {table} (status)"))
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN superseded_by VARCHAR(32)"))


def m008_net_ledger(conn: Connection) -> None:
    # The network layer (net/records.py, hub/): the highest seq per (signer, domain,
    # subject), so a replayed or older signed record is refused, and the hub's
    # publications: the record and exact spec bytes received, and the gate's state.
    md = sa.MetaData()
    sa.Table(
        "net_seqs",
        md,
        sa.Column("signer", sa.String(64), primary_key=True),
        sa.Column("domain", sa.String(128), primary_key=True),
        sa.Column("subject", sa.String(256), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    pubs = sa.Table(
        "hub_publications",
        md,
        sa.Column("agent_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("signer", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("spec_bytes", sa.Text, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("success_rate", sa.Float),
        sa.Column("message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Index("ix_hub_publications_name", pubs.c.name)
    md.create_all(conn)


def m009_net_provenance(conn: Connection) -> None:
    # Where a pulled agent came from: the hub, the signer and the signed record as
    # received, so a draft pulled from a hub can be traced to its author's key.
    md = sa.MetaData()
    sa.Table(
        "net_provenance",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent_id", sa.String(64), nullable=False, index=True),
        sa.Column("hub", sa.String(2000), nullable=False),
        sa.Column("signer", sa.String(64), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
    )
    md.create_all(conn)


def m010_hub_shares(conn: Connection) -> None:
    # Bench results shared with a hub (net/shares.py): one row per (signer, subject,
    # the hash of the sharer's run id); a higher seq replaces it.  The aggregation
    # keys are columns, the signed payload is kept as received.
    md = sa.MetaData()
    shares = sa.Table(
        "hub_shares",
        md,
        sa.Column("signer", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("quantization", sa.String(50)),
        sa.Column("hardware_class", sa.String(1000), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Index("ix_hub_shares_model", shares.c.model, shares.c.quantization)
    md.create_all(conn)


def m011_hub_names(conn: Connection) -> None:
    # Names are first-come per hub: the first key to publish a name owns it there,
    # and only that key may publish further versions of it (hub/service.py).  The
    # owner is claimed in the publication's own transaction; a hub that already holds
    # publications gives each name to the signer of its earliest one.
    md = sa.MetaData()
    names = sa.Table(
        "hub_names",
        md,
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )
    md.create_all(conn)
    pubs = sa.table(
        "hub_publications",
        sa.column("name", sa.String),
        sa.column("signer", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    first: dict[str, tuple[str, datetime]] = {}
    rows = conn.execute(
        sa.select(pubs.c.name, pubs.c.signer, pubs.c.created_at).order_by(
            pubs.c.created_at, pubs.c.signer
        )
    )
    for name, signer, created_at in rows:
        first.setdefault(name, (signer, created_at))
    for name, (owner, at) in first.items():
        conn.execute(sa.insert(names).values(name=name, owner=owner, claimed_at=at))


def m012_net_validations(conn: Connection) -> None:
    # Community validation (net/validation.py, hub/validation.py): the signed
    # agent.validation records a hub made or collected, one per (signer, spec id),
    # the highest seq kept; and the rounds this hub announced as the origin, with
    # the validator set it recomputed then (a set member that died still counts as
    # missing, never silently replaced).
    md = sa.MetaData()
    sa.Table(
        "net_validations",
        md,
        sa.Column("signer", sa.String(64), primary_key=True),
        sa.Column("spec_id", sa.String(64), primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("success_rate", sa.Float, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    sa.Table(
        "net_validation_rounds",
        md,
        sa.Column("spec_id", sa.String(64), primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("validators", sa.Text, nullable=False),
        sa.Column("requests", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    md.create_all(conn)


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_runs_and_results", m001_runs_and_results),
    ("002_index_runs_by_time", m002_index_runs_by_time),
    ("003_result_details", m003_result_details),
    ("004_sweeps", m004_sweeps),
    ("005_agents", m005_agents),
    ("006_hyper", m006_hyper),
    ("007_run_owners", m007_run_owners),
    ("008_net_ledger", m008_net_ledger),
    ("009_net_provenance", m009_net_provenance),
    ("010_hub_shares", m010_hub_shares),
    ("011_hub_names", m011_hub_names),
    ("012_net_validations", m012_net_validations),
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
