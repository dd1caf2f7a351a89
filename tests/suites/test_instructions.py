from typing import Any

import pytest

from hainet.errors import SuiteError
from hainet.suites import Case, Suite, get_scorer, load_suite
from hainet.suites.instructions import (
    CHECK_KWARGS,
    InstructionScorer,
    parse_checks,
    run_checks,
    validate_suite,
)
from hainet.suites.scorers import ScoringUnavailable
from hainet.types import Completion, Timing


def done(text: str) -> Completion:
    return Completion(text=text, timing=Timing(wall_s=0.0))


def case_with(*checks: dict[str, Any], case_id: str = "c") -> Case:
    return Case(id=case_id, input="q", options={"checks": list(checks)})


def check(check_id: str, **kwargs: Any) -> dict[str, Any]:
    return {"id": check_id, "kwargs": kwargs} if kwargs else {"id": check_id}


# One row per check type: (check, a compliant response, a non-compliant response).
CHECKS = [
    (check("keywords:existence", keywords=["ocean", "blue"]), "The blue ocean.", "The green sea."),
    (
        check("keywords:frequency", keyword="rain", frequency=3, relation="at least"),
        "Rain, rain, and more rain.",
        "Rain and more rain.",
    ),
    (
        check("keywords:frequency", keyword="very", frequency=2, relation="less than"),
        "It is very nice.",
        "It is very very nice.",
    ),
    (
        check("keywords:forbidden_words", forbidden_words=["cute", "fluffy"]),
        "A graceful hunter; acute hearing.",
        "A cute kitten.",
    ),
    (
        check("keywords:letter_frequency", letter="z", let_frequency=3, let_relation="at least"),
        "The lazy zebra dozed.",
        "The lazy cat slept.",
    ),
    (
        check("language:response_language", language="fr"),
        "Il fait beau aujourd'hui et le soleil brille sur toute la ville.",
        "It is sunny today and the sun is shining over the whole town.",
    ),
    (
        check("length_constraints:number_sentences", num_sentences=3, relation="less than"),
        "Rain falls. It stops.",
        "Rain falls. It stops. The sun shines.",
    ),
    (
        check("length_constraints:number_sentences", num_sentences=3, relation="at least"),
        "Dr. Smith paid 3.50 dollars. He left! Was it late?",
        "Dr. Smith paid 3.50 dollars!! He left.",
    ),
    (
        check("length_constraints:number_paragraphs", num_paragraphs=2),
        "Dogs are loyal.\n***\nThey need walks.",
        "Dogs are loyal. They need walks.",
    ),
    (
        check("length_constraints:number_words", num_words=5, relation="less than"),
        "A vehicle you pedal.",
        "A bicycle is a vehicle you pedal.",
    ),
    (
        check("length_constraints:number_words", num_words=5, relation="at least"),
        "A bicycle is a vehicle you pedal.",
        "A vehicle you pedal.",
    ),
    (
        check(
            "length_constraints:nth_paragraph_first_word",
            num_paragraphs=2,
            nth_paragraph=2,
            first_word="however",
        ),
        "Trees give shade.\n\nHowever, forests shrink.",
        "Trees give shade.\n\nBut forests shrink.",
    ),
    (
        check("detectable_content:number_placeholders", num_placeholders=2),
        "Dear [name], see you on [date].",
        "Dear [name], see you soon.",
    ),
    (
        check("detectable_content:postscript", postscript_marker="P.S."),
        "Thanks!\nP.S. Cookies are at your door.",
        "Thanks! Cookies are at your door.",
    ),
    (
        check("detectable_format:number_bullet_lists", num_bullets=3),
        "* one\n* two\n- three",
        "* one\n* two",
    ),
    (check("detectable_format:constrained_response"), "My answer is no.", "Nope."),
    (
        check("detectable_format:number_highlighted_sections", num_highlights=2),
        "Plants use *sunlight* to make *sugar*.",
        "Plants use *sunlight* to make sugar.",
    ),
    (
        check("detectable_format:multiple_sections", section_spliter="Section", num_sections=2),
        "Section 1\nBoil pasta.\nSection 2\nMake soup.",
        "Section 1\nBoil pasta and make soup.",
    ),
    (check("detectable_format:json_format"), '```json\n{"a": 1}\n```', "a: 1"),
    (check("detectable_format:title"), "<<First Snow>>\nSoft flakes.", "First Snow\nSoft flakes."),
    (check("combination:two_responses"), "Bubbles\n******\nGoldie", "Bubbles\n******\nBubbles"),
    (
        check("combination:repeat_prompt", prompt_to_repeat="Write a haiku about bees."),
        "Write a haiku about bees.\nBusy bees hum by.",
        "Busy bees hum by.",
    ),
    (
        check("startend:end_checker", end_phrase="Any other questions?"),
        "Rainbows are light. Any other questions?",
        "Any other questions? Rainbows are light.",
    ),
    (check("startend:quotation"), '"Teachers are kind."', 'Teachers are "kind".'),
    (
        check("change_case:english_capital"),
        "PLEASE WASH YOUR HANDS WITH SOAP AND WATER BEFORE EVERY MEAL.",
        "Please wash your hands with soap and water before every meal.",
    ),
    (
        check("change_case:english_lowercase"),
        "coffee is made from roasted beans and hot water. many people drink it daily.",
        "Coffee is made from roasted beans and hot water. Many people drink it daily.",
    ),
    (
        check(
            "change_case:capital_word_frequency", capital_frequency=3, capital_relation="at least"
        ),
        "You CAN do this. NEVER give up. Today is YOUR day.",
        "You CAN do this. Never give up. Today is YOUR day.",
    ),
    (check("punctuation:no_comma"), "No commas here at all.", "One, two."),
    (
        check("hainet:starts_with", phrase="My answer is"),
        "  my answer is yes.",
        "Yes. My answer is yes.",
    ),
]


def test_every_supported_check_id_has_unit_cases() -> None:
    assert {c["id"] for c, _, _ in CHECKS} == set(CHECK_KWARGS)


@pytest.mark.parametrize(("spec", "good", "bad"), CHECKS, ids=[c["id"] for c, _, _ in CHECKS])
def test_check_passes_compliant_and_fails_non_compliant(
    spec: dict[str, Any], good: str, bad: str
) -> None:
    scorer = get_scorer("instructions")
    case = case_with(spec)
    passed = scorer.score(case, done(good))
    assert passed.value == 1.0, passed.explanation
    assert passed.details == {"checks": [{"id": spec["id"], "passed": True}], "all_passed": True}
    failed = scorer.score(case, done(bad))
    assert failed.value == 0.0, failed.explanation
    assert failed.details == {"checks": [{"id": spec["id"], "passed": False}], "all_passed": False}
    assert spec["id"] in failed.explanation


def test_value_is_the_fraction_of_checks_met_and_details_say_which() -> None:
    case = case_with(
        check("keywords:existence", keywords=["ocean"]),
        check("length_constraints:number_words", num_words=5, relation="less than"),
        check("punctuation:no_comma"),
        check("change_case:english_lowercase"),
    )
    score = InstructionScorer().score(case, done(" The ocean is big and deep, and blue.\n"))
    assert score.value == 0.25
    assert score.details == {
        "checks": [
            {"id": "keywords:existence", "passed": True},
            {"id": "length_constraints:number_words", "passed": False},
            {"id": "punctuation:no_comma", "passed": False},
            {"id": "change_case:english_lowercase", "passed": False},
        ],
        "all_passed": False,
    }
    assert score.explanation.startswith("1/4 checks met; failed: length_constraints")


def test_an_empty_response_meets_no_check() -> None:
    case = case_with(
        check("punctuation:no_comma"), check("keywords:forbidden_words", forbidden_words=["x"])
    )
    score = InstructionScorer().score(case, done("  \n "))
    assert score.value == 0.0 and "empty response" in score.explanation
    assert score.details is not None and score.details["all_passed"] is False


def test_surrounding_whitespace_is_ignored() -> None:
    case = case_with(check("startend:quotation"), check("hainet:starts_with", phrase='"Hi'))
    assert InstructionScorer().score(case, done('  "Hi there."\n\n')).value == 1.0


def test_langdetect_verdicts_are_repeatable() -> None:
    case = case_with(check("change_case:english_lowercase"))
    text = done("the sun is a huge ball of hot gas that gives the earth light.")
    assert {InstructionScorer().score(case, text).value for _ in range(5)} == {1.0}


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        (None, "needs options.checks"),
        ([], "needs options.checks"),
        (["keywords:existence"], r"check #1: expected an object"),
        ([{"id": "keywords:telepathy"}], r"check #1 'keywords:telepathy': unknown check id"),
        ([{"id": "punctuation:no_comma", "why": 1}], r"unexpected fields \['why'\]"),
        ([{"id": "punctuation:no_comma", "kwargs": []}], "kwargs must be an object"),
        ([check("keywords:existence")], r"missing kwargs \['keywords'\]"),
        (
            [check("length_constraints:number_words", num_words=5)],
            r"missing kwargs \['relation'\]",
        ),
        (
            [check("punctuation:no_comma", strict=True)],
            r"unexpected kwargs \['strict'\] \(takes: none\)",
        ),
        (
            [check("length_constraints:number_words", num_words="5", relation="less than")],
            r"kwarg 'num_words' must be an integer >= 1",
        ),
        (
            [check("length_constraints:number_words", num_words=-1, relation="less than")],
            "an integer >= 1",
        ),
        (
            [check("length_constraints:number_words", num_words=True, relation="less than")],
            "an integer >= 1",
        ),
        (
            [check("length_constraints:number_words", num_words=5, relation="at most")],
            r"kwarg 'relation' must be one of \['less than', 'at least'\]",
        ),
        ([check("keywords:existence", keywords=[])], "non-empty list"),
        ([check("keywords:existence", keywords="ocean")], "non-empty list"),
        ([check("keywords:existence", keywords=["oc(ean"])], "plain words"),
        (
            [
                check(
                    "keywords:letter_frequency",
                    letter="zz",
                    let_frequency=1,
                    let_relation="at least",
                )
            ],
            "one ASCII letter",
        ),
        ([check("language:response_language", language="klingon")], "ISO 639-1"),
        ([check("startend:end_checker", end_phrase="  ")], "non-empty string"),
        (
            [
                check(
                    "length_constraints:nth_paragraph_first_word",
                    num_paragraphs=2,
                    nth_paragraph=3,
                    first_word="however",
                )
            ],
            "nth_paragraph is larger",
        ),
        (
            [check("punctuation:no_comma"), {"id": "nope"}],
            r"check #2 'nope': unknown check id",
        ),
    ],
)
def test_malformed_checks_are_rejected_naming_the_case(checks: Any, message: str) -> None:
    case = Case(id="bad-case", input="q", options={} if checks is None else {"checks": checks})
    for attempt in (
        lambda: parse_checks(case),
        lambda: run_checks(case, "text"),
        lambda: InstructionScorer().score(case, done("text")),
    ):
        with pytest.raises(SuiteError, match=message) as info:
            attempt()
        assert "case 'bad-case'" in str(info.value)


def test_validate_suite_finds_the_bad_case_among_good_ones() -> None:
    good = {"id": "ok", "input": "q", "options": {"checks": [check("punctuation:no_comma")]}}
    bad = {"id": "broken", "input": "q", "options": {"checks": [{"id": "nope"}]}}
    other = {"id": "other-scorer", "input": "q", "scorer": "exact", "target": "x"}
    suite = Suite(name="s", version="1", capability="c", scorer="instructions", cases=[good, other])
    validate_suite(suite)
    with pytest.raises(SuiteError, match="case 'broken'"):
        validate_suite(suite.model_copy(update={"cases": [*suite.cases, Case(**bad)]}))


def test_a_checker_that_crashes_is_unavailable_not_a_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from if_verifiable.ifeval import instructions

    def boom(self: Any, value: str) -> bool:
        raise RuntimeError("checker bug")

    monkeypatch.setattr(instructions.CommaChecker, "check_following", boom)
    with pytest.raises(ScoringUnavailable, match="checker bug"):
        InstructionScorer().score(case_with(check("punctuation:no_comma")), done("a, b"))


def test_builtin_suite_checks_are_valid_and_its_examples_comply() -> None:
    suite = load_suite("instruction_following")
    validate_suite(suite)
    for case in suite.cases:
        results = run_checks(case, case.options["example"])
        assert all(r.passed for r in results), (case.id, results)
