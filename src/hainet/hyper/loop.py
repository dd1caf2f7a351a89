"""The hyper loop: a task agent improved by a meta agent that improves itself.

One step (one generation number):

1. stop if ``hainet hyper stop`` set the run's flag (checked between steps, between
   candidates and while waiting for approval: the loop halts within one step);
2. the meta step, every ``meta_every`` generations or on a plateau/degradation:
   judge the procedure change on trial (kept only if improvement came faster or
   better after it than before; else reverted), or propose one (reweight operators
   by their measured payoff, more candidates, a rewritten rewrite prompt);
3. draw a parent from the archive (DGM weights), draw ``candidates`` operators by the
   procedure's weights, let the proposer make children;
4. every child is checked against the :class:`Controls` (rejected and logged if it
   touches the evaluator, the data, the policy or the budget), scored on the
   validation set, checked against the resource constraints, compared with its
   parent (paired bootstrap), and stored: accepted, rejected, or
   ``pending_approval`` when its risk is at or above the policy's level, in which
   case the loop waits (polling the store) for ``hainet hyper approve/reject``.

Everything is written to the store as it happens, so a crash loses at most the step
in flight and :meth:`HyperLoop.resume` continues a run.  The test set is scored once,
at the end, for the starting spec and the final one; it never selects anything.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from hainet.agents.evolve import Evaluation, paired_bootstrap
from hainet.agents.spec import AgentSpec, TestCase
from hainet.agents.testing import CaseOutcome
from hainet.errors import ValidationError
from hainet.hyper.archive import (
    best_generation,
    select_parent,
    spec_diff,
    spec_from_record,
    spec_json,
)
from hainet.hyper.control import (
    Controls,
    Proposer,
    check_constraints,
    check_spec,
    needs_approval,
    risk_of,
)
from hainet.hyper.history import self_evaluate
from hainet.hyper.meta import MetaAgent, MetaProposer, MetaState
from hainet.hyper.procedure import (
    MetaProcedure,
    Rewriter,
)
from hainet.store.db import Store
from hainet.store.hyper import GenerationRecord, GenerationStatus, HyperRun, HyperStore

__all__ = ["EventHook", "HyperLoop", "MetaProposer", "ProposerFactory"]

EventHook = Callable[[str, dict[str, Any]], None]
ProposerFactory = Callable[[MetaProcedure], Proposer]


class HyperLoop:
    """Runs and resumes hyper runs.  See the module docstring."""

    def __init__(
        self,
        store: Store,
        controls: Controls,
        proposers: ProposerFactory,
        *,
        trainset: Sequence[TestCase],
        procedure: MetaProcedure | None = None,
        seed: int = 0,
        failure_cases: int | None = None,
        rewriter: Rewriter | None = None,
        meta_proposer: MetaProposer | None = None,
        on_event: EventHook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not trainset or not controls.valset or not controls.testset:
            raise ValidationError("the hyper loop needs a non-empty trainset, valset and testset")
        self.hs = HyperStore(store)
        self.controls = controls
        self.trainset = tuple(trainset)
        self.initial_procedure = procedure or MetaProcedure()
        self.seed = seed
        # Failures of a parent come from (the first ``failure_cases`` of) the trainset:
        # running all of it for every new parent costs more than the operators need.
        self.failure_cases = self.trainset[:failure_cases] if failure_cases else self.trainset
        self._proposers = proposers
        self._proposer_cache: dict[str, Proposer] = {}
        self._on_event = on_event
        self._meta = MetaAgent(
            self.hs,
            max_candidates=controls.policy.max_candidates,
            rewriter=rewriter,
            proposer=meta_proposer,
            emit=self._emit,
        )
        self._sleep = sleep
        self._evals: dict[str, Evaluation] = {}
        self._failures: dict[str, list[CaseOutcome]] = {}
        self._root: AgentSpec | None = None

    # -- plumbing -------------------------------------------------------------------

    def _emit(self, event: str, **data: Any) -> None:
        if self._on_event is not None:
            self._on_event(event, data)

    def _proposer(self, proc: MetaProcedure) -> Proposer:
        if proc.id not in self._proposer_cache:
            self._proposer_cache[proc.id] = self._proposers(proc)
        return self._proposer_cache[proc.id]

    async def _evaluate(self, spec: AgentSpec) -> Evaluation:
        if spec.id not in self._evals:
            self._evals[spec.id] = await self.controls.evaluator.evaluate(
                spec, self.controls.valset, repeats=self.controls.budget.repeats
            )
        return self._evals[spec.id]

    async def _train_failures(self, spec: AgentSpec) -> list[CaseOutcome]:
        # Failures come from the training set only: the valset selects, the testset reports.
        if spec.id not in self._failures:
            ev = await self.controls.evaluator.evaluate(spec, self.failure_cases, repeats=1)
            self._failures[spec.id] = list(ev.report.failures())
        return self._failures[spec.id]

    # -- entry points -----------------------------------------------------------------

    async def run(
        self, spec: AgentSpec, *, generations: int, config: dict[str, Any] | None = None
    ) -> HyperRun:
        """Start a run from ``spec`` and make up to ``generations`` generations."""
        if generations < 0:
            raise ValidationError("generations must be >= 0")
        spec.verify()
        proc = self.initial_procedure
        run = self.hs.create_run(
            agent_name=spec.name,
            root_spec_id=spec.id,
            config={
                **(config or {}),
                "generations": generations,
                "seed": self.seed,
                "trainset_size": len(self.trainset),
                "controls": self.controls.fingerprint(),
            },
        )
        self.hs.append_audit(
            run.id,
            actor="loop",
            event="run_started",
            details={"agent": spec.name, "spec_id": spec.id, "generations": generations},
        )
        self.hs.add_procedure(
            run.id,
            procedure_id=proc.id,
            procedure_json=proc.to_json(),
            parent_id=None,
            at_generation=0,
            status="initial",
            change={},
            reason="starting procedure",
        )
        self._emit("run", run_id=run.id, agent=spec.name)
        try:
            ev = await self._evaluate(spec)
            root = GenerationRecord(
                id=uuid.uuid4().hex,
                run_id=run.id,
                number=0,
                spec_id=spec.id,
                spec_json=spec_json(spec),
                procedure_id=proc.id,
                procedure_json=proc.to_json(),
                score=ev.mean,
                case_scores=dict(
                    zip(ev.case_ids or _ids(self.controls.valset), ev.scores, strict=True)
                ),
                self_eval=self_evaluate(ev.report),
                status="accepted",
                reason="the starting spec",
                created_at=_now(),
                decided_at=_now(),
                decided_by="loop",
            )
            self.hs.add_generation(root, audit={"event": "generation_accepted", "start": True})
            self.hs.set_current(run.id, root.id)
            self._emit("generation", number=0, status="accepted", score=ev.mean, operator=None)
        except BaseException as exc:
            self.hs.finish_run(run.id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        return await self._steps(run.id, generations)

    async def resume(self, run_id: str, *, generations: int | None = None) -> HyperRun:
        """Continue a stopped, failed or crashed run up to ``generations``."""
        run = self.hs.get_run(run_id)
        fp = self.controls.fingerprint()
        old = run.config.get("controls", {})
        for key in ("valset_sha256", "testset_sha256"):
            if old.get(key) != fp[key]:
                raise ValidationError(
                    f"hyper run {run.id[:8]}: the {key.split('_')[0]} differs from the one the "
                    "run started with; resume with the same data sets"
                )
        self.hs.reopen_run(run.id)
        self.hs.append_audit(run.id, actor="loop", event="run_resumed", details={})
        total = generations if generations is not None else int(run.config.get("generations", 0))
        return await self._steps(run.id, total)

    # -- the loop ---------------------------------------------------------------------

    async def _steps(self, run_id: str, generations: int) -> HyperRun:
        state = self._meta.restore(run_id, self.initial_procedure)
        gens = self.hs.generations(run_id)
        root = next(g for g in gens if g.number == 0)
        self._root = spec_from_record(root)
        start = max(g.number for g in gens) + 1
        deadline = (
            None
            if self.controls.budget.max_seconds is None
            else time.monotonic() + self.controls.budget.max_seconds
        )
        stopped = False
        try:
            for number in range(start, generations + 1):
                if not await self._wait_pending(run_id) or self.hs.stop_requested(run_id):
                    stopped = True
                    break
                if deadline is not None and time.monotonic() > deadline:
                    self.hs.append_audit(
                        run_id,
                        actor="control",
                        event="budget_exhausted",
                        details={"at_generation": number},
                    )
                    break
                await self._meta.step(run_id, number, state)
                await self._step(run_id, number, state)
                self._update_current(run_id)
            if not stopped and not await self._wait_pending(run_id):
                stopped = True
            if stopped or self.hs.stop_requested(run_id):
                self.hs.append_audit(run_id, actor="loop", event="run_stopped", details={})
                self._emit("stopped", run_id=run_id)
                return self.hs.finish_run(run_id, "stopped")
            final = await self._final(run_id)
        except BaseException as exc:
            self.hs.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        self.hs.append_audit(run_id, actor="loop", event="run_completed", details=final)
        return self.hs.finish_run(run_id, "completed", final=final)

    def _update_current(self, run_id: str) -> None:
        best = best_generation(self.hs.generations(run_id))
        if best is not None:
            self.hs.set_current(run_id, best.id)

    async def _wait_pending(self, run_id: str) -> bool:
        """Wait until no generation is pending approval; False if stopped meanwhile."""
        announced: set[str] = set()
        while True:
            pending = [g for g in self.hs.generations(run_id) if g.status == "pending_approval"]
            if not pending:
                return True
            if self.hs.stop_requested(run_id):
                return False
            for g in pending:
                if g.id not in announced:
                    announced.add(g.id)
                    self._emit(
                        "pending",
                        generation=g.id,
                        number=g.number,
                        risk=g.risk,
                        operator=g.operator,
                    )
            await self._sleep(self.controls.policy.approval_poll_s)

    async def _step(self, run_id: str, number: int, state: MetaState) -> None:
        assert self._root is not None
        proc = state.procedure
        gens = self.hs.generations(run_id)
        rng = random.Random(f"{self.seed}:{number}")
        parent = select_parent(gens, k=proc.parent_k, rng=rng)
        parent_spec = spec_from_record(parent)
        parent_ev = await self._evaluate(parent_spec)
        failures = await self._train_failures(parent_spec)
        proposer = self._proposer(proc)
        ops = sorted(op for op, w in proc.operators.items() if w > 0)
        seen = {parent_spec.id}
        for _ in range(proc.candidates):
            if self.hs.stop_requested(run_id):
                return
            op = rng.choices(ops, weights=[proc.operators[o] for o in ops], k=1)[0]
            prop = await proposer.propose(
                parent_spec, op, trainset=self.trainset, failures=failures
            )
            if prop is None or prop.spec.id in seen:
                self.hs.append_audit(
                    run_id,
                    actor="loop",
                    event="proposal_empty",
                    details={"number": number, "operator": op, "parent": parent.id},
                )
                continue
            seen.add(prop.spec.id)
            await self._candidate(
                run_id,
                number,
                parent,
                parent_spec,
                parent_ev,
                prop.operator,
                prop.spec,
                prop.rationale,
                proc,
            )

    async def _candidate(
        self,
        run_id: str,
        number: int,
        parent: GenerationRecord,
        parent_spec: AgentSpec,
        parent_ev: Evaluation,
        operator: str,
        child: AgentSpec,
        rationale: str,
        proc: MetaProcedure,
    ) -> None:
        assert self._root is not None
        gen_id = uuid.uuid4().hex
        risk = risk_of(operator, parent_spec, child)
        diff = spec_diff(parent_spec, child)
        self.hs.append_audit(
            run_id,
            actor="loop",
            event="proposed",
            generation_id=gen_id,
            details={
                "number": number,
                "operator": operator,
                "parent": parent.id,
                "spec_id": child.id,
                "risk": risk,
                "rationale": rationale,
            },
        )
        base: dict[str, Any] = {
            "id": gen_id,
            "run_id": run_id,
            "number": number,
            "parent_id": parent.id,
            "spec_id": child.id,
            "spec_json": spec_json(child),
            "procedure_id": proc.id,
            "procedure_json": proc.to_json(),
            "diff": diff,
            "operator": operator,
            "rationale": rationale,
            "risk": risk,
            "created_at": _now(),
            "decided_at": _now(),
        }
        violations = check_spec(self._root, parent_spec, child, self.controls)
        if violations:
            reason = "control: " + "; ".join(violations)
            self._store(base, "rejected", "control", reason, None, {}, {})
            self._emit(
                "generation",
                number=number,
                status="rejected",
                operator=operator,
                score=None,
                reason=reason,
            )
            return
        ev = await self._evaluate(child)
        self_eval = self_evaluate(ev.report)
        verdict = self.controls.evaluator.compare(parent_ev, ev, self.controls.budget)
        self_eval["verdict"] = {
            "parent_score": parent_ev.mean,
            "delta": verdict.delta,
            "ci_low": verdict.ci_low,
            "ci_high": verdict.ci_high,
        }
        problems = check_constraints(self_eval, self.controls.policy)
        status: GenerationStatus
        if problems:
            status, actor, reason = "rejected", "control", "constraint: " + "; ".join(problems)
        elif not verdict.accepted:
            status, actor, reason = "rejected", "loop", verdict.reason
        elif needs_approval(risk, self.controls.policy):
            status, actor = "pending_approval", "loop"
            reason = (
                f"{verdict.reason}; risk {risk} needs approval: "
                f"`hainet hyper approve {gen_id[:8]}` or `reject {gen_id[:8]}`"
            )
        else:
            status, actor, reason = "accepted", "loop", verdict.reason
        cases = dict(zip(ev.case_ids or _ids(self.controls.valset), ev.scores, strict=True))
        self._store(base, status, actor, reason, ev.mean, cases, self_eval)
        self._emit(
            "generation",
            number=number,
            status=status,
            operator=operator,
            score=ev.mean,
            reason=reason,
            id=gen_id,
        )

    def _store(
        self,
        base: dict[str, Any],
        status: GenerationStatus,
        actor: str,
        reason: str,
        score: float | None,
        cases: dict[str, float],
        self_eval: dict[str, Any],
    ) -> None:
        pending = status == "pending_approval"
        rec = GenerationRecord(
            **{**base, "decided_at": None if pending else base["decided_at"]},
            status=status,
            reason=reason,
            score=score,
            case_scores=cases,
            self_eval=self_eval,
            decided_by=None if pending else actor,
        )
        self.hs.add_generation(
            rec, audit={"event": f"generation_{status}", "actor": actor, "reason": reason}
        )

    # -- the final report -------------------------------------------------------------

    async def _final(self, run_id: str) -> dict[str, Any]:
        """Starting and final spec on the test set (used here and nowhere else)."""
        run = self.hs.get_run(run_id)
        gens = self.hs.generations(run_id)
        root = next(g for g in gens if g.number == 0)
        current = next((g for g in gens if g.id == run.current_generation_id), root)
        budget = self.controls.budget
        out: dict[str, Any] = {"generations": max(g.number for g in gens)}
        evals = {}
        for label, gen in (("baseline", root), ("final", current)):
            spec = spec_from_record(gen)
            ev = await self.controls.evaluator.evaluate(
                spec, self.controls.testset, repeats=budget.repeats
            )
            evals[label] = ev
            _, lo, hi = paired_bootstrap(
                list(ev.scores),
                resamples=budget.bootstrap,
                confidence=budget.confidence,
                rng=random.Random(self.seed),
            )
            lo, hi = round(lo, 4), round(hi, 4)
            out[label] = {
                "generation": gen.id,
                "number": gen.number,
                "spec_id": gen.spec_id,
                "valset": gen.score,
                "test": ev.mean,
                "test_ci": [lo, hi],
            }
        verdict = self.controls.evaluator.compare(evals["baseline"], evals["final"], budget)
        out["test_delta"] = {
            "delta": verdict.delta,
            "ci": [verdict.ci_low, verdict.ci_high],
            "confidence": budget.confidence,
            "significant": verdict.accepted,
        }
        self._emit("final", **out)
        return out


def _ids(cases: Sequence[TestCase]) -> tuple[str, ...]:
    return tuple(c.id for c in cases)


def _now() -> datetime:
    return datetime.now(UTC)
