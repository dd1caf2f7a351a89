"""Evolution operators: each turns a spec into a changed copy, or says it cannot.

An operator is one object (:class:`Operator`): its ``name`` (stored with every
proposal), its ``risk`` (``low``, ``medium`` or ``high``: the self-improving loop
asks a human at or above the policy's level), whether it ``calls_model`` (such an
operator is retried when it proposes nothing), and ``propose(spec, ctx)``.  The
built-ins are registered as entry points of the group ``hainet.operators``
like a plugin's (:data:`OPERATOR_REGISTRY`); :func:`operator` makes one from a
function.

Each built-in wraps a plain function ``(spec, rng, ...) -> Change | None``: it
returns the changed spec (not yet versioned or given lineage; :class:`Evolver` does
that) with a one-line rationale, or ``None`` when it has nothing sensible to change
(no generate step, no fitting parser, already at the maximum).  Only
``rewrite_prompt`` calls a model; the others are deterministic given the ``rng``.

A change must *type-check* before it is proposed: the result goes through
``AgentSpec`` validation (variables defined before use, known tools), and an
operator that cannot keep the agent's contract (e.g. a rewritten template that drops
``{input}``) returns ``None`` rather than a spec that fails at run time.

The base (:class:`Operator`, :class:`ProposalContext`, the registry, shared helpers)
is in ``_base``; the prompt-editing operators and the crosses in ``_prompts``; the
structural ones (parameters, votes, parsers, tools, models) in ``_structural``.
:class:`FunctionOperator`, ``ProposeFn``, :func:`fitting_parsers` and the built-in
instances (``REWRITE_PROMPT``, ``FEW_SHOT``, ...) are importable from here too, as
before the split, though not in ``__all__``.
"""

from __future__ import annotations

from hainet.agents.operators._base import (
    DEFAULT_REWRITE_TEMPLATE,
    OPERATOR_REGISTRY,
    RISK_LEVELS,
    Change,
    Operator,
    ProposalContext,
    RiskLevel,
    answer_step,
    as_text,
    bump_version,
    get_operator,
    operator,
    operator_names,
    template_vars,
)
from hainet.agents.operators._base import FunctionOperator as FunctionOperator
from hainet.agents.operators._base import ProposeFn as ProposeFn
from hainet.agents.operators._prompts import FEW_SHOT as FEW_SHOT
from hainet.agents.operators._prompts import (
    MAX_EXAMPLES,
    combinations,
    example_format,
    few_shot,
    rewrite_prompt,
)
from hainet.agents.operators._prompts import REWRITE_PROMPT as REWRITE_PROMPT
from hainet.agents.operators._structural import ADD_TOOL as ADD_TOOL
from hainet.agents.operators._structural import PARAMS as PARAMS
from hainet.agents.operators._structural import PARSER as PARSER
from hainet.agents.operators._structural import SAMPLES as SAMPLES
from hainet.agents.operators._structural import SWITCH_MODEL as SWITCH_MODEL
from hainet.agents.operators._structural import (
    add_tool,
    params,
    parser,
    samples,
    switch_model,
)
from hainet.agents.operators._structural import (
    fitting_parsers as fitting_parsers,
)

__all__ = [
    "DEFAULT_REWRITE_TEMPLATE",
    "MAX_EXAMPLES",
    "OPERATOR_REGISTRY",
    "RISK_LEVELS",
    "Change",
    "Operator",
    "ProposalContext",
    "RiskLevel",
    "add_tool",
    "answer_step",
    "combinations",
    "example_format",
    "as_text",
    "bump_version",
    "few_shot",
    "get_operator",
    "operator",
    "operator_names",
    "params",
    "parser",
    "rewrite_prompt",
    "samples",
    "switch_model",
    "template_vars",
]
