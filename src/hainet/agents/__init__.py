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
from hainet.agents.testing import CaseOutcome, TestReport, test_agent
from hainet.agents.workflow import AgentRun, AgentRunner, StepRecord, open_runner

__all__ = [
    "AgentRun",
    "AgentRunner",
    "AgentSpec",
    "CaseOutcome",
    "StepRecord",
    "TestReport",
    "open_runner",
    "test_agent",
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
