"""hainet.inputs, the one door for untrusted files and values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hainet.errors import ConfigError, SuiteError, ValidationError
from hainet.inputs import (
    Limits,
    check_value,
    load_file,
    parse_json,
    parse_json_lines,
    parse_toml,
    parse_yaml,
)

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEEP, "nested deeper than 64 levels"),
        ('{"a": NaN}', "at a: NaN is not allowed"),
        ('{"a": [1, -Infinity]}', r"at a\.1: -Infinity"),
        ('{"a": 1e999}', "at a: Infinity"),
        ('{"a": {"b": 1, "b": 2}}', "at a: key 'b' appears twice"),
        ('{"a": "\\udc00"}', "at a: a string with a lone surrogate"),
        ('{"a": ' + "1" * 1001 + "}", "at a: an integer of 1,001 digits"),
        ('{"a": 1,}', "line 1 column 9: not valid JSON"),
    ],
)
def test_json(text: str, message: str) -> None:
    with pytest.raises(SuiteError, match=f"f.json: {message}"):
        parse_json(text, where="f.json", error=SuiteError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEEP, "nested deeper"),
        ("- " * 200 + "x", "nested deeper"),
        ("a: &x [1]\nb: *x\n", "line 2 column 4: aliases"),
        ("a: 1\na: 2\n", "line 2 column 1: key 'a' appears twice"),
        ("a: .inf\n", "line 1 column 4: '.inf': NaN and infinities"),
        ("a: !!set {x}\n", "tag:yaml.org,2002:set is not allowed"),
        ("? [1, 2]\n: x\n", "is not a string"),
        ("\x00", "not valid YAML"),
    ],
)
def test_yaml(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_yaml(text, where="f.yaml")


def test_yaml_dates_stay_strings_and_merge_keys_without_aliases_work() -> None:
    assert parse_yaml("d: 2024-01-01\n<<: {m: 1}\n") == {"d": "2024-01-01", "m": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = nan", "at a: NaN"),
        ("a = -inf", "at a: -Infinity"),
        ("a = " + "[" * 5000 + "]" * 5000, "nested deeper"),
        ('a = "[[[[" # [[[[\nb = 1\nb = 2', "not valid TOML"),
    ],
)
def test_toml(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_toml(text, where="c.toml", error=ConfigError)


def test_brackets_inside_strings_and_comments_do_not_count() -> None:
    assert parse_json('["' + "[" * 500 + '"]') == ["[" * 500]
    assert parse_toml('a = "' + "[" * 500 + '" # ' + "{" * 500) == {"a": "[" * 500}


def test_json_lines_name_the_line() -> None:
    assert [line.number for line in parse_json_lines('{"a": 1}\n\n{"b": 2}\n')] == [1, 3]
    with pytest.raises(ValidationError, match="f line 2: at b: NaN"):
        parse_json_lines('{"a": 1}\n{"b": NaN}\n', where="f")


def test_sizes_are_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[" + "1," * 600 + "1]")
    with pytest.raises(ValidationError, match="1,203 bytes, over the limit of 1,000"):
        load_file(path, limits=Limits(max_bytes=1000))
    with pytest.raises(ValidationError, match="more than 1,001 bytes"):
        load_file("/dev/zero", limits=Limits(max_bytes=1000), kind=".json")
    with pytest.raises(ValidationError, match="cannot read .*nope.json"):
        load_file(tmp_path / "nope.json")
    with pytest.raises(ValidationError, match="text over the limit"):
        parse_json("[" + "1," * 600 + "1]", limits=Limits(max_bytes=1000))


def test_python_values_are_checked_without_recursion() -> None:
    deep: list[object] = []
    cur = deep
    for _ in range(100_000):
        nxt: list[object] = []
        cur.append(nxt)
        cur = nxt
    with pytest.raises(ValidationError, match=r"\(64 levels\): nested deeper"):
        check_value(deep)
    with pytest.raises(ValidationError, match="at a: a set, not a JSON value"):
        check_value({"a": {1}})
    with pytest.raises(ValidationError, match="key 1 is not a string"):
        check_value({1: "a"})
    with pytest.raises(ValidationError, match="at 0: NaN"):
        check_value((math.nan,))
    with pytest.raises(ValidationError, match="a string of 11 characters"):
        check_value(["x" * 11], limits=Limits(max_string=10))
    assert check_value({"a": [1, 2.5, None, True, "x"]}) == {"a": [1, 2.5, None, True, "x"]}
