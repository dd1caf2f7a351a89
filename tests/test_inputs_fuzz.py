"""Fuzz the readers of untrusted files: only hainet's own errors may come out.

Random bytes and text, and structured JSON/YAML/TOML mutations (deep nesting, NaN,
duplicate keys, huge strings and integers, wrong types) go through the suite, spec,
data-file and config readers.  Bounded (``max_examples``) so that the file runs in
seconds under ``make test``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hainet.agents.datafiles import read_items
from hainet.agents.spec import load_spec
from hainet.config import load_settings
from hainet.errors import HainetError
from hainet.suites import load_suite

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSON-ish values with the hostile cases mixed in.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = ["id", "input", "target", "scorer", "options", "cases", "name", "workflow", "tests"]


def suite_like(value: Any) -> Any:
    base: dict[str, Any] = {"name": "f", "version": "1", "capability": "c"}
    base["cases"] = [{"id": "a", "input": "q", "target": value}]
    return base


def spec_like(value: Any) -> Any:
    step = {"id": "s", "kind": "generate", "template": "{input}", "output": "out"}
    return {"name": "f", "purpose": value, "workflow": [step], "output": "out"}


def mutate(text: str, how: int, n: int) -> str:
    """Make valid JSON hostile in one of several ways."""
    if how == 0:
        return "[" * (200 * n) + text + "]" * (200 * n)  # past any recursion limit
    if how == 1:
        return text.replace("1", "NaN", 1).replace("2", "Infinity", 1)
    if how == 2 and text.startswith("{") and len(text) > 2:
        return '{"name": 1, "name": 2, ' + text[1:]
    if how == 3:
        return text.replace('"q"', json.dumps("q" * (10_000 * n)), 1)
    if how == 4:
        return text.replace('"a"', "9" * (500 * n), 1)
    if how == 5:
        return text[: len(text) // (n + 1)]  # truncated
    return text


def to_yaml(text: str, how: int) -> str:
    extra = ["a: &x [1]\nb: *x\n", "k: .nan\n", "k: 1\nk: 2\n", "- " * 500 + "x\n", "1: a\n"]
    return text + "\n" + extra[how % len(extra)] if how < 5 else text


def only_hainet_errors(read: Callable[[], object]) -> None:
    # Refused with a message is what is wanted; any other exception fails the test.
    with contextlib.suppress(HainetError):
        read()


Reader = Callable[[Path], object]
READERS: dict[str, tuple[str, Reader]] = {
    "suite": (".json", lambda p: load_suite(str(p))),
    "spec-json": (".json", load_spec),
    "spec-yaml": (".yaml", load_spec),
    "data-jsonl": (".jsonl", lambda p: read_items(p, what="test cases")),
    "data-yaml": (".yaml", lambda p: read_items(p, what="test cases")),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path: Path, reader: str, data: bytes) -> None:
    suffix, read = READERS[reader]
    path = tmp_path / f"f{suffix}"
    path.write_bytes(data)
    only_hainet_errors(lambda: read(path))


@pytest.mark.parametrize("reader", sorted(READERS))
@FUZZ
@given(
    value=values,
    shape=st.sampled_from([suite_like, spec_like, lambda v: v, lambda v: [v, {"input": v}]]),
    how=st.integers(0, 6),
    n=st.integers(1, 30),
)
def test_structured_mutations(
    tmp_path: Path, reader: str, value: Any, shape: Callable[[Any], Any], how: int, n: int
) -> None:
    suffix, read = READERS[reader]
    text = mutate(json.dumps(shape(value)), how, n)
    if suffix == ".yaml":
        text = to_yaml(text, how)
    elif suffix == ".jsonl":
        text = text + "\n" + text
    path = tmp_path / f"f{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    only_hainet_errors(lambda: read(path))


@FUZZ
@given(
    key=st.sampled_from(["n_threads", "search_threshold", "score_weights", "models", "db"]),
    value=st.sampled_from(
        ["nan", "inf", "-inf", "1e999", "9" * 5000, "[" * 2000 + "]" * 2000, '"x"', "{a = 1}"]
    ),
    junk=st.text(max_size=30),
)
def test_config_toml(hainet_home: Path, key: str, value: str, junk: str) -> None:
    (hainet_home / "config.toml").write_text(f"{key} = {value}\n{junk}\n", errors="surrogatepass")
    only_hainet_errors(load_settings)


@FUZZ
@given(data=st.binary(max_size=300))
def test_config_random_bytes(hainet_home: Path, data: bytes) -> None:
    (hainet_home / "config.toml").write_bytes(data)
    only_hainet_errors(load_settings)
