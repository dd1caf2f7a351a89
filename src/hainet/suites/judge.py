"""The judge scorer: another model grades an answer against a rubric.

The judge is any configured backend (``hainet bench --judge MODEL``).  It must answer
``{"score": 1..5, "reason": "..."}``; where the backend can follow a JSON Schema the
answer is grammar-constrained, so even a small base model returns a well-formed
verdict.  The value is ``(score - 1) / 4``.  A judge that is missing, unreachable or
answers something that is not a verdict makes the case *unscored* (an error on the
case), never a zero or a pass.

Case options: ``rubric`` (what a good answer does; the suite may set a default with
``options.rubric`` on every case), ``reference`` (an optional model answer shown to the
judge).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import jsonschema

from hainet.errors import BackendError
from hainet.suites.scorers import Score, ScoringContext, ScoringUnavailable, extract_json
from hainet.types import Completion, GenerationParams, Message, Request

if TYPE_CHECKING:
    from hainet.suites.base import Case

__all__ = ["VERDICT_SCHEMA", "JudgeScorer"]

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "reason": {"type": "string", "maxLength": 400},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}

DEFAULT_RUBRIC = "The answer is correct, relevant to the task, and clearly written."

_INSTRUCTIONS = (
    "You grade answers. Read the task, the rubric and the answer, then reply with only "
    'a JSON object: {"score": <integer 1-5, 5 = fully meets the rubric>, "reason": '
    '"<one sentence>"}.'
)


class JudgeScorer:
    name = "judge"

    def __init__(self, ctx: ScoringContext) -> None:
        self.ctx = ctx

    def request(self, case: Case, answer: str) -> Request:
        rubric = str(case.options.get("rubric") or DEFAULT_RUBRIC)
        parts = [f"Task: {case.input}", f"Rubric: {rubric}"]
        if case.options.get("reference"):
            parts.append(f"Reference answer: {case.options['reference']}")
        parts.append(f"Answer to grade: {answer}")
        body = "\n".join(parts)
        judge = self.ctx.judge
        assert judge is not None
        params = GenerationParams(
            temperature=0.0,
            max_tokens=160,
            json_schema=VERDICT_SCHEMA if judge.supports_json_schema else None,
        )
        if judge.spec.mode == "chat":
            return Request(
                messages=(Message("system", _INSTRUCTIONS), Message("user", body)), params=params
            )
        return Request(prompt=f"{_INSTRUCTIONS}\n\n{body}\nVerdict JSON: ", params=params)

    async def ascore(self, case: Case, completion: Completion) -> Score:
        judge = self.ctx.judge
        if judge is None:
            raise ScoringUnavailable("no judge model configured (hainet bench --judge MODEL)")
        try:
            verdict = await judge.generate(self.request(case, completion.text))
        except BackendError as exc:
            raise ScoringUnavailable(f"the judge {judge.spec.name!r} failed: {exc}") from None
        try:
            value = extract_json(verdict.text)
            jsonschema.validate(value, VERDICT_SCHEMA)
        except (ValueError, jsonschema.ValidationError) as exc:
            text = verdict.text[:120]
            raise ScoringUnavailable(f"the judge gave no valid verdict ({exc}): {text!r}") from None
        score = int(value["score"])
        return Score(
            (score - 1) / 4,
            f"judge {judge.spec.name}: {score}/5: {value['reason']}",
            {"judge": judge.spec.name, "judge_score": score, "verdict": json.dumps(value)},
        )

    def score(self, case: Case, completion: Completion) -> Score:
        """Blocking form, for use outside an event loop."""
        return asyncio.run(self.ascore(case, completion))
