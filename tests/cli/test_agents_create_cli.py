"""``hainet agents create`` on mock models (the loaders are patched)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from hainet.agents import usecases
from hainet.agents.spec import load_spec, parse_spec
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.cli import agents_create
from hainet.config import load_settings
from hainet.errors import ValidationError
from hainet.store import AgentStore, Store
from hainet.types import ModelSpec, Request

app = typer.Typer()
app.command("create")(agents_create.create)
app.command("other")(lambda: None)  # two commands: typer keeps "create" as a subcommand

PAIRS = [
    ("3 apples and 4 apples", 7),
    ("10 pens minus 2 pens", 8),
    ("5 cats and 5 cats", 10),
    ("9 cups minus 3 cups", 6),
    ("2 books and 6 books", 8),
    ("7 hats minus 1 hat", 6),
    ("4 dogs and 4 dogs", 8),
    ("6 keys minus 5 keys", 1),
    ("1 car and 2 cars", 3),
]
GOOD = {
    "name": "word-sums",
    "instruction": "Compute the number the sentence describes.",
    "examples": [0, 1],
    "temperature": 0,
    "max_tokens": 8,
    "parser": "number",
    "stop": "newline",
    "tool": "none",
}


def _answer(prompt: str) -> str:
    """Right only when told to compute: the baseline's instruction does not say so."""
    if not prompt.startswith("Compute"):
        return "0"
    q = prompt.rsplit("Input: ", 1)[1].split("\n")[0]
    a, op, b = q.split()[0], q.split()[2], q.split()[3]
    return f" {int(a) + int(b) if op == 'and' else int(a) - int(b)}"


@pytest.fixture
def mocks(monkeypatch: pytest.MonkeyPatch, hainet_home: Path) -> dict[str, list[Any]]:
    # Mock models in config.toml: resolving the bundled one would assemble 253 MB.
    (hainet_home / "config.toml").write_text(
        '[models.mock-a]\nbackend = "mock"\n\n[models.mock-b]\nbackend = "mock"\n'
    )
    log: dict[str, list[Any]] = {"opened": [], "proposals": [json.dumps(GOOD), "not json"]}

    def respond(req: Request) -> str:
        prompt = req.prompt or ""
        if prompt.rsplit("\n", 1)[-1].startswith("Spec:"):
            return str(log["proposals"].pop(0))
        return _answer(prompt)

    @contextlib.asynccontextmanager
    async def fake_open_runner(model: ModelSpec, **kw: Any) -> AsyncIterator[AgentRunner]:
        log["opened"].append(model.name)
        yield AgentRunner(MockBackend(model, responder=respond), **kw)

    def fake_open_backend(model: ModelSpec) -> MockBackend:
        log["opened"].append(model.name)
        return MockBackend(model, responder=respond)

    monkeypatch.setattr(usecases, "open_runner", fake_open_runner)
    monkeypatch.setattr(usecases, "open_backend", fake_open_backend)
    return log


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    path = tmp_path / "sums.jsonl"
    path.write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in PAIRS))
    return path


def test_create_json_stores_and_writes_the_best(
    examples: Path, mocks: dict[str, list[Any]], tmp_path: Path
) -> None:
    out = tmp_path / "agent.yaml"
    args = ["create", "--purpose", "Add or subtract counts in a sentence.", "--examples",
            str(examples), "--creator-model", "mock-a", "--candidates", "1", "--out", str(out),
            "--author", "key-9", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert mocks["opened"] == ["mock-a"]  # creator and agent model: one load
    assert answer["proposals"] == 1 and answer["proposals_valid"] == 1
    labels = [c["label"] for c in answer["candidates"]]
    assert labels == ["baseline", "model-1"]
    rates = {c["label"]: c["success_rate"] for c in answer["candidates"]}
    assert rates == {"baseline": 0.0, "model-1": 1.0}
    assert answer["best"] == "model-1" and answer["best_success_rate"] == 1.0
    assert answer["scorer"] == "numeric" and answer["stored"] == "draft"
    spec = load_spec(out)
    assert spec.id == answer["agent_id"] and spec.author == "key-9"
    assert spec.created_by == "ai_generated" and spec.lineage == []
    settings = load_settings()
    with Store(settings.db_url) as store:
        agents = AgentStore(store)
        assert agents.get(spec.id).status == "draft"
        [report] = agents.reports(spec.id, purpose="create")
        assert report.success_rate == 1.0


def test_create_prints_yaml_and_reports_invalid_proposals(
    examples: Path, mocks: dict[str, list[Any]]
) -> None:
    mocks["proposals"][:] = ["I do not know", "not json either"]
    args = ["create", "--purpose", "Add counts.", "--examples", str(examples),
            "--creator-model", "mock-a", "--model", "mock-b", "--candidates", "1",
            "--no-store"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(mocks["opened"]) == ["mock-a", "mock-b"]
    spec = parse_spec(yaml.safe_load(result.stdout))  # stdout is only the spec
    assert spec.requirements.models == ["mock-b"]
    assert "0/1 proposals valid" in result.stderr
    assert "baseline" in result.stderr and "no JSON object" in result.stderr


def test_bad_examples_fail_before_loading_a_model(
    tmp_path: Path, mocks: dict[str, list[Any]]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a", "output": 1}\n{"input": "b"}\n{"input": "c", "output": 2}\n')
    args = ["create", "--purpose", "x", "--examples", str(bad), "--creator-model", "mock-a"]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ValidationError)
    assert "line 2: missing 'output'" in str(result.exception)
    assert mocks["opened"] == []
