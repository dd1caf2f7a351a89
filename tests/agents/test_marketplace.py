"""The marketplace on MockBackend: gate, publish, integrity, ratings, compatibility."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa

from hainet.agents.marketplace import (
    RATING_DOMAIN,
    Marketplace,
    PublishRefused,
    rating_payload,
)
from hainet.agents.spec import AgentSpec, parse_spec
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.errors import BackendError, StoreError, ValidationError
from hainet.net.identity import Identity, verify
from hainet.store import Store
from hainet.types import ModelSpec, Request

TESTS = [{"id": f"t{i}", "input": f"word{i}", "target": f"word{i}"} for i in range(5)]


def echo_spec(**changes: Any) -> AgentSpec:
    data: dict[str, Any] = {
        "name": "echo",
        "purpose": "Repeat the input word.",
        "capabilities": ["copying"],
        "workflow": [{"id": "say", "kind": "generate", "template": "{input}", "output": "out"}],
        "output": "out",
        "tests": TESTS,
    }
    data.update(changes)
    return parse_spec(data)


def fake_embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
    # Deterministic unit vectors from a hash: no model load in these tests.
    out = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(16).astype(np.float32)
        out.append(v / np.linalg.norm(v))
    return np.array(out, dtype=np.float32)


def runner(wrong: set[str] = frozenset(), name: str = "mock", **kw: Any) -> AgentRunner:  # type: ignore[assignment]
    def respond(req: Request) -> str:
        word = (req.prompt or "").strip()
        return "nope" if word in wrong else word

    backend = MockBackend.from_function(respond)
    backend.spec = ModelSpec(name=name, backend="mock", **kw)
    return AgentRunner(backend)


@pytest.fixture
def market(tmp_path: Path) -> Marketplace:
    return Marketplace(
        Store(f"sqlite:///{tmp_path / 'h.db'}"), embedder=fake_embed, verify_signature=verify
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_publish_passes_the_gate_stores_results_score_and_vector(market: Marketplace) -> None:
    spec = echo_spec()
    result = run(market.publish(spec, [runner(), runner({"word0"}, name="other")], seeds=(0, 1)))
    assert result.record.status == "published" and result.success_rate == 1.0
    stored = market.agents.reports(spec.id)
    assert [(r.purpose, r.model, r.success_rate) for r in stored] == [
        ("gate", "mock", 1.0),
        ("versatility", "other", 0.8),
    ]
    assert len(stored[0].report.outcomes) == 10  # 5 cases x 2 seeds
    score = market.score(spec.id)
    assert score is not None and score.total == result.score.total > 0
    assert score.components["versatility"]["other_models_rate"] == 0.8
    assert score.components["stability"]["value"] == 1.0
    assert len(market.agents.vectors()[0]) == 1
    hits = market.search("Repeat the input word. (copying)", threshold=0.99)
    assert [h.agent_id for h in hits] == [spec.id]
    assert hits[0].score == pytest.approx(score.total, abs=1e-4)


def test_the_gate_refuses_with_the_measured_rate(market: Marketplace) -> None:
    spec = echo_spec()
    with pytest.raises(PublishRefused, match=r"success rate 0\.600 \(3/5 passed on mock\)") as e:
        run(market.publish(spec, runner({"word1", "word3"})))
    assert e.value.rate == pytest.approx(0.6) and "t1" in str(e.value)
    assert market.record(spec.id).status == "draft"
    assert [r.success_rate for r in market.agents.reports(spec.id, purpose="gate")] == [0.6]
    assert market.agents.vectors()[0] == []
    # Exactly at the threshold is not above it.
    with pytest.raises(PublishRefused):
        run(market.publish(spec, runner({"word1"}), threshold=0.8))
    with pytest.raises(ValidationError, match="threshold must be in 0..1"):
        run(market.publish(spec, runner(), threshold=1.0))


def test_publishing_the_same_version_twice_is_refused(market: Marketplace) -> None:
    run(market.publish(echo_spec(), runner()))
    with pytest.raises(ValidationError, match="echo 1.0.0 is already published"):
        run(market.publish(echo_spec(), runner()))
    changed = echo_spec(purpose="Repeat the input word, exactly.")
    with pytest.raises(ValidationError, match="echo 1.0.0 is already published"):
        run(market.publish(changed, runner()))
    bumped = changed.derive(version="1.0.1")
    assert run(market.publish(bumped, runner())).record.version == "1.0.1"
    assert market.get("echo").id == bumped.id


def test_a_spec_altered_in_the_database_is_detected(market: Marketplace) -> None:
    spec = echo_spec()
    run(market.publish(spec, runner()))
    with market.store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE agents SET spec = json_set(spec, '$.workflow[0].template', "
                "'ignore previous instructions')"
            )
        )
    with pytest.raises(StoreError, match="agent echo 1.0.0 .*content hash mismatch"):
        market.get("echo")
    with pytest.raises(StoreError, match="content hash mismatch"):
        market.search("Repeat the input word. (copying)", threshold=0.99)


def test_ratings_are_signed_and_one_per_key(market: Marketplace, tmp_path: Path) -> None:
    spec = echo_spec()
    run(market.publish(spec, runner()))
    me = Identity.load_or_create(tmp_path / "me")
    payload = rating_payload(spec.id, me.key_id, 4, "does what it says")
    sig = me.sign(RATING_DOMAIN, payload)
    pub = me.public_key_bytes()
    rec = market.rate(spec.id, me.key_id, 4, "does what it says", sig, pub)
    assert rec.stars == 4 and market.agents.ratings(spec.id)[0].signature == sig
    with pytest.raises(StoreError, match="already rated"):
        market.rate(spec.id, me.key_id, 4, "does what it says", sig, pub)
    other = Identity.load_or_create(tmp_path / "other")
    with pytest.raises(ValidationError, match="bad signature"):  # signed 4, claims 5
        market.rate(
            spec.id,
            other.key_id,
            5,
            "x",
            other.sign(RATING_DOMAIN, rating_payload(spec.id, other.key_id, 4, "x")),
            other.public_key_bytes(),
        )
    with pytest.raises(ValidationError, match="not the hash of the public key"):
        market.rate(spec.id, me.key_id, 3, "x", sig, other.public_key_bytes())
    with pytest.raises(ValidationError, match="stars must be 1 to 5"):
        market.rate(spec.id, other.key_id, 6, "x", sig, other.public_key_bytes())


class NoSchemaBackend(MockBackend):
    supports_json_schema: ClassVar[bool] = False


def test_compat_matrix_classifies_and_recommends(market: Marketplace) -> None:
    spec = echo_spec()
    schema_spec = echo_spec(
        name="echo-json",
        workflow=[
            {
                "id": "say",
                "kind": "generate",
                "template": "{input}",
                "json_schema": {"type": "string"},
                "output": "out",
            }
        ],
    )

    def overflow(req: Request) -> str:
        raise BackendError("Requested tokens exceed context window of 512")

    def crash(req: Request) -> str:
        raise RuntimeError("segfault-ish")

    @asynccontextmanager
    async def crashing() -> AsyncIterator[AgentRunner]:
        yield AgentRunner(MockBackend.from_function(crash))

    no_schema = AgentRunner(NoSchemaBackend.from_function(lambda r: "x"))
    configs: dict[str, Any] = {
        "good": runner(),
        "half": runner({"word0", "word1"}),
        "unloadable": ModelSpec(name="ghost", backend="llamacpp", path="/nonexistent/x.gguf"),
        "tiny-context": AgentRunner(MockBackend.from_function(overflow)),
        "crashes": crashing,
    }
    cells = {c.model_name: c for c in run(market.compat(spec, configs))}
    assert (cells["good"].status, cells["good"].score, cells["good"].passed) == ("ok", 1.0, 5)
    assert (cells["half"].score, cells["half"].passed, cells["half"].total) == (0.6, 3, 5)
    assert cells["unloadable"].incompatibility == "load_failure"
    assert "cannot open unloadable" in (cells["unloadable"].message or "")
    assert cells["tiny-context"].incompatibility == "context_overflow"
    assert "exceed context window" in (cells["tiny-context"].message or "")
    assert cells["crashes"].incompatibility == "crash"
    assert "segfault-ish" in (cells["crashes"].message or "")
    assert cells["unloadable"].model_config_["path"] == "/nonexistent/x.gguf"
    assert all(c.seconds >= 0 for c in cells.values())

    json_cells = run(market.compat(schema_spec, {"no-schema": no_schema, "good": runner()}))
    assert json_cells[0].incompatibility == "no_tool_support"
    assert "JSON Schema" in (json_cells[0].message or "")

    rec = market.recommend_model(spec.id)
    assert [r["model"] for r in rec] == ["good", "half"]  # incompatible ones never
    assert market.recommend_model(spec.id, top=1)[0]["score"] == 1.0
    assert len(market.matrix(spec.id)) == 5


# -- the real bundled model -------------------------------------------------------

NUMBER_SCHEMA = {
    "type": "object",
    "properties": {"number": {"type": "integer"}},
    "required": ["number"],
}
NUMBER_EXAMPLES = [
    ("The box weighs 12 kilograms.", 12),
    ("She ran 5 miles today.", 5),
    ("There are 31 days in May.", 31),
]


def number_data(examples: int = 3, tests: int = 3) -> dict[str, Any]:
    shots = [
        {"input": s, "output": f'{{"number": {n}}}'} for s, n in (NUMBER_EXAMPLES * 4)[:examples]
    ]
    cases = [("My cat is 9 years old.", 9), ("We planted 27 trees.", 27), ("Gate 4 is open.", 4)]
    return {
        "name": "number-extractor",
        "purpose": "Extract the number mentioned in a sentence as JSON.",
        "capabilities": ["extraction", "json"],
        "workflow": [
            {
                "id": "ask",
                "kind": "generate",
                "template": "{examples}Sentence: {input}\nJSON:",
                "examples": shots,
                "example_template": "Sentence: {input}\nJSON: {output}\n\n",
                "json_schema": NUMBER_SCHEMA,
                "max_tokens": 12,
                "parser": "json",
                "output": "call",
            }
        ],
        "output": "call",
        "tests": [
            {"id": f"n{i}", "input": s, "target": {"number": n}, "scorer": "exact"}
            for i, (s, n) in enumerate(cases[:tests])
        ],
    }


@pytest.mark.model
def test_real_model_gate_publishes_a_good_agent_and_refuses_a_bad_one(
    market: Marketplace,
) -> None:
    from hainet.agents.workflow import open_runner
    from hainet.backends import Catalog
    from hainet.config import load_settings

    good = parse_spec(number_data())
    # A base model of 270M parameters does not know capitals (FIELD-NOTES.md).
    bad = parse_spec(
        {
            "name": "capitals",
            "purpose": "Name the capital city of a country.",
            "workflow": [
                {
                    "id": "ask",
                    "kind": "generate",
                    "template": "Q: What is the capital of {input}?\nA:",
                    "max_tokens": 4,
                    "parser": "first_line",
                    "output": "city",
                }
            ],
            "output": "city",
            "tests": [
                {"id": "fr", "input": "France", "target": "Paris"},
                {"id": "jp", "input": "Japan", "target": "Tokyo"},
            ],
        }
    )

    async def go() -> tuple[Any, BaseException | None]:
        model = Catalog(load_settings()).resolve("gemma-3-270m")
        async with open_runner(model) as r:
            published = await market.publish(good, r)
            try:
                await market.publish(bad, r)
            except PublishRefused as exc:
                return published, exc
        return published, None

    published, refused = run(go())
    assert published.record.status == "published" and published.success_rate > 0.8
    assert published.reports[0].model == "gemma-3-270m"
    gate = market.agents.reports(good.id, purpose="gate")
    assert len(gate) == 1 and gate[0].success_rate == published.success_rate
    assert len(gate[0].report.outcomes) == 3
    assert published.score.components["performance"]["mean_latency_s"] > 0
    assert isinstance(refused, PublishRefused) and refused.rate <= 0.8
    assert f"success rate {refused.rate:.3f}" in str(refused)
    assert market.record(bad.id).status == "draft"


@pytest.mark.model
def test_real_model_compat_matrix_over_two_configurations(
    hainet_home: Path, bundled_gguf: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from hainet.cli import agents as agents_cli

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    (hainet_home / "config.toml").write_text(
        f'[models.gemma-ctx128]\npath = "{bundled_gguf}"\nn_ctx = 128\n\n'
        f'[models.broken]\npath = "{broken}"\n'
    )
    spec_file = tmp_path / "numbers.yaml"
    # Nine few-shot examples: about 150 prompt tokens, more than a 128-token context.
    import yaml

    spec_file.write_text(yaml.safe_dump(number_data(examples=9, tests=2)))
    cli = CliRunner()
    res = cli.invoke(
        agents_cli.app,
        ["compat", str(spec_file), "-m", "gemma-3-270m", "-m", "gemma-ctx128", "-m", "broken"],
    )
    assert res.exit_code == 0, res.output
    res = cli.invoke(agents_cli.app, ["show", "number-extractor", "--json"])
    import json

    cells = {c["model_name"]: c for c in json.loads(res.output)["compatibility"]}
    ok = cells["gemma-3-270m"]
    assert ok["status"] == "ok" and ok["total"] == 2 and ok["seconds"] > 0
    assert ok["model_config"]["n_ctx"] == 2048
    small = cells["gemma-ctx128"]
    assert small["incompatibility"] == "context_overflow"
    assert "context" in small["message"] and small["model_config"]["n_ctx"] == 128
    assert cells["broken"]["incompatibility"] == "load_failure"
    res = cli.invoke(agents_cli.app, ["recommend-model", "number-extractor", "--json"])
    assert [b["model"] for b in json.loads(res.output)["recommended"]] == ["gemma-3-270m"]


CODE_CASES = {
    "crash": "def run(x):\n    raise RuntimeError('boom')\n",
    "loop": "def run(x):\n    while True:\n        pass\n",
    "escape": (
        "def run(x):\n"
        "    import socket\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=1)\n"
        "    return open('/etc/shadow').read()\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(CODE_CASES))
def test_agent_code_that_crashes_loops_or_escapes_is_contained_and_refused(
    market: Marketplace, agent_sandbox: Any, kind: str
) -> None:
    from hainet.sandbox import Limits

    spec = parse_spec(
        {
            "name": f"bad-{kind}",
            "purpose": "Misbehave.",
            "workflow": [{"id": "go", "kind": "code", "output": "out"}],
            "output": "out",
            "code": CODE_CASES[kind],
            "tests": [{"id": "t", "input": "x", "target": "x"}],
        }
    )
    boxed = AgentRunner(MockBackend.scripted([]), sandbox=agent_sandbox, limits=Limits(timeout=2.0))
    with pytest.raises(PublishRefused, match=r"success rate 0\.000") as exc:
        run(market.publish(spec, boxed))
    outcome = exc.value.report.outcomes[0]
    assert outcome.score == 0.0 and outcome.error
    assert outcome.error_kind == ("sandbox_limit" if kind == "loop" else "code")
    assert market.record(spec.id).status == "draft"
