"""Control: what the self-improving loop holds but its agents may not edit.

:class:`Controls` carries the evaluator (scoring and the paired comparison), the
validation set (selection) and the test set (the final report only, never
selection), the safety :class:`Policy` and the budget.  None of it is part of the
task spec or the meta procedure, so no proposal can reach it; a proposal that tries
(a spec that edits its own tests or scorers, leaks evaluation inputs into its prompt,
adds a tool outside the allow-list or raises its memory allowance; a procedure change
naming the evaluator, the data, the policy or the budget) is rejected and logged.

Risk: every change gets a level (:func:`risk_of`): adding a tool or code is high
whatever the operator says; otherwise the operator's own declared ``risk`` (prompt,
parser and model changes are medium, parameter, sampling and few-shot tweaks are
low, a plugin's operator says its own; an unknown or crossing operator is medium).
Changes at or above ``Policy.risk_approval`` wait for a human.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from hainet.agents.evolve import Budget, Evaluation, Proposal, Verdict
from hainet.agents.operators import OPERATOR_REGISTRY, RISK_LEVELS, RiskLevel
from hainet.agents.spec import AgentSpec, GenerateStep, TestCase, canonical_json
from hainet.agents.testing import CaseOutcome

__all__ = [
    "RISK_LEVELS",
    "Controls",
    "Evaluator",
    "Policy",
    "Proposer",
    "check_constraints",
    "check_spec",
    "needs_approval",
    "risk_of",
]

ApprovalLevel = Literal["low", "medium", "high", "never"]


class Evaluator(Protocol):
    """Scores a spec on cases and compares two evaluations (``Evolver`` is one)."""

    async def evaluate(
        self, spec: AgentSpec, cases: Sequence[TestCase], *, repeats: int = 1
    ) -> Evaluation: ...

    def compare(self, parent: Evaluation, child: Evaluation, budget: Budget) -> Verdict: ...


class Proposer(Protocol):
    """Makes candidate specs (``Evolver`` is one)."""

    async def propose(
        self,
        spec: AgentSpec,
        operator: str,
        *,
        trainset: Sequence[TestCase],
        failures: Sequence[CaseOutcome],
    ) -> Proposal | None: ...


@dataclass(frozen=True)
class Policy:
    """Safety policy and resource constraints, checked on every generation."""

    allowed_tools: frozenset[str] = field(
        default_factory=frozenset,
        metadata={"doc": "Built-in tool names a spec may use beyond the starting spec's."},
    )
    allow_new_code: bool = False
    max_memory_mb: float | None = None
    max_latency_s: float | None = None
    risk_approval: ApprovalLevel = "high"
    max_candidates: int = 8
    approval_poll_s: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["allowed_tools"] = sorted(self.allowed_tools)
        return data


def _digest(cases: Sequence[TestCase]) -> str:
    blob = canonical_json([c.model_dump(mode="json") for c in cases])
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Controls:
    """Held by the loop, outside anything a proposal can edit."""

    evaluator: Evaluator
    valset: tuple[TestCase, ...]
    testset: tuple[TestCase, ...]
    policy: Policy = Policy()
    budget: Budget = Budget()

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must find unchanged (hashes, not the data)."""
        return {
            "valset_sha256": _digest(self.valset),
            "testset_sha256": _digest(self.testset),
            "valset_size": len(self.valset),
            "testset_size": len(self.testset),
            "policy": self.policy.to_dict(),
            "budget": asdict(self.budget),
        }


def _inputs(cases: Sequence[TestCase]) -> set[str]:
    return {c.input if isinstance(c.input, str) else canonical_json(c.input) for c in cases}


def check_spec(
    root: AgentSpec, parent: AgentSpec, child: AgentSpec, controls: Controls
) -> list[str]:
    """Why ``child`` may not enter the archive (empty: it may)."""
    problems: list[str] = []
    if [t.model_dump(mode="json") for t in child.tests] != [
        t.model_dump(mode="json") for t in parent.tests
    ]:
        problems.append(
            "changes the spec's tests (cases, targets or scorers): the evaluator is a control"
        )
    held = _inputs(controls.valset) | _inputs(controls.testset)
    for step in child.workflow:
        if isinstance(step, GenerateStep):
            leaked = [e.input for e in step.examples if e.input in held]
            if leaked:
                problems.append(
                    f"step {step.id}: {len(leaked)} few-shot example(s) copy valset/testset "
                    "inputs (evaluation data may not enter the agent)"
                )
    root_tools = {canonical_json(t.model_dump(mode="json")) for t in root.tools}
    for tool in child.tools:
        if canonical_json(tool.model_dump(mode="json")) in root_tools:
            continue
        if tool.builtin is not None and tool.builtin in controls.policy.allowed_tools:
            continue
        if tool.source is not None and controls.policy.allow_new_code:
            continue
        what = f"built-in {tool.builtin!r}" if tool.builtin else "its own source code"
        problems.append(f"tool {tool.name!r} ({what}) is outside the policy's allow-list")
    if child.code != root.code and not controls.policy.allow_new_code:
        problems.append("changes the agent's code module: new code is not allowed by the policy")
    limit = controls.policy.max_memory_mb
    asked = child.requirements.max_memory_mb
    if limit is not None and asked is not None and asked > limit:
        problems.append(f"asks for {asked:.0f} MB of memory; the policy allows {limit:.0f} MB")
    return problems


def check_constraints(self_eval: dict[str, Any], policy: Policy) -> list[str]:
    """Resource constraints a measured generation broke."""
    problems = []
    rss = self_eval.get("peak_rss_mb")
    if policy.max_memory_mb is not None and rss is not None and rss > policy.max_memory_mb:
        problems.append(f"peak memory {rss:.0f} MB > policy {policy.max_memory_mb:.0f} MB")
    lat = self_eval.get("latency_s_mean")
    if policy.max_latency_s is not None and lat is not None and lat > policy.max_latency_s:
        problems.append(f"mean latency {lat:.2f} s > policy {policy.max_latency_s:.2f} s")
    return problems


def risk_of(operator: str | None, parent: AgentSpec, child: AgentSpec) -> RiskLevel:
    """The change's risk from what it changes, not only what it claims to be."""

    def dump(x: Any) -> str:
        return json.dumps(x, sort_keys=True, default=str)

    if child.code != parent.code or dump([t.model_dump() for t in child.tools]) != dump(
        [t.model_dump() for t in parent.tools]
    ):
        return "high"
    kinds = [s.kind for s in child.workflow]
    if kinds != [s.kind for s in parent.workflow]:
        return "high" if {"tool", "code"} & set(kinds) else "medium"
    if operator and operator in OPERATOR_REGISTRY:
        return OPERATOR_REGISTRY.get(operator).risk
    return "medium"


def needs_approval(risk: str, policy: Policy) -> bool:
    if policy.risk_approval == "never":
        return False
    return RISK_LEVELS.index(risk) >= RISK_LEVELS.index(policy.risk_approval)
