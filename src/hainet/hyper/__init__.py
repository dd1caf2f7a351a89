"""HyperAgents: self-improving agents with an archive, a meta agent and human control.

::

    from hainet.hyper import Controls, HyperLoop, MetaProcedure, Policy
    controls = Controls(evaluator=Evolver(runner), valset=val, testset=test,
                        policy=Policy(risk_approval="high"), budget=Budget())
    loop = HyperLoop(store, controls, lambda proc: Evolver(runner,
                     operators=proc.operators, rewrite_template=proc.rewrite_template),
                     trainset=train)
    run = await loop.run(spec, generations=20)

or, as ``hainet hyper run`` does, from one configuration (files, model by name)::

    from hainet.hyper import HyperConfig, run_hyper
    run = await run_hyper(HyperConfig(agent="agent.yaml", trainset=Path("train.jsonl"),
                          valset=Path("val.jsonl"), testset=Path("test.jsonl")), settings)

The task agent is an :class:`~hainet.agents.spec.AgentSpec`; the meta agent's
procedure (:class:`MetaProcedure`) is versioned data the loop itself may change; the
evaluator, the data, the policy and the budget (:class:`Controls`) are out of reach.
"""

from hainet.hyper.archive import parent_weights, select_parent, spec_diff
from hainet.hyper.control import Controls, Policy, check_spec, risk_of
from hainet.hyper.history import operator_payoff, self_evaluate, trend
from hainet.hyper.loop import HyperLoop
from hainet.hyper.procedure import (
    MetaProcedure,
    ProcedureChange,
    apply_change,
    judge_trial,
    model_rewriter,
    propose_change,
)
from hainet.hyper.session import HyperConfig, run_hyper

__all__ = [
    "Controls",
    "HyperConfig",
    "HyperLoop",
    "MetaProcedure",
    "Policy",
    "ProcedureChange",
    "apply_change",
    "check_spec",
    "judge_trial",
    "model_rewriter",
    "operator_payoff",
    "parent_weights",
    "propose_change",
    "risk_of",
    "run_hyper",
    "select_parent",
    "self_evaluate",
    "spec_diff",
    "trend",
]
