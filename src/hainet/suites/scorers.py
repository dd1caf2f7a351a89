"""Scorers: ``score(case, completion) -> Score(value 0..1, explanation)``.

A scorer that cannot score raises :class:`ScoringUnavailable`; the bench records that
as an error on the case, never as a zero or a pass.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import jsonschema

from hainet.errors import SuiteError
from hainet.types import Completion

if TYPE_CHECKING:
    from hainet.suites.base import Case

__all__ = [
    "ExactScorer",
    "JsonSchemaScorer",
    "NumericScorer",
    "RegexScorer",
    "Score",
    "Scorer",
    "ScoringUnavailable",
    "get_scorer",
    "normalize",
]


class ScoringUnavailable(Exception):
    """The scorer could not decide (its sandbox or judge is down)."""


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    explanation: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.value}")


class Scorer(Protocol):
    name: str

    def score(self, case: Case, completion: Completion) -> Score: ...


def normalize(text: str) -> str:
    """Lower case, no accents, punctuation or articles, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


class ExactScorer:
    """The first non-empty line equals the target or an alias, after normalization."""

    name = "exact"

    def score(self, case: Case, completion: Completion) -> Score:
        answer = normalize(_first_line(completion.text))
        accepted = [case.target, *case.aliases]
        for option in accepted:
            if answer == normalize(str(option)):
                return Score(1.0, f"matched {option!r}")
        return Score(0.0, f"answer {answer!r} is not one of {accepted!r}")


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


class NumericScorer:
    """The first number in the answer is within ``tolerance`` of the target."""

    name = "numeric"

    def score(self, case: Case, completion: Completion) -> Score:
        try:
            target = float(case.target)
        except (TypeError, ValueError):
            raise SuiteError(
                f"case {case.id}: numeric target {case.target!r} is not a number"
            ) from None
        match = _NUMBER.search(completion.text)
        if not match:
            return Score(0.0, "no number in the answer")
        try:
            got = float(match.group().replace(",", ""))
        except ValueError:
            return Score(0.0, f"cannot read {match.group()!r} as a number")
        tol = float(case.options.get("tolerance", 1e-6))
        if math.isclose(got, target, abs_tol=tol):
            return Score(1.0, f"{got:g} == {target:g}")
        return Score(0.0, f"{got:g} != {target:g} (tolerance {tol:g})")


class RegexScorer:
    """The answer matches the case's ``pattern`` (search, case-insensitive by default)."""

    name = "regex"

    def score(self, case: Case, completion: Completion) -> Score:
        pattern = case.options.get("pattern", case.target)
        flags = 0 if case.options.get("case_sensitive") else re.IGNORECASE
        try:
            found = re.search(str(pattern), completion.text, flags)
        except re.error as exc:
            raise SuiteError(f"case {case.id}: bad pattern {pattern!r}: {exc}") from None
        if found:
            return Score(1.0, f"matched /{pattern}/")
        return Score(0.0, f"no match for /{pattern}/")


def _extract_json(text: str) -> Any:
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # Models often wrap JSON in prose or code fences: take the first decodable object.
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                return decoder.raw_decode(text[i:])[0]
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON value in the answer")


class JsonSchemaScorer:
    """The answer holds JSON valid under the case's ``schema``."""

    name = "json_schema"

    def score(self, case: Case, completion: Completion) -> Score:
        schema = case.options.get("schema")
        if not isinstance(schema, dict):
            raise SuiteError(f"case {case.id}: the json_schema scorer needs options.schema")
        try:
            value = _extract_json(completion.text)
        except ValueError as exc:
            return Score(0.0, str(exc))
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=str)
        if errors:
            return Score(0.0, f"invalid: {errors[0].message}")
        return Score(1.0, "valid JSON under the schema")


_SCORERS: dict[str, Scorer] = {
    s.name: s for s in (ExactScorer(), NumericScorer(), RegexScorer(), JsonSchemaScorer())
}


def get_scorer(name: str) -> Scorer:
    try:
        return _SCORERS[name]
    except KeyError:
        raise SuiteError(f"unknown scorer {name!r}; known: {', '.join(sorted(_SCORERS))}") from None
