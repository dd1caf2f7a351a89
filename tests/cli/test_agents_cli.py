"""``hainet agents`` commands on a mock model (the real model: tests/agents)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from hainet.agents.marketplace import PublishRefused
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.cli import agents as agents_cli
from hainet.errors import ConfigError, StoreError, ValidationError
from hainet.types import ModelSpec, Request

runner = CliRunner()

SPEC: dict[str, Any] = {
    "name": "shout",
    "purpose": "Write the input word in capital letters.",
    "capabilities": ["formatting"],
    "workflow": [{"id": "say", "kind": "generate", "template": "{input}", "output": "out"}],
    "output": "out",
    "tests": [{"id": f"t{i}", "input": w, "target": w.upper()} for i, w in enumerate("abcde")],
}


def invoke(*args: str) -> Any:
    return runner.invoke(agents_cli.app, list(args))


@pytest.fixture(autouse=True)
def mock_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Model "upper" answers right, "lower" wrong; "ghost" cannot be loaded."""

    @contextlib.asynccontextmanager
    async def fake_open(cfg: Any, model: str, **kw: Any) -> AsyncIterator[AgentRunner]:
        if model == "ghost":
            raise ConfigError(f"unknown model {model!r}")

        def respond(req: Request) -> str:
            word = (req.prompt or "").strip()
            return word.upper() if model == "upper" else "no idea"

        backend = MockBackend.from_function(respond)
        backend.spec = ModelSpec(name=model, backend="mock")
        yield AgentRunner(backend)

    monkeypatch.setattr(agents_cli, "_open", fake_open)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "shout.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def test_validate_and_schema(spec_file: Path, tmp_path: Path) -> None:
    res = invoke("validate", str(spec_file))
    assert res.exit_code == 0 and "ok: shout 1.0.0" in res.output and "5 gate tests" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "version": "one"}))
    res = invoke("validate", str(bad))
    assert isinstance(res.exception, ValidationError)
    assert "version" in str(res.exception) and "bad.yaml" in str(res.exception)
    res = invoke("schema")
    assert res.exit_code == 0 and "workflow" in json.loads(res.output)["properties"]


def test_run_shows_output_and_steps(spec_file: Path) -> None:
    res = invoke("run", str(spec_file), "--input", "hey", "--model", "upper", "--json")
    data = json.loads(res.output)
    assert res.exit_code == 0 and data["output"] == "HEY"
    assert data["steps"][0]["step"] == "say" and data["steps"][0]["wall_s"] >= 0
    res = invoke("run", str(spec_file), "--input", "hey", "--model", "upper")
    assert "HEY" in res.output and "steps" in res.output and "peak RSS" in res.output


def test_test_publish_search_show_list_rate(spec_file: Path) -> None:
    res = invoke("test", str(spec_file), "--models", "upper", "--models", "lower", "--json")
    rates = {r["model"]: r["summary"]["success_rate"] for r in json.loads(res.output)}
    assert rates == {"upper": 1.0, "lower": 0.0}

    res = invoke("publish", str(spec_file), "--model", "lower")
    assert isinstance(res.exception, PublishRefused)
    assert "success rate 0.000 (0/5 passed on lower)" in str(res.exception)

    res = invoke("publish", str(spec_file), "--model", "upper", "--repeats", "2", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["agent"]["status"] == "published" and out["score"]["total"] > 0

    res = invoke("publish", "shout", "--model", "upper")
    assert isinstance(res.exception, ValidationError) and "already published" in str(res.exception)

    res = invoke("search", "make letters uppercase", "--threshold", "0.2", "--json")
    hits = json.loads(res.output)
    assert [h["name"] for h in hits] == ["shout"] and hits[0]["similarity"] > 0.2
    res = invoke("search", "make letters uppercase")  # the default threshold finds it
    assert "shout" in res.output
    res = invoke("search", "make letters uppercase", "--threshold", "0.9")
    assert "no published agent above similarity 0.9" in res.output

    res = invoke("rate", "shout", "--stars", "4", "--text", "loud and clear")
    assert res.exit_code == 0 and "rated shout 1.0.0 4/5" in res.output
    res = invoke("rate", "shout", "--stars", "5")
    assert isinstance(res.exception, StoreError) and "already rated" in str(res.exception)
    assert invoke("rate", "shout", "--stars", "6").exit_code == 2  # typer's range check

    shown = json.loads(invoke("show", "shout", "--json").output)
    assert shown["agent"]["status"] == "published"
    assert [r["stars"] for r in shown["ratings"]] == [4]
    assert shown["score"]["components"]["stability"]["value"] == 1.0
    assert {r["purpose"] for r in shown["reports"]} == {"test", "gate"}
    res = invoke("show", "shout")
    assert "shout" in res.output and "rated 4.0/5" in res.output

    listed = json.loads(invoke("list", "--json").output)
    assert [(a["name"], a["status"]) for a in listed] == [("shout", "published")]
    assert listed[0]["score"] == pytest.approx(out["score"]["total"])


def test_compat_and_recommend_model(spec_file: Path) -> None:
    res = invoke("recommend-model", str(spec_file))
    assert res.exception is not None  # not stored yet
    res = invoke(
        "compat", str(spec_file), "--models", "upper", "--models", "lower", "-m", "ghost", "--json"
    )
    assert res.exit_code == 0, res.output
    cells = {c["model_name"]: c for c in json.loads(res.output)}
    assert (cells["upper"]["score"], cells["upper"]["passed"], cells["upper"]["total"]) == (
        1.0,
        5,
        5,
    )
    assert cells["lower"]["status"] == "ok" and cells["lower"]["score"] == 0.0
    assert cells["ghost"]["incompatibility"] == "load_failure"
    assert "unknown model 'ghost'" in cells["ghost"]["message"]
    best = json.loads(invoke("recommend-model", "shout", "--json").output)["recommended"]
    assert [b["model"] for b in best] == ["upper", "lower"]
    res = invoke("recommend-model", "shout")
    assert "1. upper" in res.output
    res = invoke("show", "shout")
    assert "compatibility" in res.output and "load_failure" in res.output


def test_unknown_agent_is_a_clear_error() -> None:
    res = invoke("show", "nobody")
    assert isinstance(res.exception, StoreError) and "nobody" in str(res.exception)


def test_score_weights_from_the_flag_over_the_config() -> None:
    w = agents_cli.parse_weights("accuracy=0.5, stability=0", {"performance": 0.1})
    assert (w.performance, w.accuracy, w.resources, w.stability) == (0.1, 0.5, 0.2, 0.0)
    with pytest.raises(ValidationError, match="unknown component"):
        agents_cli.parse_weights("speed=1", {})
    with pytest.raises(ValidationError, match="is not a number"):
        agents_cli.parse_weights("accuracy=high", {})
    with pytest.raises(ValidationError, match="accuracy: must be a number >= 0"):
        agents_cli.parse_weights("accuracy", {})
    with pytest.raises(ValidationError, match="sum must be > 0"):
        agents_cli.parse_weights(
            "performance=0,accuracy=0,resources=0,versatility=0,stability=0", {}
        )
