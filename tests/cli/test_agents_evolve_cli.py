"""``hainet agents evolve`` / ``cross`` on a mock model (the runner is patched in)."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hainet.agents import usecases
from hainet.agents.spec import AgentSpec, dump_spec, load_spec, parse_spec
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.cli import agents_evolve
from hainet.config import load_settings
from hainet.errors import ConfigError, ValidationError
from hainet.store import AgentStore, Store
from hainet.types import ModelSpec, Request

ANSWERS = {f"what is {a} plus {b}?": a + b for a in range(1, 5) for b in range(1, 4)}

app = typer.Typer()
app.command("evolve")(agents_evolve.evolve)
app.command("cross")(agents_evolve.cross)


def respond(req: Request) -> str:
    """Right only when the prompt shows an example: few-shot fixes the agent."""
    prompt = req.prompt or ""
    q = re.findall(r"Q: (.*)\n", prompt)[-1]
    return str(ANSWERS[q]) if prompt.count("Q: ") > 1 or "Input:" in prompt else "no idea"


@pytest.fixture
def mock_model(monkeypatch: pytest.MonkeyPatch, hainet_home: Path) -> list[str]:
    # Mock models in config.toml: resolving the bundled one would assemble 253 MB.
    (hainet_home / "config.toml").write_text(
        '[models.mock-a]\nbackend = "mock"\n\n[models.mock-b]\nbackend = "mock"\n'
    )
    opened: list[str] = []

    @contextlib.asynccontextmanager
    async def fake_open_runner(model: ModelSpec, **kw: Any) -> AsyncIterator[AgentRunner]:
        opened.append(model.name)
        yield AgentRunner(MockBackend(model, responder=respond), **kw)

    monkeypatch.setattr(usecases, "open_runner", fake_open_runner)
    return opened


def spec(template: str = "Q: {input}\nA:", name: str = "adder") -> AgentSpec:
    return parse_spec(
        {
            "name": name,
            "purpose": "Add two numbers given in words.",
            "workflow": [
                {"id": "answer", "kind": "generate", "template": template, "output": "answer"}
            ],
            "output": "answer",
            "requirements": {"models": ["mock-a"]},
        }
    )


def write_cases(path: Path, items: list[tuple[str, int]], prefix: str) -> Path:
    lines = [
        json.dumps({"id": f"{prefix}{i}", "input": q, "target": str(t)})
        for i, (q, t) in enumerate(items)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    items = list(ANSWERS.items())
    agent = tmp_path / "adder.yaml"
    dump_spec(spec(), agent)
    return {
        "agent": agent,
        "train": write_cases(tmp_path / "train.jsonl", items[:6], "tr"),
        "val": write_cases(tmp_path / "val.jsonl", items[6:], "va"),
        "out": tmp_path / "out.yaml",
    }


def test_evolve_writes_a_better_child_and_stores_it(
    data: dict[str, Path], mock_model: list[str]
) -> None:
    before = data["agent"].read_text()
    result = CliRunner().invoke(
        app,
        [
            "evolve",
            str(data["agent"]),
            "--trainset",
            str(data["train"]),
            "--valset",
            str(data["val"]),
            "--operators",
            "few_shot",
            "--candidates",
            "1",
            "--out",
            str(data["out"]),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["changed"] is True and answer["stored"] is True
    assert answer["score"] == 1.0 and answer["parent_scores"] == {answer["parents"][0]: 0.0}
    child = load_spec(data["out"])
    assert child.id == answer["result"] and child.version == "1.0.1"
    assert child.lineage == answer["parents"]
    assert data["agent"].read_text() == before  # the parent file is untouched
    assert mock_model == ["mock-a"]  # the spec's first model when --model is not given
    with Store(load_settings().db_url) as store:
        rec = AgentStore(store).get(child.id)
    assert rec.status == "draft" and rec.created_by == "ai_generated"


def test_evolve_without_gain_keeps_the_parent(data: dict[str, Path], mock_model: list[str]) -> None:
    result = CliRunner().invoke(
        app,
        [
            "evolve",
            str(data["agent"]),
            "--trainset",
            str(data["train"]),
            "--valset",
            str(data["val"]),
            "--operators",
            "params",
            "--rounds",
            "2",
            "--model",
            "other-model",
            "--no-store",
        ],
    )
    # "other-model" is not in the catalog: resolving it fails before anything runs.
    assert isinstance(result.exception, ConfigError) and "other-model" in str(result.exception)
    result = CliRunner().invoke(
        app,
        [
            "evolve",
            str(data["agent"]),
            "--trainset",
            str(data["train"]),
            "--valset",
            str(data["val"]),
            "--operators",
            "params",
            "--rounds",
            "2",
            "--no-store",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "no change" in result.stdout
    printed = parse_spec(__import__("yaml").safe_load(result.stdout.split("\n", 1)[1]))
    assert printed.id == spec().id


def test_cross_two_agents(tmp_path: Path, data: dict[str, Path], mock_model: list[str]) -> None:
    other = tmp_path / "b.yaml"
    with_examples = spec("{examples}Q: {input}\nA:", name="adder-b").derive(
        workflow=[
            {
                "id": "answer",
                "kind": "generate",
                "template": "{examples}Q: {input}\nA:",
                "examples": [{"input": "what is 9 plus 9?", "output": "18"}],
                "output": "answer",
            }
        ]
    )
    dump_spec(with_examples, other)
    result = CliRunner().invoke(
        app,
        [
            "cross",
            str(data["agent"]),
            str(other),
            "--trainset",
            str(data["train"]),
            "--valset",
            str(data["val"]),
            "--json",
            "--no-store",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    # adder-b already answers everything: no cross can beat it, so it is returned.
    assert answer["changed"] is False and answer["result"] == with_examples.id


def test_bad_dataset_names_the_line(
    data: dict[str, Path], mock_model: list[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "input": "x"}\n{"id": "b", "input": "y", "scorer": 3}\n')
    result = CliRunner().invoke(
        app, ["evolve", str(data["agent"]), "--trainset", str(bad), "--valset", str(data["val"])]
    )
    assert isinstance(result.exception, ValidationError)
    assert "line 2: scorer" in str(result.exception)
    assert mock_model == []


def test_parse_operators() -> None:
    assert agents_evolve.parse_operators("few_shot=2, parser") == {"few_shot": 2.0, "parser": 1.0}
    assert agents_evolve.parse_operators(None) is None
    with pytest.raises(ValidationError, match="unknown operator"):
        agents_evolve.parse_operators("mutate")


def test_switch_to_loads_the_other_model(data: dict[str, Path], mock_model: list[str]) -> None:
    result = CliRunner().invoke(
        app,
        [
            "evolve",
            str(data["agent"]),
            "--trainset",
            str(data["train"]),
            "--valset",
            str(data["val"]),
            "--operators",
            "switch_model",
            "--switch-to",
            "mock-b",
            "--json",
            "--no-store",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert mock_model == ["mock-a", "mock-b"]
    # Both mock models answer alike: the switch is proposed, evaluated and rejected.
    proposed = [e for e in answer["events"] if e["event"] == "proposed"]
    assert proposed and proposed[0]["operator"] == "switch_model"
    assert answer["changed"] is False


def test_switch_model_ranking_comes_from_the_stored_matrix(mock_model: list[str]) -> None:
    (Path(load_settings().home) / "config.toml").write_text(
        "".join(f'[models.mock-{c}]\nbackend = "mock"\n\n' for c in "abcd")
    )
    s = spec()
    cfg = load_settings()
    with Store(cfg.db_url) as store:
        agents = AgentStore(store)
        agents.add(s.model_dump(mode="json"))
        for name, score in [
            ("mock-c", 0.9),
            ("mock-b", 0.5),
            ("unknown-model", 1.0),
            ("mock-d", 0.2),
        ]:
            agents.add_compat(
                s.id, model_name=name, model_config={}, score=score, passed=1, total=1, seconds=1.0
            )
        agents.add_compat(
            s.id,
            model_name="mock-a",
            model_config={},
            score=None,
            passed=0,
            total=1,
            seconds=0.1,
            incompatibility="crash",
            message="boom",
        )
    # Best first, the running model and names the catalog does not know left out,
    # at most two (each is loaded for the whole evolution).
    assert usecases.rank_models(cfg, s, "mock-a") == ["mock-c", "mock-b"]
    assert usecases.rank_models(cfg, s, "mock-c") == ["mock-b", "mock-d"]
