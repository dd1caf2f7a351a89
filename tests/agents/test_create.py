"""hainet agents create: examples, the proposal schema, assembly and the candidates.

Unit tests script the creator with MockBackend; one model test runs the bundled model.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hainet.agents.create import (
    CreateResult,
    assemble,
    baseline_proposal,
    create_agent,
    creator_prompt,
    load_examples,
    output_kind,
    proposal_schema,
    split_examples,
)
from hainet.agents.create_examples import LabeledExample
from hainet.agents.spec import dump_spec, load_spec
from hainet.agents.workflow import AgentRunner
from hainet.backends.mock import MockBackend
from hainet.errors import ValidationError
from hainet.types import ModelSpec, Request

SENTIMENT = [
    ("I loved it, wonderful film.", "positive"),
    ("Terrible service, cold food.", "negative"),
    ("Best purchase all year!", "positive"),
    ("Broke after two days.", "negative"),
    ("Friendly, helpful staff.", "positive"),
    ("Awful, I want a refund.", "negative"),
    ("Great sound, easy to use.", "positive"),
    ("Boring plot and bad acting.", "negative"),
    ("A delightful cafe.", "positive"),
    ("Dirty and noisy room.", "negative"),
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _jsonl(tmp_path: Path, pairs: list[tuple[Any, Any]], name: str = "ex.jsonl") -> Path:
    lines = [json.dumps({"input": i, "output": o}) for i, o in pairs]
    return _write(tmp_path, name, "\n".join(lines) + "\n")


def _examples(pairs: list[tuple[Any, Any]]) -> list[LabeledExample]:
    return [LabeledExample(i, o, f"item {n}") for n, (i, o) in enumerate(pairs, 1)]


# -- examples -----------------------------------------------------------------------


def test_load_examples_in_every_format(tmp_path: Path) -> None:
    pairs = SENTIMENT[:4]
    as_list = [{"input": i, "output": o} for i, o in pairs]
    files = [
        _jsonl(tmp_path, pairs),
        _write(tmp_path, "ex.json", json.dumps(as_list)),
        _write(tmp_path, "wrapped.json", json.dumps({"examples": as_list})),
        _write(
            tmp_path,
            "ex.yaml",
            "- {input: 'I loved it, wonderful film.', output: positive}\n"
            "- {input: 'Terrible service, cold food.', output: negative}\n"
            "- {input: 'Best purchase all year!', output: positive}\n"
            "- {input: 'Broke after two days.', output: negative}\n",
        ),  # fmt: skip
    ]
    for path in files:
        loaded = load_examples(path)
        assert [(e.input, e.output) for e in loaded] == pairs, path


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ('{"input": "a", "output": "b"}\n{"input": "c"}\n{"input": "d", "output": "e"}\n',
         "ex.jsonl", "line 2: missing 'output'"),
        ('{"input": "a", "output": "b"}\n\n{"input": "c", "output": \n', "ex.jsonl",
         "line 3: not valid JSON"),
        ('[{"input": "a", "output": "b"}, {"input": "c", "ouput": "d"}]', "ex.json",
         "item 2: missing 'output'"),
        ('[{"input": "a", "output": "b", "label": 1}, {"input": "c", "output": "d"},'
         ' {"input": "e", "output": "f"}]', "ex.json", "item 1: unknown field 'label'"),
        ('[{"input": "a", "output": ""}]', "ex.json", "item 1: 'output' is empty"),
        ('[{"input": "a", "output": "b"},\n {"input": "c" "output": "d"}]', "ex.json", "line 2"),
        ('[{"input": "a", "output": "b"}, {"input": "c", "output": "d"}]', "ex.json",
         "at least 3"),
        ('{"input": "a"}', "ex.json", "expected a list"),
        ("- [1, 2]\n", "ex.yaml", "item 1: an example is a mapping"),
    ],
)  # fmt: skip
def test_bad_examples_name_the_place(tmp_path: Path, text: str, name: str, message: str) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")) as info:
        load_examples(path)
    assert str(path) in str(info.value)


def test_missing_examples_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read examples"):
        load_examples(tmp_path / "nope.jsonl")


def test_output_kind_chooses_the_scorer() -> None:
    assert output_kind([3, "4.5", "1,200"]) == "number"
    assert output_kind(["pos", "neg", "pos", "neg"]) == "label"
    assert output_kind([{"a": 1}, {"a": 2}]) == "json"
    assert output_kind(["rouge", "bleu", "vert"]) == "text"  # all distinct: not labels
    split = split_examples(_examples([(f"q{i}", i * 2) for i in range(9)]))
    assert {t.scorer for t in split.tests} == {"numeric"}
    assert all(isinstance(t.target, float) for t in split.tests)
    split = split_examples(_examples([(f"q{i}", {"v": i, "k": "x"}) for i in range(6)]))
    case = split.tests[0]
    assert case.scorer == "json_schema"
    jsonschema.validate(case.target, case.options["schema"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**case.target, "v": -1}, case.options["schema"])


def test_split_keeps_tests_apart_and_shows_every_label() -> None:
    examples = _examples(SENTIMENT)
    split = split_examples(examples)
    assert split.kind == "label"
    assert set(split.labels) == {"positive", "negative"}
    assert {e.output for e in split.pool} == {"positive", "negative"}
    pool_inputs = {e.input for e in split.pool}
    assert not pool_inputs & {t.input for t in split.tests}
    assert len(split.pool) + len(split.tests) == len(examples)
    held = [t for t in split.tests if t.holdout]
    assert len(split.tests) >= 6 and len(held) == len(split.tests) // 3
    assert split_examples(examples) == split  # seeded: the same split every time
    capped = split_examples(examples, max_tests=3)
    assert len(capped.tests) == 3 and capped.unused == len(split.tests) - 3


# -- proposal and assembly -------------------------------------------------------------


def test_baseline_fits_the_schema_and_assembles() -> None:
    split = split_examples(_examples(SENTIMENT))
    base = baseline_proposal("Label the sentiment of a review.", split)
    jsonschema.validate(base, proposal_schema(split))
    spec = assemble(base, purpose="Label the sentiment.", split=split, model="m", author="k1")
    assert spec.created_by == "ai_generated" and spec.author == "k1" and spec.lineage == []
    step = spec.workflow[0]
    assert step.kind == "generate" and step.parser == "choice"
    assert set(step.choices) == {"positive", "negative"}
    assert len(spec.tests) == len(split.tests)
    assert spec.name == "label-the-sentiment-of-a-review"
    long = baseline_proposal("Label the sentiment of a review as positive or negative.", split)
    assert long["name"] == "label-the-sentiment-of-a-review-as"  # cut at a word, <= 40
    assert load_spec_roundtrip(spec) == spec


def load_spec_roundtrip(spec: Any) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.yaml"
        dump_spec(spec, path)
        return load_spec(path)


def test_schema_is_closed() -> None:
    split = split_examples(_examples(SENTIMENT))
    schema = proposal_schema(split)
    assert schema["additionalProperties"] is False
    for key, prop in schema["properties"].items():
        if key in ("name", "instruction"):
            assert "maxLength" in prop
        elif key == "examples":
            assert prop["items"]["enum"] == list(range(len(split.pool)))
        else:
            assert "enum" in prop, key
    assert "calculator" in schema["properties"]["tool"]["enum"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"examples": [99]}, "examples.0"),
        ({"parser": "json"}, "parser"),
        ({"extra": 1}, "Additional properties"),
        ({"name": "!!!"}, "name"),  # slug is empty: the spec refuses it
        ({"temperature": 1.7}, "temperature"),
    ],
)
def test_invalid_proposals_are_refused_with_the_field(change: dict[str, Any], message: str) -> None:
    split = split_examples(_examples(SENTIMENT))
    proposal = {**baseline_proposal("Label the sentiment.", split), **change}
    with pytest.raises(ValidationError, match=message):
        assemble(proposal, purpose="Label.", split=split, model="m")


def test_instruction_braces_cannot_inject_variables() -> None:
    split = split_examples(_examples(SENTIMENT))
    proposal = {**baseline_proposal("x", split), "instruction": "Use {secret} and {input.x}."}
    spec = assemble(proposal, purpose="Label.", split=split, model="m")
    assert spec.workflow[0].template.startswith("Use secret and input.x.")


def test_tool_proposal_wires_the_builtin() -> None:
    split = split_examples(_examples([(f"{i} plus {i}", 2 * i) for i in range(9)]))
    proposal = {**baseline_proposal("Add numbers.", split), "tool": "calculator"}
    spec = assemble(proposal, purpose="Add numbers.", split=split, model="m")
    gen, tool = spec.workflow
    assert gen.kind == "generate" and gen.json_schema is not None and gen.output == "call"
    assert tool.kind == "tool" and tool.args == {"expression": "{call.expression}"}
    assert spec.tools[0].builtin == "calculator" and "tool_use" in spec.capabilities


def test_creator_prompt_shows_only_the_pool() -> None:
    split = split_examples(_examples(SENTIMENT))
    prompt = creator_prompt("Label the sentiment.", split)
    assert prompt.rstrip().endswith("Spec:")
    last_task = prompt.rsplit("Task:", 1)[1]
    assert f"examples 0 to {len(split.pool) - 1}" in last_task
    assert '"choice" or "first_line" or "text"' in last_task
    for e in split.pool:
        assert e.input in prompt
    for t in split.tests:
        assert t.input not in prompt


# -- the pipeline ------------------------------------------------------------------------

PURPOSE = "Label the sentiment of a review as positive or negative."


def _agent_answer(request: Request) -> str:
    """A fake model that is right on sentiment when the prompt says 'positive or
    negative', and answers 'maybe' otherwise."""
    prompt = request.prompt or ""
    if "positive or negative" not in prompt.split("\n\n")[0]:
        return "maybe"
    last = prompt.rsplit("Input:", 1)[1].lower()
    bad = ("terrible", "broke", "awful", "boring", "dirty")
    return " negative" if any(w in last for w in bad) else " positive"


def _good(split_pool: int = 3, **change: Any) -> str:
    prop = {
        "name": "sentiment",
        "instruction": "Answer positive or negative.",
        "examples": [0, 1],
        "temperature": 0,
        "max_tokens": 4,
        "parser": "choice",
        "stop": "newline",
        "tool": "none",
    }
    return json.dumps({**prop, **change})


def _run(
    creator_outputs: list[str], *, candidates: int, purpose: str = PURPOSE
) -> tuple[CreateResult, list[Request]]:
    """Creator answers scripted (free attempts and grammar retries alike); the agent's
    model is a function of the prompt."""
    script = list(creator_outputs)
    seen: list[Request] = []

    def respond(request: Request) -> str:
        if (request.prompt or "").rsplit("\n", 1)[-1].startswith("Spec:"):
            seen.append(request)
            return script.pop(0)
        return _agent_answer(request)

    backend = MockBackend.from_function(respond)

    async def go() -> CreateResult:
        return await create_agent(
            purpose,
            _examples(SENTIMENT),
            creator=backend,
            runner=AgentRunner(backend),
            model_name="mock",
            candidates=candidates,
            author="key-1",
        )

    result = asyncio.run(go())
    assert not script, "every scripted proposal was asked for"
    return result, seen


def test_pipeline_counts_invalid_proposals_and_keeps_the_best() -> None:
    # model-1 free answer is prose, its grammar retry an out-of-range index (invalid);
    # model-2 is good at once; model-3 answers "maybe" for everything (rate 0).
    result, reqs = _run(
        [
            "I think the agent should be nice.",
            _good(examples=[7]),
            _good().removeprefix('{"name": "'),  # continues the opening it was given
            _good(name="vague", instruction="Describe the text."),
        ],
        candidates=3,
        purpose="Sort reviews into two piles.",  # the baseline's instruction fails too
    )
    by = {c.label: c for c in result.candidates}
    assert list(by) == ["baseline", "model-1", "model-2", "model-3"]
    assert not by["model-1"].valid and "examples" in (by["model-1"].error or "")
    assert by["model-1"].constrained and by["model-1"].report is None
    assert by["model-2"].valid and not by["model-2"].constrained
    assert result.proposals == 3 and result.proposals_valid == 2
    assert by["model-2"].success_rate == 1.0
    assert by["model-3"].success_rate == 0.0 and by["baseline"].success_rate == 0.0
    assert result.best.label == "model-2" and result.best_rate == 1.0
    assert result.spec.created_by == "ai_generated" and result.spec.author == "key-1"
    # The first attempt is free, the retry under the grammar.
    assert reqs[0].params.json_schema is None and reqs[1].params.json_schema is not None
    assert (reqs[0].prompt or "").endswith('Spec: {"name": "')
    assert (reqs[1].prompt or "").endswith("Spec:")
    d = result.to_dict()
    assert d["proposals_valid"] == 2 and d["best"] == "model-2" and not d["best_is_baseline"]
    assert d["best_success_rate"] == max(c["success_rate"] or 0 for c in d["candidates"])
    json.dumps(d)  # serializable for --json


def test_baseline_is_kept_when_no_proposal_beats_it() -> None:
    result, _ = _run(["nonsense", "still nonsense"], candidates=1)
    assert result.proposals == 1 and result.proposals_valid == 0
    assert result.best.source == "baseline" and result.best_rate == 1.0
    assert "baseline" in " ".join(result.notes)


def test_identical_proposals_are_tested_once() -> None:
    result, _ = _run([_good(), _good()], candidates=2)
    second = result.candidates[2]
    assert second.duplicate_of == "model-1"
    assert second.report is result.candidates[1].report


def test_zero_candidates_gives_the_baseline() -> None:
    result, _ = _run([], candidates=0)
    assert [c.label for c in result.candidates] == ["baseline"]


def test_empty_purpose_is_refused() -> None:
    backend = MockBackend.scripted([])
    with pytest.raises(ValidationError, match="purpose"):
        asyncio.run(
            create_agent(
                " ",
                _examples(SENTIMENT),
                creator=backend,
                runner=AgentRunner(backend),
                model_name="mock",
            )  # fmt: skip
        )


# -- the bundled model ---------------------------------------------------------------------


@pytest.mark.model
def test_create_on_the_bundled_model(tmp_path: Path) -> None:
    from hainet.agents.workflow import open_runner
    from hainet.backends import Catalog
    from hainet.config import load_settings

    path = _jsonl(tmp_path, SENTIMENT[:8])
    model: ModelSpec = Catalog(load_settings()).resolve("gemma-3-270m")

    async def go() -> CreateResult:
        async with open_runner(model) as runner:
            return await create_agent(
                PURPOSE,
                load_examples(path),
                creator=runner.backend,
                runner=runner,
                model_name=model.name,
                candidates=1,
            )

    result = asyncio.run(go())
    model_cand = result.candidates[1]
    assert result.candidates[0].label == "baseline"
    assert result.proposals == 1
    assert result.proposals_valid == (1 if model_cand.valid else 0)
    if model_cand.valid:
        # A valid proposal is a valid, tested spec.
        assert model_cand.spec is not None and model_cand.report is not None
        assert model_cand.report.total == result.n_tests
    else:
        assert model_cand.error
    rates = [c.success_rate for c in result.candidates if c.success_rate is not None]
    assert result.best_rate == max(rates)
    for c in result.candidates:
        if c.report is not None:
            r = c.report
            assert r.success_rate == pytest.approx(sum(o.score for o in r.gate) / len(r.gate))
            assert 0.0 <= r.success_rate <= 1.0
    spec = result.spec
    assert spec.created_by == "ai_generated"
    assert load_spec_roundtrip(spec).id == spec.id


def test_json_outputs_are_pinned_field_for_field() -> None:
    people = [(f"{n} is {a} years old.", {"name": n, "age": a})
              for n, a in [("Ann", 31), ("Bo", 4), ("Cy", 77), ("Di", 25), ("Ed", 9), ("Flo", 60)]]  # fmt: skip

    def respond(request: Request) -> str:
        if (request.prompt or "").rsplit("\n", 1)[-1].startswith("Spec:"):
            return "no idea"
        assert request.params.json_schema is not None  # the agent answers under a grammar
        name, _, rest = request.prompt.rsplit("Input: ", 1)[1].partition(" is ")  # type: ignore[union-attr]
        age = int(rest.split()[0])
        return json.dumps({"name": name, "age": age if name != "Flo" else age + 1})

    backend = MockBackend.from_function(respond)
    result = asyncio.run(
        create_agent(
            "Pull out name and age.",
            _examples(people),
            creator=backend,
            runner=AgentRunner(backend),
            model_name="mock",
            candidates=1,
        )  # fmt: skip
    )
    assert result.kind == "json" and result.scorer == "json_schema"
    step = result.spec.workflow[0]
    assert step.parser == "json" and step.json_schema is not None
    assert step.json_schema["properties"] == {
        "name": {"type": "string"},
        "age": {"type": "integer"},
    }
    report = result.best.report
    assert report is not None
    # Flo's age is off by one: exactly that case fails, if it is among the tests.
    tested = {o.test_id: o.score for o in report.outcomes}
    flo = [t.id for t in result.spec.tests if t.target["name"] == "Flo"]
    assert flo and all(tested[t] == 0.0 for t in flo)
    assert sum(tested.values()) == len(tested) - len(flo)


def test_a_tool_proposal_runs_the_builtin_in_the_sandbox(agent_sandbox: Any) -> None:
    problems = [(f"Tom has {a} apples and gets {b} more.", a + b)
                for a, b in [(2, 5), (3, 4), (10, 7), (6, 6), (1, 8), (12, 3), (4, 9)]]  # fmt: skip
    proposal = json.dumps({**json.loads(_good()), "parser": "number", "tool": "calculator",
                           "instruction": "Write the sum as an expression."})  # fmt: skip

    def respond(request: Request) -> str:
        prompt = request.prompt or ""
        if prompt.rsplit("\n", 1)[-1].startswith("Spec:"):
            return proposal
        if request.params.json_schema is None:
            return " 0"  # the baseline answers directly, and wrongly
        a, b = (int(w) for w in prompt.rsplit("Input: ", 1)[1].split() if w.isdigit())
        return json.dumps({"expression": f"{a}+{b}"})

    backend = MockBackend.from_function(respond)
    result = asyncio.run(
        create_agent(
            "Add the numbers in a word problem.",
            _examples(problems),
            creator=backend,
            runner=AgentRunner(backend, sandbox=agent_sandbox),
            model_name="mock",
            candidates=1,
        )  # fmt: skip
    )
    model_1 = result.candidates[1]
    assert model_1.valid and model_1.spec is not None
    assert [s.kind for s in model_1.spec.workflow] == ["generate", "tool"]
    assert model_1.success_rate == 1.0 and result.candidates[0].success_rate == 0.0
    assert result.best is model_1
