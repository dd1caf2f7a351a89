"""The meta agent's procedure: how the loop improves the task agent.

A :class:`MetaProcedure` is data, versioned and content-hashed like an
``AgentSpec``: which evolution operators to try and how often (weights), how many
candidates per step, the prompt template the ``rewrite_prompt`` operator uses, when to
step back and change the procedure itself (every ``meta_every`` generations, or on a
plateau or a degradation), and how parents are picked.  The loop may edit it
(HyperAgents / DGM-H: the improver improves itself); what it may not edit lives in
:class:`hainet.hyper.control.Controls`.

:func:`propose_change` is the meta step: from the archive's measured operator payoff
it reweights operators; on a plateau without any payoff it raises the candidates;
with a ``rewriter`` (a model) it may rewrite the rewrite template.  The change is
kept only if the generations after it improved faster or more than the ones before
(:func:`judge_trial`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from hainet.agents.evolve import OPERATORS
from hainet.agents.operators import DEFAULT_REWRITE_TEMPLATE
from hainet.backends.base import Backend
from hainet.errors import BackendError, ValidationError
from hainet.hyper.history import OperatorPayoff, improvement_rate
from hainet.types import GenerationParams, Message, Request, canonical_json

__all__ = [
    "DEFAULT_OPERATORS",
    "EDITABLE",
    "MetaProcedure",
    "ProcedureChange",
    "TrialVerdict",
    "apply_change",
    "judge_trial",
    "model_rewriter",
    "propose_change",
]

DEFAULT_OPERATORS = OPERATORS


class MetaProcedure(BaseModel):
    """The editable procedure of the meta agent (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default="", description="sha256 of the content; filled in when empty.")
    version: int = Field(default=1, ge=1, description="1 for the first, +1 per change.")
    operators: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(DEFAULT_OPERATORS, 1.0),
        description="Operator -> sampling weight.",
    )
    candidates: int = Field(default=2, ge=1, le=16, description="Candidates per step.")
    rewrite_template: str = Field(default=DEFAULT_REWRITE_TEMPLATE, min_length=1)
    meta_every: int = Field(default=5, ge=2, description="Generations between meta steps.")
    plateau_window: int = Field(default=4, ge=2, description="Generations a plateau spans.")
    plateau_threshold: float = Field(
        default=0.01, ge=0, description="Best-score gain below this over the window = plateau."
    )
    degradation_threshold: float = Field(
        default=0.05, ge=0, description="Recent children this much worse than before = degrading."
    )
    parent_k: float = Field(default=10.0, gt=0, description="Sigmoid steepness (DGM).")
    exploration: float = Field(
        default=0.2, ge=0, le=1, description="Weight floor kept for untried or unpaid operators."
    )

    def model_post_init(self, _context: Any) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.content_hash())

    def content(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"id"})

    def content_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()

    def to_json(self) -> str:
        """The exact text stored in the archive."""
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, text: str) -> MetaProcedure:
        proc = cls.model_validate_json(text)
        if proc.id != proc.content_hash():
            raise ValidationError(
                f"meta procedure {proc.id[:12]}: content hash mismatch (altered after storing)"
            )
        return proc

    @property
    def short_id(self) -> str:
        return self.id[:12]


# Fields the meta step may change; everything else (and any unknown key: the
# evaluator, the data, the policy, the budget) is outside its reach.
EDITABLE = frozenset(
    {
        "operators",
        "candidates",
        "rewrite_template",
        "meta_every",
        "plateau_window",
        "plateau_threshold",
        "degradation_threshold",
        "parent_k",
        "exploration",
    }
)


@dataclass(frozen=True)
class ProcedureChange:
    """A proposed edit of the procedure: ``changes`` maps field -> new value."""

    kind: str
    changes: Mapping[str, Any]
    rationale: str


def apply_change(
    proc: MetaProcedure, change: ProcedureChange, *, max_candidates: int
) -> MetaProcedure:
    """The procedure with ``change`` applied; ValidationError when it reaches outside
    what the meta step may edit or breaks a field's bounds."""
    outside = sorted(set(change.changes) - EDITABLE)
    if outside:
        raise ValidationError(
            f"procedure change {change.kind!r} touches {', '.join(outside)}: outside the "
            "meta procedure (the evaluator, data, policy and budget are controls)"
        )
    cand = change.changes.get("candidates", proc.candidates)
    if isinstance(cand, int) and cand > max_candidates:
        raise ValidationError(
            f"procedure change sets candidates={cand} above the budget's {max_candidates}"
        )
    data = proc.model_dump(mode="python", exclude={"id"})
    data.update(change.changes)
    data["version"] = proc.version + 1
    try:
        new = MetaProcedure.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationError(
            f"procedure change {change.kind!r}: {where}: {first['msg']}"
        ) from None
    if not any(w > 0 for w in new.operators.values()):
        raise ValidationError("procedure change leaves no operator with a positive weight")
    return new


Rewriter = Callable[[str], Awaitable[str]]


async def propose_change(
    proc: MetaProcedure,
    payoff: Mapping[str, OperatorPayoff],
    *,
    trend: str,
    rewriter: Rewriter | None = None,
) -> ProcedureChange | None:
    """The meta step's proposal, or None when it has nothing to change.

    Reweighting needs evidence: at least one operator that produced an accepted
    child.  An operator's new weight is its acceptance rate (or the exploration floor
    when it has none), so operators that paid are tried more, and untried ones stay
    possible.
    """
    paid = {op: p for op, p in payoff.items() if p.accepted > 0 and op in proc.operators}
    if paid:
        weights: dict[str, float] = {}
        for op in proc.operators:
            p = payoff.get(op)
            rate = p.accepted / p.attempts if p is not None and p.attempts else 0.0
            weights[op] = round(max(rate, proc.exploration * (0.5 if p else 1.0)), 4)
        total = sum(weights.values())
        weights = {op: round(w / total * len(weights), 4) for op, w in weights.items()}
        if weights != proc.operators:
            best = max(paid, key=lambda op: (paid[op].accepted / paid[op].attempts, op))
            return ProcedureChange(
                kind="reweight",
                changes={"operators": weights},
                rationale=(
                    f"operators that paid get more weight ({best}: {paid[best].accepted} of "
                    f"{paid[best].attempts} accepted); the rest keep an exploration floor"
                ),
            )
    if trend in ("plateau", "degrading"):
        if rewriter is not None:
            text = (await rewriter(proc.rewrite_template)).strip()
            keeps = all(v in text for v in ("{template}", "{failures}"))
            if text and text != proc.rewrite_template and keeps:
                return ProcedureChange(
                    kind="rewrite_template",
                    changes={"rewrite_template": text},
                    rationale=f"{trend}: the model rewrote the rewrite prompt",
                )
        return ProcedureChange(
            kind="candidates",
            changes={"candidates": proc.candidates + 1},
            rationale=f"{trend} and no operator paid yet: try more candidates per step",
        )
    return None


@dataclass(frozen=True)
class TrialVerdict:
    keep: bool
    before: dict[str, float]
    after: dict[str, float]
    reason: str


def judge_trial(
    before: Sequence[float | None],
    after: Sequence[float | None],
    *,
    accepted_before: int,
    accepted_after: int,
) -> TrialVerdict:
    """Keep a procedure change if improvement came faster or better after it.

    ``before`` / ``after`` are the best accepted valset score at each generation of
    the window before the change and of the trial (each led by the value just before
    the window).  Better: a larger gain of the best score per generation.  Faster:
    more accepted children per generation without a smaller gain.
    """
    rb, ra = improvement_rate(before), improvement_rate(after)
    rb["accepted_per_gen"] = round(accepted_before / rb["generations"], 6)
    ra["accepted_per_gen"] = round(accepted_after / ra["generations"], 6)
    better = ra["gain_per_gen"] > rb["gain_per_gen"]
    faster = (
        ra["gain_per_gen"] >= rb["gain_per_gen"] and ra["accepted_per_gen"] > rb["accepted_per_gen"]
    )
    keep = better or faster
    reason = (
        f"best-score gain/generation {ra['gain_per_gen']:.4f} after vs "
        f"{rb['gain_per_gen']:.4f} before; accepted children/generation "
        f"{ra['accepted_per_gen']:.3f} vs {rb['accepted_per_gen']:.3f}: "
        + ("kept (" + ("better" if better else "faster") + ")" if keep else "reverted")
    )
    return TrialVerdict(keep=keep, before=rb, after=ra, reason=reason)


_META_PROMPT = """\
Below is an instruction that asks a language model to rewrite a prompt template.
Improve the instruction so the rewritten templates work better. Keep the
placeholders {{purpose}}, {{template}}, {{variables}} and {{failures}} exactly.

Instruction:
<<<
{current}
>>>

Improved instruction:
<<<
"""


def model_rewriter(backend: Backend, *, max_tokens: int = 384, seed: int = 0) -> Rewriter:
    """A :data:`Rewriter` that asks ``backend`` to rewrite the rewrite template.

    What it returns is used only if it keeps the placeholders (checked by
    :func:`propose_change`) and only stays if the trial shows it pays.
    """

    async def rewrite(current: str) -> str:
        params = GenerationParams(temperature=0.7, max_tokens=max_tokens, seed=seed, stop=(">>>",))
        prompt = _META_PROMPT.format(current=current)
        request = (
            Request(messages=(Message("user", prompt),), params=params)
            if backend.spec.mode == "chat"
            else Request(prompt=prompt, params=params)
        )
        try:
            completion = await backend.generate(request)
        except BackendError:
            return current
        return completion.text.split(">>>")[0].strip()

    return rewrite
