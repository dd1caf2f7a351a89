"""The tool_call scorer, the tool_use suite's data, and its quick subset on the bundled model."""

import json
import time
from typing import Any

import jsonschema
import pytest

from hainet.errors import SuiteError
from hainet.suites import Case, Suite, get_scorer, load_suite
from hainet.suites.tools import ToolCallScorer, evaluate_arithmetic, parse_calls
from hainet.types import Completion, GenerationParams, Timing, ToolCall
from tests.suites.conftest import QuickRun


def tool(name: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": name,
            "parameters": {"type": "object", "properties": props, "required": required},
        },
    }


WEATHER = tool(
    "get_weather",
    {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    ["city"],
)
CALC = tool("calculator", {"expression": {"type": "string"}}, ["expression"])
MONEY = tool(
    "convert_currency",
    {"amount": {"type": "number"}, "from_currency": {"type": "string"}, "tags": {"type": "array"}},
    ["amount", "from_currency"],
)
PARIS = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}


def case(target: Any = PARIS, options: dict[str, Any] | None = None, tools: Any = None) -> Case:
    return Case(
        id="t",
        input="q",
        target=target,
        tools=tools if tools is not None else [WEATHER, CALC, MONEY],
        options=options or {},
    )


def text(t: str) -> Completion:
    return Completion(text=t, timing=Timing(wall_s=0.0))


def native(*calls: tuple[str, dict[str, Any]]) -> Completion:
    return Completion(
        text="", timing=Timing(wall_s=0.0), tool_calls=tuple(ToolCall(n, a) for n, a in calls)
    )


def scored(c: Case, completion: Completion) -> float:
    score = ToolCallScorer(None).score(c, completion)
    assert score.explanation
    return score.value


# -- reading calls --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}',
        ' {"tool": "get_weather", "args": {"city": "Paris", "unit": "celsius"}}\nRequest: x',
        'Sure! ```json\n{"function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\", \\"unit\\": \\"celsius\\"}"}}\n```',
        '{"tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]}',
        '[{"name": "get_weather", "parameters": {"city": "paris", "unit": "Celsius"}}]',
        # Property order as a grammar with sorted keys writes it.
        '{"arguments": {"unit": "celsius", "city": " Paris "},"name": "get_weather"}',
        # Prose with unrelated JSON first, then the call.
        'I will use [1, 2] and then {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}',
    ],
)
def test_calls_in_every_text_shape_score_one(answer: str) -> None:
    assert scored(case(), text(answer)) == 1.0


def test_an_echoed_tool_list_is_not_a_call() -> None:
    echo = json.dumps([WEATHER, CALC])
    assert parse_calls(text(echo)) == ([], "none")
    # A call written after the echo still counts.
    assert scored(case(), text(echo + " " + json.dumps(PARIS))) == 1.0


def test_native_calls_come_first() -> None:
    completion = Completion(
        text='{"name": "calculator", "arguments": {"expression": "1"}}',
        timing=Timing(wall_s=0.0),
        tool_calls=(ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}),),
    )
    score = ToolCallScorer(None).score(case(), completion)
    assert score.value == 1.0
    assert score.details and score.details["source"] == "native"


def test_no_call_answers() -> None:
    for answer in ["null", " none", "I don't need a tool.", '{"name": null}', '{"name": "none"}']:
        calls, _ = parse_calls(text(answer))
        assert calls == [], answer
    assert scored(case(target=None), text(" null")) == 1.0
    assert scored(case(target=None), native()) == 1.0
    assert scored(case(target=None), text('{"name": "calculator", "arguments": {}}')) == 0.0
    assert scored(case(), text("null")) == 0.0
    assert scored(case(), text('{"name": "get_weather", "arguments": {"city": "Par')) == 0.0


def test_partial_credit_and_details() -> None:
    score = ToolCallScorer(None).score(
        case(), text('{"name": "get_weather", "arguments": {"city": "Lyon", "unit": "celsius"}}')
    )
    assert score.value == 0.5
    assert score.details is not None
    assert score.details["credit"] == "right function, wrong arguments"
    assert score.details["arguments"]["city"].startswith("wrong")
    assert score.details["arguments"]["unit"] == "ok"
    assert score.details["expected"] == PARIS
    # Missing, invented and unreadable arguments are wrong arguments too.
    assert scored(case(), native(("get_weather", {"city": "Paris"}))) == 0.5
    assert scored(case(), native(("get_weather", {**PARIS["arguments"], "mood": "sunny"}))) == 0.5
    assert scored(case(), text('{"name": "get_weather", "arguments": [1]}')) == 0.5
    # Another function, or none at all: nothing.
    assert scored(case(), native(("calculator", {"expression": "1"}))) == 0.0
    assert scored(case(), text("It is sunny in Paris.")) == 0.0


def test_several_calls_use_the_expected_one() -> None:
    both = native(("calculator", {"expression": "1"}), ("get_weather", PARIS["arguments"]))
    score = ToolCallScorer(None).score(case(), both)
    assert score.value == 1.0 and "other call" in score.explanation


@pytest.mark.parametrize(
    ("target_args", "options", "given", "expected"),
    [
        (
            {"expression": "17*23"},
            {"match": {"expression": "math"}},
            {"expression": "23 * 17"},
            1.0,
        ),
        ({"expression": "2**10"}, {"match": {"expression": "math"}}, {"expression": "2^10"}, 1.0),
        ({"expression": "17*23"}, {"match": {"expression": "math"}}, {"expression": "17*24"}, 0.5),
        (
            {"expression": "17*23"},
            {"match": {"expression": "math"}},
            {"expression": "import os"},
            0.5,
        ),
        ({"expression": "17*23"}, {}, {"expression": "17 * 23"}, 0.5),
    ],
)
def test_argument_modes_calculator(
    target_args: dict[str, Any], options: dict[str, Any], given: dict[str, Any], expected: float
) -> None:
    c = case({"name": "calculator", "arguments": target_args}, options)
    assert scored(c, native(("calculator", given))) == expected


@pytest.mark.parametrize(
    ("target_args", "options", "given", "expected"),
    [
        ({"city": "Paris"}, {}, {"city": "PARIS  "}, 1.0),
        ({"city": "Paris"}, {"match": {"city": "exact"}}, {"city": "paris"}, 0.5),
        ({"city": "Paris"}, {"match": {"city": "exact"}}, {"city": " Paris"}, 1.0),
        ({"city": "São Paulo"}, {"match": {"city": "loose"}}, {"city": "sao paulo!"}, 1.0),
        ({"city": "Paris"}, {"match": {"city": "contains"}}, {"city": "Paris, France"}, 1.0),
        ({"city": "Paris"}, {"match": {"city": "any"}}, {"city": "Rome"}, 1.0),
        ({"city": "Paris"}, {"match": {"city": "any"}}, {}, 0.5),
        # An argument the tool defines but the target does not name is fine...
        ({"city": "Paris"}, {}, {"city": "Paris", "unit": "fahrenheit"}, 1.0),
        # ...unless the case is strict.
        ({"city": "Paris"}, {"strict": True}, {"city": "Paris", "unit": "fahrenheit"}, 0.5),
        ({"city": "Paris", "unit": "celsius"}, {"optional": ["unit"]}, {"city": "Paris"}, 1.0),
        (
            {"city": "Paris", "unit": "celsius"},
            {"optional": ["unit"]},
            {"city": "Paris", "unit": "fahrenheit"},
            0.5,
        ),
        ({"city": "Paris"}, {}, {"city": 7}, 0.5),
    ],
)
def test_argument_modes_strings(
    target_args: dict[str, Any], options: dict[str, Any], given: dict[str, Any], expected: float
) -> None:
    c = case({"name": "get_weather", "arguments": target_args}, options)
    assert scored(c, native(("get_weather", given))) == expected


@pytest.mark.parametrize(
    ("target_args", "options", "given", "expected"),
    [
        ({"amount": 100}, {}, {"amount": 100.0}, 1.0),
        ({"amount": 100}, {}, {"amount": "100"}, 1.0),
        ({"amount": 100}, {}, {"amount": 100.5}, 0.5),
        ({"amount": 100}, {"tolerance": {"amount": 1}}, {"amount": 100.5}, 1.0),
        ({"amount": 100}, {}, {"amount": True}, 0.5),
        ({"amount": 1, "tags": ["a", "b"]}, {}, {"amount": 1, "tags": ["B", "a"]}, 0.5),
        (
            {"amount": 1, "tags": ["a", "b"]},
            {"match": {"tags": "unordered"}},
            {"amount": 1, "tags": ["B", "a"]},
            1.0,
        ),
        (
            {"amount": 1, "tags": ["a", "b"]},
            {"match": {"tags": "unordered"}},
            {"amount": 1, "tags": ["a", "a"]},
            0.5,
        ),
    ],
)
def test_argument_modes_numbers_and_lists(
    target_args: dict[str, Any], options: dict[str, Any], given: dict[str, Any], expected: float
) -> None:
    c = case({"name": "convert_currency", "arguments": target_args}, options)
    assert scored(c, native(("convert_currency", given))) == expected


def test_arithmetic_is_safe() -> None:
    assert evaluate_arithmetic("(1 + 2) * 3 - 4 / 2") == 7.0
    assert evaluate_arithmetic("1,000 + 1") == 1001.0
    start = time.perf_counter()
    for hostile in [
        "9**9**9",
        "10**1000",
        "__import__('os').system('true')",
        "x + 1",
        "1/0",
        "1" * 300,
    ]:
        assert evaluate_arithmetic(hostile) is None, hostile
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (case(tools=[]), "needs 'tools'"),
        (case(tools=[{"name": "get_weather"}]), "not an OpenAI function tool"),
        (
            case(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
            "parameters must be an object",
        ),
        (case(target="get_weather"), "target must be null or"),
        (case(target={"arguments": {}}), "target must be null or"),
        (case(target={"name": "get_weather", "args": {}}), "unknown keys"),
        (case(target={"name": "teleport", "arguments": {}}), "not one of its tools"),
        (
            case(target={"name": "get_weather", "arguments": ["Paris"]}),
            "arguments must be an object",
        ),
        (case(options={"fuzzy": True}), "unknown tool_call options"),
        (case(options={"match": {"city": "psychic"}}), "options.match"),
        (case(options={"tolerance": {"city": -1}}), "options.tolerance"),
        (case(options={"optional": "unit"}), "options.optional"),
        (case(options={"strict": "yes"}), "options.strict"),
        (case(options={"optional": ["country"]}), "does not have"),
    ],
)
def test_malformed_cases_are_suite_errors(bad: Case, message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        ToolCallScorer(None).score(bad, text(json.dumps(PARIS)))


def test_scorer_is_found_by_name() -> None:
    assert isinstance(get_scorer("tool_call"), ToolCallScorer)


# -- the suite's data -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("tool_use")


def base_id(case_id: str) -> str:
    return case_id.rsplit("/", 1)[0]


def test_suite_header_and_quick_subset(suite: Suite) -> None:
    assert suite.name == suite.capability == "tool_use" and suite.version == "1.0"
    assert len(suite.cases) >= 30 and suite.scorer == "tool_call"
    ids = [c.id for c in suite.cases]
    assert len(set(ids)) == len(ids)
    quick = suite.select(quick=True)
    assert 3 <= len(quick) <= 5
    assert all(base_id(i) in suite.description for i in suite.quick)
    assert {c.constrained for c in quick} == {True, False}
    assert any(c.target is None for c in quick) and any(c.target for c in quick)


def test_every_task_comes_free_and_constrained(suite: Suite) -> None:
    by_task: dict[str, dict[str, Case]] = {}
    for c in suite.cases:
        variant = c.id.rsplit("/", 1)[1]
        assert variant in ("free", "constrained") and c.constrained == (variant == "constrained")
        by_task.setdefault(base_id(c.id), {})[variant] = c
    for task, variants in by_task.items():
        assert set(variants) == {"free", "constrained"}, task
        free, constrained = variants["free"], variants["constrained"]
        assert (free.input, free.target, free.tools, free.options) == (
            constrained.input,
            constrained.target,
            constrained.tools,
            constrained.options,
        )
    assert sum(1 for v in by_task.values() if v["free"].target is None) >= 4


def test_targets_call_a_defined_tool_with_valid_arguments(suite: Suite) -> None:
    for c in suite.cases:
        assert c.tools and all(t["type"] == "function" for t in c.tools)
        params = {t["function"]["name"]: t["function"]["parameters"] for t in c.tools}
        assert len(params) == len(c.tools), c.id
        for schema in params.values():
            jsonschema.Draft202012Validator.check_schema(schema)
        if c.target is None:
            continue
        assert c.target["name"] in params, c.id
        jsonschema.validate(c.target["arguments"], params[c.target["name"]])


def test_the_expected_call_scores_one_and_a_wrong_one_does_not(suite: Suite) -> None:
    scorer = ToolCallScorer(None)
    for c in suite.cases:
        right = "null" if c.target is None else json.dumps(c.target)
        assert scorer.score(c, text(" " + right)).value == 1.0, c.id
        assert scorer.score(c, native()).value == (1.0 if c.target is None else 0.0)
        other = next(
            t["function"]["name"]
            for t in c.tools or []
            if c.target is None or t["function"]["name"] != c.target["name"]
        )
        assert scorer.score(c, native((other, {}))).value == 0.0, c.id


def test_constrained_schemas_allow_the_right_call_and_make_grammars(suite: Suite) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    for c in suite.cases:
        if not c.constrained:
            assert c.json_schema is None
            continue
        assert c.json_schema is not None and c.stop == []
        jsonschema.Draft202012Validator.check_schema(c.json_schema)
        jsonschema.validate(c.target, c.json_schema)  # the right answer (or null) is allowed
        jsonschema.validate({"name": "none", "arguments": {}}, {"not": c.json_schema})
        llama_cpp.LlamaGrammar.from_json_schema(json.dumps(c.json_schema), verbose=False)


def test_both_modes_render(suite: Suite) -> None:
    for c in suite.cases:
        tools_json = json.dumps(c.tools)
        prompt = suite.request(c, "prompt", GenerationParams()).prompt
        assert prompt is not None and prompt.startswith(suite.few_shot)
        assert prompt.endswith(f"Tools: {tools_json}\nRequest: {c.input}\nCall:")
        chat = suite.request(c, "chat", GenerationParams(), native_tools=True)
        assert chat.messages is not None and [m.role for m in chat.messages] == ["system", "user"]
        assert tools_json in chat.messages[0].content and chat.messages[1].content == c.input
        assert chat.params.tools == tuple(c.tools or [])
    # The few-shot examples answer in the form the scorer reads.
    calls = [
        parse_calls(text(line[5:]))[0]
        for line in suite.few_shot.splitlines()
        if line.startswith("Call:")
    ]
    assert [[c.name for c in cs] for cs in calls] == [["get_time"], ["play_music"], []]


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
        assert r.details is not None and r.details["expected"] == c.target
        if c.constrained:
            # The grammar leaves the model no way out of the call schema.
            jsonschema.validate(json.loads(r.output), c.json_schema or {})
