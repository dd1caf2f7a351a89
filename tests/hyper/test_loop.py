"""The hyper loop on the MockBackend task of conftest.py: archive, meta step, controls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import sqlalchemy as sa

from hainet.agents.spec import AgentSpec, ToolDef
from hainet.errors import StoreError
from hainet.hyper.archive import spec_from_record
from hainet.hyper.loop import HyperLoop
from hainet.hyper.procedure import MetaProcedure, ProcedureChange
from hainet.store import Store
from hainet.store.hyper import HyperStore

from .conftest import TRAIN, ScriptedProposer, make_controls, procedure, root_spec


def _loop(store: Store, proposer: ScriptedProposer | None = None, **kw: Any) -> HyperLoop:
    policy = kw.pop("policy", {})
    controls, _ = make_controls(**policy)
    prop = proposer or ScriptedProposer()
    return HyperLoop(
        store,
        controls,
        lambda _proc: prop,
        trainset=TRAIN,
        procedure=kw.pop("procedure", procedure()),
        seed=kw.pop("seed", 0),
        **kw,
    )


def test_run_archives_every_generation_and_improves_on_test(store: Store) -> None:
    run = asyncio.run(_loop(store).run(root_spec(), generations=6))
    hs = HyperStore(store)
    gens = hs.generations(run.id)
    assert run.status == "completed"
    assert {g.number for g in gens} == set(range(7))
    root = gens[0]
    assert root.number == 0 and root.parent_id is None and root.score == 0.0
    for g in gens[1:]:
        assert g.parent_id in {x.id for x in gens}
        assert g.operator and g.diff.startswith("---")
        assert g.procedure_json and MetaProcedure.from_json(g.procedure_json).id == g.procedure_id
        assert spec_from_record(g).id == g.spec_id
    accepted = [g for g in gens[1:] if g.status == "accepted"]
    assert accepted and all(g.operator == "few_shot" for g in accepted)
    assert all(g.status == "rejected" for g in gens[1:] if g.operator != "few_shot")
    assert run.final is not None
    assert run.final["final"]["test"] > run.final["baseline"]["test"]
    assert run.final["baseline"]["test"] == 0.0
    se = accepted[0].self_eval
    assert se["tokens_per_case"] > 0 and se["latency_s_mean"] >= 0
    assert se["calibration"]["measured"] is False
    assert se["verdict"]["delta"] > 0


def test_meta_step_reweights_and_keeps_change_because_improvement_came_faster(
    store: Store,
) -> None:
    run = asyncio.run(_loop(store, seed=2).run(root_spec(), generations=12))
    hs = HyperStore(store)
    procs = hs.procedures(run.id)
    changes = [p for p in procs if p.status != "initial"]
    assert changes, "the loop never proposed a procedure change"
    first = changes[0]
    assert first.change["kind"] == "reweight"
    weights = first.change["changes"]["operators"]
    assert weights["few_shot"] == max(weights.values())
    assert weights["few_shot"] > 2 * weights["params"]
    assert first.status == "kept", first.reason
    ev = first.evidence
    faster = ev["after"]["accepted_per_gen"] > ev["before"]["accepted_per_gen"]
    better = ev["after"]["gain_per_gen"] > ev["before"]["gain_per_gen"]
    assert better or (faster and ev["after"]["gain_per_gen"] >= ev["before"]["gain_per_gen"])
    # Generations of the trial were made by the new procedure, earlier ones by the old.
    gens = hs.generations(run.id)
    trial = [g for g in gens if ev["trial_start"] <= g.number < ev["decided_at_generation"]]
    assert trial and all(g.procedure_id == first.procedure_id for g in trial)
    assert all(
        g.procedure_id == procs[0].procedure_id for g in gens if g.number < ev["trial_start"]
    )
    events = [a.event for a in hs.audit(run.id)]
    assert "procedure_trial" in events and "procedure_kept" in events


def test_reweighting_speeds_improvement_over_a_fixed_procedure(store: Store) -> None:
    """Same seeds, same budget: the self-modifying procedure ends higher on average."""
    hs = HyperStore(store)

    def best(meta_every: int, seed: int) -> float:
        proc = procedure(meta_every=meta_every)
        run = asyncio.run(_loop(store, seed=seed, procedure=proc).run(root_spec(), generations=12))
        return max(g.score or 0.0 for g in hs.generations(run.id) if g.status == "accepted")

    seeds = range(6)
    adaptive = [best(4, s) for s in seeds]
    fixed = [best(100, s) for s in seeds]
    assert sum(adaptive) > sum(fixed)
    assert sum(a > f for a, f in zip(adaptive, fixed, strict=True)) >= 4


def test_procedure_change_reaching_the_budget_is_rejected_and_logged(store: Store) -> None:
    async def greedy(_proc: MetaProcedure, _evidence: dict[str, Any]) -> ProcedureChange:
        return ProcedureChange("grab", {"budget": {"bootstrap": 1}, "candidates": 2}, "cheaper")

    run = asyncio.run(_loop(store, meta_proposer=greedy).run(root_spec(), generations=6))
    hs = HyperStore(store)
    rejected = [p for p in hs.procedures(run.id) if p.status == "rejected"]
    assert rejected and "budget" in rejected[0].reason
    # The procedure in force never changed.
    assert len({g.procedure_id for g in hs.generations(run.id)}) == 1
    assert any(a.event == "procedure_rejected" for a in hs.audit(run.id))


def test_editing_the_evaluator_is_rejected_and_logged(store: Store) -> None:
    def lenient_scorer(spec: AgentSpec) -> AgentSpec:
        tests = [
            {**t.model_dump(), "scorer": "regex", "options": {"pattern": ".*"}} for t in spec.tests
        ]
        return spec.derive(tests=tests)

    def leak_testset(spec: AgentSpec) -> AgentSpec:
        step = spec.workflow[0].model_dump()
        step["examples"] = [{"input": "q5", "output": "yes"}]  # q5 is a valset/testset input
        return spec.derive(workflow=[step])

    def new_tool(spec: AgentSpec) -> AgentSpec:
        tool = ToolDef(name="shell", source="def shell(cmd):\n    return cmd\n")
        return spec.derive(tools=[tool.model_dump()])

    proposer = ScriptedProposer(
        {"parser": lenient_scorer, "add_tool": new_tool, "switch_model": leak_testset}
    )
    proc = procedure(operators={"parser": 1.0, "add_tool": 1.0, "switch_model": 1.0}, candidates=3)
    run = asyncio.run(_loop(store, proposer, procedure=proc).run(root_spec(), generations=2))
    hs = HyperStore(store)
    gens = hs.generations(run.id)[1:]
    assert gens and all(g.status == "rejected" and g.decided_by == "control" for g in gens)
    reasons = {g.operator: g.reason for g in gens}
    assert "evaluator" in reasons["parser"]
    assert "allow-list" in reasons["add_tool"]
    assert "evaluation data" in reasons["switch_model"]
    assert all(g.score is None for g in gens)  # never even evaluated
    audit = hs.audit(run.id)
    for g in gens:
        assert any(a.event == "generation_rejected" and a.generation_id == g.id for a in audit)


def test_testset_is_used_only_for_the_final_report(store: Store) -> None:
    controls, evaluator = make_controls()
    seen: list[tuple[str, ...]] = []
    real = evaluator.evaluate

    async def spy(spec: AgentSpec, cases: Any, *, repeats: int = 1) -> Any:
        seen.append(tuple(c.id for c in cases))
        return await real(spec, cases, repeats=repeats)

    evaluator.evaluate = spy  # type: ignore[method-assign]
    loop = HyperLoop(
        store, controls, lambda _p: ScriptedProposer(), trainset=TRAIN, procedure=procedure()
    )
    asyncio.run(loop.run(root_spec(), generations=4))
    test_ids = tuple(c.id for c in controls.testset)
    uses = [i for i, ids in enumerate(seen) if ids == test_ids]
    assert uses == [len(seen) - 2, len(seen) - 1]  # baseline and final, last


def test_pending_generation_blocks_until_approved(store: Store, db_url: str) -> None:
    polls: list[str] = []
    hs = HyperStore(store)

    async def sleep(_s: float) -> None:
        # Another process (its own Store on the same database) decides.
        other = HyperStore(Store(db_url))
        run_id = other.resolve_run(None)
        gens = other.generations(run_id)
        pending = [g for g in gens if g.status == "pending_approval"]
        assert len(pending) == 1
        # While waiting, nothing after the pending generation's step was made.
        assert max(g.number for g in gens) == pending[0].number
        polls.append(pending[0].id)
        if polls.count(pending[0].id) == 3:
            verdict = "accepted" if len(set(polls)) == 1 else "rejected"
            other.decide(pending[0].id, verdict, actor="human", require="pending_approval")
        await asyncio.sleep(0)

    loop = _loop(store, policy={"risk_approval": "low"}, sleep=sleep)
    run = asyncio.run(loop.run(root_spec(), generations=4))
    gens = hs.generations(run.id)
    by_human = [g for g in gens if g.decided_by == "human"]
    assert len(by_human) >= 2, "expected more than one generation to wait"
    assert by_human[0].status == "accepted"
    assert all(g.status == "rejected" for g in by_human[1:])
    assert all(polls.count(g.id) == 3 for g in by_human)
    assert max(g.number for g in gens) == 4  # it went on after each decision
    # A human rejection keeps the generation out of the parents.
    assert all(g.parent_id not in {r.id for r in by_human[1:]} for g in gens)
    audit = hs.audit(run.id)
    assert any(a.event == "generation_pending_approval" for a in audit)
    assert any(a.event == "generation_accepted" and a.actor == "human" for a in audit)
    assert any(a.event == "generation_rejected" and a.actor == "human" for a in audit)
    with pytest.raises(StoreError, match="not pending_approval"):
        hs.decide(by_human[0].id, "rejected", actor="human", require="pending_approval")


def test_rollback_restores_the_exact_earlier_spec(store: Store) -> None:
    run = asyncio.run(_loop(store).run(root_spec(), generations=8))
    hs = HyperStore(store)
    gens = hs.generations(run.id)
    accepted = [g for g in gens if g.status == "accepted" and g.number > 0]
    assert len(accepted) >= 2
    target = accepted[0]
    assert hs.get_run(run.id).current_generation_id != target.id
    hs.rollback(target.id[:10])
    after = hs.get_run(run.id)
    assert after.current_generation_id == target.id
    restored = hs.get_generation(after.current_generation_id)
    assert restored.spec_json == target.spec_json  # byte-identical
    spec = spec_from_record(restored)
    assert spec.id == target.spec_id
    assert (
        json.dumps(
            spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        == target.spec_json
    )
    later = [
        g
        for g in hs.generations(run.id)
        if g.number > target.number and g.id in {a.id for a in accepted}
    ]
    assert later and all(g.status == "rolled_back" for g in later)
    assert any(a.event == "rollback" for a in hs.audit(run.id))
    with pytest.raises(StoreError, match="only an accepted"):
        hs.rollback(later[0].id)


def test_stop_halts_within_one_step_and_resume_continues(store: Store) -> None:
    hs = HyperStore(store)
    stopped_at: list[int] = []

    def on_event(event: str, data: dict[str, Any]) -> None:
        if event == "generation" and data["number"] == 2 and not stopped_at:
            hs.request_stop(hs.resolve_run(None))
            stopped_at.append(2)

    run = asyncio.run(_loop(store, on_event=on_event).run(root_spec(), generations=10))
    assert run.status == "stopped"
    assert max(g.number for g in hs.generations(run.id)) <= 3
    assert run.final is None
    resumed = asyncio.run(_loop(store).resume(run.id, generations=5))
    assert resumed.status == "completed"
    assert max(g.number for g in hs.generations(run.id)) == 5
    events = [a.event for a in hs.audit(run.id)]
    assert events.count("stop_requested") == 1 and "run_resumed" in events


def test_audit_log_is_complete_and_append_only(store: Store) -> None:
    run = asyncio.run(_loop(store, seed=3).run(root_spec(), generations=10))
    hs = HyperStore(store)
    audit = hs.audit(run.id)
    gens = hs.generations(run.id)
    for g in gens[1:]:
        mine = [a for a in audit if a.generation_id == g.id]
        assert [a.event for a in mine][:1] == ["proposed"]
        assert any(a.event == f"generation_{g.status}" for a in mine)
    for p in hs.procedures(run.id):
        assert any(
            a.event == f"procedure_{p.status}" and a.details.get("procedure_id") == p.procedure_id
            for a in audit
        )
    assert not any(hasattr(hs, name) for name in ("update_audit", "delete_audit"))
    for sql in ("UPDATE hyper_audit SET event = 'x'", "DELETE FROM hyper_audit"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store._write() as conn:
            conn.execute(sa.text(sql))
    assert len(hs.audit(run.id)) == len(audit)


def test_resource_constraints_are_enforced_on_every_generation(store: Store) -> None:
    run = asyncio.run(_loop(store, policy={"max_latency_s": 1e-9}).run(root_spec(), generations=4))
    gens = HyperStore(store).generations(run.id)[1:]
    assert gens and all(g.status == "rejected" and g.decided_by == "control" for g in gens)
    assert all("constraint: mean latency" in g.reason for g in gens)
    assert all(g.score is not None for g in gens)  # measured, then refused


def test_a_crash_loses_nothing_and_the_run_resumes(store: Store) -> None:
    class Crashing(ScriptedProposer):
        async def propose(self, spec: AgentSpec, operator: str, **kw: Any) -> Any:
            if len(self.calls) == 3:
                raise RuntimeError("power cut")
            return await super().propose(spec, operator, **kw)

    hs = HyperStore(store)
    with pytest.raises(RuntimeError, match="power cut"):
        asyncio.run(_loop(store, Crashing()).run(root_spec(), generations=6))
    run = hs.list_runs(limit=1)[0]
    assert run.status == "failed" and "power cut" in (run.error or "")
    kept = hs.generations(run.id)
    assert [g.number for g in kept] == [0, 1, 2, 3]
    resumed = asyncio.run(_loop(store).resume(run.id))
    assert resumed.status == "completed" and resumed.final is not None
    after = hs.generations(run.id)
    assert [g.number for g in after] == list(range(7))
    assert [g.spec_json for g in after[:4]] == [g.spec_json for g in kept]
