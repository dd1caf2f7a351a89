"""The ``instructions`` scorer: verifiable constraints in the style of IFEval.

A case lists its checks in ``options``::

    "options": {"checks": [
        {"id": "keywords:existence", "kwargs": {"keywords": ["ocean"]}},
        {"id": "length_constraints:number_words",
         "kwargs": {"num_words": 50, "relation": "less than"}}
    ]}

The score is the fraction of checks the response meets; ``details`` keeps each
check's verdict (``{"checks": [{"id": ..., "passed": ...}], "all_passed": ...}``,
``all_passed`` being IFEval's strict prompt-level accuracy).  The response is
stripped of surrounding whitespace first, and an empty response meets no check
(otherwise silence would satisfy "no commas" or "fewer than 50 words").

Check ids and their kwargs are IFEval's (``CHECK_KWARGS`` lists them).  Most are
run by the checkers of the PyPI package ``if-verifiable``.  Four are our own:

* ``length_constraints:number_sentences``: IFEval counts sentences with nltk's punkt
  model, which nltk downloads from the internet on first use.  We split with the
  regex splitter that ships in the same package (``split_into_sentences``) and
  ignore pieces without a letter or digit (it makes ``"!!"`` two sentences).
* ``change_case:capital_word_frequency``: IFEval's ``word_tokenize`` needs punkt
  too; NLTK's Treebank-style word tokenizer needs no data and splits the same way
  within a sentence.
* ``change_case:english_capital``: langdetect reads all-capital English as Somali or
  German ("WASH YOUR HANDS BEFORE YOU EAT." -> "so"), so the language is detected on
  the lower-cased text.
* ``hainet:starts_with`` (``phrase``): IFEval registers no "starts with" check.

As in IFEval, ``keywords:existence`` and ``keywords:frequency`` search case-insensitively
for the keyword anywhere ("age" is found in "page"), ``keywords:forbidden_words``
matches whole words only, and the ``change_case`` checks also want English
(langdetect, seeded once so a response always gets the same verdict).

Unknown ids, missing or unexpected kwargs and kwargs of the wrong type raise
:class:`~hainet.errors.SuiteError` naming the case, when scoring at the latest;
:func:`validate_suite` checks a whole suite up front.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import langdetect  # type: ignore[import-untyped]  # no stubs, no py.typed
from if_verifiable.ifeval import instructions_util
from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT
from nltk.tokenize import NLTKWordTokenizer

from hainet.errors import SuiteError
from hainet.suites.scorers import Score, ScoringContext, ScoringUnavailable
from hainet.types import Completion

if TYPE_CHECKING:
    from hainet.suites.base import Case, Suite

__all__ = [
    "CHECK_KWARGS",
    "Check",
    "CheckResult",
    "InstructionScorer",
    "parse_checks",
    "run_checks",
    "validate_suite",
]

# langdetect draws random samples of n-grams; without a seed the same text can get
# a different language on the next call, and so a different score.
langdetect.DetectorFactory.seed = 0

_RELATIONS = ("less than", "at least")
# Keywords and section markers go into regexes unescaped inside if-verifiable, so
# only plain words (spaces, hyphens and apostrophes allowed) are accepted.
_PLAIN = re.compile(r"^\w[\w' -]*$")
_TOKEN = re.compile(r"^[\w'-]+$")
_MARKER = re.compile(r"^[\w. ]+$")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_plain(value: Any) -> bool:
    return isinstance(value, str) and bool(_PLAIN.match(value))


_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "count": ("an integer >= 1", _is_count),
    "relation": (f"one of {list(_RELATIONS)}", lambda v: v in _RELATIONS),
    "keyword": ("a plain word or phrase", _is_plain),
    "keywords": (
        "a non-empty list of plain words or phrases",
        lambda v: isinstance(v, list) and bool(v) and all(_is_plain(k) for k in v),
    ),
    "token": ("a single word", lambda v: isinstance(v, str) and bool(_TOKEN.match(v))),
    "marker": (
        "letters, digits, dots and spaces",
        lambda v: isinstance(v, str) and bool(_MARKER.match(v)),
    ),
    "text": ("a non-empty string", lambda v: isinstance(v, str) and bool(v.strip())),
    "letter": (
        "one ASCII letter",
        lambda v: isinstance(v, str) and len(v) == 1 and v.isascii() and v.isalpha(),
    ),
    "language": (
        "an ISO 639-1 code known to IFEval",
        lambda v: isinstance(v, str) and v in instructions_util.LANGUAGE_CODES,
    ),
}

CHECK_KWARGS: dict[str, dict[str, str]] = {
    "keywords:existence": {"keywords": "keywords"},
    "keywords:frequency": {"keyword": "keyword", "frequency": "count", "relation": "relation"},
    "keywords:forbidden_words": {"forbidden_words": "keywords"},
    "keywords:letter_frequency": {
        "letter": "letter",
        "let_frequency": "count",
        "let_relation": "relation",
    },
    "language:response_language": {"language": "language"},
    "length_constraints:number_sentences": {"num_sentences": "count", "relation": "relation"},
    "length_constraints:number_paragraphs": {"num_paragraphs": "count"},
    "length_constraints:number_words": {"num_words": "count", "relation": "relation"},
    "length_constraints:nth_paragraph_first_word": {
        "num_paragraphs": "count",
        "nth_paragraph": "count",
        "first_word": "token",
    },
    "detectable_content:number_placeholders": {"num_placeholders": "count"},
    "detectable_content:postscript": {"postscript_marker": "marker"},
    "detectable_format:number_bullet_lists": {"num_bullets": "count"},
    "detectable_format:constrained_response": {},
    "detectable_format:number_highlighted_sections": {"num_highlights": "count"},
    "detectable_format:multiple_sections": {"section_spliter": "token", "num_sections": "count"},
    "detectable_format:json_format": {},
    "detectable_format:title": {},
    "combination:two_responses": {},
    "combination:repeat_prompt": {"prompt_to_repeat": "text"},
    "startend:end_checker": {"end_phrase": "text"},
    "startend:quotation": {},
    "change_case:english_capital": {},
    "change_case:english_lowercase": {},
    "change_case:capital_word_frequency": {
        "capital_frequency": "count",
        "capital_relation": "relation",
    },
    "punctuation:no_comma": {},
    "hainet:starts_with": {"phrase": "text"},
}
"""Every supported check id and its kwargs, each of one kind (see ``_KINDS``)."""


class _Checker(Protocol):
    def check_following(self, value: str) -> Any: ...


def _compare(count: int, relation: str, threshold: int) -> bool:
    return count < threshold if relation == "less than" else count >= threshold


@dataclass(frozen=True)
class _SentenceCount:
    num_sentences: int
    relation: str

    def check_following(self, value: str) -> bool:
        pieces = instructions_util.split_into_sentences(value)
        count = sum(1 for p in pieces if re.search(r"\w", p))
        return _compare(count, self.relation, self.num_sentences)


@dataclass(frozen=True)
class _CapitalWordFrequency:
    capital_frequency: int
    capital_relation: str

    def check_following(self, value: str) -> bool:
        words = NLTKWordTokenizer().tokenize(value)
        count = sum(1 for w in words if w.isupper())
        return _compare(count, self.capital_relation, self.capital_frequency)


class _EnglishCapital:
    def check_following(self, value: str) -> bool:
        if not value.isupper():
            return False
        try:
            return bool(langdetect.detect(value.lower()) == "en")
        except langdetect.LangDetectException:
            # As IFEval does: no language features (digits, symbols) is no violation.
            return True


@dataclass(frozen=True)
class _StartsWith:
    phrase: str

    def check_following(self, value: str) -> bool:
        return value.strip().lower().startswith(self.phrase.strip().lower())


_OWN: dict[str, Callable[..., _Checker]] = {
    "length_constraints:number_sentences": _SentenceCount,
    "change_case:capital_word_frequency": _CapitalWordFrequency,
    "change_case:english_capital": lambda: _EnglishCapital(),
    "hainet:starts_with": _StartsWith,
}


@dataclass(frozen=True)
class Check:
    """One validated check of a case."""

    id: str
    kwargs: dict[str, Any]

    def build(self) -> _Checker:
        if self.id in _OWN:
            return _OWN[self.id](**self.kwargs)
        checker: _Checker = INSTRUCTION_DICT[self.id](self.id)
        checker.build_description(**self.kwargs)  # type: ignore[attr-defined]
        return checker


@dataclass(frozen=True)
class CheckResult:
    id: str
    passed: bool


def _parse_one(case_id: str, index: int, raw: Any) -> Check:
    where = f"case {case_id!r}: check #{index + 1}"
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise SuiteError(f"{where}: expected an object with a string 'id', got {raw!r}")
    extra = sorted(set(raw) - {"id", "kwargs"})
    if extra:
        raise SuiteError(f"{where}: unexpected fields {extra} (allowed: id, kwargs)")
    check_id: str = raw["id"]
    where = f"{where} {check_id!r}"
    if check_id not in CHECK_KWARGS:
        raise SuiteError(
            f"{where}: unknown check id", hint=f"known: {', '.join(sorted(CHECK_KWARGS))}"
        )
    kwargs = raw.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise SuiteError(f"{where}: kwargs must be an object, got {kwargs!r}")
    spec = CHECK_KWARGS[check_id]
    missing = sorted(set(spec) - set(kwargs))
    unexpected = sorted(set(kwargs) - set(spec))
    if missing or unexpected:
        problems = [f"missing kwargs {missing}" if missing else ""]
        problems.append(f"unexpected kwargs {unexpected}" if unexpected else "")
        wanted = ", ".join(spec) or "none"
        raise SuiteError(f"{where}: {'; '.join(p for p in problems if p)} (takes: {wanted})")
    for name, kind in spec.items():
        description, valid = _KINDS[kind]
        if not valid(kwargs[name]):
            raise SuiteError(f"{where}: kwarg {name!r} must be {description}, got {kwargs[name]!r}")
    # if-verifiable silently picks a random paragraph when this is out of range.
    if check_id.endswith("nth_paragraph_first_word") and (
        kwargs["nth_paragraph"] > kwargs["num_paragraphs"]
    ):
        raise SuiteError(f"{where}: nth_paragraph is larger than num_paragraphs")
    check = Check(check_id, dict(kwargs))
    try:
        check.build()
    except Exception as exc:  # the library's own validation, worded its way
        raise SuiteError(f"{where}: {exc}") from None
    return check


def parse_checks(case: Case) -> list[Check]:
    """The case's checks, validated; :class:`SuiteError` naming the case if malformed."""
    raw = case.options.get("checks")
    if not isinstance(raw, list) or not raw:
        raise SuiteError(
            f"case {case.id!r}: the instructions scorer needs options.checks, a non-empty list"
        )
    return [_parse_one(case.id, i, item) for i, item in enumerate(raw)]


def run_checks(case: Case, text: str) -> list[CheckResult]:
    """Each check's verdict on ``text`` (stripped; an empty response meets none)."""
    checks = parse_checks(case)
    text = text.strip()
    if not text:
        return [CheckResult(c.id, False) for c in checks]
    results = []
    for check in checks:
        try:
            passed = bool(check.build().check_following(text))
        except Exception as exc:  # a checker bug must not pass as a verdict
            raise ScoringUnavailable(f"check {check.id!r} failed: {exc}") from exc
        results.append(CheckResult(check.id, passed))
    return results


def validate_suite(suite: Suite) -> None:
    """Validate the checks of every case the ``instructions`` scorer scores."""
    for case in suite.cases:
        if suite.scorer_name(case) == InstructionScorer.name:
            parse_checks(case)


class InstructionScorer:
    """Fraction of a case's verifiable checks that the response meets."""

    name = "instructions"

    @staticmethod
    def check_case(case: Case) -> None:
        """Refuse malformed checks when the suite loads (see scorers.check_case)."""
        parse_checks(case)

    def __init__(self, ctx: ScoringContext | None = None) -> None:
        self.ctx = ctx
        # Load langdetect's profiles now, once, rather than lazily inside whichever
        # scoring thread first needs them (the bench scores in worker threads).
        langdetect.detector_factory.init_factory()

    def score(self, case: Case, completion: Completion) -> Score:
        results = run_checks(case, completion.text)
        met = sum(r.passed for r in results)
        failed = [r.id for r in results if not r.passed]
        if not completion.text.strip():
            explanation = f"empty response: 0/{len(results)} checks met"
        else:
            explanation = f"{met}/{len(results)} checks met"
            if failed:
                explanation += f"; failed: {', '.join(failed)}"
        details = {
            "checks": [{"id": r.id, "passed": r.passed} for r in results],
            "all_passed": met == len(results),
        }
        return Score(met / len(results), explanation, details)
