"""Runs and sweeps whose process died are marked abandoned; resume takes their cases;
nothing non-finite is stored."""

import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa

from hainet.errors import StoreError
from hainet.store import CaseResult, Reuse, Store
from hainet.store.liveness import STALE_AFTER_S, Heartbeat, current_owner
from hainet.store.migrations import MIGRATIONS, migrate

from .test_store import new_run, result


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'h.db'}"


def _set(tmp_path: Path, sql: str, *args: object) -> None:
    con = sqlite3.connect(tmp_path / "h.db")
    con.execute(sql, args)
    con.commit()
    con.close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not psutil.pid_exists(proc.pid)
    return proc.pid


def test_a_run_whose_process_is_gone_is_abandoned_when_the_store_opens(tmp_path: Path) -> None:
    store = Store(_url(tmp_path))
    run_id = new_run(store)
    store.add_result(run_id, result(0))
    store.close()
    pid = _dead_pid()
    _set(tmp_path, "UPDATE runs SET owner_pid = ?", pid)

    reopened = Store(_url(tmp_path))
    run = reopened.get_run(run_id, with_results=True)
    assert run.status == "abandoned" and run.finished_at is not None
    host = current_owner().host
    assert f"abandoned: its process {pid} on host {host} is gone (last heartbeat" in (
        run.error or ""
    )
    assert [r.case_id for r in run.results or []] == ["c0"]  # its cases stay


def test_a_reused_pid_is_not_the_owner(tmp_path: Path) -> None:
    store = Store(_url(tmp_path))
    run_id = new_run(store)
    mine = store.get_run(run_id)
    assert mine.owner_pid == os.getpid() and mine.owner_host == current_owner().host
    assert mine.owner_started == pytest.approx(psutil.Process().create_time())
    assert [r.status for r in store.list_runs()] == ["running"]  # alive: untouched
    # Same host and pid, another start time: an earlier process that had this pid.
    _set(tmp_path, "UPDATE runs SET owner_started = owner_started - 3600")
    [run] = store.list_runs()
    assert run.status == "abandoned" and f"process {os.getpid()}" in (run.error or "")


def test_another_hosts_run_is_judged_by_its_heartbeat(tmp_path: Path) -> None:
    store = Store(_url(tmp_path))
    run_id = new_run(store)
    _set(tmp_path, "UPDATE runs SET owner_host = 'elsewhere', owner_pid = 1")
    assert store.get_run(run_id).status == "running"
    assert [r.status for r in store.list_runs()] == ["running"]  # a fresh heartbeat
    old = datetime.now(UTC) - timedelta(seconds=STALE_AFTER_S + 60)
    _set(tmp_path, "UPDATE runs SET heartbeat_at = ?", old.strftime("%Y-%m-%d %H:%M:%S.%f"))
    [run] = store.list_runs()
    assert run.status == "abandoned"
    assert "no heartbeat from process 1 on host elsewhere since" in (run.error or "")


def test_a_stored_case_and_the_timer_are_heartbeats(tmp_path: Path) -> None:
    store = Store(_url(tmp_path))
    run_id = new_run(store)
    first = store.get_run(run_id).heartbeat_at
    store.add_result(run_id, result(0))
    second = store.get_run(run_id).heartbeat_at
    assert first is not None and second is not None and second > first

    beats = threading.Event()
    real_beat = store.beat

    def beat() -> int:
        n = real_beat()
        beats.set()
        return n

    heart = Heartbeat(beat, interval=0.01)
    heart.wanted()
    assert beats.wait(10)
    heart.stop()
    assert store.get_run(run_id).heartbeat_at > second  # type: ignore[operator]
    # Nothing running: the timer thread ends by itself.
    store.finish_run(run_id, "completed")
    heart = Heartbeat(store.beat, interval=0.01)
    heart.wanted()
    thread = heart._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive() and heart._thread is None


def test_a_sweep_left_running_by_a_dead_process_is_abandoned_and_resumable(
    tmp_path: Path,
) -> None:
    store = Store(_url(tmp_path))
    sweep = store.create_sweep(plan={"models": ["m"]}, plan_hash="h" * 64, cells=1)
    _set(tmp_path, "UPDATE sweeps SET owner_pid = ?", _dead_pid())
    found = Store(_url(tmp_path)).resumable_sweep("h" * 64)
    assert found is not None and found.id == sweep.id and found.status == "abandoned"
    assert "is gone" in (found.error or "")
    # The resuming process becomes its owner, so it is not abandoned under it.
    resumed = store.set_sweep_status(sweep.id, "running")
    assert resumed.owner_pid == os.getpid() and resumed.finished_at is None
    assert [s.status for s in store.list_sweeps()] == ["running"]


def test_an_ownerless_running_run_from_before_owners_is_judged_by_its_age(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        migrate(conn, MIGRATIONS[:6])
        for run_id, status in (("aaaa", "running"), ("bbbb", "completed")):
            conn.exec_driver_sql(
                "INSERT INTO runs (id, schema_version, created_at, status, model_name, backend,"
                " model, params, suites, quick, hardware, versions, summary) VALUES"
                f" ('{run_id}', 1, '2026-01-01 00:00:00', '{status}', 'm', 'mock', '{{}}',"
                " '{}', '[\"s\"]', 0, '{}', '{}', '{}')"
            )
    engine.dispose()
    store = Store(f"sqlite:///{path}")
    assert store.migrations_run == [name for name, _ in MIGRATIONS[6:]]  # 007 onwards
    old = store.get_run("aaaa")
    assert old.status == "abandoned" and "no owner was recorded" in (old.error or "")
    assert "2026-01-01 00:00:00 UTC" in (old.error or "")
    done = store.get_run("bbbb")
    assert done.status == "completed" and done.owner_pid is None and done.heartbeat_at is None
    with store.engine.connect() as conn:
        cols = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(runs)")}
        assert {"owner_host", "owner_pid", "owner_started", "heartbeat_at", "superseded_by"} <= cols
        cols = {r[1] for r in conn.exec_driver_sql("PRAGMA table_info(sweeps)")}
        assert {"owner_host", "owner_pid", "owner_started", "heartbeat_at"} <= cols
        indexes = {r[1] for r in conn.exec_driver_sql("PRAGMA index_list(runs)")}
        assert "ix_runs_status" in indexes


def _keys(*ids: int, prompt: str = "p{}") -> list[tuple[str, str, str, str]]:
    return [("s", "", f"c{i}", prompt.format(i)) for i in ids]


def test_a_new_run_takes_the_finished_cases_of_an_unfinished_one(tmp_path: Path) -> None:
    store = Store(_url(tmp_path))
    kw = {"model_name": "m", "backend": "mock", "model": {}, "params": {}, "suites": ["s"]}
    old = store.create_run(**kw, sweep_id="sw", cell="m|-|-|-")  # type: ignore[arg-type]
    store.add_result(old.id, result(0))
    store.add_result(old.id, result(1, score=None))  # not scored: run again
    store.add_result(old.id, CaseResult(suite="s", case_id="c2", prompt="p2", error="boom"))
    store.add_result(old.id, result(3))  # its prompt changed since: run again
    store.add_result(old.id, result(4))
    store.finish_run(old.id, "interrupted", error="interrupted by the user")
    assert store.resumable_run("sw", "m|-|-|-") is not None

    keys = _keys(0, 1, 2, 4) + _keys(3, prompt="changed {}")
    new = store.create_run(**kw, sweep_id="sw", cell="m|-|-|-", reuse=Reuse(old.id, keys))  # type: ignore[arg-type]
    assert [r.case_id for r in new.results or []] == ["c0", "c4"]
    assert [r.case_id for r in store.results(new.id)] == ["c0", "c4"]
    closed = store.get_run(old.id, with_results=True)
    assert closed.status == "interrupted" and closed.superseded_by == new.id
    assert closed.error == (
        f"interrupted by the user; superseded by run {new.id[:8]}, which took its 2 finished cases"
    )
    assert len(closed.results or []) == 5  # the old run's record is kept as it was
    assert store.resumable_run("sw", "m|-|-|-") is None  # never taken twice
    with pytest.raises(StoreError, match="already resumed"):
        store.create_run(**kw, reuse=Reuse(old.id, keys))  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="not an unfinished run"):
        store.create_run(**kw, reuse=Reuse(new.id, keys))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_naming_the_field(tmp_path: Path, bad: float) -> None:
    store = Store(_url(tmp_path))
    kw = {"model_name": "m", "backend": "mock", "model": {}, "suites": ["s"]}
    with pytest.raises(StoreError, match=r"cannot create a run: params\.temperature is"):
        store.create_run(**kw, params={"temperature": bad})  # type: ignore[arg-type]
    run_id = new_run(store)
    with pytest.raises(StoreError, match=r"store a result of run .*: ttft_s is"):
        store.add_result(run_id, result(0).model_copy(update={"ttft_s": bad}))
    with pytest.raises(StoreError, match=r"details\.samples\[1\]\.x is"):
        store.add_result(
            run_id, result(0).model_copy(update={"details": {"samples": [1, {"x": bad}]}})
        )
    with pytest.raises(StoreError, match=r"update run .*: load_s is"):
        store.update_run(run_id, load_s=bad)
    with pytest.raises(StoreError, match=r"finish run .*: summary\.suites\.s\.score is"):
        store.finish_run(run_id, "completed", summary={"suites": {"s": {"score": bad}}})
    with pytest.raises(StoreError, match=r"create a sweep: plan\.temperatures\[0\] is"):
        store.create_sweep(plan={"temperatures": [bad]}, plan_hash="h", cells=1)
    # The engine's serializer refuses too, for JSON written past those checks.
    with (
        pytest.raises(StoreError, match=r"cannot poke: value\.t is"),
        store._guard("poke"),
        store._write() as conn,
    ):
        conn.execute(
            sa.text("UPDATE runs SET summary = :s").bindparams(sa.bindparam("s", type_=sa.JSON)),
            {"s": {"t": bad}},
        )
    # Nothing of it reached the store: SQLite's JSON functions read every row.
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT json_extract(params, '$.temperature'), json_extract(summary, '$') FROM runs"
        ).all()
    assert rows == [(0, "{}")] and len(store.results(run_id)) == 0
