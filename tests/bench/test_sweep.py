"""Sweeps: planning, failures that do not stop the sweep, memory refusal, resume."""

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hainet.backends import Catalog
from hainet.bench import BenchOptions, SweepPlan, run_sweep
from hainet.bench import cells as cells_module
from hainet.bench import sweep as sweep_module
from hainet.config import load_settings
from hainet.errors import ConfigError
from hainet.store import Store
from hainet.store.liveness import current_owner


def test_plan_cells_and_load_groups() -> None:
    plan = SweepPlan(
        models=("a", "b"),
        quantizations=("q4_k_m", "q8_0", "f16"),
        flash_attention=(True, False),
        temperatures=(0.1, 0.7),
    )
    cells = plan.cells()
    assert len(cells) == 24 and len({c.key for c in cells}) == 24
    assert len({c.load_key for c in cells}) == 12
    assert cells[0].key == "a|q4_k_m|fa|t0.1"
    one = SweepPlan(models=("a",)).cells()
    assert [c.key for c in one] == ["a|-|-|-"]


def _store_and_catalog() -> tuple[Store, Catalog]:
    cfg = load_settings()
    return Store(cfg.db_url), Catalog(cfg)


def test_memory_refusal_happens_before_anything_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    store, catalog = _store_and_catalog()
    monkeypatch.setattr(sweep_module, "available_memory_mb", lambda: 200.0)
    loads: list[object] = []
    monkeypatch.setattr(cells_module, "open_backend", lambda spec: loads.append(spec))
    plan = SweepPlan(models=("gemma-3-270m",), temperatures=(0.0, 0.5))
    with pytest.raises(ConfigError, match=r"needs about \d+ MB at once.*only 200 MB"):
        asyncio.run(run_sweep(catalog, plan, store, BenchOptions(quick=True)))
    assert loads == [] and store.list_runs() == [] and store.list_sweeps() == []


def test_quantizing_a_server_model_is_refused(hainet_home: Path) -> None:
    from hainet.config import add_model_to_config

    add_model_to_config(
        hainet_home, "srv", {"backend": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"}
    )
    store, catalog = _store_and_catalog()
    with pytest.raises(ConfigError, match="its quantization is the server's"):
        asyncio.run(
            run_sweep(
                catalog, SweepPlan(models=("srv",), quantizations=("4bit",)), store, BenchOptions()
            )
        )


def test_resume_without_an_unfinished_sweep_is_an_error() -> None:
    store, catalog = _store_and_catalog()
    with pytest.raises(ConfigError, match="no unfinished sweep"):
        asyncio.run(
            run_sweep(
                catalog, SweepPlan(models=("gemma-3-270m",)), store, BenchOptions(), resume=True
            )
        )


@pytest.mark.model
def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(
    hainet_home: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    store, catalog = _store_and_catalog()
    plan = SweepPlan(models=(str(broken), "gemma-3-270m"), temperatures=(0.0,))
    outcome = asyncio.run(run_sweep(catalog, plan, store, BenchOptions(quick=True)))
    assert [r.status for r in outcome.runs] == ["failed", "completed"]
    assert "could not load" in (outcome.runs[0].error or "")
    assert outcome.sweep.status == "incomplete" and outcome.sweep.loads == 1
    assert [r.cell for r in outcome.failed] == [f"{broken}|-|-|t0"]


@pytest.mark.model
def test_temperatures_share_one_load(hainet_home: Path) -> None:
    store, catalog = _store_and_catalog()
    plan = SweepPlan(models=("gemma-3-270m",), temperatures=(0.0, 0.7, 1.0))
    outcome = asyncio.run(run_sweep(catalog, plan, store, BenchOptions(quick=True)))
    assert outcome.sweep.status == "completed" and outcome.sweep.loads == 1
    assert [r.params["temperature"] for r in outcome.runs] == [0.0, 0.7, 1.0]
    assert all(r.summary["suites"]["reasoning"]["cases"] == 5 for r in outcome.runs)


@pytest.mark.model
def test_two_configurations_in_two_worker_processes(hainet_home: Path) -> None:
    store, catalog = _store_and_catalog()
    plan = SweepPlan(models=("gemma-3-270m",), flash_attention=(True, False))
    outcome = asyncio.run(
        run_sweep(catalog, plan, store, BenchOptions(quick=True, max_concurrent=2))
    )
    assert outcome.sweep.status == "completed" and outcome.sweep.loads == 2
    assert sorted(r.model["flash_attn"] for r in outcome.runs) == [False, True]
    # Two cores split between two workers: one thread each.
    assert [r.model["n_threads"] for r in outcome.runs] == [1, 1]


def _cli(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HAINET_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-c", "from hainet.cli import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.model
def test_a_killed_sweep_resumes_without_duplicates_or_losses(hainet_home: Path) -> None:
    args = ["bench", "--quick", "--temperatures", "0", "0.5", "1.0"]
    proc = _cli(hainet_home, *args)
    db = hainet_home / "hainet.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill -9 once the first cell is complete
        time.sleep(0.2)
        try:
            with sqlite3.connect(db) as con:
                done = con.execute("SELECT count(*) FROM runs WHERE status='completed'").fetchone()[
                    0
                ]
        except sqlite3.Error:
            continue
        if done >= 1:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with sqlite3.connect(db) as con:
        before = con.execute("SELECT cell, status FROM runs").fetchall()
    assert ("gemma-3-270m|-|-|t0", "completed") in before and len(before) < 4

    resumed = _cli(hainet_home, *args, "--resume", "--json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    result = json.loads(out)
    assert result["sweep"]["status"] == "completed" and result["sweep"]["cells"] == 3
    with sqlite3.connect(db) as con:
        completed = con.execute(
            "SELECT cell, count(*) FROM runs WHERE status='completed' GROUP BY cell"
        ).fetchall()
        sweeps = con.execute("SELECT count(*) FROM sweeps").fetchone()[0]
    assert sorted(completed) == [
        ("gemma-3-270m|-|-|t0", 1),
        ("gemma-3-270m|-|-|t0.5", 1),
        ("gemma-3-270m|-|-|t1", 1),
    ]
    assert sweeps == 1
    with sqlite3.connect(db) as con:  # the killed cell's run is closed, not left running
        assert con.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone() == (0,)
    # The first cell was not redone: its run is the one from before the kill.
    assert [r["cell"] for r in result["runs"]] == [c for c, _ in sorted(completed)]


@pytest.mark.model
@pytest.mark.slow
def test_configurations_as_tasks_on_a_local_ray_instance(hainet_home: Path) -> None:
    pytest.importorskip("ray")
    store, catalog = _store_and_catalog()
    plan = SweepPlan(models=("gemma-3-270m",), flash_attention=(True, False))
    options = BenchOptions(quick=True, ray="local")
    outcome = asyncio.run(run_sweep(catalog, plan, store, options))
    assert outcome.sweep.status == "completed" and outcome.sweep.loads == 2
    assert len(outcome.runs) == 2 and all(r.status == "completed" for r in outcome.runs)
    # The runs were written by Ray worker processes, not by this one.
    assert {r.summary["suites"]["reasoning"]["cases"] for r in outcome.runs} == {5}


def test_an_unreachable_ray_cluster_is_a_clear_error() -> None:
    pytest.importorskip("ray")
    store, catalog = _store_and_catalog()
    options = BenchOptions(quick=True, ray="127.0.0.1:1")
    plan = SweepPlan(models=("gemma-3-270m",), flash_attention=(True, False))
    with pytest.raises(ConfigError, match="cannot reach the Ray cluster"):
        asyncio.run(run_sweep(catalog, plan, store, options))


@pytest.mark.model
@pytest.mark.slow
def test_quantization_flash_temperature_sweep_loads_each_configuration_once(
    hainet_home: Path,
) -> None:
    store, catalog = _store_and_catalog()
    plan = SweepPlan(
        models=("gemma-3-270m",),
        quantizations=("4bit", "8bit", "none"),
        flash_attention=(True, False),
        temperatures=(0.1, 0.7),
    )
    outcome = asyncio.run(run_sweep(catalog, plan, store, BenchOptions(quick=True)))
    assert outcome.sweep.status == "completed", [r.error for r in outcome.failed]
    assert outcome.sweep.cells == 12 and len(outcome.runs) == 12
    assert outcome.sweep.loads == 6
    by_quant: dict[str, set[int]] = {}
    for run in outcome.runs:
        assert run.summary["suites"]["reasoning"]["cases"] == 5
        by_quant.setdefault(run.model["quantization"], set()).add(run.model["file_size"])
    assert set(by_quant) == {"Q4_K_M", "Q8_0", "F16"}
    sizes = {q: next(iter(s)) for q, s in by_quant.items()}
    assert sizes["Q4_K_M"] < sizes["Q8_0"] < sizes["F16"]
    assert outcome.sweep.plan["quantizations"] == ["q4_k_m", "q8_0", "f16"]


# A bench in a child process: a fake backend that appends every question it is
# asked to a file and, on call number BLOCK_AT, writes the "ready" file and hangs
# (the case in flight when it is killed).  One request at a time (the fake is not
# in-process, so it gets a server's gate), so exactly BLOCK_AT - 1 cases finish.
_CHILD = r"""
import asyncio, json, sys
from pathlib import Path

from hainet.backends import Catalog, register_backend
from hainet.backends.mock import MockBackend
from hainet.bench import BenchOptions, Progress, SweepPlan, run_sweep
from hainet.config import load_settings
from hainet.store import Store

calls, block_at, ready, resume = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]


class Recording(MockBackend):
    def __init__(self, spec):
        super().__init__(spec, responder=lambda request: " 5")

    async def generate(self, request):
        with calls.open("a") as f:
            f.write((request.prompt or "").rsplit("Q: ", 1)[-1].splitlines()[0] + "\n")
        if len(calls.read_text().splitlines()) == block_at:
            ready.write_text("blocked")
            await asyncio.Event().wait()
        return await super().generate(request)


register_backend("recording-test", Recording)
cfg = load_settings()
seen = []
progress = Progress(
    on_start=lambda cases, cells: seen.append(["start", cases, cells]),
    on_case=lambda r: seen.append(r.case_id),
)
plan = SweepPlan(models=("fake",), temperatures=(0.0, 0.5))
outcome = asyncio.run(
    run_sweep(Catalog(cfg), plan, Store(cfg.db_url),
              BenchOptions(quick=True, server_concurrency=1), progress,
              resume=resume == "resume")
)
print(json.dumps({"sweep": outcome.sweep.status, "runs": [r.id for r in outcome.runs],
                  "progress": seen}))
"""


def _child(calls: Path, block_at: int, ready: Path, resume: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(calls), str(block_at), str(ready), resume],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: object, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not condition():  # type: ignore[operator]
        if proc.poll() is not None:
            pytest.fail(f"the bench exited before {what}: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within 120 s")
        time.sleep(0.05)


def test_a_killed_run_is_abandoned_and_resume_runs_only_its_missing_cases(
    hainet_home: Path, tmp_path: Path
) -> None:
    from hainet.config import add_model_to_config

    add_model_to_config(hainet_home, "fake", {"backend": "recording-test"})
    calls, ready = tmp_path / "calls.txt", tmp_path / "ready"
    db = hainet_home / "hainet.db"
    # 2 cells of the 5 quick reasoning cases: the first completes, the second has
    # stored 3 cases and hangs in its 4th (call 9) when it is killed.
    proc = _child(calls, 9, ready, "new")
    _wait_for(ready.exists, "the 9th generate call", proc)

    def three_stored() -> bool:
        with sqlite3.connect(db) as con:
            return (
                con.execute(
                    "SELECT count(*) FROM results JOIN runs ON results.run_id = runs.id"
                    " WHERE runs.cell = 'fake|-|-|t0.5'"
                ).fetchone()[0]
                == 3
            )

    _wait_for(three_stored, "3 stored cases of the second cell", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    store = Store(load_settings().db_url)
    by_cell = {r.cell: r for r in store.list_runs()}
    first, killed = by_cell["fake|-|-|t0"], by_cell["fake|-|-|t0.5"]
    assert first.status == "completed" and killed.status == "abandoned"
    assert killed.error is not None and killed.error.startswith(
        f"abandoned: its process {proc.pid} on host {current_owner().host} is gone (last heartbeat "
    )
    assert killed.finished_at is not None
    [sweep] = store.list_sweeps()
    assert sweep.status == "abandoned" and f"process {proc.pid}" in (sweep.error or "")
    kept = store.results(killed.id)
    assert len(kept) == 3

    before = len(calls.read_text().splitlines())
    resumed = _child(calls, 0, ready, "resume")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    outcome = json.loads(out)
    # Only the two missing cases were generated; the reused three count as done.
    assert len(calls.read_text().splitlines()) - before == 2
    assert outcome["progress"][0] == ["start", 5, 1] and len(outcome["progress"][1:]) == 5
    assert outcome["sweep"] == "completed"

    runs = store.runs_of_sweep(sweep.id)
    assert sorted((r.cell, r.status) for r in runs) == [
        ("fake|-|-|t0", "completed"),
        ("fake|-|-|t0.5", "abandoned"),
        ("fake|-|-|t0.5", "completed"),
    ]
    new = next(r for r in runs if r.cell == "fake|-|-|t0.5" and r.status == "completed")
    assert outcome["runs"] == [first.id, new.id]
    full = store.get_run(new.id, with_results=True)
    assert len(full.results or []) == 5 and full.summary["suites"]["reasoning"]["cases"] == 5
    assert full.results is not None and full.results[:3] == kept  # taken over as they were
    closed = store.get_run(killed.id)
    assert closed.status == "abandoned" and closed.superseded_by == new.id
    assert f"superseded by run {new.id[:8]}, which took its 3 finished cases" in (
        closed.error or ""
    )
    assert store.get_sweep(sweep.id).status == "completed"
