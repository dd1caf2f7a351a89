"""AgentSpec: validation that names the field, content addressing, files, the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from hainet.agents.spec import AgentSpec, dump_spec, json_schema, load_spec, parse_spec
from hainet.errors import ValidationError
from tests.agents.conftest import arithmetic_data


def test_id_is_the_hash_of_the_content_and_ignores_timestamps() -> None:
    a = parse_spec(arithmetic_data())
    b = parse_spec(arithmetic_data(created_at="2026-01-01T00:00:00Z"))
    assert a.id == b.id and len(a.id) == 64
    c = parse_spec(arithmetic_data(purpose="Something else."))
    assert c.id != a.id


def test_derive_returns_a_new_spec_and_leaves_the_old_one() -> None:
    a = parse_spec(arithmetic_data())
    before = a.model_dump()
    b = a.derive(version="1.0.1", lineage=[a.id])
    assert a.model_dump() == before
    assert b.id != a.id and b.lineage == [a.id] and b.version == "1.0.1"
    b.verify()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"name": "Bad Name!"}, "name"),
        ({"version": "one"}, "version"),
        ({"workflow": []}, "workflow"),
        ({"output": "nothing"}, "output"),
        ({"tools": []}, "unknown tool 'calculator'"),
        ({"tests": [{"id": "a", "input": "x"}, {"id": "a", "input": "y"}]}, "duplicate test id"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_invalid_specs_name_the_field(change: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        parse_spec(arithmetic_data(**change), source="agent.yaml")


def test_a_step_using_an_undefined_variable_is_refused() -> None:
    data = arithmetic_data()
    data["workflow"][0]["template"] = "{examples}{question}"
    with pytest.raises(ValidationError, match=r"workflow.0 \(extract\): uses \{question\}"):
        parse_spec(data)


def test_bad_step_field_is_named_with_its_path() -> None:
    data = arithmetic_data()
    data["workflow"][0]["max_tokens"] = 0
    with pytest.raises(ValidationError, match=r"workflow\.0\.generate\.max_tokens"):
        parse_spec(data)


def test_an_edited_spec_that_keeps_its_old_id_is_caught() -> None:
    data = parse_spec(arithmetic_data()).model_dump(mode="json")
    data["purpose"] = "Quietly changed."
    with pytest.raises(ValidationError, match="content hash mismatch"):
        parse_spec(data)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_files_round_trip(tmp_path: Path, suffix: str) -> None:
    spec = parse_spec(arithmetic_data())
    path = tmp_path / f"agent{suffix}"
    dump_spec(spec, path)
    again = load_spec(path)
    assert again == spec and again.id == spec.id


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ValidationError, match="not valid YAML"):
        load_spec(bad)
    scalar = tmp_path / "scalar.json"
    scalar.write_text("42")
    with pytest.raises(ValidationError, match="is a mapping"):
        load_spec(scalar)


def test_published_json_schema_accepts_a_spec_and_rejects_a_bad_one() -> None:
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    good = json.loads(parse_spec(arithmetic_data()).model_dump_json())
    assert not list(validator.iter_errors(good))
    bad = dict(good, workflow="not a list")
    assert list(validator.iter_errors(bad))
    assert AgentSpec.model_json_schema()["title"] == "AgentSpec"


def test_the_published_schema_file_is_current() -> None:
    # docs/agent-spec.schema.json is what users validate against; regenerate it with
    # `hainet agents schema > docs/agent-spec.schema.json` when the spec changes.
    path = Path(__file__).resolve().parents[2] / "docs" / "agent-spec.schema.json"
    assert json.loads(path.read_text()) == json_schema()
