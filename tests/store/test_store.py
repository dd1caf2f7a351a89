import multiprocessing
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from hainet.errors import StoreError
from hainet.store import CaseResult, Store
from hainet.store.migrations import MIGRATIONS, applied, migrate

from .pg import pg_bin, postgres_server


def new_run(store: Store) -> str:
    return store.create_run(
        model_name="m", backend="mock", model={"name": "m"}, params={"temperature": 0}, suites=["s"]
    ).id


def result(i: int, score: float | None = 1.0) -> CaseResult:
    return CaseResult(
        suite="s",
        case_id=f"c{i}",
        prompt=f"p{i}",
        output="o",
        score=score,
        ttft_s=0.1,
        decode_tps=10.0,
        prompt_tokens=3,
        completion_tokens=2,
    )


def exercise(store: Store) -> None:
    run_id = new_run(store)
    for i in range(3):
        store.add_result(run_id, result(i))
    store.update_run(run_id, load_s=0.5)
    run = store.finish_run(
        run_id, "completed", summary={"suites": {"s": {"score": 1.0}}}, peak_rss_mb=400.0
    )
    assert run.status == "completed" and run.load_s == 0.5 and run.peak_rss_mb == 400.0
    assert run.finished_at is not None and run.finished_at >= run.created_at
    full = store.get_run(run_id[:10], with_results=True)
    assert [r.case_id for r in full.results or []] == ["c0", "c1", "c2"]
    assert full.schema_version == 2  # schema 2: typed summary, params, model, hardware
    assert [r.id for r in store.list_runs()][0] == run_id
    with pytest.raises(StoreError, match="cannot store a result"):
        store.add_result(run_id, result(0))  # same case twice


def test_sqlite_roundtrip_and_pragmas(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'h.db'}") as store:
        exercise(store)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


@pytest.mark.postgres
@pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL binaries missing (make test installs)")
def test_postgresql_roundtrip() -> None:
    with postgres_server() as url, Store(url) as store:
        assert store.migrations_run == [name for name, _ in MIGRATIONS]
        exercise(store)
        assert Store(url).migrations_run == []  # opening again applies nothing


def test_unknown_and_ambiguous_ids(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    with pytest.raises(StoreError, match="no run with id 'abc'"):
        store.get_run("abc")
    with pytest.raises(StoreError, match="not a run id"):
        store.get_run("zz; drop table runs")
    ids = [new_run(store) for _ in range(40)]
    assert store.resolve_id(ids[0]) == ids[0]
    with pytest.raises(StoreError, match="ambiguous"):
        store.resolve_id(_common_prefix(ids))


def _common_prefix(ids: list[str]) -> str:
    # With 40 random ids, two share a first hex digit.
    firsts = [i[0] for i in ids]
    return next(c for c in firsts if firsts.count(c) > 1)


def test_not_a_database_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    junk = b"definitely not sqlite " * 500
    path.write_bytes(junk)
    with pytest.raises(StoreError, match="is not a SQLite database"):
        Store(f"sqlite:///{path}")
    assert path.read_bytes() == junk


def test_bad_url() -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        Store("::nonsense::")


def test_migrates_a_blank_and_an_old_database(tmp_path: Path) -> None:
    blank = Store(f"sqlite:///{tmp_path / 'blank.db'}")
    assert blank.migrations_run == [name for name, _ in MIGRATIONS]
    assert Store(f"sqlite:///{tmp_path / 'blank.db'}").migrations_run == []

    # An "old" database: only the first migration, with a run in it.
    old_path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{old_path}")
    with engine.begin() as conn:
        migrate(conn, MIGRATIONS[:1])
        conn.exec_driver_sql(
            "INSERT INTO runs (id, schema_version, created_at, status, model_name, backend,"
            " model, params, suites, quick, hardware, versions, summary) VALUES ('abcd', 1,"
            " '2026-01-01 00:00:00', 'completed', 'm', 'mock', '{}', '{}', '[\"s\"]', 0, '{}',"
            " '{}', '{}')"
        )
    engine.dispose()
    store = Store(f"sqlite:///{old_path}")
    assert store.migrations_run == [name for name, _ in MIGRATIONS[1:]]
    assert store.get_run("abcd").suites == ["s"]
    with store.engine.connect() as conn:
        assert applied(conn) == [name for name, _ in MIGRATIONS]
        indexes = conn.exec_driver_sql("PRAGMA index_list(runs)").fetchall()
        assert any(row[1] == "ix_runs_created_at" for row in indexes)


def test_a_newer_schema_is_refused_not_misread(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    run_id = new_run(store)
    con = sqlite3.connect(tmp_path / "h.db")
    con.execute("UPDATE runs SET schema_version = 99")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer hainet"):
        store.get_run(run_id)


def _writer(url: str, run_id: str, start: int, n: int) -> None:
    store = Store(url)
    for i in range(start, start + n):
        store.add_result(run_id, result(i))
        store.get_run(run_id)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    store = Store(url)
    run_id = new_run(store)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, run_id, k * 100, 60)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(store.results(run_id)) == 240
