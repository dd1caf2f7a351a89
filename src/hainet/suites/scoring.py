"""Scoring a case's completions: the one function the bench and agent tests share.

:func:`score_completions` calls a scorer the way it asks to be called (all samples
at once with ``score_samples``; ``ascore`` for a scorer that calls a model; in a
worker thread unless ``blocking = False``) and averages several samples otherwise.
It raises what the scorer raises: :class:`~hainet.suites.scorers.ScoringUnavailable`
when the scorer could not decide and :class:`~hainet.errors.SuiteError` for a
malformed case.  A caller records either as an error on the case, never as a 0.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from typing import Any

from hainet.suites.base import Case
from hainet.suites.scorers import Score
from hainet.types import Completion

__all__ = ["score_completions"]


async def score_completions(scorer: Any, case: Case, completions: Sequence[Completion]) -> Score:
    """One score for ``case`` from one or more completions (samples)."""
    completions = list(completions)
    if len(completions) > 1 and hasattr(scorer, "score_samples"):
        result: Score = await asyncio.to_thread(scorer.score_samples, case, completions)
        return result
    scores: list[Score] = []
    for completion in completions:
        if hasattr(scorer, "ascore"):
            scores.append(await scorer.ascore(case, completion))
        elif getattr(scorer, "blocking", True):
            scores.append(await asyncio.to_thread(scorer.score, case, completion))
        else:
            scores.append(scorer.score(case, completion))
    if len(scores) == 1:
        return scores[0]
    return Score(
        statistics.fmean(s.value for s in scores),
        f"mean of {len(scores)} samples; first: {scores[0].explanation}",
        {"sample_scores": [s.value for s in scores]},
    )
