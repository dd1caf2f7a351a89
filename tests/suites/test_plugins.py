"""Suites as plugins (entry points) and as data files, as the README shows them."""

import json
import re
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest

from hainet import registry
from hainet.errors import SuiteError
from hainet.suites import load_suite, suite_names

ROOT = Path(__file__).resolve().parents[2]


def _with_plugins(monkeypatch: pytest.MonkeyPatch, *extra: EntryPoint) -> None:
    def fake(**kw: Any) -> list[EntryPoint]:
        return [*entry_points(**kw), *(e for e in extra if e.group == kw.get("group"))]

    monkeypatch.setattr(registry, "entry_points", fake)


def test_the_example_plugin_loads_through_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "suite-plugin" / "src"))
    _with_plugins(monkeypatch, EntryPoint("units", "hainet_units:suite", "hainet.suites"))
    assert "units" in suite_names()
    suite = load_suite("units")
    assert suite.name == "units" and len(suite.cases) == 5 and suite.quick == ["units-0"]
    sys.modules.pop("hainet_units", None)


def test_a_broken_plugin_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_plugins(monkeypatch, EntryPoint("broken", "no_such_module:suite", "hainet.suites"))
    with pytest.raises(SuiteError, match="suite plugin 'broken'.*failed to load"):
        load_suite("broken")


def test_a_plugin_returning_bad_data_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("bad_suite_plugin")
    module.suite = {
        "name": "b",
        "version": "1",
        "capability": "c",  # type: ignore[attr-defined]
        "cases": [{"id": "x", "input": "q", "max_tokens": 0}],
    }
    monkeypatch.setitem(sys.modules, "bad_suite_plugin", module)
    _with_plugins(monkeypatch, EntryPoint("bad", "bad_suite_plugin:suite", "hainet.suites"))
    with pytest.raises(SuiteError, match=r"case 'x' \(#1\): field 'max_tokens'"):
        load_suite("bad")


def test_the_readme_data_file_example_loads_and_runs(hainet_home: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- suite-example -->\s*```json\n(.*?)```", readme, re.S)
    assert block, "README lost its suite example"
    (hainet_home / "suites").mkdir()
    (hainet_home / "suites" / "capitals.json").write_text(block.group(1))
    suite = load_suite("capitals", hainet_home)
    assert json.loads(block.group(1))["name"] == suite.name == "capitals"
    assert "capitals" in suite_names(hainet_home)
    req = suite.request(suite.cases[0], "prompt", suite_loader_params())
    assert req.prompt and req.prompt.endswith("A:")


def suite_loader_params() -> Any:
    from hainet.types import GenerationParams

    return GenerationParams()


def test_malformed_scorer_options_are_refused_at_load(tmp_path: Path) -> None:
    bad = {
        "name": "ifx",
        "version": "1",
        "capability": "instruction_following",
        "scorer": "instructions",
        "cases": [
            {
                "id": "ok",
                "input": "Say hi",
                "options": {"checks": [{"id": "change_case:english_lowercase", "kwargs": {}}]},
            },
            {
                "id": "typo",
                "input": "Say hi",
                "options": {"checks": [{"id": "no_such:check", "kwargs": {}}]},
            },
        ],
    }
    path = tmp_path / "ifx.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(SuiteError, match=r"ifx\.json: .*'typo'.*no_such:check"):
        load_suite(str(path))


def test_a_plugin_naming_an_oversized_file_is_refused_before_it_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hainet.inputs import SUITE_LIMITS

    big = tmp_path / "big.json"
    with big.open("wb") as fh:  # sparse: nothing of it is ever read
        fh.truncate(SUITE_LIMITS.max_bytes + 1)
    module = type(sys)("big_suite_plugin")
    module.suite = str(big)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "big_suite_plugin", module)
    _with_plugins(monkeypatch, EntryPoint("big", "big_suite_plugin:suite", "hainet.suites"))
    with pytest.raises(SuiteError, match=r"suite plugin 'big'.*big\.json: 16,777,217 bytes, over"):
        load_suite("big")
