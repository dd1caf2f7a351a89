"""Agents: versioned specs, their workflow runner, tests, the marketplace, evolution."""

from hainet.agents.create import CreateResult, create_agent
from hainet.agents.create_examples import load_examples
from hainet.agents.evolve import Budget, Evolver, load_cases
from hainet.agents.marketplace import Marketplace, PublishRefused
from hainet.agents.scoring import ScoreWeights, score_reports
from hainet.agents.search import SearchHit, SearchIndex
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
from hainet.agents.usecases import (
    CreateConfig,
    CreateOutcome,
    EvolveConfig,
    EvolveOutcome,
    create_and_store,
    cross_agents,
    default_model,
    evolve_agent,
    rank_models,
    resolve_agent,
)
from hainet.agents.workflow import AgentRun, AgentRunner, StepRecord, open_runner

__all__ = [
    "AgentRun",
    "AgentRunner",
    "AgentSpec",
    "Budget",
    "CreateResult",
    "Evolver",
    "Marketplace",
    "PublishRefused",
    "ScoreWeights",
    "SearchHit",
    "SearchIndex",
    "create_agent",
    "load_cases",
    "load_examples",
    "score_reports",
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
    "CreateConfig",
    "CreateOutcome",
    "EvolveConfig",
    "EvolveOutcome",
    "create_and_store",
    "cross_agents",
    "default_model",
    "evolve_agent",
    "rank_models",
    "resolve_agent",
]
