"""``hainet hyper`` on the MockBackend task of tests/hyper/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hainet.agents.spec import load_spec
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.cli import hyper as hyper_cli
from hainet.config import load_settings
from hainet.errors import StoreError
from hainet.hyper import session
from hainet.hyper.loop import HyperLoop
from hainet.store import Store
from hainet.store.hyper import HyperStore
from tests.hyper.conftest import (
    TRAIN,
    ScriptedProposer,
    answer,
    cases,
    make_controls,
    procedure,
    root_spec,
)

cli = CliRunner()


def invoke(*args: str) -> Any:
    return cli.invoke(hyper_cli.app, list(args))


@pytest.fixture(autouse=True)
def mock_model(monkeypatch: pytest.MonkeyPatch) -> None:
    @contextlib.asynccontextmanager
    async def fake(
        _cfg: Any, _name: str, _others: Any, seed: int
    ) -> AsyncIterator[tuple[AgentRunner, dict[str, AgentRunner]]]:
        yield AgentRunner(MockBackend.from_function(answer), seed=seed), {}

    monkeypatch.setattr(session, "open_runners", fake)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {"agent": tmp_path / "agent.yaml"}
    out["agent"].write_text(yaml.safe_dump(root_spec().model_dump(mode="json", exclude={"id"})))
    for name, data in {
        "train": [c.model_dump(mode="json") for c in TRAIN],
        "val": [c.model_dump(mode="json") for c in cases("v", 32)],
        "test": [c.model_dump(mode="json") for c in cases("t", 32)],
    }.items():
        out[name] = tmp_path / f"{name}.json"
        out[name].write_text(json.dumps(data))
    return out


def _run(files: dict[str, Path], *extra: str) -> Any:
    return invoke(
        "run", "--agent", str(files["agent"]), "--generations", "4",
        "--trainset", str(files["train"]), "--valset", str(files["val"]),
        "--testset", str(files["test"]), "--seed", "1",
        *extra,
    )  # fmt: skip


def test_run_status_audit_rollback(files: dict[str, Path], tmp_path: Path) -> None:
    res = _run(files, "--json")
    assert res.exit_code == 0, res.output
    run = json.loads(res.stdout)
    assert run["status"] == "completed"
    assert run["final"]["final"]["test"] > run["final"]["baseline"]["test"]

    res = invoke("status", "--json")
    status = json.loads(res.stdout)
    gens = status["generations"]
    assert res.exit_code == 0 and status["run"]["id"] == run["id"]
    assert gens[0]["number"] == 0 and max(g["number"] for g in gens) == 4
    assert status["procedures"][0]["status"] == "initial"

    res = invoke("status", run["id"][:6])
    assert res.exit_code == 0 and "generations" in res.stdout and "completed" in res.stdout

    res = invoke("audit", "--json")
    events = [e["event"] for e in json.loads(res.stdout)]
    assert events[0] == "run_started" and events[-1] == "run_completed"
    assert events.count("proposed") == len(gens) - 1

    out = tmp_path / "back.json"
    res = invoke("rollback", gens[0]["id"][:8], "--out", str(out))
    assert res.exit_code == 0 and "rolled back to generation 0" in res.stdout
    assert load_spec(out).id == gens[0]["spec_id"]
    after = json.loads(invoke("status", "--json").stdout)
    assert after["run"]["current_generation_id"] == gens[0]["id"]


def test_approve_reject_and_stop_from_the_cli(db_store: Store) -> None:
    decisions: list[str] = []

    async def sleep(_s: float) -> None:
        hs = HyperStore(db_store)
        pending = [
            g for g in hs.generations(hs.resolve_run(None)) if g.status == "pending_approval"
        ]
        command = "approve" if not decisions else "reject"
        res = invoke(command, pending[0].id[:8])
        assert res.exit_code == 0, res.output
        decisions.append(command)
        if len(decisions) == 2:
            assert invoke("stop").exit_code == 0

    controls, _ = make_controls(risk_approval="low")
    loop = HyperLoop(db_store, controls, lambda _p: ScriptedProposer(), trainset=TRAIN,
                     procedure=procedure(), sleep=sleep)  # fmt: skip
    run = asyncio.run(loop.run(root_spec(), generations=20))
    assert run.status == "stopped"
    hs = HyperStore(db_store)
    by_human = [g for g in hs.generations(run.id) if g.decided_by == "human"]
    assert [g.status for g in by_human] == ["accepted", "rejected"]
    res = invoke("approve", by_human[0].id[:8])
    assert isinstance(res.exception, StoreError) and "not pending_approval" in str(res.exception)


@pytest.fixture
def db_store() -> Store:
    return Store(load_settings().db_url)
