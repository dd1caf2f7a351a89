"""The diversity scorer, the creativity suite's data, and its quick subset on the bundled model."""

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from hainet.errors import BackendUnavailable, SuiteError
from hainet.suites import Case, ScoringUnavailable, Suite, get_scorer, load_suite
from hainet.suites.creativity import (
    CONSTRAINTS,
    WEIGHTS,
    DiversityScorer,
    check_constraints,
    dispersion,
    distinct_n,
    words,
)
from hainet.types import Completion, GenerationParams, Timing
from tests.suites.conftest import QuickRun


def done(text: str) -> Completion:
    return Completion(text=text, timing=Timing(wall_s=0.0))


def bag_of_words(texts: Sequence[str]) -> np.ndarray:
    """A stand-in embedder for unit tests: hashed word counts, no model."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, text in enumerate(texts):
        for w in words(text):
            out[i, zlib.crc32(w.encode()) % 64] += 1.0
    return out


def poem_case(**constraints: Any) -> Case:
    return Case(id="p", input="Write a poem.", options={"constraints": constraints})


SEA = poem_case(lines=2, must_include=["salt"])
DIFFERENT = [
    "Salt on the wind,\nwaves fold into foam.",
    "The harbour smells of salt\nand tar and rope.",
    "Grey gulls cry out,\nsalt dries on my skin.",
    "Under a violet sky\nthe salt tide turns.",
]


def scorer() -> DiversityScorer:
    return DiversityScorer(None, embedder=bag_of_words)


# -- the pieces -----------------------------------------------------------------------------


def test_distinct_n() -> None:
    assert distinct_n(["a b c", "d e f"], 1) == 1.0
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert distinct_n(["the cat", "the dog"], 1) == 0.75
    assert distinct_n(["one", "two"], 2) == 0.0  # no bigrams at all
    assert distinct_n([], 1) == 0.0


def test_dispersion() -> None:
    same = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    assert dispersion(same) == pytest.approx(0.0)
    assert dispersion(np.eye(3)) == pytest.approx(1.0)
    assert dispersion(np.array([[1.0, 0.0], [-1.0, 0.0]])) == 1.0  # clipped from 2
    assert dispersion(np.array([[1.0, 0.0]])) == 0.0


@pytest.mark.parametrize(
    ("text", "constraints", "expected"),
    [
        (" Found the key. Lost the door.\n", {"words": 6}, True),
        ("Found the key.", {"words": 6}, False),
        ("one two", {"min_words": 1, "max_words": 2}, True),
        ("one two three", {"max_words": 2}, False),
        ("a\n\nb\nc\nd", {"lines": 4}, True),
        ("a\nb", {"max_lines": 1}, False),
        ("One. Two! Three", {"sentences": 3}, True),
        ("Why do bees dance?", {"sentences": 1, "ends_with": "?", "must_include": ["bees"]}, True),
        ("The SALT sea", {"must_include": ["salt"]}, True),
        ("The salty sea", {"must_include": ["salt"]}, False),  # whole words only
        ("Stuck in traffic again", {"must_not_include": ["traffic"]}, False),
        ("Captain Comet", {"starts_with": "captain"}, True),
        ("Cold night\nAmber moon\nTall trees", {"first_letters": "CAT"}, True),
        ("Cold night\nTall trees\nAmber moon", {"first_letters": "CAT"}, False),
        ("x" * 11, {"max_chars": 10}, False),
        ("", {"max_words": 3}, False),  # an empty answer meets nothing
        (" ... ", {}, False),
    ],
)
def test_constraints(text: str, constraints: dict[str, Any], expected: bool) -> None:
    verdicts = check_constraints(text, constraints)
    assert set(verdicts) == {*constraints, "not_empty"}
    assert all(verdicts.values()) is expected, verdicts


# -- the scorer -----------------------------------------------------------------------------


def test_different_samples_that_meet_the_constraints_score_high() -> None:
    score = scorer().score_samples(SEA, [done(t) for t in DIFFERENT])
    details = score.details or {}
    assert details["constraint_rate"] == 1.0 and details["sample_count"] == 4
    assert details["distinct_2"] > 0.9 and details["dispersion"] > 0.5
    for key in ("distinct_1", "distinct_2", "dispersion", "constraint_rate"):
        assert 0.0 <= details[key] <= 1.0
    assert score.value == pytest.approx(sum(WEIGHTS[k] * details[k] for k in WEIGHTS))
    assert score.value > 0.85 and "4/4 samples meet" in score.explanation


def test_identical_samples_score_low_diversity() -> None:
    same = scorer().score_samples(SEA, [done(DIFFERENT[0])] * 4)
    details = same.details or {}
    assert details["constraint_rate"] == 1.0
    assert details["distinct_2"] == pytest.approx(0.25)  # 1/N
    assert details["dispersion"] == pytest.approx(0.0, abs=1e-6)
    assert same.value <= WEIGHTS["constraint_rate"] + WEIGHTS["distinct_2"] / 4 + 1e-6
    varied = scorer().score_samples(SEA, [done(t) for t in DIFFERENT])
    assert varied.value - same.value > 0.3


def test_constraint_rate_counts_samples_meeting_every_constraint() -> None:
    samples = [DIFFERENT[0], "No salt here", "Two lines\nbut no s-word", DIFFERENT[1]]
    score = scorer().score_samples(SEA, [done(t) for t in samples])
    details = score.details or {}
    assert details["constraint_rate"] == 0.5
    assert [all(v.values()) for v in details["constraints"]] == [True, False, False, True]


def test_one_word_samples_fall_back_to_distinct_1() -> None:
    c = Case(id="n", input="Name a goldfish.", options={"constraints": {"words": 1}})
    score = scorer().score_samples(c, [done(t) for t in ["Bubbles", "Finn", "Goldie", "Bubbles"]])
    details = score.details or {}
    assert details["distinct_2_fallback"] is True and details["distinct_2"] == 0.75


def test_a_single_sample_scores_the_constraints_only() -> None:
    good = scorer().score(SEA, done(DIFFERENT[0]))
    assert good.value == 1.0 and "diversity needs two or more samples" in good.explanation
    bad = scorer().score(SEA, done("no"))
    assert bad.value == 0.0 and "fails lines, must_include" in bad.explanation
    assert scorer().score_samples(SEA, [done("no")]).value == 0.0


def test_no_constraints_means_every_sample_meets_them() -> None:
    c = Case(id="free", input="Anything.")
    assert scorer().score_samples(c, [done("a b"), done("c d")]).details["constraint_rate"] == 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        ({"rhymes": True}, "unknown constraints"),
        ({"words": "six"}, "whole number"),
        ({"words": -1}, "whole number"),
        ({"max_words": True}, "whole number"),
        ({"must_include": "salt"}, "list of words"),
        ({"must_include": [""]}, "list of words"),
        ({"first_letters": 3}, "non-empty string"),
    ],
)
def test_malformed_constraints_are_suite_errors(constraints: dict[str, Any], message: str) -> None:
    c = Case(id="bad", input="q", options={"constraints": constraints})
    with pytest.raises(SuiteError, match=message):
        scorer().score_samples(c, [done("a"), done("b")])
    with pytest.raises(SuiteError, match=message):
        scorer().score(c, done("a"))
    with pytest.raises(SuiteError, match="must be an object"):
        scorer().score(Case(id="bad", input="q", options={"constraints": ["words"]}), done("a"))
    with pytest.raises(SuiteError, match="no samples"):
        scorer().score_samples(SEA, [])


def test_no_embedding_model_means_unscored_not_zero() -> None:
    def broken(texts: Sequence[str]) -> np.ndarray:
        raise BackendUnavailable("the embedding model is not installed")

    with pytest.raises(ScoringUnavailable, match="embedding model unavailable"):
        DiversityScorer(None, embedder=broken).score_samples(SEA, [done(t) for t in DIFFERENT])


def test_real_embeddings_tell_identical_from_varied_samples() -> None:
    real = get_scorer("diversity")
    assert isinstance(real, DiversityScorer)
    same = real.score_samples(SEA, [done(DIFFERENT[0])] * 3)
    varied = real.score_samples(SEA, [done(t) for t in DIFFERENT])
    assert (same.details or {})["dispersion"] < 0.01
    assert (varied.details or {})["dispersion"] > (same.details or {})["dispersion"] + 0.2


# -- the suite's data -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite("creativity")


def test_suite_header_and_quick_subset(suite: Suite) -> None:
    assert suite.name == suite.capability == "creativity" and suite.version == "1.0"
    assert len(suite.cases) >= 30 and suite.scorer == "diversity"
    assert suite.samples == 4 and suite.temperature == 0.8
    ids = [c.id for c in suite.cases]
    assert len(set(ids)) == len(ids)
    quick = suite.select(quick=True)
    assert 3 <= len(quick) <= 5
    assert all(i in suite.description for i in suite.quick)
    # The bench's temperature wins (sweeps); else the suite's.
    assert suite.temperature_for(quick[0], None) == 0.8
    assert suite.temperature_for(quick[0], 0.2) == 0.2


def test_every_prompt_has_valid_constraints(suite: Suite) -> None:
    used: set[str] = set()
    for c in suite.cases:
        constraints = c.options["constraints"]
        assert constraints, c.id
        used |= set(constraints)
        # Validates the constraints (raises SuiteError on a bad one).
        scorer().score(c, done("x"))
    assert used == set(CONSTRAINTS) - {"max_chars"}


def test_both_modes_render(suite: Suite) -> None:
    for c in suite.cases:
        req = suite.request(c, "prompt", GenerationParams())
        assert req.prompt is not None and req.prompt.startswith(suite.few_shot)
        assert req.prompt.endswith(f"Task: {c.input}\nAnswer:")
        assert req.params.stop == ("\n\n", "\nTask:")
        chat = suite.request(c, "chat", GenerationParams())
        assert chat.messages is not None and [m.role for m in chat.messages] == ["system", "user"]
        assert chat.messages[1].content == c.input


def test_few_shot_answers_meet_their_own_tasks(suite: Suite) -> None:
    blocks = suite.few_shot.strip().split("\n\n")
    answers = [b.split("Answer: ", 1)[1] for b in blocks]
    assert all(check_constraints(answers[0], {"lines": 2}).values())
    assert all(check_constraints(answers[1], {"max_words": 2}).values())
    assert all(check_constraints(answers[2], {"words": 4}).values())


# -- the bundled model ----------------------------------------------------------------------


@pytest.mark.model
def test_quick_subset_on_the_bundled_model(suite: Suite, run_quick: QuickRun) -> None:
    run, store = run_quick(suite)
    assert run.status == "completed"
    results = {r.case_id: r for r in store.results(run.id)}
    assert sorted(results) == sorted(suite.quick)
    for c in suite.select(quick=True):
        r = results[c.id]
        assert r.prompt == suite.request(c, "prompt", GenerationParams()).prompt
        assert r.error is None, r.error
        assert r.score is not None and 0.0 <= r.score <= 1.0 and r.explanation
        details = r.details or {}
        assert len(details["samples"]) == 4 and details["samples"][0] == r.output
        assert len(details["constraints"]) == 4
        for key in ("constraint_rate", "distinct_1", "distinct_2", "dispersion"):
            assert 0.0 <= details[key] <= 1.0
        assert r.score == pytest.approx(sum(WEIGHTS[k] * details[k] for k in WEIGHTS))
