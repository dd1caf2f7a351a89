"""The ``diversity`` scorer: several samples of one creative prompt, scored together.

A creativity case is sampled N times (the suite's ``samples``, at its
``temperature`` unless the bench gives one).  :meth:`DiversityScorer.score_samples`
measures, every component in ``[0, 1]`` and kept in ``details`` (beside the runner's
``samples``, the texts themselves, so no key here is called that):

* ``constraint_rate``: the fraction of samples that meet every constraint of the
  prompt (``options.constraints``, below);
* ``distinct_1`` / ``distinct_2``: distinct unigrams / bigrams over all samples
  divided by all unigrams / bigrams (lower-cased words).  When no sample has two
  words, ``distinct_2`` falls back to ``distinct_1``;
* ``dispersion``: mean pairwise cosine distance ``1 - cos`` of the samples'
  embeddings (:mod:`hainet.embed`), clipped to ``[0, 1]``.

``value = 0.5 * constraint_rate + 0.25 * distinct_2 + 0.25 * dispersion``: meeting
the task counts as much as variety.  N identical samples get ``distinct_2 = 1/N`` and
``dispersion = 0``, so at most ``0.5 + 0.25/N``.  A single sample (:meth:`score`)
cannot show variety: its value is whether it meets the constraints, and the
explanation says so.

Constraints (``options.constraints``), all optional, checked on the stripped text; a
sample without a single word never meets them:

* ``words`` / ``min_words`` / ``max_words``: word count (a word is a run of letters,
  digits, apostrophes or hyphens);
* ``lines`` / ``max_lines``: count of non-empty lines;
* ``sentences``: count of sentences (ended by ., ! or ?; a last one without is counted);
* ``must_include`` / ``must_not_include``: words or phrases, whole words, case ignored;
* ``starts_with`` / ``ends_with``: the text starts or ends so (case ignored);
* ``first_letters``: the non-empty lines start with these letters, in order (acrostic);
* ``max_chars``: length of the text.

The embedding model loads on the first multi-sample case (about 5 s); when it
cannot be loaded the case is recorded as "could not score", never as a zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from hainet.errors import HainetError, SuiteError
from hainet.suites.base import Case
from hainet.suites.scorers import Score, ScoringContext, ScoringUnavailable
from hainet.types import Completion

__all__ = [
    "CONSTRAINTS",
    "WEIGHTS",
    "DiversityScorer",
    "check_constraints",
    "dispersion",
    "distinct_n",
    "words",
]

WEIGHTS = {"constraint_rate": 0.5, "distinct_2": 0.25, "dispersion": 0.25}
CONSTRAINTS = (
    "words",
    "min_words",
    "max_words",
    "lines",
    "max_lines",
    "sentences",
    "must_include",
    "must_not_include",
    "starts_with",
    "ends_with",
    "first_letters",
    "max_chars",
)
_COUNTS = ("words", "min_words", "max_words", "lines", "max_lines", "sentences", "max_chars")
_PHRASES = ("must_include", "must_not_include")
_TEXTS = ("starts_with", "ends_with", "first_letters")

_WORD = re.compile(r"[\w'’-]*\w[\w'’-]*")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")

Embedder = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def words(text: str) -> list[str]:
    """Lower-cased words: runs of letters or digits, with inner apostrophes and hyphens."""
    return [w.strip("'’-") for w in _WORD.findall(text.lower()) if w.strip("'’-")]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all texts / all n-grams (n-grams do not cross texts); 0.0
    when there are none."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        ws = words(text)
        grams.extend(tuple(ws[i : i + n]) for i in range(len(ws) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def dispersion(vectors: npt.ArrayLike) -> float:
    """Mean pairwise cosine distance of the rows, clipped to [0, 1]; 0.0 for < 2 rows."""
    x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if x.shape[0] < 2:
        return 0.0
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    sims = x @ x.T
    distances = [1.0 - float(sims[i, j]) for i, j in combinations(range(x.shape[0]), 2)]
    return float(np.clip(np.mean(distances), 0.0, 1.0))


def _validate(case: Case) -> dict[str, Any]:
    constraints = case.options.get("constraints", {})
    if not isinstance(constraints, dict):
        raise SuiteError(f"case {case.id}: options.constraints must be an object")
    unknown = sorted(set(constraints) - set(CONSTRAINTS))
    if unknown:
        raise SuiteError(
            f"case {case.id}: unknown constraints {unknown}; known: {', '.join(CONSTRAINTS)}"
        )
    for key, value in constraints.items():
        if key in _COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise SuiteError(f"case {case.id}: constraint {key} must be a whole number >= 0")
        if key in _PHRASES and (
            not isinstance(value, list) or not all(isinstance(v, str) and v for v in value)
        ):
            raise SuiteError(f"case {case.id}: constraint {key} must be a list of words")
        if key in _TEXTS and (not isinstance(value, str) or not value):
            raise SuiteError(f"case {case.id}: constraint {key} must be a non-empty string")
    return constraints


def _has_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, re.IGNORECASE) is not None


def _sentences(text: str) -> int:
    ends = len(_SENTENCE_END.findall(text))
    tail = _SENTENCE_END.split(text)[-1]
    return ends + (1 if words(tail) else 0)


def check_constraints(text: str, constraints: dict[str, Any]) -> dict[str, bool]:
    """Each constraint's verdict on ``text`` (assumed valid, see ``_validate``), and
    ``not_empty``: the text has a word."""
    text = text.strip()
    n_words = len(words(text))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    checks: dict[str, Callable[[Any], bool]] = {
        "words": lambda v: n_words == v,
        "min_words": lambda v: n_words >= v,
        "max_words": lambda v: n_words <= v,
        "lines": lambda v: len(lines) == v,
        "max_lines": lambda v: len(lines) <= v,
        "sentences": lambda v: _sentences(text) == v,
        "must_include": lambda v: all(_has_phrase(text, p) for p in v),
        "must_not_include": lambda v: not any(_has_phrase(text, p) for p in v),
        "starts_with": lambda v: text.lower().startswith(v.lower()),
        "ends_with": lambda v: text.lower().endswith(v.lower()),
        "first_letters": lambda v: "".join(line[0] for line in lines).lower() == v.lower(),
        "max_chars": lambda v: len(text) <= v,
    }
    verdicts = {key: checks[key](value) for key, value in constraints.items()}
    # An empty answer would pass "at most N words" or "without the word X".
    verdicts["not_empty"] = bool(words(text))
    return verdicts


class DiversityScorer:
    """Constraint rate, distinct-n and embedding dispersion over a case's samples."""

    name = "diversity"

    def __init__(self, ctx: ScoringContext | None = None, *, embedder: Embedder | None = None):
        self.ctx = ctx
        # Injected in tests; the real one is imported late so that loading this module
        # (every suite file names its scorer) costs no torch.
        self._embedder = embedder

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self._embedder is not None:
            return self._embedder(texts)
        from hainet.embed import embed

        return embed(texts)

    def _constraint_rate(
        self, case: Case, completions: Sequence[Completion]
    ) -> tuple[float, list[dict[str, bool]]]:
        constraints = _validate(case)
        verdicts = [check_constraints(c.text, constraints) for c in completions]
        met = sum(all(v.values()) for v in verdicts)
        return met / len(completions), verdicts

    def score(self, case: Case, completion: Completion) -> Score:
        rate, [verdict] = self._constraint_rate(case, [completion])
        failed = sorted(k for k, ok in verdict.items() if not ok)
        details = {"constraint_rate": rate, "constraints": verdict, "sample_count": 1}
        why = "meets every constraint" if not failed else f"fails {', '.join(failed)}"
        return Score(
            rate,
            f"one sample {why}; diversity needs two or more samples, so the score is"
            " the constraint check alone",
            details,
        )

    def score_samples(self, case: Case, completions: Sequence[Completion]) -> Score:
        if not completions:
            raise SuiteError(f"case {case.id}: no samples to score")
        if len(completions) == 1:
            return self.score(case, completions[0])
        rate, verdicts = self._constraint_rate(case, completions)
        texts = [c.text.strip() for c in completions]
        d1 = distinct_n(texts, 1)
        two_words = any(len(words(t)) >= 2 for t in texts)
        d2 = distinct_n(texts, 2) if two_words else d1
        try:
            vectors = self._embed(texts)
        except HainetError as exc:
            raise ScoringUnavailable(f"embedding model unavailable: {exc}") from None
        spread = dispersion(vectors)
        parts = {"constraint_rate": rate, "distinct_2": d2, "dispersion": spread}
        value = sum(WEIGHTS[k] * v for k, v in parts.items())
        details: dict[str, Any] = {
            **parts,
            "distinct_1": d1,
            "distinct_2_fallback": not two_words,
            "weights": WEIGHTS,
            "constraints": verdicts,
            "sample_count": len(completions),
        }
        return Score(
            min(max(value, 0.0), 1.0),
            f"{sum(all(v.values()) for v in verdicts)}/{len(completions)} samples meet the"
            f" constraints; distinct-2 {d2:.2f}, dispersion {spread:.2f}",
            details,
        )
