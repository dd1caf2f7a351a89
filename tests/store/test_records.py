"""Typed records (schema 2): old rows and old stored reports load, and what is stored
keeps the JSON shape it had when these were dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hainet.errors import StoreError
from hainet.store import (
    SCHEMA_VERSION,
    AgentStore,
    GroupScore,
    Hardware,
    RunParams,
    RunSummary,
    Store,
    StoredModel,
    StoredPlan,
)
from hainet.store.agent_models import CaseOutcome, TestReport
from hainet.store.migrations import MIGRATIONS, migrate
from hainet.types import ModelSpec

from .test_agent_store import dumped, spec

# Rows as hainet wrote them with schema 1, when these columns were plain dicts.
GROUP = {"score": 0.5, "cases": 2, "scored": 2, "errors": 0}
COMPLETED_SUMMARY = {
    "suites": {"reasoning": GROUP},
    "capabilities": {"reasoning": GROUP},
    "ttft_s": 0.2,
    "prefill_tps": 300.0,
    "decode_tps": 40.0,
    "prompt_tokens": 50,
    "completion_tokens": 10,
    "categories": ["lightweight"],
    "tier": "tiny",
}
FAILED_SUMMARY = {  # summarize([]) of a model that did not load: no profile
    "suites": {},
    "capabilities": {},
    "ttft_s": None,
    "prefill_tps": None,
    "decode_tps": None,
    "prompt_tokens": 0,
    "completion_tokens": 0,
}
MODEL = {
    **ModelSpec(
        name="gemma", path="/m.gguf", quantization="Q4_K_M", parameters=268_000_000
    ).model_dump(mode="json", exclude={"api_key"}),
}
HARDWARE = {
    "cpu": "Some CPU",
    "cores_logical": 2,
    "cores_physical": 1,
    "cpus_usable": 2,
    "ram_mb": 24000,
    "gpus": [],
    "machine": "x86_64",
    "system": "Linux 6.1",
    "python": "3.11.2",
}
ROWS: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # id, status, model, params, hardware, summary
    (
        "aaaa",
        "completed",
        MODEL,
        {"temperature": 0.7, "seed": 0, "max_concurrent": 1, "judge": None, "samples": None},
        HARDWARE,
        COMPLETED_SUMMARY,
    ),
    ("bbbb", "failed", MODEL, {"temperature": None, "seed": 3}, HARDWARE, FAILED_SUMMARY),
    ("cccc", "interrupted", {}, {}, {}, {}),  # the smallest rows tests wrote
]
PLAN = {
    "models": ["gemma"],
    "quantizations": [None, "q8_0"],
    "flash_attention": [None],
    "temperatures": [0.0, 0.7],
    "suites": ["reasoning"],
    "quick": True,
    "seed": 0,
    "judge": None,
    "samples": None,
}


def _old_database(path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        migrate(conn, MIGRATIONS)
        for run_id, status, model, params, hardware, summary in ROWS:
            conn.execute(
                sa.text(
                    "INSERT INTO runs (id, schema_version, created_at, status, model_name,"
                    " backend, model, params, suites, quick, hardware, versions, summary)"
                    " VALUES (:id, 1, '2026-01-01 00:00:00', :status, 'gemma', 'llamacpp',"
                    " :model, :params, '[\"reasoning\"]', 1, :hardware, '{}', :summary)"
                ),
                {
                    "id": run_id,
                    "status": status,
                    "model": json.dumps(model),
                    "params": json.dumps(params),
                    "hardware": json.dumps(hardware),
                    "summary": json.dumps(summary),
                },
            )
        conn.execute(
            sa.text(
                "INSERT INTO sweeps (id, schema_version, created_at, status, plan, plan_hash,"
                " cells, loads) VALUES ('dddd', 1, '2026-01-01 00:00:00', 'completed', :plan,"
                " :hash, 4, 2)"
            ),
            {"plan": json.dumps(PLAN), "hash": "h" * 64},
        )
    engine.dispose()


def _stored(store: Store, column: str, run_id: str) -> Any:
    with store.engine.connect() as conn:
        text = conn.exec_driver_sql(f"SELECT {column} FROM runs WHERE id = '{run_id}'").scalar()
    return json.loads(text)


def test_schema_1_rows_load_as_typed_records(tmp_path: Path) -> None:
    _old_database(tmp_path / "old.db")
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    done = store.get_run("aaaa")
    assert done.schema_version == 1 and SCHEMA_VERSION == 2  # read as written
    assert isinstance(done.summary, RunSummary) and isinstance(done.hardware, Hardware)
    assert done.summary.suites["reasoning"] == GroupScore(score=0.5, cases=2, scored=2, errors=0)
    assert done.summary.decode_tps == 40.0 and done.summary.categories == ["lightweight"]
    assert done.summary.tier == "tiny" and done.params.temperature == 0.7
    assert done.model.quantization == "Q4_K_M" and done.model.parameters == 268_000_000
    assert done.hardware.cores_logical == 2 and done.hardware.gpus == []

    failed = store.get_run("bbbb")
    assert failed.summary.categories is None and "categories" not in failed.summary
    assert failed.params.seed == 3 and failed.params.max_concurrent is None  # not recorded
    bare = store.get_run("cccc")
    assert bare.summary.suites == {} and bare.model.name is None and bare.hardware.cpu is None

    # Their dict form is the stored JSON, key for key: --json output keeps its shape.
    for run_id, _, model, params, hardware, summary in ROWS:
        dumped_run = store.get_run(run_id).model_dump(mode="json")
        assert dumped_run["summary"] == summary and dumped_run["params"] == params
        assert dumped_run["model"] == model and dumped_run["hardware"] == hardware

    [sweep] = store.list_sweeps()
    assert isinstance(sweep.plan, StoredPlan) and sweep.plan.quantizations == [None, "q8_0"]
    assert sweep.plan.temperatures == [0.0, 0.7] and sweep.model_dump()["plan"] == PLAN


def test_records_still_read_like_the_dicts_they_replace(tmp_path: Path) -> None:
    _old_database(tmp_path / "old.db")
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    run = store.get_run("aaaa")
    assert run.summary["suites"]["reasoning"]["score"] == 0.5
    assert run.summary["suites"]["reasoning"] == GROUP
    assert run.summary == COMPLETED_SUMMARY and run.summary.get("nope", 1) == 1
    assert run.params["temperature"] == 0.7 and run.model["quantization"] == "Q4_K_M"
    assert run.hardware["cores_logical"] == 2 and "cpu" in run.hardware
    assert {k: v for k, v in run.model.items() if k != "n_threads"} == {
        k: v for k, v in MODEL.items() if k != "n_threads"
    }
    bare = store.get_run("cccc")
    assert list(bare.summary.keys()) == [] and "suites" not in bare.summary
    with pytest.raises(KeyError):
        bare.summary["suites"]  # as the empty dict did; the attribute has the default
    assert store.get_sweep("dddd").plan["quantizations"] == [None, "q8_0"]


def test_new_runs_store_what_was_given(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    spec_ = ModelSpec(name="m", backend="openai", url="http://x", model="m", api_key="secret")
    run = store.create_run(
        model_name="m",
        backend="openai",
        model=StoredModel.of(spec_),
        params=RunParams(temperature=0.0, seed=1),
        suites=["s"],
        hardware=Hardware(cpu="c", cores_logical=2),
    )
    assert _stored(store, "summary", run.id) == {}  # a running run: nothing yet
    assert _stored(store, "params", run.id) == {"temperature": 0.0, "seed": 1}
    assert _stored(store, "hardware", run.id) == {"cpu": "c", "cores_logical": 2}
    model = _stored(store, "model", run.id)
    assert "api_key" not in model and model["url"] == "http://x"
    # A key is never stored, even in a hand-made dict.
    other = store.create_run(
        model_name="m", backend="mock", model={"name": "m", "api_key": "k"}, params={}, suites=[]
    )
    assert _stored(store, "model", other.id) == {"name": "m"}

    group = GroupScore(score=1.0, cases=1, scored=1, errors=0)
    summary = RunSummary(suites={"s": group}, capabilities={"s": group}, decode_tps=9.0)
    done = store.finish_run(run.id, "completed", summary=summary)
    assert done.summary == summary and done.schema_version == SCHEMA_VERSION
    assert _stored(store, "summary", run.id) == {
        "suites": {"s": GROUP | {"score": 1.0, "cases": 1, "scored": 1}},
        "capabilities": {"s": GROUP | {"score": 1.0, "cases": 1, "scored": 1}},
        "decode_tps": 9.0,
    }


def test_a_bad_record_is_refused_naming_the_field(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    kw: dict[str, Any] = {"model_name": "m", "backend": "mock", "model": {}, "suites": []}
    with pytest.raises(StoreError, match=r"cannot create a run: params\.seed: Input should be"):
        store.create_run(**kw, params={"seed": "not a number"})
    run = store.create_run(**kw, params={})
    with pytest.raises(StoreError, match=r"finish run .*: summary\.suites\.s\.cases"):
        store.finish_run(run.id, "completed", summary={"suites": {"s": {"cases": "many"}}})
    with pytest.raises(StoreError, match=r"create a sweep: plan\.models"):
        store.create_sweep(plan={"models": "m"}, plan_hash="h", cells=1)


def test_stored_model_has_the_fields_of_model_spec_but_the_key() -> None:
    assert set(StoredModel.model_fields) == set(ModelSpec.model_fields) - {"api_key"}
    for record in (GroupScore, RunSummary, RunParams, Hardware, StoredModel, StoredPlan):
        for name, field in record.model_fields.items():
            assert field.description, f"{record.__name__}.{name} has no description"


def test_a_report_stored_before_it_was_a_model_loads(tmp_path: Path) -> None:
    agents = AgentStore(Store(f"sqlite:///{tmp_path / 'h.db'}"))
    s = spec()
    agents.add(dumped(s))
    outcome = {
        "test_id": "t1",
        "score": 1.0,
        "explanation": "exact match",
        "output": "hi",
        "error": None,
        "error_kind": None,
        "wall_s": 0.5,
        "prompt_tokens": 4,
        "completion_tokens": 1,
        "peak_rss_mb": 300.0,
        "holdout": False,
        "seed": 0,
        "scored": True,
    }
    # TestReport.to_dict() as it was: dataclass fields, no schema_version, a summary.
    old = {
        "agent_id": s.id,
        "model": "m",
        "outcomes": [outcome, outcome | {"test_id": "t2", "score": 0.0, "holdout": True}],
        "wall_s": 1.5,
        "seeds": [0],
        "extra": {},
        "summary": {"success_rate": 1.0, "holdout_rate": 0.0, "passed": 1, "total": 1},
    }
    with agents.store._write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO agent_reports (schema_version, agent_id, model, purpose, report,"
                " success_rate, created_at) VALUES (1, :agent, 'm', 'gate', :report, 1.0,"
                " '2026-01-01 00:00:00')"
            ),
            {"agent": s.id, "report": json.dumps(old)},
        )
    [record] = agents.reports(s.id)
    report = record.report
    assert isinstance(report, TestReport) and report.schema_version == 1
    assert report.outcomes[0] == CaseOutcome(**outcome)
    assert report.success_rate == 1.0 and report.holdout_rate == 0.0 and report.passed == 1
    assert report.seeds == (0,) and report.peak_rss_mb == 300.0
    # Stored again, it keeps the old shape (plus its version), summary included.
    again = agents.add_report(s.id, model="m", report=report, success_rate=1.0)
    with agents.store.engine.connect() as conn:
        text = conn.exec_driver_sql(
            f"SELECT report FROM agent_reports WHERE id = {again.id}"
        ).scalar()
    stored = json.loads(text)
    assert set(stored) == set(old) | {"schema_version"}
    assert stored["summary"]["unscored"] == 0 and stored["outcomes"][0] == outcome
    assert TestReport.model_validate(stored) == report
