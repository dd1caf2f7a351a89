"""Suite files and plugin suites at the door (issue 12, input validation): bounded
before they are parsed, no NaN, no duplicate key, no case that cannot be scored."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from hainet.errors import SuiteError
from hainet.inputs import SUITE_LIMITS
from hainet.suites import Case, Suite, load_suite
from hainet.suites.loader import parse_suite


def suite(*cases: dict[str, Any], scorer: str = "exact") -> dict[str, Any]:
    return {"name": "s", "version": "1", "capability": "c", "scorer": scorer, "cases": list(cases)}


def write(tmp_path: Path, text: str, name: str = "s.json") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_suite_nested_100000_deep_is_refused_without_a_traceback(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(suite({"id": "a", "input": "q", "target": "x"}))
    path = write(tmp_path, text.replace('"x"', deep))
    with pytest.raises(SuiteError, match=r"s\.json: nested deeper than 64 levels"):
        load_suite(path)


def test_a_suite_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as fh:  # sparse: no 16 MiB written to the disk
        fh.truncate(SUITE_LIMITS.max_bytes + 1)
    with pytest.raises(SuiteError, match=r"big\.json: 16,777,217 bytes, over the limit"):
        load_suite(str(path))


@pytest.mark.parametrize("scorer", ["exact", "numeric", "regex"])
def test_a_case_without_a_target_is_refused_at_load(tmp_path: Path, scorer: str) -> None:
    text = json.dumps(
        suite(
            {"id": "ok", "input": "q", "target": "1"},
            {"id": "no-target", "input": "q"},
            scorer=scorer,
        )
    )
    with pytest.raises(
        SuiteError, match=r"s\.json: case 'no-target': field 'target': the \w+ scorer needs"
    ):
        load_suite(write(tmp_path, text))


def test_a_json_schema_case_without_a_schema_is_refused_at_load(tmp_path: Path) -> None:
    text = json.dumps(suite({"id": "free", "input": "q"}, scorer="json_schema"))
    with pytest.raises(
        SuiteError, match=r"case 'free': field 'json_schema': the json_schema scorer needs"
    ):
        load_suite(write(tmp_path, text))
    bad = suite(
        {"id": "bad", "input": "q", "json_schema": {"type": "no-such-type"}}, scorer="json_schema"
    )
    with pytest.raises(
        SuiteError, match=r"case 'bad': field 'json_schema': not a valid JSON Schema"
    ):
        load_suite(write(tmp_path, json.dumps(bad)))


def test_a_bad_regex_pattern_is_refused_at_load(tmp_path: Path) -> None:
    text = json.dumps(
        suite({"id": "r", "input": "q", "options": {"pattern": "(unclosed"}}, scorer="regex")
    )
    with pytest.raises(SuiteError, match=r"case 'r': field 'options.pattern': bad pattern"):
        load_suite(write(tmp_path, text))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ('{"id": "n", "input": "q", "target": NaN}', r"case 'n' \(#1\): field 'target': NaN"),
        ('{"id": "n", "input": "q", "target": Infinity}', r"field 'target': Infinity"),
        ('{"id": "n", "input": "q", "target": 1e999}', r"field 'target': Infinity"),
        (
            '{"id": "n", "input": "q", "target": 1, "options": {"tolerance": NaN}}',
            r"case 'n' \(#1\): field 'options.tolerance': NaN",
        ),
        (
            '{"id": "n", "input": "q", "target": "1", "temperature": -Infinity}',
            r"field 'temperature'",
        ),
    ],
)
def test_non_finite_numbers_in_a_suite_file_are_refused(
    tmp_path: Path, case: str, message: str
) -> None:
    text = json.dumps(suite(scorer="numeric")).replace('"cases": []', f'"cases": [{case}]')
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, text))


def test_a_duplicate_key_in_a_suite_file_is_refused(tmp_path: Path) -> None:
    text = '{"name": "s", "version": "1", "capability": "c", "cases": [{"id": "a", "input": "q", "target": "x", "target": "y"}]}'
    with pytest.raises(SuiteError, match=r"s\.json: case 'a' \(#1\): key 'target' appears twice"):
        load_suite(write(tmp_path, text))
    top = '{"name": "s", "name": "t", "version": "1", "capability": "c", "cases": []}'
    with pytest.raises(SuiteError, match=r"key 'name' appears twice"):
        load_suite(write(tmp_path, top))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ({"id": "n", "input": "q", "target": math.nan}, "target.*NaN"),
        ({"id": "n", "input": "q", "target": math.inf}, "target.*Infinity"),
        (
            {"id": "n", "input": "q", "target": 2, "options": {"tolerance": math.nan}},
            "options.tolerance",
        ),
        ({"id": "n", "input": "q", "target": 2, "options": {"tolerance": -1}}, "options.tolerance"),
        ({"id": "n", "input": "q", "target": 2, "temperature": math.inf}, "temperature"),
    ],
)
def test_non_finite_numbers_from_a_plugin_are_refused(case: dict[str, Any], message: str) -> None:
    # A plugin gives a dict (held to what a file is) ...
    with pytest.raises(SuiteError, match=f"plugin 'p'.*{message}"):
        parse_suite(suite(case, scorer="numeric"), "plugin 'p'")
    # ... or builds the models itself: refused when it builds them.
    with pytest.raises((PydanticValidationError, SuiteError), match=f"(?s){message}"):
        Suite(name="s", version="1", capability="c", scorer="numeric", cases=[Case(**case)])


def test_a_numeric_target_that_is_not_a_number_is_refused_at_load(tmp_path: Path) -> None:
    text = json.dumps(suite({"id": "w", "input": "q", "target": "forty-two"}, scorer="numeric"))
    with pytest.raises(SuiteError, match=r"case 'w': field 'target': numeric target 'forty-two'"):
        load_suite(write(tmp_path, text))


def test_a_lone_surrogate_and_an_overlong_integer_are_refused(tmp_path: Path) -> None:
    text = json.dumps(suite({"id": "u", "input": "q", "target": "x"})).replace('"x"', '"\\ud800"')
    with pytest.raises(SuiteError, match=r"field 'target': a string with a lone surrogate"):
        load_suite(write(tmp_path, text))
    text = json.dumps(suite({"id": "i", "input": "q", "target": "x"})).replace('"x"', "9" * 5000)
    with pytest.raises(SuiteError, match=r"field 'target': an integer of 5,000 digits"):
        load_suite(write(tmp_path, text))


def test_valid_suites_still_load(tmp_path: Path) -> None:
    good = suite(
        {"id": "e", "input": "q", "target": "Paris"},
        {
            "id": "n",
            "input": "q",
            "target": 3.5,
            "scorer": "numeric",
            "options": {"tolerance": 0.1},
        },
        {"id": "r", "input": "q", "scorer": "regex", "options": {"pattern": "^a"}},
        {"id": "j", "input": "q", "scorer": "json_schema", "json_schema": {"type": "object"}},
        {"id": "t", "input": "q", "scorer": "tool_call", "target": None},
    )
    loaded = load_suite(write(tmp_path, "\ufeff" + json.dumps(good)))
    assert [c.id for c in loaded.cases] == ["e", "n", "r", "j", "t"]
