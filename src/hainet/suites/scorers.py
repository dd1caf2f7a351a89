"""Scorers: ``score(case, completion) -> Score(value 0..1, explanation)``.

A scorer that cannot score raises :class:`ScoringUnavailable`; the bench records that
as an error on the case, never as a zero or a pass.  A malformed case (a scorer
option missing) raises :class:`~hainet.errors.SuiteError`.

Optional, for scorers that need them:

* ``score_samples(case, completions) -> Score`` scores all samples of a case at once
  (diversity, pass@k); without it the bench averages ``score`` over the samples;
* ``async ascore(case, completion) -> Score`` for scorers that call a model (judge);
* ``blocking = False`` for scorers cheap enough to run on the event loop (the bench
  otherwise runs ``score`` in a worker thread).

Scorers are registered by name in :mod:`hainet.registry` (entry-point group
``hainet.scorers``, built-ins included).  Built-ins that need heavy resources (the
sandbox, the embedding model, a judge backend) are imported only when a suite uses
them; a scorer class is built once per bench with a :class:`ScoringContext`.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import jsonschema

from hainet.errors import SuiteError
from hainet.registry import Registry
from hainet.types import Completion

if TYPE_CHECKING:
    from hainet.backends.base import Backend
    from hainet.suites.base import Case

__all__ = [
    "ExactScorer",
    "JsonSchemaScorer",
    "NumericScorer",
    "RegexScorer",
    "Score",
    "Scorer",
    "Scorers",
    "ScoringContext",
    "ScoringUnavailable",
    "extract_json",
    "get_scorer",
    "normalize",
    "register_scorer",
    "check_case",
    "scorer_known",
]


class ScoringUnavailable(Exception):
    """The scorer could not decide (its sandbox or judge is down)."""


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    explanation: str
    details: dict[str, Any] | None = None
    """Anything worth keeping beside the value (sub-checks, pass@k, per-sample scores)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.value}")


class Scorer(Protocol):
    name: str

    def score(self, case: Case, completion: Completion) -> Score: ...


@dataclass
class ScoringContext:
    """What scorers may need from the bench.  Fields are None when not configured."""

    judge: Backend | None = None
    """Backend of the judge model (``hainet bench --judge MODEL``)."""
    unsafe_no_sandbox: bool = False
    """Run code without bubblewrap and seccomp (the user said so, loudly)."""
    extra: dict[str, Any] = field(default_factory=dict)


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


def _target_missing(case: Case, scorer: str, needs: str = "a target") -> SuiteError:
    return SuiteError(f"case {case.id!r}: field 'target': the {scorer} scorer needs {needs}")


def _finite_number(value: Any) -> float | None:
    """``value`` as a finite float (a number or a numeric string), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


class ExactScorer:
    """The first non-empty line equals the target or an alias, after normalization."""

    blocking = False  # cheap: the bench calls it inline, not in a thread

    name = "exact"

    @staticmethod
    def check_case(case: Case) -> None:
        """A case without a target would be scored 0 against ``None``: refuse it."""
        if case.target is None:
            raise _target_missing(case, "exact")
        if isinstance(case.target, (dict, list)):
            raise SuiteError(
                f"case {case.id!r}: field 'target': the exact scorer needs a string or a "
                f"number, got {type(case.target).__name__}"
            )

    def score(self, case: Case, completion: Completion) -> Score:
        answer = normalize(_first_line(completion.text))
        accepted = [case.target, *case.aliases]
        for option in accepted:
            if answer == normalize(str(option)):
                return Score(1.0, f"matched {option!r}")
        return Score(0.0, f"answer {answer!r} is not one of {accepted!r}")


# A number as the numeric scorer and the agents' number parser read it.
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")


class NumericScorer:
    """The first number in the answer is within ``tolerance`` of the target."""

    blocking = False  # cheap: the bench calls it inline, not in a thread

    name = "numeric"

    @staticmethod
    def check_case(case: Case) -> None:
        """The target and the tolerance are finite numbers (NaN never equals anything)."""
        if case.target is None:
            raise _target_missing(case, "numeric", "a number as target")
        if _finite_number(case.target) is None:
            raise SuiteError(
                f"case {case.id!r}: field 'target': numeric target {case.target!r} "
                "is not a finite number"
            )
        if "tolerance" in case.options:
            tol = _finite_number(case.options["tolerance"])
            if tol is None or tol < 0:
                raise SuiteError(
                    f"case {case.id!r}: field 'options.tolerance': "
                    f"{case.options['tolerance']!r} is not a finite number >= 0"
                )

    def score(self, case: Case, completion: Completion) -> Score:
        try:
            target = float(case.target)
        except (TypeError, ValueError):
            raise SuiteError(
                f"case {case.id}: numeric target {case.target!r} is not a number"
            ) from None
        match = NUMBER.search(completion.text)
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

    blocking = False  # cheap: the bench calls it inline, not in a thread

    name = "regex"

    @staticmethod
    def check_case(case: Case) -> None:
        """A pattern is given (``options.pattern`` or the target) and compiles."""
        field = "options.pattern" if "pattern" in case.options else "target"
        pattern = case.options.get("pattern", case.target)
        if pattern is None:
            raise _target_missing(case, "regex", "options.pattern or a target")
        if not isinstance(pattern, (str, int, float)) or isinstance(pattern, bool):
            raise SuiteError(
                f"case {case.id!r}: field {field!r}: a pattern is a string, "
                f"got {type(pattern).__name__}"
            )
        try:
            re.compile(str(pattern))
        except (re.error, OverflowError, RecursionError) as exc:
            raise SuiteError(
                f"case {case.id!r}: field {field!r}: bad pattern {pattern!r}: {exc}"
            ) from None

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


def extract_json(text: str) -> Any:
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
    """The answer holds JSON valid under ``options.schema``, else the case's
    ``json_schema`` (the one the model is shown)."""

    blocking = False  # cheap: the bench calls it inline, not in a thread
    name = "json_schema"

    @staticmethod
    def check_case(case: Case) -> None:
        """A schema is given and is itself a valid JSON Schema."""
        field = "options.schema" if "schema" in case.options else "json_schema"
        schema = case.options.get("schema", case.json_schema)
        if not isinstance(schema, dict):
            raise SuiteError(
                f"case {case.id!r}: field {field!r}: the json_schema scorer needs "
                "options.schema or json_schema, an object"
            )
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise SuiteError(
                f"case {case.id!r}: field {field!r}: not a valid JSON Schema: {exc.message}"
            ) from None

    def score(self, case: Case, completion: Completion) -> Score:
        schema = case.options.get("schema", case.json_schema)
        if not isinstance(schema, dict):
            raise SuiteError(
                f"case {case.id}: the json_schema scorer needs options.schema or json_schema"
            )
        try:
            value = extract_json(completion.text)
        except ValueError as exc:
            return Score(0.0, str(exc))
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=str)
        if errors:
            return Score(0.0, f"invalid: {errors[0].message}")
        return Score(1.0, "valid JSON under the schema")


ScorerFactory = Callable[[ScoringContext], Scorer]


def _check(name: str, obj: object) -> ScorerFactory:
    """A registered scorer is a factory taking a :class:`ScoringContext`, or a class
    (or callable) taking nothing; both are kept as a factory of the first kind."""
    if not callable(obj):
        raise SuiteError(f"scorer {name!r} does not name a scorer class or factory")
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: assume a context
        return obj
    takes_context = any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )
    if takes_context:
        return obj
    factory: ScorerFactory = lambda ctx: obj()  # noqa: E731
    # A class's check_case (validation at load) must stay reachable through the factory.
    factory.check_case = getattr(obj, "check_case", None)  # type: ignore[attr-defined]
    return factory


# Built-ins (exact, numeric, ..., judge) are entry points of hainet itself
# (pyproject.toml, group ``hainet.scorers``), imported when first used: the
# sandbox, the embedding model and a judge are loaded only by suites that need them.
SCORERS: Registry[ScorerFactory] = Registry(
    "scorer",
    check=_check,
    error=lambda msg, hint: SuiteError(msg, hint=hint),
    unknown=lambda name, known: SuiteError(f"unknown scorer {name!r}; known: {', '.join(known)}"),
)


def register_scorer(name: str, factory: ScorerFactory) -> None:
    """Register a scorer: ``factory(ctx)`` returns an object with ``score``."""
    SCORERS.register(name, factory)


def scorer_known(name: str) -> bool:
    return name in SCORERS


def check_case(name: str, case: Case) -> None:
    """Validate a case's options for its scorer when the suite loads, if the scorer
    offers a ``check_case(case)`` (raising :class:`SuiteError`); otherwise a malformed
    case is only found when it is scored."""
    check = getattr(_factory(name), "check_case", None)
    if check is not None:
        check(case)


def _factory(name: str) -> ScorerFactory:
    return SCORERS.get(name)


class Scorers:
    """Scorer instances for one bench, built on first use with one context."""

    def __init__(self, context: ScoringContext | None = None) -> None:
        self.context = context or ScoringContext()
        self._made: dict[str, Scorer] = {}

    def get(self, name: str) -> Scorer:
        if name not in self._made:
            self._made[name] = _factory(name)(self.context)
        return self._made[name]


def get_scorer(name: str, context: ScoringContext | None = None) -> Scorer:
    """A fresh scorer by name (a bench shares one :class:`Scorers` instead)."""
    return _factory(name)(context or ScoringContext())
