"""The meta agent: it changes the loop's procedure and keeps what pays.

Every ``meta_every`` generations (sooner on a plateau or a degradation, see
:func:`hainet.hyper.history.trend`) it proposes a :class:`ProcedureChange` from the
archive's measured operator payoff (or a caller's ``proposer``).  A change outside
the procedure's editable fields is rejected and logged; an accepted one runs as a
*trial* for ``meta_every`` generations and is then kept only if improvement came
faster or better than in the same number of generations before it
(:func:`judge_trial`), otherwise reverted.  Every version and decision is a row of
``hyper_procedures`` with its evidence, and a line of the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hainet.errors import ValidationError
from hainet.hyper.archive import ELIGIBLE, best_by_step
from hainet.hyper.history import operator_payoff, trend
from hainet.hyper.procedure import (
    MetaProcedure,
    ProcedureChange,
    Rewriter,
    apply_change,
    judge_trial,
    propose_change,
)
from hainet.store.hyper import HyperStore

__all__ = ["MetaAgent", "MetaProposer", "MetaState"]

MetaProposer = Callable[[MetaProcedure, dict[str, Any]], Awaitable[ProcedureChange | None]]
Emit = Callable[..., None]


@dataclass
class MetaState:
    """The procedure in force and the trial under way; rebuilt from the store."""

    procedure: MetaProcedure
    trial_row: int | None = None
    trial_parent: MetaProcedure | None = None
    trial_start: int = 0
    last_meta: int = 0


class MetaAgent:
    """Proposes and judges procedure changes for one loop.  See the module docstring."""

    def __init__(
        self,
        hs: HyperStore,
        *,
        max_candidates: int,
        rewriter: Rewriter | None = None,
        proposer: MetaProposer | None = None,
        emit: Emit | None = None,
    ) -> None:
        self.hs = hs
        self.max_candidates = max_candidates
        self._rewriter = rewriter
        self._proposer = proposer
        self._emit: Emit = emit or (lambda *_a, **_k: None)

    def restore(self, run_id: str, initial: MetaProcedure) -> MetaState:
        """The state after the run's recorded procedure versions (resume after a crash)."""
        state: MetaState | None = None
        for rec in self.hs.procedures(run_id):
            decided = int(rec.evidence.get("decided_at_generation", rec.at_generation))
            if rec.status == "initial":
                state = MetaState(MetaProcedure.from_json(rec.procedure_json))
            elif state is None:
                continue
            elif rec.status == "trial":
                state.trial_parent = state.procedure
                state.procedure = MetaProcedure.from_json(rec.procedure_json)
                state.trial_row, state.trial_start = rec.row, rec.at_generation
                state.last_meta = rec.at_generation
            elif rec.status == "kept":
                state.procedure = MetaProcedure.from_json(rec.procedure_json)
                state.last_meta = decided
            else:  # reverted or rejected: the procedure in force stays
                state.last_meta = decided
        if state is None:
            state = MetaState(initial)
        return state

    async def step(self, run_id: str, number: int, state: MetaState) -> None:
        """Judge the trial under way, or propose a change when one is due."""
        proc = state.procedure
        window = proc.meta_every
        gens = self.hs.generations(run_id)
        best = best_by_step(gens, number - 1)
        if state.trial_row is not None:
            if number - state.trial_start < window:
                return
            t0 = state.trial_start
            before = best[max(0, t0 - 1 - window) : t0]
            after = best[t0 - 1 : number]
            lo, mid = max(1, t0 - window), t0

            def accepted(first: int, last: int) -> int:
                return sum(1 for g in gens if first <= g.number < last and g.status in ELIGIBLE)

            verdict = judge_trial(
                before,
                after,
                accepted_before=accepted(lo, mid),
                accepted_after=accepted(mid, number),
            )
            status = "kept" if verdict.keep else "reverted"
            decision = {
                "before": verdict.before,
                "after": verdict.after,
                "decided_at_generation": number,
                "trial_start": t0,
            }
            self.hs.decide_procedure(
                state.trial_row, status, reason=verdict.reason, evidence=decision
            )
            self._emit("procedure", status=status, procedure=proc.short_id, reason=verdict.reason)
            if not verdict.keep and state.trial_parent is not None:
                state.procedure = state.trial_parent
            state.trial_row, state.trial_parent, state.last_meta = None, None, number
            return
        since = number - state.last_meta
        children: list[float | None] = []
        for n in range(number):
            scores = [g.score for g in gens if g.number == n and g.score is not None]
            children.append(max(scores) if scores else None)
        tr = trend(
            best,
            children,
            window=proc.plateau_window,
            plateau_threshold=proc.plateau_threshold,
            degradation_threshold=proc.degradation_threshold,
        )
        due = since >= window or (tr in ("plateau", "degrading") and since >= proc.plateau_window)
        if not due or number - 1 < window:
            return
        payoff = operator_payoff(
            (g.operator, g.status, g.self_eval.get("verdict", {}).get("delta"))
            for g in gens
            if g.number > 0
        )
        state.last_meta = number
        evidence: dict[str, Any] = {
            "trend": tr,
            "payoff": {op: vars(p) for op, p in payoff.items()},
            "decided_at_generation": number,
        }
        if self._proposer is not None:
            change = await self._proposer(proc, evidence)
        else:
            change = await propose_change(proc, payoff, trend=tr, rewriter=self._rewriter)
        if change is None:
            self.hs.append_audit(
                run_id,
                actor="meta",
                event="procedure_unchanged",
                details={"number": number, **evidence},
            )
            return
        described = {
            "kind": change.kind,
            "changes": dict(change.changes),
            "rationale": change.rationale,
        }
        try:
            new = apply_change(proc, change, max_candidates=self.max_candidates)
        except ValidationError as exc:
            self.hs.add_procedure(
                run_id,
                procedure_id=proc.id,
                procedure_json=proc.to_json(),
                parent_id=proc.id,
                at_generation=number,
                status="rejected",
                change=described,
                reason=f"control: {exc}",
                evidence=evidence,
            )
            self._emit("procedure", status="rejected", reason=str(exc))
            return
        rec = self.hs.add_procedure(
            run_id,
            procedure_id=new.id,
            procedure_json=new.to_json(),
            parent_id=proc.id,
            at_generation=number,
            status="trial",
            change=described,
            reason=change.rationale,
            evidence=evidence,
        )
        self._emit(
            "procedure",
            status="trial",
            procedure=new.short_id,
            kind=change.kind,
            reason=change.rationale,
        )
        state.trial_parent, state.procedure = proc, new
        state.trial_row, state.trial_start = rec.row, number
