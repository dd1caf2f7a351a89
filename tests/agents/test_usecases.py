"""The agents use-case functions (what the CLI commands call) on mock models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hainet.agents import usecases
from hainet.agents.spec import AgentSpec, TestCase, dump_spec, parse_spec
from hainet.agents.usecases import (
    CreateConfig,
    EvolveConfig,
    create_and_store,
    cross_agents,
    default_model,
    evolve_agent,
    resolve_agent,
)
from hainet.agents.workflow import AgentRunner
from hainet.backends import BUNDLED
from hainet.backends.mock import MockBackend
from hainet.config import Settings, load_settings
from hainet.errors import StoreError, ValidationError
from hainet.store import AgentStore, Store
from hainet.types import ModelSpec, Request

ANSWERS = {f"what is {a} plus {b}?": a + b for a in range(1, 5) for b in range(1, 4)}


def adder(template: str = "Q: {input}\nA:", models: list[str] | None = None) -> AgentSpec:
    return parse_spec(
        {
            "name": "adder",
            "purpose": "Add two numbers given in words.",
            "workflow": [
                {"id": "answer", "kind": "generate", "template": template, "output": "answer"}
            ],
            "output": "answer",
            "requirements": {"models": models if models is not None else ["mock-a"]},
        }
    )


def cases(items: list[tuple[str, int]], prefix: str) -> list[TestCase]:
    return [TestCase(id=f"{prefix}{i}", input=q, target=str(t)) for i, (q, t) in enumerate(items)]


def respond(req: Request) -> str:
    """Right only when the prompt shows an example: few-shot fixes the agent."""
    prompt = req.prompt or ""
    q = re.findall(r"Q: (.*)\n", prompt)[-1]
    return str(ANSWERS[q]) if prompt.count("Q: ") > 1 or "Input:" in prompt else "no idea"


@pytest.fixture
def cfg(hainet_home: Path) -> Settings:
    (hainet_home / "config.toml").write_text(
        '[models.mock-a]\nbackend = "mock"\n\n[models.mock-b]\nbackend = "mock"\n'
    )
    return load_settings()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []

    @contextlib.asynccontextmanager
    async def fake_open_runner(model: ModelSpec, **kw: Any) -> AsyncIterator[AgentRunner]:
        names.append(model.name)
        yield AgentRunner(MockBackend(model, responder=respond), **kw)

    monkeypatch.setattr(usecases, "open_runner", fake_open_runner)
    return names


def test_resolve_agent_by_file_name_version_and_prefix(cfg: Settings, tmp_path: Path) -> None:
    spec = adder()
    path = tmp_path / "adder.yaml"
    dump_spec(spec, path)
    assert resolve_agent(path, cfg).id == spec.id
    assert resolve_agent(str(path), cfg).id == spec.id
    # A file needs no store: none is opened (so none is created).
    assert not (cfg.home / "hainet.db").exists()
    with Store(cfg.db_url) as store:
        AgentStore(store).add(spec.model_dump(mode="json"))
        for ref in ("adder", "adder@1.0.0", spec.id[:8]):
            assert resolve_agent(ref, store).id == spec.id
        with pytest.raises(StoreError):
            resolve_agent("nobody", store)
    assert resolve_agent("adder", cfg).id == spec.id  # through the settings
    with pytest.raises(ValidationError):
        resolve_agent(tmp_path / "missing.yaml", cfg)


def test_default_model() -> None:
    assert default_model(adder(), "x") == "x"
    assert default_model(adder()) == "mock-a"
    assert default_model(adder(models=[])) == BUNDLED.name


def test_evolve_agent_keeps_and_stores_a_better_child(cfg: Settings, opened: list[str]) -> None:
    items = list(ANSWERS.items())
    parent = adder()
    before = parent.model_dump(mode="json")
    events: list[str] = []
    config = EvolveConfig(
        trainset=cases(items[:6], "tr"),
        valset=cases(items[6:], "va"),
        candidates=1,
        operators={"few_shot": 1.0},
    )
    outcome = asyncio.run(
        evolve_agent(parent, config, cfg, on_event=lambda e, _d: events.append(e))
    )
    assert outcome.changed and outcome.stored
    assert outcome.score == 1.0 and outcome.parent_scores == {parent.id: 0.0}
    assert outcome.result.lineage == [parent.id] and outcome.parents == (parent,)
    assert parent.model_dump(mode="json") == before  # the parent is untouched
    assert events == [e for e, _ in outcome.events] and "done" in events
    assert opened == ["mock-a"]
    with Store(cfg.db_url) as store:
        assert AgentStore(store).get(outcome.result.id).status == "draft"


def test_evolve_agent_from_files_without_storing(
    cfg: Settings, opened: list[str], tmp_path: Path
) -> None:
    items = list(ANSWERS.items())
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    for path, part in ((train, cases(items[:6], "tr")), (val, cases(items[6:], "va"))):
        path.write_text("".join(json.dumps(c.model_dump(mode="json")) + "\n" for c in part))
    agent = tmp_path / "adder.yaml"
    dump_spec(adder(), agent)
    rounds: list[str] = []
    config = EvolveConfig(
        trainset=train, valset=val, operators={"params": 1.0}, rounds=2, store=False
    )
    outcome = asyncio.run(evolve_agent(agent, config, cfg, progress=rounds.append))
    assert not outcome.changed and not outcome.stored
    assert outcome.result.id == adder().id
    assert rounds == ["round 1/2", "round 2/2"]
    assert not (cfg.home / "hainet.db").exists()  # no store needed, none opened


def test_cross_agents_needs_two(cfg: Settings, opened: list[str]) -> None:
    config = EvolveConfig(trainset=[], valset=[])
    with pytest.raises(ValidationError, match="at least two"):
        asyncio.run(cross_agents([adder()], config, cfg))
    assert opened == []


def test_create_and_store(cfg: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.cli.test_agents_create_cli import GOOD, PAIRS, _answer

    proposals = [json.dumps(GOOD)]

    def respond_create(req: Request) -> str:
        prompt = req.prompt or ""
        if prompt.rsplit("\n", 1)[-1].startswith("Spec:"):
            return proposals.pop(0)
        return _answer(prompt)

    @contextlib.asynccontextmanager
    async def fake_open_runner(model: ModelSpec, **kw: Any) -> AsyncIterator[AgentRunner]:
        yield AgentRunner(MockBackend(model, responder=respond_create), **kw)

    monkeypatch.setattr(usecases, "open_runner", fake_open_runner)
    examples = tmp_path / "sums.jsonl"
    examples.write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in PAIRS))
    lines: list[str] = []
    config = CreateConfig(
        purpose="Add or subtract counts in a sentence.",
        examples=examples,
        creator_model="mock-a",
        candidates=1,
    )
    outcome = asyncio.run(create_and_store(config, cfg, progress=lines.append))
    assert outcome.stored == "draft" and outcome.result.best.label == "model-1"
    assert lines[0] == "loading mock-a"
    with Store(cfg.db_url) as store:
        agents = AgentStore(store)
        assert agents.get(outcome.result.spec.id).status == "draft"
        [report] = agents.reports(outcome.result.spec.id)
        assert report.purpose == "create" and report.success_rate == 1.0
