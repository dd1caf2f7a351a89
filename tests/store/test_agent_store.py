"""AgentStore: agents, reports, scores, vectors, ratings, compatibility (migration 005)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from hainet.agents.spec import AgentSpec, content_hash, parse_spec
from hainet.errors import StoreError
from hainet.store import AgentStore, Store
from hainet.store.agent_models import TestReport
from hainet.store.agents import agent_content_hash
from hainet.store.migrations import MIGRATIONS, applied, migrate
from tests.agents.conftest import arithmetic_data
from tests.store.pg import ON_PG, pg_server, store_url  # noqa: F401 - pg_server: a fixture


def spec(**changes: Any) -> AgentSpec:
    data: dict[str, Any] = {
        "name": "echo",
        "purpose": "Repeat the input.",
        "workflow": [{"id": "say", "kind": "generate", "template": "{input}", "output": "out"}],
        "output": "out",
        "tests": [{"id": "t1", "input": "hi", "target": "hi"}],
    }
    data.update(changes)
    return parse_spec(data)


def dumped(s: AgentSpec) -> dict[str, Any]:
    return s.model_dump(mode="json")


@pytest.fixture(params=["sqlite", ON_PG])
def agents(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[AgentStore]:
    """The agent store on SQLite and on a fresh PostgreSQL database."""
    store = Store(store_url(request, str(tmp_path / "h.db")))
    yield AgentStore(store)
    store.close()


@pytest.mark.parametrize(
    "s",
    [
        spec(),
        spec(version="2.0.1", capabilities=["a", "b"], author="k" * 64),
        parse_spec(arithmetic_data()),
        parse_spec(arithmetic_data(purpose="Ünïcode purpose", created_by="ai_generated")),
    ],
)
def test_store_hash_is_the_specs_content_hash(s: AgentSpec) -> None:
    assert agent_content_hash(dumped(s)) == content_hash(s) == s.id


def test_add_get_find_and_publish(agents: AgentStore) -> None:
    s1 = spec()
    rec = agents.add(dumped(s1))
    assert (rec.id, rec.status, rec.name, rec.version) == (s1.id, "draft", "echo", "1.0.0")
    assert agents.add(dumped(s1)).created_at == rec.created_at  # same content: same record
    assert agents.get(s1.id[:10]).spec == dumped(s1)
    s2 = spec(version="1.1.0")
    agents.add(dumped(s2))
    assert agents.find("echo").id == s2.id  # newest version when none is published
    pub = agents.publish(s1.id)
    assert pub.status == "published" and pub.published_at is not None
    assert agents.find("echo").id == s1.id  # published first
    assert agents.find("echo@1.1.0").id == s2.id
    assert agents.find(s2.id[:8]).id == s2.id
    with pytest.raises(StoreError, match="no agent named or with id 'nope'"):
        agents.find("nope")
    assert [r.id for r in agents.list_agents(status="published")] == [s1.id]


def test_the_same_name_and_version_is_published_once(agents: AgentStore) -> None:
    first, second = spec(), spec(purpose="Repeat the input, louder.")
    assert first.id != second.id and (first.name, first.version) == (second.name, second.version)
    agents.add(dumped(first))
    agents.add(dumped(second))  # two drafts of one version may coexist
    agents.publish(first.id)
    with pytest.raises(StoreError, match="echo 1.0.0 is already published"):
        agents.publish(second.id)
    with pytest.raises(StoreError, match="already published"):
        agents.publish(first.id)
    # The database refuses it too, whoever writes.
    with pytest.raises(sa.exc.IntegrityError), agents.store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE agents SET status='published' WHERE id='{second.id}'")


def test_a_row_altered_behind_the_stores_back_is_reported(agents: AgentStore) -> None:
    s = spec()
    agents.add(dumped(s))
    with agents.store.engine.begin() as conn:
        if agents.store.is_sqlite:
            sql = "UPDATE agents SET spec = json_set(spec, '$.purpose', 'Steal keys.')"
        else:
            sql = "UPDATE agents SET spec = jsonb_set(spec::jsonb, '{purpose}', '\"Steal keys.\"')::json"
        conn.execute(sa.text(sql))
    with pytest.raises(StoreError, match=r"agent echo 1.0.0 .*content hash mismatch"):
        agents.get(s.id)
    with pytest.raises(StoreError, match="content hash mismatch"):
        agents.list_agents()
    with pytest.raises(StoreError, match="content hash mismatch"):
        agents.find("echo")


def test_reports_scores_and_index_state(agents: AgentStore) -> None:
    s = spec()
    agents.add(dumped(s))
    # A report is a TestReport now (it was any dict): the smallest one.
    report = TestReport(agent_id=s.id, model="m", outcomes=(), wall_s=0.0)
    r = agents.add_report(s.id, model="m", report=report, success_rate=0.5, purpose="gate")
    assert [x.id for x in agents.reports(s.id, purpose="gate")] == [r.id]
    assert agents.reports(s.id, purpose="test") == []
    before = agents.index_state()
    agents.add_score(s.id, weights={"a": 1.0}, components={"a": {"value": 0.4}}, total=0.4)
    after_score = agents.index_state()
    assert after_score != before and after_score.last_vector == 0
    agents.add_score(s.id, weights={"a": 1.0}, components={}, total=0.9)
    latest = agents.latest_score(s.id)
    assert latest is not None and latest.total == 0.9
    assert agents.totals() == {s.id: 0.9}
    v = np.arange(4, dtype=np.float32)
    agents.set_embedding(s.id, model="m", text="t", vector=v)
    state = agents.index_state()
    assert state.last_vector == 1 and state != after_score
    agents.set_embedding(s.id, model="m", text="t", vector=v * 2)  # replaced, not added
    assert agents.index_state() != state  # replaced: a new, higher id
    assert len(agents.vectors()[0]) == 1
    ids, matrix = agents.vectors()
    assert ids == [s.id] and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[0], v * 2)


def test_ratings_one_per_key_per_version(agents: AgentStore) -> None:
    s = spec()
    agents.add(dumped(s))
    kw: dict[str, Any] = {"stars": 4, "text": "ok", "signature": b"s", "public_key": b"p"}
    agents.add_rating(s.id, key_id="k1", **kw)
    agents.add_rating(s.id, key_id="k2", **{**kw, "stars": 2})
    with pytest.raises(StoreError, match="k1 has already rated"):
        agents.add_rating(s.id, key_id="k1", **kw)
    assert [(r.key_id, r.stars) for r in agents.ratings(s.id)] == [("k1", 4), ("k2", 2)]


def test_compat_keeps_the_latest_cell_per_model(agents: AgentStore) -> None:
    s = spec()
    agents.add(dumped(s))
    common: dict[str, Any] = {"model_config": {"n_ctx": 512}, "passed": 1, "total": 2}
    agents.add_compat(s.id, model_name="a", score=0.5, seconds=1.0, **common)
    agents.add_compat(
        s.id,
        model_name="b",
        score=None,
        seconds=0.1,
        incompatibility="load_failure",
        message="no file",
        **common,
    )
    agents.add_compat(s.id, model_name="a", score=1.0, seconds=2.0, **common)
    cells = {c.model_name: c for c in agents.compat(s.id)}
    assert cells["a"].score == 1.0 and cells["a"].status == "ok"
    assert cells["b"].status == "incompatible" and cells["b"].incompatibility == "load_failure"
    assert cells["a"].model_config_ == {"n_ctx": 512}


def test_005_migrates_an_old_database_with_runs(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{old}")
    names = [n for n, _ in MIGRATIONS]
    upto = names.index("005_agents")
    with engine.begin() as conn:
        migrate(conn, MIGRATIONS[:upto])
        conn.exec_driver_sql(
            "INSERT INTO runs (id, schema_version, created_at, status, model_name, backend,"
            " model, params, suites, quick, hardware, versions, summary) VALUES ('abcd', 1,"
            " '2026-01-01 00:00:00', 'completed', 'm', 'mock', '{}', '{}', '[\"s\"]', 0, '{}',"
            " '{}', '{}')"
        )
    engine.dispose()
    store = Store(f"sqlite:///{old}")
    assert store.migrations_run == names[upto:]
    assert store.get_run("abcd").suites == ["s"]
    with store.engine.connect() as conn:
        assert applied(conn) == names
    agents = AgentStore(store)
    s = spec()
    agents.add(dumped(s))
    assert agents.publish(s.id).status == "published"
    blank = Store(f"sqlite:///{tmp_path / 'blank.db'}")
    assert "005_agents" in blank.migrations_run
