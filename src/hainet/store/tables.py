"""The tables of runs, their results and sweeps, as the code reads and writes them now.

Their history is ``migrations.py``'s, where each migration defines its own tables; these
are the shape the migrations have produced so far: a new migration changes both."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["RESULT_FIELDS", "results", "runs", "sweeps"]

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

RESULT_FIELDS = [c.name for c in results.columns if c.name not in ("id", "run_id")]
"""The columns of a result that are fields of a ``CaseResult``."""
