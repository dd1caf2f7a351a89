"""The judge scorer, with a scripted judge and with the real bundled model as judge."""

import json
from pathlib import Path

import pytest

from hainet.backends.catalog import BUNDLED
from hainet.backends.llamacpp import LlamaCppBackend
from hainet.backends.mock import MockBackend
from hainet.errors import BackendUnavailable
from hainet.suites import Case, ScoringContext, ScoringUnavailable
from hainet.suites.judge import JudgeScorer
from hainet.types import Completion, Request, Timing

CASE = Case(id="haiku", input="Write a haiku about rain.", options={"rubric": "5-7-5 syllables"})


def answer(text: str) -> Completion:
    return Completion(text=text, timing=Timing(wall_s=0.0))


async def test_verdict_maps_to_zero_one() -> None:
    judge = MockBackend.scripted(
        [json.dumps({"score": 5, "reason": "good"}), 'Sure! {"score": 1, "reason": "off topic"}']
    )
    scorer = JudgeScorer(ScoringContext(judge=judge))
    high = await scorer.ascore(CASE, answer("Soft rain on the roof"))
    low = await scorer.ascore(CASE, answer("I like trains"))
    assert (high.value, low.value) == (1.0, 0.0)
    assert "off topic" in low.explanation and low.details and low.details["judge_score"] == 1
    # The judge saw the task, the rubric and the answer.
    shown = judge.requests[0].prompt or ""
    assert "haiku about rain" in shown and "5-7-5" in shown and "Soft rain" in shown
    assert judge.requests[0].params.json_schema is not None  # constrained when possible


@pytest.mark.parametrize(
    "verdict",
    [
        "no json here",
        '{"score": 9, "reason": "x"}',
        '{"score": "5", "reason": "x"}',
        '{"reason": "forgot the score"}',
    ],
)
async def test_invalid_verdicts_are_unscored_not_zero(verdict: str) -> None:
    scorer = JudgeScorer(ScoringContext(judge=MockBackend.scripted([verdict])))
    with pytest.raises(ScoringUnavailable, match="no valid verdict"):
        await scorer.ascore(CASE, answer("x"))


async def test_missing_or_broken_judge_is_unscored() -> None:
    with pytest.raises(ScoringUnavailable, match="--judge"):
        await JudgeScorer(ScoringContext()).ascore(CASE, answer("x"))

    def down(_: Request) -> str:
        raise BackendUnavailable("server gone")

    scorer = JudgeScorer(ScoringContext(judge=MockBackend.from_function(down)))
    with pytest.raises(ScoringUnavailable, match="server gone"):
        await scorer.ascore(CASE, answer("x"))


@pytest.mark.model
async def test_the_bundled_model_gives_a_well_formed_verdict(bundled_gguf: Path) -> None:
    judge = LlamaCppBackend(BUNDLED.model_copy(update={"path": str(bundled_gguf)}))
    try:
        score = await JudgeScorer(ScoringContext(judge=judge)).ascore(
            CASE,
            answer("Rain taps the window / grey clouds drift over the town / puddles hold the sky"),
        )
    finally:
        judge.close()
    assert score.value in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert score.details and 1 <= score.details["judge_score"] <= 5
