"""Agent specs and data files at the door (issue 12, input validation): bounded
before they are parsed, and bounded in the model for specs built in Python or
received from a hub."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from hainet.agents.datafiles import read_items
from hainet.agents.spec import MAX_TEXT, dump_spec, load_spec, parse_spec
from hainet.errors import ValidationError
from hainet.inputs import DATA_LIMITS, SPEC_LIMITS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agents" / "word-arithmetic.yaml"


def spec_data() -> dict[str, Any]:
    return load_spec(EXAMPLE).model_dump(mode="json", exclude={"id"})


def test_a_10_mb_string_in_a_spec_built_in_python_is_refused_naming_the_field() -> None:
    data = spec_data()
    data["purpose"] = "x" * 10_000_000
    with pytest.raises(ValidationError, match=f"hub: purpose: .*at most {MAX_TEXT}"):
        parse_spec(data, source="hub")
    data = spec_data()
    data["tests"][0]["input"] = "x" * 10_000_000
    with pytest.raises(ValidationError, match=r"tests\.0\.input: a string of 10,000,000"):
        parse_spec(data)


def test_a_spec_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:
        fh.truncate(SPEC_LIMITS.max_bytes + 1)
    with pytest.raises(ValidationError, match=r"big\.yaml: 1,048,577 bytes, over the limit"):
        load_spec(path)


def test_a_spec_whose_fields_are_each_bounded_is_bounded_as_a_whole() -> None:
    data = spec_data()
    data["tests"] = [{"id": f"t{i}", "input": "x" * 1000, "target": 1} for i in range(1100)]
    with pytest.raises(ValidationError, match="bytes of JSON, over 1,048,576"):
        parse_spec(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nname: b\n", r"line 2 column 1: key 'name' appears twice"),
        ("a: &x [1, 2]\nb: *x\n", r"line 2 column 4: aliases .* are not allowed"),
        ("name: a\npurpose: .nan\n", r"line 2 column 10: '.nan': NaN"),
        ("[" * 100_000, r"line 1 column 65: nested deeper than 64 levels"),
        ("name: !!binary aGk=\n", r"line 1 column 7: the tag tag:yaml.org,2002:binary"),
        ("1: a\n", r"line 1 column 1: key 1 is not a string"),
    ],
)
def test_a_hostile_yaml_spec_is_refused_with_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError, match=rf"s\.yaml: {message}"):
        load_spec(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('"target": 12', '"target": NaN'),
        ('"target": 12', '"target": 1e999'),
        ('"id": "add-apples"', '"id": "add-apples", "id": "t2"'),
    ],
)
def test_nan_and_duplicate_keys_in_a_json_spec_are_refused(
    tmp_path: Path, change: str, message: str
) -> None:
    text = json.dumps(spec_data()).replace(change, message, 1)
    assert message in text
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(ValidationError, match=r"s\.json: at tests\.0"):
        load_spec(path)


def test_a_nan_from_python_is_refused_and_a_good_spec_round_trips(tmp_path: Path) -> None:
    data = spec_data()
    data["tests"][0]["target"] = math.nan
    with pytest.raises(ValidationError, match=r"tests\.0\.target: NaN is not allowed"):
        parse_spec(data)
    spec = load_spec(EXAMPLE)
    dump_spec(spec, tmp_path / "again.json")
    assert load_spec(tmp_path / "again.json").id == spec.id


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("d.json", '[{"input": "a", "input": "b"}]', r"d\.json: item 1: key 'input' appears twice"),
        ("d.json", '[{"input": "a", "target": NaN}]', r"d\.json: item 1: field 'target': NaN"),
        ("d.json", "[" * 100_000, r"d\.json: nested deeper than 64 levels"),
        ("d.jsonl", '{"input": "a"}\n{"x": Infinity}\n', r"d\.jsonl line 2: at x: Infinity"),
        ("d.jsonl", "[" * 100_000 + "\n", r"d\.jsonl line 1: nested deeper"),
        ("d.yaml", "- {input: a, input: b}\n", r"d\.yaml: line 1 column 14: key 'input'"),
    ],
)
def test_hostile_data_files_are_refused_naming_the_place(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValidationError, match=message):
        read_items(path, what="test cases")


def test_a_data_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as fh:
        fh.truncate(DATA_LIMITS.max_bytes + 1)
    with pytest.raises(ValidationError, match=r"test cases .*big\.jsonl: 16,777,217 bytes"):
        read_items(path, what="test cases")
