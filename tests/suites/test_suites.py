import json
from pathlib import Path

import pytest

from hainet.errors import SuiteError
from hainet.suites import Case, load_suite, suite_names
from hainet.suites.scorers import get_scorer, normalize
from hainet.types import Completion, GenerationParams, Timing


def done(text: str) -> Completion:
    return Completion(text=text, timing=Timing(wall_s=0.0))


def test_builtin_reasoning_suite_and_its_quick_subset() -> None:
    suite = load_suite("reasoning")
    assert "reasoning" in suite_names()
    assert suite.capability == "reasoning" and len(suite.cases) >= 10
    quick = suite.select(quick=True)
    assert 0 < len(quick) < len(suite.cases)
    assert [c.id for c in quick] == [c.id for c in suite.cases if c.id in suite.quick]


def test_prompt_mode_is_few_shot_and_chat_mode_is_messages() -> None:
    suite = load_suite("reasoning")
    case = suite.cases[0]
    prompt_req = suite.request(case, "prompt", GenerationParams())
    assert prompt_req.prompt is not None
    assert prompt_req.prompt.startswith(suite.few_shot) and prompt_req.prompt.endswith("A:")
    assert case.input in prompt_req.prompt
    assert prompt_req.params.stop == ("\n",) and prompt_req.params.max_tokens == suite.max_tokens
    chat_req = suite.request(case, "chat", GenerationParams())
    assert chat_req.messages is not None
    assert [m.role for m in chat_req.messages] == ["system", "user"]
    assert chat_req.messages[-1].content == case.input


def test_user_suites_in_home_override_and_extend(hainet_home: Path) -> None:
    (hainet_home / "suites").mkdir()
    mine = {
        "name": "mine",
        "version": "1",
        "capability": "reasoning",
        "scorer": "exact",
        "cases": [{"id": "a", "input": "Say hi", "target": "hi"}],
    }
    (hainet_home / "suites" / "mine.json").write_text(json.dumps(mine))
    assert "mine" in suite_names(hainet_home)
    assert load_suite("mine", hainet_home).cases[0].target == "hi"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (
            json.dumps(
                {
                    "name": "x",
                    "version": "1",
                    "capability": "c",
                    "cases": [{"id": "a", "input": "q"}, {"id": "a", "input": "q"}],
                }
            ),
            "duplicate case ids",
        ),
        (
            json.dumps(
                {
                    "name": "x",
                    "version": "1",
                    "capability": "c",
                    "quick": ["zz"],
                    "cases": [{"id": "a", "input": "q"}],
                }
            ),
            "quick subset names unknown",
        ),
        (
            json.dumps(
                {
                    "name": "x",
                    "version": "1",
                    "capability": "c",
                    "scorer": "psychic",
                    "cases": [{"id": "a", "input": "q"}],
                }
            ),
            "unknown scorer 'psychic'",
        ),
        (
            json.dumps({"name": "x", "version": "1", "capability": "c", "cases": [{"id": "a"}]}),
            r"bad\.json: case 'a' \(#1\): field 'input': Field required",
        ),
    ],
)
def test_bad_suite_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SuiteError, match=message):
        load_suite(str(path))


def test_unknown_suite_lists_known_ones() -> None:
    with pytest.raises(SuiteError, match="unknown suite 'nope'.*reasoning"):
        load_suite("nope")


def test_normalize() -> None:
    assert normalize("  The Éiffel  Tower! ") == "eiffel tower"


@pytest.mark.parametrize(
    ("scorer", "case", "text", "expected"),
    [
        (
            "exact",
            Case(id="a", input="q", target="Paris", aliases=["paris france"]),
            " paris.\nQ:",
            1.0,
        ),
        (
            "exact",
            Case(id="a", input="q", target="Paris", aliases=["Paris, France"]),
            "Paris, France",
            1.0,
        ),
        ("exact", Case(id="a", input="q", target="Paris"), "London", 0.0),
        ("numeric", Case(id="a", input="q", target=42), " 42 apples", 1.0),
        ("numeric", Case(id="a", input="q", target=1000), "1,000", 1.0),
        (
            "numeric",
            Case(id="a", input="q", target=3.14, options={"tolerance": 0.01}),
            "3.141",
            1.0,
        ),
        ("numeric", Case(id="a", input="q", target=42), "41", 0.0),
        ("numeric", Case(id="a", input="q", target=42), "none", 0.0),
        ("regex", Case(id="a", input="q", options={"pattern": r"\bdef \w+\("}), "def f(x):", 1.0),
        ("regex", Case(id="a", input="q", options={"pattern": "^yes$"}), "no", 0.0),
        (
            "json_schema",
            Case(id="a", input="q", options={"schema": {"type": "object", "required": ["a"]}}),
            'Here: {"a": 1} done',
            1.0,
        ),
        (
            "json_schema",
            Case(id="a", input="q", options={"schema": {"type": "object", "required": ["a"]}}),
            '{"b": 1}',
            0.0,
        ),
        (
            "json_schema",
            Case(id="a", input="q", options={"schema": {"type": "object"}}),
            "nothing",
            0.0,
        ),
    ],
)
def test_scorers(scorer: str, case: Case, text: str, expected: float) -> None:
    score = get_scorer(scorer).score(case, done(text))
    assert score.value == expected, score.explanation
    assert score.explanation
