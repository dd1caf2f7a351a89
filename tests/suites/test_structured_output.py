"""The structured_output suite: its data, its answers, and its quick subset on the bundled model."""

import copy
import json
from typing import Any

import jsonschema
import pytest

from hainet.suites import Case, Suite, get_scorer, load_suite
from hainet.types import Completion, GenerationParams, Timing
from tests.suites.conftest import QuickRun

# A right answer for every task, written by hand from the task's text: each must score 1.
REFERENCE: dict[str, Any] = {
    "person-age": {"name": "Ada Lovelace", "age": 36},
    "city-country": {"city": "Osaka", "country": "Japan"},
    "sentiment-negative": {"sentiment": "negative"},
    "sentiment-confidence": {"sentiment": "positive", "confidence": 0.9},
    "product-price": {"product": "Zephyr desk lamp", "price": 49.99},
    "event-date": {"event": "Harvest Fair", "date": "2024-09-14"},
    "colors-list": {"colors": ["red", "green", "blue"]},
    "ingredients": {
        "ingredients": [
            {"name": "eggs", "quantity": "2"},
            {"name": "flour", "quantity": "100 g"},
            {"name": "salt", "quantity": "a pinch"},
        ]
    },
    "address": {
        "street": "221B Baker Street",
        "city": "London",
        "postcode": "NW1 6XE",
        "country": "United Kingdom",
    },
    "contact-nested": {
        "name": "Maria Lopez",
        "contact": {"phone": "+34 600 123 456", "email": "maria@example.com"},
    },
    "refund-bool": {"asks_for_refund": True},
    "spam-bool": {"is_spam": False},
    "urgency-range": {"urgency": 5},
    "sum-product": {"sum": 13, "product": 42},
    "language": {"language": "French"},
    "order-items": {
        "order_id": 4521,
        "items": [{"product": "T-shirt", "color": "blue", "size": "M", "quantity": 3}],
    },
    "meeting": {"day": "Monday", "time": "10:30", "room": "B2", "attendees": ["Priya", "Tom"]},
    "book": {"title": "Dune", "author": "Frank Herbert", "year": 1965},
    "temperature": {"value": 30, "unit": "celsius"},
}
# Keywords llama-cpp-python's schema-to-grammar converter ignores: a constrained answer can
# break them, so the "grammar guarantees validity" check leaves them out.
UNENFORCED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def done(text: str) -> Completion:
    return Completion(text=text, timing=Timing(wall_s=0.0))


def base_id(case_id: str) -> str:
    return case_id.rsplit("/", 1)[0]


def enforceable(schema: Any) -> Any:
    """``schema`` without the keywords the grammar cannot enforce."""
    if isinstance(schema, dict):
        return {k: enforceable(v) for k, v in schema.items() if k not in UNENFORCED}
    if isinstance(schema, list):
        return [enforceable(v) for v in schema]
    return schema


def walk(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [s for item in schema for s in walk(item)]
    if not isinstance(schema, dict):
        return []
    out = [schema]
    for value in schema.values():
        out.extend(walk(value))
    return out


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("structured_output")


def test_suite_header_and_quick_subset(suite: Suite) -> None:
    assert suite.name == suite.capability == "structured_output" and suite.version == "1.0"
    assert len(suite.cases) >= 30 and suite.scorer == "json_schema"
    ids = [c.id for c in suite.cases]
    assert len(set(ids)) == len(ids)
    quick = suite.select(quick=True)
    assert 3 <= len(quick) <= 5
    assert all(base_id(i) in suite.description for i in suite.quick)
    assert {c.constrained for c in quick} == {True, False}


def test_every_task_comes_free_and_constrained(suite: Suite) -> None:
    tasks: dict[str, dict[str, Case]] = {}
    for c in suite.cases:
        variant = c.id.rsplit("/", 1)[1]
        assert c.constrained == (variant == "constrained"), c.id
        tasks.setdefault(base_id(c.id), {})[variant] = c
    assert set(tasks) == set(REFERENCE)
    for task, variants in tasks.items():
        free, constrained = variants["free"], variants["constrained"]
        assert (free.input, free.json_schema, free.options) == (
            constrained.input,
            constrained.json_schema,
            constrained.options,
        ), task
        # The grammar decides where the JSON ends; a stop string could cut it.
        assert constrained.stop == [] and free.stop is None


def test_schemas_are_valid_and_the_scoring_schema_adds_the_answer(suite: Suite) -> None:
    for c in suite.cases:
        assert c.json_schema is not None
        jsonschema.Draft202012Validator.check_schema(c.json_schema)
        scoring = c.options["schema"]
        jsonschema.Draft202012Validator.check_schema(scoring)
        # The model is shown (and constrained to) the structure; the known answer is only
        # in the scoring schema, or the grammar would write it for the model.
        assert scoring["allOf"][0] == c.json_schema and len(scoring["allOf"]) == 2


def test_schemas_bound_what_a_grammar_can_generate(suite: Suite) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    for c in suite.cases:
        for node in walk(c.json_schema):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, c.id
                assert set(node["required"]) == set(node["properties"]), c.id
            if node.get("type") == "string":
                assert "maxLength" in node or "pattern" in node, c.id
            if "pattern" in node:  # the grammar converter wants anchored patterns
                assert node["pattern"].startswith("^") and node["pattern"].endswith("$"), c.id
            if node.get("type") == "array":
                assert "maxItems" in node, c.id
        llama_cpp.LlamaGrammar.from_json_schema(json.dumps(c.json_schema), verbose=False)


def test_reference_answers_score_one_and_wrong_ones_zero(suite: Suite) -> None:
    scorer = get_scorer("json_schema")
    for c in suite.cases:
        right = REFERENCE[base_id(c.id)]
        assert scorer.score(c, done(" " + json.dumps(right))).value == 1.0, c.id
        assert scorer.score(c, done("```json\n" + json.dumps(right) + "\n```")).value == 1.0
        # Structurally valid but wrong in content: each field changed in turn.
        for key in right:
            wrong = copy.deepcopy(right)
            value = wrong[key]
            if isinstance(value, bool):
                wrong[key] = not value
            elif isinstance(value, (int, float)):
                wrong[key] = 2 if value != 2 else 3
            elif isinstance(value, str):
                enum = (c.json_schema or {})["properties"][key].get("enum")
                wrong[key] = next(e for e in enum if e != value) if enum else "Zzz"
            elif isinstance(value, list):
                wrong[key] = value[:1] if len(value) > 1 else value * 2
            else:
                continue  # nested objects: covered by their leaves in other tasks
            if key == "confidence":
                continue  # any confidence in [0, 1] is right
            assert scorer.score(c, done(json.dumps(wrong))).value == 0.0, (c.id, key)
        assert scorer.score(c, done("I cannot answer that.")).value == 0.0
        assert scorer.score(c, done(json.dumps({**right, "extra": 1}))).value == 0.0


def test_both_modes_render(suite: Suite) -> None:
    for c in suite.cases:
        schema_json = json.dumps(c.json_schema)
        req = suite.request(c, "prompt", GenerationParams())
        assert req.prompt is not None and req.prompt.startswith(suite.few_shot)
        assert req.prompt.endswith(f"Schema: {schema_json}\nTask: {c.input}\nJSON:")
        assert req.params.json_schema == (c.json_schema if c.constrained else None)
        assert (
            suite.request(c, "prompt", GenerationParams(), constrain=False).params.json_schema
            is None
        )
        chat = suite.request(c, "chat", GenerationParams())
        assert chat.messages is not None and [m.role for m in chat.messages] == ["system", "user"]
        assert schema_json in chat.messages[0].content and chat.messages[1].content == c.input
    # The few-shot examples are valid JSON lines, the form the model should continue.
    for line in suite.few_shot.splitlines():
        if line.startswith("JSON: "):
            json.loads(line[6:])


# -- the bundled model ----------------------------------------------------------------------


@pytest.mark.model
def test_quick_subset_on_the_bundled_model(suite: Suite, run_quick: QuickRun) -> None:
    run, store = run_quick(suite)
    assert run.status == "completed"
    results = {r.case_id: r for r in store.results(run.id)}
    assert sorted(results) == sorted(suite.quick)
    for c in suite.select(quick=True):
        r = results[c.id]
        assert r.prompt == suite.request(c, "prompt", GenerationParams()).prompt
        assert r.error is None, r.error
        assert r.score is not None and 0.0 <= r.score <= 1.0 and r.explanation
        if c.constrained:
            # Free answers may be anything; constrained ones cannot leave the schema.
            jsonschema.validate(json.loads(r.output), enforceable(c.json_schema))
