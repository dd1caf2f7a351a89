"""Agents: versioned specs, their workflow runner, tests, the marketplace, evolution."""

from hainet.agents.spec import (
    AgentSpec,
    Example,
    GenerateStep,
    TestCase,
    ToolDef,
    ToolStep,
    dump_spec,
    json_schema,
    load_spec,
    parse_spec,
)

__all__ = [
    "AgentSpec",
    "Example",
    "GenerateStep",
    "TestCase",
    "ToolDef",
    "ToolStep",
    "dump_spec",
    "json_schema",
    "load_spec",
    "parse_spec",
]
